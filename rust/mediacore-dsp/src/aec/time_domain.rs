//! The time-domain canceller this crate shipped first: the same detector,
//! guards, NLP and measurements as [`super::EchoCanceller`], around a
//! pre-whitened NLMS filter that adapts on every sample ([`super::nlms`]).
//!
//! It met every G.168 target but cost 0.125 % of a core per channel at the
//! 128 ms tail with a far end that never pauses, over the 0.1 % budget, and
//! was replaced by the block frequency-domain filter. It is kept, unchanged,
//! as the reference the benchmark (`examples/aec_cost.rs`) and the tests
//! compare the block canceller with; nothing in the engine uses it.

use super::dtd::{DoubleTalkDetector, Observation, Verdict};
use super::nlms::{Nlms, REPLAY};
use super::nlp::{NlpInput, NonLinearProcessor};
use super::stats::EchoMeter;
use super::{EchoCancellerConfig, EchoStats, MAX_TAIL_MS, MIN_TAIL_MS, TAIL_STEP_MS};
use crate::codec::SAMPLES_PER_MS;

/// NLMS step size while converging (fast, ≈ −20 dB in well under 1 s of
/// speech) and once converged (lower steady-state misadjustment, and less
/// damage from undetected double talk). Dimensionless, stable for 0 < μ < 2.
const MU_CONVERGING: f32 = 0.7;
const MU_CONVERGED: f32 = 0.05;
/// Between them μ falls by this much per dB of long-term ERLE above
/// `MU_RAMP_START_DB` (0.7 at 15 dB, 0.15 from ≈ 33 dB).
const MU_RAMP_START_DB: f32 = 15.0;
const MU_RAMP_PER_DB: f32 = 0.03;
/// Lowest step size (error at the noise floor): slow tracking only.
const MU_MIN: f32 = 0.01;
/// Smoothing of the whitened error power for the step size, per adapting
/// sample (64 samples = 8 ms).
const WHITE_ERROR_ALPHA: f32 = 1.0 / 64.0;
/// Long-term ERLE from which the filter counts as converged, dB.
const CONVERGED_ERLE_DB: f32 = 18.0;
/// Long-term ERLE from which the double-talk detector's Geigel test looks
/// at the residual instead of the near end, dB.
const RESIDUAL_GEIGEL_ERLE_DB: f32 = 24.0;
/// Far end counts as active when its mean power over the tail is at least
/// this, i16² (≈ −50 dBm0, 0 dBm0 being an RMS of ≈ 16 100).
const FAR_ACTIVE_POWER: f32 = 2600.0;
/// Far end quieter than this over the whole tail (mean power, i16², ≈ −56 dBm0): its echo
/// is below −56 dBm0 minus the ERL, under the comfort-noise floor the NLP leaves, so the
/// filter is not run at all (no estimate, no adaptation): the canceller's cost follows the far
/// end's activity.
const FAR_QUIET_POWER: f32 = FAR_ACTIVE_POWER / 4.0;
/// NLMS regularisation per tap, i16² (≈ −60 dBm0): keeps the step bounded
/// when the far end is nearly silent.
const REGULARISATION_POWER: f32 = 260.0;
/// Short-term power smoothing per sample (time constant 32 samples = 4 ms).
const SHORT_ALPHA: f32 = 1.0 / 32.0;
/// Level smoothing per sample for the talker-evidence test (1024 samples
/// = 128 ms, about the tail, so echo and far end are compared over the
/// same speech).
const LEVEL_ALPHA: f32 = 1.0 / 1024.0;
/// Near end this far above the expected echo is a talker (power, 2 dB).
const NEAR_EXCESS: f32 = 1.6;
/// Long-term power smoothing per adapting sample (1024 samples = 128 ms).
const LONG_ALPHA: f32 = 1.0 / 1024.0;
/// Long-term ERLE is recomputed (one `log10`) every this many samples.
const LONG_ERLE_EVERY: u32 = 32;
/// Adaptation error clip, in multiples of the running mean |e|, and the
/// per-sample rate at which that mean follows the clipped |e|.
const CLIP_FACTOR: f32 = 3.0;
const CLIP_RATE: f32 = 1.0 / 256.0;
/// Initial running mean |e|: no clipping until it has learnt the level.
const CLIP_SCALE_INITIAL: f32 = 32768.0;
/// Guard period, samples (200 ms).
const CHECK_PERIOD: u32 = 1600;
/// Output more than this above the input over a period is divergence (1 dB).
const DIVERGENCE_RATIO: f32 = 1.26;
/// The saved filter is restored when it cancels this much better (3 dB).
const REVERT_RATIO: f32 = 2.0;
/// The live filter is saved only if its replay ERLE is at least
/// `max(SAVE_MIN_ERLE_DB, best long-term ERLE − SAVE_BELOW_PEAK_DB)`: a
/// replay window with an undetected near-end talker in it cannot pass, so
/// a filter damaged (or fitted to) double talk is never saved.
const SAVE_MIN_ERLE_DB: f32 = 20.0;
const SAVE_BELOW_PEAK_DB: f32 = 10.0;

