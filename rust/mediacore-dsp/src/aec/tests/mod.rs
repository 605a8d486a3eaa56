//! Echo canceller tests, G.168 style: echo paths are the ITU-T G.168
//! Annex D line models as shipped by spandsp (`spandsp/g168models.h`,
//! Debian libspandsp-dev), read at test time; the far-end talker is real
//! speech from SIPp's `g711a.pcap` (Debian sip-tester), or noise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod double_talk;
mod g168;
mod golden;
mod robustness;
mod signals;
mod stats_delay;
mod tones;

use super::{EchoCanceller, EchoCancellerConfig, TimeDomainEchoCanceller};
use crate::codec::g711;
use signals::Lcg;

/// 0 dBm0 as the RMS of a 16-bit linear signal (A-law: a full-scale sine
/// is +3.14 dBm0).
pub(super) const DBM0_RMS: f64 = 16_135.0;
pub(super) const RATE: usize = 8000;
pub(super) const BLOCK: usize = 160;

pub(super) fn rms_for_dbm0(dbm0: f64) -> f64 {
    DBM0_RMS * 10f64.powf(dbm0 / 20.0)
}

pub(super) fn power(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
}

pub(super) fn db(num: f64, den: f64) -> f64 {
    10.0 * ((num + 1e-9) / (den + 1e-9)).log10()
}

pub(super) fn to_f64(x: &[i16]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// Scale `x` so that its RMS is `dbm0`.
pub(super) fn at_level(x: &[f64], dbm0: f64) -> Vec<f64> {
    let k = rms_for_dbm0(dbm0) / power(x).sqrt().max(1e-9);
    x.iter().map(|v| v * k).collect()
}

pub(super) fn quantise(x: &[f64]) -> Vec<i16> {
    x.iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// The canceller under test: the block frequency-domain one, or with
/// `AEC_REFERENCE=1` in the environment the time-domain reference (to
/// compare their figures on the same tests).
enum Canceller {
    Block(Box<EchoCanceller>),
    Reference(Box<TimeDomainEchoCanceller>),
}

impl Canceller {
    fn new(cfg: EchoCancellerConfig) -> Self {
        if std::env::var_os("AEC_REFERENCE").is_some_and(|v| v == "1") {
            Canceller::Reference(Box::new(TimeDomainEchoCanceller::new(cfg).unwrap()))
        } else {
            Canceller::Block(Box::new(EchoCanceller::new(cfg).unwrap()))
        }
    }

    fn process(&mut self, far: &[i16], near: &[i16], out: &mut [i16]) {
        match self {
            Canceller::Block(a) => a.process(far, near, out),
            Canceller::Reference(a) => a.process(far, near, out),
        }
    }

    fn stats(&self) -> super::EchoStats {
        match self {
            Canceller::Block(a) => a.stats(),
            Canceller::Reference(a) => a.stats(),
        }
    }
}

/// An echo path: impulse response (unit energy) behind a pure delay.
#[derive(Clone)]
pub(super) struct EchoPath {
    pub name: String,
    pub response: Vec<f64>,
    pub delay: usize,
}

impl EchoPath {
    /// Echo of `far` through the path, scaled so that the echo return loss
    /// over the whole signal is `erl_db`.
    pub(super) fn echo(&self, far: &[f64], erl_db: f64) -> Vec<f64> {
        let mut echo = vec![0.0; far.len()];
        for (n, out) in echo.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (k, h) in self.response.iter().enumerate() {
                if let Some(i) = n.checked_sub(self.delay + k) {
                    acc += h * far[i];
                }
            }
            *out = acc;
        }
        let k = (power(far) / power(&echo).max(1e-9) * 10f64.powf(-erl_db / 10.0)).sqrt();
        echo.iter_mut().for_each(|v| *v *= k);
        echo
    }

    /// Delay of the response's largest tap, samples.
    pub(super) fn bulk_delay(&self) -> usize {
        let peak = self
            .response
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map_or(0, |(k, _)| k);
        self.delay + peak
    }
}

/// One canceller run: the signals and what came out.
pub(super) struct Run {
    /// Echo alone (before quantisation), the near-end talker alone, and the
    /// background noise alone, as added into `near`.
    pub echo: Vec<f64>,
    pub talker: Vec<f64>,
    pub noise: Vec<f64>,
    pub near: Vec<i16>,
    pub out: Vec<i16>,
    /// Stats after each block.
    pub stats: Vec<super::EchoStats>,
}

pub(super) struct Scenario<'a> {
    pub path: &'a EchoPath,
    pub far: &'a [f64],
    pub erl_db: f64,
    /// Near-end talker added to the echo (zeros for none).
    pub talker: Option<&'a [f64]>,
    /// Near-end background noise level, dBm0.
    pub noise_dbm0: f64,
    /// Pass the near end through A-law encode/decode.
    pub g711: bool,
    pub cfg: EchoCancellerConfig,
}

