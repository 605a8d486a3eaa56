//! Double-talk detection: when the near-end talker speaks, the error signal
//! is mostly their speech, and adapting on it would drive the filter away
//! from the echo path. The detector freezes adaptation.
//!
//! The test is Geigel's, `|s(n)| ≥ G · max |x(n − k)|, k < taps`, on
//! the signal that best shows a near-end talker:
//! - **before convergence** `s` is the near end `d` and `G` is −3 dB.
//!   G.168 assumes an ERL of at least 6 dB; −3 dB leaves room for the
//!   echo peaks of a dispersive path, which would otherwise hold off
//!   adaptation exactly when it is needed most;
//! - **once converged** `s` is the residual `e`, from which the echo has
//!   been removed, and `G` is the measured ERL plus
//!   a margin of 6–15 dB
//!   (growing with the ERLE): a talker a few dB under the echo is caught,
//!   the cancelled echo never. This is the ERLE-based check: it fires when
//!   the residual rises far above what the converged filter leaves.
//!
//! A detection holds double talk for a [`HANGOVER`].
//!
//! The residual test cannot tell a near-end talker from a changed echo
//! path, or from far-end content the filter has not learnt yet (a filter
//! trained on a tone meeting speech): all make the residual large. A
//! talker is intermittent, pauses end the double talk; a path change is
//! permanent, and only a talker makes the near end louder than the echo
//! should be at the measured ERL. So the detector counts the
//! far-end-active samples held as double talk without such excess level,
//! resets the count on excess level, lets it leak away in single talk; at
//! [`PATH_CHANGE_SAMPLES`] it reports a path change and the canceller drops its converged
//! state, which returns the detector to the near-end test.

/// Samples per segment of the far-end peak tracker (2 ms).
const SEGMENT: usize = 16;
/// Geigel threshold on the near end, linear (−3 dB).
const GEIGEL_NEAR: f32 = 0.708;
/// Geigel threshold on the residual after convergence: the measured ERL
/// plus a margin, dB: the long-term ERLE less [`RESIDUAL_HEADROOM_DB`]
/// (room for residual echo peaks), within these bounds.
const RESIDUAL_MARGIN_MIN_DB: f32 = 6.0;
const RESIDUAL_MARGIN_MAX_DB: f32 = 15.0;
const RESIDUAL_HEADROOM_DB: f32 = 15.0;
/// Bounds of the residual threshold (−40 dB … −6 dB), linear.
const GEIGEL_RESIDUAL_MIN: f32 = 0.01;
const GEIGEL_RESIDUAL_MAX: f32 = 0.5;
/// Geigel needs a far-end peak of at least this (≈ −45 dBm0 RMS for
/// speech): near-end noise against a silent far end is not double talk.
const GEIGEL_MIN_FAR_PEAK: f32 = 200.0;
/// The residual test ignores samples within this power ratio of the
/// background noise (5σ: Gaussian noise crosses it about once a minute).
const ABOVE_NOISE: f32 = 25.0;
/// Double talk is held this long after the last detection, samples (60 ms,
/// bridging the gaps between syllables).
const HANGOVER: u32 = 480;
/// Net residual-only double talk that means a path change, samples (2 s).
const PATH_CHANGE_SAMPLES: u32 = 16000;

pub(super) struct DoubleTalkDetector {
    /// Peak |x| of each completed segment, a ring covering the tail.
    segments: Vec<u16>,
    next_segment: usize,
    current_peak: u16,
    current_len: usize,
    window_peak: u16,
    /// Residual Geigel threshold, once converged with a measured ERL.
    residual_geigel: Option<f32>,
    hangover: u32,
    held_run: u32,
}

/// Inputs of one decision: the current samples and short-term powers.
pub(super) struct Observation {
    pub far: i16,
    pub near: i16,
    /// The canceller's output `e = d − ŷ`.
    pub residual: f32,
    /// Background noise power of the residual, i16².
    pub background_power: f32,
    /// The near end is clearly louder (over ~100 ms) than the far end's
    /// echo should be at the measured ERL: evidence of a talker.
    pub near_excess: bool,
    pub far_active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    SingleTalk,
    DoubleTalk,
    /// The residual test alone has held double talk too long: the echo
    /// path has probably changed.
    PathChange,
}

