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
    },
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MediaTimeout => "media_timeout",
            EventKind::HoldTimeout => "hold_timeout",
            EventKind::Dtmf { .. } => "dtmf",
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
