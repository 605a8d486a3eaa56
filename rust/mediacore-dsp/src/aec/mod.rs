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
//! 4. Every 1600 samples (200 ms) two guards run. Divergence: if the
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
//!
//! Code layout: steps 2 to 6, the same for both cancellers, are
//! [`canceller`]; the filter with its step-size control is [`block`]
//! (this canceller) or [`time_domain`] (the reference).

mod block;
mod canceller;
mod dtd;
mod fdaf;
mod nlms;
mod nlp;
mod stats;
#[cfg(test)]
mod tests;
mod time_domain;
mod whiten;

use block::BlockFilter;
use canceller::Canceller;
#[doc(hidden)]
pub use time_domain::TimeDomainEchoCanceller;

/// Default tail (echo path length covered), ms.
pub const DEFAULT_TAIL_MS: u32 = 64;
/// Accepted tails: `MIN_TAIL_MS..=MAX_TAIL_MS` in steps of `TAIL_STEP_MS`, ms.
pub const MIN_TAIL_MS: u32 = 16;
pub const MAX_TAIL_MS: u32 = 128;
pub const TAIL_STEP_MS: u32 = 8;

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

/// The line echo canceller (see the module docs).
pub struct EchoCanceller(Canceller<BlockFilter>);

/// The public methods of a canceller, a newtype around a
/// [`Canceller`] (`EchoCanceller` and `TimeDomainEchoCanceller` differ
/// only in their filter).
macro_rules! canceller_api {
    ($name:ident) => {
        impl $name {
            pub fn new(cfg: $crate::aec::EchoCancellerConfig) -> Result<Self, String> {
                $crate::aec::canceller::Canceller::new(cfg).map($name)
            }

            pub fn config(&self) -> $crate::aec::EchoCancellerConfig {
                self.0.config()
            }

            /// Cancel the echo of `far_end` in `near_end`, writing to `out`.
            ///
            /// `far_end` is what we sent toward the line (Rin), `near_end` what came
            /// back (Sin), sample-aligned as they pass this point. Blocks may have
            /// any size; each output sample depends only on the input up to it (no
            /// added delay). If the lengths differ, the first `min` of the three are
            /// processed and any further samples of `out` are set to zero.
            pub fn process(&mut self, far_end: &[i16], near_end: &[i16], out: &mut [i16]) {
                self.0.process(far_end, near_end, out);
            }

            pub fn stats(&self) -> $crate::aec::EchoStats {
                self.0.stats()
            }

            /// Forget everything learnt (new call on the same leg).
            pub fn reset(&mut self) {
                self.0.reset();
            }
        }
    };
}
use canceller_api;

canceller_api!(EchoCanceller);
