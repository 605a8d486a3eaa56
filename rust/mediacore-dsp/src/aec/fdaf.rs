//! The adaptive filter: a partitioned-block frequency-domain adaptive
//! filter (PBFDAF, also called the multidelay block filter, MDF), with the
//! first partition run in the time domain so that it adds no delay.
//!
//! The echo path estimate `ŷ(n) = Σ_k h_k x(n − k)`, `k < taps`, is cut
//! into `P = taps / B` partitions of [`BLOCK`] `= B = 64` taps; partition
//! `p` covers the delays `pB..(p + 1)B`. Time is cut into blocks of `B`
//! samples, numbered `b`. With `X_b = FFT(x over blocks b − 1 and b)` (size
//! `2B`, overlap-save) and `W_p = FFT(h_p followed by B zeros)`, the echo
//! estimate over block `b` is the second half of `IFFT(Σ_p W_p · X_{b−p})`.
//!
//! Adding no delay: partitions `p ≥ 1` only need far-end blocks up to
//! `b − 1`, so their share of block `b`'s estimate (`past`) is computed when
//! block `b − 1` ends, before any sample of block `b` is seen. Partition 0,
//! the 64 newest taps, is applied sample by sample in the time domain
//! (one 64-tap dot product per sample). Every output sample is therefore
//! produced as soon as its far-end and near-end samples are there, whatever
//! the caller's frame size; only the adaptation waits for the block to end.
//!
//! Adaptation, once per block (normalised frequency-domain LMS): with
//! `E = FFT(B zeros, then the block's adaptation errors)` and, per
//! frequency bin `k`, `S_k = Σ_{p<P} |X_{b−p,k}|²` (the far end's energy in
//! that bin over the tail, the frequency-domain counterpart of NLMS's
//! `‖x‖²`), the gradient of partition `p` is `conj(X_{b−p}) · G` with
//! `G_k = 2μ_k E_k / (S_k + δ_k)` (`S_k` bounded below as described at
//! [`Fdaf::normaliser`]; the step `μ_k` of each bin from [`Step`]). The
//! per-bin normalisation whitens the far end the way the time-domain
//! canceller's LPC pre-whitening did: every band converges at about the
//! same rate whatever the speech spectrum. The factor 2 (`FFT size / B`)
//! makes `μ` the same step as the time-domain NLMS's: for a white far end,
//! one block does what `B` NLMS updates at step `μ` would.
//!
//! Gradient constraint: the exact update keeps only the first `B` lags of
//! `IFFT(conj(X)·G)` (the rest would be a circular wrap-around of the
//! correlation). That costs two FFTs per partition per block, so (as in
//! Speex's MDF, "alternately unconstrained") the partitions `p ≥ 1` are
//! updated unconstrained in the frequency domain and one of them per block,
//! in turn, is brought back to `B` taps (`IFFT`, zero the second half,
//! `FFT`); partition 0, whose taps the time-domain dot product needs, gets
//! the exact constrained update every block. Each constraint also records
//! the partition's largest tap, for the bulk delay estimate.
//!
//! Cost per block of 64 samples: 6 real FFTs of 128 points (far end, error,
//! partition 0's gradient, one constraint's two, the next block's estimate),
//! about `3P` complex multiply-adds per bin, and the 64-tap dot product per
//! sample; against `3 × taps` multiply-adds per sample for the time-domain
//! filter. No allocation after [`Fdaf::new`].

use std::sync::{Arc, OnceLock};

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::nlms::{detect_kernel, mac, Kernel};

/// Block length and partition length, samples (8 ms): the tails are
/// multiples of it (8 ms steps).
pub(super) const BLOCK: usize = 64;
/// FFT size (overlap-save over two blocks).
const SIZE: usize = 2 * BLOCK;
/// Frequency bins of a real FFT of `SIZE` points.
const BINS: usize = BLOCK + 1;
/// Bins stored per spectrum: `BINS` rounded up to a multiple of 8 (AVX
/// width), the padding kept at zero.
const STRIDE: usize = 72;
/// Samples of history kept for the replay checks (two blocks).
pub(super) const REPLAY: usize = 2 * BLOCK;
/// Floor of the per-bin normalisation relative to the far end's mean
/// energy per bin (−15 dB).
const NORM_FLOOR: f32 = 0.03;
/// Smoothing of the per-bin error power for the variable step, per
/// adapting block.
const ERROR_SPECTRUM_ALPHA: f32 = 0.25;
/// Free space at the end of the history buffers: a compaction (memmove of
/// `taps + REPLAY` floats) happens once per this many samples.
const SLACK: usize = 512;

