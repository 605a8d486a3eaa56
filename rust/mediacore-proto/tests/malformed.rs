//! Malformed-input injection: every parser, fed truncated, bit-flipped and
//! hand-crafted bad packets, returns the specific error and never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mediacore_proto::{
    packets, parse_compound, Bye, ReceiverReport, ReportBlock, RtcpError, RtpError, RtpHeader,
    Sdes, SenderReport, TelephoneEvent, TelephoneEventError,
};

/// RTP with 1 CSRC, a one-word extension, 3 payload bytes and 2 bytes of padding.
fn full_rtp() -> Vec<u8> {
    let mut p = vec![0xb1, 0x80 | 96, 0xff, 0xff, 0, 0, 0x10, 0, 0, 0, 0, 1];
    p.extend_from_slice(&[0, 0, 0, 2]); // CSRC
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x22, 0, 0, 0]); // extension
    p.extend_from_slice(&[1, 2, 3, 0, 2]); // payload + padding
    p
}

fn full_compound() -> Vec<u8> {
    let mut out = Vec::new();
    SenderReport {
        ssrc: 1,
        ntp_timestamp: 2,
        rtp_timestamp: 3,
        packet_count: 4,
        octet_count: 5,
        reports: vec![ReportBlock {
            ssrc: 6,
            cumulative_lost: -7,
            ..ReportBlock::default()
        }],
    }
    .write(&mut out);
    ReceiverReport {
        ssrc: 1,
        reports: vec![ReportBlock::default(); 2],
    }
    .write(&mut out);
    Sdes::cname(1, b"alice@example.net").write(&mut out);
    Bye {
        ssrcs: vec![1],
        reason: Some(b"done".to_vec()),
    }
    .write(&mut out);
    out
}

/// Runs every parser in the crate over `buf`; the point is that none panics.
fn every_parser(buf: &[u8]) {
    if let Ok(h) = RtpHeader::parse(buf) {
        assert_eq!(h.header_len + h.payload_len + h.padding_len, buf.len());
        let _ = h.payload(buf);
    }
    let _ = parse_compound(buf);
    for (_, bytes) in packets(buf).map_while(Result::ok) {
        let _ = SenderReport::parse(bytes);
        let _ = ReceiverReport::parse(bytes);
        let _ = Sdes::parse(bytes);
        let _ = Bye::parse(bytes);
    }
    let _ = SenderReport::parse(buf);
    let _ = ReceiverReport::parse(buf);
    let _ = Sdes::parse(buf);
    let _ = Bye::parse(buf);
    let _ = ReportBlock::parse(buf);
    let _ = TelephoneEvent::parse(buf);
}

#[test]
fn valid_fixtures_parse() {
    let p = full_rtp();
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!((h.header_len, h.payload_len, h.padding_len), (24, 3, 2));
    assert_eq!(h.sequence, 0xffff);
    assert!(h.marker);
    let c = parse_compound(&full_compound()).unwrap();
    assert_eq!(c.packets, 4);
}

#[test]
fn every_truncation_of_rtp_is_handled() {
    let p = full_rtp();
    for len in 0..24 {
        let expected = match len {
            0..=11 => RtpError::TooShort,
            12..=15 => RtpError::CsrcOverrun,
            _ => RtpError::ExtensionOverrun,
        };
        assert_eq!(RtpHeader::parse(&p[..len]), Err(expected), "len {len}");
    }
    // From 24 bytes on, the last byte read as the padding count is payload:
    // whether it is valid depends on its value, but the layout must add up.
    for len in 24..p.len() {
        every_parser(&p[..len]);
    }
    // Header only: nothing after it can be padding.
    assert_eq!(RtpHeader::parse(&p[..24]), Err(RtpError::PaddingInvalid));
}

