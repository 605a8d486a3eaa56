//! Transcoding directions: decode by the sender's payload type, re-encode in the receiver's
//! codec and ptime, with our own continuous sequence numbers, timestamps and SSRC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_dsp::codec::g711;
use mediacore_engine::{
    Channel, CodecSpec, Session, SessionId, SessionSpec, Side, Transmit, Verdict,
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

fn transcoding_spec(caller: Vec<CodecSpec>, callee: Vec<CodecSpec>) -> SessionSpec {
    let mut s = spec();
    s.caller.codecs = caller;
    s.callee.codecs = callee;
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

fn run(s: &mut Session, seqs: impl IntoIterator<Item = u16>) -> Vec<Transmit> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    for seq in seqs {
        let now = t0 + Duration::from_millis(20 * u64::from(seq));
        let v = s.handle_packet(
            now,
            Side::Caller,
            Channel::Rtp,
            addr(CALLER),
            &tone_packet(seq, 8),
        );
        assert_eq!(v, Verdict::Consumed);
        out.extend(drain(s));
    }
    out
}

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
        &tone_packet(1, 8),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
}

#[test]
fn pcma_to_pcmu_is_exact_and_continuous() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    assert!(s.is_transcoding());
    let out = run(&mut s, 0..10);
    assert_eq!(out.len(), 10);
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
    let st = s.stats(Instant::now());
    let t = st.caller.transcoding.unwrap();
    assert_eq!((t.decoded_packets, t.encoded_packets), (10, 10));
    assert_eq!(st.callee.sent_rtp_packets, 10);
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
        assert_eq!(out.len(), (30.0 * per_input) as usize, "ptime {ptime}");
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
    assert_eq!(out.len(), 50);
    for tx in &out {
        let h = RtpHeader::parse(&tx.data).unwrap();
        assert_eq!((h.payload_type, h.payload_len), (18, 20));
    }
}

#[test]
fn loss_is_concealed_and_time_keeps_running() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    let out = run(&mut s, [0u16, 1, 2, 4, 5]);
    // The lost packet 3 is concealed: six 20 ms packets come out for six 20 ms of time.
    assert_eq!(out.len(), 6);
    let hs: Vec<RtpHeader> = out
        .iter()
        .map(|t| RtpHeader::parse(&t.data).unwrap())
        .collect();
    assert_eq!(hs[5].timestamp, hs[0].timestamp.wrapping_add(5 * 160));
    assert_eq!(
        s.stats(Instant::now())
            .caller
            .transcoding
            .unwrap()
            .concealed_packets,
        1
    );
}

#[test]
fn late_packets_are_dropped_and_counted() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    let out = run(&mut s, [0u16, 1, 3, 2, 4]);
    assert_eq!(
        s.stats(Instant::now())
            .caller
            .transcoding
            .unwrap()
            .late_packets,
        1
    );
    assert_eq!(
        out.len(),
        5,
        "2 was concealed when 3 arrived, then dropped as late"
    );
}

#[test]
fn codec_switch_on_update_keeps_the_stream_continuous() {
    let sp = transcoding_spec(vec![pcma()], vec![pcmu()]);
    let mut s = session_ok(sp.clone());
    let before = run(&mut s, 0..5);
    let mut sp2 = sp;
    sp2.callee.codecs = vec![g729()];
    sp2.callee.ptime_ms = 40;
    s.update(sp2, Instant::now()).unwrap();
    let after = run(&mut s, 5..9);
    let last = RtpHeader::parse(&before.last().unwrap().data).unwrap();
    let next = RtpHeader::parse(&after[0].data).unwrap();
    assert_eq!(next.ssrc, last.ssrc);
    assert_eq!(next.sequence, last.sequence.wrapping_add(1));
    assert_eq!(next.timestamp, last.timestamp.wrapping_add(160));
    assert_eq!(next.payload_type, 18);
    assert_eq!(next.payload_len, 40, "40 ms of G.729");
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
        Instant::now(),
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &ev,
    );
    assert_eq!(v, Verdict::Consumed);
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    let h = RtpHeader::parse(&out[0].data).unwrap();
    let last_audio = RtpHeader::parse(&audio[2].data).unwrap();
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
        Instant::now(),
        Side::Caller,
        Channel::Rtcp,
        addr("192.0.2.10:4001"),
        &rtcp_rr(7),
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
    let err = Session::new(SessionId(1), sp, Instant::now())
        .err()
        .unwrap();
    assert!(err.contains("ptime 10 ms is not allowed for opus"), "{err}");
}

fn session_ok(spec: SessionSpec) -> Session {
    spec.validate().unwrap();
    Session::new(SessionId(1), spec, Instant::now()).unwrap()
}

#[test]
fn a_new_sender_ssrc_restarts_input_numbering_but_not_ours() {
    let mut s = session_ok(transcoding_spec(vec![pcma()], vec![pcmu()]));
    let before = run(&mut s, 100..103);
    // The phone restarts: new SSRC, sequence numbers from 0 again. Not "late": a new source.
    let mut p = tone_packet(0, 8);
    p[8..12].copy_from_slice(&0xBEEFu32.to_be_bytes());
    let v = s.handle_packet(Instant::now(), Side::Caller, Channel::Rtp, addr(CALLER), &p);
    assert_eq!(v, Verdict::Consumed);
    let after = drain(&mut s);
    assert_eq!(after.len(), 1);
    let (last, next) = (
        RtpHeader::parse(&before[2].data).unwrap(),
        RtpHeader::parse(&after[0].data).unwrap(),
    );
    assert_eq!(next.ssrc, last.ssrc);
    assert_eq!(next.sequence, last.sequence.wrapping_add(1));
    assert!(next.marker);
    assert_eq!(
        s.stats(Instant::now())
            .caller
            .transcoding
            .unwrap()
            .late_packets,
        0
    );
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
