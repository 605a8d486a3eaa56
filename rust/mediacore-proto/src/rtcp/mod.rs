//! RTCP compound packets (RFC 3550 §6) and the generic packet header.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|  count  |      PT       |   length (32-bit words - 1)   |
//! ```
//!
//! A datagram carries one or more packets back to back. [`parse_compound`]
//! and [`packets`] apply the RFC 3550 A.2 validity checks without allocating;
//! the typed packets in the submodules decode the bodies when needed.

use core::fmt;

mod bye;
mod rr;
mod sdes;
mod sr;

pub use bye::Bye;
pub use rr::{ReceiverReport, ReportBlock};
pub use sdes::{Sdes, SDES_CNAME, SDES_END};
pub use sr::SenderReport;

/// Sender report.
pub const RTCP_SR: u8 = 200;
/// Receiver report.
pub const RTCP_RR: u8 = 201;
/// Source description.
pub const RTCP_SDES: u8 = 202;
/// Goodbye.
pub const RTCP_BYE: u8 = 203;
/// Application-defined.
pub const RTCP_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585).
pub const RTCP_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585).
pub const RTCP_PSFB: u8 = 206;
/// Extended reports (RFC 3611).
pub const RTCP_XR: u8 = 207;

/// Packet types reserved for RTCP by RFC 5761 §4; 192 (FIR) and 193 (NACK)
/// are the obsolete RFC 2032 types and are refused.
const RTCP_TYPE_SPACE: core::ops::RangeInclusive<u8> = 194..=223;

/// Bytes in the common header that starts every RTCP packet.
pub const RTCP_HEADER_LEN: usize = 4;

/// Sender info (SSRC, NTP, RTP timestamp, packet and octet counts) after the header of an SR, in bytes.
pub(crate) const SR_FIXED_LEN: usize = 24;
/// Reporter SSRC after the header of an RR, in bytes.
pub(crate) const RR_FIXED_LEN: usize = 4;

/// Why a datagram or packet is not valid RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpError {
    /// Too short for the RTCP header or the fixed part of the packet type.
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// A length field disagrees with the bytes present (or with the items it frames).
    LengthMismatch,
    /// Padding on a packet other than the last, or a padding count of 0 or beyond the packet.
    PaddingInvalid,
    /// The report/source count needs more bytes than the packet length allows.
    BadReportCount,
    /// Packet type outside the RTCP space, or not the type a typed parser handles.
    UnknownType(u8),
}

impl RtcpError {
    /// Stable snake_case reason, for counters and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            RtcpError::TooShort => "too_short",
            RtcpError::BadVersion => "bad_version",
            RtcpError::LengthMismatch => "length_mismatch",
            RtcpError::PaddingInvalid => "padding_invalid",
            RtcpError::BadReportCount => "bad_report_count",
            RtcpError::UnknownType(_) => "unknown_type",
        }
    }
}

impl fmt::Display for RtcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtcpError::UnknownType(t) => write!(f, "unknown_type({t})"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl std::error::Error for RtcpError {}

/// One packet header within a compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacketHeader {
    pub padding: bool,
    /// RC, SC or FMT: the 5-bit field after P.
    pub count: u8,
    pub packet_type: u8,
    /// Whole packet length in bytes, header and padding included ((length + 1) * 4).
    pub len_bytes: usize,
}

impl RtcpPacketHeader {
    /// Decodes the 4-byte header at the start of `buf` and checks that the
    /// packet fits in `buf`. Does not look at the body.
    pub fn parse(buf: &[u8]) -> Result<Self, RtcpError> {
        let &[b0, packet_type, l0, l1, ..] = buf else {
            return Err(RtcpError::TooShort);
        };
        if b0 >> 6 != 2 {
            return Err(RtcpError::BadVersion);
        }
        if !RTCP_TYPE_SPACE.contains(&packet_type) {
            return Err(RtcpError::UnknownType(packet_type));
        }
        let len_bytes = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        if len_bytes > buf.len() {
            return Err(RtcpError::LengthMismatch);
        }
        Ok(RtcpPacketHeader {
            padding: b0 & 0x20 != 0,
            count: b0 & 0x1f,
            packet_type,
            len_bytes,
        })
    }

