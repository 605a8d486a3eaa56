//! Line echo canceller (G.168 style) for the decoded path of one call leg.
//!
//! Vocabulary (G.168): the far-end signal we send toward the line is the
//! reference `x` (Rin); what comes back from the line is the near-end
//! signal `d` (Sin): an echo of `x` through the hybrid, plus the near-end
//! talker and noise. The canceller writes `e = d − ŷ` (Sout), where `ŷ` is
//! its estimate of the echo, then the non-linear processor's output.
//!
//! Theory of operation (all time is sample counts at 8 kHz):
//! 1. [`fdaf`]: a partitioned-block frequency-domain adaptive filter of
//!    `tail_ms × 8` taps (partitions and blocks of 64 samples, 8 ms)
//!    estimates the echo, `ŷ = h * x`, and the residual is `e = d − ŷ`.
//!    Every sample's estimate is complete when that sample arrives (the
//!    newest 64 taps run in the time domain, the older partitions' share
//!    was computed at the previous block boundary), so the canceller adds
//!    no delay whatever the caller's frame size; the taps adapt once per
//!    block.
//! 2. [`dtd`], the double-talk detector, per sample: Geigel on the near end
//!    until the filter has converged, then on the residual (an ERLE-based
//!    check: the residual rising far above what the converged filter
//!    leaves), 60 ms hangover; with a path-change escape when "double
//!    talk" lasts without the near end getting louder than the echo should
//!    be.
//! 3. Samples with the far end active and no double talk feed the block's
//!    adaptation with their error, clipped at a few times its running mean
//!    magnitude (a burst the detector misses moves the filter only a
//!    little); the others contribute nothing. At the end of the block the
//!    filter takes a normalised frequency-domain LMS step (per-bin
//!    normalisation by the far end's energy in that bin over the tail,
//!    which makes speech converge as fast as white noise). The step size
//!    is large while converging, is capped lower as the best ERLE reached
//!    grows (robustness to undetected double talk), and scales with how
//!    far the error is above the background noise (no misadjustment from
//!    adapting on noise). A tone (narrowband far end, seen by an order-8
//!    LPC fit in [`whiten`]) is cancelled but does not count as
//!    convergence.
//! 4. Every [`CHECK_PERIOD`] samples two guards run. Divergence: if the
//!    output carried more power than the input over the period, the filter
//!    is making things worse and reverts to the saved filter. Replay: the
//!    live and saved filters are both run over the last 128 single-talk
//!    samples; the saved one is replaced by the live one when the live one
//!    cancels better and well (near its best ERLE), and restored when it
//!    cancels 3 dB better while the live one is far from its best (a
//!    filter damaged by undetected double talk is thrown away; one that is
//!    merely a little worse on these 16 ms is not).
//! 5. [`nlp`]: the non-linear processor replaces residual echo with
//!    comfort noise during far-end single talk.
//! 6. [`stats`]: ERL and ERLE are measured over far-end single talk; the
//!    bulk delay is the position of the largest tap.
//!
//! Cost: per 64-sample block six real FFTs of 128 points and three complex
//! multiply-adds per bin and partition, plus a 64-tap dot product per
//! sample (see [`fdaf`]); the filter does not run while the far end is
//! quiet (below about −56 dBm0 over the whole tail: its echo is under the
//! NLP's comfort-noise floor). `examples/aec_cost.rs` measures it against
//! the time-domain NLMS canceller this crate used before
//! ([`TimeDomainEchoCanceller`], kept as that reference). `process`
//! allocates nothing.

mod dtd;
mod fdaf;
mod nlms;
mod nlp;
mod stats;
#[cfg(test)]
mod tests;
mod time_domain;
mod whiten;

use crate::codec::SAMPLES_PER_MS;
use dtd::{DoubleTalkDetector, Observation, Verdict};
use fdaf::{Fdaf, Step, REPLAY};
use nlp::{NlpInput, NonLinearProcessor};
use stats::EchoMeter;
#[doc(hidden)]
pub use time_domain::TimeDomainEchoCanceller;
use whiten::{Whitener, ORDER};