impl Scenario<'_> {
    pub(super) fn run(&self) -> Run {
        let far = quantise(self.far);
        let echo = self.path.echo(&to_f64(&far), self.erl_db);
        let mut lcg = Lcg::new(0x5eed);
        let noise: Vec<f64> = at_level(
            &(0..far.len()).map(|_| lcg.gaussian()).collect::<Vec<_>>(),
            self.noise_dbm0,
        );
        let talker = self
            .talker
            .map_or_else(|| vec![0.0; far.len()], <[f64]>::to_vec);
        let mixed: Vec<f64> = (0..far.len())
            .map(|n| echo[n] + noise[n] + talker.get(n).copied().unwrap_or(0.0))
            .collect();
        let mut near = quantise(&mixed);
        if self.g711 {
            near.iter_mut()
                .for_each(|s| *s = g711::alaw_decode(g711::alaw_encode(*s)));
        }
        let mut aec = Canceller::new(self.cfg);
        let mut out = vec![0i16; far.len()];
        let mut stats = Vec::new();
        for ((x, d), o) in far
            .chunks(BLOCK)
            .zip(near.chunks(BLOCK))
            .zip(out.chunks_mut(BLOCK))
        {
            aec.process(x, d, o);
            stats.push(aec.stats());
        }
        Run {
            echo,
            talker,
            noise,
            near,
            out,
            stats,
        }
    }
}

impl Run {
    /// ERLE over `[from, to)` seconds: near-end power over output power.
    pub(super) fn erle(&self, from: f64, to: f64) -> f64 {
        let r = span(from, to, self.out.len());
        db(
            power(&to_f64(&self.near[r.clone()])),
            power(&to_f64(&self.out[r])),
        )
    }

    /// Echo attenuation of the linear canceller over `[from, to)` seconds:
    /// echo power over the power of what is left of it in the output (the
    /// output minus the background noise and near-end talker that the
    /// canceller must pass through). Meaningful with the NLP off.
    pub(super) fn linear_erle(&self, from: f64, to: f64) -> f64 {
        let r = span(from, to, self.out.len());
        let residual: Vec<f64> = r
            .clone()
            .map(|n| f64::from(self.out[n]) - self.noise[n] - self.talker[n])
            .collect();
        db(power(&self.echo[r]), power(&residual))
    }

    pub(super) fn stats_at(&self, seconds: f64) -> super::EchoStats {
        let block = ((seconds * RATE as f64) as usize / BLOCK).saturating_sub(1);
        self.stats[block.min(self.stats.len() - 1)]
    }
}

pub(super) fn span(from: f64, to: f64, len: usize) -> std::ops::Range<usize> {
    let a = ((from * RATE as f64) as usize).min(len);
    let b = ((to * RATE as f64) as usize).min(len);
    a..b
}

pub(super) fn cfg(tail_ms: u32, nlp: bool) -> EchoCancellerConfig {
    EchoCancellerConfig {
        tail_ms,
        nlp,
        comfort_noise: true,
    }
}
