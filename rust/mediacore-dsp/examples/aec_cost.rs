//! CPU cost of the line echo canceller per 20 ms block, on one core: the
//! block frequency-domain canceller (`EchoCanceller`) against the
//! time-domain NLMS one it replaced (`TimeDomainEchoCanceller`, kept as the
//! reference), in the same invocation.
//!
//! `cargo run --release --example aec_cost -p mediacore-dsp`
//!
//! Two far ends, each with its echo (6 dB down, 5 ms late) plus a little
//! near-end noise:
//! - worst case: white-ish far-end noise with no double talk, so the filter
//!   runs and adapts all the time;
//! - conversation: the far end talks half the time (a speech-like signal,
//!   2 s on, 2 s off with line noise at about −65 dBm0 between), as in a
//!   call where the two parties take turns; the filter rests while the far
//!   end is quiet.
//!
//! Prints the median ns per 160-sample block over `RUNS` runs (the two
//! cancellers' runs interleaved, so that a change in the machine's load
//! touches both) and the share of one core per channel (a channel
//! processes one block every 20 ms; the budget is 0.1 %, i.e.
//! 20 µs).

use std::hint::black_box;
use std::time::Instant;

use mediacore_dsp::aec::{EchoCanceller, EchoCancellerConfig, TimeDomainEchoCanceller};

const BLOCK: usize = 160;
/// Seconds of audio per measurement run.
const SECONDS: usize = 10;
const RUNS: usize = 7;
/// Block period, ns (20 ms).
const BLOCK_PERIOD_NS: f64 = 20_000_000.0;

fn main() {
    println!("median ns per 20 ms block (160 samples) over {RUNS} runs");
    println!(
        "{:<44} {:>14} {:>8} {:>14} {:>8}",
        "far end, tail, NLP", "time domain", "% core", "block (FDAF)", "% core"
    );
    let background = noise(SECONDS * 8000, 2, 8);
    for (name, far) in [
        ("noise (worst case)", noise(SECONDS * 8000, 1, 4000)),
        ("conversation (half the time)", conversation(SECONDS * 8000)),
    ] {
        measure(name, &far, &background);
    }
}

/// One canceller of either kind.
trait Canceller {
    fn process(&mut self, far: &[i16], near: &[i16], out: &mut [i16]);
}

impl Canceller for EchoCanceller {
    fn process(&mut self, far: &[i16], near: &[i16], out: &mut [i16]) {
        EchoCanceller::process(self, far, near, out);
    }
}

impl Canceller for TimeDomainEchoCanceller {
    fn process(&mut self, far: &[i16], near: &[i16], out: &mut [i16]) {
        TimeDomainEchoCanceller::process(self, far, near, out);
    }
}

/// Wall time of one run over the whole signal, ns.
fn run(aec: &mut dyn Canceller, far: &[i16], near: &[i16]) -> f64 {
    let mut out = [0i16; BLOCK];
    let start = Instant::now();
    for (x, d) in far.chunks_exact(BLOCK).zip(near.chunks_exact(BLOCK)) {
        aec.process(black_box(x), black_box(d), &mut out);
        black_box(&out);
    }
    start.elapsed().as_nanos() as f64
}

fn measure(name: &str, far: &[i16], background: &[i16]) {
    // Echo: 6 dB down, 5 ms behind, plus a little near-end noise.
    let near: Vec<i16> = (0..far.len())
        .map(|n| {
            let echo = n.checked_sub(40).map_or(0, |k| far[k] / 2);
            echo.saturating_add(background[n])
        })
        .collect();
    let blocks = far.len() / BLOCK;
    for tail_ms in [64, 128] {
        for nlp in [true, false] {
            let cfg = EchoCancellerConfig {
                tail_ms,
                nlp,
                comfort_noise: true,
            };
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..RUNS {
                // A fresh canceller per run: each run converges from scratch.
                if let Ok(mut aec) = TimeDomainEchoCanceller::new(cfg) {
                    times[0].push(run(&mut aec, far, &near) / blocks as f64);
                }
                if let Ok(mut aec) = EchoCanceller::new(cfg) {
                    times[1].push(run(&mut aec, far, &near) / blocks as f64);
                }
            }
            let [old, new] = times.map(median);
            let label = format!(
                "{name}, {tail_ms} ms, NLP {}",
                if nlp { "on" } else { "off" }
            );
            println!(
                "{label:<44} {old:>14.0} {:>7.3}% {new:>14.0} {:>7.3}%",
                100.0 * old / BLOCK_PERIOD_NS,
                100.0 * new / BLOCK_PERIOD_NS
            );
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A talker 2 s on, 2 s off: a 140 Hz voice with harmonics and a syllable
/// envelope, about −15 dBm0 while talking; line noise (about −65 dBm0)
/// between.
fn conversation(samples: usize) -> Vec<i16> {
    let line = noise(samples, 3, 9);
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            if (t as u64 / 2) % 2 == 1 {
                return line[n];
            }
            let pitch = 140.0 + 20.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let phase = 2.0 * std::f64::consts::PI * pitch * t;
            let envelope = (2.0 * std::f64::consts::PI * 3.7 * t).sin().abs();
            let x = envelope * (3000.0 * phase.sin() + 1500.0 * (2.0 * phase).sin());
            (x + f64::from(line[n])) as i16
        })
        .collect()
}

/// Fixed-seed uniform noise in `-amplitude..=amplitude`.
fn noise(samples: usize, seed: u32, amplitude: i32) -> Vec<i16> {
    let mut state = seed;
    (0..samples)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 16) as i32 % (2 * amplitude + 1) - amplitude) as i16
        })
        .collect()
}