/// Default tail (echo path length covered), ms.
pub const DEFAULT_TAIL_MS: u32 = 64;
/// Accepted tails: `MIN_TAIL_MS..=MAX_TAIL_MS` in steps of `TAIL_STEP_MS`, ms.
pub const MIN_TAIL_MS: u32 = 16;
pub const MAX_TAIL_MS: u32 = 128;
pub const TAIL_STEP_MS: u32 = 8;

/// Step size while converging (fast, ≈ −20 dB in well under 1 s of
/// speech) and once converged (lower steady-state misadjustment, and less
/// damage from undetected double talk). Same scale as NLMS's μ (see
/// [`fdaf`]).
const MU_CONVERGING: f32 = 0.7;
const MU_CONVERGED: f32 = 0.05;
/// Between them μ falls by this much per dB of long-term ERLE above
/// `MU_RAMP_START_DB` (0.7 at 15 dB, 0.15 at 42.5 dB, 0.05 from 47.5 dB).
/// Slower than the time-domain canceller's 0.03: the block filter's late
/// convergence on speech is slower, and would otherwise fall behind.
const MU_RAMP_START_DB: f32 = 15.0;
const MU_RAMP_PER_DB: f32 = 0.02;
/// Once converged, each frequency bin's step is this times
/// `1 − √(noise/error)` (within `MU_MIN` and the cap): half the
/// converging step, so that a residual echo at a few dB above the noise no
/// longer adds the misadjustment of a large step.
const VSS_BASE: f32 = 0.35;
/// Lowest step size (error at the noise floor): slow tracking only.
const MU_MIN: f32 = 0.01;
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
/// Regularisation, as a far-end power in every frequency bin, i16²
/// (≈ −60 dBm0): keeps the step bounded in bands the far end leaves empty.
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
/// Guard period, samples (200 ms, 25 blocks).
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

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoCancellerConfig {
    /// Echo path length covered, ms: 16..=128 in steps of 8 (64 default,
    /// 128 for long hybrids / echo behind a network delay).
    pub tail_ms: u32,
    /// Non-linear processor on (default).
    pub nlp: bool,
    /// The NLP replaces suppressed residual with noise matched to the
    /// near-end background (default) instead of silence.
    pub comfort_noise: bool,
}

impl Default for EchoCancellerConfig {
    fn default() -> Self {
        EchoCancellerConfig {
            tail_ms: DEFAULT_TAIL_MS,
            nlp: true,
            comfort_noise: true,
        }
    }
}

/// Per-call echo measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EchoStats {
    /// Echo return loss (far-end over near-end power in far-end single
    /// talk), dB; 0 until measured.
    pub erl_db: f32,
    /// Echo return loss enhancement of the linear filter (near-end over
    /// output power before the NLP, far-end single talk), dB; 0 until
    /// measured.
    pub erle_db: f32,
    /// Bulk delay estimate: position of the largest filter tap, ms.
    pub delay_ms: f32,
    /// Share of far-end-active time spent in double talk, 0..=1.
    pub double_talk_ratio: f32,
    pub converged: bool,
}