/// Step-size control for one block (see [`Fdaf::end_block`]).
#[derive(Clone, Copy)]
pub(super) struct Step {
    /// Upper bound of every bin's step.
    pub cap: f32,
    /// Per-bin variable step: `base × (1 − √(noise_k / error_k))` within
    /// `min..=cap`; off (every bin at `cap`) while converging.
    pub variable: bool,
    pub base: f32,
    pub min: f32,
    /// Background noise power of the residual, i16² per sample (taken as
    /// white).
    pub noise: f32,
}

struct Plans {
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

/// The FFT plans, shared by every canceller (they are immutable).
fn plans() -> &'static Plans {
    static PLANS: OnceLock<Plans> = OnceLock::new();
    PLANS.get_or_init(|| {
        let mut planner = RealFftPlanner::<f32>::new();
        Plans {
            forward: planner.plan_fft_forward(SIZE),
            inverse: planner.plan_fft_inverse(SIZE),
        }
    })
}

/// Spectra in split layout (real parts, imaginary parts), `STRIDE` bins
/// each, so that the per-bin loops vectorise.
#[derive(Clone)]
struct Spectra {
    re: Vec<f32>,
    im: Vec<f32>,
}

impl Spectra {
    fn new(count: usize) -> Self {
        Spectra {
            re: vec![0.0; count * STRIDE],
            im: vec![0.0; count * STRIDE],
        }
    }

    fn slot(&self, i: usize) -> (&[f32], &[f32]) {
        let r = i * STRIDE..(i + 1) * STRIDE;
        (&self.re[r.clone()], &self.im[r])
    }

    fn slot_mut(&mut self, i: usize) -> (&mut [f32], &mut [f32]) {
        let r = i * STRIDE..(i + 1) * STRIDE;
        (&mut self.re[r.clone()], &mut self.im[r])
    }

    fn fill(&mut self, v: f32) {
        self.re.fill(v);
        self.im.fill(v);
    }

    fn copy_from(&mut self, other: &Spectra) {
        self.re.copy_from_slice(&other.re);
        self.im.copy_from_slice(&other.im);
    }
}

/// Largest tap of a partition at its last constraint: magnitude, and delay
/// in samples from the start of the tail.
#[derive(Clone, Copy, Default)]
struct Peak {
    magnitude: f32,
    delay: usize,
}

pub(super) struct Fdaf {
    partitions: usize,
    taps: usize,
    /// Partition 0 in the time domain, in window order: `head[j]`
    /// multiplies `x(n − (BLOCK − 1 − j))`.
    head: [f32; BLOCK],
    saved_head: [f32; BLOCK],
    /// Partitions `1..P` (slot `p − 1`), frequency domain.
    w: Spectra,
    /// Last filter judged good (divergence guard and double-talk recovery).
    saved_w: Spectra,
    peaks: Vec<Peak>,
    saved_peaks: Vec<Peak>,
    /// Far-end spectra of the last `P + 1` blocks, a ring; `newest` is the
    /// slot of the last completed block.
    x: Spectra,
    newest: usize,
    /// `S_k + δ` of the last completed block.
    norm: [f32; STRIDE],
    /// Smoothed `|E_k|²` over adapting blocks.
    error_spectrum: [f32; STRIDE],
    /// Per-bin regularisation `δ`.
    regularisation: f32,
    /// Share of the current block's echo estimate from partitions `1..P`.
    past: [f32; BLOCK],
    /// Adaptation errors of the current block (0 where not adapting).
    error: [f32; BLOCK],
    adapting: bool,
    /// Samples of the current block seen so far.
    pos: usize,
    /// Next partition (`1..P`) to constrain.
    rotation: usize,
    /// Far-end and near-end history, linear, oldest first; `end` is one
    /// past the newest sample.
    far: Vec<f32>,
    near: Vec<f32>,
    end: usize,
    /// `‖x‖²` over the last `taps` samples, exact (integer squares of i16).
    energy: i64,
    // FFT work areas.
    time: Vec<f32>,
    spec: Vec<Complex<f32>>,
    scratch_forward: Vec<Complex<f32>>,
    scratch_inverse: Vec<Complex<f32>>,
    gain: Spectra,
    acc: Spectra,
    kernel: Kernel,
}

