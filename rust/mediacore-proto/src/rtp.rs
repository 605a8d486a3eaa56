//! RTP fixed header (RFC 3550 §5.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers             |  CC x 32 bits
//! |  profile-defined (16 bits)    |  extension length (32-bit words) |  if X
//! |                        extension data                         |
//! |                payload ...    | padding ... | padding count   |  if P
//! ```
//!
//! Parsing only validates and locates the parts of the datagram; it never
//! copies or allocates, so it can sit on the per-packet relay path.

use core::fmt;

/// RTP version carried in the top two bits of every packet.
pub const RTP_VERSION: u8 = 2;

/// Payload types 64..=95 map onto RTCP packet types 192..=223 once the marker
/// bit is set, so RFC 5761 §4 forbids them for RTP when RTP and RTCP share a port.
const RTCP_CONFLICT_PT: core::ops::RangeInclusive<u8> = 64..=95;

/// Why a datagram is not a well-formed RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// The CSRC list announced by CC runs past the end of the datagram.
    CsrcOverrun,
    /// The header extension (its 4-byte preamble or its announced length) runs past the end.
    ExtensionOverrun,
    /// P bit set but the padding count is 0 or covers more than the bytes after the header.
    PaddingInvalid,
    /// Second byte falls in the RTCP packet-type space (RFC 5761 §4).
    LooksLikeRtcp,
}

impl RtpError {
    /// Stable snake_case reason, for counters and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            RtpError::TooShort => "too_short",
            RtpError::BadVersion => "bad_version",
            RtpError::CsrcOverrun => "csrc_overrun",
            RtpError::ExtensionOverrun => "extension_overrun",
            RtpError::PaddingInvalid => "padding_invalid",
            RtpError::LooksLikeRtcp => "looks_like_rtcp",
        }
    }
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for RtpError {}

/// A validated RTP header plus the layout of the datagram it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub padding: bool,
    pub extension: bool,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    /// bytes of fixed header + CSRCs + extension (offset of the payload)
    pub header_len: usize,
    /// bytes of payload (excluding padding)
    pub payload_len: usize,
    /// bytes of padding at the end (0 if no P bit)
    pub padding_len: usize,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

impl RtpHeader {
    /// Fixed header length in bytes.
    pub const MIN_LEN: usize = 12;

    /// Validates `buf` as one RTP packet and describes its layout.
    ///
    /// Rejects: len<12, version!=2, CSRC list beyond buffer, extension
    /// header/length beyond buffer, padding with P bit where the last byte is 0
    /// or larger than the bytes after the header, and (RFC 5761 §4) payload
    /// types 64..=95 that collide with RTCP packet types -> `LooksLikeRtcp`.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<RtpHeader, RtpError> {
        let fixed: &[u8; 12] = match buf.first_chunk::<12>() {
            Some(f) => f,
            None => return Err(RtpError::TooShort),
        };
        let b0 = fixed[0];
        let b1 = fixed[1];
        if b0 >> 6 != RTP_VERSION {
            return Err(RtpError::BadVersion);
        }
        let payload_type = b1 & 0x7f;
        if RTCP_CONFLICT_PT.contains(&payload_type) {
            return Err(RtpError::LooksLikeRtcp);
        }
        let padding = b0 & 0x20 != 0;
        let extension = b0 & 0x10 != 0;
        let csrc_count = b0 & 0x0f;
        let len = buf.len();

        let mut header_len = Self::MIN_LEN + 4 * usize::from(csrc_count);
        if header_len > len {
            return Err(RtpError::CsrcOverrun);
        }
        if extension {
            if header_len + 4 > len {
                return Err(RtpError::ExtensionOverrun);
            }
            let words = usize::from(be16(buf, header_len + 2));
            header_len += 4 + 4 * words;
            if header_len > len {
                return Err(RtpError::ExtensionOverrun);
            }
        }

        let after_header = len - header_len;
        let padding_len = if padding {
            let count = usize::from(buf[len - 1]);
            if count == 0 || count > after_header {
                return Err(RtpError::PaddingInvalid);
            }
            count
        } else {
            0
        };

        Ok(RtpHeader {
            padding,
            extension,
            marker: b1 & 0x80 != 0,
            payload_type,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            csrc_count,
            header_len,
            payload_len: after_header - padding_len,
            padding_len,
        })
    }

    /// The payload bytes of the datagram this header was parsed from
    /// (empty if `buf` is not that datagram and the range does not fit).
    #[inline]
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.header_len..self.header_len + self.payload_len)
            .unwrap_or(&[])
    }

    /// CSRC number `index` (0-based) from the datagram this header was parsed from.
    pub fn csrc(&self, buf: &[u8], index: usize) -> Option<u32> {
        if index >= usize::from(self.csrc_count) {
            return None;
        }
        buf.get(Self::MIN_LEN + 4 * index..Self::MIN_LEN + 4 * index + 4)
            .map(|_| be32(buf, Self::MIN_LEN + 4 * index))
    }

    /// The header extension as (profile-defined 16 bits, extension data),
    /// if the X bit is set (RFC 3550 §5.3.1).
    pub fn extension_data<'a>(&self, buf: &'a [u8]) -> Option<(u16, &'a [u8])> {
        if !self.extension {
            return None;
        }
        let at = Self::MIN_LEN + 4 * usize::from(self.csrc_count);
        let data = buf.get(at + 4..self.header_len)?;
        Some((be16(buf, at), data))
    }

    /// Writes a 12-byte header with no CSRC/extension/padding (ignores those
    /// fields); returns 12, or None if `out.len() < 12`.
    #[inline]
    pub fn write_basic(&self, out: &mut [u8]) -> Option<usize> {
        let out: &mut [u8; 12] = out.first_chunk_mut::<12>()?;
        out[0] = RTP_VERSION << 6;
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Some(Self::MIN_LEN)
    }
}

