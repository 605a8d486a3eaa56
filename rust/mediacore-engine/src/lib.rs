//! `mediacore-engine`: the sans-IO heart of the media plane.
//!
//! A [`Session`] decides what happens to each datagram of a two-leg call and when its legs have
//! gone silent; it owns no socket and reads no clock. All time is an input (`now`), so tests drive
//! a session through a two-hour call in microseconds. The I/O runtime (`mediacore-runtime`) owns
//! sockets, threads and the clock and feeds sessions.
//!
//! Policy: a panic is a bug in this crate, never a consequence of bad input. Every datagram is
//! either forwarded or counted as dropped for a named reason.

pub mod control;
pub mod dtmf;
pub mod event;
pub mod gain;
pub mod overlay;
pub mod retime;
pub mod session;
pub mod spec;
pub mod stats;
pub mod transcode;

pub use control::{MediaControl, PendingStats, SessionInfo};
pub use dtmf::{DtmfPlay, DtmfPlayer};
pub use event::{DtmfVia, Event, EventKind};
pub use gain::MAX_GAIN_DB;
pub use mediacore_dsp::aec::EchoStats;
pub use mediacore_dsp::jitter::JitterStats;
pub use session::{Channel, DropReason, Session, Transmit, Verdict, DTMF_LOCKED, RELATCH_AFTER};
pub use spec::{
    CodecSpec, DtmfMode, DtmfRoute, EchoCancelSpec, JitterBufferSpec, JitterMode, LatchPolicy,
    LegSpec, SessionSpec, Side, SpecError, DSCP_EF,
};
pub use stats::{DropCounters, EchoCancelStats, JitterBufferStats, LegStats, SessionStats};

/// Engine-wide identifier of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