impl Fdaf {
    /// A filter of `taps` (a multiple of [`BLOCK`], at least one block)
    /// with per-bin regularisation equivalent to a far end of
    /// `regularisation_power` (i16²) in every bin.
    pub(super) fn new(taps: usize, regularisation_power: f32) -> Self {
        let partitions = (taps / BLOCK).max(1);
        let taps = partitions * BLOCK;
        let p = plans();
        let keep = taps + REPLAY;
        Fdaf {
            partitions,
            taps,
            head: [0.0; BLOCK],
            saved_head: [0.0; BLOCK],
            w: Spectra::new(partitions - 1),
            saved_w: Spectra::new(partitions - 1),
            peaks: vec![Peak::default(); partitions - 1],
            saved_peaks: vec![Peak::default(); partitions - 1],
            x: Spectra::new(partitions + 1),
            newest: 0,
            norm: [0.0; STRIDE],
            error_spectrum: [0.0; STRIDE],
            regularisation: (partitions * SIZE) as f32 * regularisation_power,
            past: [0.0; BLOCK],
            error: [0.0; BLOCK],
            adapting: false,
            pos: 0,
            rotation: 1,
            far: vec![0.0; keep + SLACK],
            near: vec![0.0; keep + SLACK],
            end: keep,
            energy: 0,
            time: vec![0.0; SIZE],
            spec: vec![Complex::default(); BINS],
            scratch_forward: p.forward.make_scratch_vec(),
            scratch_inverse: p.inverse.make_scratch_vec(),
            gain: Spectra::new(1),
            acc: Spectra::new(1),
            kernel: detect_kernel(),
        }
    }

    pub(super) fn reset(&mut self) {
        self.clear_taps();
        self.saved_head.fill(0.0);
        self.saved_w.fill(0.0);
        self.saved_peaks.fill(Peak::default());
        self.x.fill(0.0);
        self.newest = 0;
        self.norm.fill(0.0);
        self.error_spectrum.fill(0.0);
        self.past.fill(0.0);
        self.error.fill(0.0);
        self.adapting = false;
        self.pos = 0;
        self.rotation = 1;
        self.far.fill(0.0);
        self.near.fill(0.0);
        self.end = self.taps + REPLAY;
        self.energy = 0;
    }

    /// Append one far-end/near-end sample pair.
    #[inline]
    pub(super) fn push(&mut self, far: i16, near: i16) {
        if self.end == self.far.len() {
            self.compact();
        }
        let end = self.end;
        let leaving = self.far[end - self.taps] as i64;
        self.far[end] = f32::from(far);
        self.near[end] = f32::from(near);
        self.end += 1;
        self.pos += 1;
        self.energy += i64::from(far) * i64::from(far) - leaving * leaving;
    }

    fn compact(&mut self) {
        let keep = self.taps + REPLAY;
        let from = self.end - keep;
        self.far.copy_within(from..self.end, 0);
        self.near.copy_within(from..self.end, 0);
        self.end = keep;
    }

    /// The SIMD kernel chosen for this CPU.
    pub(super) fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// `‖x‖²` over the tail.
    #[inline]
    pub(super) fn energy(&self) -> f32 {
        self.energy as f32
    }

    /// Echo estimate for the newest sample.
    #[inline]
    pub(super) fn estimate(&self) -> f32 {
        let window = &self.far[self.end - BLOCK..self.end];
        self.past[self.pos - 1] + head_dot(self.kernel, &self.head, window)
    }

    /// The newest sample takes part in the adaptation with error `e`.
    #[inline]
    pub(super) fn adapt_sample(&mut self, e: f32) {
        self.error[self.pos - 1] = e;
        self.adapting = true;
    }

