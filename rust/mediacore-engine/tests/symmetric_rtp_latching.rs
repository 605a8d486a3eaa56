//! Symmetric RTP: with `Learn` the media goes where the party's packets come from (NAT);
//! with `Strict` only the SDP address is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_engine::{Channel, DropReason, LatchPolicy, Session, Side, Verdict, RELATCH_AFTER};

/// The callee's SDP says a private address; its packets arrive from the NAT's public one.
const NATTED: &str = "203.0.113.7:61000";

/// `packet`, an RTP datagram from `src` on `from`'s leg at `at`, through the session.
fn send_rtp(s: &mut Session, at: Instant, from: Side, src: &str, mut packet: Vec<u8>) -> Verdict {
    s.handle_packet(at, from, Channel::Rtp, addr(src), &mut packet)
}

#[test]
fn learn_latches_to_the_first_source() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.callee.remote_rtp = Some(addr("10.0.0.5:5000"));
    let mut s = session(sp, t0);
    // Before the callee speaks, the SDP address is all we have.
    let v = send_rtp(&mut s, t0, Side::Caller, CALLER, rtp(1, 0, 1));
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtp,
            dest: addr("10.0.0.5:5000")
        }
    );
    // The callee speaks from behind its NAT: we learn.
    send_rtp(&mut s, t0, Side::Callee, NATTED, rtp(1, 0, 2));
    let v = send_rtp(&mut s, t0, Side::Caller, CALLER, rtp(2, 160, 1));
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtp,
            dest: addr(NATTED)
        }
    );
    let st = s.stats(t0);
    assert!(st.callee.latched);
    assert_eq!(st.callee.remote_rtp, Some(addr(NATTED)));
    // RTCP follows the latched RTP address (port + 1) until RTCP itself is seen.
    assert_eq!(st.callee.remote_rtcp, Some(addr("203.0.113.7:61001")));
}

#[test]
fn a_stranger_is_dropped_while_the_latched_source_is_alive() {
    let t0 = Instant::now();
    let mut s = session(spec(), t0);
    send_rtp(&mut s, t0, Side::Callee, NATTED, rtp(1, 0, 2));
    let t1 = t0 + Duration::from_millis(500);
    let v = send_rtp(
        &mut s,
        t1,
        Side::Callee,
        "203.0.113.66:1234",
        rtp(2, 160, 2),
    );
    assert_eq!(v, Verdict::Drop(DropReason::ForeignSource));
    // After the latched source has been silent long enough, a new source takes over.
    let t2 = t0 + RELATCH_AFTER + Duration::from_millis(1);
    let v = send_rtp(
        &mut s,
        t2,
        Side::Callee,
        "203.0.113.66:1234",
        rtp(3, 320, 2),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    assert_eq!(
        s.stats(t2).callee.remote_rtp,
        Some(addr("203.0.113.66:1234"))
    );
    assert_eq!(s.stats(t2).callee.dropped.foreign_source, 1);
}

#[test]
fn strict_accepts_only_the_sdp_address() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.callee.latch = LatchPolicy::Strict;
    let mut s = session(sp, t0);
    let v = send_rtp(&mut s, t0, Side::Callee, NATTED, rtp(1, 0, 2));
    assert_eq!(v, Verdict::Drop(DropReason::ForeignSource));
    let v = send_rtp(&mut s, t0, Side::Callee, CALLEE, rtp(2, 160, 2));
    assert!(matches!(v, Verdict::Forward { .. }));
    let v = send_rtp(&mut s, t0, Side::Caller, CALLER, rtp(1, 0, 1));
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtp,
            dest: addr(CALLEE)
        }
    );
    let st = s.stats(t0).callee;
    assert_eq!(st.dropped.foreign_source, 1);
    assert_eq!(
        st.rtp.packets, 1,
        "a rejected packet never reaches the statistics"
    );
    assert!(!st.latched);
}

#[test]
fn a_new_sdp_address_forgets_the_latch() {
    let t0 = Instant::now();
    let mut sp = spec();
    let mut s = session(sp.clone(), t0);
    send_rtp(&mut s, t0, Side::Callee, NATTED, rtp(1, 0, 2));
    sp.callee.remote_rtp = Some(addr("198.51.100.99:7000"));
    s.update(sp, t0).unwrap();
    let v = send_rtp(&mut s, t0, Side::Caller, CALLER, rtp(1, 0, 1));
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtp,
            dest: addr("198.51.100.99:7000")
        }
    );
}

#[test]
fn old_style_hold_address_is_never_a_destination() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.callee.remote_rtp = Some(addr("0.0.0.0:5000"));
    sp.callee.hold = true;
    let mut s = session(sp, t0);
    let v = send_rtp(&mut s, t0, Side::Caller, CALLER, rtp(1, 0, 1));
    assert_eq!(v, Verdict::Drop(DropReason::NoDestination));
}
