//! Real speech for transcode mode: the RTP/PCMA payloads of a classic pcap file (SIPp's
//! g711a.pcap by default), and the same speech encoded once as G.729 at start-up, so the
//! sender only copies bytes. Both clips hold one entry per 20 ms packet and are looped.

use crate::g729::{self, FRAME_BYTES, FRAME_SAMPLES};
use std::path::Path;

/// 20 ms of PCMA: 160 one-byte samples.
pub const PCMA_BYTES: usize = 160;
/// 20 ms of G.729: two 10-byte frames.
pub const G729_BYTES: usize = 2 * FRAME_BYTES;
const PAYLOAD_TYPE_PCMA: u8 = 8;
const PCMA_SILENCE: u8 = 0xD5;

pub struct Speech {
    pub pcma: Vec<[u8; PCMA_BYTES]>,
    pub g729: Vec<[u8; G729_BYTES]>,
    /// The PCMA clip decoded to linear, 160 samples per packet.
    pub linear: Vec<[i16; PCMA_BYTES]>,
}

impl Speech {
    /// Reads the PCMA packets of `path` and encodes them to G.729.
    pub fn load(path: &Path) -> Result<Speech, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let pcma = pcma_payloads(&data).map_err(|e| format!("{}: {e}", path.display()))?;
        Speech::from_pcma(pcma)
    }

    pub fn from_pcma(pcma: Vec<[u8; PCMA_BYTES]>) -> Result<Speech, String> {
        let linear: Vec<[i16; PCMA_BYTES]> = pcma
            .iter()
            .map(|packet| packet.map(alaw_to_linear))
            .collect();
        let mut encoder = g729::Encoder::new()?;
        let mut g729 = Vec::with_capacity(linear.len());
        for packet in &linear {
            let mut out = [0u8; G729_BYTES];
            for (samples, bits) in packet
                .chunks_exact(FRAME_SAMPLES)
                .zip(out.chunks_exact_mut(FRAME_BYTES))
            {
                let samples: &[i16; FRAME_SAMPLES] =
                    samples.try_into().map_err(|_| "frame split".to_string())?;
                let bits: &mut [u8; FRAME_BYTES] =
                    bits.try_into().map_err(|_| "frame split".to_string())?;
                let length = encoder.encode(samples, bits);
                if length != FRAME_BYTES {
                    return Err(format!("G.729 encoder returned {length} bytes, not 10"));
                }
            }
            g729.push(out);
        }
        Ok(Speech { pcma, g729, linear })
    }
}

