//! The ng command layer against a fake engine: offer/answer/query/delete, the leg specs handed
//! to the engine, re-offers from either party, the reply cache, and every error reply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediacore_engine::{EchoCancelSpec, JitterBufferSpec, JitterMode, LatchPolicy, SessionId};
use mediacore_ng::bencode::{decode, Value};
use mediacore_ng::{DeleteStart, NgProcessor};
use proptest::prelude::*;
use support::FakeControl;

const OFFER: &str = "v=0\r\n\
o=alice 100 1 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/16000\r\n\
a=sendrecv\r\n";

/// OFFER as the callee receives it: our callee-facing ports 30002/30003.
const OFFER_OUT: &str = "v=0\r\n\
o=alice 100 1 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 203.0.113.1\r\n\
t=0 0\r\n\
m=audio 30002 RTP/AVP 8 101\r\n\
a=rtcp:30003 IN IP4 203.0.113.1\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/16000\r\n\
a=sendrecv\r\n";

const ANSWER: &str = "v=0\r\n\
o=bob 200 1 IN IP4 10.0.0.2\r\n\
s=-\r\n\
t=0 0\r\n\
m=audio 5000 RTP/AVP 8\r\n\
c=IN IP4 10.0.0.2\r\n\
a=rtpmap:8 PCMA/8000\r\n";

/// ANSWER as the caller receives it: our caller-facing ports 30000/30001.
const ANSWER_OUT: &str = "v=0\r\n\
o=bob 200 1 IN IP4 10.0.0.2\r\n\
s=-\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8\r\n\
c=IN IP4 203.0.113.1\r\n\
a=rtcp:30001 IN IP4 203.0.113.1\r\n\
a=rtpmap:8 PCMA/8000\r\n";

const UNIX: u64 = 1_700_000_000;

