//! The adaptive transversal filter: normalised LMS over the far-end history.
//!
//! The filter models the echo path as `ŷ(n) = Σ_k w_k · x(n − k)`,
//! `k = 0..taps`, and after each sample moves the taps along the whitened
//! far-end vector `A·x` (see [`super::whiten`]) by
//! `g = μ · e_w(n) / (‖A·x‖² + δ)`, `e_w = A·d − w·(A·x)`: the NLMS
//! update, whose step is independent of the far-end level.
//!
//! Layout, chosen so that the inner loop (the previous sample's update
//! fused with this sample's two dot products) is plain zipped slices with
//! no wrap-around and vectorises:
//! - the far-end history (and its whitened copy) is one linear `f32`
//!   buffer in time order; the
//!   window of sample `t` is `hist[t + 1 − taps ..= t]`. When the buffer is
//!   full, the last `taps + REPLAY − 1` samples are moved to the front
//!   (one `copy_within` every [`SLACK`] samples);
//! - the taps are stored in the same order as the window, so `w[j]`
//!   multiplies `x(n − (taps − 1 − j))`: the newest sample meets the last tap;
//! - the near-end history rides beside the far-end one, so that a saved
//!   filter can be compared with the live one on the same recent samples
//!   ([`Nlms::replay_error`]).
//!
//! The kernels are compiled twice: generic (SSE2 on x86-64) and, when the
//! CPU has them, with AVX2 + FMA enabled. The choice is made once in
//! [`Nlms::new`] (tests can force it per thread with `with_kernel`, so
//! that every kernel the CPU runs is checked, see `tests/golden.rs`).

use super::whiten::{Whitener, ORDER};

/// Samples of near/far history kept beyond the tail for replay checks.
pub(super) const REPLAY: usize = 128;
/// Free space at the end of the history buffer: a compaction (memmove of
/// `taps + REPLAY` floats) happens once per this many samples.
const SLACK: usize = 512;
/// Lanes of the dot-product accumulator: independent partial sums so the
/// additions can be reordered into SIMD registers.
const LANES: usize = 32;

