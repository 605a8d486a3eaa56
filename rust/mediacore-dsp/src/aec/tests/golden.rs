//! Golden outputs: both cancellers, sample by sample and stats by stats,
//! against what they produced when the fixture was recorded. A refactoring
//! of the cancellers must leave every output bit unchanged; a change meant
//! to alter the output re-records the fixture (and says why in its commit):
//!
//! `AEC_GOLDEN_WRITE=1 cargo test -p mediacore-dsp --release golden`
//!
//! The signals are made here (no outside files), so the fixture depends
//! only on the code: synthetic speech (noise through a resonant filter,
//! syllable-shaped), a tone stretch (narrowband far end), a change of echo
//! path, a near-end talker over the far end (double talk), a far end that
//! falls quiet, a `reset` near the end, and frame sizes that vary from 1
//! to 333 samples. Output bits depend on the SIMD kernel chosen for the
//! CPU (FMA rounds once), so there is one fixture per kernel.

use std::path::PathBuf;

use super::super::nlms::{detect_kernel, Kernel};
use super::super::{EchoCanceller, EchoCancellerConfig, EchoStats, TimeDomainEchoCanceller};
use super::signals::Lcg;
use super::{quantise, RATE};

const SECONDS: f64 = 2.5;
/// Frame sizes, cycled.
const FRAMES: [usize; 6] = [160, 1, 7, 64, 333, 80];
/// `reset` is called at the first frame boundary from this many seconds on.
const RESET_AT: f64 = 2.3;

fn fixture() -> PathBuf {
    let kernel = match detect_kernel() {
        Kernel::Generic => "generic",
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => "avx2fma",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("aec_golden_{kernel}.bin"))
}

/// Speech-like: Gaussian noise through a two-pole resonance (≈ 500 Hz),
/// amplitude-modulated at a syllable rate with short pauses.
fn speech(len: usize, seed: u32, rms: f64) -> Vec<f64> {
    let mut lcg = Lcg::new(seed);
    let (r, theta) = (0.95f64, 2.0 * std::f64::consts::PI * 500.0 / RATE as f64);
    let (a1, a2) = (2.0 * r * theta.cos(), -r * r);
    let (mut y1, mut y2) = (0.0f64, 0.0f64);
    (0..len)
        .map(|n| {
            let y = lcg.gaussian() + a1 * y1 + a2 * y2;
            (y2, y1) = (y1, y);
            // 250 ms syllables, the last 50 ms of each silent.
            let phase = n % (RATE / 4);
            let envelope = if phase < RATE / 5 {
                (std::f64::consts::PI * phase as f64 / (RATE / 5) as f64).sin()
            } else {
                0.0
            };
            y * envelope * rms / 3.0
        })
        .collect()
}

/// A decaying, oscillating echo path of `taps` behind `delay` samples.
fn path(delay: usize, taps: usize, freq: f64) -> Vec<f64> {
    let mut h = vec![0.0; delay + taps];
    for k in 0..taps {
        let t = k as f64;
        h[delay + k] = (-t / 12.0).exp() * (2.0 * std::f64::consts::PI * freq * t).cos();
    }
    h
}

fn convolve(x: &[f64], h: &[f64], gain: f64) -> Vec<f64> {
    (0..x.len())
        .map(|n| {
            h.iter()
                .enumerate()
                .filter(|(k, _)| *k <= n)
                .map(|(k, c)| c * x[n - k])
                .sum::<f64>()
                * gain
        })
        .collect()
}

/// Far end and near end of the scenario (see the module docs).
fn signals() -> (Vec<i16>, Vec<i16>) {
    let len = (SECONDS * RATE as f64) as usize;
    let at = |s: f64| (s * RATE as f64) as usize;
    let mut far = speech(len, 11, 3000.0);
    // A dual tone over [0.9, 1.1) s, silence over [2.0, 2.1) s.
    for (n, v) in far.iter_mut().enumerate().take(at(1.1)).skip(at(0.9)) {
        let t = n as f64 / RATE as f64;
        *v = 2000.0
            * ((2.0 * std::f64::consts::PI * 697.0 * t).sin()
                + (2.0 * std::f64::consts::PI * 1209.0 * t).sin());
    }
    far[at(2.0)..at(2.1)].fill(0.0);
    let far = quantise(&far);
    let far_f: Vec<f64> = far.iter().map(|&v| f64::from(v)).collect();
    // The echo path changes at 1.3 s.
    let first = convolve(&far_f, &path(40, 200, 0.05), 0.12);
    let second = convolve(&far_f, &path(120, 200, 0.11), 0.1);
    let talker = speech(len, 29, 2500.0);
    let mut lcg = Lcg::new(7);
    let near: Vec<f64> = (0..len)
        .map(|n| {
            let echo = if n < at(1.3) { first[n] } else { second[n] };
            let voice = if (at(1.8)..at(2.2)).contains(&n) {
                talker[n]
            } else {
                0.0
            };
            echo + voice + 3.0 * lcg.gaussian()
        })
        .collect();
    (far, quantise(&near))
}