pub struct EchoCanceller {
    cfg: EchoCancellerConfig,
    filter: Fdaf,
    /// Narrowband (tone) detection on the far end.
    whitener: Whitener,
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

impl EchoCanceller {
    pub fn new(cfg: EchoCancellerConfig) -> Result<Self, String> {
        check_tail(cfg.tail_ms)?;
        let taps = cfg.tail_ms as usize * SAMPLES_PER_MS;
        Ok(EchoCanceller {
            cfg,
            filter: Fdaf::new(taps, REGULARISATION_POWER),
            whitener: Whitener::new(),
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

    pub fn config(&self) -> EchoCancellerConfig {
        self.cfg
    }

    /// Cancel the echo of `far_end` in `near_end`, writing to `out`.
    ///
    /// `far_end` is what we sent toward the line (Rin), `near_end` what came
    /// back (Sin), sample-aligned as they pass this point. Blocks may have
    /// any size; each output sample depends only on the input up to it (no
    /// added delay). If the lengths differ, the first `min` of the three are
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
        self.whitener = Whitener::new();
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
    }

    #[inline]
    fn sample(&mut self, far: i16, near: i16) -> i16 {
        self.filter.push(far, near);
        let d = f32::from(near);
        let energy = self.filter.energy();
        let mut y = if energy < self.far_quiet_energy {
            0.0
        } else {
            self.filter.estimate()
        };
        if !y.is_finite() {
            // Cannot happen with normalised LMS at μ < 2; never let it reach the output.
            self.filter.clear_taps();
            y = 0.0;
        }
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
        if self.filter.block_complete() {
            self.end_block();
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

    /// One sample's share in the block's adaptation.
    #[inline]
    fn adapt(&mut self, d: f32, e: f32) {
        let limit = CLIP_FACTOR * self.clip_scale;
        let clipped = e.clamp(-limit, limit);
        self.clip_scale += (clipped.abs() - self.clip_scale) * CLIP_RATE;
        self.clip_scale = self.clip_scale.max(1.0);
        self.filter.adapt_sample(clipped);

        // Cancelling a tone is no evidence of having learnt the echo path:
        // the convergence state only advances on broadband far-end signal.
        if self.whitener.narrowband() {
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

    /// Step-size control for the block just completed.
    fn step(&self) -> Step {
        // At most a cap falling linearly with the long-term ERLE
        // (robustness once converged), and, per frequency bin, scaled by
        // how far the error is above the background noise (Benesty's
        // non-parametric VSS-NLMS, μ ∝ 1 − σ_v/σ_e): an error at the noise
        // floor says nothing about the echo path, and adapting on it only
        // adds misadjustment noise — in a band the far end hardly excites,
        // a lot of it, which the band's normalisation would amplify.
        // The cap follows the best long-term ERLE reached since the last
        // (re)start, not the current one: an undetected soft near-end
        // talker lowers the current ERLE and must not buy itself a larger
        // step.
        let cap = (MU_CONVERGING - (self.erle_peak_db - MU_RAMP_START_DB) * MU_RAMP_PER_DB)
            .clamp(MU_CONVERGED, MU_CONVERGING);
        Step {
            cap,
            // Until converged the error is echo, whatever the (still
            // settling) noise estimate says.
            variable: self.erle_peak_db >= CONVERGED_ERLE_DB,
            base: VSS_BASE,
            min: MU_MIN,
            noise: self.nlp.background(),
        }
    }

    /// The block is complete: tone detection on its far end, the filter's
    /// block step, and every [`CHECK_PERIOD`] the guards.
    fn end_block(&mut self) {
        self.whitener
            .observe_block(self.filter.last_block(ORDER), self.filter.kernel());
        let step = self.filter.adapting().then(|| self.step());
        let estimate_next = self.filter.energy() >= self.far_quiet_energy;
        self.filter.end_block(step, estimate_next);
        if self.period_samples >= CHECK_PERIOD {
            self.check();
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
        let single_talk = self.since_double_talk as usize >= REPLAY && !self.whitener.narrowband();
        let far_active = self.filter.replay_far_energy() >= REPLAY as f32 * FAR_ACTIVE_POWER;
        if !(single_talk && far_active) {
            return;
        }
        let (live, saved, near) = self.filter.replay_error();
        // The live filter counts as cancelling near its best when its
        // replay ERLE is within `SAVE_BELOW_PEAK_DB` of the best long-term
        // ERLE (and at least `SAVE_MIN_ERLE_DB`).
        let min_db = SAVE_MIN_ERLE_DB.max(self.erle_peak_db - SAVE_BELOW_PEAK_DB);
        let near_best = live * 10f32.powf(min_db / 10.0) < near;
        if saved * REVERT_RATIO < live && !near_best {
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
