//! A panic is a bug in the engine, never a consequence of bad input. Every datagram is
//! forwarded or counted under exactly one drop reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_engine::{Channel, DropReason, Side, Verdict};
use proptest::prelude::*;

fn malformed_rtp() -> Vec<(&'static str, Vec<u8>)> {
    let good = rtp(1, 0, 1);
    let mut v1 = good.clone();
    v1[0] = 0x40; // version 1
    let mut v3 = good.clone();
    v3[0] = 0xc0; // version 3
    let mut csrc = good.clone();
    csrc[0] = 0x8f; // 15 CSRCs in a 172-byte packet is fine; truncate to make them overrun
    csrc.truncate(40);
    let mut ext = good.clone();
    ext[0] = 0x90; // extension bit, length field far beyond the packet
    ext[14] = 0xff;
    ext[15] = 0xff;
    let mut pad_zero = good.clone();
    pad_zero[0] = 0xa0;
    *pad_zero.last_mut().unwrap() = 0;
    let mut pad_lie = good.clone();
    pad_lie[0] = 0xa0;
    *pad_lie.last_mut().unwrap() = 200;
    vec![
        ("empty", vec![]),
        ("truncated", good[..11].to_vec()),
        ("version 1", v1),
        ("version 3", v3),
        ("csrc overrun", csrc),
        ("extension overrun", ext),
        ("padding zero", pad_zero),
        ("padding lie", pad_lie),
    ]
}

fn malformed_rtcp() -> Vec<(&'static str, Vec<u8>)> {
    let good = rtcp_rr(1);
    let mut long = good.clone();
    long[3] = 9; // says 40 bytes, has 8
    let mut short = good.clone();
    short.extend_from_slice(&[0, 0, 0, 0]); // trailing bytes beyond the stated length
    let mut ver = good.clone();
    ver[0] = 0x40;
    let mut count = good.clone();
    count[0] = 0x81; // one report block claimed, none present
    vec![
        ("length too long", long),
        ("trailing bytes", short),
        ("version", ver),
        ("report count", count),
        ("tiny", vec![0x80]),
    ]
}

#[test]
fn every_malformed_packet_is_counted_and_good_ones_still_flow() {
    let t0 = Instant::now();
    let mut s = session(spec(), t0);
    let mut bad_rtp = malformed_rtp();
    let mut bad_rtcp = malformed_rtcp();
    for (name, p) in &mut bad_rtp {
        let v = s.handle_packet(t0, Side::Caller, Channel::Rtp, addr(CALLER), p);
        assert_eq!(v, Verdict::Drop(DropReason::MalformedRtp), "{name}");
    }
    for (name, p) in &mut bad_rtcp {
        let v = s.handle_packet(t0, Side::Caller, Channel::Rtcp, addr("192.0.2.10:4001"), p);
        assert_eq!(v, Verdict::Drop(DropReason::MalformedRtcp), "{name}");
    }
    let v = s.handle_packet(
        t0,
        Side::Caller,
        Channel::Rtp,
        addr(CALLER),
        &mut rtp(5, 800, 1),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    let st = s.stats(t0).caller;
    assert_eq!(st.dropped.malformed_rtp, bad_rtp.len() as u64);
    assert_eq!(st.dropped.malformed_rtcp, bad_rtcp.len() as u64);
    assert_eq!(st.rtp.packets, 1);
    assert_eq!(
        st.datagrams,
        st.rtp.packets + st.rtcp_packets + st.dropped.total()
    );
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic_and_are_all_accounted(
        packets in proptest::collection::vec((any::<bool>(), any::<bool>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 1..60)
    ) {
        let t0 = Instant::now();
        let mut s = session(spec(), t0);
        let mut forwarded = 0u64;
        for (i, (caller, rtcp, src_low, mut data)) in packets.into_iter().enumerate() {
            let side = if caller { Side::Caller } else { Side::Callee };
            let channel = if rtcp { Channel::Rtcp } else { Channel::Rtp };
            let src = std::net::SocketAddr::from(([192, 0, 2, src_low % 3], 4000));
            let now = t0 + Duration::from_millis(i as u64 * 7);
            if let Verdict::Forward { .. } = s.handle_packet(now, side, channel, src, &mut data) {
                forwarded += 1;
            }
            s.handle_timeout(now);
        }
        let st = s.stats(t0);
        let mut accounted = 0;
        for leg in [&st.caller, &st.callee] {
            prop_assert_eq!(leg.datagrams, leg.rtp.packets + leg.rtcp_packets + leg.dropped.total() - leg.dropped.no_destination);
            accounted += leg.datagrams;
        }
        let dropped: u64 = [&st.caller, &st.callee].iter().map(|l| l.dropped.total()).sum();
        prop_assert_eq!(accounted, forwarded + dropped);
    }
}
