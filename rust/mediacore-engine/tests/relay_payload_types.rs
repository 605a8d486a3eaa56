//! A relayed packet leaves with the payload type the *receiving* leg negotiated for its codec:
//! G.729 on 18 toward a caller that offered 18, G729a on 96 toward a carrier that answered 96,
//! telephone-event on each party's own number; the payload is untouched (G.729 and G729a are one
//! bitstream). Equal numbers pass unchanged (security-quality-timerouting-failover.md behaviour
//! 35: "Both legs on PCMA → no transcoding. RTP payload type 8 is passed through unchanged").
//! Every output path of a relayed direction is checked: forwarded, re-timed by a relay jitter
//! buffer, through the DTMF overlay (renumbered copies, events it inserts), after an update.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::*;
use mediacore_engine::{Channel, CodecSpec, DtmfMode, DtmfPlay, SessionSpec, Side, Verdict};
use mediacore_proto::RtpHeader;

fn g729(pt: u8, name: &str) -> CodecSpec {
    CodecSpec {
        fmtp: Some("annexb=no".into()),
        ..CodecSpec::new(pt, name, 8000)
    }
}
fn te(pt: u8) -> CodecSpec {
    CodecSpec::new(pt, "telephone-event", 8000)
}
fn pcma() -> CodecSpec {
    CodecSpec::new(8, "PCMA", 8000)
}

fn spec_with(caller: Vec<CodecSpec>, callee: Vec<CodecSpec>) -> SessionSpec {
    let mut sp = spec();
    sp.caller.codecs = caller;
    sp.callee.codecs = callee;
    sp.validate().unwrap();
    sp
}

/// An RTP packet with `payload` (a recognisable pattern per sequence number).
fn packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(7) ^ (seq as u8)));
    p
}

