//! Producing the relayed SDP: the same lines, with the relay's address and ports where the
//! party's were.
//!
//! Rules (see `docs/control-protocol.md`):
//! - `m=` port → our RTP port (port-0 sections and sections without a session are untouched);
//! - session-level `c=` and every media-level `c=` of a relayed section → our address, unless the
//!   address is unspecified (`0.0.0.0`, old-style hold), which is passed on so the hold survives;
//!   a relayed section without any `c=` in effect gets one inserted after its `m=` line;
//! - `a=rtcp` → `a=rtcp:<our RTCP port> IN IP4|IP6 <addr>`, inserted before the section's first
//!   attribute when absent;
//! - `a=rtcp-mux` / `a=rtcp-mux-only` removed: the relay offers separate RTCP ports;
//! - ICE attributes removed (the relay does not do ICE, and candidates would let the parties
//!   bypass it);
//! - `o=` address replaced only when asked; the session version is left alone.

use std::net::IpAddr;

use super::{Media, Sdp};

/// The relay's side of one media section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub rtp_port: u16,
    pub rtcp_port: u16,
}

/// Optional rewriting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewriteOptions {
    /// Strip ICE attributes (the default in the command layer).
    pub strip_ice: bool,
    /// Replace the `o=` address with this one.
    pub origin: Option<IpAddr>,
}

const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "end-of-candidates",
    "remote-candidates",
];

fn is_ice(line: &str) -> bool {
    line.strip_prefix("a=").is_some_and(|attr| {
        let name = attr.split([':', ' ']).next().unwrap_or(attr);
        ICE_ATTRIBUTES.contains(&name)
    })
}

fn is_rtcp_mux(line: &str) -> bool {
    line == "a=rtcp-mux" || line == "a=rtcp-mux-only"
}

fn addr_type(a: IpAddr) -> &'static str {
    match a {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn connection_line(a: IpAddr) -> String {
    format!("c=IN {} {a}", addr_type(a))
}

/// What a relayed section looks like on output.
struct Plan<'a> {
    media: &'a Media,
    local: LocalMedia,
    /// The address written into this section's `c=` and `a=rtcp`.
    address: IpAddr,
    /// No `c=` in effect: insert one after `m=`.
    insert_connection: bool,
}

impl Sdp {
    /// The rewritten body. `local[i]` is the relay's side of media section `i`; `None` (or a
    /// missing entry) leaves that section as it is, apart from ICE stripping.
    pub fn rewrite(&self, local: &[Option<LocalMedia>], opts: &RewriteOptions) -> Vec<u8> {
        let plans: Vec<Option<Plan<'_>>> = self
            .media
            .iter()
            .enumerate()
            .map(|(i, media)| {
                let local = local
                    .get(i)
                    .copied()
                    .flatten()
                    .filter(|_| media.is_enabled())?;
                let address = if media.zero_address {
                    media.connection.or(self.session_connection.map(|c| c.1))
                } else {
                    None
                }
                .unwrap_or(local.address);
                let insert_connection =
                    media.connection.is_none() && self.session_connection.is_none();
                Some(Plan {
                    media,
                    local,
                    address,
                    insert_connection,
                })
            })
            .collect();
        let session_address = plans.iter().flatten().next().map(|p| p.local.address);

        let mut out: Vec<String> = Vec::with_capacity(self.lines.len() + 4);
        let mut section: Option<usize> = None;
        let mut rtcp_written = false;
        for (i, line) in self.lines.iter().enumerate() {
            if let Some(next) = self.media.iter().position(|m| m.m_line == i) {
                finish_section(
                    section.and_then(|s| plans.get(s)).and_then(Option::as_ref),
                    rtcp_written,
                    &mut out,
                );
                section = Some(next);
                rtcp_written = false;
                match plans.get(next).and_then(Option::as_ref) {
                    Some(plan) => {
                        out.push(rewrite_m_line(line, plan.local.rtp_port));
                        if plan.insert_connection {
                            out.push(connection_line(plan.address));
                        }
                    }
                    None => out.push(line.clone()),
                }
                continue;
            }
            if opts.strip_ice && is_ice(line) {
                continue;
            }
            let plan = section.and_then(|s| plans.get(s)).and_then(Option::as_ref);
            match (section, plan) {
                (None, _) => {
                    if self
                        .session_connection
                        .is_some_and(|(at, addr)| at == i && !addr.is_unspecified())
                    {
                        if let Some(addr) = session_address {
                            out.push(connection_line(addr));
                            continue;
                        }
                    }
                    if self.origin_line == Some(i) {
                        if let Some(addr) = opts.origin {
                            out.push(rewrite_origin(line, addr));
                            continue;
                        }
                    }
                    out.push(line.clone());
                }
                (Some(_), None) => out.push(line.clone()),
                (Some(_), Some(plan)) => {
                    if is_rtcp_mux(line) {
                        continue;
                    }
                    if line.starts_with("c=") {
                        out.push(connection_line(plan.address));
                        continue;
                    }
                    if line.starts_with("a=rtcp:") {
                        if !rtcp_written {
                            out.push(rtcp_line(plan));
                            rtcp_written = true;
                        }
                        continue;
                    }
                    if line.starts_with("a=") && !rtcp_written && plan.media.rtcp.is_none() {
                        out.push(rtcp_line(plan));
                        rtcp_written = true;
                    }
                    out.push(line.clone());
                }
            }
        }
        finish_section(
            section.and_then(|s| plans.get(s)).and_then(Option::as_ref),
            rtcp_written,
            &mut out,
        );

        let eol = self.eol();
        let mut body = out.join(eol);
        if self.final_eol {
            body.push_str(eol);
        }
        body.into_bytes()
    }
}