    /// The current block is complete: [`Fdaf::end_block`] is due.
    #[inline]
    pub(super) fn block_complete(&self) -> bool {
        self.pos == BLOCK
    }

    /// Some sample of the current block adapts.
    #[inline]
    pub(super) fn adapting(&self) -> bool {
        self.adapting
    }

    /// The far end of the block just completed, preceded by `history`
    /// older samples.
    pub(super) fn last_block(&self, history: usize) -> &[f32] {
        &self.far[self.end - BLOCK - history..self.end]
    }

    /// Close the block: take its far-end spectrum, adapt under `step` if
    /// given and any sample adapted, and prepare the next block's estimate
    /// (or zero it if `estimate_next` is false: the far end is quiet).
    pub(super) fn end_block(&mut self, step: Option<Step>, estimate_next: bool) {
        let ring = self.partitions + 1;
        self.newest = (self.newest + 1) % ring;
        self.time
            .copy_from_slice(&self.far[self.end - SIZE..self.end]);
        self.forward();
        let newest = self.newest;
        store(&self.spec, self.x.slot_mut(newest));
        self.normaliser();

        if let (true, Some(step)) = (self.adapting, step) {
            self.adapt(step);
        }
        self.error.fill(0.0);
        self.adapting = false;
        self.pos = 0;

        if estimate_next && self.partitions > 1 {
            self.next_past();
        } else {
            self.past.fill(0.0);
        }
    }

    /// The share of partitions `1..P` in the next block's estimate.
    fn next_past(&mut self) {
        self.past_estimate(0, false);
        let (re, im) = self.acc.slot(0);
        load(re, im, &mut self.spec);
        self.inverse();
        for (p, t) in self.past.iter_mut().zip(&self.time[BLOCK..]) {
            *p = t / SIZE as f32;
        }
    }

    /// `norm_k = S_k + δ_k`, `S_k = Σ_{p<P} |X_{b−p,k}|²`, raised to its
    /// average with the neighbouring bins where that is higher (the
    /// rectangular window leaves narrow gaps between the harmonics of a
    /// voice, where a full step would only adapt on leakage), and
    /// `δ_k = max(δ, NORM_FLOOR × mean_k S_k)`: a band more than 15 dB
    /// under the far end's mean level adapts more slowly than the others
    /// (the time-domain canceller's whitening was bounded the same way).
    fn normaliser(&mut self) {
        let ring = self.partitions + 1;
        let mut s = [0.0f32; STRIDE];
        for p in 0..self.partitions {
            let (re, im) = self.x.slot((self.newest + ring - p) % ring);
            accumulate_power(self.kernel, &mut s, re, im);
        }
        let mean = s[..BINS].iter().sum::<f32>() / BINS as f32;
        let floor = self.regularisation.max(NORM_FLOOR * mean);
        for k in 0..BINS {
            let below = s[k.saturating_sub(1)];
            let above = s[(k + 1).min(BINS - 1)];
            let smoothed = 0.25 * below + 0.5 * s[k] + 0.25 * above;
            self.norm[k] = s[k].max(smoothed) + floor;
        }
    }