    /// Writes a header for a packet of `len_bytes` (a multiple of 4, at least 4) with no padding.
    pub(crate) fn write(count: u8, packet_type: u8, len_bytes: usize, out: &mut [u8]) {
        let words = u16::try_from(len_bytes / 4 - 1).unwrap_or(u16::MAX);
        if let Some(h) = out.first_chunk_mut::<4>() {
            h[0] = 0x80 | (count & 0x1f);
            h[1] = packet_type;
            h[2..4].copy_from_slice(&words.to_be_bytes());
        }
    }
}

/// Checks the padding of one packet and returns its body (after the header,
/// before the padding).
pub(crate) fn packet_body<'a>(
    hdr: &RtcpPacketHeader,
    packet: &'a [u8],
) -> Result<&'a [u8], RtcpError> {
    let packet = packet
        .get(..hdr.len_bytes)
        .ok_or(RtcpError::LengthMismatch)?;
    let after_header = hdr.len_bytes - RTCP_HEADER_LEN;
    let pad = if hdr.padding {
        let count = usize::from(packet.last().copied().unwrap_or(0));
        if count == 0 || count > after_header {
            return Err(RtcpError::PaddingInvalid);
        }
        count
    } else {
        0
    };
    Ok(packet
        .get(RTCP_HEADER_LEN..hdr.len_bytes - pad)
        .unwrap_or(&[]))
}

/// Checks that the report count of an SR or RR fits its body. Report blocks
/// may be followed by profile-specific extensions, so a longer body is fine.
fn check_report_count(hdr: &RtcpPacketHeader, body: &[u8]) -> Result<(), RtcpError> {
    let fixed = match hdr.packet_type {
        RTCP_SR => SR_FIXED_LEN,
        RTCP_RR => RR_FIXED_LEN,
        _ => return Ok(()),
    };
    if body.len() < fixed {
        return Err(RtcpError::TooShort);
    }
    if body.len() - fixed < usize::from(hdr.count) * ReportBlock::LEN {
        return Err(RtcpError::BadReportCount);
    }
    Ok(())
}

/// Validates the packet starting at `rest`, which is the tail of a datagram
/// (`is_first` for the head). Returns the header; `len_bytes` is how far to advance.
fn next_packet(rest: &[u8], is_first: bool) -> Result<RtcpPacketHeader, RtcpError> {
    if rest.len() < RTCP_HEADER_LEN && !is_first {
        // Trailing bytes that cannot even hold a header: the lengths do not add up.
        return Err(RtcpError::LengthMismatch);
    }
    let hdr = RtcpPacketHeader::parse(rest)?;
    if hdr.padding && hdr.len_bytes != rest.len() {
        return Err(RtcpError::PaddingInvalid);
    }
    let body = packet_body(&hdr, rest)?;
    check_report_count(&hdr, body)?;
    Ok(hdr)
}

