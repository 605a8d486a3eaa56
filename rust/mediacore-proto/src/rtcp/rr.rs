//! Receiver report (RFC 3550 §6.4.2) and the report block shared with SR (§6.4.1).

use super::{be32, begin_packet, finish_packet, typed_packet, RtcpError, RR_FIXED_LEN, RTCP_RR};

/// Most report blocks one SR/RR can carry: RC is 5 bits.
pub(crate) const MAX_REPORTS: usize = 31;

/// Cumulative number of packets lost is a signed 24-bit field on the wire.
const CUMULATIVE_LOST_MAX: i32 = 0x7f_ffff;
const CUMULATIVE_LOST_MIN: i32 = -0x80_0000;

/// Reception statistics about one source, as sent in SR and RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// Source these statistics are about.
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, fixed point /256.
    pub fraction_lost: u8,
    /// Packets expected minus packets received since the start; negative
    /// when duplicates outnumber losses. 24-bit signed on the wire: clamped on write.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received: cycles << 16 | sequence.
    pub highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from this source (0 if none).
    pub last_sr: u32,
    /// Delay since that SR was received, in units of 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// Bytes of one report block on the wire.
    pub const LEN: usize = 24;

    /// Decodes the report block at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, RtcpError> {
        if buf.len() < Self::LEN {
            return Err(RtcpError::TooShort);
        }
        let lost_word = be32(buf, 4);
        Ok(ReportBlock {
            ssrc: be32(buf, 0),
            fraction_lost: (lost_word >> 24) as u8,
            // Move the 24-bit field to the top, then shift back arithmetically to sign-extend.
            cumulative_lost: ((lost_word << 8) as i32) >> 8,
            highest_seq: be32(buf, 8),
            jitter: be32(buf, 12),
            last_sr: be32(buf, 16),
            delay_since_last_sr: be32(buf, 20),
        })
    }

    /// Appends the 24-byte wire form to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let lost = self
            .cumulative_lost
            .clamp(CUMULATIVE_LOST_MIN, CUMULATIVE_LOST_MAX) as u32
            & 0x00ff_ffff;
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&self.highest_seq.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// Decodes `count` report blocks from the start of `body`.
pub(crate) fn parse_blocks(body: &[u8], count: u8) -> Result<Vec<ReportBlock>, RtcpError> {
    let count = usize::from(count);
    if body.len() < count * ReportBlock::LEN {
        return Err(RtcpError::BadReportCount);
    }
    body.chunks_exact(ReportBlock::LEN)
        .take(count)
        .map(ReportBlock::parse)
        .collect()
}

/// Writes at most [`MAX_REPORTS`] blocks and returns how many were written (the RC value).
pub(crate) fn write_blocks(reports: &[ReportBlock], out: &mut Vec<u8>) -> u8 {
    let reports = reports.get(..MAX_REPORTS).unwrap_or(reports);
    for r in reports {
        r.write(out);
    }
    reports.len() as u8
}

/// RR: reception statistics from a participant that is not sending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    /// SSRC of the reporter.
    pub ssrc: u32,
    pub reports: Vec<ReportBlock>,
}

impl ReceiverReport {
    /// Decodes one RR packet (exactly `buf`). Profile-specific extensions after
    /// the report blocks are skipped.
    pub fn parse(buf: &[u8]) -> Result<Self, RtcpError> {
        let (hdr, body) = typed_packet(buf, RTCP_RR)?;
        if body.len() < RR_FIXED_LEN {
            return Err(RtcpError::TooShort);
        }
        Ok(ReceiverReport {
            ssrc: be32(body, 0),
            reports: parse_blocks(body.get(RR_FIXED_LEN..).unwrap_or(&[]), hdr.count)?,
        })
    }

    /// Appends the packet to `out`. Only the first 31 report blocks fit (RC is 5 bits).
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = begin_packet(out);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let count = write_blocks(&self.reports, out);
        finish_packet(out, start, count, RTCP_RR);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::rtcp::parse_compound;

    fn block(cumulative_lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc: 0xcafe_babe,
            fraction_lost: 25,
            cumulative_lost,
            highest_seq: 0x0001_0005,
            jitter: 42,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    #[test]
    fn block_wire_form() {
        let mut out = Vec::new();
        block(-2).write(&mut out);
        assert_eq!(&out[4..8], &[25, 0xff, 0xff, 0xfe]);
        assert_eq!(ReportBlock::parse(&out).unwrap(), block(-2));
    }

    #[test]
    fn cumulative_lost_sign_extension_and_clamp() {
        for v in [0, 1, -1, 0x7f_ffff, -0x80_0000, 1000, -1000] {
            let mut out = Vec::new();
            block(v).write(&mut out);
            assert_eq!(ReportBlock::parse(&out).unwrap().cumulative_lost, v);
        }
        for (v, clamped) in [
            (i32::MAX, 0x7f_ffff),
            (i32::MIN, -0x80_0000),
            (0x80_0000, 0x7f_ffff),
        ] {
            let mut out = Vec::new();
            block(v).write(&mut out);
            let back = ReportBlock::parse(&out).unwrap();
            assert_eq!(back.cumulative_lost, clamped);
            assert_eq!(back.fraction_lost, 25);
        }
        let raw = [0, 0, 0, 1, 0x10, 0x80, 0, 0];
        let mut buf = raw.to_vec();
        buf.resize(24, 0);
        let b = ReportBlock::parse(&buf).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0x10, -0x80_0000));
    }

    #[test]
    fn rr_round_trip() {
        let rr = ReceiverReport {
            ssrc: 7,
            reports: vec![block(3), block(-4)],
        };
        let mut out = Vec::new();
        rr.write(&mut out);
        assert_eq!(out.len(), 8 + 48);
        assert_eq!(out[0], 0x82);
        assert_eq!(parse_compound(&out).unwrap().sender_ssrc, Some(7));
        assert_eq!(ReceiverReport::parse(&out).unwrap(), rr);
    }

    #[test]
    fn empty_rr_and_too_many_blocks() {
        let rr = ReceiverReport::default();
        let mut out = Vec::new();
        rr.write(&mut out);
        assert_eq!(out, [0x80, 201, 0, 1, 0, 0, 0, 0]);
        assert_eq!(ReceiverReport::parse(&out).unwrap(), rr);

        let many = ReceiverReport {
            ssrc: 1,
            reports: vec![block(0); 40],
        };
        let mut out = Vec::new();
        many.write(&mut out);
        let back = ReceiverReport::parse(&out).unwrap();
        assert_eq!(back.reports.len(), 31);
    }

    #[test]
    fn rr_errors() {
        assert_eq!(
            ReceiverReport::parse(&[0x80, 200, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::UnknownType(200))
        );
        assert_eq!(
            ReceiverReport::parse(&[0x81, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::BadReportCount)
        );
        assert_eq!(
            ReceiverReport::parse(&[0x80, 201, 0, 0]),
            Err(RtcpError::TooShort)
        );
        assert_eq!(
            ReceiverReport::parse(&[0x80, 201, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtcpError::LengthMismatch)
        );
    }
}