/// A relayed section without attributes gets its `a=rtcp` at the end.
fn finish_section(plan: Option<&Plan<'_>>, rtcp_written: bool, out: &mut Vec<String>) {
    if let Some(plan) = plan {
        if !rtcp_written {
            out.push(rtcp_line(plan));
        }
    }
}

fn rtcp_line(plan: &Plan<'_>) -> String {
    format!(
        "a=rtcp:{} IN {} {}",
        plan.local.rtcp_port,
        addr_type(plan.address),
        plan.address
    )
}

/// `m=<media> <port>[/<count>] <proto> <fmt>...` with the port replaced.
fn rewrite_m_line(line: &str, port: u16) -> String {
    let mut fields = line.splitn(3, ' ');
    let (Some(kind), Some(old_port), rest) = (fields.next(), fields.next(), fields.next()) else {
        return line.to_string();
    };
    let count = old_port
        .split_once('/')
        .map(|(_, c)| format!("/{c}"))
        .unwrap_or_default();
    match rest {
        Some(rest) => format!("{kind} {port}{count} {rest}"),
        None => format!("{kind} {port}{count}"),
    }
}

/// `o=<user> <sess-id> <sess-version> IN IP4|IP6 <addr>` with the address replaced.
fn rewrite_origin(line: &str, addr: IpAddr) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    if fields.len() != 6 {
        return line.to_string();
    }
    format!(
        "{} {} {} {} {} {addr}",
        fields[0],
        fields[1],
        fields[2],
        fields[3],
        addr_type(addr)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn local(port: u16) -> Option<LocalMedia> {
        Some(LocalMedia {
            address: "192.0.2.1".parse().unwrap(),
            rtp_port: port,
            rtcp_port: port + 1,
        })
    }

    fn rewrite(body: &str, locals: &[Option<LocalMedia>], opts: RewriteOptions) -> String {
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        String::from_utf8(sdp.rewrite(locals, &opts)).unwrap()
    }

    #[test]
    fn ice_attribute_names() {
        assert!(is_ice(
            "a=candidate:1 1 UDP 2130706431 10.0.0.1 4000 typ host"
        ));
        assert!(is_ice("a=ice-lite"));
        assert!(is_ice("a=end-of-candidates"));
        assert!(!is_ice("a=candidates-foo"));
        assert!(!is_ice("a=rtpmap:0 PCMU/8000"));
    }

    #[test]
    fn m_line_keeps_count_and_formats() {
        assert_eq!(
            rewrite_m_line("m=audio 4000/1 RTP/AVP 0 8", 30000),
            "m=audio 30000/1 RTP/AVP 0 8"
        );
        assert_eq!(rewrite_m_line("m=audio 4000", 30000), "m=audio 30000");
    }

    #[test]
    fn origin_replacement() {
        let out = rewrite(
            "v=0\no=alice 123 456 IN IP4 10.0.0.1\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\n",
            &[local(30000)],
            RewriteOptions {
                strip_ice: true,
                origin: Some("2001:db8::1".parse().unwrap()),
            },
        );
        assert!(
            out.contains("o=alice 123 456 IN IP6 2001:db8::1\n"),
            "{out}"
        );
    }

    #[test]
    fn section_without_attributes_gets_rtcp_at_end() {
        let out = rewrite(
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\nm=video 0 RTP/AVP 31\n",
            &[local(30000)],
            RewriteOptions::default(),
        );
        assert_eq!(
            out,
            "v=0\nc=IN IP4 192.0.2.1\nm=audio 30000 RTP/AVP 0\na=rtcp:30001 IN IP4 192.0.2.1\nm=video 0 RTP/AVP 31\n"
        );
    }

    #[test]
    fn no_session_leaves_everything_but_ice() {
        let body = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=ice-ufrag:x\na=rtcp-mux\n";
        assert_eq!(rewrite(body, &[], RewriteOptions::default()), body);
        assert_eq!(
            rewrite(
                body,
                &[],
                RewriteOptions {
                    strip_ice: true,
                    origin: None
                }
            ),
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=rtcp-mux\n"
        );
    }

    #[test]
    fn missing_final_line_ending_is_preserved() {
        let out = rewrite(
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=sendrecv",
            &[local(30000)],
            RewriteOptions::default(),
        );
        assert_eq!(out, "v=0\nc=IN IP4 192.0.2.1\nm=audio 30000 RTP/AVP 0\na=rtcp:30001 IN IP4 192.0.2.1\na=sendrecv");
    }
}
