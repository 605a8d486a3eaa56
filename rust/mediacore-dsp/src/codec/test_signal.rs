//! Deterministic test signals shared by the codec tests.

/// Numerical Recipes LCG: a fixed-seed noise source, identical on every run.
pub(crate) struct Lcg(u32);

impl Lcg {
    pub(crate) fn new(seed: u32) -> Self {
        Lcg(seed)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }

    /// Uniform in `-amplitude..=amplitude`.
    pub(crate) fn noise(&mut self, amplitude: i32) -> i32 {
        (self.next_u32() >> 16) as i32 % (2 * amplitude + 1) - amplitude
    }
}

/// Speech-like 8 kHz audio: a 140 Hz voice with harmonics and two formant
/// bands, a syllable envelope at ~4 Hz, plus noise. With `pauses`, every
/// other second is background noise only (for VAD/DTX).
pub(crate) fn speech_like(samples: usize, seed: u32, pauses: bool) -> Vec<i16> {
    let mut lcg = Lcg::new(seed);
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let talking = !pauses || (n / 8000) % 2 == 0;
            let mut x = 0.0;
            if talking {
                let pitch = 140.0 + 20.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
                let phase = 2.0 * std::f64::consts::PI * pitch * t;
                let envelope = (2.0 * std::f64::consts::PI * 3.7 * t).sin().abs();
                x = envelope
                    * (6000.0 * phase.sin()
                        + 3000.0 * (2.0 * phase).sin()
                        + 1500.0 * (3.0 * phase).sin()
                        + 1200.0 * (2.0 * std::f64::consts::PI * 700.0 * t).sin()
                        + 600.0 * (2.0 * std::f64::consts::PI * 1900.0 * t).sin());
            }
            let noise = lcg.noise(if talking { 300 } else { 60 });
            (x as i32 + noise).clamp(-32768, 32767) as i16
        })
        .collect()
}

/// Energy of a signal, as f64 sum of squares.
pub(crate) fn energy(x: &[i16]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

/// Best normalised cross-correlation of `output` against `input` over
/// output delays `0..max_lag`, with the lag found.
pub(crate) fn best_correlation(input: &[i16], output: &[i16], max_lag: usize) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for lag in 0..max_lag {
        let n = input.len().min(output.len().saturating_sub(lag));
        let a = &input[..n];
        let b = &output[lag..lag + n];
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let norm = (energy(a) * energy(b)).sqrt();
        let c = if norm > 0.0 { dot / norm } else { 0.0 };
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}
