//! Codec negotiation through ng: rtpengine's `codec` options and `codec-*` flags, the SDP
//! relayed in both directions, and the codec lists the engine gets per leg (it transcodes when
//! the first audio codecs of the two legs differ).
//!
//! The classic VOS3000 case runs throughout: the customer offers PCMA, the carrier answers
//! G.729 only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use mediacore_engine::spec::{relay_pt_map, CodecSpec};
use mediacore_engine::SessionSpec;
use mediacore_ng::bencode::{decode, Value};
use mediacore_ng::NgProcessor;
use support::FakeControl;

const UNIX: u64 = 1_700_000_000;

/// The customer: PCMA and telephone-event.
const PCMA_OFFER: &str = "v=0\r\n\
o=cust 1 1 IN IP4 10.1.0.1\r\n\
s=-\r\n\
c=IN IP4 10.1.0.1\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// PCMA_OFFER relayed with `transcode: [G729]`: G.729 appended with its static payload type.
const PCMA_OFFER_G729_OUT: &str = "v=0\r\n\
o=cust 1 1 IN IP4 10.1.0.1\r\n\
s=-\r\n\
c=IN IP4 203.0.113.1\r\n\
t=0 0\r\n\
m=audio 30002 RTP/AVP 8 101 18\r\n\
a=rtcp:30003 IN IP4 203.0.113.1\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// PCMA_OFFER relayed without codec options.
const PCMA_OFFER_OUT: &str = "v=0\r\n\
o=cust 1 1 IN IP4 10.1.0.1\r\n\
s=-\r\n\
c=IN IP4 203.0.113.1\r\n\
t=0 0\r\n\
m=audio 30002 RTP/AVP 8 101\r\n\
a=rtcp:30003 IN IP4 203.0.113.1\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// The carrier: G.729 only, with telephone-event.
const G729_ANSWER: &str = "v=0\r\n\
o=carrier 2 1 IN IP4 10.2.0.1\r\n\
s=-\r\n\
c=IN IP4 10.2.0.1\r\n\
t=0 0\r\n\
m=audio 5000 RTP/AVP 18 101\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n";

/// G729_ANSWER as the customer receives it: its own PCMA and telephone-event lines.
const G729_ANSWER_OUT: &str = "v=0\r\n\
o=carrier 2 1 IN IP4 10.2.0.1\r\n\
s=-\r\n\
c=IN IP4 203.0.113.1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 101\r\n\
a=rtcp:30001 IN IP4 203.0.113.1\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n";

/// The carrier accepting PCMA after all.
const PCMA_ANSWER: &str = "v=0\r\n\
o=carrier 2 1 IN IP4 10.2.0.1\r\n\
s=-\r\n\
c=IN IP4 10.2.0.1\r\n\
t=0 0\r\n\
m=audio 5000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n";

const PCMA_ANSWER_OUT: &str = "v=0\r\n\
o=carrier 2 1 IN IP4 10.2.0.1\r\n\
s=-\r\n\
c=IN IP4 203.0.113.1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 101\r\n\
a=rtcp:30001 IN IP4 203.0.113.1\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n";

struct Harness {
    fake: Arc<FakeControl>,
    ng: NgProcessor,
    now: Instant,
    cookie: u32,
}

impl Harness {
    fn new() -> Self {
        let fake = Arc::new(FakeControl::new());
        Harness {
            ng: NgProcessor::new(fake.clone()),
            fake,
            now: Instant::now(),
            cookie: 0,
        }
    }

    fn send(&mut self, dict: Value) -> Value {
        self.cookie += 1;
        let cookie = format!("k{}", self.cookie);
        let mut dgram = format!("{cookie} ").into_bytes();
        dgram.extend_from_slice(&dict.to_bytes());
        let reply = self.ng.handle(&dgram, self.now, UNIX).expect("a reply");
        decode(reply.strip_prefix(format!("{cookie} ").as_bytes()).unwrap()).unwrap()
    }

    /// An offer from tag `a` of call `c` with extra keys.
    fn offer(&mut self, sdp: &str, extra: &[(&str, Value)]) -> Value {
        let mut d = Value::dict()
            .with("command", "offer")
            .with("call-id", "c")
            .with("from-tag", "a")
            .with("sdp", sdp);
        for (k, v) in extra {
            d.insert(k, v.clone());
        }
        self.send(d)
    }

