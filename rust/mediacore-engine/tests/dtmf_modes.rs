//! DTMF between legs by their modes (rfc2833 / info / inband / auto), on relayed and transcoded
//! directions; "play DTMF" from the control plane; chains that must never double a digit.
//! Everything is sans-IO: packets and time go in, packets and events come out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_dsp::codec::g711;
use mediacore_dsp::dtmf::{DetectorEvent, DtmfDetector, DtmfGenerator};
use mediacore_engine::{
    Channel, CodecSpec, DtmfMode, DtmfPlay, DtmfVia, EventKind, Session, SessionId, SessionSpec,
    Side, Verdict,
};
use mediacore_proto::{RtpHeader, TelephoneEvent};

const SSRC: u32 = 0xAB01;

fn pcma() -> CodecSpec {
    CodecSpec::new(8, "PCMA", 8000)
}
fn pcmu() -> CodecSpec {
    CodecSpec::new(0, "PCMU", 8000)
}
fn te(pt: u8) -> CodecSpec {
    CodecSpec::new(pt, "telephone-event", 8000)
}

/// What one side's party is: its codecs (with or without telephone-event) and its mode.
#[derive(Clone)]
struct Party {
    codecs: Vec<CodecSpec>,
    mode: DtmfMode,
}

fn party(codec: CodecSpec, te_pt: Option<u8>, mode: DtmfMode) -> Party {
    let mut codecs = vec![codec];
    codecs.extend(te_pt.map(te));
    Party { codecs, mode }
}

fn session_for(caller: &Party, callee: &Party, id: u64) -> Session {
    let mut sp: SessionSpec = spec();
    sp.caller.codecs = caller.codecs.clone();
    sp.caller.dtmf = caller.mode;
    sp.callee.codecs = callee.codecs.clone();
    sp.callee.dtmf = callee.mode;
    sp.validate().unwrap();
    Session::new(SessionId(id), sp, Instant::now()).unwrap()
}

/// A packet as the callee receives it.
#[derive(Debug, Clone)]
struct Out {
    data: Vec<u8>,
}

impl Out {
    fn hdr(&self) -> RtpHeader {
        RtpHeader::parse(&self.data).unwrap()
    }
}

/// Drives a session: caller packets in at their times, timers run, callee-bound packets out.
struct Rig {
    s: Session,
    t0: Instant,
    now: Instant,
    to_callee: Vec<Out>,
}

impl Rig {
    fn new(s: Session) -> Self {
        let t0 = Instant::now();
        Rig {
            s,
            t0,
            now: t0,
            to_callee: Vec::new(),
        }
    }

    /// Runs the session's timers up to `t`, then delivers `pkt` from the caller at `t`.
    fn feed(&mut self, t: Instant, pkt: &[u8]) {
        self.advance(t);
        let mut data = pkt.to_vec();
        let v = self
            .s
            .handle_packet(t, Side::Caller, Channel::Rtp, addr(CALLER), &mut data);
        match v {
            Verdict::Forward { via, .. } => {
                assert_eq!(via, Side::Callee);
                self.to_callee.push(Out { data });
            }
            Verdict::Consumed => {}
            Verdict::Drop(r) => panic!("dropped: {r:?}"),
        }
        self.collect();
    }

    fn advance(&mut self, t: Instant) {
        while let Some(due) = self.s.poll_timeout().filter(|d| *d <= t) {
            self.now = due.max(self.now);
            self.s.handle_timeout(self.now);
            self.collect();
        }
        self.now = t.max(self.now);
    }