#[test]
fn every_truncation_of_rtcp_is_an_error() {
    let c = full_compound();
    let mut boundaries = vec![];
    let mut at = 0;
    for item in packets(&c) {
        at += item.unwrap().0.len_bytes;
        boundaries.push(at);
    }
    for len in 0..c.len() {
        let r = parse_compound(&c[..len]);
        if boundaries.contains(&len) {
            assert!(r.is_ok(), "len {len}: {r:?}");
        } else {
            assert!(r.is_err(), "len {len}");
        }
        every_parser(&c[..len]);
    }
}

#[test]
fn every_single_bit_flip_is_handled() {
    for fixture in [full_rtp(), full_compound()] {
        for byte in 0..fixture.len() {
            for bit in 0..8 {
                let mut p = fixture.clone();
                p[byte] ^= 1 << bit;
                every_parser(&p);
            }
        }
    }
}

#[test]
fn crafted_rtp() {
    // CC=15 in a 20-byte packet.
    let mut p = [0u8; 20];
    p[0] = 0x8f;
    assert_eq!(RtpHeader::parse(&p), Err(RtpError::CsrcOverrun));
    // Extension length claims 0xffff words.
    let p = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    assert_eq!(RtpHeader::parse(&p), Err(RtpError::ExtensionOverrun));
    // Padding count 255 in a 13-byte packet.
    let mut p = [0u8; 13];
    p[0] = 0xa0;
    p[12] = 255;
    assert_eq!(RtpHeader::parse(&p), Err(RtpError::PaddingInvalid));
    // An RTCP RR on the RTP path.
    let p = [0x80, 201, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(RtpHeader::parse(&p), Err(RtpError::LooksLikeRtcp));
    assert!(mediacore_proto::looks_like_rtcp(&p));
}

#[test]
fn crafted_rtcp() {
    // Length 0xffff words in an 8-byte datagram.
    assert_eq!(
        parse_compound(&[0x80, 201, 0xff, 0xff, 0, 0, 0, 1]),
        Err(RtcpError::LengthMismatch)
    );
    // RC=31 in a minimal SR.
    let mut sr = vec![0x80 | 31, 200, 0, 6];
    sr.resize(28, 0);
    assert_eq!(parse_compound(&sr), Err(RtcpError::BadReportCount));
    assert_eq!(SenderReport::parse(&sr), Err(RtcpError::BadReportCount));
    // Padding bit on a packet whose padding count is zero.
    assert_eq!(
        parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 0]),
        Err(RtcpError::PaddingInvalid)
    );
    // Version 0, as a STUN message would look.
    assert_eq!(
        parse_compound(&[0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42]),
        Err(RtcpError::BadVersion)
    );
    // The error is yielded once, then the iterator stops.
    let mut it = packets(&[0x80, 201, 0, 1, 0, 0, 0, 0, 0x40, 201, 0, 0]);
    assert!(it.next().unwrap().is_ok());
    assert_eq!(it.next(), Some(Err(RtcpError::BadVersion)));
    assert_eq!(it.next(), None);
}

#[test]
fn crafted_telephone_event() {
    for len in 0..4 {
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3, 4][..len]),
            Err(TelephoneEventError::TooShort)
        );
    }
}

#[test]
fn error_reasons_are_snake_case() {
    let reasons = [
        RtpError::TooShort.as_str(),
        RtpError::BadVersion.as_str(),
        RtpError::CsrcOverrun.as_str(),
        RtpError::ExtensionOverrun.as_str(),
        RtpError::PaddingInvalid.as_str(),
        RtpError::LooksLikeRtcp.as_str(),
        RtcpError::TooShort.as_str(),
        RtcpError::BadVersion.as_str(),
        RtcpError::LengthMismatch.as_str(),
        RtcpError::PaddingInvalid.as_str(),
        RtcpError::BadReportCount.as_str(),
        RtcpError::UnknownType(1).as_str(),
        TelephoneEventError::TooShort.as_str(),
        TelephoneEventError::VolumeOutOfRange.as_str(),
    ];
    for r in reasons {
        assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
    }
}