    fn answer(&mut self, sdp: &str, extra: &[(&str, Value)]) -> Value {
        let mut d = Value::dict()
            .with("command", "answer")
            .with("call-id", "c")
            .with("from-tag", "a")
            .with("to-tag", "b")
            .with("sdp", sdp);
        for (k, v) in extra {
            d.insert(k, v.clone());
        }
        self.send(d)
    }

    /// The spec the engine holds now for the only session.
    fn live(&self) -> SessionSpec {
        self.fake.with(|s| {
            assert_eq!(s.live.len(), 1);
            s.live.values().next().cloned().unwrap()
        })
    }
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| Value::str(i)).collect())
}

fn codec(key: &str, items: &[&str]) -> (&'static str, Value) {
    ("codec", Value::dict().with(key, list(items)))
}

fn flags(items: &[&str]) -> (&'static str, Value) {
    ("flags", list(items))
}

fn sdp(reply: &Value) -> &str {
    assert_eq!(
        reply.dict_get("result").and_then(Value::as_str),
        Some("ok"),
        "{reply:?}"
    );
    reply.dict_get("sdp").and_then(Value::as_str).unwrap()
}

fn error(reply: &Value) -> &str {
    assert_eq!(
        reply.dict_get("result").and_then(Value::as_str),
        Some("error"),
        "{reply:?}"
    );
    reply
        .dict_get("error-reason")
        .and_then(Value::as_str)
        .unwrap()
}

/// `(pt, name)` of a codec list.
fn names(codecs: &[CodecSpec]) -> Vec<(u8, &str)> {
    codecs.iter().map(|c| (c.pt, c.name.as_str())).collect()
}

/// The `m=audio` line of a body.
fn m_line(body: &str) -> &str {
    body.lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap()
        .trim_end()
}

fn first_audio(codecs: &[CodecSpec]) -> &CodecSpec {
    codecs.iter().find(|c| !c.is_telephone_event()).unwrap()
}

#[test]
fn pcma_customer_g729_carrier_transcodes() {
    let mut h = Harness::new();
    let reply = h.offer(PCMA_OFFER, &[codec("transcode", &["G729"])]);
    assert_eq!(sdp(&reply), PCMA_OFFER_G729_OUT);
    let created = h.fake.with(|s| s.creates[0].clone());
    assert_eq!(
        names(&created.caller.codecs),
        vec![(8, "PCMA"), (101, "telephone-event")],
        "the caller leg lists what the caller can receive"
    );
    assert!(created.callee.codecs.is_empty(), "unknown until the answer");
    assert_eq!(created.caller.ptime_ms, 20);

    let reply = h.answer(G729_ANSWER, &[]);
    assert_eq!(sdp(&reply), G729_ANSWER_OUT);
    let updates = h.fake.with(|s| s.updates.clone());
    assert_eq!(updates.len(), 1, "one update after the answer");
    let spec = &updates[0].1;
    assert_eq!(
        names(&spec.callee.codecs),
        vec![(18, "G729"), (101, "telephone-event")]
    );
    assert_eq!(spec.callee.codecs[0].fmtp.as_deref(), Some("annexb=no"));
    assert_eq!(spec.callee.codecs[0].clock_rate, 8000);
    assert_eq!(spec.callee.codecs[1].fmtp.as_deref(), Some("0-15"));
    assert_eq!(
        names(&spec.caller.codecs),
        vec![(8, "PCMA"), (101, "telephone-event")]
    );
    assert_eq!(spec.caller.codecs[1].fmtp.as_deref(), Some("0-16"));
    assert!(
        !first_audio(&spec.caller.codecs).same_codec(first_audio(&spec.callee.codecs)),
        "the engine transcodes"
    );
    assert!(!spec.caller.vad && !spec.callee.vad);
    assert_eq!((spec.caller.ptime_ms, spec.callee.ptime_ms), (20, 20));
    assert!(spec.validate().is_ok());
}

#[test]
fn g729_answer_without_telephone_event() {
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[codec("transcode", &["G729"])]);
    let answer = "v=0\r\nc=IN IP4 10.2.0.1\r\nm=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let reply = h.answer(answer, &[]);
    assert_eq!(
        sdp(&reply),
        "v=0\r\nc=IN IP4 203.0.113.1\r\nm=audio 30000 RTP/AVP 8\r\n\
a=rtcp:30001 IN IP4 203.0.113.1\r\na=rtpmap:8 PCMA/8000\r\n"
    );
    let spec = h.live();
    assert_eq!(names(&spec.callee.codecs), vec![(18, "G729")]);
    assert_eq!(
        names(&spec.caller.codecs),
        vec![(8, "PCMA"), (101, "telephone-event")]
    );
}

