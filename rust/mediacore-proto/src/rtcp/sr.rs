//! Sender report (RFC 3550 §6.4.1).

use super::rr::{parse_blocks, write_blocks, ReportBlock};
use super::{be32, begin_packet, finish_packet, typed_packet, RtcpError, RTCP_SR, SR_FIXED_LEN};

/// SR: what an active sender has sent, plus optional reception reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    /// SSRC of the sender.
    pub ssrc: u32,
    /// Wallclock time of the report, 64-bit NTP format (seconds since 1900 in the
    /// top 32 bits, fraction of a second in the low 32 bits).
    pub ntp_timestamp: u64,
    /// The same instant in the RTP clock of this sender's media.
    pub rtp_timestamp: u32,
    /// Packets sent since the start of transmission (wraps).
    pub packet_count: u32,
    /// Payload bytes sent since the start of transmission (wraps).
    pub octet_count: u32,
    pub reports: Vec<ReportBlock>,
}

impl SenderReport {
    /// Decodes one SR packet (exactly `buf`). Profile-specific extensions after
    /// the report blocks are skipped.
    pub fn parse(buf: &[u8]) -> Result<Self, RtcpError> {
        let (hdr, body) = typed_packet(buf, RTCP_SR)?;
        if body.len() < SR_FIXED_LEN {
            return Err(RtcpError::TooShort);
        }
        Ok(SenderReport {
            ssrc: be32(body, 0),
            ntp_timestamp: (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8)),
            rtp_timestamp: be32(body, 12),
            packet_count: be32(body, 16),
            octet_count: be32(body, 20),
            reports: parse_blocks(body.get(SR_FIXED_LEN..).unwrap_or(&[]), hdr.count)?,
        })
    }

    /// Appends the packet to `out`. Only the first 31 report blocks fit (RC is 5 bits).
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = begin_packet(out);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.ntp_timestamp.to_be_bytes());
        out.extend_from_slice(&self.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.octet_count.to_be_bytes());
        let count = write_blocks(&self.reports, out);
        finish_packet(out, start, count, RTCP_SR);
    }

    /// The middle 32 bits of the NTP timestamp, as echoed in a report block's `last_sr`.
    pub fn compact_ntp(&self) -> u32 {
        (self.ntp_timestamp >> 16) as u32
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::rtcp::parse_compound;

    fn sample() -> SenderReport {
        SenderReport {
            ssrc: 0x0102_0304,
            ntp_timestamp: 0xe000_0001_8000_0000,
            rtp_timestamp: 160,
            packet_count: 10,
            octet_count: 1600,
            reports: vec![ReportBlock {
                ssrc: 9,
                fraction_lost: 1,
                cumulative_lost: -5,
                highest_seq: 70_000,
                jitter: 3,
                last_sr: 0x1234_5678,
                delay_since_last_sr: 100,
            }],
        }
    }

    #[test]
    fn round_trip() {
        let sr = sample();
        let mut out = Vec::new();
        sr.write(&mut out);
        assert_eq!(out.len(), 52);
        assert_eq!(&out[..4], &[0x81, 200, 0, 12]);
        assert_eq!(&out[8..16], &[0xe0, 0, 0, 1, 0x80, 0, 0, 0]);
        assert_eq!(SenderReport::parse(&out).unwrap(), sr);
        let c = parse_compound(&out).unwrap();
        assert!(c.has_report);
        assert_eq!(sr.compact_ntp(), 0x0001_8000);
    }

    #[test]
    fn with_padding_and_no_blocks() {
        let sr = SenderReport {
            reports: vec![],
            ..sample()
        };
        let mut out = Vec::new();
        sr.write(&mut out);
        out[0] |= 0x20;
        out[3] += 1;
        out.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(parse_compound(&out).unwrap().packets, 1);
        assert_eq!(SenderReport::parse(&out).unwrap(), sr);
    }

    #[test]
    fn errors() {
        let mut out = Vec::new();
        sample().write(&mut out);
        let mut bad = out.clone();
        bad[0] = 0x80 | 31;
        assert_eq!(SenderReport::parse(&bad), Err(RtcpError::BadReportCount));
        assert_eq!(
            SenderReport::parse(&[0x80, 200, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::TooShort)
        );
        assert_eq!(
            SenderReport::parse(&out[..20]),
            Err(RtcpError::LengthMismatch)
        );
        out[1] = 201;
        assert_eq!(SenderReport::parse(&out), Err(RtcpError::UnknownType(201)));
    }
}
