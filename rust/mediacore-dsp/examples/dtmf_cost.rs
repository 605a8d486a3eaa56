//! CPU cost of in-band DTMF detection and generation per 20 ms packet.
//!
//! `cargo run --release --example dtmf_cost -p mediacore-dsp`
//!
//! Prints ns per 20 ms (160 samples at 8 kHz) of detection, on speech-like
//! audio and on a digit sequence, and of generation, best of several runs.

use std::hint::black_box;
use std::time::Instant;

use mediacore_dsp::dtmf::{DtmfDetector, DtmfGenerator, DIGITS};

const PACKET: usize = 160;
/// Seconds of audio per measurement run.
const SECONDS: usize = 20;
const RUNS: usize = 7;

fn main() {
    let speech = speech_like(SECONDS * 8000);
    let digits = digit_sequence(SECONDS * 8000);
    let packets = (SECONDS * 8000 / PACKET) as f64;
    println!("ns per 20 ms packet ({SECONDS} s of audio, best of {RUNS} runs)");

    for (name, pcm) in [
        ("detect, speech-like", &speech),
        ("detect, digits", &digits),
    ] {
        let mut found = 0;
        let ns = best_of(|| {
            let mut detector = DtmfDetector::new();
            let mut events = Vec::with_capacity(64);
            for packet in pcm.chunks_exact(PACKET) {
                detector.process(black_box(packet), &mut events);
            }
            found = events.len();
            black_box(&events);
        }) / packets;
        println!("{name:<24} {ns:>8.0}   ({found} events)");
    }

    let ns = best_of(|| {
        let mut out = [0i16; PACKET];
        let mut generator = DtmfGenerator::new('5', -10.0, (SECONDS * 8000) as u64);
        while let Some(g) = generator.as_mut() {
            if g.fill(&mut out) == 0 {
                break;
            }
            black_box(&out);
        }
    }) / packets;
    println!("{:<24} {ns:>8.0}", "generate");
}

/// Best wall time of `RUNS` runs of `f`, ns.
fn best_of(mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos() as f64
        })
        .fold(f64::MAX, f64::min)
}

/// All 16 digits, 100 ms on / 100 ms off, repeated.
fn digit_sequence(samples: usize) -> Vec<i16> {
    let mut pcm = vec![0i16; samples];
    for (i, block) in pcm.chunks_mut(1600).enumerate() {
        let digit = DIGITS[i % DIGITS.len()];
        if let Some(mut generator) = DtmfGenerator::new(digit, -10.0, 800) {
            generator.fill(block);
        }
    }
    pcm
}

/// A harmonic voice gliding between 100 and 300 Hz with two formants and
/// a syllable envelope, plus fixed-seed noise.
fn speech_like(samples: usize) -> Vec<i16> {
    let mut seed = 12_345u32;
    let mut phase = 0.0f64;
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let pitch = 200.0 + 100.0 * (std::f64::consts::TAU * 0.3 * t).sin();
            phase += std::f64::consts::TAU * pitch / 8000.0;
            let envelope = (std::f64::consts::TAU * 2.1 * t).sin().abs();
            let voice: f64 = (1..=15)
                .map(|k| {
                    let hz = pitch * f64::from(k);
                    let formants = 1.0 / (1.0 + ((hz - 600.0) / 150.0).powi(2))
                        + 0.5 / (1.0 + ((hz - 1800.0) / 200.0).powi(2));
                    formants / f64::from(k) * (f64::from(k) * phase).sin()
                })
                .sum();
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = f64::from(seed >> 16) / 65536.0 - 0.5;
            (8000.0 * envelope * voice + 200.0 * noise).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}
