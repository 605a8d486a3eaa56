//! The playout clock, jitter buffers, echo cancellers and relay re-timers never panic and
//! never stall time on arbitrary RTP: random sequence numbers, timestamps, payload types,
//! SSRCs, sizes and arrival times, with timers run at every `poll_timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_engine::{Channel, CodecSpec, JitterMode, Session, SessionId, Side};
use proptest::prelude::*;

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..len).map(|i| (i * 37) as u8));
    p
}

fn arb_packet() -> impl Strategy<Value = (bool, u8, u16, u32, u32, usize, u64)> {
    (
        any::<bool>(),
        prop_oneof![
            Just(8u8),
            Just(0),
            Just(18),
            Just(101),
            Just(111),
            any::<u8>()
        ],
        prop_oneof![0u16..40, any::<u16>()],
        prop_oneof![(0u32..40).prop_map(|k| k * 160), any::<u32>()],
        prop_oneof![Just(1u32), Just(2), any::<u32>()],
        prop_oneof![Just(160usize), Just(20), Just(4), 0usize..1400],
        prop_oneof![0u64..40, 0u64..5000],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_rtp_through_decoded_and_retimed_streams(
        packets in proptest::collection::vec(arb_packet(), 1..120),
        fixed in any::<bool>(),
    ) {
        let mut sp = spec();
        sp.caller.codecs = vec![
            CodecSpec::new(8, "PCMA", 8000),
            CodecSpec::new(18, "G729", 8000),
            CodecSpec::new(111, "opus", 48000),
            CodecSpec::new(101, "telephone-event", 8000),
        ];
        sp.callee.codecs = vec![CodecSpec::new(0, "PCMU", 8000)];
        sp.callee.ptime_ms = 30;
        if fixed {
            sp.caller.jitter_buffer.mode = JitterMode::Fixed;
        }
        let t0 = Instant::now();
        let mut s = Session::new(SessionId(1), sp.clone(), t0).unwrap();
        // A second session relays, with a re-timer on the caller's stream.
        let mut relay_spec = spec();
        relay_spec.caller.jitter_buffer.relay = true;
        let mut r = Session::new(SessionId(2), relay_spec, t0).unwrap();
        let mut now = t0;
        for (caller, pt, seq, ts, ssrc, len, gap_ms) in packets {
            now += Duration::from_millis(gap_ms);
            for sess in [&mut s, &mut r] {
                let mut steps = 0;
                while let Some(due) = sess.poll_timeout().filter(|d| *d <= now) {
                    sess.handle_timeout(due);
                    while let Some(tx) = sess.poll_transmit() {
                        sess.recycle(tx.data);
                    }
                    steps += 1;
                    prop_assert!(steps < 10_000, "time does not advance");
                    if sess.poll_timeout().is_some_and(|d| d <= due) {
                        prop_assert!(false, "a timeout at {due:?} did not move on");
                    }
                }
                let side = if caller { Side::Caller } else { Side::Callee };
                let from = addr(if caller { CALLER } else { CALLEE });
                sess.handle_packet(now, side, Channel::Rtp, from, &mut packet(pt, seq, ts, ssrc, len));
                while let Some(tx) = sess.poll_transmit() {
                    sess.recycle(tx.data);
                }
            }
        }
        for sess in [&s, &r] {
            let st = sess.stats(now);
            if let Some(jb) = st.caller.jitter_buffer {
                prop_assert!(jb.stats.current_delay_ms.is_finite());
                prop_assert!(jb.stats.target_delay_ms.is_finite());
            }
        }
    }
}
