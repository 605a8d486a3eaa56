//! Source description (RFC 3550 §6.5).
//!
//! Each chunk is an SSRC followed by items `(type, length, text)` and ends
//! with at least one zero octet (the END item), padded to a 32-bit boundary.

use super::{be32, begin_packet, finish_packet, typed_packet, RtcpError, RTCP_SDES};

/// Item type that terminates a chunk's item list.
pub const SDES_END: u8 = 0;
/// Canonical end-point identifier, the one item every RTCP packet should carry.
pub const SDES_CNAME: u8 = 1;

/// Most chunks one SDES can carry: SC is 5 bits.
const MAX_CHUNKS: usize = 31;

/// One source's items: `(item type, value)`.
pub type SdesItems = Vec<(u8, Vec<u8>)>;

/// SDES: descriptive items per source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdes {
    /// `(ssrc, items)` per chunk, in wire order.
    pub chunks: Vec<(u32, SdesItems)>,
}

impl Sdes {
    /// Decodes one SDES packet (exactly `buf`).
    ///
    /// Errors: more chunks announced than fit -> `BadReportCount`; an item
    /// running past the packet or a chunk without its END -> `LengthMismatch`.
    pub fn parse(buf: &[u8]) -> Result<Self, RtcpError> {
        let (hdr, body) = typed_packet(buf, RTCP_SDES)?;
        let mut chunks = Vec::with_capacity(usize::from(hdr.count));
        let mut at = 0;
        for _ in 0..hdr.count {
            if at + 4 > body.len() {
                return Err(RtcpError::BadReportCount);
            }
            let ssrc = be32(body, at);
            at += 4;
            let mut items = Vec::new();
            loop {
                match body.get(at).copied() {
                    None => return Err(RtcpError::LengthMismatch),
                    Some(SDES_END) => break,
                    Some(kind) => {
                        let len = usize::from(*body.get(at + 1).ok_or(RtcpError::LengthMismatch)?);
                        let value = body
                            .get(at + 2..at + 2 + len)
                            .ok_or(RtcpError::LengthMismatch)?;
                        items.push((kind, value.to_vec()));
                        at += 2 + len;
                    }
                }
            }
            // Skip END and the null octets that pad the chunk to 32 bits;
            // the body starts 4 bytes into the packet, so alignment is the same.
            at = (at + 4) & !3;
            chunks.push((ssrc, items));
        }
        Ok(Sdes { chunks })
    }

    /// Appends the packet to `out`. Only the first 31 chunks fit (SC is 5 bits);
    /// values longer than 255 bytes are truncated; items of type END are skipped.
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = begin_packet(out);
        let chunks = self.chunks.get(..MAX_CHUNKS).unwrap_or(&self.chunks);
        for (ssrc, items) in chunks {
            out.extend_from_slice(&ssrc.to_be_bytes());
            for (kind, value) in items.iter().filter(|(k, _)| *k != SDES_END) {
                let value = value.get(..255).unwrap_or(value);
                out.push(*kind);
                out.push(value.len() as u8);
                out.extend_from_slice(value);
            }
            out.push(SDES_END);
            while (out.len() - start) % 4 != 0 {
                out.push(0);
            }
        }
        finish_packet(out, start, chunks.len() as u8, RTCP_SDES);
    }

    /// Convenience: one chunk carrying only a CNAME.
    pub fn cname(ssrc: u32, cname: &[u8]) -> Self {
        Sdes {
            chunks: vec![(ssrc, vec![(SDES_CNAME, cname.to_vec())])],
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::rtcp::parse_compound;

    #[test]
    fn cname_wire_form() {
        let mut out = Vec::new();
        Sdes::cname(0x0102_0304, b"ab").write(&mut out);
        assert_eq!(
            out,
            [0x81, 202, 0, 3, 1, 2, 3, 4, 1, 2, b'a', b'b', 0, 0, 0, 0]
        );
        assert_eq!(Sdes::parse(&out).unwrap(), Sdes::cname(0x0102_0304, b"ab"));
    }

    #[test]
    fn round_trip_several_chunks() {
        let sdes = Sdes {
            chunks: vec![
                (
                    1,
                    vec![(SDES_CNAME, b"user@host".to_vec()), (6, b"tool".to_vec())],
                ),
                (2, vec![]),
                (3, vec![(SDES_CNAME, vec![b'x'; 255])]),
            ],
        };
        let mut out = Vec::new();
        sdes.write(&mut out);
        assert_eq!(out.len() % 4, 0);
        assert_eq!(parse_compound(&out).unwrap().sender_ssrc, Some(1));
        assert_eq!(Sdes::parse(&out).unwrap(), sdes);
    }

    #[test]
    fn long_value_is_truncated() {
        let mut out = Vec::new();
        Sdes::cname(1, &[b'y'; 300]).write(&mut out);
        let back = Sdes::parse(&out).unwrap();
        assert_eq!(back.chunks[0].1[0].1.len(), 255);
    }

    #[test]
    fn errors() {
        // SC=2 but only one chunk present.
        let p = [0x82, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(Sdes::parse(&p), Err(RtcpError::BadReportCount));
        // Item length runs past the packet.
        let p = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'];
        assert_eq!(Sdes::parse(&p), Err(RtcpError::LengthMismatch));
        // No END octet.
        let p = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
        assert_eq!(Sdes::parse(&p), Err(RtcpError::LengthMismatch));
    }
}
