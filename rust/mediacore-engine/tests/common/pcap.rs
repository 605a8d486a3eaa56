//! Reading whole RTP packets, with their capture times, out of a classic pcap (Ethernet /
//! Linux cooked, IPv4/UDP): SIPp's captures replayed into a session.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// SIPp's G.711 A-law speech: 236 packets of 30 ms.
pub const SIPP_SPEECH: &str = "/usr/share/sip-tester/g711a.pcap";

/// One captured RTP packet: capture time (µs from the first record) and the RTP bytes.
pub struct Captured {
    pub time_us: u64,
    pub rtp: Vec<u8>,
}

/// The RTP packets of a classic little- or big-endian pcap, in capture order; `None` if the
/// file is missing or is not such a capture.
pub fn rtp_packets(path: &str) -> Option<Vec<Captured>> {
    let data = std::fs::read(path).ok()?;
    let le = match data.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        _ => return None,
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link_len = match u32_at(20)? {
        1 => 14,
        113 => 16,
        _ => return None,
    };
    let mut out = Vec::new();
    let mut first = None;
    let mut at = 24;
    while at + 16 <= data.len() {
        let t = u64::from(u32_at(at)?) * 1_000_000 + u64::from(u32_at(at + 4)?);
        let incl = u32_at(at + 8)? as usize;
        let frame = data.get(at + 16..at + 16 + incl)?;
        at += 16 + incl;
        let Some(ip) = frame.get(link_len..) else {
            continue;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let Some(rtp) = ip.get(ihl + 8..total) else {
            continue;
        };
        if rtp.len() < 12 || rtp[0] >> 6 != 2 {
            continue;
        }
        let t0 = *first.get_or_insert(t);
        out.push(Captured {
            time_us: t - t0,
            rtp: rtp.to_vec(),
        });
    }
    Some(out)
}
