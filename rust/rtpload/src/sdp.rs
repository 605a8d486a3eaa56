//! The SDP operations rtpload needs: write a one-stream PCMA or G.729 offer/answer, read the
//! media address (c= plus m= port) out of the SDP an engine returns, and check which codecs
//! that SDP offers.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcma,
    G729,
}

/// SDP for one audio stream at `addr` offering only `codec` (PCMA, or G.729 without Annex B)
/// plus RFC 4733 telephone-events, 20 ms packets.
pub fn codec_sdp(addr: SocketAddr, session_id: u64, codec: Codec) -> String {
    let (payload_type, rtpmap) = match codec {
        Codec::Pcma => (8, "a=rtpmap:8 PCMA/8000\r\n"),
        Codec::G729 => (18, "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n"),
    };
    let (family, ip) = match addr.ip() {
        IpAddr::V4(ip) => ("IP4", ip.to_string()),
        IpAddr::V6(ip) => ("IP6", ip.to_string()),
    };
    let port = addr.port();
    format!(
        "v=0\r\n\
         o=rtpload {session_id} 1 IN {family} {ip}\r\n\
         s=rtpload\r\n\
         c=IN {family} {ip}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP {payload_type} 101\r\n\
         {rtpmap}\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=sendrecv\r\n\
         a=ptime:20\r\n"
    )
}

/// Where the first audio stream of `sdp` wants its RTP: the media-level c= if present, else
/// the session-level one, and the m=audio port.
pub fn audio_destination(sdp: &str) -> Result<SocketAddr, String> {
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            if port.is_some() {
                break; // only the first audio stream matters
            }
            let mut fields = rest.split_whitespace();
            if fields.next() == Some("audio") {
                let text = fields.next().unwrap_or("");
                port = Some(text.parse().map_err(|_| format!("bad m= port {text:?}"))?);
            }
        } else if let Some(rest) = line.strip_prefix("c=") {
            let text = rest.split_whitespace().nth(2).unwrap_or("");
            let text = text.split('/').next().unwrap_or(""); // multicast TTL suffix
            let ip: IpAddr = text
                .parse()
                .map_err(|_| format!("bad c= address {text:?}"))?;
            if port.is_some() {
                media_ip = Some(ip);
            } else {
                session_ip = Some(ip);
            }
        }
    }
    let port = port.ok_or("no m=audio line in SDP")?;
    let ip = media_ip.or(session_ip).ok_or("no c= line in SDP")?;
    Ok(SocketAddr::new(ip, port))
}

/// Whether the first audio stream of `sdp` lists a payload format with encoding `name`
/// (case-insensitive): by its a=rtpmap, or by its static payload type if it has none.
pub fn offers_codec(sdp: &str, name: &str) -> bool {
    let mut formats: Vec<&str> = Vec::new();
    let mut rtpmaps: Vec<(&str, &str)> = Vec::new();
    let mut in_audio = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            if in_audio {
                break;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.first() == Some(&"audio") {
                in_audio = true;
                formats = fields.get(3..).unwrap_or_default().to_vec();
            }
        } else if let Some(rest) = line.strip_prefix("a=rtpmap:").filter(|_| in_audio) {
            let mut fields = rest.split_whitespace();
            if let (Some(pt), Some(encoding)) = (fields.next(), fields.next()) {
                rtpmaps.push((pt, encoding.split('/').next().unwrap_or("")));
            }
        }
    }
    formats.iter().any(|pt| {
        let encoding = rtpmaps
            .iter()
            .find(|(p, _)| p == pt)
            .map(|(_, e)| *e)
            .or(match *pt {
                "0" => Some("PCMU"),
                "8" => Some("PCMA"),
                "18" => Some("G729"),
                _ => None,
            });
        encoding.is_some_and(|e| e.eq_ignore_ascii_case(name))
    })
}

/// The first audio m= line of `sdp`, for error messages.
pub fn audio_line(sdp: &str) -> &str {
    sdp.lines()
        .map(str::trim_end)
        .find(|l| l.starts_with("m=audio"))
        .unwrap_or("no m=audio line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_its_own_sdp() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 20002));
        assert_eq!(
            audio_destination(&codec_sdp(addr, 1, Codec::Pcma)),
            Ok(addr)
        );
    }

    #[test]
    fn knows_its_codecs() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 20002));
        let g729 = codec_sdp(addr, 1, Codec::G729);
        assert!(g729.contains("m=audio 20002 RTP/AVP 18 101\r\n"));
        assert!(g729.contains("a=fmtp:18 annexb=no\r\n"));
        assert!(offers_codec(&g729, "g729"));
        assert!(!offers_codec(&g729, "PCMA"));
        assert!(offers_codec(&codec_sdp(addr, 1, Codec::Pcma), "PCMA"));
        // Static payload type without rtpmap; rtpmap of a format not listed does not count.
        assert!(offers_codec("m=audio 1 RTP/AVP 18\r\n", "G729"));
        assert!(!offers_codec(
            "m=audio 1 RTP/AVP 8\r\na=rtpmap:96 G729/8000\r\n",
            "G729"
        ));
        assert!(offers_codec(
            "m=audio 1 RTP/AVP 8 96\r\na=rtpmap:96 G729/8000\r\n",
            "G729"
        ));
        assert_eq!(audio_line(&g729), "m=audio 20002 RTP/AVP 18 101");
    }

    #[test]
    fn media_level_connection_wins() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\nc=IN IP4 127.0.0.2\r\n\
                   m=audio 5000 RTP/AVP 0\r\nc=IN IP4 127.0.0.3\r\n";
        assert_eq!(
            audio_destination(sdp),
            Ok(SocketAddr::from(([127, 0, 0, 2], 4000)))
        );
    }

    #[test]
    fn reports_missing_parts() {
        assert!(audio_destination("v=0\r\nc=IN IP4 1.2.3.4\r\n").is_err());
        assert!(audio_destination("v=0\r\nm=audio 1 RTP/AVP 8\r\n").is_err());
        assert!(audio_destination("c=IN IP4 nope\r\nm=audio 1 RTP/AVP 8\r\n").is_err());
    }
}