/// An RFC 4733 packet for `event`.
fn event(pt: u8, seq: u16, ts: u32, ssrc: u32, code: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut p = packet(pt, false, seq, ts, ssrc, 0);
    p.extend_from_slice(&[code, if end { 0x8a } else { 0x0a }]);
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

/// `sent` and `got` are the same packet but for the payload type, which `got` has as `pt`
/// (marker bit and everything else kept).
fn same_but_pt(sent: &[u8], got: &[u8], pt: u8) {
    assert_eq!(sent.len(), got.len());
    assert_eq!(got[1] & 0x7f, pt, "payload type");
    assert_eq!(got[1] & 0x80, sent[1] & 0x80, "marker bit");
    assert_eq!(got[0], sent[0]);
    assert_eq!(&got[2..], &sent[2..], "header fields and payload unchanged");
}

#[test]
fn g729_on_18_and_g729a_on_96_are_relayed_with_each_receivers_payload_type() {
    // The caller offered G.729 on 18; the carrier (g729_mode = both) answered G729a on 96.
    let mut rig = Rig::new(spec_with(
        vec![g729(18, "G729"), te(101)],
        vec![g729(96, "G729a"), te(96 + 1)],
    ));
    assert!(!rig.s.is_transcoding(), "one bitstream: relayed");
    for k in 0..5u16 {
        let up = packet(18, k == 0, k, 160 * u32::from(k), 0xCA11, 20);
        assert!(matches!(
            rig.send(20 * u64::from(k), Side::Caller, Channel::Rtp, &up),
            Verdict::Forward {
                via: Side::Callee,
                ..
            }
        ));
        same_but_pt(&up, rig.out.last().unwrap().1.as_slice(), 96);
        let down = packet(96, k == 0, 100 + k, 999 + 160 * u32::from(k), 0xCA22, 20);
        assert!(matches!(
            rig.send(20 * u64::from(k) + 5, Side::Callee, Channel::Rtp, &down),
            Verdict::Forward {
                via: Side::Caller,
                ..
            }
        ));
        same_but_pt(&down, rig.out.last().unwrap().1.as_slice(), 18);
    }
    // A caller that sends what the answer named (96: its own list does not have it) is not
    // renumbered: the carrier negotiated 96 for G729a.
    let up96 = packet(96, false, 9, 1440, 0xCA11, 20);
    rig.send(200, Side::Caller, Channel::Rtp, &up96);
    same_but_pt(&up96, rig.out.last().unwrap().1.as_slice(), 96);
    // RTCP is not touched.
    let rr = rtcp_rr(0xCA11);
    rig.send(210, Side::Caller, Channel::Rtcp, &rr);
    assert_eq!(rig.out.last().unwrap().1, rr);
}

#[test]
fn telephone_events_101_and_96_are_relayed_on_each_receivers_number() {
    let mut rig = Rig::new(spec_with(vec![pcma(), te(101)], vec![pcma(), te(96)]));
    assert!(!rig.s.is_transcoding());
    let up = [
        event(101, 1, 800, 0xE1, 5, false, 160),
        event(101, 2, 800, 0xE1, 5, false, 320),
        event(101, 3, 800, 0xE1, 5, true, 480),
    ];
    for (i, p) in up.iter().enumerate() {
        rig.send(20 * i as u64, Side::Caller, Channel::Rtp, p);
        same_but_pt(p, rig.out.last().unwrap().1.as_slice(), 96);
    }
    let down = event(96, 50, 4000, 0xE2, 9, true, 800);
    rig.send(100, Side::Callee, Channel::Rtp, &down);
    same_but_pt(&down, rig.out.last().unwrap().1.as_slice(), 101);
    // PCMA on 8 both ways: unchanged.
    let audio = packet(8, false, 4, 1600, 0xE1, 160);
    rig.send(120, Side::Caller, Channel::Rtp, &audio);
    assert_eq!(rig.out.last().unwrap().1, audio);
}

#[test]
fn equal_payload_types_pass_unchanged_behaviour_35() {
    // Both legs on PCMA (8) with telephone-event on 101: every byte passes as sent, both ways.
    let mut rig = Rig::new(spec_with(vec![pcma(), te(101)], vec![pcma(), te(101)]));
    for k in 0..3u16 {
        let a = packet(8, k == 0, k, 160 * u32::from(k), 0xA, 160);
        rig.send(20 * u64::from(k), Side::Caller, Channel::Rtp, &a);
        assert_eq!(rig.out.last().unwrap().1, a);
        let b = packet(8, false, k, 160 * u32::from(k), 0xB, 160);
        rig.send(20 * u64::from(k) + 1, Side::Callee, Channel::Rtp, &b);
        assert_eq!(rig.out.last().unwrap().1, b);
    }
    let e = event(101, 9, 800, 0xA, 1, true, 800);
    rig.send(100, Side::Caller, Channel::Rtp, &e);
    assert_eq!(rig.out.last().unwrap().1, e);
    // A payload type the sender did not negotiate (13, comfort noise) passes as sent, as the
    // relay always did; so does everything with unknown codec lists.
    let cn = packet(13, false, 10, 1000, 0xA, 1);
    rig.send(120, Side::Caller, Channel::Rtp, &cn);
    assert_eq!(rig.out.last().unwrap().1, cn);
    let mut unknown = Rig::new(spec());
    let p = packet(18, false, 1, 0, 0xC, 20);
    unknown.send(0, Side::Caller, Channel::Rtp, &p);
    assert_eq!(unknown.out.last().unwrap().1, p);
}

#[test]
fn an_update_that_changes_the_codecs_rebuilds_the_map() {
    let same = spec_with(vec![g729(18, "G729")], vec![g729(18, "G729")]);
    let mut rig = Rig::new(same.clone());
    let p = |seq: u16| packet(18, false, seq, 160 * u32::from(seq), 0xD, 20);
    rig.send(0, Side::Caller, Channel::Rtp, &p(0));
    same_but_pt(&p(0), rig.out.last().unwrap().1.as_slice(), 18);
    // Re-INVITE: the carrier now answers G729a on 96.
    let moved = spec_with(vec![g729(18, "G729")], vec![g729(96, "G729a")]);
    rig.s.update(moved, rig.at(20)).unwrap();
    rig.send(40, Side::Caller, Channel::Rtp, &p(1));
    same_but_pt(&p(1), rig.out.last().unwrap().1.as_slice(), 96);
    let back = packet(96, false, 7, 0, 0xE, 20);
    rig.send(41, Side::Callee, Channel::Rtp, &back);
    same_but_pt(&back, rig.out.last().unwrap().1.as_slice(), 18);
    // And back again: identity.
    rig.s.update(same, rig.at(60)).unwrap();
    rig.send(80, Side::Caller, Channel::Rtp, &p(2));
    same_but_pt(&p(2), rig.out.last().unwrap().1.as_slice(), 18);
    assert_eq!(rig.s.pt_map(Side::Callee)[96], 96);
}

#[test]
fn the_relay_jitter_buffer_sends_on_with_the_receivers_payload_type() {
    let mut sp = spec_with(vec![g729(18, "G729")], vec![g729(96, "G729a")]);
    sp.caller.jitter_buffer.relay = true;
    let mut rig = Rig::new(sp);
    assert!(!rig.s.is_transcoding());
    let mut sent = Vec::new();
    for k in 0..40u16 {
        // 0–30 ms of jitter, so the re-timer holds packets and releases them on its timer.
        let jitter = u64::from((k * 37) % 31);
        let p = packet(18, k == 0, k, 160 * u32::from(k), 0xF00D, 20);
        rig.send(20 * u64::from(k) + jitter, Side::Caller, Channel::Rtp, &p);
        sent.push(p);
    }
    rig.advance(rig.at(5000));
    let got = rig.bytes_toward(Side::Callee);
    let seqs: Vec<u16> = got
        .iter()
        .map(|g| u16::from_be_bytes([g[2], g[3]]))
        .collect();
    assert_eq!(got.len(), sent.len(), "{seqs:?}");
    let held = rig.s.jitter_buffer_stats(Side::Caller).unwrap();
    assert!(held.relay);
    for p in &sent {
        let seq = &p[2..4];
        let g = got.iter().find(|g| &g[2..4] == seq).unwrap();
        same_but_pt(p, g, 96);
    }
}

/// The caller's G729a is on 97 and its telephone-event on 96; the callee has them the other way
/// round. A packet mapped twice would come out with the wrong number.
fn swapped() -> SessionSpec {
    spec_with(
        vec![g729(97, "G729a"), te(96)],
        vec![g729(96, "G729a"), te(97)],
    )
}

fn play_dtmf_toward_callee(retimed: bool) {
    let mut sp = swapped();
    sp.caller.jitter_buffer.relay = retimed;
    let mut rig = Rig::new(sp);
    let audio = |k: u16| packet(97, false, k, 160 * u32::from(k), 0x5EED, 20);
    let mut sent = Vec::new();
    for k in 0..60u16 {
        if k == 10 {
            let play = DtmfPlay {
                digits: vec!['4'],
                duration_ms: 100,
                volume: 8,
                pause_ms: 40,
                from_info: false,
            };
            rig.s.play_dtmf(rig.at(200), Side::Callee, &play).unwrap();
            rig.collect();
        }
        rig.send(20 * u64::from(k), Side::Caller, Channel::Rtp, &audio(k));
        sent.push(audio(k));
    }
    rig.advance(rig.at(5000));
    let hdrs = rig.toward(Side::Callee);
    let events: Vec<&RtpHeader> = hdrs.iter().filter(|h| h.payload_len == 4).collect();
    let voice: Vec<&RtpHeader> = hdrs.iter().filter(|h| h.payload_len == 20).collect();
    assert!(events.len() >= 3, "the played digit's events: {hdrs:?}");
    assert!(
        events.iter().all(|h| h.payload_type == 97),
        "events carry the callee's telephone-event type, mapped once"
    );
    assert_eq!(voice.len(), sent.len());
    assert!(voice.iter().all(|h| h.payload_type == 96), "G729a on 96");
    // Inserted events renumber the stream after them: those audio packets are copies. (The
    // end packet goes three times on one sequence number.)
    let mut seqs: Vec<u16> = hdrs.iter().map(|h| h.sequence).collect();
    seqs.dedup();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
    assert!(!rig.s.is_transcoding());
    let got = rig.bytes_toward(Side::Callee);
    let voice_bytes: Vec<&&[u8]> = got.iter().filter(|g| g.len() == 32).collect();
    for (p, g) in sent.iter().zip(voice_bytes) {
        assert_eq!(&g[4..], &p[4..], "timestamp, SSRC and payload as sent");
        assert_eq!(g[1] & 0x7f, 96);
    }
}

#[test]
fn the_dtmf_overlay_maps_the_senders_packets_and_not_what_it_inserts() {
    play_dtmf_toward_callee(false);
}

#[test]
fn the_dtmf_overlay_behind_the_relay_jitter_buffer_maps_too() {
    play_dtmf_toward_callee(true);
}

#[test]
fn events_kept_back_by_the_overlay_leave_audio_renumbered_and_mapped() {
    // The callee takes digits as SIP INFO: the caller's events are kept back, so the audio after
    // them goes out as renumbered copies; those too carry the callee's payload type.
    let mut sp = swapped();
    sp.callee.dtmf = DtmfMode::Info;
    let mut rig = Rig::new(sp);
    let mut sent = Vec::new();
    for k in 0..12u64 {
        let seq = k as u16;
        let p = if (4..7).contains(&k) {
            event(96, seq, 640, 0xAB, 3, k == 6, 160 * (k as u16 - 3))
        } else {
            let p = packet(97, false, seq, 160 * u32::from(seq), 0xAB, 20);
            sent.push(p.clone());
            p
        };
        rig.send(20 * k, Side::Caller, Channel::Rtp, &p);
    }
    let hdrs = rig.toward(Side::Callee);
    assert_eq!(hdrs.len(), sent.len(), "events kept back");
    assert!(hdrs.iter().all(|h| h.payload_type == 96));
    let seqs: Vec<u16> = hdrs.iter().map(|h| h.sequence).collect();
    assert_eq!(seqs, (0..sent.len() as u16).collect::<Vec<_>>());
}

#[test]
fn transcoded_output_already_carries_the_receivers_payload_type() {
    // PCMA caller, G729a-on-96 carrier: the path encodes with 96 and decodes toward 8; nothing
    // maps its output again.
    let mut rig = Rig::new(spec_with(
        vec![pcma(), te(101)],
        vec![g729(96, "G729a"), te(97)],
    ));
    assert!(rig.s.is_transcoding());
    for k in 0..25u16 {
        let p = packet(8, false, k, 160 * u32::from(k), 0x7, 160);
        rig.send(20 * u64::from(k), Side::Caller, Channel::Rtp, &p);
        let q = packet(96, false, k, 160 * u32::from(k), 0x8, 20);
        rig.send(20 * u64::from(k) + 3, Side::Callee, Channel::Rtp, &q);
    }
    rig.advance(rig.at(1000));
    let (up, down) = (rig.toward(Side::Callee), rig.toward(Side::Caller));
    assert!(!up.is_empty() && !down.is_empty());
    assert!(up.iter().all(|h| h.payload_type == 96));
    assert!(down.iter().all(|h| h.payload_type == 8));
}