struct Harness {
    fake: Arc<FakeControl>,
    ng: NgProcessor,
    now: Instant,
    next_cookie: u32,
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

fn sock(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

impl Harness {
    fn new() -> Self {
        let fake = Arc::new(FakeControl::new());
        let ng = NgProcessor::new(fake.clone());
        Harness {
            fake,
            ng,
            now: Instant::now(),
            next_cookie: 0,
        }
    }

    fn raw(&mut self, cookie: &str, body: &[u8]) -> Vec<u8> {
        let mut dgram = format!("{cookie} ").into_bytes();
        dgram.extend_from_slice(body);
        self.ng.handle(&dgram, self.now, UNIX).expect("a reply")
    }

    /// Sends `dict` under a fresh cookie and returns the decoded reply dictionary.
    fn send(&mut self, dict: Value) -> Value {
        self.next_cookie += 1;
        let cookie = format!("c{}", self.next_cookie);
        let reply = self.raw(&cookie, &dict.to_bytes());
        let body = reply
            .strip_prefix(format!("{cookie} ").as_bytes())
            .expect("cookie echoed");
        decode(body).expect("reply is bencode")
    }

    fn offer(&mut self, call_id: &str, from_tag: &str, sdp: &str) -> Value {
        self.send(
            Value::dict()
                .with("command", "offer")
                .with("call-id", call_id)
                .with("from-tag", from_tag)
                .with("sdp", sdp),
        )
    }

    fn answer(&mut self, call_id: &str, from_tag: &str, to_tag: &str, sdp: &str) -> Value {
        self.send(
            Value::dict()
                .with("command", "answer")
                .with("call-id", call_id)
                .with("from-tag", from_tag)
                .with("to-tag", to_tag)
                .with("sdp", sdp),
        )
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.dict_get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key} in {v:?}"))
}

fn int(v: &Value, path: &[&str]) -> i64 {
    let mut cur = v;
    for k in path {
        cur = cur
            .dict_get(k)
            .unwrap_or_else(|| panic!("no {k} in {cur:?}"));
    }
    cur.as_int().unwrap()
}

fn assert_error(reply: &Value, reason: &str) {
    assert_eq!(text(reply, "result"), "error", "{reply:?}");
    assert_eq!(text(reply, "error-reason"), reason);
}

fn assert_error_prefix(reply: &Value, prefix: &str) {
    assert_eq!(text(reply, "result"), "error", "{reply:?}");
    let reason = text(reply, "error-reason");
    assert!(
        reason.starts_with(prefix),
        "{reason:?} does not start with {prefix:?}"
    );
}

#[test]
fn ping_pongs() {
    let mut h = Harness::new();
    let reply = h.raw("abc", b"d7:command4:pinge");
    assert_eq!(reply, b"abc d6:result4:ponge".to_vec());
}

#[test]
fn offer_answer_query_delete() {
    let mut h = Harness::new();
    let reply = h.offer("call-1", "tag-a", OFFER);
    assert_eq!(text(&reply, "result"), "ok");
    assert_eq!(text(&reply, "sdp"), OFFER_OUT);

    let created = h.fake.with(|s| s.creates.clone());
    assert_eq!(created.len(), 1);
    let spec = &created[0];
    assert_eq!(spec.caller.remote_rtp, Some(sock("10.0.0.1:4000")));
    assert_eq!(spec.caller.remote_rtcp, Some(sock("10.0.0.1:4001")));
    assert!(!spec.caller.hold);
    assert_eq!(spec.caller.clock_rates, vec![(8, 8000), (101, 16000)]);
    assert_eq!(spec.caller.latch, LatchPolicy::Learn);
    assert_eq!((spec.caller.dscp, spec.callee.dscp), (46, 46));
    assert_eq!(spec.callee.remote_rtp, None);
    assert_eq!(spec.callee.remote_rtcp, None);

    let reply = h.answer("call-1", "tag-a", "tag-b", ANSWER);
    assert_eq!(text(&reply, "result"), "ok");
    assert_eq!(text(&reply, "sdp"), ANSWER_OUT);
    let updates = h.fake.with(|s| s.updates.clone());
    assert_eq!(updates.len(), 1);
    let (id, spec) = &updates[0];
    assert_eq!(*id, SessionId(1));
    assert_eq!(spec.callee.remote_rtp, Some(sock("10.0.0.2:5000")));
    assert_eq!(spec.callee.remote_rtcp, Some(sock("10.0.0.2:5001")));
    assert_eq!(spec.callee.clock_rates, vec![(8, 8000)]);
    assert_eq!(spec.caller, created[0].caller, "the caller leg is kept");

    let q = h.send(
        Value::dict()
            .with("command", "query")
            .with("call-id", "call-1"),
    );
    assert_eq!(text(&q, "result"), "ok");
    assert_eq!(int(&q, &["created"]), UNIX as i64);
    assert_eq!(int(&q, &["last signal"]), UNIX as i64);
    let tags = q.dict_get("tags").unwrap();
    let a = tags.dict_get("tag-a").unwrap();
    assert_eq!(text(a, "tag"), "tag-a");
    assert_eq!(text(a, "in dialogue with"), "tag-b");
    let media = &a.dict_get("medias").unwrap().as_list().unwrap()[0];
    assert_eq!(int(media, &["index"]), 1);
    assert_eq!(text(media, "type"), "audio");
    assert_eq!(text(media, "protocol"), "RTP/AVP");
    let streams = media.dict_get("streams").unwrap().as_list().unwrap();
    assert_eq!(streams.len(), 2);
    let rtp = &streams[0];
    assert_eq!(int(rtp, &["local port"]), 30000);
    assert_eq!(
        text(rtp.dict_get("endpoint").unwrap(), "address"),
        "10.0.0.1"
    );
    assert_eq!(text(rtp.dict_get("endpoint").unwrap(), "family"), "IPv4");
    assert_eq!(int(rtp, &["endpoint", "port"]), 4000);
    assert_eq!(int(rtp, &["advertised endpoint", "port"]), 4000);
    assert_eq!(int(rtp, &["stats", "packets"]), 10);
    assert_eq!(int(rtp, &["stats", "bytes"]), 1720);
    assert_eq!(int(rtp, &["stats", "errors"]), 1);
    assert_eq!(int(rtp, &["last packet"]), UNIX as i64 - 2);
    assert_eq!(int(rtp, &["mediacore", "lost"]), 1);
    assert_eq!(int(rtp, &["mediacore", "jitter_us"]), 1500);
    assert_eq!(int(rtp, &["mediacore", "ssrc"]), 0x1234_5678);
    assert_eq!(int(rtp, &["mediacore", "dscp"]), 46);
    assert_eq!(int(rtp, &["mediacore", "dtmf_ignored"]), 0);
    assert_eq!(int(rtp, &["mediacore", "sent", "rtp_packets"]), 3);
    assert_eq!(int(rtp, &["mediacore", "dropped", "malformed_rtp"]), 1);
    let jb = &["mediacore", "jitter buffer"];
    assert_eq!(
        text(
            rtp.dict_get("mediacore")
                .unwrap()
                .dict_get("jitter buffer")
                .unwrap(),
            "mode"
        ),
        "adaptive"
    );
    assert_eq!(int(rtp, &[jb[0], jb[1], "current delay ms"]), 23);
    assert_eq!(int(rtp, &[jb[0], jb[1], "target delay ms"]), 20);
    assert_eq!(int(rtp, &[jb[0], jb[1], "late"]), 1);
    assert_eq!(int(rtp, &[jb[0], jb[1], "concealed ms"]), 20);
    assert_eq!(int(rtp, &[jb[0], jb[1], "concealment permille"]), 2);
    assert_eq!(int(rtp, &["mediacore", "echo canceller", "tail ms"]), 64);
    assert_eq!(int(rtp, &["mediacore", "echo canceller", "ERLE dB"]), 31);
    assert_eq!(int(rtp, &["mediacore", "echo canceller", "ERL dB"]), 12);
    assert_eq!(int(rtp, &["mediacore", "echo canceller", "delay ms"]), 5);
    assert_eq!(int(&streams[1], &["local port"]), 30001);
    assert_eq!(int(&streams[1], &["stats", "packets"]), 1);
    let b = tags.dict_get("tag-b").unwrap();
    let b_rtp = &b.dict_get("medias").unwrap().as_list().unwrap()[0]
        .dict_get("streams")
        .unwrap()
        .as_list()
        .unwrap()[0];
    assert_eq!(int(b_rtp, &["local port"]), 30002);
    assert_eq!(int(b_rtp, &["endpoint", "port"]), 5000);
    assert_eq!(int(b_rtp, &["stats", "packets"]), 7);
    let b_core = b_rtp.dict_get("mediacore").unwrap();
    assert!(
        b_core.dict_get("jitter buffer").is_none(),
        "relayed: no buffer"
    );
    assert!(b_core.dict_get("echo canceller").is_none());
    assert_eq!(int(b_rtp, &["mediacore", "dtmf_ignored"]), 3);
    assert_eq!(int(&q, &["totals", "RTP", "packets"]), 17);
    assert_eq!(int(&q, &["totals", "RTP", "errors"]), 2);
    assert_eq!(int(&q, &["totals", "RTCP", "packets"]), 2);

    let l = h.send(Value::dict().with("command", "list"));
    assert_eq!(l.dict_get("calls"), Some(&list(&["call-1"])));

    let d = h.send(
        Value::dict()
            .with("command", "delete")
            .with("call-id", "call-1")
            .with("from-tag", "tag-a"),
    );
    assert_eq!(text(&d, "result"), "ok");
    assert_eq!(int(&d, &["totals", "RTP", "packets"]), 17);
    assert_eq!(int(&d, &["created"]), UNIX as i64);
    assert_eq!(h.ng.call_count(), 0);
    assert_eq!(h.fake.live_count(), 0);
    let q = h.send(
        Value::dict()
            .with("command", "query")
            .with("call-id", "call-1"),
    );
    assert_error(&q, "Unknown call-ID");
}

#[test]
fn delete_by_callee_tag_deletes_the_whole_call() {
    let mut h = Harness::new();
    h.offer("c", "a", OFFER);
    h.answer("c", "a", "b", ANSWER);
    let d = h.send(
        Value::dict()
            .with("command", "delete")
            .with("call-id", "c")
            .with("from-tag", "b"),
    );
    assert_eq!(text(&d, "result"), "ok");
    assert_eq!((h.ng.call_count(), h.fake.live_count()), (0, 0));
}

fn offer_with(h: &mut Harness, extra: &[(&str, Value)]) -> mediacore_engine::SessionSpec {
    let mut dict = Value::dict()
        .with("command", "offer")
        .with("call-id", "flags")
        .with("from-tag", "a")
        .with("sdp", OFFER);
    for (k, v) in extra {
        dict.insert(k, v.clone());
    }
    let reply = h.send(dict);
    assert_eq!(text(&reply, "result"), "ok", "{reply:?}");
    h.fake.with(|s| s.creates.last().cloned().unwrap())
}

/// Extra request keys, expected latch policy of the caller leg, expected DSCP of both legs.
type FlagCase<'a> = (Vec<(&'a str, Value)>, LatchPolicy, u8);