pub(super) struct Nlms {
    taps: usize,
    /// Live taps, same order as the history window.
    w: Vec<f32>,
    /// Last filter judged good (divergence guard and double-talk recovery).
    saved: Vec<f32>,
    far: Vec<f32>,
    /// The far end through the whitening filter (update direction).
    white: Vec<f32>,
    near: Vec<f32>,
    /// Index one past the newest sample in `far`/`near`.
    end: usize,
    /// `‖x‖²` over the current window, exact (integer squares of i16).
    energy: i64,
    /// `‖A·x‖²` over the current window (recomputed at each compaction
    /// so rounding cannot accumulate).
    white_energy: f64,
    whitener: Whitener,
    /// The newest near-end sample through the whitening filter.
    white_near: f32,
    /// Update gain scheduled for the newest window, not yet applied.
    pending: f32,
    simd: Kernel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kernel {
    Generic,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Nlms {
    pub(super) fn new(taps: usize) -> Self {
        let cap = taps + REPLAY + SLACK;
        Nlms {
            taps,
            w: vec![0.0; taps],
            saved: vec![0.0; taps],
            far: vec![0.0; cap],
            white: vec![0.0; cap],
            near: vec![0.0; cap],
            end: taps + REPLAY - 1,
            energy: 0,
            white_energy: 0.0,
            whitener: Whitener::new(),
            white_near: 0.0,
            pending: 0.0,
            simd: detect_kernel(),
        }
    }

    pub(super) fn reset(&mut self) {
        self.w.fill(0.0);
        self.saved.fill(0.0);
        self.far.fill(0.0);
        self.white.fill(0.0);
        self.near.fill(0.0);
        self.end = self.taps + REPLAY - 1;
        self.energy = 0;
        self.white_energy = 0.0;
        self.whitener = Whitener::new();
        self.white_near = 0.0;
        self.pending = 0.0;
    }

    /// Append one far-end/near-end sample pair; the window now ends at it.
    #[inline]
    pub(super) fn push(&mut self, far: i16, near: i16) {
        if self.end == self.far.len() {
            self.compact();
        }
        let end = self.end;
        // The sample leaving the window is `taps` positions back; the
        // buffer always holds at least `taps + REPLAY - 1` older samples.
        let leaving = self.far.get(end - self.taps).copied().unwrap_or(0.0) as i64;
        let leaving_white = f64::from(self.white.get(end - self.taps).copied().unwrap_or(0.0));
        let x = f32::from(far);
        let mut recent = [x; ORDER + 1];
        if let Some(past) = self.far.get(end - ORDER..end) {
            for (r, p) in recent[1..].iter_mut().zip(past.iter().rev()) {
                *r = *p;
            }
        }
        if self.whitener.observe(&recent) {
            self.rewhiten();
        }
        let c = self.whitener.coefficients();
        let white = x - prediction(c, self.far.get(end - ORDER..end).unwrap_or(&[]));
        self.white_near =
            f32::from(near) - prediction(c, self.near.get(end - ORDER..end).unwrap_or(&[]));
        if let (Some(f), Some(w), Some(n)) = (
            self.far.get_mut(end),
            self.white.get_mut(end),
            self.near.get_mut(end),
        ) {
            *f = x;
            *w = white;
            *n = f32::from(near);
        }
        self.end += 1;
        self.energy += i64::from(far) * i64::from(far) - leaving * leaving;
        self.white_energy += f64::from(white) * f64::from(white) - leaving_white * leaving_white;
    }

    /// Re-filter the whitened history with a new predictor, so that the
    /// update direction and the whitened near end always use the same
    /// filter (the echo path relation `A·d = h * A·x` then holds exactly).
    /// Covers the current window and the sample before it.
    fn rewhiten(&mut self) {
        let first = self.end - self.taps - 1;
        let c = self.whitener.coefficients();
        let (Some(source), Some(target)) = (
            self.far.get(first - ORDER..self.end),
            self.white.get_mut(first..self.end),
        ) else {
            return;
        };
        for (out, span) in target.iter_mut().zip(source.windows(ORDER + 1)) {
            *out = span[ORDER] - prediction(c, &span[..ORDER]);
        }
        self.white_energy = target
            .iter()
            .skip(1)
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum();
    }

    fn compact(&mut self) {
        let keep = self.taps + REPLAY - 1;
        let from = self.end - keep;
        self.far.copy_within(from..self.end, 0);
        self.white.copy_within(from..self.end, 0);
        self.near.copy_within(from..self.end, 0);
        self.end = keep;
        let window = self.white.get(keep - self.taps..keep).unwrap_or(&[]);
        self.white_energy = window.iter().map(|v| f64::from(*v) * f64::from(*v)).sum();
    }

    /// `‖A·x‖²` of the current whitened window.
    #[inline]
    pub(super) fn white_energy(&self) -> f32 {
        self.white_energy.max(0.0) as f32
    }

    /// The far end is currently a tone or a few tones.
    pub(super) fn narrowband(&self) -> bool {
        self.whitener.narrowband()
    }

    /// Power gain of the whitening filter for white noise, `1 + Σ c_k²`.
    pub(super) fn noise_gain(&self) -> f32 {
        1.0 + self
            .whitener
            .coefficients()
            .iter()
            .map(|c| c * c)
            .sum::<f32>()
    }

    /// The newest near-end sample through the whitening filter, `(A·d)(n)`.
    #[inline]
    pub(super) fn white_near(&self) -> f32 {
        self.white_near
    }

    /// `‖x‖²` of the current window.
    #[inline]
    pub(super) fn energy(&self) -> f32 {
        self.energy as f32
    }

    #[cfg(test)]
    fn window(&self) -> &[f32] {
        self.far.get(self.end - self.taps..self.end).unwrap_or(&[])
    }

    /// Echo estimate `ŷ(n) = w·x(n)` for the newest sample, and the same
    /// through the whitening filter, `w·(A·x)(n)`, which with
    /// [`Nlms::white_near`] gives the error driving the update. A pending
    /// update from the previous sample is applied in the same pass.
    #[inline]
    pub(super) fn estimate(&mut self) -> (f32, f32) {
        let g = std::mem::take(&mut self.pending);
        let current = self.end - self.taps..self.end;
        let previous = current.start - 1..current.end - 1;
        let (Some(xp), Some(xc), Some(xw)) = (
            self.white.get(previous),
            self.far.get(current.clone()),
            self.white.get(current),
        ) else {
            return (0.0, 0.0);
        };
        if g == 0.0 {
            dispatch_dot2(self.simd, &self.w, xc, xw)
        } else {
            dispatch_update_dot2(self.simd, &mut self.w, xp, g, xc, xw)
        }
    }

    /// In place of [`Nlms::estimate`] while the far end is quiet: a pending update is
    /// applied, and the estimate taken as zero (no pass over the taps).
    #[inline]
    pub(super) fn idle(&mut self) -> (f32, f32) {
        if self.pending != 0.0 {
            // The update belongs to the previous sample's window.
            let g = std::mem::take(&mut self.pending);
            let previous = self.end - self.taps - 1..self.end - 1;
            if let Some(x) = self.white.get(previous) {
                dispatch_update(self.simd, &mut self.w, x, g);
            }
        }
        (0.0, 0.0)
    }

    /// Schedule the NLMS update `w += g·(A·x)(n)` for the newest sample,
    /// with `g = μ (A·e) / (‖A·x‖² + δ)` already computed. It is applied by the next
    /// [`Nlms::estimate`] (fused with its dot product) or [`Nlms::flush`].
    #[inline]
    pub(super) fn adapt(&mut self, g: f32) {
        self.pending = g;
    }

    /// Apply a scheduled update now.
    fn flush(&mut self) {
        let g = std::mem::take(&mut self.pending);
        if g != 0.0 {
            let x = self
                .white
                .get(self.end - self.taps..self.end)
                .unwrap_or(&[]);
            dispatch_update(self.simd, &mut self.w, x, g);
        }
    }

    /// Error power of the live and of the saved filter over the last
    /// [`REPLAY`] samples, plus the near-end power there:
    /// `(Σe_live², Σe_saved², Σd²)`.
    pub(super) fn replay_error(&mut self) -> (f32, f32, f32) {
        self.flush();
        let (mut live, mut saved, mut near) = (0.0f32, 0.0f32, 0.0f32);
        for t in self.end - REPLAY..self.end {
            let x = self.far.get(t + 1 - self.taps..=t).unwrap_or(&[]);
            let d = self.near.get(t).copied().unwrap_or(0.0);
            let e_live = d - dispatch_dot(self.simd, &self.w, x);
            let e_saved = d - dispatch_dot(self.simd, &self.saved, x);
            live += e_live * e_live;
            saved += e_saved * e_saved;
            near += d * d;
        }
        (live, saved, near)
    }

    /// Far-end power over the last [`REPLAY`] samples.
    pub(super) fn replay_far_energy(&self) -> f32 {
        let x = self.far.get(self.end - REPLAY..self.end).unwrap_or(&[]);
        x.iter().map(|v| v * v).sum()
    }

    pub(super) fn save(&mut self) {
        self.flush();
        self.saved.copy_from_slice(&self.w);
    }

    pub(super) fn revert(&mut self) {
        self.pending = 0.0;
        self.w.copy_from_slice(&self.saved);
    }

    pub(super) fn clear_taps(&mut self) {
        self.pending = 0.0;
        self.w.fill(0.0);
    }

    /// Index of the largest tap as a delay in samples (0 = no delay).
    pub(super) fn peak_delay(&self) -> usize {
        let mut best = (0.0f32, 0usize);
        for (j, v) in self.w.iter().enumerate() {
            if v.abs() > best.0 {
                best = (v.abs(), j);
            }
        }
        self.taps - 1 - best.1
    }
}

/// `Σ c_k x(t − k)`, `k = 1..=ORDER`, from `past = x(t − ORDER)..x(t − 1)`.
#[inline(always)]
fn prediction(c: &[f32; ORDER], past: &[f32]) -> f32 {
    c.iter().zip(past.iter().rev()).map(|(c, x)| c * x).sum()
}

/// The kernel for cancellers built now: the best this CPU runs. Called
/// by the constructors only (the choice is stored), never per sample.
pub(super) fn detect_kernel() -> Kernel {
    #[cfg(test)]
    if let Some(kernel) = FORCED.with(std::cell::Cell::get) {
        return kernel;
    }
    best_kernel()
}

fn best_kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernel::Avx2Fma;
        }
    }
    Kernel::Generic
}