#[test]
fn matching_codec_relays() {
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[codec("transcode", &["G729"])]);
    let reply = h.answer(PCMA_ANSWER, &[]);
    assert_eq!(sdp(&reply), PCMA_ANSWER_OUT, "passes through as today");
    let spec = h.live();
    assert!(first_audio(&spec.caller.codecs).same_codec(first_audio(&spec.callee.codecs)));
    assert_eq!(first_audio(&spec.callee.codecs).name, "PCMA");

    // The carrier lists our G.729 second: the customer is not shown a codec it never offered.
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[codec("transcode", &["G729"])]);
    let answer = PCMA_ANSWER
        .replace("RTP/AVP 8 101", "RTP/AVP 8 18 101")
        .replace(
            "a=rtpmap:101",
            "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101",
        );
    let reply = h.answer(&answer, &[]);
    assert_eq!(sdp(&reply), PCMA_ANSWER_OUT);
    let spec = h.live();
    assert_eq!(
        names(&spec.callee.codecs),
        vec![(8, "PCMA"), (18, "G729"), (101, "telephone-event")]
    );
    assert_eq!(first_audio(&spec.caller.codecs).name, "PCMA");
}

#[test]
fn without_codec_options_sdp_is_unchanged_and_legs_carry_codecs() {
    let mut h = Harness::new();
    let reply = h.offer(PCMA_OFFER, &[]);
    assert_eq!(sdp(&reply), PCMA_OFFER_OUT);
    let reply = h.answer(PCMA_ANSWER, &[]);
    assert_eq!(sdp(&reply), PCMA_ANSWER_OUT);
    let spec = h.live();
    assert_eq!(
        names(&spec.caller.codecs),
        vec![(8, "PCMA"), (101, "telephone-event")]
    );
    assert_eq!(names(&spec.callee.codecs), names(&spec.caller.codecs));

    // The caller offers PCMU first, the callee picks PCMA: the caller's leg puts PCMA first so
    // the engine relays instead of transcoding.
    let mut h = Harness::new();
    let offer = PCMA_OFFER
        .replace("RTP/AVP 8 101", "RTP/AVP 0 8 101")
        .replace("a=rtpmap:8", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8");
    let reply = h.offer(&offer, &[]);
    assert!(sdp(&reply).contains("m=audio 30002 RTP/AVP 0 8 101\r\n"));
    assert_eq!(
        names(&h.live().caller.codecs),
        vec![(0, "PCMU"), (8, "PCMA"), (101, "telephone-event")]
    );
    h.answer(PCMA_ANSWER, &[]);
    assert_eq!(
        names(&h.live().caller.codecs),
        vec![(8, "PCMA"), (101, "telephone-event"), (0, "PCMU")]
    );

    // A callee answering something never offered is passed through untouched.
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[]);
    let reply = h.answer(G729_ANSWER, &[]);
    assert!(sdp(&reply).contains("m=audio 30000 RTP/AVP 18 101\r\n"));
    assert!(sdp(&reply).contains("a=rtpmap:18 G729/8000\r\n"));
}

#[test]
fn flat_flags_and_case_insensitivity() {
    let forms: Vec<Vec<(&str, Value)>> = vec![
        vec![flags(&["codec-transcode-G729"])],
        vec![flags(&["codec-transcode=G729"])],
        vec![flags(&["CODEC-TRANSCODE-g729"])],
        vec![codec("transcode", &["g729"])],
        vec![codec("transcode", &["G729/8000"])],
        vec![codec("transcode", &["G729/8000/1/8000"])],
        vec![("codec", Value::dict().with("TRANSCODE", Value::str("G729")))],
    ];
    for extra in forms {
        let mut h = Harness::new();
        let reply = h.offer(PCMA_OFFER, &extra);
        assert_eq!(sdp(&reply), PCMA_OFFER_G729_OUT, "{extra:?}");
        assert_eq!(sdp(&h.answer(G729_ANSWER, &[])), G729_ANSWER_OUT);
    }
}