#[test]
fn flags_choose_latch_policy_and_dscp() {
    let cases: Vec<FlagCase<'_>> = vec![
        (
            vec![("flags", list(&["asymmetric"]))],
            LatchPolicy::Strict,
            46,
        ),
        (
            vec![("flags", list(&["strict-source"]))],
            LatchPolicy::Strict,
            46,
        ),
        (
            vec![("flags", list(&["symmetric", "some-future-flag"]))],
            LatchPolicy::Learn,
            46,
        ),
        (vec![("TOS", Value::Int(184))], LatchPolicy::Learn, 46),
        (vec![("TOS", Value::Int(0x68))], LatchPolicy::Learn, 26),
        (vec![("DSCP", Value::Int(10))], LatchPolicy::Learn, 10),
    ];
    for (extra, latch, dscp) in cases {
        let mut h = Harness::new();
        let spec = offer_with(&mut h, &extra);
        assert_eq!(spec.caller.latch, latch, "{extra:?}");
        assert_eq!(
            (spec.caller.dscp, spec.callee.dscp),
            (dscp, dscp),
            "{extra:?}"
        );
    }
}

/// `comfort-noise` (our key for SS_COMFORTNOISE) sets both legs; absent keeps the setting.
#[test]
fn comfort_noise_key_sets_both_legs_and_absent_keeps_it() {
    let mut h = Harness::new();
    let spec = offer_with(&mut h, &[]);
    assert!(!spec.caller.comfort_noise && !spec.callee.comfort_noise);
    let mut h = Harness::new();
    let spec = offer_with(&mut h, &[("comfort-noise", s("on"))]);
    assert!(spec.caller.comfort_noise && spec.callee.comfort_noise);
    // The answer without the key keeps it; a re-offer with "off" turns it off.
    let answered = h.send(
        Value::dict()
            .with("command", "answer")
            .with("call-id", "flags")
            .with("from-tag", "a")
            .with("to-tag", "b")
            .with("sdp", ANSWER),
    );
    assert_eq!(text(&answered, "result"), "ok", "{answered:?}");
    let (_, spec) = h.fake.with(|s| s.updates.last().cloned().unwrap());
    assert!(spec.caller.comfort_noise && spec.callee.comfort_noise);
    let reoffer = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "flags")
            .with("from-tag", "a")
            .with("to-tag", "b")
            .with("sdp", OFFER)
            .with("comfort-noise", Value::Int(0)),
    );
    assert_eq!(text(&reoffer, "result"), "ok", "{reoffer:?}");
    let (_, spec) = h.fake.with(|s| s.updates.last().cloned().unwrap());
    assert!(!spec.caller.comfort_noise && !spec.callee.comfort_noise);
    let bad = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "flags2")
            .with("from-tag", "a")
            .with("sdp", OFFER)
            .with("comfort-noise", "maybe"),
    );
    assert_error(&bad, "Invalid comfort-noise value maybe (on or off)");
    assert_eq!(h.ng.call_count(), 1, "the bad offer left nothing behind");
}

#[test]
fn voice_gain_sets_both_legs_and_stays_until_changed() {
    // Our `voice-gain` key (VOS3000 SS_VOICEGAIN): dB toward both parties.
    let mut h = Harness::new();
    let spec = offer_with(&mut h, &[]);
    assert_eq!((spec.caller.gain_db, spec.callee.gain_db), (0, 0));
    let mut h = Harness::new();
    let spec = offer_with(&mut h, &[("voice-gain", Value::Int(6))]);
    assert_eq!((spec.caller.gain_db, spec.callee.gain_db), (6, 6));
    // An answer without the key keeps it; the report shows it.
    let reply = h.answer("flags", "a", "b", ANSWER);
    assert_eq!(text(&reply, "result"), "ok", "{reply:?}");
    let (_, spec) = h.fake.with(|s| s.updates.last().cloned().unwrap());
    assert_eq!((spec.caller.gain_db, spec.callee.gain_db), (6, 6));
    let q = h.send(
        Value::dict()
            .with("command", "query")
            .with("call-id", "flags"),
    );
    let tags = q.dict_get("tags").unwrap();
    let media = &tags
        .dict_get("a")
        .unwrap()
        .dict_get("medias")
        .unwrap()
        .as_list()
        .unwrap()[0];
    let rtp = &media.dict_get("streams").unwrap().as_list().unwrap()[0];
    assert_eq!(int(rtp, &["mediacore", "gain_db"]), 6);
    // A re-offer with another value changes both legs.
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "flags")
            .with("from-tag", "a")
            .with("to-tag", "b")
            .with("sdp", OFFER)
            .with("voice-gain", "-10"),
    );
    assert_eq!(text(&reply, "result"), "ok", "{reply:?}");
    let (_, spec) = h.fake.with(|s| s.updates.last().cloned().unwrap());
    assert_eq!((spec.caller.gain_db, spec.callee.gain_db), (-10, -10));
    // Out of range: an error, nothing created.
    let mut h = Harness::new();
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "c")
            .with("from-tag", "a")
            .with("sdp", OFFER)
            .with("voice-gain", 11i64),
    );
    assert_error(
        &reply,
        "Invalid voice-gain value 11 (expected an integer from -10 to 10 dB)",
    );
    assert!(h.fake.with(|s| s.creates.is_empty()));
}

