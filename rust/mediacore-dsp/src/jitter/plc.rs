//! Packet-loss concealment for G.711, in the manner of ITU-T G.711
//! Appendix I (pitch-based waveform substitution).
//!
//! Theory of operation. The concealer keeps the last 48.75 ms of the audio
//! it has been given (decoded or concealed). When a loss starts it:
//! 1. estimates the pitch period `P` (5–15 ms) by normalised
//!    cross-correlation of the last 20 ms with earlier history;
//! 2. smooths the seam between the real signal and the substitute: the last
//!    `P/4` samples not yet played (the tail of the playout FIFO) are
//!    cross-faded into the samples one period earlier, which lead naturally
//!    into the repeated period;
//! 3. repeats the last period, cross-faded at its own wrap-around point the
//!    same way. After 10 ms it switches to repeating the last two periods,
//!    after 20 ms the last three (one period repeated for long sounds buzzy),
//!    with a `P/4` cross-fade at each switch;
//! 4. attenuates linearly by 20 % per 10 ms from 10 ms into the loss, so the
//!    substitute is silent after 60 ms.
//!
//! At the first good audio after a loss the substitute is continued for
//! 4 ms + 0.4 ms per 10 ms lost (at most 10 ms) and cross-faded into it.

use super::stretch::{cross_fade, search_lag};

/// History kept, samples: 3 periods of the longest pitch plus a quarter.
const HISTORY: usize = 390;
/// Pitch search range, samples (5–15 ms: 200–66 Hz).
const PITCH_MIN: usize = 40;
const PITCH_MAX: usize = 120;
/// Correlation window of the pitch search, samples (20 ms).
const PITCH_WINDOW: usize = 160;
/// Samples per 10 ms: the unit of period growth and attenuation steps.
const STEP: usize = 80;
/// Attenuation starts after this many samples of loss and reaches zero
/// this many samples later (20 % per 10 ms).
const FADE_START: usize = STEP;
const FADE_LENGTH: usize = 5 * STEP;
/// Resume cross-fade: base and per-10 ms increment (samples), and cap.
const RESUME_BASE: usize = 32;
const RESUME_MAX: usize = STEP;

#[derive(Debug)]
pub(crate) struct Plc {
    history: [i16; HISTORY],
    /// The repeated segment (1–3 periods, wrap seam already smoothed).
    cycle: [i16; 3 * PITCH_MAX],
    cycle_len: usize,
    pitch: usize,
    pos: usize,
    /// Pending cross-fade from the previous cycle after a period switch.
    switch: [i16; PITCH_MAX / 4],
    switch_len: usize,
    switch_pos: usize,
    /// Samples concealed in the current loss; `None` when not concealing.
    erased: Option<usize>,
}