impl DoubleTalkDetector {
    pub(super) fn new(taps: usize) -> Self {
        DoubleTalkDetector {
            segments: vec![0; taps.div_ceil(SEGMENT).max(1)],
            next_segment: 0,
            current_peak: 0,
            current_len: 0,
            window_peak: 0,
            residual_geigel: None,
            hangover: 0,
            held_run: 0,
        }
    }

    pub(super) fn reset(&mut self) {
        self.segments.fill(0);
        self.next_segment = 0;
        self.current_peak = 0;
        self.current_len = 0;
        self.window_peak = 0;
        self.residual_geigel = None;
        self.hangover = 0;
        self.held_run = 0;
    }

    /// Converged with a measured ERL and long-term ERLE (dB): test the
    /// residual from now on.
    pub(super) fn set_erl(&mut self, erl_db: f32, erle_db: f32) {
        let margin =
            (erle_db - RESIDUAL_HEADROOM_DB).clamp(RESIDUAL_MARGIN_MIN_DB, RESIDUAL_MARGIN_MAX_DB);
        let g = 10f32.powf(-(erl_db + margin) / 20.0);
        self.residual_geigel = g
            .is_finite()
            .then(|| g.clamp(GEIGEL_RESIDUAL_MIN, GEIGEL_RESIDUAL_MAX));
    }

    /// Not converged (any more): back to the near-end test.
    pub(super) fn unconverged(&mut self) {
        self.residual_geigel = None;
    }

    pub(super) fn observe(&mut self, o: &Observation) -> Verdict {
        self.track_far_peak(o.far.unsigned_abs());
        let far_peak = f32::from(self.window_peak.max(self.current_peak));
        let loud_far = far_peak >= GEIGEL_MIN_FAR_PEAK;
        let near = loud_far
            && self.residual_geigel.is_none()
            && f32::from(o.near.unsigned_abs()) >= GEIGEL_NEAR * far_peak;
        let residual = loud_far
            && o.residual * o.residual >= ABOVE_NOISE * o.background_power
            && self
                .residual_geigel
                .is_some_and(|g| o.residual.abs() >= g * far_peak);
        if near || residual {
            self.hangover = HANGOVER;
        } else if self.hangover > 0 {
            self.hangover -= 1;
        }
        if near || o.near_excess {
            self.held_run = 0;
        } else if o.far_active {
            if self.hangover > 0 {
                self.held_run += 1;
                if self.held_run >= PATH_CHANGE_SAMPLES {
                    self.held_run = 0;
                    self.hangover = 0;
                    return Verdict::PathChange;
                }
            } else {
                self.held_run = self.held_run.saturating_sub(1);
            }
        }
        if self.hangover > 0 {
            Verdict::DoubleTalk
        } else {
            Verdict::SingleTalk
        }
    }

    fn track_far_peak(&mut self, magnitude: u16) {
        self.current_peak = self.current_peak.max(magnitude);
        self.current_len += 1;
        if self.current_len == SEGMENT {
            if let Some(slot) = self.segments.get_mut(self.next_segment) {
                *slot = self.current_peak;
            }
            self.next_segment = (self.next_segment + 1) % self.segments.len();
            self.window_peak = self.segments.iter().copied().max().unwrap_or(0);
            self.current_peak = 0;
            self.current_len = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(far: i16, near: i16) -> Observation {
        Observation {
            far,
            near,
            residual: f32::from(near),
            background_power: 1.0,
            near_excess: false,
            far_active: true,
        }
    }

    #[test]
    fn geigel_fires_on_loud_near_end_and_holds() {
        let mut d = DoubleTalkDetector::new(512);
        for _ in 0..1000 {
            assert_eq!(d.observe(&obs(10000, 4000)), Verdict::SingleTalk);
        }
        assert_eq!(d.observe(&obs(10000, 7500)), Verdict::DoubleTalk);
        for _ in 0..HANGOVER - 1 {
            assert_eq!(d.observe(&obs(10000, 100)), Verdict::DoubleTalk);
        }
        assert_eq!(d.observe(&obs(10000, 100)), Verdict::SingleTalk);
    }

    #[test]
    fn far_peak_is_remembered_over_the_tail() {
        let mut d = DoubleTalkDetector::new(512);
        d.observe(&obs(20000, 0));
        for _ in 0..400 {
            // Echo of the loud sample, 4 dB down, 50 ms later: not double talk.
            assert_eq!(d.observe(&obs(0, 13000)), Verdict::SingleTalk);
        }
    }
}