#[test]
fn strip() {
    let offer = "v=0\r\nc=IN IP4 10.1.0.1\r\nm=audio 4000 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";
    for extra in [
        codec("strip", &["PCMU"]),
        flags(&["codec-strip-pcmu"]),
        flags(&["codec-strip=PCMU/8000"]),
    ] {
        let mut h = Harness::new();
        let out = sdp(&h.offer(offer, &[extra])).to_string();
        assert_eq!(m_line(&out), "m=audio 30002 RTP/AVP 8 18 101");
        assert!(!out.contains("PCMU"), "{out}");
        assert_eq!(
            names(&h.live().caller.codecs),
            vec![(8, "PCMA"), (18, "G729"), (101, "telephone-event")],
            "a stripped codec is never sent to the offerer either"
        );
    }

    // strip all keeps telephone-event, which leaves no audio codec: an error, nothing created.
    let mut h = Harness::new();
    let reply = h.offer(offer, &[codec("strip", &["all"])]);
    assert_eq!(error(&reply), "No codecs left after strip");
    assert_eq!((h.ng.call_count(), h.fake.create_count()), (0, 0));

    // strip all + offer: only the listed codec remains, in front of telephone-event.
    let mut h = Harness::new();
    let extra = (
        "codec",
        Value::dict()
            .with("strip", list(&["all"]))
            .with("offer", list(&["G729"])),
    );
    let out = sdp(&h.offer(offer, &[extra])).to_string();
    assert_eq!(m_line(&out), "m=audio 30002 RTP/AVP 18 101");

    // Stripping every codec of the offerer also makes `transcode` impossible.
    let mut h = Harness::new();
    let extra = (
        "codec",
        Value::dict()
            .with("strip", list(&["all"]))
            .with("transcode", list(&["G729"])),
    );
    assert_eq!(
        error(&h.offer(PCMA_OFFER, &[extra])),
        "No codecs left after strip"
    );
}

#[test]
fn mask_hides_a_codec_we_still_transcode_from() {
    let mut h = Harness::new();
    let extra = (
        "codec",
        Value::dict()
            .with("mask", list(&["PCMA"]))
            .with("transcode", list(&["G729"])),
    );
    let out = sdp(&h.offer(PCMA_OFFER, &[extra])).to_string();
    assert_eq!(m_line(&out), "m=audio 30002 RTP/AVP 101 18");
    assert!(!out.contains("PCMA"), "{out}");
    assert_eq!(
        names(&h.live().caller.codecs),
        vec![(8, "PCMA"), (101, "telephone-event")],
        "the caller may still send PCMA"
    );
    assert_eq!(sdp(&h.answer(G729_ANSWER, &[])), G729_ANSWER_OUT);

    // The flag forms, with `all`.
    let mut h = Harness::new();
    let out = sdp(&h.offer(
        PCMA_OFFER,
        &[flags(&["codec-mask-all", "codec-transcode-G729"])],
    ))
    .to_string();
    assert_eq!(m_line(&out), "m=audio 30002 RTP/AVP 101 18");

    // Masking the only codec without transcoding leaves nothing to offer.
    let mut h = Harness::new();
    assert_eq!(
        error(&h.offer(PCMA_OFFER, &[codec("mask", &["all"])])),
        "No codecs left after strip"
    );
}

#[test]
fn unknown_codecs_are_ignored() {
    let mut h = Harness::new();
    let reply = h.offer(
        PCMA_OFFER,
        &[codec("transcode", &["G722", "FOO/8000", "", "G729"])],
    );
    assert_eq!(sdp(&reply), PCMA_OFFER_G729_OUT);

    let mut h = Harness::new();
    let reply = h.offer(
        PCMA_OFFER,
        &[
            codec("transcode", &["FOO"]),
            flags(&["codec-frobnicate-G729"]),
        ],
    );
    assert_eq!(sdp(&reply), PCMA_OFFER_OUT, "nothing to add: unchanged");
}

#[test]
fn opus_takes_a_free_dynamic_payload_type() {
    let offer = "v=0\r\nc=IN IP4 10.1.0.1\r\nm=audio 4000 RTP/AVP 8 96 101\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:96 iLBC/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let mut h = Harness::new();
    let out = sdp(&h.offer(offer, &[codec("transcode", &["opus", "PCMU"])])).to_string();
    assert_eq!(m_line(&out), "m=audio 30002 RTP/AVP 8 96 101 97 0");
    assert!(
        out.contains("a=rtpmap:101 telephone-event/8000\r\na=rtpmap:97 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"),
        "{out}"
    );

    let answer = "v=0\r\nc=IN IP4 10.2.0.1\r\nm=audio 5000 RTP/AVP 97 101\r\n\
a=rtpmap:97 opus/48000/2\r\na=fmtp:97 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\n";
    let reply = h.answer(answer, &[]);
    assert_eq!(
        m_line(sdp(&reply)),
        "m=audio 30000 RTP/AVP 8 101",
        "the caller gets its PCMA back"
    );
    let spec = h.live();
    let opus = &spec.callee.codecs[0];
    assert_eq!(
        (opus.pt, opus.name.as_str(), opus.clock_rate, opus.channels),
        (97, "opus", 48000, 2)
    );
    assert_eq!(opus.fmtp.as_deref(), Some("useinbandfec=1"));
    assert_eq!(first_audio(&spec.caller.codecs).name, "PCMA");
}

