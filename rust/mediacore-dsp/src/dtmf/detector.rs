//! Goertzel DTMF detector, robust to speech.
//!
//! Theory of operation:
//!
//! 1. Analysis. The input is cut into half-blocks of [`HALF_BLOCK`] samples.
//!    For each half-block a Goertzel filter per Q.23 frequency (8 in all)
//!    yields one complex DFT value. Two consecutive half-blocks combine
//!    into one analysis window of [`WINDOW`] samples (13.25 ms, bin spacing
//!    75.5 Hz, so neighbouring rows 73 Hz apart fall near each other's first
//!    null); windows therefore overlap by half and one is judged every
//!    6.6 ms. The phase advance of a frequency's DFT value from the first
//!    half to the second measures how far the tone is from nominal: a tone
//!    at `f + Δ` turns by `2π·Δ·HALF_BLOCK/8000` rad more than `f` itself,
//!    unambiguous for |Δ| < 75 Hz. This is what lets the detector reject
//!    3.5 % off-frequency tones, which the magnitude of a 13 ms window alone
//!    cannot (it only loses 1.5 dB at 3.5 % of 697 Hz). In one window the
//!    estimate is off by up to ±1 % (the other tone and the negative-
//!    frequency image leak into a 53-sample half-block); averaged over the
//!    5 windows that start a digit, by ±0.25 %.
//! 2. Per-window decision ([`Thresholds`]): a window holds digit `d` when
//!    its strongest row and column are both loud enough, within the twist
//!    limits, each well above the other three of its group, together carry
//!    most of the window's energy (speech and music spread theirs over many
//!    harmonics and formants) and are both within the loose
//!    [`MAX_WINDOW_DEVIATION`] of nominal frequency.
//! 3. Timing (a run-length state machine, in windows): a digit starts when
//!    at least [`START_WINDOWS`] consecutive windows hold it — 5 windows
//!    span 4·53 + 106 = 318 samples, i.e. ≈ 40 ms of valid tone (Q.24's
//!    minimum accepted duration) — and the frequency deviation averaged
//!    over the run is within [`MAX_DEVIATION`] for both tones (Q.24's
//!    frequency tolerance). The Start event is emitted then, with the sample
//!    position where the tone began. It ends once [`END_MISSES`] windows in
//!    a row do not hold it: a drop-out of up to 10 ms makes at most 3 windows
//!    fail and is bridged, a Q.24 pause of 40 ms makes at least 5 fail.
//!    Each digit is reported exactly once: one Start, one End.
//!
//! The clock is the number of samples fed ([`DtmfDetector::position`]);
//! events report positions on it, and are emitted with a latency of about
//! 40 ms (Start) and 27 ms (End) after the position they report.

use super::{COLUMN_HZ, DBM0_PEAK, DIGITS, ROW_HZ, SAMPLE_RATE_HZ};

/// Goertzel half-block length, samples (6.625 ms at 8 kHz).
pub const HALF_BLOCK: usize = 53;
/// Analysis window: two half-blocks, samples (13.25 ms at 8 kHz).
pub const WINDOW: usize = 2 * HALF_BLOCK;