fn push_stats(bytes: &mut Vec<u8>, s: &EchoStats) {
    for v in [s.erl_db, s.erle_db, s.delay_ms, s.double_talk_ratio] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.push(u8::from(s.converged));
}

/// One canceller over the scenario: every output sample (i16 LE), then
/// the stats after every frame.
fn run<C>(
    mut aec: C,
    process: impl Fn(&mut C, &[i16], &[i16], &mut [i16]),
    stats: impl Fn(&C) -> EchoStats,
    reset: impl Fn(&mut C),
) -> Vec<u8> {
    let (far, near) = signals();
    let mut out = vec![0i16; far.len()];
    let mut frame_stats = Vec::new();
    let (mut start, mut frame, mut reset_done) = (0, 0, false);
    while start < far.len() {
        if !reset_done && start >= (RESET_AT * RATE as f64) as usize {
            reset(&mut aec);
            reset_done = true;
        }
        let end = (start + FRAMES[frame % FRAMES.len()]).min(far.len());
        process(
            &mut aec,
            &far[start..end],
            &near[start..end],
            &mut out[start..end],
        );
        push_stats(&mut frame_stats, &stats(&aec));
        (start, frame) = (end, frame + 1);
    }
    let mut bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes.extend_from_slice(&frame_stats);
    bytes
}

/// The cases: both cancellers, at 64 ms with the NLP (and comfort noise)
/// and at 128 ms without it; the block one also at 16 ms with the NLP and
/// no comfort noise.
fn cases() -> Vec<(String, Vec<u8>)> {
    let configs = [(64, true, true), (128, false, true), (16, true, false)];
    let mut cases = Vec::new();
    for (i, &(tail_ms, nlp, comfort_noise)) in configs.iter().enumerate() {
        let cfg = EchoCancellerConfig {
            tail_ms,
            nlp,
            comfort_noise,
        };
        cases.push((
            format!("block {cfg:?}"),
            run(
                EchoCanceller::new(cfg).unwrap(),
                |a, x, d, o| a.process(x, d, o),
                EchoCanceller::stats,
                EchoCanceller::reset,
            ),
        ));
        if i < 2 {
            cases.push((
                format!("time-domain {cfg:?}"),
                run(
                    TimeDomainEchoCanceller::new(cfg).unwrap(),
                    |a, x, d, o| a.process(x, d, o),
                    TimeDomainEchoCanceller::stats,
                    TimeDomainEchoCanceller::reset,
                ),
            ));
        }
    }
    cases
}

#[test]
fn golden_outputs_are_unchanged_bit_for_bit() {
    let cases = cases();
    let path = fixture();
    if std::env::var_os("AEC_GOLDEN_WRITE").is_some_and(|v| v == "1") {
        let all: Vec<u8> = cases.iter().flat_map(|(_, b)| b.clone()).collect();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, all).unwrap();
        println!("wrote {}", path.display());
    }
    let Ok(golden) = std::fs::read(&path) else {
        // Recorded on x86-64 with AVX2 and FMA (the project's machines); a
        // CPU without them has no fixture to compare with.
        assert!(
            matches!(detect_kernel(), Kernel::Generic),
            "{}: missing",
            path.display()
        );
        println!("{}: no fixture for this CPU's kernel", path.display());
        return;
    };
    let total: usize = cases.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(golden.len(), total, "{}: size", path.display());
    let mut offset = 0;
    for (name, bytes) in &cases {
        let expected = &golden[offset..offset + bytes.len()];
        offset += bytes.len();
        if let Some(i) = bytes.iter().zip(expected).position(|(a, b)| a != b) {
            let samples = (SECONDS * RATE as f64) as usize * 2;
            if i < samples {
                let n = i / 2;
                let got = i16::from_le_bytes([bytes[2 * n], bytes[2 * n + 1]]);
                let want = i16::from_le_bytes([expected[2 * n], expected[2 * n + 1]]);
                panic!("{name}: sample {n} is {got}, was {want}");
            }
            panic!("{name}: stats differ at byte {} of the stats", i - samples);
        }
    }
}