#[test]
fn accept_on_the_answer_transcodes_an_unoffered_codec() {
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[]);
    let reply = h.answer(G729_ANSWER, &[codec("accept", &["G729"])]);
    assert_eq!(sdp(&reply), G729_ANSWER_OUT);
    let spec = h.live();
    assert_eq!(first_audio(&spec.callee.codecs).name, "G729");
    assert_eq!(first_audio(&spec.caller.codecs).name, "PCMA");

    // An accept list that does not name the answered codec changes nothing.
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[]);
    let reply = h.answer(G729_ANSWER, &[flags(&["codec-accept-opus"])]);
    assert!(sdp(&reply).contains("RTP/AVP 18 101\r\n"));
}

#[test]
fn offer_moves_codecs_to_the_front() {
    let offer = "v=0\r\nc=IN IP4 10.1.0.1\r\nm=audio 4000 RTP/AVP 0 8 18 101\r\n";
    let mut h = Harness::new();
    let out = sdp(&h.offer(offer, &[codec("offer", &["g729", "opus"])])).to_string();
    assert_eq!(m_line(&out), "m=audio 30002 RTP/AVP 18 0 8 101");
    assert_eq!(
        names(&h.live().caller.codecs),
        vec![(0, "PCMU"), (8, "PCMA"), (18, "G729")],
        "101 has no rtpmap and is not static: not a codec we can name"
    );
}

#[test]
fn ptime_and_g729_annexb() {
    let mut h = Harness::new();
    let offer = PCMA_OFFER.replace("a=ptime:20", "a=ptime:30");
    h.offer(&offer, &[codec("transcode", &["G729"])]);
    assert_eq!(h.live().caller.ptime_ms, 30);
    let answer = G729_ANSWER
        .replace("annexb=no", "annexb=yes")
        .replace("a=ptime:20", "a=ptime:40");
    h.answer(&answer, &[]);
    let spec = h.live();
    assert_eq!((spec.caller.ptime_ms, spec.callee.ptime_ms), (30, 40));
    assert!(spec.callee.vad, "annexb=yes");
    assert!(!spec.caller.vad);

    // No annexb parameter: we do not send SID frames (see docs).
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[codec("transcode", &["G729"])]);
    h.answer(&G729_ANSWER.replace("a=fmtp:18 annexb=no\r\n", ""), &[]);
    let spec = h.live();
    assert!(!spec.callee.vad);
    assert_eq!(spec.callee.ptime_ms, 20);
}

#[test]
fn reinvite_keeps_transcoding() {
    let mut h = Harness::new();
    h.offer(PCMA_OFFER, &[codec("transcode", &["G729"])]);
    h.answer(G729_ANSWER, &[]);
    let reoffer = PCMA_OFFER.replace("a=sendrecv", "a=sendonly");
    let reply = h.offer(
        &reoffer,
        &[codec("transcode", &["G729"]), ("to-tag", Value::str("b"))],
    );
    assert_eq!(
        sdp(&reply),
        PCMA_OFFER_G729_OUT.replace("a=sendrecv", "a=sendonly")
    );
    let reply = h.answer(
        &G729_ANSWER.replace("a=ptime", "a=recvonly\r\na=ptime"),
        &[],
    );
    assert!(sdp(&reply).contains("m=audio 30000 RTP/AVP 8 101\r\n"));
    let spec = h.live();
    assert_eq!(first_audio(&spec.callee.codecs).name, "G729");
    assert_eq!(first_audio(&spec.caller.codecs).name, "PCMA");
    assert_eq!(h.fake.create_count(), 1);
}

#[test]
fn video_sections_are_not_negotiated() {
    let offer = format!("{PCMA_OFFER}m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n");
    let mut h = Harness::new();
    let extra = (
        "codec",
        Value::dict()
            .with("strip", list(&["all"]))
            .with("offer", list(&["PCMA"])),
    );
    let out = sdp(&h.offer(&offer, &[extra])).to_string();
    assert!(out.contains("m=audio 30002 RTP/AVP 8 101\r\n"), "{out}");
    assert!(out.contains("m=video 30006 RTP/AVP 96\r\n"), "{out}");
    let video = h.fake.with(|s| s.creates[1].clone());
    assert!(video.caller.codecs.is_empty());
}

