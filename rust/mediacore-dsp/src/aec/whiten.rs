//! Adaptive pre-whitening of the far-end signal for the NLMS update of the
//! time-domain canceller, and narrowband (tone) detection for both.
//!
//! Speech is strongly coloured (spectral tilt, formants): its
//! autocorrelation matrix has a large eigenvalue spread, and plain NLMS
//! converges slowly along the weakly excited directions. Because the echo
//! path is linear and time-invariant, filtering both the far-end reference
//! and the error by the same prediction-error filter
//! `A(z) = 1 − Σ c_k z^−k` leaves the path unchanged while flattening the
//! spectrum the adaptation sees. The echo estimate itself is still computed
//! on the unfiltered far end; only the update direction (`A·x`) and the
//! error driving it (`A·e`) are whitened.
//!
//! The predictor is a short LPC fit (Levinson–Durbin) to the far end's
//! autocorrelation, smoothed over about 100 ms and refreshed every
//! [`PERIOD`] samples, so that it changes slowly compared with the tail.

/// Predictor order.
pub(super) const ORDER: usize = 8;
/// Samples between predictor refreshes (16 ms).
pub(super) const PERIOD: u32 = 128;
/// Weight of the latest period's autocorrelation in the smoothed one
/// (≈ 100 ms memory at 16 ms periods).
const SMOOTHING: f64 = 0.15;
/// White-noise correction: `r[0]` is raised by this fraction, bounding the
/// prediction gain (≈ 30 dB) and keeping the recursion well conditioned.
const NOISE_CORRECTION: f64 = 3e-2;
/// Lag window (Gaussian, ≈ 60 Hz bandwidth at 8 kHz): widens formant
/// peaks so the whitened spectrum has no sharp notches.
const LAG_WINDOW_SIGMA: f64 = 0.0074;
/// Relative prediction error below which the far end is narrowband
/// (30 dB prediction gain; speech stays well under 25 dB at order 8).
const NARROWBAND_ERROR: f64 = 1e-3;
/// Smoothed autocorrelation below this (i16², ≈ −50 dBm0 mean power)
/// leaves the predictor as it is: silence says nothing about the talker.
const MIN_POWER: f64 = 2600.0;

use super::nlms::{dispatch_dot, Kernel};

pub(super) struct Whitener {
    /// Autocorrelation accumulated over the current period.
    period: [f64; ORDER + 1],
    smoothed: [f64; ORDER + 1],
    count: u32,
    coefficients: [f32; ORDER],
    narrowband: bool,
}

impl Whitener {
    pub(super) fn new() -> Self {
        Whitener {
            period: [0.0; ORDER + 1],
            smoothed: [0.0; ORDER + 1],
            count: 0,
            coefficients: [0.0; ORDER],
            narrowband: false,
        }
    }

    pub(super) fn coefficients(&self) -> &[f32; ORDER] {
        &self.coefficients
    }

    /// The far end is (currently) a tone or a few tones: an order-8
    /// predictor removes all but [`NARROWBAND_ERROR`] of it. Speech never
    /// gets that predictable; convergence on such a signal says nothing
    /// about the rest of the band.
    pub(super) fn narrowband(&self) -> bool {
        self.narrowband
    }

    /// Account the newest far-end sample; `recent[k]` is `x(n − k)`,
    /// `k = 0..=ORDER`. Returns true when the predictor has been refreshed.
    #[inline]
    pub(super) fn observe(&mut self, recent: &[f32; ORDER + 1]) -> bool {
        let x0 = f64::from(recent[0]);
        for (acc, &xk) in self.period.iter_mut().zip(recent) {
            *acc += x0 * f64::from(xk);
        }
        self.count += 1;
        self.refresh(true)
    }

    /// Account a block of far-end samples at once, for [`Whitener::narrowband`]
    /// only (the predictor itself is not fitted): `x` holds [`ORDER`] older
    /// samples, then the block (at most [`PERIOD`] long).
    pub(super) fn observe_block(&mut self, x: &[f32], kernel: Kernel) {
        let Some(block) = x.get(ORDER..) else {
            return;
        };
        for (k, acc) in self.period.iter_mut().enumerate() {
            let lagged = &x[ORDER - k..x.len() - k];
            *acc += f64::from(dispatch_dot(kernel, block, lagged));
        }
        self.count += block.len() as u32;
        self.refresh(false);
    }

    /// At the end of a period, fold it into the smoothed autocorrelation,
    /// decide whether the far end is narrowband and (if `fit`) refit the
    /// predictor.
    fn refresh(&mut self, fit: bool) -> bool {
        if self.count < PERIOD {
            return false;
        }
        self.count = 0;
        for (s, p) in self.smoothed.iter_mut().zip(&mut self.period) {
            *s += (*p / f64::from(PERIOD) - *s) * SMOOTHING;
            *p = 0.0;
        }
        if self.smoothed[0] < MIN_POWER {
            return false;
        }
        self.narrowband = levinson_error(&self.smoothed) < NARROWBAND_ERROR;
        if !fit {
            return false;
        }
        if let Some(c) = levinson(&self.smoothed) {
            self.coefficients = c;
            return true;
        }
        false
    }
}