    fn adapt(&mut self, step: Step) {
        let ring = self.partitions + 1;
        // E, then G = 2μ_k E / (S + δ).
        self.time[..BLOCK].fill(0.0);
        self.time[BLOCK..].copy_from_slice(&self.error);
        self.forward();
        {
            // White noise of power σ² gives E|E_k|² = B σ².
            let noise = BLOCK as f32 * step.noise;
            let (g_re, g_im) = self.gain.slot_mut(0);
            for (k, e) in self.spec.iter().enumerate() {
                let power = e.re * e.re + e.im * e.im;
                let smoothed = &mut self.error_spectrum[k];
                *smoothed += (power - *smoothed) * ERROR_SPECTRUM_ALPHA;
                let mu = if step.variable {
                    let above = 1.0 - (noise / smoothed.max(1e-3)).sqrt();
                    (step.base * above).clamp(step.min, step.cap)
                } else {
                    step.cap
                };
                let s = 2.0 * mu / self.norm[k];
                g_re[k] = e.re * s;
                g_im[k] = e.im * s;
            }
        }
        // Partition 0, constrained: the first B lags of IFFT(conj(X_b)·G).
        {
            let (x_re, x_im) = self.x.slot(self.newest);
            let (g_re, g_im) = self.gain.slot(0);
            for (k, s) in self.spec.iter_mut().enumerate() {
                *s = Complex::new(
                    x_re[k] * g_re[k] + x_im[k] * g_im[k],
                    x_re[k] * g_im[k] - x_im[k] * g_re[k],
                );
            }
        }
        self.inverse();
        let scale = 1.0 / SIZE as f32;
        for (d, g) in self.time[..BLOCK].iter().enumerate() {
            self.head[BLOCK - 1 - d] += g * scale;
        }
        // Partitions 1.., unconstrained.
        for p in 1..self.partitions {
            let x = self.x.slot((self.newest + ring - p) % ring);
            complex_mac::<true>(self.kernel, self.w.slot_mut(p - 1), x, self.gain.slot(0));
        }
        if self.partitions > 1 {
            self.constrain(self.rotation);
            self.rotation = if self.rotation + 1 < self.partitions {
                self.rotation + 1
            } else {
                1
            };
        }
    }

    /// Bring partition `p ≥ 1` back to `B` taps and note its largest tap.
    fn constrain(&mut self, p: usize) {
        let (re, im) = self.w.slot(p - 1);
        load(re, im, &mut self.spec);
        self.inverse();
        let scale = 1.0 / SIZE as f32;
        let mut peak = Peak::default();
        for (d, t) in self.time[..BLOCK].iter_mut().enumerate().rev() {
            *t *= scale;
            if t.abs() > peak.magnitude {
                peak = Peak {
                    magnitude: t.abs(),
                    delay: p * BLOCK + d,
                };
            }
        }
        self.time[BLOCK..].fill(0.0);
        self.peaks[p - 1] = peak;
        self.forward();
        store(&self.spec, self.w.slot_mut(p - 1));
    }

    /// `acc = Σ_{p=1}^{P−1} W_p · X_{newest − lag − p + 1}` with the live
    /// or the saved filter: the share of partitions `1..P` in the estimate
    /// of the block `lag − 1` blocks before the newest one (`lag = 0`: the
    /// next block).
    fn past_estimate(&mut self, lag: usize, saved: bool) {
        let ring = self.partitions + 1;
        let w = if saved { &self.saved_w } else { &self.w };
        self.acc.fill(0.0);
        for p in 1..self.partitions {
            let x = self.x.slot((self.newest + 2 * ring - lag - p + 1) % ring);
            complex_mac::<false>(self.kernel, self.acc.slot_mut(0), w.slot(p - 1), x);
        }
    }

    fn forward(&mut self) {
        let p = plans();
        if p.forward
            .process_with_scratch(&mut self.time, &mut self.spec, &mut self.scratch_forward)
            .is_err()
        {
            // Cannot happen (the buffers have the plan's sizes).
            self.spec.fill(Complex::default());
        }
    }

    fn inverse(&mut self) {
        // A real signal's spectrum has real DC and Nyquist bins.
        if let Some(first) = self.spec.first_mut() {
            first.im = 0.0;
        }
        if let Some(last) = self.spec.last_mut() {
            last.im = 0.0;
        }
        let p = plans();
        if p.inverse
            .process_with_scratch(&mut self.spec, &mut self.time, &mut self.scratch_inverse)
            .is_err()
        {
            self.time.fill(0.0);
        }
    }

    /// Error power of the live and of the saved filter over the last
    /// [`REPLAY`] samples (the two blocks just completed), plus the near-end
    /// power there: `(Σe_live², Σe_saved², Σd²)`. Call at a block boundary.
    pub(super) fn replay_error(&mut self) -> (f32, f32, f32) {
        let mut sums = [0.0f32; 2];
        let mut near = 0.0f32;
        for (i, saved) in [false, true].into_iter().enumerate() {
            // Block `newest − back`, back = 1 then 0.
            for back in [1usize, 0] {
                let past = if self.partitions > 1 {
                    self.past_estimate(back + 1, saved);
                    let (re, im) = self.acc.slot(0);
                    load(re, im, &mut self.spec);
                    self.inverse();
                    true
                } else {
                    false
                };
                let head = if saved { &self.saved_head } else { &self.head };
                let start = self.end - (back + 1) * BLOCK;
                for j in 0..BLOCK {
                    let n = start + j;
                    let mut y = head_dot(self.kernel, head, &self.far[n + 1 - BLOCK..=n]);
                    if past {
                        y += self.time[BLOCK + j] / SIZE as f32;
                    }
                    let d = self.near[n];
                    let e = d - y;
                    sums[i] += e * e;
                    if !saved {
                        near += d * d;
                    }
                }
            }
        }
        (sums[0], sums[1], near)
    }

