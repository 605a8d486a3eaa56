//! The validated description of a media session: what the control plane asks for, per leg.
//!
//! A session joins two legs. The *caller* leg faces the party that sent the SDP offer (VOS3000's
//! mapping-gateway side); the *callee* leg faces the party that answers (the routing-gateway
//! side). Packets received on one leg's local ports are sent out of the other leg's local ports.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::gain::MAX_GAIN_DB;

/// Default DSCP for media: Expedited Forwarding (RFC 3246), ToS byte 0xB8.
pub const DSCP_EF: u8 = 46;
/// VOS3000 `SS_RTP_TIMEOUT` default: seconds without RTP before the media-timeout event.
pub const DEFAULT_RTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Silence allowed on a held stream (sendonly/inactive) before the hold-timeout event; a held
/// party legitimately sends nothing, so this is much longer than the active timeout (rtpengine's
/// `silent-timeout` default is an hour as well).
pub const DEFAULT_HOLD_TIMEOUT: Duration = Duration::from_secs(3600);

/// Which leg of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Caller,
    Callee,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
    pub fn index(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Callee => 1,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Caller => "caller",
            Side::Callee => "callee",
        }
    }
}

/// Where to send a leg's media: the address from SDP, or the source the first packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchPolicy {
    /// Symmetric RTP (VOS3000 media proxy behaviour for NAT): send to the address the party's
    /// packets come from. Until a packet arrives, the SDP address is used.
    Learn,
    /// Only the SDP address is trusted; packets from any other source are dropped and counted.
    Strict,
}

impl LatchPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            LatchPolicy::Learn => "learn",
            LatchPolicy::Strict => "strict",
        }
    }
}

/// How DTMF is signalled with a leg's party, in both directions (VOS3000's per-gateway "DTMF
/// send"/"DTMF receive" reduced to one choice per leg). Digits from the party are taken only in
/// this form (an explicit mode is also the "first kind received" lock that keeps a party sending
/// both forms from doubling a digit); digits toward the party are rendered in this form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtmfMode {
    /// RFC 2833 when the party negotiated telephone-event, else in-band ("use peer RFC2833
    /// ability"). With an empty codec list events pass through as they come.
    #[default]
    Auto,
    /// RFC 4733 telephone-events on the leg's negotiated payload type (101 if none).
    Rfc2833,
    /// SIP INFO: digits travel in signalling. From the party they come only from the control
    /// plane (play DTMF); toward it they are raised as events for the SIP layer and kept out
    /// of the media (events dropped, tones muted).
    Info,
    /// Tones in the audio (Q.23 pairs), detected with the Goertzel detector.
    Inband,
}

impl DtmfMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfMode::Auto => "auto",
            DtmfMode::Rfc2833 => "rfc2833",
            DtmfMode::Info => "info",
            DtmfMode::Inband => "inband",
        }
    }

    /// Parses a mode name (any case; "rfc4733" and "inband"/"in-band" spellings accepted).
    pub fn parse(s: &str) -> Option<DtmfMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(DtmfMode::Auto),
            "rfc2833" | "rfc4733" | "telephone-event" => Some(DtmfMode::Rfc2833),
            "info" | "sip-info" => Some(DtmfMode::Info),
            "inband" | "in-band" => Some(DtmfMode::Inband),
            _ => None,
        }
    }
}

/// Default telephone-event payload type (VOS3000 "Payload" default).
pub const DEFAULT_TELEPHONE_EVENT_PT: u8 = 101;

/// What a leg's [`DtmfMode`] comes to once its codecs are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfRoute {
    /// RFC 4733 events on `pt` at `clock` Hz; `negotiated` when the party's SDP named
    /// telephone-event (otherwise `pt` is the default 101, or the party's list is unknown).
    Events {
        pt: u8,
        clock: u32,
        negotiated: bool,
    },
    Inband,
    Info,
}

impl DtmfRoute {
    pub fn is_events(self) -> bool {
        matches!(self, DtmfRoute::Events { .. })
    }
    /// The payload type to write on events toward this leg.
    pub fn event_pt(self) -> Option<u8> {
        match self {
            DtmfRoute::Events { pt, .. } => Some(pt),
            _ => None,
        }
    }
    /// The mode this route renders, as reported in events ("rfc2833", "inband", "info").
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfRoute::Events { .. } => "rfc2833",
            DtmfRoute::Inband => "inband",
            DtmfRoute::Info => "info",
        }
    }
}

