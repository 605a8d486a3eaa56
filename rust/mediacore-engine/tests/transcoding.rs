//! Transcoding directions: decode by the sender's payload type, re-encode in the receiver's
//! codec and ptime, with our own continuous sequence numbers, timestamps and SSRC. Audio is
//! played out of the direction's jitter buffer on the session's playout clock, so these tests
//! drive time: packets at their send times, `handle_timeout` at every `poll_timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_dsp::codec::g711;
use mediacore_engine::{
    Channel, CodecSpec, JitterMode, Session, SessionId, SessionSpec, Side, Transmit, Verdict,
};
use mediacore_proto::RtpHeader;

fn pcma() -> CodecSpec {
    CodecSpec::new(8, "PCMA", 8000)
}
fn pcmu() -> CodecSpec {
    CodecSpec::new(0, "PCMU", 8000)
}
fn g729() -> CodecSpec {
    CodecSpec::new(18, "G729", 8000)
}
fn te(pt: u8) -> CodecSpec {
    CodecSpec::new(pt, "telephone-event", 8000)
}

/// A fixed 60 ms jitter buffer on both legs: in-time audio plays out untouched, so outputs
/// can be compared sample for sample.
fn transcoding_spec(caller: Vec<CodecSpec>, callee: Vec<CodecSpec>) -> SessionSpec {
    let mut s = spec();
    s.caller.codecs = caller;
    s.callee.codecs = callee;
    for leg in [&mut s.caller, &mut s.callee] {
        leg.jitter_buffer.mode = JitterMode::Fixed;
    }
    s
}

/// A PCMA packet of a 400 Hz tone, 20 ms.
fn tone_packet(seq: u16, pt: u8) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0xCAFEu32.to_be_bytes());
    for n in 0..160u32 {
        let t = (u32::from(seq) * 160 + n) as f64 / 8000.0;
        let s = (8000.0 * (2.0 * std::f64::consts::PI * 400.0 * t).sin()) as i16;
        p.push(g711::alaw_encode(s));
    }
    p
}

fn drain(s: &mut Session) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

/// Runs the session's timers up to `until`, collecting what it sends.
fn advance(s: &mut Session, until: Instant, out: &mut Vec<Transmit>) {
    while let Some(due) = s.poll_timeout().filter(|d| *d <= until) {
        s.handle_timeout(due);
        out.extend(drain(s));
    }
}

/// Sends the caller's packets `seqs` at their own times (20 ms apart, from a clock origin
/// shared by all calls in one test), then lets 300 ms pass; returns what went out.
fn run(s: &mut Session, seqs: impl IntoIterator<Item = u16>) -> Vec<Transmit> {
    let mut out = Vec::new();
    let mut last = None;
    for seq in seqs {
        let now = origin() + Duration::from_millis(20 * u64::from(seq));
        advance(s, now, &mut out);
        let v = s.handle_packet(
            now,
            Side::Caller,
            Channel::Rtp,
            addr(CALLER),
            &mut tone_packet(seq, 8),
        );
        assert_eq!(v, Verdict::Consumed);
        out.extend(drain(s));
        last = Some(now);
    }
    if let Some(t) = last {
        advance(s, t + Duration::from_millis(300), &mut out);
    }
    out
}