#[cfg(test)]
thread_local! {
    /// The kernel forced on this thread by [`with_kernel`], if any.
    static FORCED: std::cell::Cell<Option<Kernel>> = const { std::cell::Cell::new(None) };
}

impl Kernel {
    /// Every kernel this CPU can run, the generic one first.
    #[cfg(test)]
    pub(super) fn supported() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Generic];
        #[cfg(target_arch = "x86_64")]
        if matches!(best_kernel(), Kernel::Avx2Fma) {
            kernels.push(Kernel::Avx2Fma);
        }
        kernels
    }

    /// Short name (fixture file names, messages).
    #[cfg(test)]
    pub(super) fn name(self) -> &'static str {
        match self {
            Kernel::Generic => "generic",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => "avx2fma",
        }
    }
}

/// Test only: run `f` with every canceller built on this thread (by `f`)
/// using `kernel` instead of the detected one. Other threads (tests run in
/// parallel) are unaffected. Panics if this CPU cannot run `kernel`.
#[cfg(test)]
pub(super) fn with_kernel<R>(kernel: Kernel, f: impl FnOnce() -> R) -> R {
    assert!(
        Kernel::supported().contains(&kernel),
        "this CPU cannot run the {} kernel",
        kernel.name()
    );
    /// Clears the forced kernel even if `f` panics.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(None));
        }
    }
    FORCED.with(|f| f.set(Some(kernel)));
    let _restore = Restore;
    f()
}