/// Weakest tone of the pair accepted, dBm0 per tone. The operate ranges
/// in Q.24 go down to about −25 dBm0 per tone with up to 8 dB of twist,
/// i.e. −33 dBm0 for the weaker tone; we accept 3 dB below that, and stay
/// 9 dB above the −45 dBm0 pairs that must be rejected.
pub const MIN_TONE_DBM0: f32 = -36.0;
/// Normal twist: the column (high-group) tone may be this much weaker than
/// the row tone, dB.
pub const NORMAL_TWIST_DB: f32 = 8.0;
/// Reverse twist: the column tone may be this much stronger than the row
/// tone, dB. Q.24 asks for 4 dB, but G.729 (bcg729) lifts the column tone
/// relative to the row tone by up to 5.0 dB in one encode/decode pass and
/// 8.4 dB in two (measured over the 16 digits at −25…0 dBm0), so 4 dB
/// loses digits behind a G.729 tandem. 8 dB keeps them; speech is held off
/// by the other checks, which no speech window passes (see the tests).
/// Streams known to be G.711-only may use 4 via [`DetectorConfig`].
pub const REVERSE_TWIST_DB: f32 = 8.0;
/// The strongest row must exceed every other row (and the strongest column
/// every other column) by this much, dB.
pub const RELATIVE_PEAK_DB: f32 = 8.0;
/// Minimum share of the window's energy carried by the two tones (a ratio
/// of mean-square powers). Clean DTMF measures 0.90–1.10 (each tone's
/// estimate includes some leakage of the other), through G.729 once
/// ≥ 0.85, twice ≥ 0.8 in most windows (single windows down to 0.59,
/// bridged by the timing). Speech windows that pass the level, twist and
/// relative-peak checks measure ≤ 0.26 (SIPp's recorded speech) and
/// ≤ 0.70 (our synthetic speech: narrow formants on a harmonic comb).
pub const MIN_TONE_FRACTION: f32 = 0.7;
/// Largest frequency deviation accepted, averaged over the windows that
/// start a digit, as a fraction of the nominal frequency: Q.24 requires
/// operation at ±1.5 % and non-operation at ±3.5 %; we cut in the middle.
/// Measured averages: ≤ 1.71 % for ±1.5 % tones, ≥ 3.37 % for ±3.5 %.
pub const MAX_DEVIATION: f32 = 0.025;
/// Largest frequency deviation of a single window, as a fraction of the
/// nominal frequency: a loose gate (single-window estimates of ±1.5 %
/// tones reach 2.4 %, through a G.729 tandem 2.2 %) that keeps tones far
/// off frequency out of a run. At 1633 Hz 4 % is 65 Hz, inside the
/// estimator's unambiguous ±75 Hz.
pub const MAX_WINDOW_DEVIATION: f32 = 0.04;
/// Consecutive windows holding a digit before it starts (≈ 40 ms of tone).
pub const START_WINDOWS: u32 = 5;
/// Consecutive windows without the digit before it ends (≈ 26 ms).
pub const END_MISSES: u32 = 4;

const TONES: usize = 8;

/// The detector's tuning, in the units of the constants above. The
/// [`Default`] is those constants; other values are for experiments and
/// for streams known to be cleaner or dirtier than usual.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    pub min_tone_dbm0: f32,
    pub normal_twist_db: f32,
    pub reverse_twist_db: f32,
    pub relative_peak_db: f32,
    pub min_tone_fraction: f32,
    pub max_deviation: f32,
    pub start_windows: u32,
    pub end_misses: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            min_tone_dbm0: MIN_TONE_DBM0,
            normal_twist_db: NORMAL_TWIST_DB,
            reverse_twist_db: REVERSE_TWIST_DB,
            relative_peak_db: RELATIVE_PEAK_DB,
            min_tone_fraction: MIN_TONE_FRACTION,
            max_deviation: MAX_DEVIATION,
            start_windows: START_WINDOWS,
            end_misses: END_MISSES,
        }
    }
}

/// What the detector reports. Positions are on the detector's sample clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorEvent {
    /// A digit confirmed; `at_sample` is where its tone began.
    Start { digit: char, at_sample: u64 },
    /// The digit's tone stopped at `at_sample`, having lasted
    /// `duration_samples` (from its Start's `at_sample`).
    End {
        digit: char,
        at_sample: u64,
        duration_samples: u64,
    },
}

/// The per-window limits as linear ratios of mean-square powers.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    /// Minimum tone power (mean square, 16-bit units²).
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    min_fraction: f32,
    start_windows: u32,
    end_misses: u32,
    /// Largest phase drift per half-block for each tone, rad: averaged
    /// over a run, and in a single window.
    max_drift: [f32; TONES],
    max_window_drift: [f32; TONES],
}

impl Thresholds {
    fn new(config: &DetectorConfig, freqs: &[f32; TONES]) -> Self {
        let db = |d: f32| 10f32.powf(d / 10.0);
        let dbm0_power = DBM0_PEAK * DBM0_PEAK / 2.0;
        Thresholds {
            min_power: dbm0_power * db(config.min_tone_dbm0),
            normal_twist: db(config.normal_twist_db),
            reverse_twist: db(config.reverse_twist_db),
            relative_peak: db(config.relative_peak_db),
            min_fraction: config.min_tone_fraction,
            start_windows: config.start_windows.max(1),
            end_misses: config.end_misses.max(1),
            max_drift: freqs.map(|f| drift_of(config.max_deviation, f)),
            max_window_drift: freqs.map(|f| drift_of(MAX_WINDOW_DEVIATION, f)),
        }
    }
}

/// One analysis window, reduced to what the decision needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Estimated mean-square power of a tone at each Q.23 frequency.
    pub(crate) power: [f32; TONES],
    /// e^{−jωM}·y_k·conj(y_{k−1}) per frequency, whose angle is the phase
    /// drift between the two halves (see [`Window::drift`]). Summed over
    /// windows it averages the drift, weighted by power.
    pub(crate) z: [(f32, f32); TONES],
    /// Mean-square power of the whole window.
    pub(crate) total: f32,
}