/// The time-domain echo canceller (see the module docs): same API as
/// [`super::EchoCanceller`].
pub struct TimeDomainEchoCanceller {
    cfg: EchoCancellerConfig,
    filter: Nlms,
    dtd: DoubleTalkDetector,
    nlp: NonLinearProcessor,
    meter: EchoMeter,
    /// `taps × FAR_ACTIVE_POWER` and `taps × REGULARISATION_POWER`.
    far_active_energy: f32,
    far_quiet_energy: f32,
    regularisation: f32,
    error_power: f32,
    /// Far-end and near-end powers over ~128 ms (talker evidence).
    level_far: f32,
    level_near: f32,
    /// Expected echo power over far-end power, from the measured ERL.
    echo_gain: Option<f32>,
    echo_power: f32,
    long_near_power: f32,
    long_error_power: f32,
    long_erle_db: f32,
    /// Best `long_erle_db` since the last start, path change or divergence.
    erle_peak_db: f32,
    clip_scale: f32,
    white_error_power: f32,
    /// Samples since the last double-talk sample (saturating).
    since_double_talk: u32,
    /// Divergence guard accumulators over the current check period.
    period_near: f32,
    period_error: f32,
    period_samples: u32,
}

impl TimeDomainEchoCanceller {
    pub fn new(cfg: EchoCancellerConfig) -> Result<Self, String> {
        if !(MIN_TAIL_MS..=MAX_TAIL_MS).contains(&cfg.tail_ms) || cfg.tail_ms % TAIL_STEP_MS != 0 {
            return Err(format!(
                "echo canceller tail {} ms: must be {MIN_TAIL_MS}..={MAX_TAIL_MS} ms \
                 in steps of {TAIL_STEP_MS} ms",
                cfg.tail_ms
            ));
        }
        let taps = cfg.tail_ms as usize * SAMPLES_PER_MS;
        Ok(TimeDomainEchoCanceller {
            cfg,
            filter: Nlms::new(taps),
            dtd: DoubleTalkDetector::new(taps),
            nlp: NonLinearProcessor::new(cfg.comfort_noise),
            meter: EchoMeter::default(),
            far_active_energy: taps as f32 * FAR_ACTIVE_POWER,
            far_quiet_energy: taps as f32 * FAR_QUIET_POWER,
            regularisation: taps as f32 * REGULARISATION_POWER,
            error_power: 0.0,
            level_far: 0.0,
            level_near: 0.0,
            echo_gain: None,
            echo_power: 0.0,
            long_near_power: 0.0,
            long_error_power: 0.0,
            long_erle_db: 0.0,
            erle_peak_db: 0.0,
            clip_scale: CLIP_SCALE_INITIAL,
            white_error_power: 0.0,
            since_double_talk: 0,
            period_near: 0.0,
            period_error: 0.0,
            period_samples: 0,
        })
    }

    pub fn config(&self) -> EchoCancellerConfig {
        self.cfg
    }

