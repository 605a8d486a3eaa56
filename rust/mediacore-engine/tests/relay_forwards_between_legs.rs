//! Packets received on one leg go out of the other leg, unchanged, to the other party.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_engine::{Channel, Side, Verdict};

#[test]
fn rtp_and_rtcp_cross_to_the_other_leg() {
    let t0 = Instant::now();
    let mut s = session(spec(), t0);
    let v = s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut rtp(1, 160, 7),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtp,
            dest: addr(CALLEE)
        }
    );
    let v = s.handle_packet(
        t0,
        Side::Callee,
        Channel::Rtp,
        addr(CALLEE),
        &mut rtp(9, 0, 8),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Caller,
            channel: Channel::Rtp,
            dest: addr(CALLER)
        }
    );
    // RTCP goes to the RTP port + 1 when SDP gave no a=rtcp.
    let v = s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtcp,
        addr("192.0.2.10:4001"),
        &mut rtcp_rr(7),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtcp,
            dest: addr("198.51.100.20:5001")
        }
    );
    let st = s.stats(t0 + Duration::from_millis(5));
    assert_eq!(st.caller.rtp.packets, 1);
    assert_eq!(st.caller.rtp.bytes, 172);
    assert_eq!(st.caller.rtcp_packets, 1);
    assert_eq!(st.callee.sent_rtp_packets, 1);
    assert_eq!(st.callee.sent_rtcp_packets, 1);
    assert_eq!(st.caller.sent_rtp_packets, 1);
    assert_eq!(st.caller.rtp.ssrc, Some(7));
    assert_eq!(st.caller.since_last_packet, Some(Duration::from_millis(5)));
}

#[test]
fn explicit_rtcp_address_is_used() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.callee.remote_rtcp = Some(addr("198.51.100.21:6001"));
    let mut s = session(sp, t0);
    let v = s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtcp,
        addr("192.0.2.10:4001"),
        &mut rtcp_rr(7),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtcp,
            dest: addr("198.51.100.21:6001")
        }
    );
}

#[test]
fn rtcp_on_the_rtp_port_is_relayed_as_rtcp() {
    let t0 = Instant::now();
    let mut s = session(spec(), t0);
    let v = s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut rtcp_rr(7),
    );
    // RFC 5761 demultiplexing; the source is latched for RTCP separately.
    assert_eq!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            channel: Channel::Rtcp,
            dest: addr("198.51.100.20:5001")
        }
    );
    assert_eq!(s.stats(t0).caller.rtcp_packets, 1);
}

#[test]
fn no_destination_until_the_callee_is_known() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.callee.remote_rtp = None;
    let mut s = session(sp.clone(), t0);
    let v = s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut rtp(1, 0, 7),
    );
    assert_eq!(
        v,
        Verdict::Drop(mediacore_engine::DropReason::NoDestination)
    );
    // The answer arrives: now it flows.
    sp.callee.remote_rtp = Some(addr(CALLEE));
    s.update(sp, t0).unwrap();
    let v = s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut rtp(2, 160, 7),
    );
    assert!(matches!(
        v,
        Verdict::Forward {
            via: Side::Callee,
            ..
        }
    ));
    let st = s.stats(t0);
    assert_eq!(st.caller.dropped.no_destination, 1);
    assert_eq!(st.caller.rtp.packets, 2);
}

#[test]
fn statistics_follow_rfc3550() {
    let t0 = Instant::now();
    let mut s = session(spec(), t0);
    // 100 packets, every 10th lost, one duplicate, one pair swapped, 20 ms apart.
    let mut order: Vec<u16> = (0..100).filter(|n| n % 10 != 5).collect();
    order.swap(20, 21);
    order.insert(30, order[29]);
    for (i, seq) in order.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        s.handle_packet(
            now,
            Side::Caller,
            Channel::Rtp,
            addr(CALLER),
            &mut rtp(*seq, u32::from(*seq) * 160, 99),
        );
    }
    let st = s.stats(t0 + Duration::from_secs(3)).caller;
    assert_eq!(st.rtp.packets, 91);
    assert_eq!(st.rtp.duplicates, 1);
    assert_eq!(st.rtp.lost, 10);
    assert_eq!(st.rtp.expected, 100);
    assert_eq!(st.rtp.out_of_order, 1);
}

#[test]
fn a_two_hour_call_runs_in_virtual_time() {
    let t0 = Instant::now();
    let mut s = session(spec(), t0);
    let mut seq: u16 = 65000;
    let packets = 2 * 3600 * 50u32; // two hours of 20 ms packets
    for n in 0..packets {
        let now = t0 + Duration::from_millis(20 * u64::from(n));
        let v = s.handle_packet(
            now,
            Side::Caller,
            Channel::Rtp,
            addr(CALLER),
            &mut rtp(seq, n.wrapping_mul(160), 5),
        );
        assert!(matches!(v, Verdict::Forward { .. }));
        seq = seq.wrapping_add(1);
        s.handle_timeout(now);
    }
    let st = s.stats(t0 + Duration::from_secs(7200));
    assert_eq!(st.caller.rtp.packets, u64::from(packets));
    assert_eq!(st.caller.rtp.lost, 0, "sequence roll-over is not loss");
    assert_eq!(st.caller.rtp.jitter, 0);
    // Only the callee, who never sent anything, timed out; the talking caller never did.
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .map(|e| e.side)
        .collect();
    assert_eq!(events, vec![Side::Callee]);
}
