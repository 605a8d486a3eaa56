//! Test support: reading RTP out of packet captures (SIPp's speech and DTMF pcaps), shared by
//! the codec, DTMF, jitter-buffer and echo-canceller tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The RTP payloads of a classic (libpcap) capture of Ethernet/IPv4/UDP/RTP
/// packets, in capture order; `None` if the file is missing or not such a
/// capture. Non-RTP or non-IPv4 records are skipped.
pub(crate) fn pcap_rtp_payloads(path: &str) -> Option<Vec<Vec<u8>>> {
    Some(pcap_rtp(path)?.into_iter().map(|p| p.payload).collect())
}

/// One RTP packet of a capture: payload type, SSRC and payload (header, CSRCs, extension and
/// padding removed).
pub(crate) struct CapturedRtp {
    pub pt: u8,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// The RTP packets of a classic (libpcap) capture of Ethernet/IPv4/UDP/RTP, in capture order;
/// `None` if the file is missing or not such a capture. Other records are skipped.
pub(crate) fn pcap_rtp(path: &str) -> Option<Vec<CapturedRtp>> {
    let data = std::fs::read(path).ok()?;
    let u32_at = |b: &[u8], at: usize, le: bool| -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    };
    let le = match data.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        _ => return None,
    };
    if u32_at(&data, 20, le)? != 1 {
        return None; // not Ethernet
    }
    let mut packets = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let included = u32_at(&data, at + 8, le)? as usize;
        let frame = data.get(at + 16..at + 16 + included)?;
        at += 16 + included;
        if let Some(packet) = rtp_packet(frame) {
            packets.push(packet);
        }
    }
    Some(packets)
}

fn rtp_packet(frame: &[u8]) -> Option<CapturedRtp> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let header = usize::from(ip.first()? & 0x0f) * 4;
    if ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let udp = ip.get(header..total)?;
    let rtp = udp.get(8..)?;
    if rtp.first()? >> 6 != 2 {
        return None;
    }
    let mut start = 12 + 4 * usize::from(rtp[0] & 0x0f);
    if rtp[0] & 0x10 != 0 {
        let words = usize::from(u16::from_be_bytes([
            *rtp.get(start + 2)?,
            *rtp.get(start + 3)?,
        ]));
        start += 4 + 4 * words;
    }
    let mut end = rtp.len();
    if rtp[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*rtp.last()?))?;
    }
    Some(CapturedRtp {
        pt: rtp.get(1)? & 0x7f,
        ssrc: u32::from_be_bytes(rtp.get(8..12)?.try_into().ok()?),
        payload: rtp.get(start..end)?.to_vec(),
    })
}