    /// Far-end energy over the last [`REPLAY`] samples.
    pub(super) fn replay_far_energy(&self) -> f32 {
        self.far[self.end - REPLAY..self.end]
            .iter()
            .map(|v| v * v)
            .sum()
    }

    pub(super) fn save(&mut self) {
        self.saved_head = self.head;
        self.saved_w.copy_from(&self.w);
        self.saved_peaks.copy_from_slice(&self.peaks);
    }

    /// Back to the saved filter. At a block boundary, the next block's
    /// estimate is redone with it.
    pub(super) fn revert(&mut self) {
        self.head = self.saved_head;
        self.w.copy_from(&self.saved_w);
        self.peaks.copy_from_slice(&self.saved_peaks);
        if self.pos == 0 && self.past.iter().any(|v| *v != 0.0) {
            self.next_past();
        } else {
            self.past.fill(0.0);
        }
    }

    pub(super) fn clear_taps(&mut self) {
        self.head.fill(0.0);
        self.w.fill(0.0);
        self.peaks.fill(Peak::default());
        self.past.fill(0.0);
    }

    /// Delay of the largest tap, samples (0 = no delay; with no taps at all,
    /// the end of the tail). Partitions `1..P` are as at their last
    /// constraint (at most `P − 1` blocks ago while adapting).
    pub(super) fn peak_delay(&self) -> usize {
        let mut best = Peak {
            magnitude: 0.0,
            delay: self.taps - 1,
        };
        for peak in self.peaks.iter().rev() {
            if peak.magnitude > best.magnitude {
                best = *peak;
            }
        }
        for (j, v) in self.head.iter().enumerate() {
            if v.abs() > best.magnitude {
                best = Peak {
                    magnitude: v.abs(),
                    delay: BLOCK - 1 - j,
                };
            }
        }
        best.delay
    }

    /// The filter's taps in delay order (tests: compare with a known path).
    #[cfg(test)]
    pub(super) fn impulse_response(&mut self) -> Vec<f32> {
        let mut h = vec![0.0; self.taps];
        for (d, v) in h.iter_mut().take(BLOCK).enumerate() {
            *v = self.head[BLOCK - 1 - d];
        }
        for p in 1..self.partitions {
            let (re, im) = self.w.slot(p - 1);
            load(re, im, &mut self.spec);
            self.inverse();
            for (d, v) in h[p * BLOCK..(p + 1) * BLOCK].iter_mut().enumerate() {
                *v = self.time[d] / SIZE as f32;
            }
        }
        h
    }
}

/// Spectrum (`BINS` complex values) into a split slot (padding untouched).
fn store(spec: &[Complex<f32>], (re, im): (&mut [f32], &mut [f32])) {
    for ((s, r), i) in spec.iter().zip(re.iter_mut()).zip(im.iter_mut()) {
        *r = s.re;
        *i = s.im;
    }
}

/// Split slot into a spectrum of `BINS` complex values.
fn load(re: &[f32], im: &[f32], spec: &mut [Complex<f32>]) {
    for ((s, r), i) in spec.iter_mut().zip(re).zip(im) {
        *s = Complex::new(*r, *i);
    }
}

/// `head · window` for one output sample: 64 multiply-adds in
/// [`HEAD_LANES`] partial sums (two AVX registers), so the final reduction
/// stays short.
#[inline]
fn head_dot(kernel: Kernel, head: &[f32; BLOCK], window: &[f32]) -> f32 {
    match kernel {
        Kernel::Generic => head_dot_kernel::<false>(head, window),
        // SAFETY: as in `accumulate_power`.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { head_dot_avx2(head, window) },
    }
}