/// One codec a party can receive, as its SDP describes it (`a=rtpmap:PT NAME/RATE[/CH]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSpec {
    /// RTP payload type used on this leg.
    pub pt: u8,
    /// Encoding name as in SDP, compared case-insensitively: "PCMA", "PCMU", "G729", "opus",
    /// "telephone-event".
    pub name: String,
    /// RTP clock rate in Hz (8000; opus 48000).
    pub clock_rate: u32,
    pub channels: u8,
    /// The `a=fmtp` parameters, if any (e.g. "annexb=no").
    pub fmtp: Option<String>,
}

impl CodecSpec {
    pub fn new(pt: u8, name: &str, clock_rate: u32) -> Self {
        CodecSpec {
            pt,
            name: name.to_string(),
            clock_rate,
            channels: 1,
            fmtp: None,
        }
    }
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }
    /// Same codec (payload types may differ between legs; "G729" and "G729a" are one bitstream).
    pub fn same_codec(&self, other: &CodecSpec) -> bool {
        use mediacore_dsp::codec::canonical_name;
        canonical_name(&self.name).eq_ignore_ascii_case(canonical_name(&other.name))
            && self.clock_rate == other.clock_rate
    }
}

/// VOS3000 `SS_JITTERBUFFER_MODE`: 0 = fixed, 1 = adaptive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterMode {
    /// The delay is `default_ms` for good (in-time audio plays untouched).
    Fixed,
    /// The delay follows the measured jitter within `[min_ms, max_ms]`, starting at `default_ms`.
    Adaptive,
}

impl JitterMode {
    pub fn as_str(self) -> &'static str {
        match self {
            JitterMode::Fixed => "fixed",
            JitterMode::Adaptive => "adaptive",
        }
    }
}

/// Highest jitter-buffer delay accepted, ms (the reference's satellite preset is 400).
pub const MAX_JITTER_BUFFER_MS: u32 = 1000;

/// The jitter buffer of the stream a party sends (VOS3000 `SS_JITTERBUFFER_MODE`, `_MIN`,
/// `_MAX`, `_DEFAULT`; their defaults 1, 20, 200, 60). Always on where the stream is decoded;
/// on a relayed stream only when `relay` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterBufferSpec {
    pub mode: JitterMode,
    pub min_ms: u32,
    pub max_ms: u32,
    /// Starting delay (adaptive), or the delay (fixed).
    pub default_ms: u32,
    /// Also re-time this party's stream when it is relayed (not decoded): packets are held and
    /// sent on at a smoothed pace, unchanged. Off by default.
    pub relay: bool,
}

impl Default for JitterBufferSpec {
    fn default() -> Self {
        JitterBufferSpec {
            mode: JitterMode::Adaptive,
            min_ms: 20,
            max_ms: 200,
            default_ms: 60,
            relay: false,
        }
    }
}

/// Echo-canceller tails accepted, ms (`SS_ECHOCANCELTAIL`).
pub const ECHO_TAILS_MS: [u32; 2] = [64, 128];

/// The line echo canceller of a leg (VOS3000 `SS_ECHOCANCEL`, `SS_ECHOCANCELTAIL`): it removes,
/// from the audio this party sends, the echo of the audio we send it. Runs where both
/// directions of the session are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoCancelSpec {
    pub enabled: bool,
    /// 64 (default) or 128 ms.
    pub tail_ms: u32,
}

impl Default for EchoCancelSpec {
    fn default() -> Self {
        EchoCancelSpec {
            enabled: true,
            tail_ms: 64,
        }
    }
}