impl Window {
    /// Phase drift between the two halves at frequency `i`, rad (0 for a
    /// tone exactly on frequency). Computed only for the two candidate
    /// tones: an `atan2` is as dear as the filter bank over 20 samples.
    fn drift(&self, i: usize) -> f32 {
        self.z.get(i).map_or(0.0, |&(re, im)| im.atan2(re))
    }
}

/// Why a window does not hold a digit (for tests and tuning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    Level,
    Twist,
    RelativePeak,
    Fraction,
    Frequency,
}

#[derive(Debug, Clone, Copy)]
struct Tone {
    digit: u8,
    onset: u64,
    last_end: u64,
    misses: u32,
}

/// In-band DTMF detector at 8 kHz. See the module documentation.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    // Constants of the filter bank.
    coef: [f32; TONES],
    cos_w: [f32; TONES],
    sin_w: [f32; TONES],
    /// e^{−jωM}: rotates the second half's value onto the first half's.
    rot_re: [f32; TONES],
    rot_im: [f32; TONES],
    limits: Thresholds,
    // Goertzel state of the current half-block.
    s1: [f32; TONES],
    s2: [f32; TONES],
    energy: f32,
    fill: usize,
    // The previous half-block's DFT values and energy.
    prev_re: [f32; TONES],
    prev_im: [f32; TONES],
    prev_energy: f32,
    have_prev: bool,
    position: u64,
    // Candidate run of windows holding the same digit.
    run_digit: u8,
    run_len: u32,
    run_onset: u64,
    /// Σ z over the run for its row and column tone.
    run_z: [(f32, f32); 2],
    tone: Option<Tone>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector for 8 kHz PCM with the default tuning, at sample
    /// position 0.
    pub fn new() -> Self {
        Self::with_config(&DetectorConfig::default())
    }

    /// A detector with another tuning.
    pub fn with_config(config: &DetectorConfig) -> Self {
        let mut freqs = [0f32; TONES];
        freqs[..4].copy_from_slice(&ROW_HZ);
        freqs[4..].copy_from_slice(&COLUMN_HZ);
        let omega = freqs.map(|f| std::f32::consts::TAU * f / SAMPLE_RATE_HZ);
        let half = HALF_BLOCK as f32;
        DtmfDetector {
            coef: omega.map(|w| 2.0 * w.cos()),
            cos_w: omega.map(f32::cos),
            sin_w: omega.map(f32::sin),
            rot_re: omega.map(|w| (w * half).cos()),
            rot_im: omega.map(|w| -(w * half).sin()),
            limits: Thresholds::new(config, &freqs),
            s1: [0.0; TONES],
            s2: [0.0; TONES],
            energy: 0.0,
            fill: 0,
            prev_re: [0.0; TONES],
            prev_im: [0.0; TONES],
            prev_energy: 0.0,
            have_prev: false,
            position: 0,
            run_digit: 0,
            run_len: 0,
            run_onset: 0,
            run_z: [(0.0, 0.0); 2],
            tone: None,
        }
    }

    /// Feeds samples (any block size) and appends the events they complete
    /// to `out`. Allocates nothing once `out` has capacity.
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<DetectorEvent>) {
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (HALF_BLOCK - self.fill).min(rest.len());
            let (chunk, tail) = rest.split_at(take);
            self.filter(chunk);
            rest = tail;
            self.fill += take;
            self.position += take as u64;
            if self.fill == HALF_BLOCK {
                self.end_half_block(out);
            }
        }
    }

    /// Ends a digit still in progress (at the end of a stream): appends its
    /// End event, and forgets any candidate.
    pub fn finish(&mut self, out: &mut Vec<DetectorEvent>) {
        if let Some(tone) = self.tone.take() {
            out.push(end_event(&tone));
        }
        self.run_len = 0;
    }

    /// Total samples consumed (the detector's clock).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Whether a tone is being detected: a digit has started and not ended,
    /// or at least two windows in a row (≈ 20 ms) hold the same digit.
    /// Callers suppressing leaked in-band tones use this.
    pub fn in_tone(&self) -> bool {
        self.tone.is_some() || self.run_len >= 2
    }

    /// The digit currently started and not yet ended, if any.
    pub fn current_digit(&self) -> Option<char> {
        self.tone.map(|t| digit_char(t.digit))
    }

    /// Runs the filter bank over samples of the current half-block.
    #[inline]
    fn filter(&mut self, chunk: &[i16]) {
        let coef = self.coef;
        let mut s1 = self.s1;
        let mut s2 = self.s2;
        let mut energy = self.energy;
        for &x in chunk {
            let x = f32::from(x);
            energy += x * x;
            for i in 0..TONES {
                let s0 = x + coef[i] * s1[i] - s2[i];
                s2[i] = s1[i];
                s1[i] = s0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.energy = energy;
    }

    /// The completed half-block's DFT values, one per frequency:
    /// y = Σ x[n]·e^{jω(M−1−n)} = s[M−1] − e^{−jω}·s[M−2].
    fn half_block_values(&self) -> ([f32; TONES], [f32; TONES]) {
        let mut y_re = [0f32; TONES];
        let mut y_im = [0f32; TONES];
        for i in 0..TONES {
            y_re[i] = self.s1[i] - self.cos_w[i] * self.s2[i];
            y_im[i] = self.sin_w[i] * self.s2[i];
        }
        (y_re, y_im)
    }

    fn end_half_block(&mut self, out: &mut Vec<DetectorEvent>) {
        let (y_re, y_im) = self.half_block_values();
        if self.have_prev {
            let window = self.combine(&y_re, &y_im);
            let digit = self.limits.classify(&window).ok();
            let end = self.position;
            self.update(&window, digit, end.saturating_sub(WINDOW as u64), end, out);
        }
        self.prev_re = y_re;
        self.prev_im = y_im;
        self.prev_energy = self.energy;
        self.have_prev = true;
        self.s1 = [0.0; TONES];
        self.s2 = [0.0; TONES];
        self.energy = 0.0;
        self.fill = 0;
    }

    /// The window made of the previous half-block and this one (`y`).
    fn combine(&self, y_re: &[f32; TONES], y_im: &[f32; TONES]) -> Window {
        // A sine of amplitude A on frequency gives |W| = A·N/2 over N
        // samples, whose mean square A²/2 is then 2·|W|²/N².
        let scale = 2.0 / (WINDOW * WINDOW) as f32;
        let mut power = [0f32; TONES];
        let mut zz = [(0f32, 0f32); TONES];
        for i in 0..TONES {
            // a = e^{−jωM}·y_k, z = a·conj(y_{k−1});
            // W = y_{k−1} + a, |W|² = |y_{k−1}|² + |a|² + 2·Re z.
            let a_re = self.rot_re[i] * y_re[i] - self.rot_im[i] * y_im[i];
            let a_im = self.rot_re[i] * y_im[i] + self.rot_im[i] * y_re[i];
            let (p_re, p_im) = (self.prev_re[i], self.prev_im[i]);
            let z_re = a_re * p_re + a_im * p_im;
            let z_im = a_im * p_re - a_re * p_im;
            let w2 = p_re * p_re + p_im * p_im + a_re * a_re + a_im * a_im + 2.0 * z_re;
            power[i] = w2.max(0.0) * scale;
            zz[i] = (z_re, z_im);
        }
        Window {
            power,
            z: zz,
            total: (self.prev_energy + self.energy) / WINDOW as f32,
        }
    }

    /// Advances the timing state machine by one window.
    fn update(
        &mut self,
        window: &Window,
        digit: Option<u8>,
        start: u64,
        end: u64,
        out: &mut Vec<DetectorEvent>,
    ) {
        match digit {
            Some(d) => {
                if self.run_len == 0 || self.run_digit != d {
                    self.run_digit = d;
                    self.run_len = 0;
                    self.run_onset = start;
                    self.run_z = [(0.0, 0.0); 2];
                }
                self.run_len = self.run_len.saturating_add(1);
                let tones = tone_indices(d);
                for (sum, tone) in self.run_z.iter_mut().zip(tones) {
                    let (re, im) = window.z[tone];
                    *sum = (sum.0 + re, sum.1 + im);
                }
            }
            None => self.run_len = 0,
        }
        if let Some(tone) = self.tone.as_mut() {
            if digit == Some(tone.digit) {
                tone.last_end = end;
                tone.misses = 0;
            } else {
                tone.misses += 1;
                if tone.misses >= self.limits.end_misses {
                    out.push(end_event(tone));
                    self.tone = None;
                }
            }
        }
        if self.tone.is_none()
            && self.run_len >= self.limits.start_windows
            && self.run_on_frequency()
        {
            out.push(DetectorEvent::Start {
                digit: digit_char(self.run_digit),
                at_sample: self.run_onset,
            });
            self.tone = Some(Tone {
                digit: self.run_digit,
                onset: self.run_onset,
                last_end: end,
                misses: 0,
            });
        }
    }
}

impl DtmfDetector {
    /// Whether both tones of the current run, averaged over it, are within
    /// [`MAX_DEVIATION`] of nominal.
    fn run_on_frequency(&self) -> bool {
        let tones = tone_indices(self.run_digit);
        self.run_z
            .iter()
            .zip(tones)
            .all(|(&(re, im), tone)| im.atan2(re).abs() <= self.limits.max_drift[tone])
    }
}

/// The filter-bank indices (rows 0..4, columns 4..8) of a digit's tones.
fn tone_indices(digit: u8) -> [usize; 2] {
    let d = usize::from(digit) % 16;
    [d / 4, 4 + d % 4]
}

impl Thresholds {
    /// The digit a window holds (index into [`DIGITS`]), or why none.
    fn classify(&self, w: &Window) -> Result<u8, Reject> {
        let (row, row_p) = strongest(&w.power[..4]);
        let (col, col_p) = strongest(&w.power[4..]);
        if row_p < self.min_power || col_p < self.min_power {
            return Err(Reject::Level);
        }
        if row_p > col_p * self.normal_twist || col_p > row_p * self.reverse_twist {
            return Err(Reject::Twist);
        }
        let others_low = |group: &[f32], best: usize, best_p: f32| {
            group
                .iter()
                .enumerate()
                .all(|(i, &p)| i == best || p * self.relative_peak <= best_p)
        };
        if !others_low(&w.power[..4], row, row_p) || !others_low(&w.power[4..], col, col_p) {
            return Err(Reject::RelativePeak);
        }
        if row_p + col_p < self.min_fraction * w.total {
            return Err(Reject::Fraction);
        }
        let off = |i: usize| w.drift(i).abs() > self.max_window_drift[i];
        if off(row) || off(4 + col) {
            return Err(Reject::Frequency);
        }
        Ok((4 * row + col) as u8)
    }
}

/// Phase drift per half-block, rad, of a tone `deviation` (a fraction)
/// off `freq`.
fn drift_of(deviation: f32, freq: f32) -> f32 {
    std::f32::consts::TAU * deviation * freq * HALF_BLOCK as f32 / SAMPLE_RATE_HZ
}

/// Index and value of the largest of `powers` (first on ties).
fn strongest(powers: &[f32]) -> (usize, f32) {
    powers.iter().enumerate().fold(
        (0, f32::MIN),
        |best, (i, &p)| if p > best.1 { (i, p) } else { best },
    )
}

fn digit_char(index: u8) -> char {
    DIGITS.get(usize::from(index)).copied().unwrap_or('?')
}

fn end_event(tone: &Tone) -> DetectorEvent {
    DetectorEvent::End {
        digit: digit_char(tone.digit),
        at_sample: tone.last_end,
        duration_samples: tone.last_end.saturating_sub(tone.onset),
    }
}

#[cfg(test)]
impl DtmfDetector {
    /// Test hook: every window's analysis and decision, in order.
    pub(crate) fn windows(
        config: &DetectorConfig,
        pcm: &[i16],
    ) -> Vec<(Window, Result<u8, Reject>)> {
        let mut det = DtmfDetector::with_config(config);
        let mut found = Vec::new();
        let mut events = Vec::new();
        for half in pcm.chunks_exact(HALF_BLOCK) {
            det.filter(half);
            det.fill = HALF_BLOCK;
            det.position += HALF_BLOCK as u64;
            let (y_re, y_im) = det.half_block_values();
            if det.have_prev {
                let w = det.combine(&y_re, &y_im);
                found.push((w, det.limits.classify(&w)));
            }
            det.end_half_block(&mut events);
        }
        found
    }

    /// Test hook: the fraction of a window's power in its strongest row
    /// and column.
    pub(crate) fn tone_fraction(w: &Window) -> f32 {
        let (_, row_p) = strongest(&w.power[..4]);
        let (_, col_p) = strongest(&w.power[4..]);
        (row_p + col_p) / w.total.max(1.0)
    }

    /// Test hook: the frequency deviation the window measures at tone
    /// `index` (0..8: rows then columns), as a fraction of its frequency.
    pub(crate) fn deviation(w: &Window, index: usize) -> f32 {
        let freq = if index < 4 {
            ROW_HZ[index]
        } else {
            COLUMN_HZ[index - 4]
        };
        w.drift(index) * SAMPLE_RATE_HZ / (std::f32::consts::TAU * freq * HALF_BLOCK as f32)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