/// Partial sums of [`head_dot`].
const HEAD_LANES: usize = 16;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn head_dot_avx2(head: &[f32; BLOCK], window: &[f32]) -> f32 {
    head_dot_kernel::<true>(head, window)
}

#[inline(always)]
fn head_dot_kernel<const FMA: bool>(head: &[f32; BLOCK], window: &[f32]) -> f32 {
    let Some(window) = window.get(..BLOCK) else {
        return 0.0;
    };
    let mut acc = [0.0f32; HEAD_LANES];
    for (h, x) in head
        .chunks_exact(HEAD_LANES)
        .zip(window.chunks_exact(HEAD_LANES))
    {
        for k in 0..HEAD_LANES {
            acc[k] = mac::<FMA>(acc[k], h[k], x[k]);
        }
    }
    let mut half = [0.0f32; HEAD_LANES / 2];
    for (k, v) in half.iter_mut().enumerate() {
        *v = acc[k] + acc[k + HEAD_LANES / 2];
    }
    half.iter().sum()
}

#[inline]
fn accumulate_power(kernel: Kernel, acc: &mut [f32; STRIDE], re: &[f32], im: &[f32]) {
    match kernel {
        Kernel::Generic => power_kernel::<false>(acc, re, im),
        // SAFETY: `Avx2Fma` is only selected after runtime detection of
        // both features on this CPU.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { power_avx2(acc, re, im) },
    }
}

/// Split-layout spectra: real parts, imaginary parts.
type Split<'a> = (&'a [f32], &'a [f32]);
type SplitMut<'a> = (&'a mut [f32], &'a mut [f32]);