#[test]
fn jitter_buffer_and_echo_canceller_keys_set_the_offerers_leg() {
    let mut h = Harness::new();
    let spec = offer_with(&mut h, &[]);
    assert_eq!(spec.caller.jitter_buffer, JitterBufferSpec::default());
    assert_eq!(spec.caller.echo_cancel, EchoCancelSpec::default());
    let mut h = Harness::new();
    let spec = offer_with(
        &mut h,
        &[
            ("flags", list(&["jitter-buffer", "no-echo-cancel"])),
            ("jitter-buffer-mode", s("fixed")),
            ("jitter-buffer-min", Value::Int(40)),
            ("jitter-buffer-max", Value::Int(300)),
            ("jitter-buffer-default", s("100")),
            ("echo-cancel-tail", Value::Int(128)),
        ],
    );
    let jb = spec.caller.jitter_buffer;
    assert_eq!(
        (jb.mode, jb.min_ms, jb.max_ms, jb.default_ms, jb.relay),
        (JitterMode::Fixed, 40, 300, 100, true)
    );
    assert_eq!(
        spec.caller.echo_cancel,
        EchoCancelSpec {
            enabled: false,
            tail_ms: 128
        }
    );
    assert_eq!(spec.callee.jitter_buffer, JitterBufferSpec::default());
    let mut h = Harness::new();
    let spec = offer_with(&mut h, &[("jitter-buffer-mode", Value::Int(0))]);
    assert_eq!(spec.caller.jitter_buffer.mode, JitterMode::Fixed);
    for bad in [
        ("jitter-buffer-mode", s("elastic")),
        ("jitter-buffer-min", Value::Int(-5)),
    ] {
        let mut h = Harness::new();
        let reply = h.send(
            Value::dict()
                .with("command", "offer")
                .with("call-id", "bad")
                .with("from-tag", "a")
                .with("sdp", OFFER)
                .with(bad.0, bad.1.clone()),
        );
        assert_error(&reply, &format!("Invalid value for {}", bad.0));
    }
}

#[test]
fn sip_source_address_replaces_the_sdp_address() {
    let mut h = Harness::new();
    let from = ("received-from", list(&["IP4", "198.51.100.7"]));
    let spec = offer_with(
        &mut h,
        &[("flags", list(&["SIP-source-address"])), from.clone()],
    );
    assert_eq!(spec.caller.remote_rtp, Some(sock("198.51.100.7:4000")));
    assert_eq!(spec.caller.remote_rtcp, Some(sock("198.51.100.7:4001")));
    let mut h = Harness::new();
    let spec = offer_with(&mut h, &[from]);
    assert_eq!(
        spec.caller.remote_rtp,
        Some(sock("10.0.0.1:4000")),
        "without the flag the SDP is trusted"
    );
}

#[test]
fn replace_origin() {
    let mut h = Harness::new();
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "o")
            .with("from-tag", "a")
            .with("sdp", OFFER)
            .with("replace", list(&["origin", "session-connection"])),
    );
    assert!(text(&reply, "sdp").contains("o=alice 100 1 IN IP4 203.0.113.1\r\n"));
}

#[test]
fn hold_is_detected() {
    let mut h = Harness::new();
    h.offer("h1", "a", &OFFER.replace("a=sendrecv", "a=sendonly"));
    let spec = h.fake.with(|s| s.creates[0].clone());
    assert!(spec.caller.hold);
    assert_eq!(spec.caller.remote_rtp, Some(sock("10.0.0.1:4000")));

    let reply = h.offer(
        "h2",
        "a",
        &OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0"),
    );
    let spec = h.fake.with(|s| s.creates[1].clone());
    assert!(spec.caller.hold);
    assert_eq!(spec.caller.remote_rtp, None);
    assert!(
        text(&reply, "sdp").contains("c=IN IP4 0.0.0.0\r\n"),
        "old-style hold is passed on"
    );
}

#[test]
fn reoffer_from_the_caller_updates_the_caller_leg() {
    let mut h = Harness::new();
    h.offer("c", "a", OFFER);
    h.answer("c", "a", "b", ANSWER);
    let moved = OFFER
        .replace("c=IN IP4 10.0.0.1", "c=IN IP4 10.0.0.9")
        .replace("a=sendrecv", "a=sendonly");
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "c")
            .with("from-tag", "a")
            .with("to-tag", "b")
            .with("sdp", moved.as_str()),
    );
    let expected = OFFER_OUT.replace("a=sendrecv", "a=sendonly");
    assert_eq!(text(&reply, "sdp"), expected);
    let (id, spec) = h.fake.with(|s| s.updates.last().cloned().unwrap());
    assert_eq!(id, SessionId(1));
    assert_eq!(spec.caller.remote_rtp, Some(sock("10.0.0.9:4000")));
    assert!(spec.caller.hold);
    assert_eq!(
        spec.callee.remote_rtp,
        Some(sock("10.0.0.2:5000")),
        "callee leg kept"
    );
    assert_eq!(h.fake.create_count(), 1);
}

#[test]
fn reoffer_from_the_callee_updates_the_callee_leg() {
    let mut h = Harness::new();
    h.offer("c", "a", OFFER);
    h.answer("c", "a", "b", ANSWER);
    let reoffer = ANSWER.replace("c=IN IP4 10.0.0.2", "c=IN IP4 10.0.0.3");
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "c")
            .with("from-tag", "b")
            .with("to-tag", "a")
            .with("sdp", reoffer.as_str()),
    );
    // Goes to the caller: our caller-facing ports.
    assert_eq!(text(&reply, "sdp"), ANSWER_OUT);
    let (_, spec) = h.fake.with(|s| s.updates.last().cloned().unwrap());
    assert_eq!(spec.callee.remote_rtp, Some(sock("10.0.0.3:5000")));
    assert_eq!(
        spec.caller.remote_rtp,
        Some(sock("10.0.0.1:4000")),
        "caller leg kept"
    );

    // The caller answers the callee's re-offer: from-tag b, to-tag a; goes to the callee.
    let answer = OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 10.0.0.8");
    let reply = h.answer("c", "b", "a", &answer);
    assert_eq!(text(&reply, "sdp"), OFFER_OUT);
    let (_, spec) = h.fake.with(|s| s.updates.last().cloned().unwrap());
    assert_eq!(spec.caller.remote_rtp, Some(sock("10.0.0.8:4000")));
    assert_eq!(spec.callee.remote_rtp, Some(sock("10.0.0.3:5000")));
}