    /// Cancel the echo of `far_end` in `near_end`, writing to `out`.
    ///
    /// `far_end` is what we sent toward the line (Rin), `near_end` what came
    /// back (Sin), sample-aligned as they pass this point. Blocks may have
    /// any size. If the lengths differ, the first `min` of the three are
    /// processed and any further samples of `out` are set to zero.
    pub fn process(&mut self, far_end: &[i16], near_end: &[i16], out: &mut [i16]) {
        let n = far_end.len().min(near_end.len()).min(out.len());
        let (head, rest) = out.split_at_mut(n);
        rest.fill(0);
        for ((&x, &d), o) in far_end.iter().zip(near_end).zip(head.iter_mut()) {
            *o = self.sample(x, d);
        }
    }

    pub fn stats(&self) -> EchoStats {
        let converged = self.long_erle_db >= CONVERGED_ERLE_DB;
        let (erl_db, erle_db) = self.meter.reported().unwrap_or((0.0, 0.0));
        EchoStats {
            erl_db,
            erle_db,
            delay_ms: self.filter.peak_delay() as f32 / SAMPLES_PER_MS as f32,
            double_talk_ratio: self.meter.double_talk_ratio(),
            converged,
        }
    }

    /// Forget everything learnt (new call on the same leg).
    pub fn reset(&mut self) {
        self.filter.reset();
        self.dtd.reset();
        self.nlp.reset();
        self.meter.reset();
        self.reset_convergence();
        self.since_double_talk = 0;
        self.period_near = 0.0;
        self.period_error = 0.0;
        self.period_samples = 0;
        self.level_far = 0.0;
        self.level_near = 0.0;
        self.echo_gain = None;
    }

    fn reset_convergence(&mut self) {
        self.error_power = 0.0;
        self.echo_power = 0.0;
        self.long_near_power = 0.0;
        self.long_error_power = 0.0;
        self.long_erle_db = 0.0;
        self.erle_peak_db = 0.0;
        self.dtd.unconverged();
        self.clip_scale = CLIP_SCALE_INITIAL;
        self.white_error_power = 0.0;
    }

    #[inline]
    fn sample(&mut self, far: i16, near: i16) -> i16 {
        self.filter.push(far, near);
        let d = f32::from(near);
        let (mut y, mut y_white) = if self.filter.energy() < self.far_quiet_energy {
            self.filter.idle()
        } else {
            self.filter.estimate()
        };
        if !(y.is_finite() && y_white.is_finite()) {
            // Cannot happen with NLMS at μ < 2; never let it reach the output.
            self.filter.clear_taps();
            (y, y_white) = (0.0, 0.0);
        }
        let e = d - y;
        self.level_far += (f32::from(far) * f32::from(far) - self.level_far) * LEVEL_ALPHA;
        self.level_near += (d * d - self.level_near) * LEVEL_ALPHA;
        self.error_power += (e * e - self.error_power) * SHORT_ALPHA;
        self.echo_power += (y * y - self.echo_power) * SHORT_ALPHA;

        self.nlp.track_noise(self.error_power);
        let energy = self.filter.energy();
        let far_active = energy >= self.far_active_energy;
        let verdict = self.dtd.observe(&Observation {
            far,
            near,
            residual: e,
            background_power: self.nlp.background(),
            near_excess: self.near_excess(),
            far_active,
        });
        if verdict == Verdict::PathChange {
            self.reset_convergence();
            self.meter.forget_erle();
        }
        let double_talk = verdict == Verdict::DoubleTalk;
        self.since_double_talk = if double_talk {
            0
        } else {
            self.since_double_talk.saturating_add(1)
        };

        if far_active && !double_talk {
            self.adapt(d, e, self.filter.white_near() - y_white);
        }
        if far_active {
            if self.meter.observe(f32::from(far), d, e, double_talk) {
                if let Some(erl) = self.meter.erl_db() {
                    self.echo_gain = Some(10f32.powf(-erl / 10.0));
                    if self.long_erle_db >= RESIDUAL_GEIGEL_ERLE_DB {
                        self.dtd.set_erl(erl, self.long_erle_db);
                    }
                }
            }
            self.period_near += d * d;
            self.period_error += e * e;
        }
        self.period_samples += 1;
        if self.period_samples >= CHECK_PERIOD {
            self.check();
        }

        let v = if self.cfg.nlp {
            self.nlp.process(&NlpInput {
                residual: e,
                residual_power: self.error_power,
                echo_estimate_power: self.echo_power,
                double_talk,
                converged: self.long_erle_db >= CONVERGED_ERLE_DB,
            })
        } else {
            e
        };
        // `as` saturates (and maps NaN to 0).
        v.round() as i16
    }

