//! Test material from outside the repository: the G.168 echo path models
//! (spandsp's `g168models.h`) and real speech (SIPp's `g711a.pcap`).

use super::EchoPath;
use crate::codec::g711;

pub(crate) const G168_HEADER: &str = "/usr/include/spandsp/g168models.h";
pub(crate) const SPEECH_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

/// Fixed-seed noise (Numerical Recipes LCG).
pub(crate) struct Lcg(u32);

impl Lcg {
    pub(crate) fn new(seed: u32) -> Self {
        Lcg(seed)
    }

    /// Uniform on `[0, 1)`.
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        f64::from(self.0 >> 8) / f64::from(1u32 << 24)
    }

    /// Approximately Gaussian, unit variance (sum of 12 uniforms − 6).
    pub(crate) fn gaussian(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

fn read_header() -> String {
    std::fs::read_to_string(G168_HEADER).unwrap_or_else(|e| {
        panic!(
            "{G168_HEADER}: {e}. The G.168 echo path models come from Debian's \
             libspandsp-dev: apt-get install libspandsp-dev"
        )
    })
}

/// The numbers between the braces following `name` in the header.
fn array_after(text: &str, name: &str) -> Option<Vec<i64>> {
    let start = text.find(name)?;
    let open = start + text[start..].find('{')?;
    let close = open + text[open..].find("};")?;
    Some(
        text[open..close]
            .split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .filter(|t| !t.is_empty() && *t != "-")
            .map(|t| t.parse().unwrap())
            .collect(),
    )
}

/// Every `line_model_*_coeffs` array of the header, as unit-energy
/// responses with no added delay, in header order.
pub(crate) fn g168_models() -> Vec<EchoPath> {
    let text = read_header();
    let mut models = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("line_model_") {
        let tail = &rest[i..];
        let name_end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..name_end];
        if let Some(model) = name
            .strip_prefix("line_model_")
            .and_then(|n| n.strip_suffix("_coeffs"))
        {
            if tail[name_end..].trim_start().starts_with("[]") {
                let taps = array_after(tail, name).unwrap();
                let norm = taps.iter().map(|&t| (t as f64).powi(2)).sum::<f64>().sqrt();
                models.push(EchoPath {
                    name: model.to_uppercase(),
                    response: taps.iter().map(|&t| t as f64 / norm).collect(),
                    delay: 0,
                });
            }
        }
        rest = &tail[name_end..];
    }
    assert!(
        models.len() >= 8,
        "{G168_HEADER}: expected the G.168 models D2..D9, found {}",
        models.len()
    );
    models
}

/// G.168 §6.4.2.7 (test 6) narrow-band signals: `(f1, f2)` Hz, `f2 = 0`
/// for a single tone.
pub(crate) fn g168_tones() -> Vec<(f64, f64)> {
    let text = read_header();
    let numbers = array_after(&text, "tones_6_4_2_7").unwrap();
    numbers
        .chunks_exact(2)
        .map(|p| (p[0] as f64, p[1] as f64))
        .take_while(|p| p.0 > 0.0)
        .collect()
}

/// The A-law speech of SIPp's `g711a.pcap`, decoded, from the first
/// talking frame on.
pub(crate) fn pcap_speech() -> Vec<f64> {
    let packets = crate::test_pcap::pcap_rtp(SPEECH_PCAP).unwrap_or_else(|| {
        panic!("{SPEECH_PCAP}: missing or unreadable. The speech sample comes from Debian's sip-tester")
    });
    let first_ssrc = packets.iter().find(|p| p.pt == 8).map(|p| p.ssrc);
    let mut pcm: Vec<f64> = packets
        .iter()
        .filter(|p| p.pt == 8 && Some(p.ssrc) == first_ssrc)
        .flat_map(|p| p.payload.iter().map(|&c| f64::from(g711::alaw_decode(c))))
        .collect();
    let first_talk = pcm
        .chunks(160)
        .position(|f| super::power(f).sqrt() > 500.0)
        .unwrap_or(0);
    let speech = pcm.split_off(first_talk * 160);
    assert!(
        speech.len() > 4 * super::RATE,
        "{SPEECH_PCAP}: only {} samples of speech",
        speech.len()
    );
    speech
}

/// `len` samples of `x` from `offset`, looped.
pub(crate) fn looped(x: &[f64], offset: usize, len: usize) -> Vec<f64> {
    (0..len).map(|n| x[(offset + n) % x.len()]).collect()
}

/// Fixed-seed Gaussian noise, `len` samples.
pub(crate) fn noise(len: usize, seed: u32) -> Vec<f64> {
    let mut lcg = Lcg::new(seed);
    (0..len).map(|_| lcg.gaussian()).collect()
}

/// Sum of sines at `freqs` Hz (0 Hz ignored), equal amplitudes.
pub(crate) fn tones(len: usize, freqs: &[f64]) -> Vec<f64> {
    let tau = 2.0 * std::f64::consts::PI;
    (0..len)
        .map(|n| {
            let t = n as f64 / super::RATE as f64;
            freqs
                .iter()
                .filter(|f| **f > 0.0)
                .map(|f| (tau * f * t).sin())
                .sum()
        })
        .collect()
}
