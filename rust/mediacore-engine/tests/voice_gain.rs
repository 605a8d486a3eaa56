//! Voice gain toward a party (`LegSpec::gain_db`, VOS3000 `SS_VOICEGAIN`;
//! security-quality-timerouting-failover.md behaviour 31: "+6 raises output level by 6 dB
//! (±0.5 dB)"). Relayed G.711 is scaled by table on every path a packet leaves by (forwarded,
//! re-timed, through the DTMF overlay), exactly once, and nothing else in the packet changes;
//! telephone-events, comfort noise and relayed compressed codecs pass untouched; a decoded
//! direction scales its PCM before encoding; the spec refuses ±11.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::*;
use mediacore_dsp::codec::g711;
use mediacore_engine::gain::g711_gain_table;
use mediacore_engine::{Channel, CodecSpec, DtmfMode, JitterMode, SessionSpec, Side, Verdict};
use mediacore_proto::RtpHeader;

fn codec(pt: u8, name: &str) -> CodecSpec {
    CodecSpec::new(pt, name, 8000)
}

fn spec_with(caller: Vec<CodecSpec>, callee: Vec<CodecSpec>, callee_gain: i8) -> SessionSpec {
    let mut sp = spec();
    sp.caller.codecs = caller;
    sp.callee.codecs = callee;
    sp.callee.gain_db = callee_gain;
    for leg in [&mut sp.caller, &mut sp.callee] {
        leg.jitter_buffer.mode = JitterMode::Fixed;
        leg.echo_cancel.enabled = false;
    }
    sp.validate().unwrap();
    sp
}

/// 20 ms of a 1 kHz sine at `amplitude`, G.711-encoded (`alaw` or µ-law), on `pt`.
fn sine_packet(pt: u8, alaw: bool, seq: u16, amplitude: f64) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x5157u32.to_be_bytes());
    for n in 0..160u32 {
        let t = f64::from(u32::from(seq) * 160 + n) / 8000.0;
        let s = (amplitude * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()).round() as i16;
        p.push(if alaw {
            g711::alaw_encode(s)
        } else {
            g711::ulaw_encode(s)
        });
    }
    p
}

fn event(pt: u8, seq: u16, ts: u32, end: bool, duration: u16) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x5157u32.to_be_bytes());
    p.extend_from_slice(&[5, if end { 0x8a } else { 0x0a }]);
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

/// The packet as the receiver should get it: the payload through the law's table at `db`.
fn scaled(p: &[u8], alaw: bool, db: i8) -> Vec<u8> {
    let t = g711_gain_table(alaw, db);
    let mut q = p.to_vec();
    for b in &mut q[12..] {
        *b = t[usize::from(*b)];
    }
    q
}

#[test]
fn relayed_g711_is_scaled_toward_the_leg_that_asks_and_nothing_else_changes() {
    // PCMU on a dynamic 96 on the caller's side, 0 on the callee's: relayed (same codec), the
    // payload type mapped and the payload scaled once.
    let mut rig = Rig::new(spec_with(
        vec![codec(96, "PCMU"), codec(101, "telephone-event")],
        vec![codec(0, "PCMU"), codec(101, "telephone-event")],
        6,
    ));
    assert!(!rig.s.is_transcoding());
    let up = sine_packet(96, false, 1, 3000.0);
    assert!(matches!(
        rig.send(0, Side::Caller, Channel::Rtp, &up),
        Verdict::Forward { .. }
    ));
    let mut want = scaled(&up, false, 6);
    want[1] = 0;
    assert_eq!(rig.out.last().unwrap().1, want);
    assert_ne!(want[12..], up[12..], "+6 dB changes a -20 dBFS sine");
    // Telephone-events and comfort noise (13, not negotiated) pass as sent.
    let ev = event(101, 2, 160, false, 160);
    rig.send(20, Side::Caller, Channel::Rtp, &ev);
    assert_eq!(rig.out.last().unwrap().1, ev);
    let mut cn = vec![0x80, 13, 0, 3, 0, 0, 1, 0, 0, 0, 0x51, 0x57];
    cn.push(40);
    rig.send(40, Side::Caller, Channel::Rtp, &cn);
    assert_eq!(rig.out.last().unwrap().1, cn);
    // The other direction: the caller's leg has no gain; bytes as sent but for the mapping.
    let down = sine_packet(0, false, 1, 3000.0);
    rig.send(41, Side::Callee, Channel::Rtp, &down);
    let mut want = down.clone();
    want[1] = 96;
    assert_eq!(rig.out.last().unwrap().1, want);
}

#[test]
fn padding_is_not_scaled() {
    let mut rig = Rig::new(spec_with(
        vec![codec(8, "PCMA")],
        vec![codec(8, "PCMA")],
        -10,
    ));
    let mut p = sine_packet(8, true, 1, 8000.0);
    p[0] |= 0x20;
    p.extend_from_slice(&[0x11, 0x22, 3]);
    rig.send(0, Side::Caller, Channel::Rtp, &p);
    let got = &rig.out.last().unwrap().1;
    assert_eq!(got[..12], p[..12]);
    assert_eq!(got[12..172], scaled(&p[..172], true, -10)[12..]);
    assert_eq!(got[172..], p[172..], "padding as sent");
}