#[inline]
pub(super) fn dispatch_dot(kernel: Kernel, w: &[f32], x: &[f32]) -> f32 {
    match kernel {
        Kernel::Generic => dot::<false>(w, x),
        // SAFETY: `Avx2Fma` is only selected after runtime detection of
        // both features on this CPU.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { dot_avx2(w, x) },
    }
}

#[inline]
fn dispatch_update(kernel: Kernel, w: &mut [f32], x: &[f32], g: f32) {
    match kernel {
        Kernel::Generic => update::<false>(w, x, g),
        // SAFETY: as in `dispatch_dot`.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { update_avx2(w, x, g) },
    }
}

#[inline]
fn dispatch_dot2(kernel: Kernel, w: &[f32], xc: &[f32], xw: &[f32]) -> (f32, f32) {
    match kernel {
        Kernel::Generic => dot2::<false>(w, xc, xw),
        // SAFETY: as in `dispatch_dot`.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { dot2_avx2(w, xc, xw) },
    }
}

#[inline]
fn dispatch_update_dot2(
    kernel: Kernel,
    w: &mut [f32],
    xp: &[f32],
    g: f32,
    xc: &[f32],
    xw: &[f32],
) -> (f32, f32) {
    match kernel {
        Kernel::Generic => update_dot2::<false>(w, xp, g, xc, xw),
        // SAFETY: as in `dispatch_dot`.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { update_dot2_avx2(w, xp, g, xc, xw) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot2_avx2(w: &[f32], xc: &[f32], xw: &[f32]) -> (f32, f32) {
    dot2::<true>(w, xc, xw)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn update_dot2_avx2(
    w: &mut [f32],
    xp: &[f32],
    g: f32,
    xc: &[f32],
    xw: &[f32],
) -> (f32, f32) {
    update_dot2::<true>(w, xp, g, xc, xw)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(w: &[f32], x: &[f32]) -> f32 {
    dot::<true>(w, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn update_avx2(w: &mut [f32], x: &[f32], g: f32) {
    update::<true>(w, x, g)
}

/// `acc + a·b`, one instruction where the `fma` feature is enabled.
#[inline(always)]
pub(super) fn mac<const FMA: bool>(acc: f32, a: f32, b: f32) -> f32 {
    if FMA {
        a.mul_add(b, acc)
    } else {
        acc + a * b
    }
}

/// `Σ w·x` with [`LANES`] partial sums.
#[inline(always)]
fn dot<const FMA: bool>(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let wc = w.chunks_exact(LANES);
    let xc = x.chunks_exact(LANES);
    let tail: f32 = wc
        .remainder()
        .iter()
        .zip(xc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in wc.zip(xc) {
        for k in 0..LANES {
            acc[k] = mac::<FMA>(acc[k], a[k], b[k]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `(Σ w·xc, Σ w·xw)` in one pass.
#[inline(always)]
fn dot2<const FMA: bool>(w: &[f32], xc: &[f32], xw: &[f32]) -> (f32, f32) {
    let n = w.len().min(xc.len()).min(xw.len());
    let (w, xc, xw) = (&w[..n], &xc[..n], &xw[..n]);
    let mut acc = [0.0f32; LANES];
    let mut acw = [0.0f32; LANES];
    let mut wi = w.chunks_exact(LANES);
    let mut ci = xc.chunks_exact(LANES);
    let mut ki = xw.chunks_exact(LANES);
    for ((wv, cv), kv) in (&mut wi).zip(&mut ci).zip(&mut ki) {
        for k in 0..LANES {
            acc[k] = mac::<FMA>(acc[k], wv[k], cv[k]);
            acw[k] = mac::<FMA>(acw[k], wv[k], kv[k]);
        }
    }
    let (mut y, mut yw) = (acc.iter().sum::<f32>(), acw.iter().sum::<f32>());
    for ((wv, cv), kv) in wi
        .remainder()
        .iter()
        .zip(ci.remainder())
        .zip(ki.remainder())
    {
        y += wv * cv;
        yw += wv * kv;
    }
    (y, yw)
}

/// `w += g·xp`, then `(Σ w·xc, Σ w·xw)` with the updated taps, in one pass.
#[inline(always)]
fn update_dot2<const FMA: bool>(
    w: &mut [f32],
    xp: &[f32],
    g: f32,
    xc: &[f32],
    xw: &[f32],
) -> (f32, f32) {
    let n = w.len().min(xp.len()).min(xc.len()).min(xw.len());
    let (w, xp, xc, xw) = (&mut w[..n], &xp[..n], &xc[..n], &xw[..n]);
    let mut acc = [0.0f32; LANES];
    let mut acw = [0.0f32; LANES];
    let mut wi = w.chunks_exact_mut(LANES);
    let mut pi = xp.chunks_exact(LANES);
    let mut ci = xc.chunks_exact(LANES);
    let mut ki = xw.chunks_exact(LANES);
    for (((wv, pv), cv), kv) in (&mut wi).zip(&mut pi).zip(&mut ci).zip(&mut ki) {
        for k in 0..LANES {
            let updated = mac::<FMA>(wv[k], pv[k], g);
            wv[k] = updated;
            acc[k] = mac::<FMA>(acc[k], updated, cv[k]);
            acw[k] = mac::<FMA>(acw[k], updated, kv[k]);
        }
    }
    let (mut y, mut yw) = (acc.iter().sum::<f32>(), acw.iter().sum::<f32>());
    for (((wv, pv), cv), kv) in wi
        .into_remainder()
        .iter_mut()
        .zip(pi.remainder())
        .zip(ci.remainder())
        .zip(ki.remainder())
    {
        *wv += g * pv;
        y += *wv * cv;
        yw += *wv * kv;
    }
    (y, yw)
}

/// `w += g·x`.
#[inline(always)]
fn update<const FMA: bool>(w: &mut [f32], x: &[f32], g: f32) {
    for (a, b) in w.iter_mut().zip(x) {
        *a = mac::<FMA>(*a, *b, g);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree() {
        let w: Vec<f32> = (0..515).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        let x: Vec<f32> = (0..515).map(|i| ((i * 53) % 89) as f32 - 44.0).collect();
        let reference: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        let generic = dispatch_dot(Kernel::Generic, &w, &x);
        let best = dispatch_dot(detect_kernel(), &w, &x);
        assert!((generic - reference).abs() <= 1e-3 * reference.abs().max(1.0));
        assert!((best - reference).abs() <= 1e-3 * reference.abs().max(1.0));
        let mut a = w.clone();
        let mut b = w.clone();
        dispatch_update(Kernel::Generic, &mut a, &x, 0.25);
        dispatch_update(detect_kernel(), &mut b, &x, 0.25);
        assert_eq!(a, b);
    }

    /// The test-only override reaches the constructors, on this thread only.
    #[test]
    fn a_forced_kernel_is_used_and_then_released() {
        for kernel in Kernel::supported() {
            let forced = with_kernel(kernel, || Nlms::new(64).simd);
            assert_eq!(forced, kernel);
        }
        assert_eq!(Nlms::new(64).simd, best_kernel());
        let other = std::thread::spawn(|| {
            with_kernel(Kernel::Generic, || {
                std::thread::spawn(|| Nlms::new(64).simd).join().unwrap()
            })
        });
        assert_eq!(other.join().unwrap(), best_kernel());
    }

    #[test]
    fn energy_tracks_window_across_compaction() {
        let mut f = Nlms::new(64);
        for n in 0..5000i32 {
            let s = ((n * 7919) % 20001 - 10000) as i16;
            f.push(s, 0);
            let exact: f64 = f
                .window()
                .iter()
                .map(|v| f64::from(*v) * f64::from(*v))
                .sum();
            assert_eq!(f.energy as f64, exact);
        }
    }
}