/// `acc += a·b`, or with `CONJ` `acc += conj(a)·b`, bin by bin.
#[inline]
fn complex_mac<const CONJ: bool>(kernel: Kernel, acc: SplitMut, a: Split, b: Split) {
    match kernel {
        Kernel::Generic => complex_mac_kernel::<false, CONJ>(acc, a, b),
        // SAFETY: as in `accumulate_power`.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { complex_mac_avx2::<CONJ>(acc, a, b) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn power_avx2(acc: &mut [f32; STRIDE], re: &[f32], im: &[f32]) {
    power_kernel::<true>(acc, re, im)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn complex_mac_avx2<const CONJ: bool>(acc: SplitMut, a: Split, b: Split) {
    complex_mac_kernel::<true, CONJ>(acc, a, b)
}

/// `acc += re² + im²`.
#[inline(always)]
fn power_kernel<const FMA: bool>(acc: &mut [f32; STRIDE], re: &[f32], im: &[f32]) {
    for ((a, r), i) in acc.iter_mut().zip(re).zip(im) {
        *a = mac::<FMA>(mac::<FMA>(*a, *r, *r), *i, *i);
    }
}

/// [`complex_mac`]: `acc += a·b`, or `conj(a)·b`, over the first
/// `STRIDE` bins (or fewer, if a slice is shorter).
#[inline(always)]
fn complex_mac_kernel<const FMA: bool, const CONJ: bool>(
    (acc_re, acc_im): SplitMut,
    (a_re, a_im): Split,
    (b_re, b_im): Split,
) {
    let n = STRIDE
        .min(acc_re.len())
        .min(acc_im.len())
        .min(a_re.len())
        .min(a_im.len())
        .min(b_re.len())
        .min(b_im.len());
    let (acc_re, acc_im, a_re, a_im, b_re, b_im) = (
        &mut acc_re[..n],
        &mut acc_im[..n],
        &a_re[..n],
        &a_im[..n],
        &b_re[..n],
        &b_im[..n],
    );
    for k in 0..n {
        // Conjugating `a` flips the sign of its imaginary part.
        let ai = if CONJ { a_im[k] } else { -a_im[k] };
        acc_re[k] = mac::<FMA>(mac::<FMA>(acc_re[k], a_re[k], b_re[k]), ai, b_im[k]);
        acc_im[k] = mac::<FMA>(mac::<FMA>(acc_im[k], a_re[k], b_im[k]), -ai, b_re[k]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn noise(len: usize, seed: u32) -> Vec<i16> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 16) as i32 % 8001 - 4000) as i16
            })
            .collect()
    }

    /// The block filter's estimate is exactly the linear convolution with
    /// its taps (no delay, no circular wrap-around) once every partition is
    /// constrained, and its adaptation finds a sparse path spread over all
    /// partitions.
    #[test]
    fn estimate_is_the_linear_convolution_and_adaptation_finds_the_path() {
        let taps = 4 * BLOCK;
        let mut path = vec![0.0f32; taps];
        path[3] = 0.5;
        path[70] = -0.3;
        path[150] = 0.2;
        path[255] = 0.1;
        let x = noise(40 * BLOCK * 8, 3);
        let d: Vec<i16> = (0..x.len())
            .map(|n| {
                let y: f32 = (0..taps)
                    .filter(|k| *k <= n)
                    .map(|k| path[k] * f32::from(x[n - k]))
                    .sum();
                y.round() as i16
            })
            .collect();
        let mut f = Fdaf::new(taps, 1.0);
        let mut worst_late = 0.0f32;
        for n in 0..x.len() {
            f.push(x[n], d[n]);
            let e = f32::from(d[n]) - f.estimate();
            if n > x.len() / 2 {
                worst_late = worst_late.max(e.abs());
            }
            f.adapt_sample(e);
            if f.block_complete() {
                f.end_block(
                    Some(Step {
                        cap: 0.5,
                        variable: false,
                        base: 0.5,
                        min: 0.5,
                        noise: 0.0,
                    }),
                    true,
                );
            }
        }
        // Converged to within rounding of the i16 echo.
        assert!(worst_late < 2.0, "{worst_late}");
        let h = f.impulse_response();
        for (k, (a, b)) in h.iter().zip(&path).enumerate() {
            assert!((a - b).abs() < 2e-3, "tap {k}: {a} vs {b}");
        }
        assert_eq!(f.peak_delay(), 3);

        // Replay: the live filter's error over the last two blocks is what
        // it produced there (frozen), and the saved one's is the near end's
        // power while it is still empty.
        let mut produced = 0.0f32;
        let mut near_power = 0.0f32;
        for n in 0..2 * BLOCK {
            f.push(x[n], d[n]);
            let e = f32::from(d[n]) - f.estimate();
            produced += e * e;
            near_power += f32::from(d[n]).powi(2);
            if f.block_complete() {
                f.end_block(None, true);
            }
        }
        let (live, saved, near) = f.replay_error();
        assert!(
            (live - produced).abs() <= 1e-3 * near,
            "{live} vs {produced}"
        );
        assert!(
            (saved - near_power).abs() <= 1e-3 * near_power,
            "{saved} vs {near_power}"
        );
        assert!(
            (near - near_power).abs() <= 1e-3 * near_power,
            "{near} vs {near_power}"
        );
        f.save();
        let (live, saved, _) = f.replay_error();
        assert_eq!(live, saved);

        // Frozen (no adaptation): the estimate is the convolution with `h`.
        for p in 1..f.partitions {
            f.constrain(p);
        }
        let h = f.impulse_response();
        let mut history: Vec<i16> = Vec::new();
        for n in 0..3 * BLOCK + 17 {
            let s = x[n];
            history.push(s);
            f.push(s, 0);
            let y = f.estimate();
            let expected: f32 = (0..taps)
                .filter(|k| *k < history.len())
                .map(|k| h[k] * f32::from(history[history.len() - 1 - k]))
                .sum::<f32>()
                + {
                    // Samples before `history`: the first 2 blocks of `x`,
                    // before them the end of `x`.
                    (history.len()..taps)
                        .map(|k| {
                            let back = k - history.len();
                            let s = if back < 2 * BLOCK {
                                x[2 * BLOCK - 1 - back]
                            } else {
                                x[x.len() - 1 - (back - 2 * BLOCK)]
                            };
                            h[k] * f32::from(s)
                        })
                        .sum::<f32>()
                };
            // f32 FFT rounding: far below the output's i16 step.
            assert!((y - expected).abs() < 0.5, "sample {n}: {y} vs {expected}");
            if f.block_complete() {
                f.end_block(None, true);
            }
        }
    }
}
