//! Deterministic signals and helpers shared by the DTMF tests.

use std::f64::consts::TAU;

use super::{DetectorEvent, DtmfDetector, DtmfGenerator, DBM0_PEAK};

/// Numerical Recipes LCG: fixed-seed noise, identical on every run.
pub(crate) struct Lcg(u32);

impl Lcg {
    pub(crate) fn new(seed: u32) -> Self {
        Lcg(seed)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        f64::from(self.next_u32() >> 8) / f64::from(1u32 << 24)
    }

    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Approximately Gaussian, unit variance (sum of 12 uniforms).
    pub(crate) fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// Peak amplitude of a sine at `dbm0`.
pub(crate) fn dbm0_peak(dbm0: f64) -> f64 {
    f64::from(DBM0_PEAK) * 10f64.powf(dbm0 / 20.0)
}

pub(crate) fn to_i16(x: f64) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

/// A tone pair with independent frequencies and levels (dBm0 per tone).
pub(crate) fn tone_pair_pcm(
    (low_hz, high_hz): (f64, f64),
    (low_dbm0, high_dbm0): (f64, f64),
    samples: usize,
) -> Vec<i16> {
    let (a_low, a_high) = (dbm0_peak(low_dbm0), dbm0_peak(high_dbm0));
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            to_i16(a_low * (TAU * low_hz * t).sin() + a_high * (TAU * high_hz * t + 1.0).sin())
        })
        .collect()
}

/// `digits` through [`DtmfGenerator`] at `level` dBm0, each `on` samples,
/// with `off` samples of silence before each digit and after the last.
pub(crate) fn digit_sequence(digits: &str, level: f32, on: usize, off: usize) -> Vec<i16> {
    let mut pcm = Vec::new();
    for digit in digits.chars() {
        pcm.extend(std::iter::repeat_n(0i16, off));
        let mut generator = DtmfGenerator::new(digit, level, on as u64).unwrap();
        let start = pcm.len();
        pcm.resize(start + on, 0);
        assert_eq!(generator.fill(&mut pcm[start..]), on);
        assert!(generator.is_done());
    }
    pcm.extend(std::iter::repeat_n(0i16, off));
    pcm
}

/// Runs a fresh detector over `pcm` in 20 ms blocks, then `finish`.
pub(crate) fn detect(pcm: &[i16]) -> Vec<DetectorEvent> {
    let mut detector = DtmfDetector::new();
    let mut events = Vec::new();
    for block in pcm.chunks(160) {
        detector.process(block, &mut events);
    }
    detector.finish(&mut events);
    assert_eq!(detector.position(), pcm.len() as u64);
    events
}

/// (digit, start, duration) of each reported digit; checks that every
/// Start is followed by its End before anything else.
pub(crate) fn digits(events: &[DetectorEvent]) -> Vec<(char, u64, u64)> {
    assert_eq!(events.len() % 2, 0, "unpaired events: {events:?}");
    events
        .chunks(2)
        .map(|pair| match *pair {
            [DetectorEvent::Start { digit, at_sample }, DetectorEvent::End {
                digit: end_digit,
                at_sample: end,
                duration_samples,
            }] => {
                assert_eq!(digit, end_digit, "{events:?}");
                assert_eq!(end - at_sample, duration_samples);
                (digit, at_sample, duration_samples)
            }
            _ => panic!("events out of order: {events:?}"),
        })
        .collect()
}

pub(crate) fn digit_string(events: &[DetectorEvent]) -> String {
    digits(events).iter().map(|d| d.0).collect()
}

/// `pcm` scaled by `db`, saturating.
pub(crate) fn gain(pcm: &[i16], db: f64) -> Vec<i16> {
    let g = 10f64.powf(db / 20.0);
    pcm.iter().map(|&s| to_i16(f64::from(s) * g)).collect()
}

/// Mean-square power.
pub(crate) fn power(pcm: &[i16]) -> f64 {
    pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64
}

