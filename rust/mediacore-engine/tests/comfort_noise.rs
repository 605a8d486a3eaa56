//! Comfort noise on a decoded direction (SS_COMFORTNOISE, reference behaviour 32): while the
//! sender is quiet the receiver gets noise at the sender's background level, one packet per
//! period, in one continuous RTP stream; without it (the engine's default) nothing is sent in
//! the gap, and on hold neither.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_dsp::codec::g711;
use mediacore_engine::{Channel, CodecSpec, JitterMode, Session, SessionSpec, Side};
use mediacore_proto::RtpHeader;

/// The sender's background noise, dBov (0 dBov: a full-scale square wave).
const BACKGROUND_DBOV: f64 = -60.0;
/// The sender talks for 1 s, is silent (sends nothing) for 3 s, then talks for 1 s.
const TALK_PACKETS: u16 = 50;
const GAP_MS: u64 = 3000;

fn level_dbov(pcm: &[i16]) -> f64 {
    let ms = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64;
    10.0 * (ms.max(1e-9) / (32768.0 * 32768.0)).log10()
}

/// One 20 ms PCMA packet of the sender: background noise at [`BACKGROUND_DBOV`], and a loud
/// 400 Hz tone (its "speech") during 300 ms of every 500 ms.
fn sender_packet(seq: u16, ts: u32, rng: &mut u64) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x5EED_u32.to_be_bytes());
    // Uniform noise in [-a, a) has RMS a/√3.
    let amp = 32768.0 * 10f64.powf(BACKGROUND_DBOV / 20.0) * 3f64.sqrt();
    for n in 0..160u32 {
        *rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((*rng >> 33) as f64 / f64::from(1u32 << 31)) * 2.0 - 1.0;
        let t = f64::from(ts + n) / 8000.0;
        let talking = (ts + n) % 4000 < 2400;
        let tone = if talking {
            8000.0 * (2.0 * std::f64::consts::PI * 400.0 * t).sin()
        } else {
            0.0
        };
        p.push(g711::alaw_encode((tone + u * amp) as i16));
    }
    p
}

struct Sent {
    at_ms: u64,
    hdr: RtpHeader,
    payload: Vec<u8>,
}

fn advance(s: &mut Session, t0: Instant, until: Instant, out: &mut Vec<Sent>) {
    while let Some(due) = s.poll_timeout().filter(|d| *d <= until) {
        s.handle_timeout(due);
        collect(s, t0, due, out);
    }
}

fn collect(s: &mut Session, t0: Instant, now: Instant, out: &mut Vec<Sent>) {
    while let Some(tx) = s.poll_transmit() {
        if tx.channel != Channel::Rtp || tx.via != Side::Callee {
            continue;
        }
        let hdr = RtpHeader::parse(&tx.data).unwrap();
        out.push(Sent {
            at_ms: now.duration_since(t0).as_millis() as u64,
            payload: hdr.payload(&tx.data).to_vec(),
            hdr,
        });
    }
}

/// Talk, silence, talk from the caller (PCMA) toward the callee (`callee` codec); returns what
/// the callee was sent, and the session. The resumed talk's timestamps jump by the gap, as a
/// phone with silence suppression sends them.
fn scenario(spec: SessionSpec) -> (Vec<Sent>, Session) {
    let t0 = Instant::now();
    let mut s = session(spec, t0);
    let mut out = Vec::new();
    let mut rng = 1u64;
    let gap_packets = (GAP_MS / 20) as u16;
    let seqs = (0..TALK_PACKETS)
        .map(|i| (i, i))
        .chain((0..TALK_PACKETS).map(|i| (TALK_PACKETS + i, TALK_PACKETS + gap_packets + i)));
    let mut last = t0;
    for (seq, slot) in seqs {
        let now = t0 + Duration::from_millis(20 * u64::from(slot));
        advance(&mut s, t0, now, &mut out);
        let mut p = sender_packet(seq, u32::from(slot) * 160, &mut rng);
        s.handle_packet(now, Side::Caller, Channel::Rtp, addr(CALLER), &mut p);
        collect(&mut s, t0, now, &mut out);
        last = now;
    }
    advance(&mut s, t0, last + Duration::from_millis(300), &mut out);
    (out, s)
}

fn spec(callee_codec: CodecSpec, comfort_noise: bool, hold: bool) -> SessionSpec {
    let mut s = common::spec();
    s.caller.codecs = vec![CodecSpec::new(8, "PCMA", 8000)];
    s.callee.codecs = vec![callee_codec];
    for leg in [&mut s.caller, &mut s.callee] {
        leg.jitter_buffer.mode = JitterMode::Fixed;
    }
    s.callee.comfort_noise = comfort_noise;
    s.caller.hold = hold;
    s
}

fn pcmu() -> CodecSpec {
    CodecSpec::new(0, "PCMU", 8000)
}

/// The gap: from 300 ms after the sender's last talk packet to its first resumed one.
fn in_gap(at_ms: u64) -> bool {
    let stop = 20 * u64::from(TALK_PACKETS);
    (stop + 300..stop + GAP_MS).contains(&at_ms)
}

