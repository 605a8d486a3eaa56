//! CPU cost of one transcoded call through the sans-IO session, with the decoded-path stages
//! on and off, against the bare codec work.
//!
//! `cargo run --release --example decoded_path_cost -p mediacore-engine`
//!
//! A PCMA (caller) ↔ G.729 (callee) session, 20 ms packets both ways, both parties talking
//! (SIPp's `g711a.pcap` speech, looped; the callee's G.729 is encoded once before timing), no
//! network: packets at their send times, timers at `poll_timeout`, on one thread. Every
//! decoded direction always has its jitter buffer and DTMF detector; the variants differ in
//! the echo canceller on each leg. The floor is the codec work alone for the same audio: A-law
//! decode + G.729 encode one way, G.729 decode + A-law encode the other. Prints CPU µs per
//! call-second (1000 µs = 0.1 % of a core per call), best of several runs.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mediacore_dsp::codec::{g711, new_decoder, new_encoder, CodecKind, EncoderOptions};
use mediacore_engine::{
    Channel, CodecSpec, EchoCancelSpec, LegSpec, Session, SessionId, SessionSpec, Side,
};

const PCAP: &str = "/usr/share/sip-tester/g711a.pcap";
const SECONDS: u64 = 20;
const RUNS: usize = 5;

fn main() {
    let speech = speech();
    let packets = (SECONDS * 50) as usize;
    let pcma: Vec<Vec<u8>> = (0..packets)
        .map(|k| {
            let mut p = Vec::new();
            g711::encode_alaw(&block(&speech, k, 0), &mut p);
            p
        })
        .collect();
    let g729: Vec<Vec<u8>> = {
        let Ok(mut enc) = new_encoder(CodecKind::G729, EncoderOptions::default()) else {
            eprintln!("no G.729 encoder (libbcg729)");
            return;
        };
        (0..packets)
            .map(|k| {
                let mut p = Vec::new();
                // The callee says something else than the caller at the same moment.
                let _ = enc.encode(&block(&speech, k, 3 * 8000), &mut p);
                p
            })
            .collect()
    };
    println!("PCMA <-> G.729 call, both parties talking, {SECONDS} s per run, best of {RUNS} runs");
    println!("{:<46} {:>12} {:>12}", "", "µs/call-s", "% of a core");
    let floor = best_of(|| codec_floor(&pcma, &g729)) / SECONDS as f64;
    row("codec floor (G.711 + G.729 both ways)", floor);
    for (name, echo) in [
        ("session, echo cancellers off", None),
        ("session, echo cancellers 64 ms (default)", Some(64)),
        ("session, echo cancellers 128 ms", Some(128)),
    ] {
        let per_s = best_of(|| call(&pcma, &g729, echo)) / SECONDS as f64;
        row(name, per_s);
    }
}

fn row(name: &str, us_per_call_s: f64) {
    println!(
        "{name:<46} {us_per_call_s:>12.0} {:>11.3}%",
        us_per_call_s / 10_000.0
    );
}

fn spec(echo: Option<u32>) -> SessionSpec {
    let leg = |addr: &str, codec: CodecSpec| LegSpec {
        remote_rtp: addr.parse::<SocketAddr>().ok(),
        codecs: vec![codec],
        echo_cancel: EchoCancelSpec {
            enabled: echo.is_some(),
            tail_ms: echo.unwrap_or(64),
        },
        ..LegSpec::default()
    };
    SessionSpec {
        caller: leg("192.0.2.10:4000", CodecSpec::new(8, "PCMA", 8000)),
        callee: leg("198.51.100.20:5000", CodecSpec::new(18, "G729", 8000)),
        ..SessionSpec::default()
    }
}

