//! ng datagram framing: `<cookie> <bencode>`.
//!
//! The cookie is an opaque token the client picks per request (Kamailio uses a pid-and-counter
//! string); the reply repeats it so the client can match replies to requests over UDP, and the
//! server uses it to recognise retransmissions.

/// A datagram split into its cookie and bencode body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub cookie: &'a [u8],
    pub body: &'a [u8],
}

/// Why a datagram could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No space separates a cookie from the body.
    NoSeparator,
    /// The datagram starts with a space.
    EmptyCookie,
}

/// Splits at the first space. The body may be empty (and will then fail to decode).
pub fn split(datagram: &[u8]) -> Result<Frame<'_>, FrameError> {
    let at = datagram
        .iter()
        .position(|&b| b == b' ')
        .ok_or(FrameError::NoSeparator)?;
    if at == 0 {
        return Err(FrameError::EmptyCookie);
    }
    Ok(Frame {
        cookie: &datagram[..at],
        body: &datagram[at + 1..],
    })
}

/// Builds the reply datagram `<cookie> <body>`.
pub fn reply(cookie: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cookie.len() + 1 + body.len());
    out.extend_from_slice(cookie);
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_first_space() {
        let f = split(b"5323_1 d7:command4:pinge").unwrap();
        assert_eq!(f.cookie, b"5323_1");
        assert_eq!(f.body, b"d7:command4:pinge");
        let f = split(b"c d3:a b1:xe").unwrap();
        assert_eq!(f.body, b"d3:a b1:xe");
    }

    #[test]
    fn rejects_missing_cookie() {
        assert_eq!(split(b"d7:command4:pinge"), Err(FrameError::NoSeparator));
        assert_eq!(split(b" d7:command4:pinge"), Err(FrameError::EmptyCookie));
        assert_eq!(split(b""), Err(FrameError::NoSeparator));
    }

    #[test]
    fn empty_body_is_split() {
        assert_eq!(split(b"abc ").unwrap().body, b"");
    }

    #[test]
    fn builds_reply() {
        assert_eq!(
            reply(b"abc", b"d6:result4:ponge"),
            b"abc d6:result4:ponge".to_vec()
        );
    }
}
