//! What both cancellers share around their adaptive filter (steps 2 to 6
//! of the theory of operation in the module docs): the per-sample loop,
//! double-talk detection, error clipping, convergence tracking, the guards,
//! the NLP and the measurements. The filter itself, and how it turns an
//! error into a step, is the [`EchoFilter`]: the block frequency-domain
//! one ([`super::block`]) or the time-domain NLMS one
//! ([`super::time_domain`]).

use super::dtd::{DoubleTalkDetector, Observation, Verdict};
use super::nlp::{NlpInput, NonLinearProcessor};
use super::stats::EchoMeter;
use super::{EchoCancellerConfig, EchoStats, MAX_TAIL_MS, MIN_TAIL_MS, TAIL_STEP_MS};
use crate::codec::SAMPLES_PER_MS;

/// Step size while converging (fast, ≈ −20 dB in well under 1 s of
/// speech) and once converged (lower steady-state misadjustment, and less
/// damage from undetected double talk). NLMS's μ: dimensionless, stable
/// for 0 < μ < 2 (the block filter's step is scaled to match, see
/// [`super::fdaf`]).
pub(super) const MU_CONVERGING: f32 = 0.7;
pub(super) const MU_CONVERGED: f32 = 0.05;
/// Between them μ falls linearly from this long-term ERLE on, at a rate
/// of each filter's own (`EchoFilter` implementations), dB.
pub(super) const MU_RAMP_START_DB: f32 = 15.0;
/// Lowest step size (error at the noise floor): slow tracking only.
pub(super) const MU_MIN: f32 = 0.01;
/// Long-term ERLE from which the filter counts as converged, dB.
pub(super) const CONVERGED_ERLE_DB: f32 = 18.0;
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
/// Guard period, samples (200 ms, 25 blocks of the block filter).
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

/// The canceller's state a filter's step-size control reads.
#[derive(Clone, Copy)]
pub(super) struct StepContext {
    /// Best long-term ERLE since the last start, path change or divergence, dB.
    pub erle_peak_db: f32,
    /// Background noise power of the residual, i16² per sample.
    pub background: f32,
    /// Far-end energy over the tail under which the filter does not run.
    pub far_quiet_energy: f32,
}

impl StepContext {
    /// The step-size cap: [`MU_CONVERGING`] falling by `per_db` per dB of
    /// best long-term ERLE above [`MU_RAMP_START_DB`], down to
    /// [`MU_CONVERGED`] (robustness once converged). It follows the best
    /// ERLE reached, not the current one: an undetected soft near-end
    /// talker lowers the current ERLE and must not buy itself a larger step.
    #[inline]
    pub(super) fn cap(&self, per_db: f32) -> f32 {
        (MU_CONVERGING - (self.erle_peak_db - MU_RAMP_START_DB) * per_db)
            .clamp(MU_CONVERGED, MU_CONVERGING)
    }

    /// Until converged the error is echo, whatever the (still settling)
    /// noise estimate says: no variable step.
    #[inline]
    pub(super) fn converged(&self) -> bool {
        self.erle_peak_db >= CONVERGED_ERLE_DB
    }
}

/// An adaptive filter estimating the echo path, with a saved copy for the
/// guards.
pub(super) trait EchoFilter {
    /// Samples of history the replay comparison runs over.
    const REPLAY: usize;
    /// Restore the saved filter whenever it replays [`REVERT_RATIO`]
    /// better, even when the live one cancels near its best (the
    /// time-domain canceller's rule); otherwise only when the live one is
    /// far from its best.
    const REVERT_NEAR_BEST: bool;

    fn new(taps: usize) -> Self;
    /// Forget everything (new call).
    fn reset(&mut self);
    /// Forget the step-size state (new call, or a change of echo path).
    fn forget_step(&mut self);
    /// Append one far-end/near-end sample pair.
    fn push(&mut self, far: i16, near: i16);
    /// `‖x‖²` over the tail.
    fn energy(&self) -> f32;
    /// Echo estimate for the newest sample; with `run` false the far end is
    /// quiet, the estimate is 0 and the filter does not run. Never NaN or
    /// infinite (the taps are cleared if they ever were).
    fn estimate(&mut self, run: bool) -> f32;
    /// The error that drives the adaptation, from the residual `e` of the
    /// newest sample (before clipping).
    fn adaptation_error(&self, e: f32) -> f32;
    /// The newest sample adapts with the clipped error `clipped`.
    fn adapt(&mut self, clipped: f32, step: &StepContext);
    /// The far end is narrowband (a tone): cancelling it is no evidence of
    /// having learnt the echo path.
    fn narrowband(&self) -> bool;
    /// The sample is done; true where the guards may run (the block
    /// filter: a block boundary).
    fn end_sample(&mut self, step: &StepContext) -> bool;
    /// Far-end energy over the last [`EchoFilter::REPLAY`] samples.
    fn replay_far_energy(&self) -> f32;
    /// `(Σe_live², Σe_saved², Σd²)` over the last [`EchoFilter::REPLAY`]
    /// samples.
    fn replay_error(&mut self) -> (f32, f32, f32);
    fn save(&mut self);
    fn revert(&mut self);
    /// Delay of the largest tap, samples.
    fn peak_delay(&self) -> usize;
}