const VIDEO: &str = "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
/// VIDEO accepted in an answer after ANSWER (whose connection line is per media).
const VIDEO_ANSWER: &str =
    "m=video 5002 RTP/AVP 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 H264/90000\r\n";

#[test]
fn reoffer_adding_and_disabling_streams() {
    let mut h = Harness::new();
    h.offer("c", "a", OFFER);
    let reply = h.offer("c", "a", &format!("{OFFER}{VIDEO}"));
    assert_eq!(h.fake.create_count(), 2);
    let sdp = text(&reply, "sdp");
    assert!(sdp.contains("m=audio 30002 "), "{sdp}");
    assert!(
        sdp.contains("m=video 30006 RTP/AVP 96\r\na=rtcp:30007 IN IP4 203.0.113.1\r\n"),
        "{sdp}"
    );
    let spec = h.fake.with(|s| s.creates[1].clone());
    assert_eq!(spec.caller.remote_rtp, Some(sock("10.0.0.1:4002")));
    assert_eq!(spec.caller.clock_rates, vec![(96, 90000)]);

    // Video disabled again: its session goes, port 0 stays.
    let reply = h.offer("c", "a", &format!("{OFFER}{}", VIDEO.replace("4002", "0")));
    assert!(text(&reply, "sdp").contains("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"));
    assert_eq!(h.fake.live_count(), 1);
}

#[test]
fn a_disabled_section_before_enabled_ones_keeps_every_index_in_place() {
    // audio, a second audio disabled (port 0), video: the video is section 2 in the answer too
    let mut h = Harness::new();
    let second = "m=audio 0 RTP/AVP 0\r\n";
    let reply = h.offer("c", "a", &format!("{OFFER}{second}{VIDEO}"));
    assert_eq!(h.fake.create_count(), 2);
    let sdp = text(&reply, "sdp");
    assert!(sdp.contains("m=audio 0 RTP/AVP 0\r\n"), "{sdp}");
    let answer = format!("{ANSWER}{second}m=video 5002 RTP/AVP 96\r\nc=IN IP4 10.0.0.2\r\n");
    let reply = h.answer("c", "a", "b", &answer);
    assert_eq!(text(&reply, "result"), "ok", "{reply:?}");
    let sdp = text(&reply, "sdp");
    assert!(
        sdp.contains("m=audio 0 RTP/AVP 0\r\n") && sdp.contains("m=video 3"),
        "{sdp}"
    );
    let video = h.fake.with(|s| s.creates[1].clone());
    assert_eq!(video.caller.clock_rates, vec![(96, 90000)]);
}

#[test]
fn rejected_stream_gets_no_session() {
    let mut h = Harness::new();
    let reply = h.offer("c", "a", &format!("{OFFER}{}", VIDEO.replace("4002", "0")));
    assert_eq!(h.fake.create_count(), 1);
    assert!(text(&reply, "sdp").ends_with("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"));
    // The callee rejects audio in its answer: that session is released too.
    let answer = format!(
        "{}{}",
        ANSWER.replace("m=audio 5000", "m=audio 0"),
        VIDEO.replace("4002", "0")
    );
    let reply = h.answer("c", "a", "b", &answer);
    assert_eq!(text(&reply, "result"), "ok");
    assert!(text(&reply, "sdp").contains("m=audio 0 RTP/AVP 8\r\n"));
    assert_eq!(h.fake.live_count(), 0);
}

#[test]
fn retransmissions_are_answered_from_the_cache() {
    let mut h = Harness::new();
    let body = Value::dict()
        .with("command", "offer")
        .with("call-id", "c")
        .with("from-tag", "a")
        .with("sdp", OFFER)
        .to_bytes();
    let first = h.raw("k1", &body);
    h.now += Duration::from_secs(29);
    let second = h.raw("k1", &body);
    assert_eq!(first, second);
    assert_eq!(h.fake.create_count(), 1);
    assert!(h.fake.with(|s| s.updates.is_empty()));

    let delete = Value::dict()
        .with("command", "delete")
        .with("call-id", "c")
        .to_bytes();
    let d1 = h.raw("k2", &delete);
    let d2 = h.raw("k2", &delete);
    assert_eq!(
        d1, d2,
        "a retransmitted delete is not answered with Unknown call-ID"
    );

    // After 30 s the cookie is forgotten and the request runs again.
    h.now += Duration::from_secs(31);
    let d3 = h.raw("k2", &delete);
    let reply = decode(d3.strip_prefix(b"k2 ").unwrap()).unwrap();
    assert_error(&reply, "Unknown call-ID");
}

#[test]
fn malformed_requests_get_error_replies() {
    let mut h = Harness::new();
    let not_bencode = h.raw("x1", b"hello");
    assert_eq!(
        not_bencode,
        b"x1 d12:error-reason35:Failed to decode bencode dictionary6:result5:errore".to_vec()
    );
    let cases: Vec<(Value, &str)> = vec![
        (Value::List(vec![]), "Failed to decode bencode dictionary"),
        (Value::dict(), "No command in message"),
        (
            Value::dict().with("command", "frobnicate"),
            "Unrecognized command",
        ),
        (
            Value::dict()
                .with("command", "offer")
                .with("from-tag", "a")
                .with("sdp", OFFER),
            "No call-id in message",
        ),
        (
            Value::dict()
                .with("command", "offer")
                .with("call-id", "c")
                .with("sdp", OFFER),
            "No from-tag in message",
        ),
        (
            Value::dict()
                .with("command", "offer")
                .with("call-id", "c")
                .with("from-tag", "a"),
            "No SDP body in message",
        ),
        (
            Value::dict()
                .with("command", "answer")
                .with("call-id", "nope")
                .with("from-tag", "a")
                .with("sdp", ANSWER),
            "Unknown call-ID",
        ),
        (
            Value::dict()
                .with("command", "delete")
                .with("call-id", "nope"),
            "Unknown call-ID",
        ),
        (
            Value::dict()
                .with("command", "query")
                .with("call-id", "nope"),
            "Unknown call-ID",
        ),
        (
            Value::dict()
                .with("command", "offer")
                .with("call-id", "c")
                .with("from-tag", "a")
                .with("sdp", OFFER)
                .with("DSCP", 99i64),
            "Invalid DSCP value 99",
        ),
    ];
    for (dict, reason) in cases {
        let reply = h.send(dict.clone());
        assert_error(&reply, reason);
    }
    let sdp_errors = [
        (
            "v=0\r\nc=IN IP4 10.0.0.1\r\n",
            "Failed to parse SDP: SDP without media",
        ),
        (
            "INVITE sip:bob@example.com SIP/2.0\r\n",
            "Failed to parse SDP: not SDP",
        ),
        (
            "v=0\r\nm=audio 4000 RTP/AVP 0\r\n",
            "Failed to parse SDP: media section 0 has no connection address",
        ),
        (
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 99999 RTP/AVP 0\r\n",
            "Failed to parse SDP: bad port",
        ),
    ];
    for (sdp, prefix) in sdp_errors {
        assert_error_prefix(&h.offer("c", "a", sdp), prefix);
    }
    assert_eq!(
        (
            h.ng.call_count(),
            h.fake.live_count(),
            h.fake.create_count()
        ),
        (0, 0, 0)
    );

    // Without a cookie there is nobody to reply to.
    assert_eq!(h.ng.handle(b"d7:command4:pinge", h.now, UNIX), None);
    assert_eq!(h.ng.handle(b" d7:command4:pinge", h.now, UNIX), None);
}

