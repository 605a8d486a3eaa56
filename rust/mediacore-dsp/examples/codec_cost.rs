//! CPU cost of each codec per 20 ms packet, on one core.
//!
//! `cargo run --release --example codec_cost -p mediacore-dsp`
//!
//! Prints ns per 20 ms packet (160 samples at 8 kHz) for encode and decode,
//! and the cost of one transcoded call-second in one direction of a leg
//! (50 packets decoded + 50 encoded), the unit the transcoding issue uses
//! to compare against libbcg729's floor (~2.3 ms CPU per call-second).

use std::hint::black_box;
use std::time::Instant;

use mediacore_dsp::codec::{g711, new_decoder, new_encoder, CodecKind, EncoderOptions};

const PACKET: usize = 160;
/// Seconds of audio per measurement run.
const SECONDS: usize = 10;
const RUNS: usize = 5;

fn main() {
    let pcm = speech_like(SECONDS * 8000);
    let packets = pcm.len() / PACKET;
    println!("ns per 20 ms packet ({SECONDS} s of speech-like audio, best of {RUNS} runs)");
    println!(
        "{:<34} {:>10} {:>10} {:>14}",
        "codec", "encode", "decode", "µs/call-second"
    );

    let g711_table = best_of(|| {
        let mut out = Vec::with_capacity(PACKET);
        for packet in pcm.chunks_exact(PACKET) {
            out.clear();
            g711::encode_alaw(black_box(packet), &mut out);
            black_box(&out);
        }
    }) / packets as f64;
    let g711_computed = best_of(|| {
        let mut out = Vec::with_capacity(PACKET);
        for packet in pcm.chunks_exact(PACKET) {
            out.clear();
            out.extend(black_box(packet).iter().map(|&s| g711::alaw_compress(s)));
            black_box(&out);
        }
    }) / packets as f64;
    println!(
        "A-law encode: table {g711_table:.0} ns, computed (leading_zeros) {g711_computed:.0} ns"
    );

    for (name, kind, opts) in [
        ("PCMA", CodecKind::Pcma, EncoderOptions::default()),
        ("PCMU", CodecKind::Pcmu, EncoderOptions::default()),
        (
            "G729 (bcg729, VAD off)",
            CodecKind::G729,
            EncoderOptions::default(),
        ),
        (
            "opus (8 kHz VoIP, default rate)",
            CodecKind::Opus,
            EncoderOptions::default(),
        ),
        (
            "opus (8 kHz VoIP, 16 kbit/s)",
            CodecKind::Opus,
            EncoderOptions {
                bitrate: Some(16_000),
                ..EncoderOptions::default()
            },
        ),
    ] {
        let Ok(mut encoder) = new_encoder(kind, opts) else {
            println!("{name}: encoder unavailable");
            continue;
        };
        // Encode once outside the timing to have payloads to decode.
        let mut payloads = Vec::with_capacity(packets);
        for packet in pcm.chunks_exact(PACKET) {
            let mut payload = Vec::new();
            if encoder.encode(packet, &mut payload).is_ok() {
                payloads.push(payload);
            }
        }
        let encode = best_of(|| {
            let Ok(mut encoder) = new_encoder(kind, opts) else {
                return;
            };
            let mut out = Vec::with_capacity(1500);
            for packet in pcm.chunks_exact(PACKET) {
                out.clear();
                let _ = encoder.encode(black_box(packet), &mut out);
                black_box(&out);
            }
        }) / packets as f64;
        let decode = best_of(|| {
            let Ok(mut decoder) = new_decoder(kind) else {
                return;
            };
            let mut out = Vec::with_capacity(1000);
            for payload in &payloads {
                out.clear();
                let _ = decoder.decode(black_box(payload), &mut out);
                black_box(&out);
            }
        }) / payloads.len().max(1) as f64;
        let per_call_second_us = 50.0 * (encode + decode) / 1000.0;
        println!("{name:<34} {encode:>10.0} {decode:>10.0} {per_call_second_us:>14.1}");
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

/// Voice-like test audio: gliding 140 Hz harmonics, a syllable envelope and
/// fixed-seed noise (same recipe as the crate's tests).
fn speech_like(samples: usize) -> Vec<i16> {
    let mut seed: u32 = 1;
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let tau = 2.0 * std::f64::consts::PI;
            let pitch = 140.0 + 20.0 * (tau * 0.7 * t).sin();
            let phase = tau * pitch * t;
            let envelope = (tau * 3.7 * t).sin().abs();
            let voice = envelope
                * (6000.0 * phase.sin()
                    + 3000.0 * (2.0 * phase).sin()
                    + 1500.0 * (3.0 * phase).sin()
                    + 1200.0 * (tau * 700.0 * t).sin());
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 16) as i32 % 601 - 300;
            (voice as i32 + noise).clamp(-32768, 32767) as i16
        })
        .collect()
}