/// Iterator over the packets of a compound datagram; see [`packets`].
#[derive(Debug, Clone)]
pub struct RtcpPacketIter<'a> {
    buf: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Iterator for RtcpPacketIter<'a> {
    type Item = Result<(RtcpPacketHeader, &'a [u8]), RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.offset..).unwrap_or(&[]);
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        match next_packet(rest, self.offset == 0) {
            Ok(hdr) => {
                self.offset += hdr.len_bytes;
                Some(Ok((hdr, rest.get(..hdr.len_bytes).unwrap_or(&[]))))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the packets of a compound datagram, each with its whole bytes
/// (header and padding included). Applies the same per-packet checks as
/// [`parse_compound`]; on the first invalid packet it yields that error once
/// and stops.
pub fn packets(buf: &[u8]) -> RtcpPacketIter<'_> {
    RtcpPacketIter {
        buf,
        offset: 0,
        done: false,
    }
}

/// Summary of a validated compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpCompound {
    pub packets: usize,
    pub first_type: u8,
    /// SSRC of the sender: the first 32-bit word after the first packet's
    /// header (for SDES the first chunk, for BYE the first source), if present.
    pub sender_ssrc: Option<u32>,
    /// Whether any SR or RR is present.
    pub has_report: bool,
}

/// Validates a compound RTCP datagram (RFC 3550 A.2, relaxed per RFC 5506).
///
/// Every packet must be version 2 with a type in 194..=223 (the legacy
/// 192/193 and anything outside the RTCP space give `UnknownType`); the
/// lengths must add up exactly to `buf.len()`; only the last packet may carry
/// padding, with a count in 1..=(bytes after its header); SR/RR report counts
/// must fit their length. The first packet need not be SR/RR, so RFC 5506
/// reduced-size RTCP (e.g. a lone feedback packet) is accepted.
pub fn parse_compound(buf: &[u8]) -> Result<RtcpCompound, RtcpError> {
    let mut summary = RtcpCompound {
        packets: 0,
        first_type: 0,
        sender_ssrc: None,
        has_report: false,
    };
    for item in packets(buf) {
        let (hdr, bytes) = item?;
        if summary.packets == 0 {
            summary.first_type = hdr.packet_type;
            let has_ssrc = !matches!(hdr.packet_type, RTCP_SDES | RTCP_BYE) || hdr.count > 0;
            summary.sender_ssrc = match bytes.get(4..8) {
                Some(&[a, b, c, d]) if has_ssrc => Some(u32::from_be_bytes([a, b, c, d])),
                _ => None,
            };
        }
        summary.has_report |= matches!(hdr.packet_type, RTCP_SR | RTCP_RR);
        summary.packets += 1;
    }
    if summary.packets == 0 {
        return Err(RtcpError::TooShort);
    }
    Ok(summary)
}

/// Parses the header of a single packet for a typed parser: the packet must
/// be exactly `buf`, of type `packet_type`. Returns the header and the body
/// (after the header, before any padding).
pub(crate) fn typed_packet(
    buf: &[u8],
    packet_type: u8,
) -> Result<(RtcpPacketHeader, &[u8]), RtcpError> {
    let hdr = RtcpPacketHeader::parse(buf)?;
    if hdr.packet_type != packet_type {
        return Err(RtcpError::UnknownType(hdr.packet_type));
    }
    if hdr.len_bytes != buf.len() {
        return Err(RtcpError::LengthMismatch);
    }
    let body = packet_body(&hdr, buf)?;
    Ok((hdr, body))
}

/// Appends a header placeholder to `out` and returns where the packet starts,
/// for [`finish_packet`] once the body is written.
pub(crate) fn begin_packet(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; RTCP_HEADER_LEN]);
    start
}