#[test]
fn comfort_noise_fills_the_gap_at_the_senders_background_level() {
    let (out, s) = scenario(spec(pcmu(), true, false));
    // One continuous stream: consecutive numbers and timestamps, a marker on the first only.
    for (i, w) in out.windows(2).enumerate() {
        assert_eq!(
            w[1].hdr.sequence,
            w[0].hdr.sequence.wrapping_add(1),
            "seq at {i}"
        );
        assert_eq!(
            w[1].hdr.timestamp,
            w[0].hdr.timestamp.wrapping_add(160),
            "ts at {i}"
        );
        assert!(!w[1].hdr.marker, "no new talkspurt at {i}");
    }
    assert!(out[0].hdr.marker);
    // A packet every period through the gap, low-level noise near the sender's background.
    let gap: Vec<&Sent> = out.iter().filter(|p| in_gap(p.at_ms)).collect();
    let expected = ((GAP_MS - 300) / 20) as usize;
    assert!(
        gap.len().abs_diff(expected) <= 1,
        "{} in the gap",
        gap.len()
    );
    let mut all = Vec::new();
    for p in &gap {
        let pcm: Vec<i16> = p.payload.iter().map(|&b| g711::ulaw_decode(b)).collect();
        assert!(pcm.iter().any(|&x| x != 0), "noise, not digital silence");
        let l = level_dbov(&pcm);
        assert!((-80.0..=-48.0).contains(&l), "block level {l} dBov");
        all.extend(pcm);
    }
    let l = level_dbov(&all);
    assert!(
        (l - BACKGROUND_DBOV).abs() <= 3.0,
        "noise at {l} dBov, background {BACKGROUND_DBOV}"
    );
    // After the gap the sender is heard again: its tone, at its level.
    let resumed = 20 * u64::from(TALK_PACKETS) + GAP_MS + 200;
    let after: Vec<i16> = out
        .iter()
        .filter(|p| (resumed..resumed + 200).contains(&p.at_ms))
        .flat_map(|p| p.payload.iter().map(|&b| g711::ulaw_decode(b)))
        .collect();
    assert_eq!(after.len(), 1600);
    assert!(level_dbov(&after) > -20.0, "{}", level_dbov(&after));
    let t = s.stats(Instant::now()).caller.transcoding.unwrap();
    // Counted: the gap, its first 300 ms (less the concealment tail), the buffer refilling at
    // the resumption, and the 300 ms after the sender's last packet.
    let n = gap.len() as u64;
    assert!(
        (n + 10..=n + 30).contains(&t.cng_packets),
        "{} noise packets counted, {} in the gap",
        t.cng_packets,
        gap.len()
    );
}

#[test]
fn without_comfort_noise_the_gap_is_silent() {
    let (out, s) = scenario(spec(pcmu(), false, false));
    assert_eq!(out.iter().filter(|p| in_gap(p.at_ms)).count(), 0);
    // The stream restarts with a marker after the pause.
    let resumed = out
        .iter()
        .find(|p| p.at_ms >= 20 * u64::from(TALK_PACKETS) + GAP_MS)
        .unwrap();
    assert!(resumed.hdr.marker);
    // The timestamps kept counting through the pause (RFC 3550 §5.1): the resumed packet is
    // as much later on the RTP clock as it is on the wall clock, within a period.
    let last = out.iter().rev().find(|p| p.at_ms < resumed.at_ms).unwrap();
    let rtp_ms = resumed.hdr.timestamp.wrapping_sub(last.hdr.timestamp) / 8;
    let wall_ms = (resumed.at_ms - last.at_ms) as u32;
    assert!(
        rtp_ms.abs_diff(wall_ms) <= 20,
        "{rtp_ms} ms on the RTP clock for {wall_ms} ms of pause"
    );
    let t = s.stats(Instant::now()).caller.transcoding.unwrap();
    assert_eq!(t.cng_packets, 0);
}

#[test]
fn a_held_call_gets_no_comfort_noise() {
    let (out, s) = scenario(spec(pcmu(), true, true));
    assert_eq!(out.iter().filter(|p| in_gap(p.at_ms)).count(), 0);
    assert_eq!(
        s.stats(Instant::now())
            .caller
            .transcoding
            .unwrap()
            .cng_packets,
        0
    );
}

#[test]
fn comfort_noise_is_encoded_in_the_receivers_codec() {
    let (out, _) = scenario(spec(CodecSpec::new(18, "G729", 8000), true, false));
    let gap: Vec<&Sent> = out.iter().filter(|p| in_gap(p.at_ms)).collect();
    let expected = ((GAP_MS - 300) / 20) as usize;
    assert!(
        gap.len().abs_diff(expected) <= 1,
        "{} in the gap",
        gap.len()
    );
    assert!(gap
        .iter()
        .all(|p| p.hdr.payload_type == 18 && p.payload.len() == 20));
}

#[test]
fn comfort_noise_takes_the_receivers_voice_gain_like_the_audio() {
    // The receiver heard the sender's background through the gain; the noise that stands in
    // for it in the gap is as loud.
    let mut s = spec(pcmu(), true, false);
    s.callee.gain_db = 6;
    let (out, _) = scenario(s);
    let gap: Vec<i16> = out
        .iter()
        .filter(|p| in_gap(p.at_ms))
        .flat_map(|p| p.payload.iter().map(|&b| g711::ulaw_decode(b)))
        .collect();
    assert!(!gap.is_empty());
    let l = level_dbov(&gap);
    assert!(
        (l - (BACKGROUND_DBOV + 6.0)).abs() <= 3.0,
        "noise at {l} dBov, background {BACKGROUND_DBOV} + 6 dB"
    );
}
