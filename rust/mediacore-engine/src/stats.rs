//! Per-leg and per-session counters, copied out of the engine on query and on delete.

use std::net::SocketAddr;
use std::time::Duration;

use mediacore_dsp::aec::EchoStats;
use mediacore_dsp::jitter::JitterStats;
use mediacore_proto::ReceptionSnapshot;

use crate::spec::{JitterMode, Side};
use crate::transcode::TranscodeStats;
use crate::SessionId;

/// Why a datagram that reached a leg was not forwarded. Every datagram received is either
/// forwarded or counted in exactly one of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Not a valid RTP packet (truncated, bad version, CSRC/extension/padding lies).
    pub malformed_rtp: u64,
    /// Not a valid compound RTCP packet (length lies, bad version, bad report count).
    pub malformed_rtcp: u64,
    /// From a source the leg's latch policy does not accept (strict SDP address, or a
    /// stranger while the latched source is alive).
    pub foreign_source: u64,
    /// Valid and accepted, but the other leg has no destination yet (no SDP, no latch).
    pub no_destination: u64,
    /// Larger than the runtime's receive buffer (truncated by the kernel); never relayed cut short.
    pub oversized: u64,
}

impl DropCounters {
    pub fn total(&self) -> u64 {
        self.malformed_rtp
            + self.malformed_rtcp
            + self.foreign_source
            + self.no_destination
            + self.oversized
    }
}

/// Counters of one leg: what its party sent us (`rtp`, `rtcp_*`) and what we sent it (`sent_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LegStats {
    pub side: Side,
    /// Where media toward this party goes now (latched source, else SDP address).
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    /// True once the destination was learned from received packets (symmetric RTP).
    pub latched: bool,
    pub hold: bool,
    /// Datagrams that arrived on this leg's RTP and RTCP ports, valid or not.
    pub datagrams: u64,
    /// RFC 3550 receive statistics of the party's RTP stream.
    pub rtp: ReceptionSnapshot,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    pub sent_rtp_packets: u64,
    pub sent_rtp_bytes: u64,
    pub sent_rtcp_packets: u64,
    pub sent_rtcp_bytes: u64,
    /// Sends toward this party that the operating system refused.
    pub send_errors: u64,
    pub dropped: DropCounters,
    /// Time since the last valid packet from the party; `None` if nothing arrived yet.
    pub since_last_packet: Option<Duration>,
    /// A media-timeout or hold-timeout event was raised and no packet arrived since.
    pub timed_out: bool,
    /// Counters of the transcoding path that takes this party's media, if its direction is
    /// transcoded (`None`: relayed untouched).
    pub transcoding: Option<TranscodeStats>,
    /// The jitter buffer of this party's stream: where it is decoded, or re-timed on relay.
    pub jitter_buffer: Option<JitterBufferStats>,
    /// The echo canceller of this leg (echo of what we send the party, removed from what it
    /// sends), once it has run.
    pub echo_canceller: Option<EchoCancelStats>,
    /// Digits from the party ignored because it takes digits another way: an `auto` party
    /// locked to its first kind (RFC 2833 or SIP INFO), or SIP INFO from a party whose DTMF
    /// mode is `rfc2833` or `inband` (docs/decisions.md, "DTMF").
    pub dtmf_ignored: u64,
}

/// A stream's jitter buffer: its mode and its measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterBufferStats {
    pub mode: JitterMode,
    /// Re-timing a relayed stream (packets unchanged) rather than a decoded one.
    pub relay: bool,
    pub stats: JitterStats,
}

/// A leg's line echo canceller: its tail and its measurements (ERL, ERLE, bulk delay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoCancelStats {
    pub tail_ms: u32,
    pub stats: EchoStats,
}

/// Counters of a whole session, as returned by query and delete.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStats {
    pub id: SessionId,
    pub age: Duration,
    pub caller: LegStats,
    pub callee: LegStats,
}

impl SessionStats {
    pub fn leg(&self, side: Side) -> &LegStats {
        match side {
            Side::Caller => &self.caller,
            Side::Callee => &self.callee,
        }
    }
}