/// Pads the body started at `start` to a 32-bit boundary with zeros and fills in the header.
pub(crate) fn finish_packet(out: &mut Vec<u8>, start: usize, count: u8, packet_type: u8) {
    while (out.len() - start) % 4 != 0 {
        out.push(0);
    }
    let len = out.len() - start;
    if let Some(hdr) = out.get_mut(start..) {
        RtcpPacketHeader::write(count, packet_type, len, hdr);
    }
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// SR from 0x01020304 with one report block, followed by SDES with CNAME "ab".
    fn sr_sdes() -> Vec<u8> {
        let mut p = vec![
            0x81, 200, 0, 12, // SR, RC=1, 13 words
            1, 2, 3, 4, // sender SSRC
            0xe0, 0, 0, 0, 0, 0, 0, 0, // NTP
            0, 0, 0, 160, // RTP ts
            0, 0, 0, 10, // packets
            0, 0, 6, 64, // octets
            9, 9, 9, 9, // report block: SSRC
            0, 0, 0, 0, // fraction + cumulative lost
            0, 1, 0, 5, // highest seq
            0, 0, 0, 3, // jitter
            0, 0, 0, 0, // LSR
            0, 0, 0, 0, // DLSR
        ];
        p.extend_from_slice(&[
            0x81, 202, 0, 3, // SDES, SC=1, 4 words
            1, 2, 3, 4, // chunk SSRC
            1, 2, b'a', b'b', // CNAME "ab"
            0, 0, 0, 0, // END and pad to 32 bits
        ]);
        p
    }

    #[test]
    fn compound_sr_sdes() {
        let p = sr_sdes();
        assert_eq!(p.len(), 52 + 16);
        let c = parse_compound(&p).unwrap();
        assert_eq!(
            c,
            RtcpCompound {
                packets: 2,
                first_type: RTCP_SR,
                sender_ssrc: Some(0x0102_0304),
                has_report: true,
            }
        );
        let types: Vec<u8> = packets(&p).map(|r| r.unwrap().0.packet_type).collect();
        assert_eq!(types, vec![RTCP_SR, RTCP_SDES]);
    }

    #[test]
    fn reduced_size_feedback_alone() {
        // PLI (PSFB FMT=1): sender SSRC and media SSRC.
        let p = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        let c = parse_compound(&p).unwrap();
        assert_eq!(c.first_type, RTCP_PSFB);
        assert!(!c.has_report);
        assert_eq!(c.sender_ssrc, Some(1));
    }

    #[test]
    fn length_longer_than_buffer() {
        let mut p = sr_sdes();
        p[55] = 4; // SDES claims 5 words but only 4 are there
        assert_eq!(parse_compound(&p), Err(RtcpError::LengthMismatch));
    }

    #[test]
    fn length_shorter_leaves_trailing_bytes() {
        let mut p = sr_sdes();
        p.extend_from_slice(&[0, 0]);
        assert_eq!(parse_compound(&p), Err(RtcpError::LengthMismatch));

        // RR with RC=0 claiming 2 words when 3 are present: the spare word is
        // read as a header and its version is 0.
        let p = [0x80, 201, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(parse_compound(&p), Err(RtcpError::BadVersion));

        // SR claiming one word less than its report block needs.
        let mut p = sr_sdes();
        p[3] = 11;
        assert_eq!(parse_compound(&p), Err(RtcpError::BadReportCount));
    }

    #[test]
    fn padding_only_on_last_packet() {
        let mut p = sr_sdes();
        p[0] |= 0x20;
        assert_eq!(parse_compound(&p), Err(RtcpError::PaddingInvalid));

        let mut p = sr_sdes();
        p[52] |= 0x20;
        *p.last_mut().unwrap() = 4; // the last word of the SDES is padding
        assert_eq!(parse_compound(&p).unwrap().packets, 2);
        *p.last_mut().unwrap() = 13;
        assert_eq!(parse_compound(&p), Err(RtcpError::PaddingInvalid));
        *p.last_mut().unwrap() = 0;
        assert_eq!(parse_compound(&p), Err(RtcpError::PaddingInvalid));
    }

    #[test]
    fn bad_version_in_second_packet() {
        let mut p = sr_sdes();
        p[52] = (p[52] & 0x3f) | 0x40;
        assert_eq!(parse_compound(&p), Err(RtcpError::BadVersion));
        let results: Vec<_> = packets(&p).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert_eq!(results[1], Err(RtcpError::BadVersion));
    }

    #[test]
    fn report_count_too_large() {
        let mut p = sr_sdes();
        p[0] = 0x80 | 31;
        assert_eq!(parse_compound(&p), Err(RtcpError::BadReportCount));
        let short_sr = [0x80, 200, 0, 1, 0, 0, 0, 1];
        assert_eq!(parse_compound(&short_sr), Err(RtcpError::TooShort));
    }

    #[test]
    fn unknown_types() {
        for t in [0u8, 72, 192, 193, 224, 255] {
            let p = [0x80, t, 0, 1, 0, 0, 0, 1];
            assert_eq!(parse_compound(&p), Err(RtcpError::UnknownType(t)));
        }
        for t in [RTCP_APP, RTCP_RTPFB, RTCP_XR, 223] {
            let p = [0x80, t, 0, 1, 0, 0, 0, 1];
            assert!(parse_compound(&p).is_ok());
        }
    }

    #[test]
    fn empty_and_tiny() {
        assert_eq!(parse_compound(&[]), Err(RtcpError::TooShort));
        assert_eq!(parse_compound(&[0x80, 201]), Err(RtcpError::TooShort));
        assert_eq!(packets(&[]).count(), 0);
    }

    #[test]
    fn bye_without_sources_has_no_sender() {
        let p = [0x80, 203, 0, 0];
        assert_eq!(parse_compound(&p).unwrap().sender_ssrc, None);
    }
}
