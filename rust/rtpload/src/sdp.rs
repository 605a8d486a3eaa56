//! The two SDP operations rtpload needs: write a one-stream PCMA offer/answer, and read the
//! media address (c= plus m= port) out of the SDP an engine returns.

use std::net::{IpAddr, SocketAddr};

/// SDP for one audio stream at `addr`: PCMA plus RFC 4733 telephone-events, 20 ms packets.
pub fn audio_sdp(addr: SocketAddr, session_id: u64) -> String {
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
         m=audio {port} RTP/AVP 8 101\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_its_own_sdp() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 20002));
        assert_eq!(audio_destination(&audio_sdp(addr, 1)), Ok(addr));
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
