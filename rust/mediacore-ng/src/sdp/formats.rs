//! Changing the format list of media sections: the codec side of SDP rewriting.
//!
//! Codec negotiation removes, reorders and adds payload types. [`Sdp::with_formats`] rewrites
//! the `m=` format list of the sections it is given an edit for and keeps the payload-type
//! specific attributes (`a=rtpmap`, `a=fmtp`, `a=rtcp-fb:<pt>`) consistent with it:
//!
//! - a format kept from the section keeps its own attribute lines where they are;
//! - a format given with lines has its own lines (if any) removed, and the given lines inserted
//!   after the last kept payload-type line (else where the first removed one was, else before
//!   the section's first attribute, else at the end of the section);
//! - lines of formats that are no longer listed are removed.
//!
//! Every other line is untouched. Sections without an edit are copied as they are, so a body
//! without edits comes out byte for byte (see [`Sdp::rewrite`] for the address rewriting that
//! follows).

use std::collections::HashSet;

use super::{format_line_pt, Sdp, SdpError};

/// One format of an edited `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatEntry {
    /// The format as written on the `m=` line (a payload type number for RTP).
    pub format: String,
    /// `None`: keep the section's own attribute lines for this format. `Some`: replace them
    /// with these lines (which may be empty, e.g. a static payload type without `a=rtpmap`).
    pub lines: Option<Vec<String>>,
}

impl FormatEntry {
    pub fn keep(format: impl Into<String>) -> Self {
        FormatEntry {
            format: format.into(),
            lines: None,
        }
    }
    pub fn with_lines(format: impl Into<String>, lines: Vec<String>) -> Self {
        FormatEntry {
            format: format.into(),
            lines: Some(lines),
        }
    }
}

/// The new format list of one media section, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FormatEdit {
    pub formats: Vec<FormatEntry>,
}

impl Sdp {
    /// The same SDP with the format lists of the sections that have an edit (`edits[i]` for
    /// section `i`) replaced. Without any edit the result equals `self`.
    pub fn with_formats(&self, edits: &[Option<FormatEdit>]) -> Result<Sdp, SdpError> {
        if edits.iter().all(Option::is_none) {
            return Ok(self.clone());
        }
        let first_m = self.media.first().map_or(self.lines.len(), |m| m.m_line);
        let mut lines: Vec<String> = self.lines[..first_m].to_vec();
        for (i, m) in self.media.iter().enumerate() {
            let section = &self.lines[m.m_line..m.end];
            match edits.get(i).and_then(Option::as_ref) {
                Some(edit) => lines.extend(edit_section(section, edit)),
                None => lines.extend(section.iter().cloned()),
            }
        }
        let eol = self.eol();
        let mut body = lines.join(eol);
        if self.final_eol {
            body.push_str(eol);
        }
        Sdp::parse(body.as_bytes())
    }
}

/// `section[0]` is the `m=` line.
fn edit_section(section: &[String], edit: &FormatEdit) -> Vec<String> {
    let Some((m_line, body)) = section.split_first() else {
        return Vec::new();
    };
    let kept: HashSet<u8> = edit
        .formats
        .iter()
        .filter(|f| f.lines.is_none())
        .filter_map(|f| f.format.parse().ok())
        .collect();
    let new_lines: Vec<String> = edit
        .formats
        .iter()
        .filter_map(|f| f.lines.clone())
        .flatten()
        .collect();
    let pt_of = |l: &String| format_line_pt(l);
    let last_kept = body
        .iter()
        .rposition(|l| pt_of(l).is_some_and(|pt| kept.contains(&pt)));
    let first_dropped = body
        .iter()
        .position(|l| pt_of(l).is_some_and(|pt| !kept.contains(&pt)));
    let insert_at = last_kept
        .map(|i| i + 1)
        .or(first_dropped)
        .or_else(|| body.iter().position(|l| l.starts_with("a=")))
        .unwrap_or(body.len());

    let mut out = Vec::with_capacity(section.len() + new_lines.len());
    out.push(m_line_with_formats(m_line, &edit.formats));
    for (j, line) in body.iter().enumerate() {
        if j == insert_at {
            out.extend(new_lines.iter().cloned());
        }
        if pt_of(line).is_some_and(|pt| !kept.contains(&pt)) {
            continue;
        }
        out.push(line.clone());
    }
    if insert_at >= body.len() {
        out.extend(new_lines);
    }
    out
}