/// Magnitude of the DFT of `pcm` at `hz` (rectangular window).
pub(crate) fn dft_magnitude(pcm: &[i16], hz: f64) -> f64 {
    let w = TAU * hz / 8000.0;
    let (re, im) = pcm
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(re, im), (n, &x)| {
            let (s, c) = (w * n as f64).sin_cos();
            (re + f64::from(x) * c, im - f64::from(x) * s)
        });
    re.hypot(im)
}

/// Resonance gain at `hz` of a formant at `center` with `bandwidth`
/// (Lorentzian magnitude, 1 at the centre).
fn formant_gain(hz: f64, center: f64, bandwidth: f64) -> f64 {
    let half = bandwidth / 2.0;
    half / ((hz - center).powi(2) + half * half).sqrt()
}

/// Speech-like audio: syllables of 80–350 ms, voiced (a harmonic series on
/// a pitch gliding within 100–300 Hz, shaped by three moving formants and
/// a −6 dB/octave glottal tilt) or unvoiced (noise through a formant),
/// separated by short pauses, plus background noise. Peaks near −6 dBm0.
pub(crate) fn speech_like(samples: usize, seed: u32) -> Vec<i16> {
    const FRAME: usize = 80;
    let mut lcg = Lcg::new(seed);
    let mut out = Vec::with_capacity(samples);
    let mut phase = 0.0f64; // fundamental phase, rad
    let mut pitch = 150.0f64;
    let mut noise_state = 0.0f64;
    while out.len() < samples {
        // One syllable.
        let length = (lcg.range(0.08, 0.35) * 8000.0) as usize;
        let voiced = lcg.unit() < 0.8;
        let pitch_from = pitch;
        let pitch_to = lcg.range(100.0, 300.0);
        let formants_from = [
            lcg.range(250.0, 900.0),
            lcg.range(850.0, 2400.0),
            lcg.range(2200.0, 3300.0),
        ];
        let formants_to = formants_from.map(|f| f * lcg.range(0.8, 1.25));
        let bandwidths = [lcg.range(50.0, 120.0), lcg.range(60.0, 150.0), 200.0];
        let loudness = dbm0_peak(lcg.range(-30.0, -8.0));
        let mut amps = [0f64; 40];
        for n in 0..length {
            let x = n as f64 / length as f64;
            if n % FRAME == 0 {
                let f0 = pitch_from + (pitch_to - pitch_from) * x;
                let formants: Vec<f64> = (0..3)
                    .map(|i| formants_from[i] + (formants_to[i] - formants_from[i]) * x)
                    .collect();
                for (k, amp) in amps.iter_mut().enumerate() {
                    let hz = f0 * (k + 1) as f64;
                    *amp = if hz < 3800.0 {
                        let shape: f64 = (0..3)
                            .map(|i| {
                                formant_gain(hz, formants[i], bandwidths[i]) * [1.0, 0.5, 0.25][i]
                            })
                            .sum();
                        shape / (k + 1) as f64
                    } else {
                        0.0
                    };
                }
                let norm = amps.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-9);
                amps.iter_mut().for_each(|a| *a /= norm);
            }
            pitch = pitch_from + (pitch_to - pitch_from) * x;
            // Vibrato-like jitter on top of the glide.
            let f0 = pitch * (1.0 + 0.02 * (TAU * 5.3 * out.len() as f64 / 8000.0).sin());
            phase = (phase + TAU * f0 / 8000.0) % (TAU * 1000.0);
            let envelope = (std::f64::consts::PI * x).sin().powf(0.7);
            let value = if voiced {
                amps.iter()
                    .enumerate()
                    .filter(|(_, &a)| a > 0.0)
                    .map(|(k, a)| a * ((k + 1) as f64 * phase).sin())
                    .sum::<f64>()
            } else {
                // Crude fricative: first-order high-passed noise.
                let white = lcg.gauss();
                let hp = white - noise_state;
                noise_state = white;
                0.5 * hp
            };
            out.push(to_i16(loudness * envelope * value + 30.0 * lcg.gauss()));
            if out.len() == samples {
                break;
            }
        }
        // Pause between syllables (sometimes none).
        let pause = (lcg.range(0.0, 0.15) * 8000.0) as usize;
        for _ in 0..pause.min(samples - out.len()) {
            out.push(to_i16(30.0 * lcg.gauss()));
        }
    }
    out
}