    /// Near end more than [`NEAR_EXCESS`] above the echo expected from the
    /// far-end level and the measured ERL.
    #[inline]
    fn near_excess(&self) -> bool {
        self.echo_gain
            .is_some_and(|g| self.level_near > NEAR_EXCESS * g * self.level_far)
    }

    #[inline]
    fn adapt(&mut self, d: f32, e: f32, white_error: f32) {
        let limit = CLIP_FACTOR * self.clip_scale;
        let clipped = white_error.clamp(-limit, limit);
        self.clip_scale += (clipped.abs() - self.clip_scale) * CLIP_RATE;
        self.clip_scale = self.clip_scale.max(1.0);
        // Step size: at most a cap falling linearly with the long-term ERLE
        // (robustness once converged), and scaled by how far the error is
        // above the background noise (Benesty's non-parametric VSS-NLMS,
        // μ ∝ 1 − σ_v/σ_e): an error at the noise floor says nothing about
        // the echo path, and adapting on it only adds misadjustment noise.
        // The cap follows the best long-term ERLE reached since the last
        // (re)start, not the current one: an undetected soft near-end
        // talker lowers the current ERLE and must not buy itself a larger
        // step.
        let cap = (MU_CONVERGING - (self.erle_peak_db - MU_RAMP_START_DB) * MU_RAMP_PER_DB)
            .clamp(MU_CONVERGED, MU_CONVERGING);
        self.white_error_power += (clipped * clipped - self.white_error_power) * WHITE_ERROR_ALPHA;
        let noise = self.nlp.background() * self.filter.noise_gain();
        let above_noise = 1.0 - (noise / self.white_error_power.max(1e-3)).sqrt();
        // Until converged the error is echo, whatever the (still settling)
        // noise estimate says.
        let mu = if self.erle_peak_db < CONVERGED_ERLE_DB {
            cap
        } else {
            (MU_CONVERGING * above_noise).clamp(MU_MIN, cap)
        };
        let energy = self.filter.white_energy();
        self.filter
            .adapt(mu * clipped / (energy + self.regularisation));

        // Cancelling a tone is no evidence of having learnt the echo path:
        // the convergence state only advances on broadband far-end signal.
        if self.filter.narrowband() {
            return;
        }
        self.long_near_power += (d * d - self.long_near_power) * LONG_ALPHA;
        self.long_error_power += (e * e - self.long_error_power) * LONG_ALPHA;
        if self.period_samples % LONG_ERLE_EVERY == 0 {
            let ratio = (self.long_near_power + 1.0) / (self.long_error_power + 1.0);
            self.long_erle_db = 10.0 * ratio.log10();
            self.erle_peak_db = self.erle_peak_db.max(self.long_erle_db);
        }
    }

    /// The divergence guard and the replay comparison (see the module docs).
    fn check(&mut self) {
        let diverged = self.period_near > self.period_samples as f32 * FAR_ACTIVE_POWER
            && self.period_error > self.period_near * DIVERGENCE_RATIO;
        self.period_near = 0.0;
        self.period_error = 0.0;
        self.period_samples = 0;
        if diverged {
            self.filter.revert();
            self.long_error_power = self.long_near_power;
            self.long_erle_db = 0.0;
            self.erle_peak_db = 0.0;
            self.dtd.unconverged();
            return;
        }
        // Tones make poor evidence either way (see `adapt`).
        let single_talk = self.since_double_talk as usize >= REPLAY && !self.filter.narrowband();
        let far_active = self.filter.replay_far_energy() >= REPLAY as f32 * FAR_ACTIVE_POWER;
        if !(single_talk && far_active) {
            return;
        }
        let (live, saved, near) = self.filter.replay_error();
        if saved * REVERT_RATIO < live {
            self.filter.revert();
        } else if live < saved && {
            let min_db = SAVE_MIN_ERLE_DB.max(self.erle_peak_db - SAVE_BELOW_PEAK_DB);
            live * 10f32.powf(min_db / 10.0) < near
        } {
            self.filter.save();
        }
    }
}