/// ITU-T G.711 A-law to 16-bit linear.
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mantissa = i16::from(a & 0x0F) << 4;
    let segment = (a & 0x70) >> 4;
    let magnitude = match segment {
        0 => mantissa + 8,
        s => (mantissa + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// Link-layer header types of classic pcap files that we can unwrap to IPv4.
const LINKTYPE_NULL: u32 = 0;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_LINUX_SLL2: u32 = 276;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPPROTO_UDP: u8 = 17;

/// The PCMA speech of the first RTP stream (by SSRC, payload type 8) in a classic pcap file,
/// re-packetised to 20 ms (160 bytes; SIPp's g711a.pcap has 30 ms packets). Payloads are
/// concatenated in file order; a gap in RTP timestamps is filled with A-law silence, and a
/// trailing part shorter than 20 ms is dropped. Everything that is not IPv4/UDP/RTP is skipped.
pub fn pcma_payloads(data: &[u8]) -> Result<Vec<[u8; PCMA_BYTES]>, String> {
    let header = data.get(..24).ok_or("shorter than a pcap header")?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let little = match magic {
        0xA1B2_C3D4 | 0xA1B2_3C4D => true,
        0xD4C3_B2A1 | 0x4D3C_B2A1 => false,
        _ => return Err("not a classic pcap file (pcapng is not supported)".into()),
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    };
    let link_type = u32_at(header, 20).ok_or("pcap header")? & 0x0FFF_FFFF;
    let mut samples: Vec<u8> = Vec::new();
    let mut stream_ssrc = None;
    let mut next_timestamp: Option<u32> = None;
    let mut offset = 24;
    while offset < data.len() {
        let record = data
            .get(offset..offset + 16)
            .ok_or("truncated record header")?;
        let captured = u32_at(record, 8).ok_or("record header")? as usize;
        let frame = data
            .get(offset + 16..offset + 16 + captured)
            .ok_or("truncated packet")?;
        offset += 16 + captured;
        let Some(rtp) = link_to_ipv4(link_type, frame)?
            .and_then(ipv4_udp_payload)
            .and_then(Rtp::parse)
        else {
            continue;
        };
        if rtp.payload_type != PAYLOAD_TYPE_PCMA || *stream_ssrc.get_or_insert(rtp.ssrc) != rtp.ssrc
        {
            continue;
        }
        if let Some(expected) = next_timestamp {
            // A forward jump of up to a second is a gap (lost or silence-suppressed packets).
            let gap = rtp.timestamp.wrapping_sub(expected);
            if gap < 8000 {
                samples.resize(samples.len() + gap as usize, PCMA_SILENCE);
            }
        }
        next_timestamp = Some(rtp.timestamp.wrapping_add(rtp.payload.len() as u32));
        samples.extend_from_slice(rtp.payload);
    }
    let packets: Vec<[u8; PCMA_BYTES]> = samples
        .chunks_exact(PCMA_BYTES)
        .filter_map(|c| c.try_into().ok())
        .collect();
    if packets.is_empty() {
        return Err("no RTP/PCMA (payload type 8) speech found".into());
    }
    Ok(packets)
}

/// The IPv4 packet inside a link-layer frame; `None` for other network protocols.
fn link_to_ipv4(link_type: u32, frame: &[u8]) -> Result<Option<&[u8]>, String> {
    let ethertype = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ipv4_after = |at: usize, proto: Option<u16>| {
        (proto == Some(ETHERTYPE_IPV4))
            .then(|| frame.get(at..))
            .flatten()
    };
    Ok(match link_type {
        LINKTYPE_ETHERNET => match ethertype(12) {
            Some(ETHERTYPE_VLAN) => ipv4_after(18, ethertype(16)),
            proto => ipv4_after(14, proto),
        },
        LINKTYPE_LINUX_SLL => ipv4_after(16, ethertype(14)),
        LINKTYPE_LINUX_SLL2 => ipv4_after(20, ethertype(0)),
        LINKTYPE_RAW => frame.first().filter(|&&b| b >> 4 == 4).map(|_| frame),
        // BSD loopback: a 4-byte address family in host order; AF_INET is 2 everywhere.
        LINKTYPE_NULL => frame
            .get(..4)
            .filter(|f| f == &[2, 0, 0, 0] || f == &[0, 0, 0, 2])
            .and_then(|_| frame.get(4..)),
        other => return Err(format!("unsupported pcap link type {other}")),
    })
}

/// The UDP payload of an unfragmented IPv4/UDP packet.
fn ipv4_udp_payload(ip: &[u8]) -> Option<&[u8]> {
    let version_ihl = *ip.first()?;
    let header_len = usize::from(version_ihl & 0x0F) * 4;
    let total_len = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3FFF;
    if version_ihl >> 4 != 4 || header_len < 20 || fragment != 0 || *ip.get(9)? != IPPROTO_UDP {
        return None;
    }
    let ip = ip.get(..total_len)?;
    let udp = ip.get(header_len..)?;
    let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    udp.get(8..udp_len)
}

/// The fields of an RTP packet that rtpload reads.
pub struct Rtp<'a> {
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl Rtp<'_> {
    /// Parses an RTP packet, skipping CSRCs, header extension and padding.
    pub fn parse(rtp: &[u8]) -> Option<Rtp<'_>> {
        let first = *rtp.first()?;
        if first >> 6 != 2 {
            return None;
        }
        let mut start = 12 + 4 * usize::from(first & 0x0F);
        if first & 0x10 != 0 {
            let words = rtp.get(start + 2..start + 4)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        let mut end = rtp.len();
        if first & 0x20 != 0 {
            end = end.checked_sub(usize::from(*rtp.last()?))?;
        }
        Some(Rtp {
            payload_type: *rtp.get(1)? & 0x7F,
            seq: u16::from_be_bytes(rtp.get(2..4)?.try_into().ok()?),
            timestamp: u32::from_be_bytes(rtp.get(4..8)?.try_into().ok()?),
            ssrc: u32::from_be_bytes(rtp.get(8..12)?.try_into().ok()?),
            payload: rtp.get(start..end)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, ssrc: u32, timestamp: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1];
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
        let total = (20 + 8 + payload.len()) as u16;
        let mut p = vec![0x45, 0x10];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[
            0,
            0,
            0x40,
            0,
            64,
            IPPROTO_UDP,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ]);
        p.extend_from_slice(&[0x13, 0x88, 0x07, 0xD6]);
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    fn pcap(link_type: u32, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        f.extend_from_slice(&[2, 0, 4, 0]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&link_type.to_le_bytes());
        for frame in frames {
            f.extend_from_slice(&[0; 8]);
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(frame);
        }
        f
    }

    #[test]
    fn decodes_alaw() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn reads_ethernet_and_cooked_captures() {
        let ethernet = |ip: Vec<u8>| [vec![0; 12], vec![0x08, 0x00], ip].concat();
        // 30 ms packets as in SIPp's clip; one packet (ts 480) missing; other streams ignored.
        let file = pcap(
            LINKTYPE_ETHERNET,
            &[
                ethernet(ipv4_udp(&rtp(8, 7, 0, &[1; 240]))),
                ethernet(ipv4_udp(&rtp(0, 7, 240, &[2; 240]))), // PCMU: skipped
                ethernet(ipv4_udp(&rtp(8, 9, 240, &[3; 240]))), // another SSRC: skipped
                ethernet(ipv4_udp(&rtp(8, 7, 240, &[4; 240]))),
                ethernet(ipv4_udp(&rtp(8, 7, 720, &[5; 250]))),
            ],
        );
        let packets = pcma_payloads(&file).unwrap_or_default();
        let samples: Vec<u8> = packets.iter().flatten().copied().collect();
        assert_eq!(samples.len(), 960); // 240 + 240 + 240 silence + 250, cut to 6 × 160
        assert_eq!((samples[0], samples[239], samples[240]), (1, 1, 4));
        assert_eq!(
            (samples[480], samples[719], samples[720]),
            (PCMA_SILENCE, PCMA_SILENCE, 5)
        );
        let cooked = [
            vec![0; 14],
            vec![0x08, 0x00],
            ipv4_udp(&rtp(8, 1, 0, &[6; 160])),
        ]
        .concat();
        let payloads = pcma_payloads(&pcap(LINKTYPE_LINUX_SLL, &[cooked]));
        assert_eq!(payloads.map(|p| p.len()), Ok(1));
        assert!(pcma_payloads(&pcap(LINKTYPE_ETHERNET, &[])).is_err());
        assert!(pcma_payloads(b"not a pcap file at all, no").is_err());
    }

    #[test]
    fn parses_rtp_with_csrc_extension_and_padding() {
        let mut p = vec![0xB1, 0x88, 0x12, 0x34, 0, 0, 1, 0, 0, 0, 0, 9];
        p.extend_from_slice(&[0; 4]); // one CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0, 0, 0, 0]); // extension, one word
        p.extend_from_slice(&[7, 7, 7, 0, 2]); // payload 7 7 7, padding 2
        let rtp = Rtp::parse(&p);
        assert!(rtp.is_some_and(|r| r.payload_type == 8
            && r.seq == 0x1234
            && r.timestamp == 256
            && r.ssrc == 9
            && r.payload == [7, 7, 7]));
        assert!(Rtp::parse(&[0x40; 12]).is_none());
    }

    #[test]
    fn reads_sipp_clip() -> Result<(), String> {
        let path = Path::new(crate::args::DEFAULT_PCAP);
        if !path.exists() {
            return Ok(()); // SIPp not installed here
        }
        let speech = Speech::load(path)?;
        // 236 packets of 30 ms = 354 packets of 20 ms.
        assert_eq!(speech.pcma.len(), 354);
        assert_eq!(speech.g729.len(), speech.pcma.len());
        Ok(())
    }
}
