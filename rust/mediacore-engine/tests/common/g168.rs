//! The ITU-T G.168 echo path models, read from spandsp's `g168models.h` (Debian
//! libspandsp-dev), for echo-canceller tests through a session.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub const G168_HEADER: &str = "/usr/include/spandsp/g168models.h";

/// Every `line_model_*_coeffs` array of the header as (name, unit-energy response), in header
/// order (D2, D3, ...).
pub fn models() -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read_to_string(G168_HEADER).unwrap_or_else(|e| {
        panic!("{G168_HEADER}: {e}; the G.168 models come from libspandsp-dev")
    });
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("line_model_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        let Some(model) = name
            .strip_prefix("line_model_")
            .and_then(|n| n.strip_suffix("_coeffs"))
        else {
            continue;
        };
        if !rest.trim_start().starts_with("[]") {
            continue;
        }
        let open = rest.find('{').unwrap();
        let close = open + rest[open..].find("};").unwrap();
        let taps: Vec<f64> = rest[open..close]
            .split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .filter(|t| !t.is_empty() && *t != "-")
            .map(|t| t.parse::<f64>().unwrap())
            .collect();
        let norm = taps.iter().map(|t| t * t).sum::<f64>().sqrt();
        out.push((
            model.to_uppercase(),
            taps.iter().map(|t| t / norm).collect(),
        ));
    }
    assert!(out.len() >= 8, "expected the G.168 models D2..D9");
    out
}

/// A hybrid: the echo of what the line receives, through a model, `delay` samples late and
/// `erl_db` down (for white noise; speech differs a little).
pub struct Hybrid {
    response: Vec<f64>,
    delay: usize,
    gain: f64,
    history: Vec<f64>,
}

impl Hybrid {
    pub fn new(response: Vec<f64>, delay: usize, erl_db: f64) -> Self {
        let len = response.len() + delay;
        Hybrid {
            response,
            delay,
            gain: 10f64.powf(-erl_db / 20.0),
            history: vec![0.0; len],
        }
    }

    /// The echo of the next sample sent toward the line.
    pub fn echo(&mut self, x: f64) -> f64 {
        self.history.rotate_right(1);
        self.history[0] = x;
        let past = &self.history[self.delay..];
        self.gain
            * self
                .response
                .iter()
                .zip(past)
                .map(|(h, v)| h * v)
                .sum::<f64>()
    }
}
