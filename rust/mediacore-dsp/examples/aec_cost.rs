//! CPU cost of the line echo canceller per 20 ms block, on one core.
//!
//! `cargo run --release --example aec_cost -p mediacore-dsp`
//!
//! Worst case: white-ish far-end noise with its echo and no double talk, so
//! the filter adapts on every sample. Prints ns per 160-sample block for
//! each tail and the share of one core per channel (a channel processes
//! one block every 20 ms; the budget is 0.1 %, i.e. 20 µs).

use std::hint::black_box;
use std::time::Instant;

use mediacore_dsp::aec::{EchoCanceller, EchoCancellerConfig};

const BLOCK: usize = 160;
/// Seconds of audio per measurement run.
const SECONDS: usize = 10;
const RUNS: usize = 5;
/// Block period, ns (20 ms).
const BLOCK_PERIOD_NS: f64 = 20_000_000.0;

fn main() {
    let far = noise(SECONDS * 8000, 1, 4000);
    let background = noise(SECONDS * 8000, 2, 8);
    // Echo: 6 dB down, 5 ms behind, plus a little near-end noise.
    let near: Vec<i16> = (0..far.len())
        .map(|n| {
            let echo = n.checked_sub(40).map_or(0, |k| far[k] / 2);
            echo.saturating_add(background[n])
        })
        .collect();
    let blocks = far.len() / BLOCK;
    println!("ns per 20 ms block (160 samples), adapting every sample, best of {RUNS} runs");
    println!("{:<24} {:>10} {:>14}", "tail", "ns/block", "% of a core");
    for tail_ms in [64, 128] {
        for nlp in [true, false] {
            let cfg = EchoCancellerConfig {
                tail_ms,
                nlp,
                comfort_noise: true,
            };
            let ns = best_of(|| {
                let Ok(mut aec) = EchoCanceller::new(cfg) else {
                    return;
                };
                let mut out = [0i16; BLOCK];
                for (x, d) in far.chunks_exact(BLOCK).zip(near.chunks_exact(BLOCK)) {
                    aec.process(black_box(x), black_box(d), &mut out);
                    black_box(&out);
                }
            }) / blocks as f64;
            let label = format!("{tail_ms} ms, NLP {}", if nlp { "on" } else { "off" });
            println!(
                "{label:<24} {ns:>10.0} {:>13.3}%",
                100.0 * ns / BLOCK_PERIOD_NS
            );
        }
    }
}

/// Best wall time of `RUNS` runs, ns.
fn best_of(mut run: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_nanos() as f64
        })
        .fold(f64::INFINITY, f64::min)
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
