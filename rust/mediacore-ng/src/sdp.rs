//! An SDP (RFC 4566) model made for rewriting, not for generating.
//!
//! A media relay has to change a handful of lines in the offer and answer it relays (`c=`, the
//! `m=` port, `a=rtcp`) and must pass everything else through byte for byte: codecs, fmtp,
//! ptime, crypto, bandwidth and vendor attributes are the endpoints' business. So [`Sdp`] keeps
//! the original lines and line ending and remembers *where* the interesting lines are; the
//! parsed facts ([`Media`]) are what the command layer turns into leg specs, and
//! [`Sdp::rewrite`] produces the relayed body.
//!
//! Line endings: what came in goes out (CRLF or LF); a body mixing both is normalised to CRLF,
//! which RFC 4566 mandates.

mod formats;
mod rewrite;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use formats::{FormatEdit, FormatEntry};
pub use rewrite::{LocalMedia, RewriteOptions};

/// Stream direction attribute (RFC 4566 §6; `sendrecv` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attribute(a: &str) -> Option<Direction> {
        match a {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u32>,
}

/// One `m=` section, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// `audio`, `video`, `application`, ...
    pub kind: String,
    /// 0 means the stream is rejected or disabled: no session is created for it.
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    pub formats: Vec<String>,
    /// The media-level `c=` address, if any.
    pub connection: Option<IpAddr>,
    /// `a=rtcp:<port> [IN IP4|IP6 <addr>]`
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    pub rtcp_mux: bool,
    /// Effective direction: media-level attribute, else session-level, else sendrecv.
    pub direction: Direction,
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp:<pt> <parameters>`, per payload type.
    pub fmtps: Vec<(u8, String)>,
    /// Every payload-type-specific attribute line (`a=rtpmap`, `a=fmtp`, `a=rtcp-fb` naming a
    /// numeric payload type), verbatim and in order: what travels with a codec when it is copied
    /// into another SDP.
    pub format_lines: Vec<(u8, String)>,
    /// `a=ptime` in ms: media level, else session level.
    pub ptime: Option<u32>,
    /// Where the party receives RTP: media `c=` else session `c=`, with the `m=` port. `None`
    /// when the port is 0 or the address is unspecified (`0.0.0.0`/`::`, RFC 2543 hold).
    pub remote_rtp: Option<SocketAddr>,
    /// Where the party receives RTCP: `a=rtcp`, else the RTP port + 1 (RFC 3550 §11).
    pub remote_rtcp: Option<SocketAddr>,
    /// The party does not want to receive: sendonly, inactive, or an unspecified address.
    pub hold: bool,
    /// Line index of the `m=` line and one past the section's last line.
    m_line: usize,
    end: usize,
    /// The connection address in effect is unspecified (old-style hold).
    zero_address: bool,
    /// A direction attribute in this section (overrides the session-level one).
    own_direction: Option<Direction>,
}

/// The payload type a payload-type-specific attribute line is about (`a=rtpmap:`, `a=fmtp:`,
/// `a=rtcp-fb:` followed by a number); `None` for every other line, including `a=rtcp-fb:*`.
pub(crate) fn format_line_pt(line: &str) -> Option<u8> {
    let attr = line.strip_prefix("a=")?;
    let rest = ["rtpmap:", "fmtp:", "rtcp-fb:"]
        .iter()
        .find_map(|p| attr.strip_prefix(p))?;
    rest.split([' ', '\t']).next()?.trim().parse().ok()
}

/// `a=ptime:<ms>` (fractions are rounded; RFC 4566 allows them).
fn parse_ptime(v: &str) -> Option<u32> {
    let ms: f64 = v.trim().parse().ok()?;
    (ms.is_finite() && ms > 0.0 && ms < 10_000.0).then(|| ms.round() as u32)
}

impl Media {
    /// RTP clock rates from `a=rtpmap` (payload types 0..=127 with a non-zero rate).
    pub fn clock_rates(&self) -> Vec<(u8, u32)> {
        self.rtpmaps
            .iter()
            .filter(|m| m.payload_type <= 127 && m.clock_rate > 0)
            .map(|m| (m.payload_type, m.clock_rate))
            .collect()
    }

    /// False for a rejected or disabled stream (`m=` port 0).
    pub fn is_enabled(&self) -> bool {
        self.port != 0
    }
}

/// Why a body is not SDP we can relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// Not text, or no `v=` line first.
    NotSdp(String),
    /// Not a single `m=` line.
    NoMedia,
    /// Media section `index` (0-based) has no connection address at media or session level.
    NoConnection(usize),
    /// An unparsable port in the quoted line.
    BadPort(String),
    /// An unparsable or non-IP address in the quoted line (hostnames are not resolved).
    BadAddress(String),
    /// Something valid SDP may say but this relay does not support (e.g. `m=` port counts).
    Unsupported(String),
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdpError::NotSdp(why) => write!(f, "not SDP: {why}"),
            SdpError::NoMedia => write!(f, "SDP without media"),
            SdpError::NoConnection(i) => write!(f, "media section {i} has no connection address"),
            SdpError::BadPort(line) => write!(f, "bad port in \"{line}\""),
            SdpError::BadAddress(line) => write!(f, "bad address in \"{line}\""),
            SdpError::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for SdpError {}

/// A parsed SDP body that remembers its lines for rewriting.
#[derive(Debug, Clone, PartialEq)]
pub struct Sdp {
    lines: Vec<String>,
    crlf: bool,
    /// The body ended with a line ending (almost always true).
    final_eol: bool,
    /// Session-level `c=` address and its line index.
    session_connection: Option<(usize, IpAddr)>,
    origin_line: Option<usize>,
    pub media: Vec<Media>,
}

impl Sdp {
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text =
            std::str::from_utf8(body).map_err(|_| SdpError::NotSdp("not UTF-8 text".into()))?;
        let (lines, crlf, final_eol) = split_lines(text);
        if !lines.first().is_some_and(|l| l.starts_with("v=")) {
            return Err(SdpError::NotSdp("no v= line".into()));
        }
        let mut sdp = Sdp {
            lines,
            crlf,
            final_eol,
            session_connection: None,
            origin_line: None,
            media: Vec::new(),
        };
        let mut session_direction = None;
        let mut session_ptime = None;
        for (i, line) in sdp.lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("m=") {
                if let Some(prev) = sdp.media.last_mut() {
                    prev.end = i;
                }
                sdp.media.push(parse_m_line(rest, line, i)?);
                continue;
            }
            match sdp.media.last_mut() {
                None => {
                    if let Some(rest) = line.strip_prefix("c=") {
                        sdp.session_connection = Some((i, parse_connection(rest, line)?));
                    } else if line.starts_with("o=") {
                        sdp.origin_line = Some(i);
                    } else if let Some(d) =
                        line.strip_prefix("a=").and_then(Direction::from_attribute)
                    {
                        session_direction = Some(d);
                    } else if let Some(v) = line.strip_prefix("a=ptime:") {
                        session_ptime = parse_ptime(v);
                    }
                }
                Some(m) => parse_media_line(m, line)?,
            }
        }
        if sdp.media.is_empty() {
            return Err(SdpError::NoMedia);
        }
        let total = sdp.lines.len();
        if let Some(last) = sdp.media.last_mut() {
            last.end = total;
        }
        let session_addr = sdp.session_connection.map(|(_, a)| a);
        for (index, m) in sdp.media.iter_mut().enumerate() {
            m.ptime = m.ptime.or(session_ptime);
            derive(m, index, session_addr, session_direction)?;
        }
        Ok(sdp)
    }

    /// The line ending used on output.
    fn eol(&self) -> &'static str {
        if self.crlf {
            "\r\n"
        } else {
            "\n"
        }
    }
}

/// Splits into lines without their endings. Returns the lines, whether to write CRLF (unless
/// every terminated line used a bare LF), and whether the body ended with a line ending.
fn split_lines(text: &str) -> (Vec<String>, bool, bool) {
    let final_eol = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let raw: Vec<&str> = body.split('\n').collect();
    let terminated = if final_eol {
        raw.len()
    } else {
        raw.len().saturating_sub(1)
    };
    let crlf_count = raw[..terminated]
        .iter()
        .filter(|l| l.ends_with('\r'))
        .count();
    let crlf = !(crlf_count == 0 && terminated > 0);
    let lines = raw
        .iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    (lines, crlf, final_eol)
}

fn parse_m_line(rest: &str, line: &str, index: usize) -> Result<Media, SdpError> {
    let mut fields = rest.split_whitespace();
    let kind = fields
        .next()
        .ok_or_else(|| SdpError::BadPort(line.to_string()))?;
    let port_field = fields
        .next()
        .ok_or_else(|| SdpError::BadPort(line.to_string()))?;
    let (port_text, count) = match port_field.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port_field, None),
    };
    let port: u16 = port_text
        .parse()
        .map_err(|_| SdpError::BadPort(line.to_string()))?;
    if let Some(count) = count {
        match count.parse::<u32>() {
            Ok(1) => {}
            Ok(_) => return Err(SdpError::Unsupported(format!("port count in \"{line}\""))),
            Err(_) => return Err(SdpError::BadPort(line.to_string())),
        }
    }
    let proto = fields.next().unwrap_or_default().to_string();
    Ok(Media {
        kind: kind.to_string(),
        port,
        proto,
        formats: fields.map(str::to_string).collect(),
        connection: None,
        rtcp: None,
        rtcp_mux: false,
        direction: Direction::SendRecv,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        format_lines: Vec::new(),
        ptime: None,
        remote_rtp: None,
        remote_rtcp: None,
        hold: false,
        m_line: index,
        end: index + 1,
        zero_address: false,
        own_direction: None,
    })
}

/// A media-level line.
fn parse_media_line(m: &mut Media, line: &str) -> Result<(), SdpError> {
    if let Some(rest) = line.strip_prefix("c=") {
        // Several c= lines (layered multicast) are not relayable; the first one counts.
        if m.connection.is_none() {
            m.connection = Some(parse_connection(rest, line)?);
        }
        return Ok(());
    }
    let Some(attr) = line.strip_prefix("a=") else {
        return Ok(());
    };
    if let Some(pt) = format_line_pt(line) {
        m.format_lines.push((pt, line.to_string()));
    }
    if let Some(d) = Direction::from_attribute(attr) {
        m.own_direction = Some(d);
    } else if attr == "rtcp-mux" {
        m.rtcp_mux = true;
    } else if let Some(v) = attr.strip_prefix("rtcp:") {
        m.rtcp = Some(parse_rtcp(v, line)?);
    } else if let Some(v) = attr.strip_prefix("rtpmap:") {
        // A malformed rtpmap does not stop relaying; it only loses a clock rate.
        if let Some(map) = parse_rtpmap(v) {
            m.rtpmaps.push(map);
        }
    } else if let Some(v) = attr.strip_prefix("fmtp:") {
        if let Some((pt, params)) = v.split_once(' ') {
            if let Ok(pt) = pt.trim().parse() {
                m.fmtps.push((pt, params.trim().to_string()));
            }
        }
    } else if let Some(v) = attr.strip_prefix("ptime:") {
        m.ptime = parse_ptime(v);
    }
    Ok(())
}

/// `IN IP4 <addr>[/ttl[/count]]`
fn parse_connection(rest: &str, line: &str) -> Result<IpAddr, SdpError> {
    let mut f = rest.split_whitespace();
    let bad = || SdpError::BadAddress(line.to_string());
    let (Some(_net), Some(_addrtype), Some(addr)) = (f.next(), f.next(), f.next()) else {
        return Err(bad());
    };
    let addr = addr.split('/').next().unwrap_or(addr);
    addr.parse().map_err(|_| bad())
}

/// `<port> [IN IP4|IP6 <addr>]` (RFC 3605)
fn parse_rtcp(v: &str, line: &str) -> Result<(u16, Option<IpAddr>), SdpError> {
    let mut f = v.split_whitespace();
    let port = f
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| SdpError::BadPort(line.to_string()))?;
    let addr = match (f.next(), f.next(), f.next()) {
        (None, _, _) => None,
        (Some(_), Some(_), Some(a)) => Some(
            a.parse()
                .map_err(|_| SdpError::BadAddress(line.to_string()))?,
        ),
        _ => return Err(SdpError::BadAddress(line.to_string())),
    };
    Ok((port, addr))
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.split_once(' ')?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.to_string();
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = parts.next().and_then(|c| c.parse().ok());
    Some(RtpMap {
        payload_type: pt.trim().parse().ok()?,
        encoding,
        clock_rate,
        channels,
    })
}

/// Fills the derived fields: effective direction, remote addresses, hold.
fn derive(
    m: &mut Media,
    index: usize,
    session_addr: Option<IpAddr>,
    session_direction: Option<Direction>,
) -> Result<(), SdpError> {
    m.direction = m
        .own_direction
        .or(session_direction)
        .unwrap_or(Direction::SendRecv);
    if m.port == 0 {
        return Ok(());
    }
    let addr = m
        .connection
        .or(session_addr)
        .ok_or(SdpError::NoConnection(index))?;
    m.zero_address = addr.is_unspecified();
    m.hold = m.zero_address || matches!(m.direction, Direction::SendOnly | Direction::Inactive);
    if !m.zero_address {
        m.remote_rtp = Some(SocketAddr::new(addr, m.port));
        m.remote_rtcp = match m.rtcp {
            Some((port, rtcp_addr)) => Some(SocketAddr::new(rtcp_addr.unwrap_or(addr), port)),
            None => m.port.checked_add(1).map(|p| SocketAddr::new(addr, p)),
        };
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn parses_a_basic_offer() {
        let sdp = Sdp::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(sdp.media.len(), 1);
        let m = &sdp.media[0];
        assert_eq!(m.kind, "audio");
        assert_eq!(m.port, 4000);
        assert_eq!(m.proto, "RTP/AVP");
        assert_eq!(m.formats, vec!["8", "101"]);
        assert_eq!(m.remote_rtp, Some("10.0.0.1:4000".parse().unwrap()));
        assert_eq!(m.remote_rtcp, Some("10.0.0.1:4001".parse().unwrap()));
        assert_eq!(m.direction, Direction::SendRecv);
        assert!(!m.hold);
        assert_eq!(m.clock_rates(), vec![(8, 8000), (101, 8000)]);
        assert!(sdp.crlf);
    }

    #[test]
    fn media_connection_and_rtcp_attribute() {
        let body = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\nc=IN IP4 10.0.0.2\n\
a=rtcp:5001 IN IP4 10.0.0.3\na=rtcp-mux\n";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        let m = &sdp.media[0];
        assert_eq!(m.remote_rtp, Some("10.0.0.2:4000".parse().unwrap()));
        assert_eq!(m.remote_rtcp, Some("10.0.0.3:5001".parse().unwrap()));
        assert!(m.rtcp_mux);
        assert!(!sdp.crlf);
        let body = "v=0\nm=audio 4000 RTP/AVP 0\nc=IN IP6 ::1\na=rtcp:4005\n";
        let m = &Sdp::parse(body.as_bytes()).unwrap().media[0];
        assert_eq!(m.remote_rtcp, Some("[::1]:4005".parse().unwrap()));
    }

    #[test]
    fn direction_and_hold() {
        let body = "v=0\nc=IN IP4 10.0.0.1\na=sendonly\nm=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 0\na=sendrecv\n\
m=audio 4004 RTP/AVP 0\na=recvonly\nm=audio 4006 RTP/AVP 0\nc=IN IP4 0.0.0.0\na=sendrecv\n";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        let d: Vec<_> = sdp.media.iter().map(|m| (m.direction, m.hold)).collect();
        assert_eq!(
            d,
            vec![
                (Direction::SendOnly, true),
                (Direction::SendRecv, false),
                (Direction::RecvOnly, false),
                (Direction::SendRecv, true),
            ]
        );
        assert_eq!(sdp.media[3].remote_rtp, None);
        let body = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=inactive\n";
        assert!(Sdp::parse(body.as_bytes()).unwrap().media[0].hold);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Sdp::parse(b"hello"),
            Err(SdpError::NotSdp("no v= line".into()))
        );
        assert_eq!(Sdp::parse(b""), Err(SdpError::NotSdp("no v= line".into())));
        assert_eq!(
            Sdp::parse(&[b'v', b'=', 0xff]),
            Err(SdpError::NotSdp("not UTF-8 text".into()))
        );
        assert_eq!(
            Sdp::parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\n"),
            Err(SdpError::NoMedia)
        );
        assert_eq!(
            Sdp::parse(b"v=0\nm=audio 4000 RTP/AVP 0\n"),
            Err(SdpError::NoConnection(0))
        );
        assert!(matches!(
            Sdp::parse(b"v=0\nc=IN IP4 x.example\nm=audio 4000 RTP/AVP 0\n"),
            Err(SdpError::BadAddress(_))
        ));
        assert!(matches!(
            Sdp::parse(b"v=0\nc=IN IP4 1.2.3.4\nm=audio 70000 RTP/AVP 0\n"),
            Err(SdpError::BadPort(_))
        ));
        assert!(matches!(
            Sdp::parse(b"v=0\nc=IN IP4 1.2.3.4\nm=audio 4000/2 RTP/AVP 0\n"),
            Err(SdpError::Unsupported(_))
        ));
        assert!(matches!(
            Sdp::parse(b"v=0\nc=IN IP4 1.2.3.4\nm=audio 4000 RTP/AVP 0\na=rtcp:x\n"),
            Err(SdpError::BadPort(_))
        ));
        assert_eq!(SdpError::NoMedia.to_string(), "SDP without media");
    }

    #[test]
    fn rejected_media_needs_no_connection() {
        let sdp = Sdp::parse(b"v=0\nm=audio 0 RTP/AVP 0\n").unwrap();
        assert!(!sdp.media[0].is_enabled());
        assert_eq!(sdp.media[0].remote_rtp, None);
        let sdp = Sdp::parse(b"v=0\nc=IN IP4 1.2.3.4\nm=audio 4000/1 RTP/AVP 0\n").unwrap();
        assert_eq!(sdp.media[0].port, 4000);
    }

    #[test]
    fn line_endings() {
        assert!(split_lines("a\r\nb\r\n").1);
        assert!(!split_lines("a\nb\n").1);
        assert!(split_lines("a\r\nb\n").1);
        assert!(!split_lines("a\nb").1);
        assert!(split_lines("a\r\nb").1);
        assert!(!split_lines("a\nb").2);
    }
}