/// Prediction error power of the order-[`ORDER`] fit to the raw
/// autocorrelation `r` (no noise correction, no lag window), relative to
/// `r[0]`.
fn levinson_error(r: &[f64; ORDER + 1]) -> f64 {
    let mut a = [0.0f64; ORDER + 1];
    let mut error = r[0];
    for i in 1..=ORDER {
        let mut acc = r[i];
        for j in 1..i {
            acc -= a[j] * r[i - j];
        }
        let k = acc / error;
        if !k.is_finite() || k.abs() >= 1.0 {
            return 0.0;
        }
        let previous = a;
        a[i] = k;
        for j in 1..i {
            a[j] = previous[j] - k * previous[i - j];
        }
        error *= 1.0 - k * k;
    }
    error / r[0]
}

/// Predictor coefficients `c_1..c_ORDER` minimising the prediction error
/// for autocorrelation `r` (after lag window and noise correction), or
/// `None` if the recursion becomes unstable.
fn levinson(r: &[f64; ORDER + 1]) -> Option<[f32; ORDER]> {
    let mut rw = *r;
    rw[0] *= 1.0 + NOISE_CORRECTION;
    for (k, v) in rw.iter_mut().enumerate().skip(1) {
        let t = LAG_WINDOW_SIGMA * k as f64 * 2.0 * std::f64::consts::PI;
        *v *= (-0.5 * t * t).exp();
    }
    let mut a = [0.0f64; ORDER + 1];
    let mut error = rw[0];
    for i in 1..=ORDER {
        let mut acc = rw[i];
        for j in 1..i {
            acc -= a[j] * rw[i - j];
        }
        let k = acc / error;
        if !k.is_finite() || k.abs() >= 1.0 {
            return None;
        }
        let previous = a;
        a[i] = k;
        for j in 1..i {
            a[j] = previous[j] - k * previous[i - j];
        }
        error *= 1.0 - k * k;
    }
    let mut c = [0.0f32; ORDER];
    for (dst, src) in c.iter_mut().zip(&a[1..]) {
        *dst = *src as f32;
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_order_process_is_predicted() {
        // AR(1) with pole 0.9: r[k] = 0.9^k.
        let mut r = [0.0; ORDER + 1];
        for (k, v) in r.iter_mut().enumerate() {
            *v = 0.9f64.powi(k as i32);
        }
        let c = levinson(&r).unwrap_or([0.0; ORDER]);
        // Prediction error power, relative to r[0]: 1 − 0.9² = 0.19 at best;
        // noise correction and lag window give a little of that away.
        let a: Vec<f64> = std::iter::once(1.0)
            .chain(c.iter().map(|v| -f64::from(*v)))
            .collect();
        let error: f64 = (0..=ORDER)
            .flat_map(|i| (0..=ORDER).map(move |j| (i, j)))
            .map(|(i, j)| a[i] * a[j] * r[i.abs_diff(j)])
            .sum();
        assert!(error < 0.25, "{error} {c:?}");
        assert!(c[0] > 0.7, "{c:?}");
        assert!(levinson_error(&r) > 0.18);
    }

    #[test]
    fn a_tone_is_narrowband() {
        let mut w = Whitener::new();
        let x: Vec<f32> = (0..4000)
            .map(|n| 5000.0 * (n as f32 * 2.0 * std::f32::consts::PI * 1000.0 / 8000.0).sin())
            .collect();
        for n in ORDER..x.len() {
            let mut recent = [0.0f32; ORDER + 1];
            for (k, r) in recent.iter_mut().enumerate() {
                *r = x[n - k];
            }
            w.observe(&recent);
        }
        assert!(w.narrowband());
    }

    /// Block by block (the block canceller's way) the same autocorrelation
    /// is accumulated as sample by sample: a tone is narrowband, a tone
    /// pair too, noise is not.
    #[test]
    fn blocks_give_the_sample_by_sample_decision() {
        let kernel = crate::aec::nlms::detect_kernel();
        let tone = |f: &[f32]| -> Vec<f32> {
            (0..4000)
                .map(|n| {
                    f.iter()
                        .map(|f| {
                            5000.0 * (n as f32 * 2.0 * std::f32::consts::PI * f / 8000.0).sin()
                        })
                        .sum()
                })
                .collect()
        };
        let mut state = 7u32;
        let noise: Vec<f32> = (0..4000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 16) as i32 % 8001 - 4000) as f32
            })
            .collect();
        for (x, narrow) in [
            (tone(&[1000.0]), true),
            (tone(&[697.0, 1209.0]), true),
            (noise, false),
        ] {
            let mut by_sample = Whitener::new();
            for n in ORDER..x.len() {
                let mut recent = [0.0f32; ORDER + 1];
                for (k, r) in recent.iter_mut().enumerate() {
                    *r = x[n - k];
                }
                by_sample.observe(&recent);
            }
            let mut by_block = Whitener::new();
            let mut start = ORDER;
            while start + 64 <= x.len() {
                by_block.observe_block(&x[start - ORDER..start + 64], kernel);
                start += 64;
            }
            assert_eq!(by_sample.narrowband(), narrow);
            assert_eq!(by_block.narrowband(), narrow);
            for (a, b) in by_sample.smoothed.iter().zip(&by_block.smoothed) {
                assert!((a - b).abs() <= 1e-4 * by_sample.smoothed[0], "{a} vs {b}");
            }
        }
    }
}