/// One clock origin for every session of the test process (sessions are created at it).
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Packets sent after a sender stops: the concealment tail (up to 60 ms of Appendix I
/// concealment once the buffer runs dry), then the output pauses.
const TAIL_PACKETS_20MS: usize = 4;

#[test]
fn shared_codec_stays_on_the_relay_path() {
    let mut s = session_ok(transcoding_spec(
        vec![pcma(), te(101)],
        vec![pcma(), te(101)],
    ));
    assert!(!s.is_transcoding());
    let v = s.handle_packet(
        Instant::now(),
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut tone_packet(1, 8),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
}

#[test]
fn pcma_to_pcmu_is_exact_and_continuous() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    assert!(s.is_transcoding());
    let out = run(&mut s, 0..10);
    assert!(
        (10..=10 + TAIL_PACKETS_20MS).contains(&out.len()),
        "{}",
        out.len()
    );
    let tail = out.len() - 10;
    let out = &out[..10];
    let first = RtpHeader::parse(&out[0].data).unwrap();
    assert!(first.marker, "the stream starts a talkspurt");
    for (i, tx) in out.iter().enumerate() {
        assert_eq!(
            (tx.via, tx.channel, tx.dest),
            (Side::Callee, Channel::Rtp, addr(CALLEE))
        );
        let h = RtpHeader::parse(&tx.data).unwrap();
        assert_eq!(h.payload_type, 0);
        assert_eq!(h.ssrc, first.ssrc);
        assert_eq!(h.sequence, first.sequence.wrapping_add(i as u16));
        assert_eq!(h.timestamp, first.timestamp.wrapping_add(160 * i as u32));
        assert_eq!(h.marker, i == 0);
        let input = tone_packet(i as u16, 8);
        let expected: Vec<u8> = input[12..]
            .iter()
            .map(|&a| g711::ulaw_encode(g711::alaw_decode(a)))
            .collect();
        assert_eq!(h.payload(&tx.data), &expected[..]);
    }
    let st = s.stats(origin());
    let t = st.caller.transcoding.unwrap();
    assert_eq!(
        (t.decoded_packets, t.encoded_packets),
        (10, 10 + tail as u64)
    );
    assert_eq!(st.callee.sent_rtp_packets, 10 + tail as u64);
    let jb = st.caller.jitter_buffer.unwrap();
    assert_eq!((jb.mode, jb.relay), (JitterMode::Fixed, false));
    assert_eq!(jb.stats.target_delay_ms, 60.0);
    assert_eq!((jb.stats.late, jb.stats.discarded), (0, 0));
    assert!(st.callee.jitter_buffer.is_some(), "decoded, though silent");
    assert_eq!(
        st.callee.transcoding.unwrap().decoded_packets,
        0,
        "nothing came from the callee"
    );
}

#[test]
fn repacketization_to_every_ptime() {
    for (ptime, per_input) in [
        (10u32, 2.0f64),
        (20, 1.0),
        (30, 2.0 / 3.0),
        (40, 0.5),
        (60, 1.0 / 3.0),
    ] {
        let mut sp = transcoding_spec(vec![pcma()], vec![pcmu()]);
        sp.callee.ptime_ms = ptime;
        let mut s = session_ok(sp);
        let out = run(&mut s, 0..30);
        let expected = (30.0 * per_input) as usize;
        let tail = 60 / ptime as usize + 2;
        assert!(
            (expected..=expected + tail).contains(&out.len()),
            "ptime {ptime}: {}",
            out.len()
        );
        let hs: Vec<RtpHeader> = out
            .iter()
            .map(|t| RtpHeader::parse(&t.data).unwrap())
            .collect();
        for w in hs.windows(2) {
            assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
            assert_eq!(w[1].timestamp, w[0].timestamp.wrapping_add(ptime * 8));
            assert_eq!(w[1].payload_len, (ptime * 8) as usize);
        }
    }
}

#[test]
fn pcma_to_g729_packs_two_frames_per_20ms() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![g729()]));
    let out = run(&mut s, 0..50);
    assert!((50..=50 + TAIL_PACKETS_20MS).contains(&out.len()));
    for tx in &out {
        let h = RtpHeader::parse(&tx.data).unwrap();
        assert_eq!((h.payload_type, h.payload_len), (18, 20));
    }
}

#[test]
fn loss_is_concealed_and_time_keeps_running() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    let out = run(&mut s, [0u16, 1, 2, 4, 5]);
    // The lost packet 3 is concealed: a packet for every 20 ms of time.
    assert!(out.len() >= 6);
    let hs: Vec<RtpHeader> = out
        .iter()
        .map(|t| RtpHeader::parse(&t.data).unwrap())
        .collect();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.timestamp, hs[0].timestamp.wrapping_add(160 * i as u32));
    }
    let jb = s.stats(origin()).caller.jitter_buffer.unwrap().stats;
    assert!(jb.concealed_ms >= 20, "{jb:?}");
    assert_eq!(jb.late, 0);
}

