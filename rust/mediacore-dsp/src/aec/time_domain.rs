//! The time-domain canceller this crate shipped first: the block
//! canceller's detector, guards, NLP and measurements ([`super::canceller`],
//! shared) around a pre-whitened NLMS filter that adapts on every sample
//! ([`super::nlms`]).
//!
//! It met every G.168 target but cost 0.125 % of a core per channel at the
//! 128 ms tail with a far end that never pauses, over the 0.1 % budget, and
//! was replaced by the block frequency-domain filter. It is kept, with its
//! output unchanged (the golden test holds it to the bit), as the reference
//! the benchmark (`examples/aec_cost.rs`) and the tests compare the block
//! canceller with; nothing in the engine uses it.

use super::canceller::{Canceller, EchoFilter, StepContext, MU_CONVERGING, MU_MIN};
use super::nlms::{Nlms, REPLAY};

/// The step-size cap falls by this much per dB of best long-term ERLE
/// above `MU_RAMP_START_DB` (0.7 at 15 dB, 0.15 from ≈ 33 dB).
const MU_RAMP_PER_DB: f32 = 0.03;
/// Smoothing of the whitened error power for the step size, per adapting
/// sample (64 samples = 8 ms).
const WHITE_ERROR_ALPHA: f32 = 1.0 / 64.0;
/// NLMS regularisation per tap, i16² (≈ −60 dBm0): keeps the step bounded
/// when the far end is nearly silent.
const REGULARISATION_POWER: f32 = 260.0;

/// The time-domain echo canceller (see the module docs): same API as
/// [`super::EchoCanceller`].
pub struct TimeDomainEchoCanceller(Canceller<TimeDomainFilter>);

super::canceller_api!(TimeDomainEchoCanceller);

pub(super) struct TimeDomainFilter {
    nlms: Nlms,
    /// `taps × REGULARISATION_POWER`.
    regularisation: f32,
    /// The newest sample's echo estimate through the whitening filter.
    white_estimate: f32,
    white_error_power: f32,
}

impl EchoFilter for TimeDomainFilter {
    const REPLAY: usize = REPLAY;
    const REVERT_NEAR_BEST: bool = true;

    fn new(taps: usize) -> Self {
        TimeDomainFilter {
            nlms: Nlms::new(taps),
            regularisation: taps as f32 * REGULARISATION_POWER,
            white_estimate: 0.0,
            white_error_power: 0.0,
        }
    }

    fn reset(&mut self) {
        self.nlms.reset();
    }

    fn forget_step(&mut self) {
        self.white_error_power = 0.0;
    }

    #[inline]
    fn push(&mut self, far: i16, near: i16) {
        self.nlms.push(far, near);
    }

    #[inline]
    fn energy(&self) -> f32 {
        self.nlms.energy()
    }

    #[inline]
    fn estimate(&mut self, run: bool) -> f32 {
        let (mut y, mut y_white) = if run {
            self.nlms.estimate()
        } else {
            self.nlms.idle()
        };
        if !(y.is_finite() && y_white.is_finite()) {
            // Cannot happen with NLMS at μ < 2; never let it reach the output.
            self.nlms.clear_taps();
            (y, y_white) = (0.0, 0.0);
        }
        self.white_estimate = y_white;
        y
    }

    /// The whitened error `(A·d)(n) − w·(A·x)(n)`.
    #[inline]
    fn adaptation_error(&self, _e: f32) -> f32 {
        self.nlms.white_near() - self.white_estimate
    }

    #[inline]
    fn adapt(&mut self, clipped: f32, step: &StepContext) {
        // Step size: at most the cap, and scaled by how far the error is
        // above the background noise (Benesty's non-parametric VSS-NLMS,
        // μ ∝ 1 − σ_v/σ_e): an error at the noise floor says nothing about
        // the echo path, and adapting on it only adds misadjustment noise.
        let cap = step.cap(MU_RAMP_PER_DB);
        self.white_error_power += (clipped * clipped - self.white_error_power) * WHITE_ERROR_ALPHA;
        let noise = step.background * self.nlms.noise_gain();
        let above_noise = 1.0 - (noise / self.white_error_power.max(1e-3)).sqrt();
        let mu = if step.converged() {
            (MU_CONVERGING * above_noise).clamp(MU_MIN, cap)
        } else {
            cap
        };
        let energy = self.nlms.white_energy();
        self.nlms
            .adapt(mu * clipped / (energy + self.regularisation));
    }

    #[inline]
    fn narrowband(&self) -> bool {
        self.nlms.narrowband()
    }

    /// Every sample: the guards may run.
    #[inline]
    fn end_sample(&mut self, _step: &StepContext) -> bool {
        true
    }

    fn replay_far_energy(&self) -> f32 {
        self.nlms.replay_far_energy()
    }

    fn replay_error(&mut self) -> (f32, f32, f32) {
        self.nlms.replay_error()
    }

    fn save(&mut self) {
        self.nlms.save();
    }

    fn revert(&mut self) {
        self.nlms.revert();
    }

    fn peak_delay(&self) -> usize {
        self.nlms.peak_delay()
    }
}