#[test]
fn relayed_g729_passes_unchanged_and_gain_does_not_force_transcoding() {
    let mut rig = Rig::new(spec_with(
        vec![codec(18, "G729")],
        vec![codec(18, "G729")],
        10,
    ));
    assert!(!rig.s.is_transcoding());
    let mut p = vec![0x80, 18, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
    p.extend((0..20u8).map(|i| i.wrapping_mul(37)));
    rig.send(0, Side::Caller, Channel::Rtp, &p);
    assert_eq!(rig.out.last().unwrap().1, p);
}

#[test]
fn the_relay_jitter_buffer_path_scales_once() {
    let mut sp = spec_with(vec![codec(8, "PCMA")], vec![codec(8, "PCMA")], 6);
    sp.caller.jitter_buffer.relay = true;
    let mut rig = Rig::new(sp);
    let mut sent = Vec::new();
    for k in 0..30u16 {
        let jitter = u64::from((k * 37) % 31);
        let p = sine_packet(8, true, k, 3000.0);
        rig.send(20 * u64::from(k) + jitter, Side::Caller, Channel::Rtp, &p);
        sent.push(p);
    }
    rig.advance(rig.at(5000));
    let got = rig.bytes_toward(Side::Callee);
    assert_eq!(got.len(), sent.len());
    for p in &sent {
        let g = got.iter().find(|g| g[2..4] == p[2..4]).unwrap();
        assert_eq!(*g, scaled(p, true, 6).as_slice());
    }
}

#[test]
fn the_dtmf_overlay_scales_the_senders_audio_in_its_copies_once() {
    // The callee takes digits as SIP INFO: the caller's events are kept back, so the audio
    // after them leaves as renumbered copies made by the overlay; each is scaled once.
    let mut sp = spec_with(
        vec![codec(8, "PCMA"), codec(101, "telephone-event")],
        vec![codec(8, "PCMA")],
        6,
    );
    sp.callee.dtmf = DtmfMode::Info;
    let mut rig = Rig::new(sp);
    let mut sent = Vec::new();
    for k in 0..12u16 {
        let p = if (4..7).contains(&k) {
            event(101, k, 640, k == 6, 160 * (k - 3))
        } else {
            let p = sine_packet(8, true, k, 3000.0);
            sent.push(p.clone());
            p
        };
        rig.send(20 * u64::from(k), Side::Caller, Channel::Rtp, &p);
    }
    let got = rig.bytes_toward(Side::Callee);
    assert_eq!(got.len(), sent.len(), "events kept back");
    for (p, g) in sent.iter().zip(&got) {
        let h = RtpHeader::parse(g).unwrap();
        assert_eq!(
            h.payload(g),
            &scaled(p, true, 6)[12..],
            "seq {}",
            h.sequence
        );
    }
    // The last audio packets are renumbered copies (three events were kept back).
    let last = RtpHeader::parse(got.last().unwrap()).unwrap();
    assert_eq!(last.sequence, sent.len() as u16 - 1);
}

fn rms_db(pcm: &[i16]) -> f64 {
    let e: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    10.0 * (e / pcm.len().max(1) as f64).log10()
}

/// The level (dB) of the caller's PCMU sine after the transcoding direction to a PCMA callee
/// with `gain_db` toward it.
fn transcoded_level(gain_db: i8) -> f64 {
    let mut rig = Rig::new(spec_with(
        vec![codec(0, "PCMU")],
        vec![codec(8, "PCMA")],
        gain_db,
    ));
    assert!(rig.s.is_transcoding());
    for k in 0..50u16 {
        rig.send(
            20 * u64::from(k),
            Side::Caller,
            Channel::Rtp,
            &sine_packet(0, false, k, 3277.0),
        );
    }
    rig.advance(rig.at(1300));
    let mut pcm = Vec::new();
    for g in rig.bytes_toward(Side::Callee).iter().skip(5).take(40) {
        let h = RtpHeader::parse(g).unwrap();
        pcm.extend(h.payload(g).iter().map(|&c| g711::alaw_decode(c)));
    }
    assert_eq!(pcm.len(), 40 * 160);
    rms_db(&pcm)
}

#[test]
fn a_decoded_direction_scales_its_audio_before_encoding() {
    let flat = transcoded_level(0);
    for db in [6i8, -10] {
        let d = transcoded_level(db) - flat;
        assert!((d - f64::from(db)).abs() <= 0.5, "{db} dB gave {d:.2} dB");
    }
}

#[test]
fn the_spec_accepts_minus_ten_to_ten_and_refuses_eleven_behaviour_31() {
    for db in [-10i8, 0, 10] {
        let mut sp = spec();
        sp.caller.gain_db = db;
        sp.validate().unwrap();
    }
    for db in [11i8, -11] {
        let mut sp = spec();
        sp.callee.gain_db = db;
        let e = sp.validate().unwrap_err();
        assert_eq!(e.field, "callee.gain_db");
        assert!(e.to_string().contains("not in -10..=10"), "{e}");
    }
}