#[test]
fn answer_must_match_the_offer() {
    let mut h = Harness::new();
    h.offer("c", "a", OFFER);
    let reply = h.answer(
        "c",
        "a",
        "b",
        &format!("{ANSWER}m=video 5002 RTP/AVP 96\r\nc=IN IP4 10.0.0.2\r\n"),
    );
    assert_error(
        &reply,
        "Failed to parse SDP: answer has 2 media sections, the offer had 1",
    );
    let reply = h.answer("c", "a", "b", "v=0\r\n");
    assert_error_prefix(&reply, "Failed to parse SDP: ");
    assert_eq!(h.fake.live_count(), 1, "the call survives a bad answer");
}

#[test]
fn engine_errors_roll_back_the_offer() {
    let mut h = Harness::new();
    h.fake.with(|s| s.fail_create_after = Some(1));
    let reply = h.offer("c", "a", &format!("{OFFER}{VIDEO}"));
    assert_error(&reply, "no free RTP/RTCP port pair in the configured range");
    assert_eq!(h.fake.create_count(), 1);
    assert_eq!(
        h.fake.live_count(),
        0,
        "the audio session created first was deleted again"
    );
    assert_eq!(h.ng.call_count(), 0);

    // A re-offer that fails keeps the existing call and its session.
    h.fake.with(|s| s.fail_create_after = None);
    h.offer("d", "a", OFFER);
    h.fake.with(|s| s.fail_create_after = Some(2));
    let reply = h.offer("d", "a", &format!("{OFFER}{VIDEO}"));
    assert_error(&reply, "no free RTP/RTCP port pair in the configured range");
    assert_eq!((h.ng.call_count(), h.fake.live_count()), (1, 1));
}

#[test]
fn delete_all_releases_everything() {
    let mut h = Harness::new();
    h.offer("c1", "a", OFFER);
    h.offer("c2", "a", &format!("{OFFER}{VIDEO}"));
    assert_eq!((h.ng.call_count(), h.fake.live_count()), (2, 3));
    h.ng.delete_all();
    assert_eq!((h.ng.call_count(), h.fake.live_count()), (0, 0));
}

fn arb_request() -> impl Strategy<Value = Value> {
    let command = prop_oneof![
        Just("offer"),
        Just("answer"),
        Just("delete"),
        Just("query"),
        Just("list"),
        Just("ping"),
        Just("bogus")
    ];
    let call_id = prop_oneof![Just("c1"), Just("c2"), Just("")];
    let tag = prop_oneof![Just("a"), Just("b"), Just("")];
    let sdp = prop_oneof![
        Just(OFFER.to_string()),
        Just(ANSWER.to_string()),
        Just(format!("{OFFER}{VIDEO}")),
        Just(format!("{OFFER}{}", VIDEO.replace("4002", "0"))),
        "[ -~\r\n]{0,80}".prop_map(|s| format!("v=0\r\n{s}")),
    ];
    let flags = proptest::collection::vec(
        prop_oneof![
            Just("asymmetric"),
            Just("SIP-source-address"),
            Just("x"),
            Just("codec-strip-all"),
            Just("codec-mask=PCMA"),
            Just("codec-transcode-G729"),
            Just("codec-accept-all"),
        ],
        0..3,
    );
    (
        command,
        call_id,
        tag.clone(),
        tag,
        sdp,
        flags,
        proptest::option::of(-5i64..300),
    )
        .prop_map(|(command, call_id, from, to, sdp, flags, tos)| {
            let mut d = Value::dict()
                .with("command", command)
                .with("call-id", call_id)
                .with("from-tag", from)
                .with("to-tag", to)
                .with("sdp", sdp)
                .with(
                    "flags",
                    flags.into_iter().map(Value::str).collect::<Vec<_>>(),
                )
                .with("received-from", list(&["IP4", "192.0.2.77"]));
            if let Some(t) = tos {
                d.insert("TOS", t);
            }
            d
        })
}

proptest! {
    #[test]
    fn random_datagrams_never_panic(dgram in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut h = Harness::new();
        let _ = h.ng.handle(&dgram, h.now, UNIX);
        let mut with_cookie = b"k ".to_vec();
        with_cookie.extend_from_slice(&dgram);
        prop_assert!(h.ng.handle(&with_cookie, h.now, UNIX).is_some());
    }

    #[test]
    fn random_command_sequences_never_leak_sessions(reqs in proptest::collection::vec(arb_request(), 1..12)) {
        let mut h = Harness::new();
        h.fake.with(|s| s.fail_create_after = Some(4));
        for r in reqs {
            let reply = h.send(r);
            prop_assert!(matches!(reply.dict_get("result").and_then(Value::as_str), Some("ok" | "error" | "pong")));
        }
        h.ng.delete_all();
        prop_assert_eq!(h.fake.live_count(), 0);
    }
}