/// What the control plane knows about one leg.
#[derive(Debug, Clone, PartialEq)]
pub struct LegSpec {
    /// The party's RTP address from SDP (`c=` + `m=` port). `None` while unknown (e.g. before
    /// the answer), in which case media toward this leg is dropped until learned.
    pub remote_rtp: Option<SocketAddr>,
    /// The party's RTCP address (`a=rtcp`, else RTP port + 1).
    pub remote_rtcp: Option<SocketAddr>,
    pub latch: LatchPolicy,
    /// DSCP (0..=63) written into the IP header of packets this leg sends (ToS = dscp << 2).
    pub dscp: u8,
    /// The party put the stream on hold (sendonly/inactive, or a 0.0.0.0 connection address):
    /// silence is expected, so the hold timeout applies instead of the RTP timeout.
    pub hold: bool,
    /// RTP clock rate per payload type, for jitter in milliseconds. Static payload types
    /// (RFC 3551) are known without this.
    pub clock_rates: Vec<(u8, u32)>,
    /// Codecs the party accepts, most preferred first (from its SDP after our negotiation).
    /// Empty: the engine does not know and relays whatever arrives (no transcoding).
    /// The first audio codec is the one we send toward the party; telephone-event entries give
    /// its DTMF payload type.
    pub codecs: Vec<CodecSpec>,
    /// Packetisation time, ms, of what we send toward the party when we encode (10, 20, 30, 40
    /// or 60); relayed packets keep the sender's ptime.
    pub ptime_ms: u32,
    /// G.729 Annex B voice activity detection on what we encode toward this party (SID/DTX).
    /// Off by default: most carriers expect `annexb=no`.
    pub vad: bool,
    /// The jitter buffer of the stream this party sends.
    pub jitter_buffer: JitterBufferSpec,
    /// Echo cancellation of what this party sends (the echo of what we send it).
    pub echo_cancel: EchoCancelSpec,
    /// How DTMF is signalled with this party (default `Auto`).
    pub dtmf: DtmfMode,
    /// Voice gain toward this party, dB (-10..=10, VOS3000 `SS_VOICEGAIN`; 0 = none): applied
    /// to relayed G.711 and to decoded audio, not to relayed compressed codecs (`gain.rs`).
    pub gain_db: i8,
    /// Comfort noise toward this party: when the other party goes quiet on a decoded direction,
    /// send low-level noise at its learnt background level instead of nothing (dead air).
    /// Relayed directions are unchanged (the sender's own CN/SID packets are relayed). Off by
    /// default (SS_COMFORTNOISE is the node's switch).
    pub comfort_noise: bool,
    /// The local IP (one of the engine's media interfaces) this leg's RTP/RTCP ports are bound
    /// on; `None`: the engine's default interface. Read when the session is created: an update
    /// never moves a leg's ports.
    pub local_ip: Option<IpAddr>,
}

impl LegSpec {
    /// The party's telephone-event payload type and clock rate, if its SDP named one.
    pub fn telephone_event(&self) -> Option<(u8, u32)> {
        self.codecs
            .iter()
            .find(|c| c.is_telephone_event())
            .map(|c| (c.pt, c.clock_rate))
    }

    /// The payload type events toward this party must carry when we know it: the negotiated
    /// one, or 101 on an explicit RFC 2833 leg. `None` for an unknown codec list (events then
    /// keep the sender's payload type) and for non-event modes.
    pub fn known_event_pt(&self) -> Option<u8> {
        match self.dtmf_route() {
            DtmfRoute::Events { pt, negotiated, .. }
                if negotiated || self.dtmf == DtmfMode::Rfc2833 =>
            {
                Some(pt)
            }
            _ => None,
        }
    }

    /// The payload type this party's telephone-events arrive on: its negotiated one, or, with
    /// an unknown codec list and an events mode, the one its route assumes (101).
    pub fn sent_event_pt(&self) -> Option<u8> {
        self.telephone_event()
            .map(|t| t.0)
            .or(match self.dtmf_route() {
                DtmfRoute::Events { pt, .. } if self.codecs.is_empty() => Some(pt),
                _ => None,
            })
    }