/// RFC 5761 demultiplexing helper: true if the datagram is at least an RTCP
/// header plus SSRC (8 bytes), version 2, and its second byte is an RTCP
/// packet type (payload-type space 64..=95 once the marker bit is masked).
#[inline]
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    match buf {
        [b0, b1, _, _, _, _, _, _, ..] => {
            b0 >> 6 == RTP_VERSION && RTCP_CONFLICT_PT.contains(&(b1 & 0x7f))
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// PCMU, seq 0x1234, ts 0xdeadbeef, ssrc 0x11223344, marker set, 4 payload bytes.
    const BASIC: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4,
    ];

    #[test]
    fn parses_basic_packet_with_marker() {
        let h = RtpHeader::parse(&BASIC).unwrap();
        assert_eq!(
            h,
            RtpHeader {
                padding: false,
                extension: false,
                marker: true,
                payload_type: 0,
                sequence: 0x1234,
                timestamp: 0xdead_beef,
                ssrc: 0x1122_3344,
                csrc_count: 0,
                header_len: 12,
                payload_len: 4,
                padding_len: 0,
            }
        );
        assert_eq!(h.payload(&BASIC), &[1, 2, 3, 4]);
    }

    #[test]
    fn parses_csrcs() {
        let mut p = vec![0x82, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        p.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 7]);
        p.extend_from_slice(&[0x55; 3]);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(h.csrc_count, 2);
        assert_eq!(h.payload_type, 8);
        assert!(!h.marker);
        assert_eq!(h.header_len, 20);
        assert_eq!(h.payload_len, 3);
        assert_eq!(h.csrc(&p, 0), Some(0xaabb_ccdd));
        assert_eq!(h.csrc(&p, 1), Some(7));
        assert_eq!(h.csrc(&p, 2), None);
        assert_eq!(h.payload(&p), &[0x55; 3]);
    }

    #[test]
    fn parses_extension() {
        // One-byte header extension profile 0xBEDE, one word of data.
        let mut p = vec![0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]);
        p.extend_from_slice(&[9, 9]);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.extension);
        assert_eq!(h.header_len, 20);
        assert_eq!(h.payload_len, 2);
        assert_eq!(
            h.extension_data(&p),
            Some((0xbede, &[0x10, 0xff, 0, 0][..]))
        );
    }

    #[test]
    fn parses_padding() {
        let mut p = vec![0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        p.extend_from_slice(&[7, 7, 7, 7, 7, 0, 0, 3]);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.padding);
        assert_eq!(h.padding_len, 3);
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.payload(&p), &[7; 5]);
    }

    #[test]
    fn padding_may_cover_whole_body() {
        let p = [0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4];
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!((h.payload_len, h.padding_len), (0, 4));
    }

    #[test]
    fn write_basic_round_trips() {
        let h = RtpHeader::parse(&BASIC).unwrap();
        let mut out = [0u8; 16];
        assert_eq!(h.write_basic(&mut out), Some(12));
        out[12..].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(out, BASIC);
        assert_eq!(h.write_basic(&mut [0u8; 11]), None);
    }

    #[test]
    fn each_error_variant() {
        assert_eq!(RtpHeader::parse(&BASIC[..11]), Err(RtpError::TooShort));
        for v in [0x40, 0xc0] {
            let mut p = BASIC;
            p[0] = v;
            assert_eq!(RtpHeader::parse(&p), Err(RtpError::BadVersion));
        }
        let mut p = [0u8; 20];
        p[0] = 0x8f;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::CsrcOverrun));

        let mut p = vec![
            0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 5, 0, 0, 0, 0,
        ];
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::ExtensionOverrun));
        p.truncate(14);
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::ExtensionOverrun));

        let mut p = BASIC;
        p[0] = 0xa0;
        p[15] = 0;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::PaddingInvalid));
        p[15] = 5;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::PaddingInvalid));
        assert_eq!(RtpHeader::parse(&p[..12]), Err(RtpError::PaddingInvalid));

        let mut p = BASIC;
        p[1] = 72;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::LooksLikeRtcp));
        p[1] = 0x80 | 72;
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::LooksLikeRtcp));
    }

    #[test]
    fn error_reasons() {
        assert_eq!(RtpError::TooShort.as_str(), "too_short");
        assert_eq!(RtpError::LooksLikeRtcp.to_string(), "looks_like_rtcp");
    }

    #[test]
    fn rtcp_demux() {
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert!(looks_like_rtcp(&rr));
        assert!(!looks_like_rtcp(&rr[..7]));
        assert!(!looks_like_rtcp(&BASIC));
        assert!(!looks_like_rtcp(&[0x40, 201, 0, 1, 0, 0, 0, 1]));
    }
}