/// Sends 0..n at 20 ms, each delayed by `delay_ms(seq)`, in arrival order; then 300 ms.
fn run_jittered(s: &mut Session, n: u16, delay_ms: impl Fn(u16) -> u64) -> Vec<Transmit> {
    let mut arrivals: Vec<(u64, u16)> = (0..n)
        .map(|k| (20 * u64::from(k) + delay_ms(k), k))
        .collect();
    arrivals.sort();
    let mut out = Vec::new();
    for &(at, seq) in &arrivals {
        let now = origin() + Duration::from_millis(at);
        advance(s, now, &mut out);
        s.handle_packet(
            now,
            Side::Caller,
            Channel::Rtp,
            addr(CALLER),
            &mut tone_packet(seq, 8),
        );
        out.extend(drain(s));
    }
    let end = origin() + Duration::from_millis(arrivals.last().map_or(0, |a| a.0) + 300);
    advance(s, end, &mut out);
    out
}

#[test]
fn reordering_within_the_buffer_costs_nothing_and_late_packets_are_counted() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    // 3 overtakes 2 (which comes 25 ms late, well within the 60 ms buffer).
    let out = run_jittered(&mut s, 10, |k| if k == 2 { 25 } else { 0 });
    let jb = s.stats(origin()).caller.jitter_buffer.unwrap().stats;
    assert_eq!(
        (jb.reordered, jb.late, jb.concealed_ms),
        (1, 0, 0),
        "{jb:?}"
    );
    let expected: Vec<u8> = (0..10)
        .flat_map(|k| tone_packet(k, 8)[12..].to_vec())
        .map(|a| g711::ulaw_encode(g711::alaw_decode(a)))
        .collect();
    let got: Vec<u8> = out[..10]
        .iter()
        .flat_map(|t| RtpHeader::parse(&t.data).unwrap().payload(&t.data).to_vec())
        .collect();
    assert_eq!(got, expected, "played in order, untouched");

    // Packet 5 comes 200 ms late: its audio was concealed long before; it is counted late.
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    let out = run_jittered(&mut s, 20, |k| if k == 5 { 200 } else { 0 });
    let jb = s.stats(origin()).caller.jitter_buffer.unwrap().stats;
    assert_eq!(jb.late, 1, "{jb:?}");
    assert!(jb.concealed_ms >= 20, "{jb:?}");
    let hs: Vec<RtpHeader> = out
        .iter()
        .map(|t| RtpHeader::parse(&t.data).unwrap())
        .collect();
    for w in hs.windows(2) {
        assert_eq!(
            w[1].timestamp,
            w[0].timestamp.wrapping_add(160),
            "no gap, no repeat"
        );
    }
}

#[test]
fn codec_switch_on_update_keeps_the_stream_continuous() {
    let sp = transcoding_spec(vec![pcma()], vec![pcmu()]);
    let mut s = session_ok(sp.clone());
    let mut out = Vec::new();
    let send = |s: &mut Session, seq: u16, out: &mut Vec<Transmit>| {
        let now = origin() + Duration::from_millis(20 * u64::from(seq));
        advance(s, now, out);
        s.handle_packet(
            now,
            Side::Caller,
            Channel::Rtp,
            addr(CALLER),
            &mut tone_packet(seq, 8),
        );
        out.extend(drain(s));
    };
    for seq in 0..10 {
        send(&mut s, seq, &mut out);
    }
    let before = out.len();
    assert!(before >= 5, "{before}");
    let mut sp2 = sp;
    sp2.callee.codecs = vec![g729()];
    sp2.callee.ptime_ms = 40;
    s.update(sp2, origin() + Duration::from_millis(190))
        .unwrap();
    for seq in 10..20 {
        send(&mut s, seq, &mut out);
    }
    let hs: Vec<RtpHeader> = out
        .iter()
        .map(|t| RtpHeader::parse(&t.data).unwrap())
        .collect();
    let (last, next) = (&hs[before - 1], &hs[before]);
    assert_eq!(next.ssrc, last.ssrc);
    assert_eq!(next.sequence, last.sequence.wrapping_add(1));
    assert_eq!(next.timestamp, last.timestamp.wrapping_add(160));
    assert_eq!(next.payload_type, 18);
    assert_eq!(next.payload_len, 40, "40 ms of G.729");
    let jb = s.stats(origin()).caller.jitter_buffer.unwrap().stats;
    assert_eq!(
        (jb.packets, jb.concealed_ms, jb.late),
        (20, 0, 0),
        "the buffered audio survived the update: {jb:?}"
    );
}

