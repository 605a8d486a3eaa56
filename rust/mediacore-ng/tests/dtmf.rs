//! DTMF over ng: the `DTMF-mode` key and flags choose a leg's mode; `play DTMF` (rtpengine's
//! keys: call-id, from-tag, code, duration, volume, pause) reaches the engine for the party
//! that "generates" the digits, toward the other one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use mediacore_engine::{DtmfMode, DtmfPlay, Side};
use mediacore_ng::bencode::{decode, Value};
use mediacore_ng::NgProcessor;
use support::FakeControl;

fn sdp(port: u16, formats: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {formats}\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n"
    )
}

struct Ng {
    fake: Arc<FakeControl>,
    ng: NgProcessor,
    n: u32,
}

impl Ng {
    fn new() -> Self {
        let fake = Arc::new(FakeControl::new());
        Ng {
            ng: NgProcessor::new(fake.clone()),
            fake,
            n: 0,
        }
    }

    fn send(&mut self, dict: Value) -> Value {
        self.n += 1;
        let mut dgram = format!("k{} ", self.n).into_bytes();
        dgram.extend_from_slice(&dict.to_bytes());
        let reply = self.ng.handle(&dgram, Instant::now(), 1).unwrap();
        let at = reply.iter().position(|b| *b == b' ').unwrap();
        decode(&reply[at + 1..]).unwrap()
    }

    /// An offer from "a" and the answer from "b" with the given extra keys.
    fn call(&mut self, offer_extra: &[(&str, Value)], answer_extra: &[(&str, Value)]) {
        let mut o = Value::dict()
            .with("command", "offer")
            .with("call-id", "c1")
            .with("from-tag", "a")
            .with("sdp", sdp(4000, "8 101"));
        for (k, v) in offer_extra {
            o.insert(k, v.clone());
        }
        assert_eq!(result(&self.send(o)), "ok");
        let mut a = Value::dict()
            .with("command", "answer")
            .with("call-id", "c1")
            .with("from-tag", "a")
            .with("to-tag", "b")
            .with("sdp", sdp(5000, "8"));
        for (k, v) in answer_extra {
            a.insert(k, v.clone());
        }
        assert_eq!(result(&self.send(a)), "ok");
    }

    fn modes(&self) -> (DtmfMode, DtmfMode) {
        self.fake.with(|s| {
            let spec = s.live.values().next().unwrap();
            (spec.caller.dtmf, spec.callee.dtmf)
        })
    }

    fn play(&mut self, keys: &[(&str, Value)]) -> Value {
        let mut d = Value::dict()
            .with("command", "play DTMF")
            .with("call-id", "c1");
        for (k, v) in keys {
            d.insert(k, v.clone());
        }
        self.send(d)
    }

    fn plays(&self) -> Vec<(Side, DtmfPlay)> {
        self.fake
            .with(|s| s.plays.iter().map(|p| (p.1, p.2.clone())).collect())
    }
}

fn result(v: &Value) -> String {
    String::from_utf8_lossy(v.dict_get("result").and_then(Value::as_bytes).unwrap()).into()
}

fn reason(v: &Value) -> String {
    String::from_utf8_lossy(
        v.dict_get("error-reason")
            .and_then(Value::as_bytes)
            .unwrap_or_default(),
    )
    .into()
}

fn flags(f: &[&str]) -> Value {
    Value::List(f.iter().map(|x| Value::str(x)).collect())
}

#[test]
fn the_mode_follows_the_sdp_unless_a_flag_or_key_forces_it() {
    let mut ng = Ng::new();
    ng.call(&[], &[]);
    assert_eq!(ng.modes(), (DtmfMode::Auto, DtmfMode::Auto));

    let mut ng = Ng::new();
    ng.call(
        &[("flags", flags(&["DTMF-mode=info"]))],
        &[("flags", flags(&["dtmf-mode-inband"]))],
    );
    assert_eq!(ng.modes(), (DtmfMode::Info, DtmfMode::Inband));

    let mut ng = Ng::new();
    ng.call(&[("DTMF-mode", Value::str("RFC2833"))], &[]);
    assert_eq!(ng.modes(), (DtmfMode::Rfc2833, DtmfMode::Auto));

    let mut ng = Ng::new();
    let r = ng.send(
        Value::dict()
            .with("command", "offer")
            .with("call-id", "c1")
            .with("from-tag", "a")
            .with("sdp", sdp(4000, "8"))
            .with("flags", flags(&["DTMF-mode=morse"])),
    );
    assert_eq!(result(&r), "error");
    assert!(reason(&r).starts_with("Invalid DTMF-mode"), "{r:?}");
}

#[test]
fn play_dtmf_goes_toward_the_party_that_did_not_generate_it() {
    let mut ng = Ng::new();
    ng.call(&[], &[]);
    let r = ng.play(&[("from-tag", Value::str("a")), ("code", Value::str("5"))]);
    assert_eq!(result(&r), "ok", "{r:?}");
    let r = ng.play(&[
        ("from-tag", Value::str("b")),
        ("code", Value::Int(11)),
        ("duration", Value::Int(400)),
        ("volume", Value::Int(-12)),
        ("pause", Value::str("200")),
    ]);
    assert_eq!(result(&r), "ok", "{r:?}");
    assert_eq!(
        ng.plays(),
        vec![
            (Side::Callee, DtmfPlay::new("5", 250, 8, 100).unwrap()),
            (Side::Caller, DtmfPlay::new("#", 400, 12, 200).unwrap()),
        ]
    );
}

#[test]
fn play_dtmf_clamps_like_rtpengine_and_takes_a_digit_string() {
    let mut ng = Ng::new();
    ng.call(&[], &[]);
    let r = ng.play(&[
        ("from-tag", Value::str("a")),
        ("digit", Value::str("12ab")),
        ("duration", Value::Int(20)),
        ("volume", Value::Int(15)),
        ("pause", Value::Int(99_999)),
    ]);
    assert_eq!(result(&r), "ok", "{r:?}");
    assert_eq!(
        ng.plays(),
        vec![(Side::Callee, DtmfPlay::new("12AB", 100, 15, 5000).unwrap())]
    );
}

#[test]
fn play_dtmf_errors() {
    let mut ng = Ng::new();
    ng.call(&[], &[]);
    let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
        (vec![("code", Value::str("1"))], "No from-tag in message"),
        (
            vec![("from-tag", Value::str("zz")), ("code", Value::str("1"))],
            "Unknown from-tag",
        ),
        (
            vec![("from-tag", Value::str("a"))],
            "No valid DTMF event code given",
        ),
        (
            vec![("from-tag", Value::str("a")), ("code", Value::Int(16))],
            "No valid DTMF event code given",
        ),
        (
            vec![("from-tag", Value::str("a")), ("code", Value::str("x"))],
            "No valid DTMF event code given: digits: 'X' is not 0-9, *, #, A-D",
        ),
    ];
    for (keys, want) in cases {
        let r = ng.play(&keys);
        assert_eq!(
            (result(&r), reason(&r)),
            ("error".into(), want.into()),
            "{keys:?}"
        );
    }
    let r = ng.send(
        Value::dict()
            .with("command", "play DTMF")
            .with("call-id", "nope")
            .with("from-tag", "a")
            .with("code", "1"),
    );
    assert_eq!(reason(&r), "Unknown call-ID");
    assert!(ng.plays().is_empty());
}