    fn collect(&mut self) {
        while let Some(tx) = self.s.poll_transmit() {
            if tx.via == Side::Callee {
                self.to_callee.push(Out {
                    data: tx.data.clone(),
                });
            }
            self.s.recycle(tx.data);
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn events(&mut self) -> Vec<EventKind> {
        std::iter::from_fn(|| self.s.poll_event())
            .map(|e| e.kind)
            .collect()
    }
}

fn audio_packet(seq: u16, ts: u32, pt: u8, pcm: &[i16]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend(pcm.iter().map(|&x| {
        if pt == 0 {
            g711::ulaw_encode(x)
        } else {
            g711::alaw_encode(x)
        }
    }));
    p
}

fn event_packet(seq: u16, ts: u32, pt: u8, code: u8, end: bool, duration: u16) -> Vec<u8> {
    // The first packet of an event (duration one packet) carries the marker.
    let marker = if duration == 160 && !end { 0x80 } else { 0 };
    let mut p = vec![0x80, marker | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[code, if end { 0x80 | 10 } else { 10 }]);
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

fn code(d: char) -> u8 {
    mediacore_proto::event_for_digit(d).unwrap()
}

/// The caller sends `digits` in its own way (`as_events`: RFC 4733 with audio paused during
/// each event, as Asterisk does; else 100 ms tones), each between 200 ms of silence. Time runs
/// 20 ms per packet slot.
fn send_digits(rig: &mut Rig, digits: &str, as_events: Option<u8>, audio_pt: u8) {
    let mut seq: u16 = 100;
    let mut ts: u32 = 8000;
    let mut slot: u64 = 0;
    let silence = [0i16; 160];
    let send = |rig: &mut Rig, pkt: Vec<u8>, slot: u64| {
        let t = rig.at(20 * slot);
        rig.feed(t, &pkt);
    };
    for d in digits.chars() {
        for _ in 0..10 {
            send(rig, audio_packet(seq, ts, audio_pt, &silence), slot);
            seq = seq.wrapping_add(1);
            ts += 160;
            slot += 1;
        }
        match as_events {
            Some(pt) => {
                // 120 ms event: updates every 20 ms, then three end packets (one seq).
                for k in 1..=6u16 {
                    send(
                        rig,
                        event_packet(seq, ts, pt, code(d), false, k * 160),
                        slot,
                    );
                    seq = seq.wrapping_add(1);
                    slot += 1;
                }
                for _ in 0..3 {
                    send(rig, event_packet(seq, ts, pt, code(d), true, 960), slot);
                }
                seq = seq.wrapping_add(1);
                ts += 960;
            }
            None => {
                let mut g = DtmfGenerator::new(d, -10.0, 800).unwrap();
                for _ in 0..5 {
                    let mut pcm = [0i16; 160];
                    g.fill(&mut pcm);
                    send(rig, audio_packet(seq, ts, audio_pt, &pcm), slot);
                    seq = seq.wrapping_add(1);
                    ts += 160;
                    slot += 1;
                }
            }
        }
    }
    for _ in 0..15 {
        send(rig, audio_packet(seq, ts, audio_pt, &silence), slot);
        seq = seq.wrapping_add(1);
        ts += 160;
        slot += 1;
    }
}

/// Digits heard (by our Goertzel detector) in the callee's audio of payload type `pt`.
fn heard(out: &[Out], pt: u8) -> String {
    let mut pcm = Vec::new();
    for o in out {
        let h = o.hdr();
        if h.payload_type != pt {
            continue;
        }
        pcm.extend(h.payload(&o.data).iter().map(|&b| {
            if pt == 0 {
                g711::ulaw_decode(b)
            } else {
                g711::alaw_decode(b)
            }
        }));
    }
    let mut det = DtmfDetector::new();
    let mut ev = Vec::new();
    det.process(&pcm, &mut ev);
    det.finish(&mut ev);
    ev.iter()
        .filter_map(|e| match e {
            DetectorEvent::End { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect()
}

/// RFC 4733 events toward the callee on `pt`: (digit, final duration, end copies) per event
/// timestamp, in order; asserts each event's packets share a timestamp and its first has the
/// marker.
fn events_out(out: &[Out], pt: u8) -> Vec<(char, u16, usize)> {
    let mut v: Vec<(u32, char, u16, usize, bool)> = Vec::new();
    for o in out {
        let h = o.hdr();
        if h.payload_type != pt {
            continue;
        }
        let e = TelephoneEvent::parse(h.payload(&o.data)).unwrap();
        let d = mediacore_proto::digit_for_event(e.event).unwrap();
        match v.iter_mut().find(|x| x.0 == h.timestamp) {
            Some(x) => {
                assert!(
                    !h.marker,
                    "only the first packet of an event has the marker"
                );
                x.2 = x.2.max(e.duration);
                if e.end {
                    x.3 += 1;
                }
            }
            None => {
                v.push((h.timestamp, d, e.duration, usize::from(e.end), h.marker));
            }
        }
    }
    assert!(
        v.iter().all(|x| x.4),
        "each event starts with the marker: {v:?}"
    );
    v.into_iter().map(|x| (x.1, x.2, x.3)).collect()
}

/// One stream toward the callee: one SSRC, sequence numbers +1 per packet (the three end
/// copies of an event share theirs), no gap.
fn assert_one_continuous_stream(out: &[Out]) {
    let hs: Vec<RtpHeader> = out.iter().map(Out::hdr).collect();
    assert!(
        hs.windows(2).all(|w| w[0].ssrc == w[1].ssrc),
        "one SSRC: {:?}",
        hs.iter()
            .map(|h| (h.ssrc, h.sequence, h.payload_type))
            .collect::<Vec<_>>()
    );
    for w in out.windows(2) {
        let (a, b) = (w[0].hdr(), w[1].hdr());
        let step = b.sequence.wrapping_sub(a.sequence);
        assert!(
            step == 1 || (step == 0 && w[0].data == w[1].data),
            "sequence {} -> {} (a gap or a reordering the sender did not cause)",
            a.sequence,
            b.sequence
        );
    }
}

/// Received digits raised for the control plane: (digit, inband, info_to).
fn received(events: &[EventKind]) -> Vec<(char, bool, Option<Side>)> {
    events
        .iter()
        .filter_map(|k| match *k {
            EventKind::Dtmf {
                digit,
                inband,
                info_to,
                ..
            } => Some((digit, inband, info_to)),
            _ => None,
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Events,
    Tones,
}

/// Every pair of modes, relayed (PCMA both ways) and transcoded (PCMA → PCMU).
#[test]
fn every_mode_pair_delivers_each_digit_once_in_the_receivers_form() {
    let digits = "1#5";
    // (caller party, how it sends, callee party, what the callee must get)
    let modes = [
        (Some(101), DtmfMode::Auto, Kind::Events),
        (None, DtmfMode::Auto, Kind::Tones),
        (Some(96), DtmfMode::Rfc2833, Kind::Events),
        (None, DtmfMode::Inband, Kind::Tones),
        (Some(101), DtmfMode::Inband, Kind::Tones),
    ];
    let callees = [
        (Some(101), DtmfMode::Auto),
        (None, DtmfMode::Auto),
        (Some(97), DtmfMode::Rfc2833),
        (None, DtmfMode::Rfc2833), // default payload type 101
        (None, DtmfMode::Inband),
        (Some(101), DtmfMode::Info),
        (None, DtmfMode::Info),
    ];
    let mut id = 10;
    for transcoded in [false, true] {
        for &(c_te, c_mode, kind) in &modes {
            for &(r_te, r_mode) in &callees {
                id += 1;
                let out_codec = if transcoded { pcmu() } else { pcma() };
                let out_pt = out_codec.pt;
                let caller = party(pcma(), c_te, c_mode);
                let callee = party(out_codec, r_te, r_mode);
                let s = session_for(&caller, &callee, id);
                assert_eq!(
                    s.is_transcoding(),
                    transcoded,
                    "G.711 conversion stays relay"
                );
                let mut rig = Rig::new(s);
                let send_pt = match kind {
                    Kind::Events => c_te,
                    Kind::Tones => None,
                };
                send_digits(&mut rig, digits, send_pt, 8);
                rig.advance(rig.at(5000));
                let ctx = format!(
                    "transcoded={transcoded} caller=({c_te:?},{c_mode:?},{kind:?}) callee=({r_te:?},{r_mode:?})"
                );
                let events = rig.events();
                let got = received(&events);
                let info = r_mode == DtmfMode::Info;
                let dst = callee_route(r_te, r_mode);
                if matches!((kind, &dst), (Kind::Tones, Dst::Tones)) && !transcoded {
                    // Tones relayed untouched toward a tone party: nothing decodes them (a
                    // G.711 relay is not decoded just to report), so nothing is raised.
                    assert!(got.is_empty(), "{ctx}");
                    assert_eq!(heard(&rig.to_callee, out_pt), digits, "{ctx}");
                    assert!(rig.to_callee.iter().all(|o| o.data.len() == 172));
                    continue;
                }
                assert_eq!(
                    got.iter().map(|g| g.0).collect::<String>(),
                    digits,
                    "each digit raised once: {ctx}"
                );
                assert!(
                    got.iter().all(|g| g.2 == info.then_some(Side::Callee)
                        && g.1 == matches!(kind, Kind::Tones)),
                    "{ctx}: {got:?}"
                );
                match dst {
                    Dst::Events(pt) => {
                        let ev = events_out(&rig.to_callee, pt);
                        let d: String = ev.iter().map(|e| e.0).collect();
                        assert_eq!(d, digits, "{ctx}");
                        assert!(
                            ev.iter().all(|e| e.2 == 3),
                            "three end packets: {ctx} {ev:?}"
                        );
                        assert!(
                            ev.iter().all(|e| (700..=1300).contains(&e.1)),
                            "durations near 120 ms: {ctx} {ev:?}"
                        );
                        assert_eq!(heard(&rig.to_callee, out_pt), "", "no tone too: {ctx}");
                    }
                    Dst::Tones => {
                        assert_eq!(heard(&rig.to_callee, out_pt), digits, "{ctx}");
                        assert!(
                            rig.to_callee.iter().all(|o| o.hdr().payload_type == out_pt),
                            "only audio toward an in-band party: {ctx}"
                        );
                    }
                    Dst::Info => {
                        assert_eq!(heard(&rig.to_callee, out_pt), "", "{ctx}");
                        assert!(
                            rig.to_callee.iter().all(|o| o.hdr().payload_type == out_pt),
                            "no events toward an INFO party: {ctx}"
                        );
                    }
                }
                assert_one_continuous_stream(&rig.to_callee);
            }
        }
    }
}

enum Dst {
    Events(u8),
    Tones,
    Info,
}

fn callee_route(te: Option<u8>, mode: DtmfMode) -> Dst {
    match (mode, te) {
        (DtmfMode::Info, _) => Dst::Info,
        (DtmfMode::Inband, _) | (DtmfMode::Auto, None) => Dst::Tones,
        (_, Some(pt)) => Dst::Events(pt),
        (DtmfMode::Rfc2833, None) => Dst::Events(101),
    }
}

#[test]
fn a_party_sending_audio_and_events_at_once_is_heard_once() {
    // Relayed (the overlay), and transcoded: there the tone sounds on the playout clock while
    // the sender's audio (with the leaked tone) comes out of the jitter buffer a delay later.
    for (id, transcoded) in [(2, false), (22, true)] {
        audio_and_events_at_once(id, transcoded);
    }
}

fn audio_and_events_at_once(id: u64, transcoded: bool) {
    let out_pt = if transcoded { 0 } else { 8 };
    let caller = party(pcma(), Some(101), DtmfMode::Auto);
    let callee = party(
        if transcoded { pcmu() } else { pcma() },
        None,
        DtmfMode::Auto,
    );
    let mut rig = Rig::new(session_for(&caller, &callee, id));
    // Audio keeps flowing (with the tone leaked into it, as some phones do) while events run.
    let mut g = DtmfGenerator::new('9', -10.0, 960).unwrap();
    let mut seq = 1u16;
    for i in 0..30u32 {
        let ts = 8000 + i * 160;
        let mut pcm = [0i16; 160];
        if (10..16).contains(&i) {
            g.fill(&mut pcm);
        }
        rig.feed(rig.at(20 * u64::from(i)), &audio_packet(seq, ts, 8, &pcm));
        seq += 1;
        if (10..16).contains(&i) {
            let dur = (i - 9) as u16 * 160;
            let end = i == 15;
            for _ in 0..if end { 3 } else { 1 } {
                rig.feed(
                    rig.at(20 * u64::from(i)),
                    &event_packet(seq, 8000 + 1600, 101, 9, end, dur),
                );
            }
            seq += 1;
        }
    }
    rig.advance(rig.at(1000));
    assert_eq!(
        heard(&rig.to_callee, out_pt),
        "9",
        "transcoded={transcoded}"
    );
    assert_one_continuous_stream(&rig.to_callee);
    assert_eq!(rig.s.is_transcoding(), transcoded);
}

#[test]
fn events_keep_no_copy_when_nothing_converts_and_payload_types_translate() {
    // Same telephone-event payload type: the relay forwards the sender's bytes.
    let a = party(pcma(), Some(101), DtmfMode::Auto);
    let mut s = session_for(&a, &a, 3);
    let v = s.handle_packet(
        Instant::now(),
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut event_packet(1, 80, 101, 1, false, 160),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    // 96 on the caller's leg, 101 on the callee's: the events are re-typed, nothing else.
    let b = party(pcma(), Some(96), DtmfMode::Auto);
    let mut rig = Rig::new(session_for(&b, &a, 4));
    send_digits(&mut rig, "7", Some(96), 8);
    assert_eq!(events_out(&rig.to_callee, 101).len(), 1);
    assert!(rig.to_callee.iter().all(|o| o.hdr().payload_type != 96));
    assert_one_continuous_stream(&rig.to_callee);
}

#[test]
fn an_info_leg_takes_digits_only_from_the_control_plane() {
    // The caller is an INFO leg that also negotiated telephone-event and sends events: they are
    // neither relayed nor reported (its digits come as SIP INFO through the control plane).
    let caller = party(pcma(), Some(101), DtmfMode::Info);
    let callee = party(pcma(), Some(101), DtmfMode::Auto);
    let mut rig = Rig::new(session_for(&caller, &callee, 5));
    send_digits(&mut rig, "12", Some(101), 8);
    rig.advance(rig.at(5000));
    assert!(received(&rig.events()).is_empty());
    assert!(events_out(&rig.to_callee, 101).is_empty());
    assert_one_continuous_stream(&rig.to_callee);
}

/// Plays `digits` toward the callee while the caller streams silence every 20 ms for `ms`.
fn play_with_stream(rig: &mut Rig, play: &DtmfPlay, audio_pt: u8, ms: u64) {
    let silence = [0i16; 160];
    let start = rig.at(200);
    for i in 0..ms / 20 {
        let t = rig.at(20 * i);
        if t == start {
            rig.advance(t);
            rig.s.play_dtmf(t, Side::Callee, play).unwrap();
            rig.collect();
        }
        let seq = 500 + i as u16;
        let ts = 16000 + i as u32 * 160;
        rig.feed(t, &audio_packet(seq, ts, audio_pt, &silence));
    }
}

fn played(events: &[EventKind]) -> Vec<(char, u32, DtmfVia, u64)> {
    events
        .iter()
        .filter_map(|k| match *k {
            EventKind::DtmfPlayed {
                digit,
                duration_ms,
                via,
                at_ms,
                ..
            } => Some((digit, duration_ms, via, at_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn play_dtmf_as_rfc2833_has_the_legs_payload_type_timestamps_durations_and_end_packets() {
    for transcoded in [false, true] {
        let caller = party(pcma(), Some(101), DtmfMode::Auto);
        let callee = party(
            if transcoded { pcmu() } else { pcma() },
            Some(97),
            DtmfMode::Auto,
        );
        let mut rig = Rig::new(session_for(&caller, &callee, 6));
        let play = DtmfPlay::new("4*", 100, 12, 60).unwrap();
        play_with_stream(&mut rig, &play, 8, 1200);
        let pkts: Vec<RtpHeader> = rig.to_callee.iter().map(Out::hdr).collect();
        let ev: Vec<(RtpHeader, TelephoneEvent)> = rig
            .to_callee
            .iter()
            .filter(|o| o.hdr().payload_type == 97)
            .map(|o| {
                let h = o.hdr();
                (h, TelephoneEvent::parse(h.payload(&o.data)).unwrap())
            })
            .collect();
        assert!(
            pkts.iter().all(|h| h.payload_type != 101),
            "the callee's payload type"
        );
        let firsts: Vec<usize> = (0..ev.len()).filter(|&i| ev[i].0.marker).collect();
        assert_eq!(firsts.len(), 2, "two events, each starting with the marker");
        for (n, &i) in firsts.iter().enumerate() {
            let ts = ev[i].0.timestamp;
            let one: Vec<&(RtpHeader, TelephoneEvent)> =
                ev.iter().filter(|e| e.0.timestamp == ts).collect();
            assert!(one
                .iter()
                .all(|e| e.1.event == [4, 10][n] && e.1.volume == 12));
            let durs: Vec<u16> = one.iter().map(|e| e.1.duration).collect();
            assert!(
                durs.windows(2).all(|w| w[1] >= w[0]),
                "durations grow: {durs:?}"
            );
            assert_eq!(durs[0], 160);
            let ends: Vec<&&(RtpHeader, TelephoneEvent)> = one.iter().filter(|e| e.1.end).collect();
            assert_eq!(ends.len(), 3, "three end packets");
            assert!(ends.iter().all(|e| e.1.duration == 800), "100 ms at 8 kHz");
            // The event's timestamp is where the audio stream toward the callee stands.
            let audio_before = pkts
                .iter()
                .zip(&rig.to_callee)
                .take_while(|(h, _)| !(h.payload_type == 97 && h.timestamp == ts))
                .filter(|(h, _)| h.payload_type != 97)
                .last()
                .map(|(h, _)| h.timestamp)
                .unwrap();
            let gap = ts.wrapping_sub(audio_before);
            assert!(
                (0..=480).contains(&gap),
                "event ts {ts} vs audio {audio_before}"
            );
        }
        // The second digit starts after the first's 100 ms and the 60 ms pause.
        let t0 = ev[firsts[0]].0.timestamp;
        let t1 = ev[firsts[1]].0.timestamp;
        let apart = t1.wrapping_sub(t0);
        assert!((160 * 8 - 160..=160 * 8 + 320).contains(&apart), "{apart}");
        let p = played(&rig.events());
        assert_eq!(
            p.iter().map(|x| (x.0, x.1, x.2)).collect::<Vec<_>>(),
            vec![('4', 100, DtmfVia::Rfc2833), ('*', 100, DtmfVia::Rfc2833)]
        );
        assert!(p[0].3 >= 200 && p[1].3 >= p[0].3 + 160, "{p:?}");
        assert_one_continuous_stream(&rig.to_callee);
        assert!(rig.s.dtmf_pending(Side::Callee) == 0);
    }
}

#[test]
fn play_dtmf_without_a_negotiated_event_type_uses_101_on_an_rfc2833_leg() {
    let caller = party(pcma(), None, DtmfMode::Auto);
    let callee = party(pcma(), None, DtmfMode::Rfc2833);
    let mut rig = Rig::new(session_for(&caller, &callee, 7));
    play_with_stream(&mut rig, &DtmfPlay::new("0", 80, 10, 40).unwrap(), 8, 600);
    assert_eq!(events_out(&rig.to_callee, 101), vec![('0', 640, 3)]);
}

#[test]
fn play_dtmf_inband_replaces_the_senders_audio_with_tones() {
    for (transcoded, caller_codec) in [(false, pcmu()), (true, pcma())] {
        let caller = party(caller_codec.clone(), None, DtmfMode::Auto);
        let callee = party(pcmu(), None, DtmfMode::Auto);
        let mut rig = Rig::new(session_for(&caller, &callee, 8));
        assert_eq!(rig.s.is_transcoding(), transcoded);
        play_with_stream(
            &mut rig,
            &DtmfPlay::new("389", 80, 8, 80).unwrap(),
            caller_codec.pt,
            1500,
        );
        assert_eq!(heard(&rig.to_callee, 0), "389", "transcoded={transcoded}");
        assert_one_continuous_stream(&rig.to_callee);
        let p = played(&rig.events());
        assert!(p.iter().all(|x| x.2 == DtmfVia::Inband && x.1 == 80));
        // Audio timestamps never run backwards or overlap.
        let audio: Vec<RtpHeader> = rig.to_callee.iter().map(Out::hdr).collect();
        for w in audio.windows(2) {
            let step = w[1].timestamp.wrapping_sub(w[0].timestamp) as i32;
            assert!(
                step >= 160,
                "timestamps {} -> {}",
                w[0].timestamp,
                w[1].timestamp
            );
        }
    }
}

#[test]
fn play_dtmf_toward_an_info_leg_is_an_event_for_the_sip_layer_only() {
    let caller = party(pcma(), Some(101), DtmfMode::Auto);
    let callee = party(pcma(), Some(101), DtmfMode::Info);
    let mut rig = Rig::new(session_for(&caller, &callee, 9));
    play_with_stream(
        &mut rig,
        &DtmfPlay::new("12", 100, 8, 100).unwrap(),
        8,
        1000,
    );
    let p = played(&rig.events());
    assert_eq!(
        p.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>(),
        vec![('1', DtmfVia::Info), ('2', DtmfVia::Info)]
    );
    assert!(p[1].3 >= p[0].3 + 200, "paced like the media digits: {p:?}");
    assert!(rig.to_callee.iter().all(|o| o.hdr().payload_type == 8));
    assert_eq!(heard(&rig.to_callee, 8), "");
}

#[test]
fn play_dtmf_paces_itself_without_any_media() {
    // Nobody sends anything: the session's own timer drives the digits (every 20 ms).
    let caller = party(pcma(), None, DtmfMode::Auto);
    let callee = party(pcma(), Some(101), DtmfMode::Auto);
    let mut rig = Rig::new(session_for(&caller, &callee, 12));
    let t = rig.at(0);
    rig.s
        .play_dtmf(t, Side::Callee, &DtmfPlay::new("5", 100, 8, 100).unwrap())
        .unwrap();
    rig.collect();
    let mut steps = 0;
    while let Some(due) = rig.s.poll_playout() {
        assert!(due <= rig.at(300), "the playout ends");
        rig.advance(due);
        steps += 1;
    }
    assert!(steps >= 5);
    assert_eq!(events_out(&rig.to_callee, 101), vec![('5', 800, 3)]);
}

#[test]
fn play_dtmf_inband_on_a_transcoded_stream_sounds_without_any_media() {
    // A decoded direction whose sender sends nothing: the playout clock runs for the tone.
    let caller = party(pcma(), None, DtmfMode::Auto);
    let callee = party(pcmu(), None, DtmfMode::Auto);
    let mut rig = Rig::new(session_for(&caller, &callee, 14));
    assert!(rig.s.is_transcoding());
    let t = rig.at(0);
    rig.s
        .play_dtmf(t, Side::Callee, &DtmfPlay::new("58", 100, 8, 100).unwrap())
        .unwrap();
    rig.collect();
    while let Some(due) = rig.s.poll_playout() {
        assert!(due <= rig.at(600), "the playout ends");
        rig.advance(due);
    }
    assert_eq!(heard(&rig.to_callee, 0), "58");
    assert_one_continuous_stream(&rig.to_callee);
    let tone = rig.to_callee.len();
    assert!(
        (10..=14).contains(&tone),
        "two 100 ms digits and their pause: {tone}"
    );
}

#[test]
fn play_dtmf_rejects_what_it_cannot_render() {
    let g729 = CodecSpec::new(18, "G729", 8000);
    let caller = party(g729.clone(), None, DtmfMode::Auto);
    let callee = party(g729, None, DtmfMode::Auto);
    let mut s = session_for(&caller, &callee, 13);
    let e = s
        .play_dtmf(
            Instant::now(),
            Side::Callee,
            &DtmfPlay::new("1", 100, 8, 100).unwrap(),
        )
        .unwrap_err();
    assert!(e.contains("G.711"), "{e}");
    assert!(DtmfPlay::new("1x", 100, 8, 100).is_err());
    assert!(DtmfPlay::new("1", 10, 8, 100).is_err());
    assert!(DtmfPlay::new("", 100, 8, 100).is_err());
}

/// In-band → RFC 2833 → in-band through two sessions (two media relays in a row, or one relay
/// hairpinned): the first mutes the tone it converts, the second renders the event once.
#[test]
fn an_inband_rfc2833_inband_chain_never_doubles_a_digit() {
    for transcoded in [false, true] {
        let a = party(pcma(), None, DtmfMode::Auto);
        let mid = party(
            if transcoded { pcmu() } else { pcma() },
            Some(101),
            DtmfMode::Auto,
        );
        let mut first = Rig::new(session_for(&a, &mid, 20));
        send_digits(&mut first, "2580", None, 8);
        let middle_pt = if transcoded { 0 } else { 8 };
        let mut second = Rig::new(session_for(&mid, &party(pcma(), None, DtmfMode::Auto), 21));
        // The first relay's output is the second's input, at the pace it came out.
        let mut ms = 0u64;
        let mut last_seq = None;
        for o in first.to_callee.clone() {
            let h = o.hdr();
            if h.payload_type == middle_pt && last_seq != Some(h.sequence) {
                ms += 20;
            }
            last_seq = Some(h.sequence);
            // The second session sees the first's SSRC as its caller's.
            let t = second.at(ms);
            second.feed(t, &o.data);
        }
        second.advance(second.at(ms + 2000));
        assert_eq!(
            heard(&second.to_callee, 8),
            "2580",
            "transcoded={transcoded}"
        );
        let raised = received(&second.events());
        assert_eq!(raised.iter().map(|r| r.0).collect::<String>(), "2580");
        assert!(
            raised.iter().all(|r| !r.1),
            "taken from events, not from a leaked tone"
        );
    }
}

/// A digit whose end packets are all lost must not turn the rest of the call into a tone (or
/// into silence): the sender's audio comes back 150 ms after the last update.
#[test]
fn a_lost_end_packet_does_not_hold_the_tone_forever() {
    for transcoded in [false, true] {
        let caller = party(pcma(), Some(101), DtmfMode::Auto);
        let callee = party(
            if transcoded { pcmu() } else { pcma() },
            None,
            DtmfMode::Auto,
        );
        let out_pt = if transcoded { 0 } else { 8 };
        let mut rig = Rig::new(session_for(&caller, &callee, 30));
        // A 400 Hz speech-like tone that the callee must hear again after the lost end.
        let speech = |i: u32| -> [i16; 160] {
            std::array::from_fn(|n| {
                let t = f64::from(i * 160 + n as u32) / 8000.0;
                (6000.0 * (2.0 * std::f64::consts::PI * 400.0 * t).sin()) as i16
            })
        };
        let mut seq = 1u16;
        for i in 0..100u32 {
            let ts = 8000 + i * 160;
            rig.feed(
                rig.at(20 * u64::from(i)),
                &audio_packet(seq, ts, 8, &speech(i)),
            );
            seq += 1;
            if (10..14).contains(&i) {
                // Updates of digit 3, then nothing: its end packets were lost.
                let dur = (i - 9) as u16 * 160;
                rig.feed(
                    rig.at(20 * u64::from(i)),
                    &event_packet(seq, 8000 + 1600, 101, 3, false, dur),
                );
                seq += 1;
            }
        }
        let tail: Vec<Out> = rig
            .to_callee
            .iter()
            .filter(|o| o.hdr().payload_type == out_pt)
            .rev()
            .take(25)
            .cloned()
            .collect();
        assert_eq!(
            heard(&rig.to_callee, out_pt),
            "3",
            "transcoded={transcoded}"
        );
        let audio = rig
            .to_callee
            .iter()
            .filter(|o| o.hdr().payload_type == out_pt)
            .count();
        assert!(
            audio >= 85,
            "the stream goes on: {audio} packets, transcoded={transcoded}"
        );
        assert_eq!(
            heard(&tail, out_pt),
            "",
            "no tone at the end: transcoded={transcoded}"
        );
        let energy: f64 = tail
            .iter()
            .flat_map(|o| o.hdr().payload(&o.data).to_vec())
            .map(|b| {
                let x = f64::from(if out_pt == 0 {
                    g711::ulaw_decode(b)
                } else {
                    g711::alaw_decode(b)
                });
                x * x
            })
            .sum::<f64>();
        assert!(
            energy / (25.0 * 160.0) > 1.0e6,
            "the sender is heard again: transcoded={transcoded}"
        );
    }
}

fn info_play(digits: &str) -> DtmfPlay {
    let mut play = DtmfPlay::new(digits, 100, 8, 100).unwrap();
    play.from_info = true;
    play
}

#[test]
fn an_auto_party_is_locked_to_its_first_kind_of_digit() {
    // Reference behaviour 22: RFC 2833 first, the same key's SIP INFO is refused.
    let caller = party(pcma(), Some(101), DtmfMode::Auto);
    let callee = party(pcma(), Some(101), DtmfMode::Auto);
    let mut rig = Rig::new(session_for(&caller, &callee, 40));
    send_digits(&mut rig, "5", Some(101), 8);
    let t = rig.at(2000);
    let err = rig
        .s
        .play_dtmf(t, Side::Callee, &info_play("5"))
        .unwrap_err();
    assert!(err.starts_with(mediacore_engine::DTMF_LOCKED), "{err}");
    assert_eq!(rig.s.dtmf_pending(Side::Callee), 0);
    assert_eq!(events_out(&rig.to_callee, 101).len(), 1);
    assert_eq!(rig.s.dtmf_ignored(Side::Caller), 1);
    let stats = rig.s.stats(t);
    assert_eq!(stats.caller.dtmf_ignored, 1, "reported per party");
    assert_eq!(stats.callee.dtmf_ignored, 0);

    // Reference behaviour 23: SIP INFO first, the party's telephone-events are dropped.
    let mut rig = Rig::new(session_for(&caller, &callee, 41));
    let t = rig.at(0);
    rig.s.play_dtmf(t, Side::Callee, &info_play("5")).unwrap();
    rig.collect();
    while let Some(due) = rig.s.poll_playout() {
        rig.advance(due);
    }
    send_digits(&mut rig, "59", Some(101), 8);
    rig.advance(rig.at(5000));
    let out: Vec<char> = events_out(&rig.to_callee, 101)
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(out, vec!['5'], "the played digit only");
    assert!(
        received(&rig.events()).is_empty(),
        "locked-out events are not digits"
    );
    assert_eq!(rig.s.dtmf_ignored(Side::Caller), 2);
    let stats = rig.s.stats(rig.at(5000));
    assert_eq!(stats.caller.dtmf_ignored, 2, "reported per party");
    assert_eq!(stats.callee.dtmf_ignored, 0);
    rig.s
        .play_dtmf(rig.at(6000), Side::Callee, &info_play("7"))
        .unwrap();

    // An explicit rfc2833 party's SIP INFO is refused; plain play DTMF is not.
    let forced = party(pcma(), Some(101), DtmfMode::Rfc2833);
    let mut rig = Rig::new(session_for(&forced, &callee, 42));
    assert!(rig
        .s
        .play_dtmf(rig.at(0), Side::Callee, &info_play("1"))
        .is_err());
    let plain = DtmfPlay::new("1", 100, 8, 100).unwrap();
    rig.s.play_dtmf(rig.at(0), Side::Callee, &plain).unwrap();
}