#[test]
fn telephone_events_are_restamped_with_the_receivers_payload_type() {
    let mut s = session_ok(transcoding_spec(
        vec![pcma(), te(101)],
        vec![pcmu(), te(96)],
    ));
    let audio = run(&mut s, 0..3);
    let mut ev = vec![0x80, 101 | 0x80, 0, 3, 0, 0, 0x01, 0xE0, 0, 0, 0xCA, 0xFE];
    ev.extend_from_slice(&[5, 10, 0, 160]); // digit 5, volume 10, duration 160
    let v = s.handle_packet(
        origin() + Duration::from_millis(340),
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut ev,
    );
    assert_eq!(v, Verdict::Consumed);
    let out = drain(&mut s);
    assert_eq!(out.len(), 1, "forwarded at once, not buffered");
    let h = RtpHeader::parse(&out[0].data).unwrap();
    let last_audio = RtpHeader::parse(&audio.last().unwrap().data).unwrap();
    assert_eq!(h.payload_type, 96);
    assert_eq!(h.ssrc, last_audio.ssrc);
    assert_eq!(h.sequence, last_audio.sequence.wrapping_add(1));
    assert_eq!(h.timestamp, last_audio.timestamp.wrapping_add(160));
    assert_eq!(h.payload(&out[0].data), &[5, 10, 0, 160]);
}

#[test]
fn rtcp_of_a_transcoded_direction_is_terminated() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    let v = s.handle_packet(
        origin(),
        Side::Caller,
        Channel::Rtcp,
        addr("192.0.2.10:4001"),
        &mut rtcp_rr(7),
    );
    assert_eq!(v, Verdict::Consumed);
    assert!(s.poll_transmit().is_none());
}

#[test]
fn an_unsupported_ptime_is_a_spec_error() {
    let mut sp = transcoding_spec(vec![pcma()], vec![pcmu()]);
    sp.callee.ptime_ms = 25;
    assert!(sp.validate().is_err());
    let mut sp = transcoding_spec(vec![pcma()], vec![CodecSpec::new(111, "opus", 48000)]);
    sp.callee.ptime_ms = 10;
    let err = Session::new(SessionId(1), sp, origin()).err().unwrap();
    assert!(err.contains("ptime 10 ms is not allowed for opus"), "{err}");
}

fn session_ok(spec: SessionSpec) -> Session {
    spec.validate().unwrap();
    Session::new(SessionId(1), spec, origin()).unwrap()
}

#[test]
fn a_new_sender_ssrc_restarts_input_numbering_but_not_ours() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    let before = run(&mut s, 0..3);
    // The phone restarts: new SSRC, sequence numbers and timestamps elsewhere. Not "late": a
    // new source, on a new timeline.
    let mut after = Vec::new();
    for k in 0..5u16 {
        let mut p = tone_packet(9000 + k, 8);
        p[8..12].copy_from_slice(&0xBEEFu32.to_be_bytes());
        let now = origin() + Duration::from_millis(400 + 20 * u64::from(k));
        advance(&mut s, now, &mut after);
        let v = s.handle_packet(now, Side::Caller, Channel::Rtp, addr(CALLER), &mut p);
        assert_eq!(v, Verdict::Consumed);
    }
    advance(&mut s, origin() + Duration::from_millis(800), &mut after);
    assert!(after.len() >= 5);
    let (last, next) = (
        RtpHeader::parse(&before.last().unwrap().data).unwrap(),
        RtpHeader::parse(&after[0].data).unwrap(),
    );
    assert_eq!(next.ssrc, last.ssrc);
    assert_eq!(next.sequence, last.sequence.wrapping_add(1));
    assert!(next.marker);
    let jb = s.stats(origin()).caller.jitter_buffer.unwrap().stats;
    assert_eq!((jb.late, jb.discarded), (0, 0), "{jb:?}");
}

#[test]
fn g729_and_g729a_are_one_bitstream_and_relay() {
    let s = session_ok(transcoding_spec(
        vec![CodecSpec::new(18, "G729a", 8000)],
        vec![CodecSpec::new(18, "G729", 8000)],
    ));
    assert!(!s.is_transcoding());
    let s = session_ok(transcoding_spec(
        vec![pcma()],
        vec![CodecSpec::new(18, "G729A", 8000)],
    ));
    assert!(s.is_transcoding());
}
