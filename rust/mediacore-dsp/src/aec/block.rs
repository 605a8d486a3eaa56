//! The engine's echo filter: the block frequency-domain filter
//! ([`super::fdaf`]) with tone detection on its far end ([`super::whiten`]),
//! adapting once per 64-sample block under a per-bin variable step.

use super::canceller::{EchoFilter, StepContext, MU_MIN};
use super::fdaf::{Fdaf, Step, REPLAY};
use super::whiten::{Whitener, ORDER};

/// The step-size cap falls by this much per dB of best long-term ERLE
/// above `MU_RAMP_START_DB` (0.7 at 15 dB, 0.15 at 42.5 dB, 0.05 from
/// 47.5 dB). Slower than the time-domain canceller's 0.03: the block
/// filter's late convergence on speech is slower, and would otherwise fall
/// behind.
const MU_RAMP_PER_DB: f32 = 0.02;
/// Once converged, each frequency bin's step is this times
/// `1 − √(noise/error)` (within `MU_MIN` and the cap): half the
/// converging step, so that a residual echo at a few dB above the noise no
/// longer adds the misadjustment of a large step.
const VSS_BASE: f32 = 0.35;
/// Regularisation, as a far-end power in every frequency bin, i16²
/// (≈ −60 dBm0): keeps the step bounded in bands the far end leaves empty.
const REGULARISATION_POWER: f32 = 260.0;

pub(super) struct BlockFilter {
    fdaf: Fdaf,
    /// Narrowband (tone) detection on the far end.
    whitener: Whitener,
}

impl BlockFilter {
    /// Step-size control for the block just completed.
    fn step(step: &StepContext) -> Step {
        // At most the cap, and, per frequency bin, scaled by how far the
        // error is above the background noise (Benesty's non-parametric
        // VSS-NLMS, μ ∝ 1 − σ_v/σ_e): an error at the noise floor says
        // nothing about the echo path, and adapting on it only adds
        // misadjustment noise — in a band the far end hardly excites, a lot
        // of it, which the band's normalisation would amplify.
        Step {
            cap: step.cap(MU_RAMP_PER_DB),
            variable: step.converged(),
            base: VSS_BASE,
            min: MU_MIN,
            noise: step.background,
        }
    }
}

impl EchoFilter for BlockFilter {
    const REPLAY: usize = REPLAY;
    const REVERT_NEAR_BEST: bool = false;

    fn new(taps: usize) -> Self {
        BlockFilter {
            fdaf: Fdaf::new(taps, REGULARISATION_POWER),
            whitener: Whitener::new(),
        }
    }

    fn reset(&mut self) {
        self.fdaf.reset();
        self.whitener = Whitener::new();
    }

    fn forget_step(&mut self) {}

    #[inline]
    fn push(&mut self, far: i16, near: i16) {
        self.fdaf.push(far, near);
    }

    #[inline]
    fn energy(&self) -> f32 {
        self.fdaf.energy()
    }

    #[inline]
    fn estimate(&mut self, run: bool) -> f32 {
        let y = if run { self.fdaf.estimate() } else { 0.0 };
        if y.is_finite() {
            y
        } else {
            // Cannot happen with normalised LMS at μ < 2; never let it reach the output.
            self.fdaf.clear_taps();
            0.0
        }
    }

    #[inline]
    fn adaptation_error(&self, e: f32) -> f32 {
        e
    }

    /// The sample's share in the block's adaptation.
    #[inline]
    fn adapt(&mut self, clipped: f32, _step: &StepContext) {
        self.fdaf.adapt_sample(clipped);
    }

    #[inline]
    fn narrowband(&self) -> bool {
        self.whitener.narrowband()
    }

    /// At a block boundary: tone detection on the block's far end and the
    /// filter's block step; the guards may run.
    #[inline]
    fn end_sample(&mut self, step: &StepContext) -> bool {
        if !self.fdaf.block_complete() {
            return false;
        }
        self.whitener
            .observe_block(self.fdaf.last_block(ORDER), self.fdaf.kernel());
        let block_step = self.fdaf.adapting().then(|| Self::step(step));
        let estimate_next = self.fdaf.energy() >= step.far_quiet_energy;
        self.fdaf.end_block(block_step, estimate_next);
        true
    }

    fn replay_far_energy(&self) -> f32 {
        self.fdaf.replay_far_energy()
    }

    fn replay_error(&mut self) -> (f32, f32, f32) {
        self.fdaf.replay_error()
    }

    fn save(&mut self) {
        self.fdaf.save();
    }

    fn revert(&mut self) {
        self.fdaf.revert();
    }

    fn peak_delay(&self) -> usize {
        self.fdaf.peak_delay()
    }
}