/// One call; returns its CPU time in µs (wall time of this single thread).
fn call(pcma: &[Vec<u8>], g729: &[Vec<u8>], echo: Option<u32>) -> f64 {
    let t0 = Instant::now();
    let Ok(mut s) = Session::new(SessionId(1), spec(echo), t0) else {
        return f64::NAN;
    };
    let caller: SocketAddr = ([192, 0, 2, 10], 4000).into();
    let callee: SocketAddr = ([198, 51, 100, 20], 5000).into();
    let mut buf = Vec::with_capacity(64);
    let start = Instant::now();
    for (k, (a, b)) in pcma.iter().zip(g729).enumerate() {
        let now = t0 + Duration::from_millis(20 * k as u64);
        while let Some(due) = s.poll_timeout().filter(|d| *d <= now) {
            s.handle_timeout(due);
            while let Some(tx) = s.poll_transmit() {
                black_box(&tx.data);
                s.recycle(tx.data);
            }
        }
        for (side, from, pt, payload) in [
            (Side::Caller, caller, 8u8, a),
            (Side::Callee, callee, 18u8, b),
        ] {
            buf.clear();
            buf.extend_from_slice(&[0x80, pt]);
            buf.extend_from_slice(&(k as u16).to_be_bytes());
            buf.extend_from_slice(&(160 * k as u32).to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, pt]);
            buf.extend_from_slice(payload);
            black_box(s.handle_packet(now, side, Channel::Rtp, from, &mut buf));
        }
    }
    start.elapsed().as_secs_f64() * 1e6
}

/// The codec work of the same call alone, µs.
fn codec_floor(pcma: &[Vec<u8>], g729: &[Vec<u8>]) -> f64 {
    let (Ok(mut dec_a), Ok(mut enc_g), Ok(mut dec_g)) = (
        new_decoder(CodecKind::Pcma),
        new_encoder(CodecKind::G729, EncoderOptions::default()),
        new_decoder(CodecKind::G729),
    ) else {
        return f64::NAN;
    };
    let (mut pcm, mut out) = (Vec::with_capacity(160), Vec::with_capacity(160));
    let start = Instant::now();
    for (a, b) in pcma.iter().zip(g729) {
        pcm.clear();
        out.clear();
        let _ = dec_a.decode(a, &mut pcm);
        let _ = enc_g.encode(&pcm, &mut out);
        pcm.clear();
        out.clear();
        let _ = dec_g.decode(b, &mut pcm);
        g711::encode_alaw(&pcm, &mut out);
        black_box(&out);
    }
    start.elapsed().as_secs_f64() * 1e6
}

fn best_of(mut run: impl FnMut() -> f64) -> f64 {
    (0..RUNS).map(|_| run()).fold(f64::INFINITY, f64::min)
}

/// 160 samples of speech for packet `k`, from `offset`, looped.
fn block(speech: &[i16], k: usize, offset: usize) -> Vec<i16> {
    (0..160)
        .map(|n| speech[(offset + k * 160 + n) % speech.len()])
        .collect()
}

/// The capture's A-law speech decoded (Ethernet/IPv4/UDP/RTP, little-endian pcap), or a
/// synthetic voice if it is missing.
fn speech() -> Vec<i16> {
    let mut pcm = Vec::new();
    if let Ok(data) = std::fs::read(PCAP) {
        let mut at = 24;
        while at + 16 <= data.len() {
            let incl = data
                .get(at + 8..at + 12)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes) as usize;
            let frame = data.get(at + 16..at + 16 + incl).unwrap_or(&[]);
            at += 16 + incl;
            // Ethernet 14 + IPv4 20 + UDP 8 + RTP 12.
            if frame.len() > 54 && frame.get(23) == Some(&17) {
                g711::decode_alaw(&frame[54..], &mut pcm);
            }
        }
    }
    if pcm.len() < 8000 {
        pcm = (0..8 * 8000)
            .map(|n| {
                let t = n as f64 / 8000.0;
                let env = (2.0 * std::f64::consts::PI * 2.0 * t).sin().abs();
                (env * 6000.0 * (2.0 * std::f64::consts::PI * 140.0 * t).sin()) as i16
            })
            .collect();
    }
    pcm
}