impl Plc {
    pub(crate) fn new() -> Self {
        Plc {
            history: [0; HISTORY],
            cycle: [0; 3 * PITCH_MAX],
            cycle_len: 0,
            pitch: PITCH_MAX,
            pos: 0,
            switch: [0; PITCH_MAX / 4],
            switch_len: 0,
            switch_pos: 0,
            erased: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn is_concealing(&self) -> bool {
        self.erased.is_some()
    }

    /// Appends audio that is about to be played to the history.
    pub(crate) fn remember(&mut self, audio: &[i16]) {
        let take = audio.len().min(HISTORY);
        self.history.copy_within(take.., 0);
        self.history[HISTORY - take..].copy_from_slice(&audio[audio.len() - take..]);
    }

    /// Fills `out` with concealment. `unplayed_tail` is the end of the audio
    /// already queued but not yet played, which a new loss may smooth.
    pub(crate) fn conceal(&mut self, out: &mut [i16], unplayed_tail: &mut [i16]) {
        if self.erased.is_none() {
            self.start(unplayed_tail);
        }
        for sample in out.iter_mut() {
            *sample = self.next_sample();
        }
    }

    /// Cross-fades the continuing substitute into `audio`, the first good
    /// audio after a loss, and ends the loss. The history stays frozen during
    /// a loss (the substitute is built from real signal only); the caller
    /// appends `audio` to it afterwards.
    pub(crate) fn resume(&mut self, audio: &mut [i16]) {
        let Some(erased) = self.erased else {
            return;
        };
        let len = (RESUME_BASE + erased / 25).min(RESUME_MAX).min(audio.len());
        let mut substitute = [0i16; RESUME_MAX];
        let substitute = &mut substitute[..len];
        for sample in substitute.iter_mut() {
            *sample = self.next_sample();
        }
        let mut mixed = [0i16; RESUME_MAX];
        let mixed = &mut mixed[..len];
        cross_fade(substitute, &audio[..len], mixed);
        audio[..len].copy_from_slice(mixed);
        self.erased = None;
    }

    fn start(&mut self, unplayed_tail: &mut [i16]) {
        let h = &self.history;
        let found = search_lag(PITCH_MIN, PITCH_MAX, |lag| {
            Some((
                h.get(HISTORY - PITCH_WINDOW..)?,
                h.get(HISTORY - PITCH_WINDOW - lag..HISTORY - lag)?,
            ))
        });
        self.pitch = found.map_or(PITCH_MAX, |m| m.lag);
        self.build_cycle(1);
        self.pos = 0;
        self.switch_len = 0;
        // Smooth the seam: fade the unplayed tail into the samples one
        // period earlier, which continue into cycle[0].
        let q = (self.pitch / 4).min(unplayed_tail.len());
        let start = HISTORY - self.pitch - q;
        let mut earlier = [0i16; PITCH_MAX / 4];
        earlier[..q].copy_from_slice(&self.history[start..start + q]);
        let tail_start = unplayed_tail.len() - q;
        let mut mixed = [0i16; PITCH_MAX / 4];
        cross_fade(&unplayed_tail[tail_start..], &earlier[..q], &mut mixed[..q]);
        unplayed_tail[tail_start..].copy_from_slice(&mixed[..q]);
        self.erased = Some(0);
    }

    /// The last `periods` pitch periods of history, with the wrap seam
    /// smoothed by fading the end into the samples before the start.
    fn build_cycle(&mut self, periods: usize) {
        let len = (self.pitch * periods).min(3 * PITCH_MAX);
        let first = HISTORY - len;
        self.cycle[..len].copy_from_slice(&self.history[first..]);
        let q = self.pitch / 4;
        let mut mixed = [0i16; PITCH_MAX / 4];
        cross_fade(
            &self.history[HISTORY - q..],
            &self.history[first - q..first],
            &mut mixed[..q],
        );
        self.cycle[len - q..len].copy_from_slice(&mixed[..q]);
        self.cycle_len = len;
    }

    fn next_sample(&mut self) -> i16 {
        let erased = self.erased.unwrap_or(0);
        if erased == STEP || erased == 2 * STEP {
            // Switch to repeating one more period, fading out of the old cycle.
            let q = self.pitch / 4;
            for j in 0..q {
                self.switch[j] = self.cycle[(self.pos + j) % self.cycle_len.max(1)];
            }
            self.switch_len = q;
            self.switch_pos = 0;
            self.build_cycle(erased / STEP + 1);
        }
        let len = self.cycle_len.max(1);
        let mut value = i32::from(self.cycle[self.pos % len]);
        self.pos = (self.pos + 1) % len;
        if self.switch_pos < self.switch_len {
            let w = self.switch_pos as i32 + 1;
            let steps = self.switch_len as i32 + 1;
            value = (i32::from(self.switch[self.switch_pos]) * (steps - w) + value * w) / steps;
            self.switch_pos += 1;
        }
        let faded = erased.saturating_sub(FADE_START).min(FADE_LENGTH);
        let gain = (FADE_LENGTH - faded) as i32;
        self.erased = Some(erased.saturating_add(1));
        (value * gain / FADE_LENGTH as i32) as i16
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn voiced(len: usize, period: f64) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / period;
                (6000.0 * phase.sin() + 2500.0 * (2.0 * phase).sin() + 900.0 * (3.0 * phase).sin())
                    as i16
            })
            .collect()
    }

    fn max_jump(x: &[i16]) -> i32 {
        x.windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn continues_a_periodic_signal_and_fades_to_silence() {
        let signal = voiced(2000, 61.5);
        let natural = max_jump(&signal);
        let mut plc = Plc::new();
        plc.remember(&signal[..800]);
        let mut tail = signal[760..800].to_vec();
        let mut out = vec![0i16; 560];
        plc.conceal(&mut out[..160], &mut tail);
        plc.conceal(&mut out[160..], &mut []);
        let mut joined = tail.clone();
        joined.extend_from_slice(&out);
        assert!(
            max_jump(&joined) <= natural * 12 / 10,
            "{} {natural}",
            max_jump(&joined)
        );
        // First 10 ms: close to the real continuation (the signal is periodic).
        let err: f64 = out[..80]
            .iter()
            .zip(&signal[800..880])
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let power: f64 = signal[800..880].iter().map(|&s| f64::from(s).powi(2)).sum();
        assert!(err < power * 0.05, "{err} {power}");
        assert!(out[480..].iter().all(|&s| s == 0), "silent after 60 ms");
        assert!(plc.is_concealing());
    }

    #[test]
    fn resume_cross_fades_into_new_audio() {
        let signal = voiced(2000, 61.5);
        let mut plc = Plc::new();
        plc.remember(&signal[..800]);
        let mut out = vec![0i16; 160];
        plc.conceal(&mut out, &mut []);
        let mut good = signal[960..1120].to_vec();
        plc.resume(&mut good);
        assert!(!plc.is_concealing());
        let mut joined = out.clone();
        joined.extend_from_slice(&good);
        assert!(max_jump(&joined) <= max_jump(&signal) * 13 / 10);
        assert_eq!(&good[40..], &signal[1000..1120]);
    }

    #[test]
    fn silence_history_conceals_silence() {
        let mut plc = Plc::new();
        let mut out = [1i16; 100];
        plc.conceal(&mut out, &mut []);
        assert!(out.iter().all(|&s| s == 0));
    }
}
