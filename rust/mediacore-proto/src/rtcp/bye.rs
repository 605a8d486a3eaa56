//! Goodbye (RFC 3550 §6.6): the listed sources are leaving, with an optional reason.

use super::{be32, begin_packet, finish_packet, typed_packet, RtcpError, RTCP_BYE};

/// Most sources one BYE can list: SC is 5 bits.
const MAX_SOURCES: usize = 31;

/// BYE packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bye {
    pub ssrcs: Vec<u32>,
    /// Reason for leaving (UTF-8 text on the wire, kept as bytes), at most 255 bytes.
    pub reason: Option<Vec<u8>>,
}

impl Bye {
    /// Decodes one BYE packet (exactly `buf`).
    ///
    /// Errors: more sources announced than fit -> `BadReportCount`; a reason
    /// length running past the packet -> `LengthMismatch`.
    pub fn parse(buf: &[u8]) -> Result<Self, RtcpError> {
        let (hdr, body) = typed_packet(buf, RTCP_BYE)?;
        let n = usize::from(hdr.count);
        if body.len() < 4 * n {
            return Err(RtcpError::BadReportCount);
        }
        let ssrcs = (0..n).map(|i| be32(body, 4 * i)).collect();
        let rest = body.get(4 * n..).unwrap_or(&[]);
        let reason = match rest.split_first() {
            None => None,
            Some((&len, text)) => Some(
                text.get(..usize::from(len))
                    .ok_or(RtcpError::LengthMismatch)?
                    .to_vec(),
            ),
        };
        Ok(Bye { ssrcs, reason })
    }

    /// Appends the packet to `out`. Only the first 31 sources fit (SC is 5
    /// bits); a reason longer than 255 bytes is truncated.
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = begin_packet(out);
        let ssrcs = self.ssrcs.get(..MAX_SOURCES).unwrap_or(&self.ssrcs);
        for s in ssrcs {
            out.extend_from_slice(&s.to_be_bytes());
        }
        if let Some(reason) = &self.reason {
            let reason = reason.get(..255).unwrap_or(reason);
            out.push(reason.len() as u8);
            out.extend_from_slice(reason);
        }
        finish_packet(out, start, ssrcs.len() as u8, RTCP_BYE);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::rtcp::parse_compound;

    #[test]
    fn round_trips() {
        for bye in [
            Bye::default(),
            Bye {
                ssrcs: vec![1, 2],
                reason: None,
            },
            Bye {
                ssrcs: vec![0xdead_beef],
                reason: Some(b"call ended".to_vec()),
            },
            Bye {
                ssrcs: vec![],
                reason: Some(vec![]),
            },
        ] {
            let mut out = Vec::new();
            bye.write(&mut out);
            assert_eq!(out.len() % 4, 0);
            assert!(parse_compound(&out).is_ok());
            assert_eq!(Bye::parse(&out).unwrap(), bye);
        }
    }

    #[test]
    fn wire_form() {
        let mut out = Vec::new();
        Bye {
            ssrcs: vec![5],
            reason: Some(b"bye".to_vec()),
        }
        .write(&mut out);
        assert_eq!(out, [0x81, 203, 0, 2, 0, 0, 0, 5, 3, b'b', b'y', b'e']);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Bye::parse(&[0x82, 203, 0, 1, 0, 0, 0, 5]),
            Err(RtcpError::BadReportCount)
        );
        assert_eq!(
            Bye::parse(&[0x81, 203, 0, 2, 0, 0, 0, 5, 9, b'b', b'y', b'e']),
            Err(RtcpError::LengthMismatch)
        );
    }
}
