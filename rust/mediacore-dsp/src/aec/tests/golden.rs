//! Golden outputs: both cancellers, sample by sample and stats by stats,
//! against what they produced when the fixture was recorded. A refactoring
//! of the cancellers must leave every output bit unchanged; a change meant
//! to alter the output re-records the fixtures (and says why in its commit):
//!
//! `AEC_GOLDEN_WRITE=1 cargo test -p mediacore-dsp --release golden`
//!
//! The signals are made here (no outside files), so the fixture depends
//! only on the code: synthetic speech (noise through a resonant filter,
//! syllable-shaped), a tone stretch (narrowband far end), a change of echo
//! path, a near-end talker over the far end (double talk), a far end that
//! falls quiet, a `reset` near the end, and frame sizes that vary from 1
//! to 333 samples.
//!
//! Output bits depend on the SIMD kernel (FMA rounds once) and on the FFT
//! code `rustfft` picks for the CPU, so there is one fixture per pair,
//! `fixtures/aec_golden_<kernel>_fft-<fft>.txt`. The test forces each
//! kernel this CPU can run (see `nlms::with_kernel`) and compares it with
//! its own fixture; a fixture missing for a pair that runs here is a
//! failure. Writing records the fixtures of every kernel this CPU runs with
//! its FFT; the FFTs of other CPUs are recorded on such a CPU, or under
//! `qemu-x86_64 -cpu <model>` running the test binary (commands in
//! `docs/echo-canceller.md`, "Golden outputs").
//!
//! A fixture holds digests, not the outputs (each is a few KiB): the
//! 64-bit FNV-1a of every [`CHUNK`] bytes of a case's output samples and of
//! its per-frame stats, one line each, named by case and byte range, so a
//! change shows as the first lines (case, samples) that differ.

use std::path::PathBuf;

use super::super::nlms::{with_kernel, Kernel};
use super::super::{EchoCanceller, EchoCancellerConfig, EchoStats, TimeDomainEchoCanceller};
use super::signals::Lcg;
use super::{quantise, RATE};

/// Bytes per digest line: 500 samples of output (62.5 ms).
const CHUNK: usize = 1000;
const SECONDS: f64 = 2.5;
/// Frame sizes, cycled.
const FRAMES: [usize; 6] = [160, 1, 7, 64, 333, 80];
/// `reset` is called at the first frame boundary from this many seconds on.
const RESET_AT: f64 = 2.3;

/// The FFT code `rustfft` 6 chooses on this CPU (`FftPlanner::new`: AVX
/// with FMA, else SSE 4.1, else Neon, else scalar).
fn fft_flavour() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx";
        }
        if std::arch::is_x86_feature_detected!("sse4.1") {
            return "sse";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return "neon";
        }
    }
    "scalar"
}

fn fixture(kernel: Kernel) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!(
            "aec_golden_{}_fft-{}.txt",
            kernel.name(),
            fft_flavour()
        ))
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

/// 64-bit FNV-1a: a change confined to one byte always changes it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fixture text of `cases`: per case a header line, then one digest
/// line per [`CHUNK`] bytes of output samples and of stats.
fn digest(cases: &[(String, Vec<u8>)]) -> Vec<String> {
    let samples = (SECONDS * RATE as f64) as usize * 2;
    let mut lines = Vec::new();
    for (name, bytes) in cases {
        lines.push(format!("{name}: {} bytes", bytes.len()));
        let (out, stats) = bytes.split_at(samples.min(bytes.len()));
        for (part, data, unit) in [("samples", out, 2), ("stats bytes", stats, 1)] {
            for (i, chunk) in data.chunks(CHUNK).enumerate() {
                let start = i * CHUNK / unit;
                let end = start + chunk.len() / unit;
                lines.push(format!("  {part} {start}..{end} {:016x}", fnv1a(chunk)));
            }
        }
    }
    lines
}

#[test]
fn golden_outputs_are_unchanged_bit_for_bit() {
    let write = std::env::var_os("AEC_GOLDEN_WRITE").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut digests = Vec::new();
    for kernel in Kernel::supported() {
        let lines = with_kernel(kernel, || digest(&cases()));
        let path = fixture(kernel);
        if write {
            let mut text = format!(
                "# AEC golden digests, kernel {}, FFT {} (see src/aec/tests/golden.rs)\n",
                kernel.name(),
                fft_flavour()
            );
            for line in &lines {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            println!("wrote {}", path.display());
        }
        let Ok(golden) = std::fs::read_to_string(&path) else {
            failures.push(format!(
                "{}: missing (kernel {} runs on this CPU; record it with AEC_GOLDEN_WRITE=1)",
                path.display(),
                kernel.name()
            ));
            continue;
        };
        let golden: Vec<&str> = golden.lines().filter(|l| !l.starts_with('#')).collect();
        let mut case = "";
        let mut differ = Vec::new();
        for (got, want) in lines.iter().zip(&golden) {
            if !want.starts_with(' ') {
                case = want.rsplit_once(':').map_or(*want, |(name, _)| name);
            }
            if got != want {
                differ.push(format!("  {case}, {}: now {}", want.trim(), got.trim()));
            }
        }
        if !differ.is_empty() || lines.len() != golden.len() {
            failures.push(format!(
                "{}: output changed, {} of {} lines differ (fixture has {}), first:\n{}",
                path.display(),
                differ.len(),
                lines.len(),
                golden.len(),
                differ[..differ.len().min(6)].join("\n")
            ));
        }
        digests.push((kernel, lines));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Each kernel really ran: FMA rounding makes their outputs differ (if
    // they agreed, the forcing would be suspect).
    for pair in digests.windows(2) {
        assert_ne!(
            pair[0].1, pair[1].1,
            "{:?} and {:?} gave the same output",
            pair[0].0, pair[1].0
        );
    }
}
