//! Non-linear processor: removes the residual echo the linear filter leaves
//! (G.711 quantisation noise of the echo, non-linear parts of the path),
//! replacing it with comfort noise at the level of the near-end background,
//! so the far-end talker hears neither their echo nor the line going dead.
//!
//! Suppression is decided per sample from short-term powers: the far end is
//! talking, no double talk, and the residual is at least
//! [`SUPPRESS_BELOW_ECHO`] under the echo estimate, i.e. what is left is
//! echo, not near-end speech. The output cross-fades between the residual
//! and comfort noise: quickly back to the residual (near-end speech onsets
//! must not be clipped), more slowly into suppression.

/// Residual this far below the echo estimate is treated as echo: a power
/// ratio of 4 (6 dB).
const SUPPRESS_BELOW_ECHO: f32 = 4.0;
/// Cross-fade steps per sample: into suppression over 8 ms, out over 2 ms.
const FADE_IN_STEP: f32 = 1.0 / 64.0;
const FADE_OUT_STEP: f32 = 1.0 / 16.0;
/// Background noise estimate: follows decreases of the short-term residual
/// power with this coefficient per sample (~8 ms)…
const NOISE_FALL: f32 = 1.0 / 64.0;
/// …and rises by this factor per sample (≈ 2 dB per second).
const NOISE_RISE: f32 = 1.0 + 1.0 / 16384.0;
/// Bounds of the comfort-noise power, i16² (≈ −90 … −30 dBm0).
const NOISE_FLOOR: f32 = 0.01;
const NOISE_CEILING: f32 = 260_000.0;

pub(super) struct NonLinearProcessor {
    comfort_noise: bool,
    /// Residual share of the output: 1 passes the residual, 0 suppresses it.
    gain: f32,
    noise_power: f32,
    seed: u32,
}

pub(super) struct NlpInput {
    pub residual: f32,
    pub residual_power: f32,
    pub echo_estimate_power: f32,
    pub double_talk: bool,
    pub converged: bool,
}

impl NonLinearProcessor {
    pub(super) fn new(comfort_noise: bool) -> Self {
        NonLinearProcessor {
            comfort_noise,
            gain: 1.0,
            // Start high: the tracker falls quickly to the real background.
            noise_power: NOISE_CEILING,
            seed: 0x2545_f491,
        }
    }

    pub(super) fn reset(&mut self) {
        *self = NonLinearProcessor::new(self.comfort_noise);
    }

    /// Background (noise floor) power of the residual, i16².
    pub(super) fn background(&self) -> f32 {
        self.noise_power
    }

    pub(super) fn process(&mut self, i: &NlpInput) -> f32 {
        let suppress = i.converged
            && !i.double_talk
            && i.residual_power * SUPPRESS_BELOW_ECHO <= i.echo_estimate_power;
        self.gain = if suppress {
            (self.gain - FADE_IN_STEP).max(0.0)
        } else {
            (self.gain + FADE_OUT_STEP).min(1.0)
        };
        if self.gain >= 1.0 {
            return i.residual;
        }
        let noise = if self.comfort_noise {
            self.noise()
        } else {
            0.0
        };
        self.gain * i.residual + (1.0 - self.gain) * noise
    }

    /// Follow the short-term residual power's minimum (call every sample,
    /// whether or not the NLP is enabled: the detector uses it too).
    pub(super) fn track_noise(&mut self, power: f32) {
        if power < self.noise_power {
            self.noise_power += (power - self.noise_power) * NOISE_FALL;
        } else {
            self.noise_power *= NOISE_RISE;
        }
        self.noise_power = self.noise_power.clamp(NOISE_FLOOR, NOISE_CEILING);
    }

    /// White noise of power `noise_power`: uniform on `[−a, a]` has power
    /// `a²/3`.
    fn noise(&mut self) -> f32 {
        self.seed = self
            .seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let unit = (self.seed >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
        unit * (3.0 * self.noise_power).sqrt()
    }
}
