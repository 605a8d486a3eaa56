//! A leg silent for the RTP timeout raises `MediaTimeout`; a held leg raises `HoldTimeout` after
//! the (longer) hold timeout instead. Each is raised once per silence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_engine::{Channel, EventKind, Side};

#[test]
fn silence_raises_one_media_timeout_per_leg() {
    let t0 = Instant::now();
    let mut s = session(spec(), t0);
    // The callee keeps talking; the caller goes quiet after one packet.
    s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut rtp(1, 0, 1),
    );
    let mut now = t0;
    for n in 0..(31 * 50) {
        now = t0 + Duration::from_millis(20 * n);
        s.handle_packet(
            now,
            Side::Callee,
            Channel::Rtp,
            addr(CALLEE),
            &mut rtp(n as u16, 0, 2),
        );
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
    }
    let ev = s.poll_event().expect("caller timed out");
    assert_eq!((ev.side, ev.kind), (Side::Caller, EventKind::MediaTimeout));
    assert!(
        ev.silent_for >= Duration::from_secs(30) && ev.silent_for < Duration::from_millis(30_100)
    );
    assert!(
        s.poll_event().is_none(),
        "once, and not for the talking callee"
    );
    s.handle_timeout(now + Duration::from_secs(5));
    assert!(s.poll_event().is_none(), "not again for the same silence");
    assert!(s.stats(now).caller.timed_out);
    // Media returns: re-armed.
    s.handle_packet(
        now,
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut rtp(2, 160, 1),
    );
    assert!(!s.stats(now).caller.timed_out);
    s.handle_timeout(now + Duration::from_secs(31));
    let kinds: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .map(|e| (e.side, e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Side::Caller, EventKind::MediaTimeout),
            (Side::Callee, EventKind::MediaTimeout)
        ]
    );
}

#[test]
fn a_held_leg_gets_the_hold_timeout_instead() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.rtp_timeout = Duration::from_secs(30);
    sp.hold_timeout = Duration::from_secs(600);
    sp.caller.hold = true;
    let mut s = session(sp, t0);
    s.handle_timeout(t0 + Duration::from_secs(31));
    let ev = s.poll_event().expect("the active callee leg times out");
    assert_eq!((ev.side, ev.kind), (Side::Callee, EventKind::MediaTimeout));
    assert!(
        s.poll_event().is_none(),
        "the held caller is allowed its silence"
    );
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(600)));
    s.handle_timeout(t0 + Duration::from_secs(600));
    let ev = s.poll_event().expect("hold timeout");
    assert_eq!((ev.side, ev.kind), (Side::Caller, EventKind::HoldTimeout));
}

#[test]
fn resuming_from_hold_restarts_the_clock() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.caller.hold = true;
    let mut s = session(sp.clone(), t0);
    let t1 = t0 + Duration::from_secs(100);
    sp.caller.hold = false;
    s.update(sp, t1).unwrap();
    s.handle_timeout(t1 + Duration::from_secs(29));
    assert!(std::iter::from_fn(|| s.poll_event()).all(|e| e.side != Side::Caller));
    s.handle_timeout(t1 + Duration::from_secs(30));
    assert!(std::iter::from_fn(|| s.poll_event())
        .any(|e| e.side == Side::Caller && e.kind == EventKind::MediaTimeout));
}

#[test]
fn an_unknown_party_cannot_time_out() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.callee.remote_rtp = None;
    let mut s = session(sp, t0);
    s.handle_timeout(t0 + Duration::from_secs(3600));
    let sides: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .map(|e| e.side)
        .collect();
    assert_eq!(sides, vec![Side::Caller]);
}