/// `m=<media> <port> <proto> <formats>` with the formats replaced.
fn m_line_with_formats(line: &str, formats: &[FormatEntry]) -> String {
    let head: Vec<&str> = line.split_whitespace().take(3).collect();
    let mut out = head.join(" ");
    for f in formats {
        out.push(' ');
        out.push_str(&f.format);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const BODY: &str = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    fn edited(body: &str, edit: FormatEdit) -> String {
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        let out = sdp.with_formats(&[Some(edit)]).unwrap();
        out.lines.join("\n")
    }

    #[test]
    fn no_edit_is_identity() {
        let sdp = Sdp::parse(BODY.as_bytes()).unwrap();
        assert_eq!(sdp.with_formats(&[None, None]).unwrap(), sdp);
        assert_eq!(sdp.with_formats(&[]).unwrap(), sdp);
    }

    #[test]
    fn removes_reorders_and_adds() {
        let out = edited(
            BODY,
            FormatEdit {
                formats: vec![
                    FormatEntry::keep("8"),
                    FormatEntry::keep("101"),
                    FormatEntry::with_lines(
                        "18",
                        vec!["a=rtpmap:18 G729/8000".into(), "a=fmtp:18 annexb=no".into()],
                    ),
                ],
            },
        );
        assert_eq!(
            out,
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 8 101 18\na=rtpmap:8 PCMA/8000\n\
a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=rtpmap:18 G729/8000\n\
a=fmtp:18 annexb=no\na=ptime:20\nm=video 4002 RTP/AVP 96\na=rtpmap:96 H264/90000"
        );
    }

    #[test]
    fn replaced_lines_go_where_the_first_removed_line_was() {
        let body = "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 18 101\na=sendrecv\n\
a=rtpmap:18 G729/8000\na=fmtp:18 annexb=no\na=rtpmap:101 telephone-event/8000\na=ptime:20\n";
        let out = edited(
            body,
            FormatEdit {
                formats: vec![
                    FormatEntry::with_lines("8", vec!["a=rtpmap:8 PCMA/8000".into()]),
                    FormatEntry::with_lines(
                        "101",
                        vec!["a=rtpmap:101 telephone-event/8000".into()],
                    ),
                ],
            },
        );
        assert_eq!(
            out,
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 8 101\na=sendrecv\n\
a=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=ptime:20"
        );
    }

    #[test]
    fn added_lines_without_any_attributes_go_at_the_end() {
        let body = "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 8\n";
        let out = edited(
            body,
            FormatEdit {
                formats: vec![
                    FormatEntry::keep("8"),
                    FormatEntry::with_lines("0", vec!["a=rtpmap:0 PCMU/8000".into()]),
                ],
            },
        );
        assert_eq!(
            out,
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 8 0\na=rtpmap:0 PCMU/8000"
        );
        let body = "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 8\nb=AS:64\na=sendrecv\n";
        let out = edited(
            body,
            FormatEdit {
                formats: vec![
                    FormatEntry::keep("8"),
                    FormatEntry::with_lines("0", vec!["a=rtpmap:0 PCMU/8000".into()]),
                ],
            },
        );
        assert_eq!(
            out,
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 8 0\nb=AS:64\na=rtpmap:0 PCMU/8000\na=sendrecv"
        );
    }

    #[test]
    fn rtcp_fb_wildcard_is_kept() {
        let body = "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 96 8\na=rtpmap:96 opus/48000/2\n\
a=rtcp-fb:96 nack\na=rtcp-fb:* ccm fir\na=rtpmap:8 PCMA/8000\n";
        let out = edited(
            body,
            FormatEdit {
                formats: vec![FormatEntry::keep("8")],
            },
        );
        assert_eq!(
            out,
            "v=0\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 8\na=rtcp-fb:* ccm fir\na=rtpmap:8 PCMA/8000"
        );
    }
}