/// A harness with call "c" answered: party "a" offered audio and video, "b" accepted both.
fn audio_and_video_call() -> Harness {
    let mut h = Harness::new();
    h.offer("c", "a", &format!("{OFFER}{VIDEO}"));
    let answered = h.answer("c", "a", "b", &format!("{ANSWER}{VIDEO_ANSWER}"));
    assert_eq!(text(&answered, "result"), "ok", "{answered:?}");
    h
}

/// `delete` of call "c" as party "a" asks.
fn delete_c() -> Value {
    Value::dict()
        .with("command", "delete")
        .with("call-id", "c")
        .with("from-tag", "a")
}

/// `delete_deferred` answers what `delete` answers, once the statistics are in; the call is
/// gone for every later command the moment it returns.
#[test]
fn deferred_delete_replies_as_delete_does() {
    let mut blocking = audio_and_video_call();
    let mut deferred = audio_and_video_call();
    let delete = delete_c();
    let expected = blocking.send(delete.clone());
    assert_eq!(text(&expected, "result"), "ok");

    let started = deferred.ng.delete_deferred(&delete, UNIX);
    assert_eq!(deferred.ng.call_count(), 0, "gone at once");
    assert_eq!(deferred.fake.live_count(), 0);
    let query = deferred.send(Value::dict().with("command", "query").with("call-id", "c"));
    assert_error(&query, "Unknown call-ID");
    let mut pending = match started {
        DeleteStart::Pending(p) => p,
        DeleteStart::Done(v) => panic!("answered at once: {v:?}"),
    };
    assert!(
        pending.is_done(Instant::now()),
        "the fake engine deletes at once"
    );
    assert_eq!(pending.finish(), expected);
}

#[test]
fn deferred_delete_of_an_unknown_call_or_another_command_answers_at_once() {
    let mut h = Harness::new();
    let delete = Value::dict()
        .with("command", "delete")
        .with("call-id", "nope");
    match h.ng.delete_deferred(&delete, UNIX) {
        DeleteStart::Done(reply) => assert_error(&reply, "Unknown call-ID"),
        DeleteStart::Pending(p) => panic!("pending: {p:?}"),
    }
    match h
        .ng
        .delete_deferred(&Value::dict().with("command", "ping"), UNIX)
    {
        DeleteStart::Done(reply) => assert_eq!(text(&reply, "result"), "pong"),
        DeleteStart::Pending(p) => panic!("pending: {p:?}"),
    }
    match h.ng.delete_deferred(&Value::str("not a dictionary"), UNIX) {
        DeleteStart::Done(reply) => assert_eq!(text(&reply, "result"), "error"),
        DeleteStart::Pending(p) => panic!("pending: {p:?}"),
    }
}

