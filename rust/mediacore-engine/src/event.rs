//! Events a session raises for the control plane (delivered in batches, never per packet).

use std::time::Duration;

use crate::spec::Side;
use crate::SessionId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An active leg received nothing for the session's RTP timeout (VOS3000 `SS_RTP_TIMEOUT`).
    MediaTimeout,
    /// A held leg (sendonly/inactive) received nothing for the session's hold timeout.
    HoldTimeout,
    /// The party sent a DTMF digit (RFC 4733 telephone-event), reported once per digit.
    Dtmf {
        /// How it arrived: an RFC 4733 event, or tones in the audio (detected on decoded media).
        inband: bool,
        digit: char,
        duration_ms: u32,
        /// -dBm0
        volume: u8,
        /// False if the event was closed without an end packet.
        ended: bool,
        /// The other leg's mode is SIP INFO: the SIP layer must send this digit to that leg's
        /// party (`application/dtmf-relay`); the media toward it does not carry the digit.
        info_to: Option<Side>,
        /// When the digit began, in ms since the session was created.
        at_ms: u64,
    },
    /// A digit the control plane asked to play ("play DTMF") was rendered toward the party of
    /// the event's side, per that leg's mode. For an INFO leg it is raised when the digit
    /// begins and the SIP layer sends it; otherwise when the digit has been sent.
    DtmfPlayed {
        digit: char,
        duration_ms: u32,
        volume: u8,
        via: DtmfVia,
        /// When the digit began, in ms since the session was created.
        at_ms: u64,
    },
}

/// How a played digit reached its party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfVia {
    Rfc2833,
    Inband,
    /// To be sent by the SIP layer as SIP INFO.
    Info,
}

impl DtmfVia {
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfVia::Rfc2833 => "rfc2833",
            DtmfVia::Inband => "inband",
            DtmfVia::Info => "info",
        }
    }
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MediaTimeout => "media_timeout",
            EventKind::HoldTimeout => "hold_timeout",
            EventKind::Dtmf { .. } => "dtmf",
            EventKind::DtmfPlayed { .. } => "dtmf_played",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub session: SessionId,
    pub side: Side,
    pub kind: EventKind,
    /// How long the leg had been silent when the event was raised (zero for DTMF).
    pub silent_for: Duration,
}