pub(super) struct Canceller<F> {
    cfg: EchoCancellerConfig,
    filter: F,
    dtd: DoubleTalkDetector,
    nlp: NonLinearProcessor,
    meter: EchoMeter,
    /// `taps × FAR_ACTIVE_POWER` and `taps × FAR_QUIET_POWER`.
    far_active_energy: f32,
    far_quiet_energy: f32,
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
    /// Samples since the last double-talk sample (saturating).
    since_double_talk: u32,
    /// Divergence guard accumulators over the current check period.
    period_near: f32,
    period_error: f32,
    period_samples: u32,
}

impl<F: EchoFilter> Canceller<F> {
    pub(super) fn new(cfg: EchoCancellerConfig) -> Result<Self, String> {
        check_tail(cfg.tail_ms)?;
        let taps = cfg.tail_ms as usize * SAMPLES_PER_MS;
        Ok(Canceller {
            cfg,
            filter: F::new(taps),
            dtd: DoubleTalkDetector::new(taps),
            nlp: NonLinearProcessor::new(cfg.comfort_noise),
            meter: EchoMeter::default(),
            far_active_energy: taps as f32 * FAR_ACTIVE_POWER,
            far_quiet_energy: taps as f32 * FAR_QUIET_POWER,
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
            since_double_talk: 0,
            period_near: 0.0,
            period_error: 0.0,
            period_samples: 0,
        })
    }

    pub(super) fn config(&self) -> EchoCancellerConfig {
        self.cfg
    }

    pub(super) fn process(&mut self, far_end: &[i16], near_end: &[i16], out: &mut [i16]) {
        let n = far_end.len().min(near_end.len()).min(out.len());
        let (head, rest) = out.split_at_mut(n);
        rest.fill(0);
        for ((&x, &d), o) in far_end.iter().zip(near_end).zip(head.iter_mut()) {
            *o = self.sample(x, d);
        }
    }

    pub(super) fn stats(&self) -> EchoStats {
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

    pub(super) fn reset(&mut self) {
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
        self.filter.forget_step();
    }

    fn step_context(&self) -> StepContext {
        StepContext {
            erle_peak_db: self.erle_peak_db,
            background: self.nlp.background(),
            far_quiet_energy: self.far_quiet_energy,
        }
    }

    #[inline]
    fn sample(&mut self, far: i16, near: i16) -> i16 {
        self.filter.push(far, near);
        let d = f32::from(near);
        let energy = self.filter.energy();
        let y = self.filter.estimate(energy >= self.far_quiet_energy);
        let e = d - y;
        self.level_far += (f32::from(far) * f32::from(far) - self.level_far) * LEVEL_ALPHA;
        self.level_near += (d * d - self.level_near) * LEVEL_ALPHA;
        self.error_power += (e * e - self.error_power) * SHORT_ALPHA;
        self.echo_power += (y * y - self.echo_power) * SHORT_ALPHA;

        self.nlp.track_noise(self.error_power);
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
            self.adapt(d, e);
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
        let step = self.step_context();
        if self.filter.end_sample(&step) && self.period_samples >= CHECK_PERIOD {
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

    /// One sample's adaptation: the filter's error clipped at a few times
    /// its running mean magnitude, then the long-term ERLE.
    #[inline]
    fn adapt(&mut self, d: f32, e: f32) {
        let limit = CLIP_FACTOR * self.clip_scale;
        let clipped = self.filter.adaptation_error(e).clamp(-limit, limit);
        self.clip_scale += (clipped.abs() - self.clip_scale) * CLIP_RATE;
        self.clip_scale = self.clip_scale.max(1.0);
        let step = self.step_context();
        self.filter.adapt(clipped, &step);

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
        let single_talk = self.since_double_talk as usize >= F::REPLAY && !self.filter.narrowband();
        let far_active = self.filter.replay_far_energy() >= F::REPLAY as f32 * FAR_ACTIVE_POWER;
        if !(single_talk && far_active) {
            return;
        }
        let (live, saved, near) = self.filter.replay_error();
        // The live filter counts as cancelling near its best when its
        // replay ERLE is within `SAVE_BELOW_PEAK_DB` of the best long-term
        // ERLE (and at least `SAVE_MIN_ERLE_DB`).
        let min_db = SAVE_MIN_ERLE_DB.max(self.erle_peak_db - SAVE_BELOW_PEAK_DB);
        let near_best = live * 10f32.powf(min_db / 10.0) < near;
        if saved * REVERT_RATIO < live && (F::REVERT_NEAR_BEST || !near_best) {
            self.filter.revert();
        } else if live < saved && near_best {
            self.filter.save();
        }
    }
}

/// Tail lengths accepted by the cancellers.
fn check_tail(tail_ms: u32) -> Result<(), String> {
    if !(MIN_TAIL_MS..=MAX_TAIL_MS).contains(&tail_ms) || tail_ms % TAIL_STEP_MS != 0 {
        return Err(format!(
            "echo canceller tail {tail_ms} ms: must be {MIN_TAIL_MS}..={MAX_TAIL_MS} ms \
             in steps of {TAIL_STEP_MS} ms"
        ));
    }
    Ok(())
}
