//! CPU cost of the jitter buffer per 20 ms pull, on one core.
//!
//! `cargo run --release --example jitter_cost -p mediacore-dsp`
//!
//! Feeds 20 ms A-law packets of speech-like audio with jitter (uniform
//! 0–10 ms, then 0–120 ms so that the buffer stretches and conceals) and
//! pulls 160 samples every 20 ms. Prints ns per pull including the G.711
//! decode, and, for reference, the bare G.711 decode of the same packets.

use std::hint::black_box;
use std::time::Instant;

use mediacore_dsp::codec::{g711, new_decoder, CodecKind};
use mediacore_dsp::jitter::{JitterBuffer, JitterConfig};

const PACKET: usize = 160;
const SECONDS: usize = 20;
const RUNS: usize = 5;

fn main() {
    let pcm = speech_like(SECONDS * 8000);
    let packets: Vec<Vec<u8>> = pcm
        .chunks_exact(PACKET)
        .map(|chunk| {
            let mut payload = Vec::with_capacity(PACKET);
            g711::encode_alaw(chunk, &mut payload);
            payload
        })
        .collect();
    println!("ns per 20 ms pull ({SECONDS} s of 20 ms PCMA packets, best of {RUNS} runs)");
    for (name, spread_ms) in [
        ("mild jitter (0-10 ms)", 10u64),
        ("heavy jitter (0-120 ms)", 120),
    ] {
        let arrivals = arrivals(packets.len(), spread_ms);
        let mut stats = None;
        let ns = best_of(|| {
            let mut jb = match JitterBuffer::new(JitterConfig::default()) {
                Ok(jb) => jb,
                Err(e) => {
                    eprintln!("{e}");
                    return;
                }
            };
            let Ok(mut decoder) = new_decoder(CodecKind::Pcma) else {
                return;
            };
            let mut out = [0i16; PACKET];
            let mut next = 0;
            for j in 0..packets.len() {
                let now = 20 * j as u64 + 7;
                while next < packets.len() && arrivals[next].0 <= now {
                    let (arrival, k) = arrivals[next];
                    jb.insert(k as u16, (k * PACKET) as u32, &packets[k], arrival);
                    next += 1;
                }
                jb.pull(now, decoder.as_mut(), &mut out);
                black_box(&out);
            }
            stats = Some(jb.stats());
        }) / packets.len() as f64;
        println!("{name:<26} {ns:>8.0} ns/pull");
        if let Some(s) = stats {
            println!(
                "  delay {:.1} ms (target {:.1}), concealment {:.2} %, accelerate {:.2} %, expand {:.2} %",
                s.current_delay_ms,
                s.target_delay_ms,
                100.0 * s.concealment_rate,
                100.0 * s.accelerate_rate,
                100.0 * s.expand_rate
            );
        }
    }
    let decode = best_of(|| {
        let mut out = Vec::with_capacity(PACKET);
        for payload in &packets {
            out.clear();
            g711::decode_alaw(black_box(payload), &mut out);
            black_box(&out);
        }
    }) / packets.len() as f64;
    println!("{:<26} {decode:>8.0} ns/packet", "bare A-law decode");
}

/// (arrival ms, packet index), sorted by arrival; fixed-seed LCG jitter.
fn arrivals(count: usize, spread_ms: u64) -> Vec<(u64, usize)> {
    let mut state = 0x1234_5678u32;
    let mut list: Vec<(u64, usize)> = (0..count)
        .map(|k| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let jitter = u64::from(state >> 16) % (spread_ms + 1);
            (20 * k as u64 + 30 + jitter, k)
        })
        .collect();
    list.sort_unstable();
    list
}

fn best_of(mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// A 140 Hz voice with harmonics and a syllable envelope, plus noise.
fn speech_like(samples: usize) -> Vec<i16> {
    let mut state = 1u32;
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let pitch = 140.0 + 20.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let phase = 2.0 * std::f64::consts::PI * pitch * t;
            let envelope = (2.0 * std::f64::consts::PI * 3.7 * t).sin().abs();
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = f64::from((state >> 16) as u16 % 601) - 300.0;
            let x = envelope * (6000.0 * phase.sin() + 3000.0 * (2.0 * phase).sin()) + noise;
            x.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}