    /// The leg's DTMF mode resolved against its codecs.
    pub fn dtmf_route(&self) -> DtmfRoute {
        let te = self.telephone_event();
        let events = |negotiated| {
            let (pt, clock) = te.unwrap_or((DEFAULT_TELEPHONE_EVENT_PT, 8000));
            DtmfRoute::Events {
                pt,
                clock,
                negotiated,
            }
        };
        match self.dtmf {
            DtmfMode::Rfc2833 => events(te.is_some()),
            DtmfMode::Info => DtmfRoute::Info,
            DtmfMode::Inband => DtmfRoute::Inband,
            // An unknown codec list: nothing to convert, events pass as they come.
            DtmfMode::Auto if self.codecs.is_empty() => events(false),
            DtmfMode::Auto if te.is_some() => events(true),
            DtmfMode::Auto => DtmfRoute::Inband,
        }
    }
}

impl Default for LegSpec {
    fn default() -> Self {
        LegSpec {
            remote_rtp: None,
            remote_rtcp: None,
            latch: LatchPolicy::Learn,
            dscp: DSCP_EF,
            hold: false,
            clock_rates: Vec::new(),
            codecs: Vec::new(),
            ptime_ms: 20,
            vad: false,
            jitter_buffer: JitterBufferSpec::default(),
            echo_cancel: EchoCancelSpec::default(),
            dtmf: DtmfMode::Auto,
            gain_db: 0,
            comfort_noise: false,
            local_ip: None,
        }
    }
}

/// A two-leg session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpec {
    pub caller: LegSpec,
    pub callee: LegSpec,
    /// No packet received on an active leg for this long raises `MediaTimeout`.
    pub rtp_timeout: Duration,
    /// No packet received on a held leg for this long raises `HoldTimeout`.
    pub hold_timeout: Duration,
}

impl Default for SessionSpec {
    fn default() -> Self {
        SessionSpec {
            caller: LegSpec::default(),
            callee: LegSpec::default(),
            rtp_timeout: DEFAULT_RTP_TIMEOUT,
            hold_timeout: DEFAULT_HOLD_TIMEOUT,
        }
    }
}

impl SessionSpec {
    pub fn leg(&self, side: Side) -> &LegSpec {
        match side {
            Side::Caller => &self.caller,
            Side::Callee => &self.callee,
        }
    }
    pub fn leg_mut(&mut self, side: Side) -> &mut LegSpec {
        match side {
            Side::Caller => &mut self.caller,
            Side::Callee => &mut self.callee,
        }
    }

    /// Checks everything that does not need the network; the error names the offending field.
    pub fn validate(&self) -> Result<(), SpecError> {
        for side in [Side::Caller, Side::Callee] {
            let leg = self.leg(side);
            if leg.dscp > 63 {
                return Err(SpecError::new(
                    side,
                    "dscp",
                    format!("{} is not in 0..=63", leg.dscp),
                ));
            }
            for (field, addr) in [
                ("remote_rtp", leg.remote_rtp),
                ("remote_rtcp", leg.remote_rtcp),
            ] {
                if let Some(a) = addr {
                    if a.port() == 0 && !leg.hold {
                        return Err(SpecError::new(side, field, format!("port 0 in {a}")));
                    }
                }
            }
            if ![10, 20, 30, 40, 60].contains(&leg.ptime_ms) {
                return Err(SpecError::new(
                    side,
                    "ptime",
                    format!("{} ms is not 10, 20, 30, 40 or 60", leg.ptime_ms),
                ));
            }
            for c in &leg.codecs {
                if c.pt > 127 {
                    return Err(SpecError::new(
                        side,
                        "codecs",
                        format!("payload type {} > 127", c.pt),
                    ));
                }
                if c.clock_rate == 0 {
                    return Err(SpecError::new(
                        side,
                        "codecs",
                        format!("clock rate 0 for {}", c.name),
                    ));
                }
            }
            let jb = &leg.jitter_buffer;
            if jb.max_ms > MAX_JITTER_BUFFER_MS {
                return Err(SpecError::new(
                    side,
                    "jitter_buffer.max",
                    format!("{} ms exceeds {MAX_JITTER_BUFFER_MS} ms", jb.max_ms),
                ));
            }
            if jb.min_ms > jb.max_ms {
                return Err(SpecError::new(
                    side,
                    "jitter_buffer.min",
                    format!("{} ms exceeds max {} ms", jb.min_ms, jb.max_ms),
                ));
            }
            if !(jb.min_ms..=jb.max_ms).contains(&jb.default_ms) {
                return Err(SpecError::new(
                    side,
                    "jitter_buffer.default",
                    format!(
                        "{} ms is not within min {} ms and max {} ms",
                        jb.default_ms, jb.min_ms, jb.max_ms
                    ),
                ));
            }
            if !(-MAX_GAIN_DB..=MAX_GAIN_DB).contains(&leg.gain_db) {
                return Err(SpecError::new(
                    side,
                    "gain_db",
                    format!("{} dB is not in -10..=10", leg.gain_db),
                ));
            }
            if !ECHO_TAILS_MS.contains(&leg.echo_cancel.tail_ms) {
                return Err(SpecError::new(
                    side,
                    "echo_cancel.tail",
                    format!("{} ms is not 64 or 128", leg.echo_cancel.tail_ms),
                ));
            }
            for &(pt, rate) in &leg.clock_rates {
                if pt > 127 {
                    return Err(SpecError::new(
                        side,
                        "clock_rates",
                        format!("payload type {pt} > 127"),
                    ));
                }
                if rate == 0 {
                    return Err(SpecError::new(
                        side,
                        "clock_rates",
                        format!("clock rate 0 for payload type {pt}"),
                    ));
                }
            }
        }
        if self.rtp_timeout.is_zero() {
            return Err(SpecError::session(
                "rtp_timeout",
                "must be greater than zero".into(),
            ));
        }
        if self.hold_timeout.is_zero() {
            return Err(SpecError::session(
                "hold_timeout",
                "must be greater than zero".into(),
            ));
        }
        Ok(())
    }
}