/// The keys of a dictionary reply, as text.
fn keys(v: &Value) -> Vec<String> {
    v.as_dict()
        .expect("a dictionary")
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// `brief-stats` (the in-process control plane's flag) cuts a `delete` reply to the counters:
/// the same layout, every counter equal to the full report's, a third of the values; deferred
/// or not, the same reply.
#[test]
fn brief_stats_delete_reports_the_full_reports_counters_only() {
    let mut full = audio_and_video_call();
    let mut brief = audio_and_video_call();
    let mut deferred = audio_and_video_call();
    let delete = delete_c();
    let flagged = delete
        .clone()
        .with("flags", vec![Value::str("brief-stats")]);
    let full = full.send(delete);
    let short = brief.send(flagged.clone());
    assert_eq!(keys(&short), ["result", "tags", "totals"]);
    assert_eq!(short.dict_get("totals"), full.dict_get("totals"));
    let tags = |r: &Value| r.dict_get("tags").cloned().expect("tags");
    let (full_tags, short_tags) = (tags(&full), tags(&short));
    assert_eq!(keys(&full_tags), ["a", "b"]);
    assert_eq!(keys(&short_tags), ["a", "b"]);
    let mut rtp_streams = 0;
    for tag in ["a", "b"] {
        let medias = |t: &Value| {
            t.dict_get(tag)
                .and_then(|p| p.dict_get("medias"))
                .and_then(Value::as_list)
                .expect("medias")
                .to_vec()
        };
        let (fm, sm) = (medias(&full_tags), medias(&short_tags));
        assert_eq!(fm.len(), 2, "audio and video");
        assert_eq!(sm.len(), fm.len());
        for (f, s) in fm.iter().zip(&sm) {
            assert_eq!(keys(s), ["index", "streams", "type"]);
            assert_eq!(s.dict_get("index"), f.dict_get("index"));
            assert_eq!(s.dict_get("type"), f.dict_get("type"));
            let streams = |m: &Value| {
                m.dict_get("streams")
                    .and_then(Value::as_list)
                    .unwrap()
                    .to_vec()
            };
            for (fs, ss) in streams(f).iter().zip(&streams(s)) {
                assert_eq!(ss.dict_get("flags"), fs.dict_get("flags"));
                assert_eq!(ss.dict_get("stats"), fs.dict_get("stats"));
                assert!(ss.dict_get("stats").is_some(), "counters present");
                let Some(quality) = ss.dict_get("mediacore") else {
                    assert!(fs.dict_get("mediacore").is_none());
                    assert_eq!(keys(ss), ["flags", "stats"]);
                    continue;
                };
                rtp_streams += 1;
                let theirs = fs.dict_get("mediacore").expect("full quality");
                // Ignored DTMF digits are reported only when there are some (the fake's
                // callee, tag b, has 3).
                if tag == "b" {
                    assert_eq!(
                        keys(quality),
                        ["dtmf_ignored", "expected", "jitter_us", "lost"]
                    );
                    assert_eq!(int(quality, &["dtmf_ignored"]), 3);
                } else {
                    assert_eq!(keys(quality), ["expected", "jitter_us", "lost"]);
                }
                for k in keys(quality) {
                    let k = k.as_str();
                    assert_eq!(quality.dict_get(k), theirs.dict_get(k), "{tag} {k}");
                }
            }
        }
    }
    assert_eq!(rtp_streams, 4, "an RTP stream per party per media");
    let values = |v: &Value| -> usize {
        fn count(v: &Value) -> usize {
            1 + match v {
                Value::Dict(d) => d.values().map(count).sum(),
                Value::List(l) => l.iter().map(count).sum(),
                _ => 0,
            }
        }
        count(v)
    };
    assert!(
        values(&short) * 3 < values(&full),
        "{} of {}",
        values(&short),
        values(&full)
    );

    match deferred.ng.delete_deferred(&flagged, UNIX) {
        DeleteStart::Pending(p) => assert_eq!(p.finish(), short),
        DeleteStart::Done(v) => panic!("answered at once: {v:?}"),
    }
}

/// A deferred delete's counters (what the in-process control plane takes instead of the reply)
/// are the brief reply's numbers: per party, the RTP packets it sent summed over its media, and
/// the receive quality of its last media.
#[test]
fn a_deferred_deletes_counters_are_the_brief_replys_numbers() {
    let mut brief = audio_and_video_call();
    let mut deferred = audio_and_video_call();
    let flagged = delete_c().with("flags", vec![Value::str("brief-stats")]);
    let reply = brief.send(flagged.clone());
    let counters = match deferred.ng.delete_deferred(&flagged, UNIX) {
        DeleteStart::Pending(p) => p.finish_counters(),
        DeleteStart::Done(v) => panic!("answered at once: {v:?}"),
    };
    let tags: Vec<&[u8]> = counters.iter().map(|p| p.tag.as_slice()).collect();
    assert_eq!(tags, [b"a".as_slice(), b"b".as_slice()], "the caller first");
    for party in &counters {
        let tag = String::from_utf8_lossy(&party.tag).into_owned();
        let medias = reply
            .dict_get("tags")
            .and_then(|t| t.dict_get(&tag))
            .and_then(|p| p.dict_get("medias"))
            .and_then(Value::as_list)
            .expect("medias");
        assert_eq!(medias.len(), 2, "audio and video");
        let rtp: Vec<&Value> = medias
            .iter()
            .map(|m| &m.dict_get("streams").and_then(Value::as_list).unwrap()[0])
            .collect();
        let packets: i64 = rtp.iter().map(|s| int(s, &["stats", "packets"])).sum();
        assert!(packets > 0, "{tag}: the fake's counters");
        assert_eq!(i64::try_from(party.rtp_packets).unwrap(), packets, "{tag}");
        let last = rtp[1];
        assert_ne!(
            int(rtp[0], &["mediacore", "expected"]),
            int(last, &["mediacore", "expected"]),
            "{tag}: the media report apart"
        );
        let (expected, lost, jitter_us) = party.quality.expect("statistics");
        assert_eq!(
            (i64::try_from(expected).unwrap(), lost, jitter_us),
            (
                int(last, &["mediacore", "expected"]),
                int(last, &["mediacore", "lost"]),
                int(last, &["mediacore", "jitter_us"]),
            ),
            "{tag}"
        );
    }
}

/// `direction` (reference behaviour 80: media on the interface of the carrier's network): the
/// first name is the offerer's leg, the second the answerer's; each party's SDP carries the
/// address of the ports it sends to. Without the key both legs are on the default interface.
#[test]
fn direction_puts_each_leg_on_its_interface() {
    let mut h = Harness::new();
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "dir")
            .with("from-tag", "a")
            .with("sdp", OFFER)
            .with("direction", list(&["default", "198.51.100.7"]))
            .with("replace", list(&["origin"])),
    );
    assert_eq!(text(&reply, "result"), "ok", "{reply:?}");
    let spec = h.fake.with(|s| s.creates.last().cloned().unwrap());
    assert_eq!(spec.caller.local_ip, None);
    assert_eq!(spec.callee.local_ip, Some("198.51.100.7".parse().unwrap()));
    let toward_callee = text(&reply, "sdp");
    assert!(
        toward_callee.contains("c=IN IP4 198.51.100.7\r\n"),
        "{toward_callee}"
    );
    assert!(toward_callee.contains("a=rtcp:30003 IN IP4 198.51.100.7\r\n"));
    assert!(toward_callee.contains("o=alice 100 1 IN IP4 198.51.100.7\r\n"));
    assert!(!toward_callee.contains("203.0.113.1"), "{toward_callee}");

    let reply = h.answer("dir", "a", "b", ANSWER);
    assert_eq!(
        text(&reply, "sdp"),
        ANSWER_OUT,
        "the caller's side stays on the default"
    );
    let update = h.fake.with(|s| s.updates.last().cloned().unwrap()).1;
    assert_eq!(
        update.callee.local_ip, spec.callee.local_ip,
        "the leg keeps its interface"
    );

    // the offerer's own leg, named first
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "dir2")
            .with("from-tag", "a")
            .with("sdp", OFFER)
            .with("direction", list(&["198.51.100.9", ""])),
    );
    let second = OFFER_OUT
        .replace("30002", "30006")
        .replace("30003", "30007");
    assert_eq!(
        text(&reply, "sdp"),
        second,
        "the callee's side on the default"
    );
    let spec = h.fake.with(|s| s.creates.last().cloned().unwrap());
    assert_eq!(spec.caller.local_ip, Some("198.51.100.9".parse().unwrap()));
    assert_eq!(spec.callee.local_ip, None);
    let reply = h.answer("dir2", "a", "b", ANSWER);
    assert!(text(&reply, "sdp").contains("c=IN IP4 198.51.100.9\r\n"));
}

#[test]
fn direction_names_that_mean_the_default_and_unknown_names() {
    let mut h = Harness::new();
    for names in [vec!["internal", "external"], vec![""], vec![]] {
        let spec = offer_with(&mut h, &[("direction", list(&names))]);
        assert_eq!((spec.caller.local_ip, spec.callee.local_ip), (None, None));
        h.send(
            Value::dict()
                .with("command", "delete")
                .with("call-id", "flags")
                .with("from-tag", "a"),
        );
    }
    let creates = h.fake.create_count();
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "bad")
            .with("from-tag", "a")
            .with("sdp", OFFER)
            .with("direction", list(&["internal", "carrier-net"])),
    );
    assert_error(&reply, "Unknown interface 'carrier-net' in direction");
    let reply = h.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "bad")
            .with("from-tag", "a")
            .with("sdp", OFFER)
            .with("direction", list(&["a", "b", "c"])),
    );
    assert_error_prefix(&reply, "Invalid direction");
    assert_eq!(h.fake.create_count(), creates, "nothing created");
    assert_eq!(h.ng.call_count(), 0);
}