/// A customer offering G.729 on 18 and telephone-event on 101.
fn g729_caller() -> String {
    PCMA_OFFER
        .replace("RTP/AVP 8 101", "RTP/AVP 18 101")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000")
}

/// A carrier's SDP with G729a on 96 (`annexb=no`) and telephone-event on 97.
fn g729a_carrier() -> String {
    PCMA_ANSWER
        .replace("RTP/AVP 8 101", "RTP/AVP 96 97")
        .replace(
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:96 G729a/8000\r\na=fmtp:96 annexb=no",
        )
        .replace(":101", ":97")
}

/// A G.729 customer on 18 and a carrier that answers G729a on 96 (our `g729_mode = both`
/// offered it G729 on 18 and G729a on 96): both legs keep their own payload-type numbers, so
/// the engine's relay renumbers each packet to the receiving party's (docs/b2bua.md, "Codecs").
#[test]
fn relayed_g729_legs_keep_their_own_payload_types_for_the_relay_map() {
    let mut h = Harness::new();
    h.offer(&g729_caller(), &[]);
    let reply = h.answer(&g729a_carrier(), &[]);
    // The answer toward the caller uses the caller's numbers (RFC 3264 §6.1), named as the
    // caller named them, with the carrier's parameters: what the caller sends with is what its
    // leg lists, and the relay renumbers it for the carrier.
    let body = sdp(&reply);
    assert!(m_line(body).ends_with("RTP/AVP 18 101"), "{body}");
    let attrs: Vec<&str> = body.lines().filter(|l| l.starts_with("a=")).collect();
    for line in [
        "a=rtpmap:18 G729/8000",
        "a=fmtp:18 annexb=no",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
    ] {
        assert!(attrs.contains(&line), "{line} in {body}");
    }
    assert!(!body.contains(":96") && !body.contains(":97"), "{body}");
    let spec = h.live();
    assert_eq!(
        names(&spec.caller.codecs),
        vec![(18, "G729"), (101, "telephone-event")]
    );
    assert_eq!(
        names(&spec.callee.codecs),
        vec![(96, "G729a"), (97, "telephone-event")]
    );
    let up = relay_pt_map(&spec.caller, &spec.callee);
    let down = relay_pt_map(&spec.callee, &spec.caller);
    assert_eq!((up[18], up[101]), (96, 97));
    assert_eq!((down[96], down[97]), (18, 101));
    assert_eq!((up[8], down[8]), (8, 8), "nothing else moves");
}

/// The carrier re-offers on its own numbers and the caller answers on its own: the answer
/// toward the carrier is renumbered to the carrier's, as the first answer was to the caller's.
#[test]
fn an_answer_to_a_reoffer_from_the_callee_uses_the_callees_numbers() {
    let (caller, carrier) = (g729_caller(), g729a_carrier());
    let mut h = Harness::new();
    h.offer(&caller, &[]);
    h.answer(&carrier, &[]);
    let from_callee = |command: &str, sdp: &str| {
        Value::dict()
            .with("command", command)
            .with("call-id", "c")
            .with("from-tag", "b")
            .with("to-tag", "a")
            .with("sdp", sdp)
    };
    let reoffer = carrier.replace("o=carrier 2 1", "o=carrier 2 2");
    let toward_caller = h.send(from_callee("offer", &reoffer));
    assert!(m_line(sdp(&toward_caller)).ends_with("RTP/AVP 96 97"));
    let reply = h.send(from_callee("answer", &caller));
    let body = sdp(&reply);
    assert!(m_line(body).ends_with("RTP/AVP 96 97"), "{body}");
    assert!(body.contains("a=rtpmap:96 G729a/8000\r\n"), "{body}");
    assert!(
        body.contains("a=rtpmap:97 telephone-event/8000\r\n"),
        "{body}"
    );
    assert!(body.contains("a=fmtp:97 0-16\r\n"), "{body}");
    assert!(!body.contains(":18") && !body.contains(":101"), "{body}");
    let spec = h.live();
    assert_eq!(relay_pt_map(&spec.caller, &spec.callee)[18], 96);
    assert_eq!(relay_pt_map(&spec.callee, &spec.caller)[97], 101);
}
