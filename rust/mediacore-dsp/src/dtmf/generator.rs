//! DTMF tone-pair generator.
//!
//! The waveform is a pure function of the sample index `n` since the
//! tone began: `A·(sin(ω_row·n) + sin(ω_col·n))`. Each [`DtmfGenerator::fill`]
//! call computes the two phases at its first sample exactly (f64
//! `sin_cos` of `ω·n`) and advances them sample by sample with a complex
//! rotation, so the tone is phase-continuous across calls of any size and
//! its frequencies are exact; the rotation's rounding error over one call
//! (≈ 1e−16 per sample) never reaches the 16-bit output.
//!
//! Both tones have the same level (twist 0 dB) and start at phase 0; there
//! is no on/off ramp. At 0 dBm0 per tone the pair's peak (2 × 22 827)
//! exceeds the 16-bit range and is clipped, as a G.711 encoder would.

use super::{tone_pair, DBM0_PEAK, SAMPLE_RATE_HZ};

/// Highest level accepted, dBm0 per tone.
pub const MAX_LEVEL_DBM0: f32 = 0.0;

/// One digit's tone pair for a fixed duration.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    digit: char,
    /// Peak amplitude of each tone, 16-bit units.
    amplitude: f64,
    /// Angular frequencies, rad/sample.
    omega: [f64; 2],
    /// e^{jω}, per tone.
    step: [(f64, f64); 2],
    /// Samples written so far.
    written: u64,
    duration: u64,
}

impl DtmfGenerator {
    /// A generator for `digit` (a key of [`super::DIGITS`], any case) at
    /// `level_dbm0` per tone (e.g. −10.0; RFC 4733's volume is −dBm0)
    /// lasting `duration_samples`. `None` for an unknown digit or a level
    /// that is not finite or above [`MAX_LEVEL_DBM0`].
    pub fn new(digit: char, level_dbm0: f32, duration_samples: u64) -> Option<Self> {
        let (low, high) = tone_pair(digit)?;
        if !level_dbm0.is_finite() || level_dbm0 > MAX_LEVEL_DBM0 {
            return None;
        }
        let amplitude = f64::from(DBM0_PEAK) * 10f64.powf(f64::from(level_dbm0) / 20.0);
        let omega =
            [low, high].map(|f| std::f64::consts::TAU * f64::from(f) / f64::from(SAMPLE_RATE_HZ));
        Some(DtmfGenerator {
            digit: digit.to_ascii_uppercase(),
            amplitude,
            omega,
            step: omega.map(|w| (w.cos(), w.sin())),
            written: 0,
            duration: duration_samples,
        })
    }

    pub fn digit(&self) -> char {
        self.digit
    }

    /// Samples still to be written.
    pub fn remaining(&self) -> u64 {
        self.duration.saturating_sub(self.written)
    }

    pub fn is_done(&self) -> bool {
        self.remaining() == 0
    }

    /// Moves to sample `n` since the tone began (clamped to its duration). The waveform is a
    /// function of that index, so a tone can be written in pieces at arbitrary positions
    /// (e.g. into relayed packets whose timestamps say where they fall in the digit).
    pub fn seek(&mut self, n: u64) {
        self.written = n.min(self.duration);
    }

    /// Writes (overwrites) up to `out.len()` samples of the tone; returns
    /// the samples written, 0 when finished.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let count = usize::try_from(self.remaining()).map_or(out.len(), |r| r.min(out.len()));
        // Exact phases at the first sample of this call; ω·n loses no
        // precision worth a 16-bit sample for tones of up to days.
        let n = self.written as f64;
        let mut phasor = self.omega.map(|w| {
            let (sin, cos) = (w * n).sin_cos();
            (cos, sin)
        });
        for sample in out.iter_mut().take(count) {
            let value = self.amplitude * (phasor[0].1 + phasor[1].1);
            *sample = value
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
            for (p, &(c, s)) in phasor.iter_mut().zip(&self.step) {
                *p = (p.0 * c - p.1 * s, p.0 * s + p.1 * c);
            }
        }
        self.written += count as u64;
        count
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