/// A spec rejected by [`SessionSpec::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// e.g. `caller.dscp` or `rtp_timeout`
    pub field: String,
    pub reason: String,
}

impl SpecError {
    fn new(side: Side, field: &str, reason: String) -> Self {
        SpecError {
            field: format!("{}.{}", side.as_str(), field),
            reason,
        }
    }
    fn session(field: &str, reason: String) -> Self {
        SpecError {
            field: field.to_string(),
            reason,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid session spec: {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for SpecError {}

/// A payload-type map of one relayed direction: entry `p` is the payload type a packet the
/// sender sent on `p` leaves with toward the receiver (`out = map[in & 0x7f]`).
pub type PtMap = [u8; 128];

/// The identity map (nothing is rewritten).
pub const PT_IDENTITY: PtMap = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// Rewrites the payload type of the RTP packet in `pkt` (second byte, marker bit kept) through
/// `map`: one load and one store. Too short a buffer is left alone.
#[inline]
pub fn map_payload_type(pkt: &mut [u8], map: &PtMap) {
    if let Some(b) = pkt.get_mut(1) {
        *b = (*b & 0x80) | map[usize::from(*b & 0x7f)];
    }
}

/// How a relayed direction from `from`'s party to `to`'s party renumbers payload types: each
/// packet leaves with the payload type the *receiving* party negotiated for its codec (as
/// rtpengine does when it handles codecs), so a caller that offered G.729 on 18 never receives
/// the carrier's G729a on 96, and the carrier never receives 18.
///
/// For each codec of the sender's list, the receiver's entry for the same codec
/// ([`CodecSpec::same_codec`]: name, G.729 annexes being one bitstream, and clock rate) is, in
/// this order: one on the same payload type (nothing changes), one of the same name, the first
/// in the receiver's order. Telephone-events with no same-clock entry on the receiver go to the
/// payload type events toward it carry ([`LegSpec::known_event_pt`]). Everything else maps to
/// itself, which is what the relay did before there was a map: a payload type the sender did not
/// negotiate, or one of a codec the receiver did not negotiate, passes as sent (the relay does
/// not filter), and an unknown codec list on either leg leaves audio as sent (events still go
/// to the payload type an explicit RFC 2833 receiver takes).
pub fn relay_pt_map(from: &LegSpec, to: &LegSpec) -> PtMap {
    let mut map = PT_IDENTITY;
    // Only the first entry the sender gave a payload type decides it.
    let mut decided = [false; 128];
    for c in &from.codecs {
        let i = usize::from(c.pt & 0x7f);
        if std::mem::replace(&mut decided[i], true) {
            continue;
        }
        let same = || to.codecs.iter().filter(|d| c.same_codec(d));
        let target = same()
            .find(|d| d.pt == c.pt)
            .or_else(|| same().find(|d| d.name.eq_ignore_ascii_case(&c.name)))
            .or_else(|| same().next());
        if let Some(d) = target {
            map[i] = d.pt & 0x7f;
        }
    }
    if let (Some(a), Some(b)) = (from.sent_event_pt(), to.known_event_pt()) {
        let has_same_clock = from
            .codecs
            .iter()
            .filter(|c| c.is_telephone_event() && c.pt == a)
            .any(|c| to.codecs.iter().any(|d| c.same_codec(d)));
        if !has_same_clock {
            if let Some(slot) = map.get_mut(usize::from(a)) {
                *slot = b & 0x7f;
            }
        }
    }
    map
}

/// RTP clock rate of the static payload types of RFC 3551 §6 (audio only).
pub fn static_clock_rate(pt: u8) -> Option<u32> {
    match pt {
        0 | 3 | 4 | 5 | 7 | 8 | 12 | 13 | 15 | 18 => Some(8000),
        6 => Some(16000),
        9 => Some(8000), // G.722: 8000 on the wire by RFC 3551's famous erratum
        10 | 11 => Some(44100),
        14 => Some(90000),
        16 => Some(11025),
        17 => Some(22050),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod pt_map_tests {
    use super::*;

    fn leg(codecs: &[(u8, &str)]) -> LegSpec {
        LegSpec {
            codecs: codecs
                .iter()
                .map(|&(pt, name)| CodecSpec::new(pt, name, 8000))
                .collect(),
            ..LegSpec::default()
        }
    }

    #[test]
    fn the_receivers_entry_is_chosen_by_payload_type_then_name_then_order() {
        // The receiver has G.729 twice: a sender on 96 named G729a keeps 96 (same number), one
        // on 97 named G729a goes to the receiver's G729a, one on 18 to its G729 on 18.
        let to = leg(&[(18, "G729"), (96, "G729a")]);
        let m = relay_pt_map(&leg(&[(96, "G729a")]), &to);
        assert_eq!(m[96], 96);
        let m = relay_pt_map(&leg(&[(97, "G729a")]), &to);
        assert_eq!(m[97], 96);
        let m = relay_pt_map(&leg(&[(98, "G729b")]), &to);
        assert_eq!(m[98], 18, "no same name: the receiver's first");
        // A codec the receiver lacks and a payload type the sender did not list: as sent.
        let m = relay_pt_map(&leg(&[(0, "PCMU"), (18, "G729")]), &leg(&[(8, "PCMA")]));
        assert_eq!((m[0], m[18], m[13]), (0, 18, 13));
        // Clock rates differ: not the same codec.
        let mut from = leg(&[(101, "telephone-event")]);
        from.codecs[0].clock_rate = 48000;
        let m = relay_pt_map(&from, &leg(&[(8, "PCMA")]));
        assert_eq!(
            m[101], 101,
            "Auto receiver without telephone-event: events as sent"
        );
        assert_eq!(
            PT_IDENTITY
                .iter()
                .enumerate()
                .filter(|(i, p)| *i as u8 != **p)
                .count(),
            0
        );
    }

    #[test]
    fn events_go_to_an_explicit_rfc2833_receivers_payload_type() {
        let mut to = leg(&[(8, "PCMA")]);
        to.dtmf = DtmfMode::Rfc2833;
        let m = relay_pt_map(&leg(&[(8, "PCMA"), (96, "telephone-event")]), &to);
        assert_eq!(m[96], DEFAULT_TELEPHONE_EVENT_PT);
    }

    #[test]
    fn mapping_keeps_the_marker_bit_and_ignores_short_buffers() {
        let mut m = PT_IDENTITY;
        m[18] = 96;
        let mut p = [0x80, 0x80 | 18, 1, 2];
        map_payload_type(&mut p, &m);
        assert_eq!(p, [0x80, 0x80 | 96, 1, 2]);
        let mut short = [0x80];
        map_payload_type(&mut short, &m);
        assert_eq!(short, [0x80]);
    }
}
