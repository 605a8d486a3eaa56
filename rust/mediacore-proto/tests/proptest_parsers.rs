//! Property tests: arbitrary input never panics any parser; valid input round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mediacore_proto::{
    packets, parse_compound, Bye, ReceiverReport, ReceptionStats, ReportBlock, RtcpPacketHeader,
    RtpHeader, Sdes, SenderReport, TelephoneEvent,
};
use proptest::prelude::*;

fn datagram() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..1500)
}

/// Bytes that start like RTCP (version 2, an RTCP type), so the length and
/// count paths are exercised rather than rejected at the first byte.
fn rtcp_like() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..64,
        194u8..=207,
        prop::collection::vec(any::<u8>(), 2..400),
    )
        .prop_map(|(flags, pt, mut rest)| {
            let mut p = vec![0x80 | (flags & 0x3f), pt];
            p.append(&mut rest);
            p
        })
}

fn report_block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..=0x7f_ffff,
        any::<[u32; 4]>(),
    )
        .prop_map(|(ssrc, fraction_lost, cumulative_lost, w)| ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost,
            highest_seq: w[0],
            jitter: w[1],
            last_sr: w[2],
            delay_since_last_sr: w[3],
        })
}

fn all_rtcp_parsers(buf: &[u8]) {
    let _ = parse_compound(buf);
    let mut errors = 0;
    for item in packets(buf) {
        match item {
            Ok((hdr, bytes)) => {
                assert_eq!(hdr.len_bytes, bytes.len());
                let _ = SenderReport::parse(bytes);
                let _ = ReceiverReport::parse(bytes);
                let _ = Sdes::parse(bytes);
                let _ = Bye::parse(bytes);
            }
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1);
    let _ = RtcpPacketHeader::parse(buf);
    let _ = SenderReport::parse(buf);
    let _ = ReceiverReport::parse(buf);
    let _ = Sdes::parse(buf);
    let _ = Bye::parse(buf);
    let _ = ReportBlock::parse(buf);
}

proptest! {
    #[test]
    fn rtp_parse_never_panics(buf in datagram()) {
        if let Ok(h) = RtpHeader::parse(&buf) {
            prop_assert_eq!(h.header_len + h.payload_len + h.padding_len, buf.len());
            prop_assert_eq!(h.payload(&buf).len(), h.payload_len);
        }
    }

    #[test]
    fn rtcp_parsers_never_panic(buf in datagram()) {
        all_rtcp_parsers(&buf);
    }

    #[test]
    fn rtcp_like_parsers_never_panic(buf in rtcp_like()) {
        all_rtcp_parsers(&buf);
    }

    #[test]
    fn compound_agrees_with_iterator(buf in rtcp_like()) {
        let all_ok = packets(&buf).all(|r| r.is_ok());
        prop_assert_eq!(parse_compound(&buf).is_ok(), all_ok && !buf.is_empty());
    }

    #[test]
    fn telephone_event_never_panics(buf in datagram()) {
        if let Ok(ev) = TelephoneEvent::parse(&buf) {
            prop_assert!(ev.volume <= 63);
        }
    }

    #[test]
    fn rtp_write_basic_round_trips(
        marker: bool,
        pt in (0u8..128).prop_filter("RTCP space", |pt| !(64..=95).contains(pt)),
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let h = RtpHeader {
            padding: false,
            extension: false,
            marker,
            payload_type: pt,
            sequence,
            timestamp,
            ssrc,
            csrc_count: 0,
            header_len: 12,
            payload_len: payload.len(),
            padding_len: 0,
        };
        let mut buf = vec![0u8; 12];
        prop_assert_eq!(h.write_basic(&mut buf), Some(12));
        buf.extend_from_slice(&payload);
        prop_assert_eq!(RtpHeader::parse(&buf), Ok(h));
        prop_assert_eq!(h.payload(&buf), &payload[..]);
    }

    #[test]
    fn typed_rtcp_round_trips(
        ssrc: u32,
        ntp: u64,
        counts: [u32; 3],
        reports in prop::collection::vec(report_block(), 0..31),
        items in prop::collection::vec((1u8..=8, prop::collection::vec(any::<u8>(), 0..255)), 0..4),
        reason in prop::option::of(prop::collection::vec(any::<u8>(), 0..255)),
    ) {
        let sr = SenderReport {
            ssrc,
            ntp_timestamp: ntp,
            rtp_timestamp: counts[0],
            packet_count: counts[1],
            octet_count: counts[2],
            reports: reports.clone(),
        };
        let rr = ReceiverReport { ssrc, reports };
        let sdes = Sdes { chunks: vec![(ssrc, items.clone()), (ssrc ^ 1, items)] };
        let bye = Bye { ssrcs: vec![ssrc], reason };
        let mut compound = Vec::new();
        let mut one = Vec::new();
        sr.write(&mut one);
        prop_assert_eq!(SenderReport::parse(&one), Ok(sr));
        compound.append(&mut one);
        rr.write(&mut one);
        prop_assert_eq!(ReceiverReport::parse(&one), Ok(rr));
        compound.append(&mut one);
        sdes.write(&mut one);
        prop_assert_eq!(Sdes::parse(&one), Ok(sdes));
        compound.append(&mut one);
        bye.write(&mut one);
        prop_assert_eq!(Bye::parse(&one), Ok(bye));
        compound.append(&mut one);
        let c = parse_compound(&compound).unwrap();
        prop_assert_eq!(c.packets, 4);
        prop_assert_eq!(c.sender_ssrc, Some(ssrc));
    }

    #[test]
    fn reception_never_panics(
        ssrcs in prop::sample::subsequence(vec![1u32, 2, 3], 1..=3),
        steps in prop::collection::vec((any::<u16>(), any::<u32>(), any::<u64>(), 0usize..3, prop::sample::select(vec![0u32, 8000, 48000, 90000])), 0..300),
    ) {
        let mut stats = ReceptionStats::new();
        for (seq, ts, arrival, which, rate) in &steps {
            let h = RtpHeader {
                padding: false,
                extension: false,
                marker: false,
                payload_type: 0,
                sequence: *seq,
                timestamp: *ts,
                ssrc: ssrcs[which % ssrcs.len()],
                csrc_count: 0,
                header_len: 12,
                payload_len: 0,
                padding_len: 0,
            };
            stats.record(&h, 12, *arrival, *rate);
            let _ = stats.take_fraction_lost();
        }
        let snap = stats.snapshot();
        prop_assert_eq!(snap.packets, steps.len() as u64);
        prop_assert!(snap.lost >= 0);
    }

    /// Mostly-sequential streams with small perturbations: counters stay consistent.
    #[test]
    fn reception_counts_are_consistent(
        start: u16,
        deltas in prop::collection::vec(-5i32..=8, 1..500),
    ) {
        let mut stats = ReceptionStats::new();
        let mut seq = i64::from(start);
        for (i, d) in deltas.iter().enumerate() {
            seq += i64::from(*d);
            let h = RtpHeader {
                padding: false,
                extension: false,
                marker: false,
                payload_type: 0,
                sequence: seq as u16,
                timestamp: (i as u32) * 160,
                ssrc: 9,
                csrc_count: 0,
                header_len: 12,
                payload_len: 160,
                padding_len: 0,
            };
            stats.record(&h, 172, i as u64 * 20_000, 8000);
        }
        let s = stats.snapshot();
        prop_assert_eq!(s.packets, deltas.len() as u64);
        let unique = s.packets - s.duplicates;
        prop_assert!(s.lost >= 0);
        prop_assert!(s.expected as i64 - s.lost <= unique as i64);
    }
}
