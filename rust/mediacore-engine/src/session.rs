//! The sans-IO relay session.
//!
//! Theory of operation: a `Session` is fed every datagram that arrives on one of its four local
//! ports (`handle_packet`) and the passage of time (`handle_timeout`). For a datagram it returns a
//! [`Verdict`]: forward these same bytes out of the other leg's port of the same channel to a given
//! address, or drop it for a counted reason. The session never reads a clock and never touches a
//! socket; the runtime owns both. The bytes are never copied on the relay path: the caller keeps
//! the buffer and sends it if told to. One byte of it may change: an RTP packet leaves with the
//! payload type the *receiving* party negotiated for its codec (a caller on G.729/18 relayed to
//! a carrier that answered G729a/96 receives 18, the carrier 96). Each relayed direction has a
//! 128-entry map built from both legs' codec lists when the session is created or updated
//! ([`crate::spec::relay_pt_map`]; identity where the numbers agree and for payload types the
//! sender did not negotiate), applied to the packet in place — one load and one store — on
//! every path a sender's packet leaves by: forwarded, re-timed, through the DTMF overlay.
//! Packets the engine makes (transcoded audio, events it plays or converts) are written with the
//! receiver's payload types and are not mapped again. RTCP is not touched. Where the receiving
//! leg asks for a voice gain (`gain_db`), the G.711 payload of a relayed packet is also scaled
//! in place by table, on the same paths, before its payload type is mapped (`gain.rs`).
//!
//! Each leg validates the *source* of what it receives against its latch policy, then parses
//! (RTP: RFC 3550 header; RTCP: compound validation), then records statistics. Media timeouts are
//! armed on a leg only once its party is known (an SDP address or a latched source): a callee
//! that has not answered yet cannot be silent.
//!
//! Decoded directions play out on one playout clock per session (`handle_timeout` at
//! `poll_timeout`): every 20 ms (10 ms when a leg's ptime needs it) each direction pulls one
//! block from its jitter buffer, so both directions of a leg are sample-aligned for its echo
//! canceller: the far-end reference of leg X is the block sent toward X one period earlier.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mediacore_proto::{looks_like_rtcp, parse_compound, ReceptionStats, RtpHeader};

use mediacore_dsp::dtmf::DtmfGenerator;
use mediacore_proto::TelephoneEvent;

use crate::dtmf::{DtmfPlay, DtmfPlayer, PlayStep, Rfc4733Receiver};
use crate::event::{DtmfVia, Event, EventKind};
use crate::gain::{relay_gain, RelayGain};
use crate::overlay::{overlay_needed, DtmfSink, OverlayVerdict, RelayOverlay, END_PACKET_COPIES};
use crate::retime::Retimer;
use crate::spec::{
    map_payload_type, relay_pt_map, static_clock_rate, DtmfMode, DtmfRoute, LatchPolicy, LegSpec,
    PtMap, SessionSpec, Side, PT_IDENTITY,
};
use crate::stats::{DropCounters, EchoCancelStats, JitterBufferStats, LegStats, SessionStats};
use crate::transcode::{needs_transcoding, send_codec, StreamPosition, TranscodePath};
use crate::SessionId;

/// A latched source that has been silent this long may be replaced by a new source (a NAT
/// rebinding or a party that moved); before that, strangers are dropped. 2 s is well above
/// normal packet spacing (20–60 ms) and short enough that a re-INVITE'd phone is heard quickly.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// RTP or RTCP: which of a leg's two ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Rtp,
    Rtcp,
}

/// Why a datagram was dropped (each maps to one counter in [`DropCounters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    MalformedRtp,
    MalformedRtcp,
    ForeignSource,
    NoDestination,
    Oversized,
}

/// What to do with a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the bytes (unchanged but for the RTP payload type, already mapped in place to the
    /// receiving leg's number) from leg `via`'s local port of `channel` to `dest`.
    Forward {
        via: Side,
        channel: Channel,
        dest: SocketAddr,
    },
    /// Taken by a transcoding path: whatever it produced is waiting in `poll_transmit`.
    Consumed,
    Drop(DropReason),
}

/// A datagram the session produced (transcoded media), to be sent from leg `via`'s port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub via: Side,
    pub channel: Channel,
    pub dest: SocketAddr,
    /// A buffer from the session's pool: hand it back with [`Session::recycle`] after sending.
    pub data: Vec<u8>,
}

/// Buffers kept for transcoded packets (per session); enough for a 60 ms burst both ways.
const POOL_MAX: usize = 16;
/// Playout periods run back to back when the clock is late (a stalled worker); beyond this
/// many the clock skips ahead instead of bursting.
const MAX_CATCH_UP: u32 = 10;

struct LegState {
    spec: LegSpec,
    /// RTP clock rate by payload type (0 = unknown), built once from the spec.
    clock: [u32; 128],
    latched_rtp: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    last_rtp_from_latched: Option<Instant>,
    last_rtcp_from_latched: Option<Instant>,
    /// Start of the silence that the timeout measures: the last valid packet, or the moment the
    /// leg became armed (party known, hold state changed).
    silence_since: Option<Instant>,
    last_packet: Option<Instant>,
    timed_out: bool,
    datagrams: u64,
    rx: ReceptionStats,
    rtcp_packets: u64,
    rtcp_bytes: u64,
    sent_rtp_packets: u64,
    sent_rtp_bytes: u64,
    sent_rtcp_packets: u64,
    sent_rtcp_bytes: u64,
    send_errors: u64,
    dropped: DropCounters,
    /// The payload type (and clock) of telephone-events from the party that are digits: its
    /// negotiated one, or the default 101 on an explicit RFC 2833 leg; `None` when the leg's
    /// mode does not take digits from events.
    te_pt: Option<(u8, u32)>,
    dtmf: Rfc4733Receiver,
    /// The first kind of digit an `auto` party sent (VOS3000 "DTMF receive" = "All"): digits
    /// of the other kind are ignored from then on, for the rest of the call.
    dtmf_lock: Option<DtmfLock>,
    /// Digits ignored by that lock (or by an explicit mode refusing SIP INFO).
    dtmf_ignored: u64,
    /// SSRC, sequence number, timestamp and payload length of the party's last RTP packet: an
    /// overlay created later (play DTMF on a relayed direction) continues that stream.
    last_rtp: Option<(u32, u16, u32, usize)>,
}

/// The kind of digit an `auto` party sent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DtmfLock {
    Events,
    Info,
}

/// The start of the error `play_dtmf` gives for SIP INFO digits a party's lock refuses.
pub const DTMF_LOCKED: &str = "DTMF locked";

fn telephone_event(spec: &LegSpec) -> Option<(u8, u32)> {
    match spec.dtmf_route() {
        DtmfRoute::Events {
            pt,
            clock,
            negotiated,
        } if negotiated || spec.dtmf == DtmfMode::Rfc2833 => Some((pt, clock)),
        _ => None,
    }
}

fn clock_table(spec: &LegSpec) -> [u32; 128] {
    let mut t = [0u32; 128];
    for (pt, slot) in t.iter_mut().enumerate() {
        *slot = static_clock_rate(pt as u8).unwrap_or(0);
    }
    for &(pt, rate) in &spec.clock_rates {
        if let Some(slot) = t.get_mut(pt as usize) {
            *slot = rate;
        }
    }
    t
}

impl LegState {
    fn new(spec: LegSpec, now: Instant) -> Self {
        let mut leg = LegState {
            clock: clock_table(&spec),
            spec,
            latched_rtp: None,
            latched_rtcp: None,
            last_rtp_from_latched: None,
            last_rtcp_from_latched: None,
            silence_since: None,
            last_packet: None,
            timed_out: false,
            datagrams: 0,
            rx: ReceptionStats::new(),
            rtcp_packets: 0,
            rtcp_bytes: 0,
            sent_rtp_packets: 0,
            sent_rtp_bytes: 0,
            sent_rtcp_packets: 0,
            sent_rtcp_bytes: 0,
            send_errors: 0,
            dropped: DropCounters::default(),
            te_pt: None,
            dtmf: Rfc4733Receiver::default(),
            dtmf_lock: None,
            dtmf_ignored: 0,
            last_rtp: None,
        };
        leg.te_pt = telephone_event(&leg.spec);
        if leg.spec.remote_rtp.is_some() {
            leg.silence_since = Some(now);
        }
        leg
    }

    fn update(&mut self, spec: LegSpec, now: Instant) {
        let moved =
            spec.remote_rtp != self.spec.remote_rtp || spec.remote_rtcp != self.spec.remote_rtcp;
        let hold_changed = spec.hold != self.spec.hold;
        if moved {
            // A new SDP address (re-INVITE) invalidates what was learned from the old one.
            self.latched_rtp = None;
            self.latched_rtcp = None;
            self.last_rtp_from_latched = None;
            self.last_rtcp_from_latched = None;
        }
        self.clock = clock_table(&spec);
        self.te_pt = telephone_event(&spec);
        self.spec = spec;
        if (moved || hold_changed || self.silence_since.is_none()) && self.spec.remote_rtp.is_some()
        {
            self.silence_since = Some(now);
            self.timed_out = false;
        }
    }

    /// Is `src` an acceptable sender on `channel`? Latches it when the policy allows.
    fn accept_source(&mut self, channel: Channel, src: SocketAddr, now: Instant) -> bool {
        let (sdp, latched, last) = match channel {
            Channel::Rtp => (
                self.spec.remote_rtp,
                &mut self.latched_rtp,
                &mut self.last_rtp_from_latched,
            ),
            Channel::Rtcp => (
                self.rtcp_sdp_addr(),
                &mut self.latched_rtcp,
                &mut self.last_rtcp_from_latched,
            ),
        };
        match self.spec.latch {
            LatchPolicy::Strict => sdp == Some(src),
            LatchPolicy::Learn => {
                let take = match *latched {
                    None => true,
                    Some(cur) if cur == src => true,
                    Some(_) => {
                        last.is_none_or(|t| now.saturating_duration_since(t) >= RELATCH_AFTER)
                    }
                };
                if take {
                    *latched = Some(src);
                    *last = Some(now);
                }
                take
            }
        }
    }

    fn rtcp_sdp_addr(&self) -> Option<SocketAddr> {
        self.spec.remote_rtcp.or_else(|| {
            self.spec.remote_rtp.map(|mut a| {
                a.set_port(a.port().wrapping_add(1));
                a
            })
        })
    }

    /// Where to send toward this leg's party.
    fn destination(&self, channel: Channel) -> Option<SocketAddr> {
        let learn = self.spec.latch == LatchPolicy::Learn;
        let rtp = if learn {
            self.latched_rtp.or(self.spec.remote_rtp)
        } else {
            self.spec.remote_rtp
        };
        let dest = match channel {
            Channel::Rtp => rtp,
            Channel::Rtcp => {
                let latched = if learn { self.latched_rtcp } else { None };
                latched.or(self.spec.remote_rtcp).or_else(|| {
                    rtp.map(|mut a| {
                        a.set_port(a.port().wrapping_add(1));
                        a
                    })
                })
            }
        };
        // 0.0.0.0 / port 0 (old-style hold) is not an address to send to.
        dest.filter(|a| !a.ip().is_unspecified() && a.port() != 0)
    }

    fn timeout(&self, spec: &SessionSpec) -> Duration {
        if self.spec.hold {
            spec.hold_timeout
        } else {
            spec.rtp_timeout
        }
    }

    fn snapshot(&self, side: Side, now: Instant) -> LegStats {
        LegStats {
            side,
            remote_rtp: self.destination(Channel::Rtp),
            remote_rtcp: self.destination(Channel::Rtcp),
            latched: self.latched_rtp.is_some() && self.spec.latch == LatchPolicy::Learn,
            hold: self.spec.hold,
            datagrams: self.datagrams,
            rtp: self.rx.snapshot(),
            rtcp_packets: self.rtcp_packets,
            rtcp_bytes: self.rtcp_bytes,
            sent_rtp_packets: self.sent_rtp_packets,
            sent_rtp_bytes: self.sent_rtp_bytes,
            sent_rtcp_packets: self.sent_rtcp_packets,
            sent_rtcp_bytes: self.sent_rtcp_bytes,
            send_errors: self.send_errors,
            dropped: self.dropped,
            since_last_packet: self.last_packet.map(|t| now.saturating_duration_since(t)),
            timed_out: self.timed_out,
            transcoding: None,
            jitter_buffer: None,
            echo_canceller: None,
            dtmf_ignored: self.dtmf_ignored,
        }
    }
}

/// One two-leg relay session. See the module documentation.
pub struct Session {
    id: SessionId,
    spec: SessionSpec,
    legs: [LegState; 2],
    created: Instant,
    /// Origin for the microsecond arrival times handed to the RFC 3550 statistics.
    epoch: Instant,
    events: VecDeque<Event>,
    /// Transcoding path for traffic *from* each side's party (index = `Side::index`); `None`
    /// where the two parties share a codec and packets are relayed untouched.
    /// (Boxed: a path is kilobytes of codec and buffer state, and most calls have none; the
    /// session stays small to create and to move to its worker.)
    paths: [Option<Box<TranscodePath>>; 2],
    /// Output numbering toward each side's party, kept when a path is rebuilt or removed.
    positions: [Option<StreamPosition>; 2],
    /// Re-timing of a relayed stream from each side's party, where its leg asks for a jitter
    /// buffer on relay (`JitterBufferSpec::relay`).
    retimers: [Option<Retimer>; 2],
    /// Payload-type map of the relayed direction from each side's party (index =
    /// `Side::index`), rebuilt whenever the spec changes.
    pt_maps: [PtMap; 2],
    /// Voice gain of the relayed direction from each side's party (the receiver's `gain_db`
    /// on G.711 payloads, `gain.rs`); `None` at 0 dB. Rebuilt with the payload-type maps.
    gains: [Option<Box<RelayGain>>; 2],
    /// Scratch for packets a re-timer releases.
    released: VecDeque<Vec<u8>>,
    transmits: VecDeque<Transmit>,
    produced: VecDeque<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    /// The playout clock of the decoded directions: the next period, while any plays.
    playout_next: Option<Instant>,
    playout_period: Duration,
    /// Per side: the block sent toward that side's party in the last period (its echo
    /// canceller's far-end reference), zeros when nothing was sent.
    far_ref: [Vec<i16>; 2],
    /// DTMF work on relayed directions, by sending side (see `overlay.rs`).
    overlays: [Option<Box<RelayOverlay>>; 2],
    /// Digits played by the control plane, by receiving side.
    players: [DtmfPlayer; 2],
    /// The digit each player is sounding: its event timestamp and tone generator.
    playing: [Option<PlayingDigit>; 2],
    /// Scratch: digits heard by an overlay; PCM of a played tone.
    heard: Vec<(char, u32)>,
    tone_pcm: Vec<i16>,
}

struct PlayingDigit {
    ts: u32,
    generator: Option<DtmfGenerator>,
    route: DtmfRoute,
}

impl Session {
    /// `spec` must have passed [`SessionSpec::validate`]. Fails only if a codec cannot be set
    /// up for a transcoding direction; the message names it.
    pub fn new(id: SessionId, spec: SessionSpec, now: Instant) -> Result<Self, String> {
        let legs = [
            LegState::new(spec.caller.clone(), now),
            LegState::new(spec.callee.clone(), now),
        ];
        let mut session = Session {
            id,
            spec,
            legs,
            created: now,
            epoch: now,
            events: VecDeque::new(),
            paths: [None, None],
            positions: [None, None],
            retimers: [None, None],
            pt_maps: [PT_IDENTITY; 2],
            gains: [None, None],
            released: VecDeque::new(),
            transmits: VecDeque::new(),
            produced: VecDeque::new(),
            pool: Vec::new(),
            playout_next: None,
            playout_period: Duration::from_millis(20),
            far_ref: [Vec::new(), Vec::new()],
            overlays: [None, None],
            players: [DtmfPlayer::default(), DtmfPlayer::default()],
            playing: [None, None],
            heard: Vec::new(),
            tone_pcm: Vec::new(),
        };
        session.paths = session.build_paths()?;
        session.build_pt_maps();
        session.set_playout_period();
        session.set_retimers();
        session.build_overlays();
        Ok(session)
    }

    /// True when at least one direction decodes and re-encodes (it holds a transcoding slot).
    pub fn is_transcoding(&self) -> bool {
        self.paths.iter().any(Option::is_some)
    }

    fn build_paths(&mut self) -> Result<[Option<Box<TranscodePath>>; 2], String> {
        let mut paths: [Option<Box<TranscodePath>>; 2] = [None, None];
        for from in [Side::Caller, Side::Callee] {
            let (src, dst) = (self.spec.leg(from), self.spec.leg(from.other()));
            if !needs_transcoding(src, dst) {
                continue;
            }
            let to = from.other().index();
            let pos = self.paths[from.index()]
                .as_ref()
                .map(|p| p.position())
                .or(self.positions[to])
                .unwrap_or_else(|| initial_position(self.id, from));
            let path = TranscodePath::new(src, dst, pos).map_err(|e| {
                format!(
                    "transcoding {} to {}: {e}",
                    from.as_str(),
                    from.other().as_str()
                )
            })?;
            paths[from.index()] = Some(Box::new(path));
        }
        Ok(paths)
    }

    /// The payload-type map of each direction, from the legs' codec lists.
    fn build_pt_maps(&mut self) {
        for from in [Side::Caller, Side::Callee] {
            self.pt_maps[from.index()] =
                relay_pt_map(self.spec.leg(from), self.spec.leg(from.other()));
            self.gains[from.index()] = relay_gain(self.spec.leg(from), self.spec.leg(from.other()));
        }
    }

    /// The payload-type map of the direction from `from`'s party (tests and diagnostics).
    pub fn pt_map(&self, from: Side) -> &PtMap {
        &self.pt_maps[from.index()]
    }

    /// Relayed directions whose legs' DTMF modes differ get an overlay; one that exists keeps
    /// its numbering across a re-INVITE. A direction that transcodes needs none.
    fn build_overlays(&mut self) {
        for from in [Side::Caller, Side::Callee] {
            let (src, dst) = (self.spec.leg(from), self.spec.leg(from.other()));
            let i = from.index();
            if self.paths[i].is_some() {
                self.overlays[i] = None;
            } else if let Some(o) = self.overlays[i].as_mut() {
                o.reconfigure(src, dst);
            } else if overlay_needed(src, dst) {
                self.overlays[i] = Some(Box::new(RelayOverlay::new(
                    src,
                    dst,
                    overlay_ssrc(self.id, from),
                )));
            }
        }
    }

    /// Statistics of the transcoding path from `side`'s party, if that direction transcodes.
    pub fn transcode_stats(&self, side: Side) -> Option<crate::transcode::TranscodeStats> {
        self.paths[side.index()].as_ref().map(|p| p.stats)
    }

    /// Jitter buffer of the stream from `side`'s party: decoded, or re-timed on relay.
    pub fn jitter_buffer_stats(&self, side: Side) -> Option<JitterBufferStats> {
        let mode = self.spec.leg(side).jitter_buffer.mode;
        if let Some(path) = self.paths[side.index()].as_ref() {
            return Some(JitterBufferStats {
                mode,
                relay: false,
                stats: path.jitter_stats(),
            });
        }
        let retimer = self.retimers[side.index()].as_ref()?;
        Some(JitterBufferStats {
            mode,
            relay: true,
            stats: retimer.stats(),
        })
    }

    /// A re-timer for each relayed direction whose sender's leg asks for one; one whose
    /// settings did not change is kept (with what it holds).
    fn set_retimers(&mut self) {
        for side in [Side::Caller, Side::Callee] {
            let jb = self.spec.leg(side).jitter_buffer;
            let slot = &mut self.retimers[side.index()];
            if !jb.relay || self.paths[side.index()].is_some() {
                *slot = None;
            } else if slot.as_ref().is_none_or(|r| r.spec() != jb) {
                *slot = Some(Retimer::new(jb));
            }
        }
    }

    /// Sends on what the re-timers hold that is due at `now`.
    fn release_retimed(&mut self, now: Instant) {
        let now_ms = self.clock_ms(now);
        for side in [Side::Caller, Side::Callee] {
            let Some(r) = self.retimers[side.index()].as_mut() else {
                continue;
            };
            r.release(now_ms, &mut self.released);
            let via = side.other();
            if self.overlays[side.index()].is_some() {
                self.overlay_released(now, side);
                continue;
            }
            let out = &mut self.legs[via.index()];
            let dest = out.destination(Channel::Rtp);
            let map = &self.pt_maps[side.index()];
            let gain = self.gains[side.index()].as_deref();
            while let Some(mut buf) = self.released.pop_front() {
                match dest {
                    Some(dest) => {
                        if let Some(g) = gain {
                            g.apply_unparsed(&mut buf);
                        }
                        map_payload_type(&mut buf, map);
                        out.sent_rtp_packets += 1;
                        out.sent_rtp_bytes += buf.len() as u64;
                        self.transmits.push_back(Transmit {
                            via,
                            channel: Channel::Rtp,
                            dest,
                            data: buf,
                        });
                    }
                    None => {
                        if self.pool.len() < POOL_MAX {
                            self.pool.push(buf);
                        }
                    }
                }
            }
        }
    }

    /// Re-timed packets from `side`'s party go through the direction's DTMF overlay: the
    /// overlay works on the stream as the receiver gets it (in order, evenly paced).
    fn overlay_released(&mut self, now: Instant, side: Side) {
        while let Some(mut buf) = self.released.pop_front() {
            let Ok(hdr) = RtpHeader::parse(&buf) else {
                self.recycle(buf);
                continue;
            };
            let Some(ov) = self.overlays[side.index()].as_mut() else {
                self.recycle(buf);
                continue;
            };
            self.heard.clear();
            let v = ov.push(
                now,
                &hdr,
                &buf,
                &mut self.pool,
                &mut self.produced,
                &mut self.heard,
            );
            self.report_heard(now, side);
            if v == OverlayVerdict::Forward {
                if let Some(g) = self.gains[side.index()].as_deref() {
                    g.apply(&hdr, &mut buf);
                }
                map_payload_type(&mut buf, &self.pt_maps[side.index()]);
                self.produced.push_front(buf);
            } else {
                self.recycle(buf);
            }
            if !self.produced.is_empty() {
                let _ = self.send_produced(side.other());
            }
        }
    }

    /// Echo canceller of `side`'s leg, once it has run (both directions decoded).
    pub fn echo_stats(&self, side: Side) -> Option<EchoCancelStats> {
        let path = self.paths[side.index()].as_ref()?;
        Some(EchoCancelStats {
            tail_ms: path.echo_tail_ms()?,
            stats: path.echo_stats()?,
        })
    }

    /// 10 ms when a decoded direction sends 10 or 30 ms packets, else 20 ms.
    fn set_playout_period(&mut self) {
        let fine = [Side::Caller, Side::Callee].iter().any(|&from| {
            self.paths[from.index()].is_some()
                && ![20, 40, 60].contains(&self.spec.leg(from.other()).ptime_ms)
        });
        self.playout_period = Duration::from_millis(if fine { 10 } else { 20 });
        let samples = self.playout_period.as_millis() as usize * 8;
        for r in &mut self.far_ref {
            r.clear();
            r.resize(samples, 0);
        }
        if !self.paths.iter().flatten().any(|p| p.playout_active()) {
            self.playout_next = None;
        }
    }

    /// Milliseconds on the session clock (the jitter buffers' time base).
    fn clock_ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// One playout period at `due`: each decoded direction plays one block; then each leg's
    /// echo reference becomes what was just sent toward it.
    fn playout_tick(&mut self, due: Instant) {
        let now_ms = self.clock_ms(due);
        let samples = self.playout_period.as_millis() as usize * 8;
        for side in [Side::Caller, Side::Callee] {
            let reverse_decoded = self.paths[side.other().index()].is_some();
            let Some(path) = self.paths[side.index()].as_mut() else {
                continue;
            };
            let far = reverse_decoded.then_some(self.far_ref[side.index()].as_slice());
            path.play(now_ms, samples, far, &mut self.pool, &mut self.produced);
            self.collect_path_output(due, side);
        }
        for side in [Side::Caller, Side::Callee] {
            // What was sent toward `side`'s party came from the other side's path.
            let sent = self.paths[side.other().index()]
                .as_ref()
                .map(|p| p.sent_block())
                .unwrap_or(&[]);
            let r = &mut self.far_ref[side.index()];
            let n = sent.len().min(r.len());
            r[..n].copy_from_slice(&sent[..n]);
            r[n..].fill(0);
        }
    }

    /// Events and packets a path produced for traffic from `side`'s party.
    fn collect_path_output(&mut self, now: Instant, side: Side) {
        if let Some(path) = self.paths[side.index()].as_mut() {
            self.heard.clear();
            self.heard.extend(path.take_inband_digits());
            self.report_heard(now, side);
        }
        let via = side.other();
        let out = &mut self.legs[via.index()];
        let Some(dest) = out.destination(Channel::Rtp) else {
            // Nowhere to send (the party went on old-style hold): the packets are not sent.
            while let Some(buf) = self.produced.pop_front() {
                if self.pool.len() < POOL_MAX {
                    self.pool.push(buf);
                }
            }
            return;
        };
        while let Some(buf) = self.produced.pop_front() {
            out.sent_rtp_packets += 1;
            out.sent_rtp_bytes += buf.len() as u64;
            self.transmits.push_back(Transmit {
                via,
                channel: Channel::Rtp,
                dest,
                data: buf,
            });
        }
    }

    /// The next datagram a transcoding path produced, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Returns a sent `Transmit`'s buffer for reuse (no allocation in steady state).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL_MAX {
            self.pool.push(buf);
        }
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn spec(&self) -> &SessionSpec {
        &self.spec
    }

    fn leg_mut(&mut self, side: Side) -> &mut LegState {
        &mut self.legs[side.index()]
    }

    /// Replace the spec (re-INVITE, answer, hold/resume). Counters survive.
    /// On error (a codec that cannot be set up) the session keeps its previous spec.
    pub fn update(&mut self, spec: SessionSpec, now: Instant) -> Result<(), String> {
        let old = std::mem::replace(&mut self.spec, spec);
        for side in [Side::Caller, Side::Callee] {
            if let Some(p) = &self.paths[side.index()] {
                self.positions[side.other().index()] = Some(p.position());
            }
        }
        let mut paths = match self.build_paths() {
            Ok(p) => p,
            Err(e) => {
                self.spec = old;
                return Err(e);
            }
        };
        for (new, old) in paths.iter_mut().zip(self.paths.iter_mut()) {
            if let (Some(new), Some(old)) = (new.as_mut(), old.as_mut()) {
                new.adopt(old);
            }
        }
        self.paths = paths;
        self.build_pt_maps();
        self.set_playout_period();
        self.set_retimers();
        self.build_overlays();
        self.legs[0].update(self.spec.caller.clone(), now);
        self.legs[1].update(self.spec.callee.clone(), now);
        Ok(())
    }

    /// A datagram arrived from `src` on leg `side`'s local port of `channel`. On
    /// [`Verdict::Forward`] of an RTP packet, `data`'s payload type has been mapped to the
    /// receiving leg's (see the module documentation); nothing else in it changes.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        side: Side,
        channel: Channel,
        src: SocketAddr,
        data: &mut [u8],
    ) -> Verdict {
        let arrival_us = now.saturating_duration_since(self.epoch).as_micros() as u64;
        let leg = &mut self.legs[side.index()];
        leg.datagrams += 1;
        // RFC 5761: RTCP may arrive on the RTP port (rtcp-mux); it is relayed as RTCP.
        let channel = if channel == Channel::Rtp && looks_like_rtcp(data) {
            Channel::Rtcp
        } else {
            channel
        };
        if !leg.accept_source(channel, src, now) {
            leg.dropped.foreign_source += 1;
            return Verdict::Drop(DropReason::ForeignSource);
        }
        // An `auto` party's telephone-event after its first digit came as SIP INFO: not relayed.
        let mut locked_out = false;
        // The RTP header, parsed once here and handed on (None for RTCP).
        let rtp = match channel {
            Channel::Rtp => match RtpHeader::parse(&*data) {
                Ok(hdr) => {
                    let rate = leg.clock[(hdr.payload_type & 0x7f) as usize];
                    leg.rx.record(&hdr, data.len(), arrival_us, rate);
                    leg.last_rtp = Some((hdr.ssrc, hdr.sequence, hdr.timestamp, hdr.payload_len));
                    if let Some((_, te_rate)) = leg.te_pt.filter(|(pt, _)| *pt == hdr.payload_type)
                    {
                        if leg.spec.dtmf == DtmfMode::Auto {
                            locked_out = leg.dtmf_lock == Some(DtmfLock::Info);
                            leg.dtmf_lock.get_or_insert(DtmfLock::Events);
                        }
                        let info_to = self.spec.leg(side.other()).dtmf == DtmfMode::Info;
                        let at = self.created;
                        for digit in leg
                            .dtmf
                            .push(&hdr, hdr.payload(data), te_rate, now)
                            .into_iter()
                            .flatten()
                        {
                            if locked_out {
                                leg.dtmf_ignored += 1;
                                continue;
                            }
                            self.events.push_back(dtmf_event(
                                self.id,
                                side,
                                digit,
                                info_to.then_some(side.other()),
                                at_ms(at, now, digit.duration_ms),
                            ));
                        }
                    }
                    Some(hdr)
                }
                Err(_) => {
                    leg.dropped.malformed_rtp += 1;
                    return Verdict::Drop(DropReason::MalformedRtp);
                }
            },
            Channel::Rtcp => match parse_compound(&*data) {
                Ok(_) => {
                    leg.rtcp_packets += 1;
                    leg.rtcp_bytes += data.len() as u64;
                    None
                }
                Err(_) => {
                    leg.dropped.malformed_rtcp += 1;
                    return Verdict::Drop(DropReason::MalformedRtcp);
                }
            },
        };
        leg.last_packet = Some(now);
        leg.silence_since = Some(now);
        leg.timed_out = false;
        if locked_out {
            return Verdict::Consumed;
        }

        if self.paths[side.index()].is_some() {
            return self.transcode(now, side, rtp.as_ref(), &*data);
        }
        if let (Some(r), Some(hdr)) = (self.retimers[side.index()].as_mut(), rtp.as_ref()) {
            if self.legs[side.other().index()]
                .destination(channel)
                .is_some()
            {
                let rate = self.legs[side.index()].clock[(hdr.payload_type & 0x7f) as usize];
                let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
                if r.push(hdr, &*data, rate, now_ms, &mut self.pool).is_none() {
                    // Held; sent on when due (through the DTMF overlay, if there is one).
                    return Verdict::Consumed;
                }
            }
        }
        if let (Some(hdr), Some(ov)) = (rtp.as_ref(), self.overlays[side.index()].as_mut()) {
            self.heard.clear();
            let v = ov.push(
                now,
                hdr,
                &*data,
                &mut self.pool,
                &mut self.produced,
                &mut self.heard,
            );
            self.report_heard(now, side);
            if v == OverlayVerdict::Consumed {
                return self.send_produced(side.other());
            }
        }
        let out = &mut self.legs[side.other().index()];
        match out.destination(channel) {
            Some(dest) => {
                match channel {
                    Channel::Rtp => {
                        if let (Some(g), Some(hdr)) =
                            (self.gains[side.index()].as_deref(), rtp.as_ref())
                        {
                            g.apply(hdr, data);
                        }
                        map_payload_type(data, &self.pt_maps[side.index()]);
                        out.sent_rtp_packets += 1;
                        out.sent_rtp_bytes += data.len() as u64;
                    }
                    Channel::Rtcp => {
                        out.sent_rtcp_packets += 1;
                        out.sent_rtcp_bytes += data.len() as u64;
                    }
                }
                Verdict::Forward {
                    via: side.other(),
                    channel,
                    dest,
                }
            }
            None => {
                self.leg_mut(side).dropped.no_destination += 1;
                Verdict::Drop(DropReason::NoDestination)
            }
        }
    }

    /// Feeds a validated packet from `side`'s party into its transcoding path. RTCP of a
    /// transcoded direction describes a stream the other party never sees, so it ends here.
    fn transcode(
        &mut self,
        now: Instant,
        side: Side,
        rtp: Option<&RtpHeader>,
        data: &[u8],
    ) -> Verdict {
        if self.legs[side.other().index()]
            .destination(Channel::Rtp)
            .is_none()
        {
            self.leg_mut(side).dropped.no_destination += 1;
            return Verdict::Drop(DropReason::NoDestination);
        }
        let Some(hdr) = rtp else {
            return Verdict::Consumed; // RTCP
        };
        let arrival_ms = self.clock_ms(now);
        let codecs = &self.spec.leg(side).codecs;
        // Audio buffered, or a digit to render as tones: the playout clock must run.
        let mut audio = false;
        if let Some(path) = self.paths[side.index()].as_mut() {
            audio = path.push(
                hdr,
                data,
                codecs,
                arrival_ms,
                &mut self.pool,
                &mut self.produced,
            );
        }
        if audio && self.playout_next.is_none() {
            self.playout_next = Some(now + self.playout_period);
        }
        self.collect_path_output(now, side);
        Verdict::Consumed
    }

    /// Raises the digits in `heard` (tones detected in `side`'s audio) as events.
    fn report_heard(&mut self, now: Instant, side: Side) {
        let info_to = self.spec.leg(side.other()).dtmf == DtmfMode::Info;
        for &(digit, duration_ms) in &self.heard {
            self.events.push_back(Event {
                session: self.id,
                side,
                kind: EventKind::Dtmf {
                    inband: true,
                    digit,
                    duration_ms,
                    volume: 0,
                    ended: true,
                    info_to: info_to.then_some(side.other()),
                    at_ms: at_ms(self.created, now, duration_ms),
                },
                silent_for: Duration::ZERO,
            });
        }
    }

    /// Moves what a path, overlay or player produced toward `via`'s party into `transmits`.
    fn send_produced(&mut self, via: Side) -> Verdict {
        let Some(dest) = self.legs[via.index()].destination(Channel::Rtp) else {
            while let Some(buf) = self.produced.pop_front() {
                self.recycle(buf);
            }
            self.leg_mut(via.other()).dropped.no_destination += 1;
            return Verdict::Drop(DropReason::NoDestination);
        };
        let out = &mut self.legs[via.index()];
        while let Some(buf) = self.produced.pop_front() {
            out.sent_rtp_packets += 1;
            out.sent_rtp_bytes += buf.len() as u64;
            self.transmits.push_back(Transmit {
                via,
                channel: Channel::Rtp,
                dest,
                data: buf,
            });
        }
        Verdict::Consumed
    }

    /// Queues `play` toward `to`'s party ("play DTMF"), rendered per that leg's mode: RFC 4733
    /// events on its payload type, tones in its audio, or `DtmfPlayed` events for the SIP layer
    /// to send as SIP INFO. Digits already queued play first. The first step happens at once;
    /// the rest when `handle_timeout` is called at `poll_timeout` (every 20 ms while playing).
    ///
    /// Digits `from_info` (SIP INFO from the other party) are refused with an error starting
    /// [`DTMF_LOCKED`] when that party takes digits another way: its mode is `rfc2833` or
    /// `inband`, or it is `auto` and its first digit came as a telephone-event. An `auto`
    /// party whose first digit is SIP INFO is locked to SIP INFO: its telephone-events are
    /// dropped from then on (VOS3000 "DTMF receive" = "All": the first kind received wins).
    pub fn play_dtmf(&mut self, now: Instant, to: Side, play: &DtmfPlay) -> Result<(), String> {
        let from = to.other();
        if play.from_info {
            let sender = &mut self.legs[from.index()];
            let refused = match sender.spec.dtmf {
                DtmfMode::Info => None,
                DtmfMode::Auto if sender.dtmf_lock != Some(DtmfLock::Events) => {
                    sender.dtmf_lock = Some(DtmfLock::Info);
                    None
                }
                DtmfMode::Auto => Some("its first digit came as RFC 2833"),
                DtmfMode::Rfc2833 => Some("its DTMF mode is rfc2833"),
                DtmfMode::Inband => Some("its DTMF mode is inband"),
            };
            if let Some(why) = refused {
                sender.dtmf_ignored += play.digits.len() as u64;
                return Err(format!(
                    "{DTMF_LOCKED}: SIP INFO digits from the {} ignored ({why})",
                    from.as_str()
                ));
            }
        }
        let route = self.spec.leg(to).dtmf_route();
        if self.paths[from.index()].is_none() && route != DtmfRoute::Info {
            let sender = &self.legs[from.index()];
            let seen = sender.last_rtp.zip(sender.last_packet);
            let overlay = self.overlays[from.index()].get_or_insert_with(|| {
                let mut o = RelayOverlay::new(
                    self.spec.leg(from),
                    self.spec.leg(to),
                    overlay_ssrc(self.id, from),
                );
                if let Some(((ssrc, seq, ts, len), at)) = seen {
                    o.continue_stream(ssrc, seq, ts, len, at);
                }
                Box::new(o)
            });
            if route == DtmfRoute::Inband && !overlay.can_write_audio() {
                return Err(format!(
                    "in-band DTMF toward the {} needs G.711 on a relayed stream (or a transcoded one); this leg's codec is {}",
                    to.as_str(),
                    send_codec(self.spec.leg(to)).map_or("unknown", |(c, _)| c.name.as_str())
                ));
            }
        }
        self.players[to.index()].enqueue(play, now)?;
        self.run_player(now, to);
        self.start_playout(now);
        Ok(())
    }

    /// Digits from `side`'s party ignored because it takes digits another way (its first-kind
    /// lock, or SIP INFO from a party whose mode is not `info`/`auto`).
    pub fn dtmf_ignored(&self, side: Side) -> u64 {
        self.legs[side.index()].dtmf_ignored
    }

    /// Digits queued or sounding toward `to`'s party.
    pub fn dtmf_pending(&self, to: Side) -> usize {
        self.players[to.index()].pending()
    }

    /// The next playout deadline, if any: a step of a digit being played (every 20 ms while
    /// playing) or a period of the decoded directions' playout clock (10 or 20 ms while they
    /// play). Part of `poll_timeout`.
    pub fn poll_playout(&self) -> Option<Instant> {
        self.players
            .iter()
            .filter_map(DtmfPlayer::poll_timeout)
            .chain(self.playout_next)
            .min()
    }

    /// Starts the playout clock at the next period if a decoded direction has something to
    /// play (audio, or a digit's tone) and the clock is not running.
    fn start_playout(&mut self, now: Instant) {
        if self.playout_next.is_none() && self.paths.iter().flatten().any(|p| p.playout_active()) {
            self.playout_next = Some(now + self.playout_period);
        }
    }

    fn run_player(&mut self, now: Instant, to: Side) {
        while let Some(step) = self.players[to.index()].poll(now) {
            self.play_step(now, to, step);
        }
        if !self.produced.is_empty() {
            let _ = self.send_produced(to);
        }
    }

    fn play_step(&mut self, now: Instant, to: Side, step: PlayStep) {
        let from = to.other().index();
        let route = self.spec.leg(to).dtmf_route();
        let sink: Option<&mut dyn DtmfSink> =
            match (&mut self.paths[from], &mut self.overlays[from]) {
                (Some(p), _) => Some(&mut **p),
                (None, Some(o)) => Some(&mut **o),
                (None, None) => None,
            };
        match step {
            PlayStep::Begin {
                digit,
                volume,
                samples,
                ..
            } => {
                let mut generator = (route == DtmfRoute::Inband)
                    .then(|| DtmfGenerator::new(digit, -f32::from(volume), u64::from(samples)))
                    .flatten();
                let ts = sink.map_or(0, |s| {
                    if route == DtmfRoute::Inband {
                        s.set_suppress(true);
                        // A transcoding path sounds the tone on its playout clock; the relay
                        // overlay takes it piece by piece.
                        generator = generator.take().and_then(|g| s.own_tone(g, samples));
                    }
                    s.stream_ts(now)
                });
                self.playing[to.index()] = Some(PlayingDigit {
                    ts,
                    generator,
                    route,
                });
                if route == DtmfRoute::Info {
                    self.played_event(now, to, digit, samples / 8, volume, DtmfVia::Info, now);
                }
            }
            PlayStep::Piece {
                digit,
                code,
                volume,
                from: pos,
                n,
                end,
                started,
            } => {
                let Some(playing) = self.playing[to.index()].as_mut() else {
                    return;
                };
                let via = match playing.route {
                    DtmfRoute::Events { pt, clock, .. } => {
                        if let Some(s) = sink {
                            let units = (clock / 8000).max(1);
                            let duration = ((pos + n) * units).min(u32::from(u16::MAX)) as u16;
                            let ev = TelephoneEvent {
                                event: code,
                                end,
                                volume,
                                duration,
                            };
                            let copies = if end { END_PACKET_COPIES } else { 1 };
                            s.send_event(
                                pt,
                                pos == 0,
                                playing.ts,
                                ev,
                                copies,
                                &mut self.pool,
                                &mut self.produced,
                            );
                        }
                        DtmfVia::Rfc2833
                    }
                    DtmfRoute::Inband => {
                        if let Some(s) = sink {
                            if let Some(g) = playing.generator.as_mut() {
                                self.tone_pcm.clear();
                                self.tone_pcm.resize(n as usize, 0);
                                g.fill(&mut self.tone_pcm);
                                s.send_pcm(now, &self.tone_pcm, &mut self.pool, &mut self.produced);
                            }
                            if end {
                                s.set_suppress(false);
                            }
                        }
                        DtmfVia::Inband
                    }
                    DtmfRoute::Info => DtmfVia::Info,
                };
                if end {
                    self.playing[to.index()] = None;
                    if via != DtmfVia::Info {
                        self.played_event(now, to, digit, (pos + n) / 8, volume, via, started);
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn played_event(
        &mut self,
        _now: Instant,
        to: Side,
        digit: char,
        duration_ms: u32,
        volume: u8,
        via: DtmfVia,
        started: Instant,
    ) {
        self.events.push_back(Event {
            session: self.id,
            side: to,
            kind: EventKind::DtmfPlayed {
                digit,
                duration_ms,
                volume,
                via,
                at_ms: started.saturating_duration_since(self.created).as_millis() as u64,
            },
            silent_for: Duration::ZERO,
        });
    }

    /// A datagram arrived on leg `side` that did not fit the runtime's receive buffer.
    pub fn note_oversized(&mut self, side: Side) {
        let leg = self.leg_mut(side);
        leg.datagrams += 1;
        leg.dropped.oversized += 1;
    }

    /// The runtime could not send a forwarded datagram toward leg `via`'s party.
    pub fn note_send_failed(&mut self, via: Side, channel: Channel, len: usize) {
        let leg = self.leg_mut(via);
        leg.send_errors += 1;
        match channel {
            Channel::Rtp => {
                leg.sent_rtp_packets = leg.sent_rtp_packets.saturating_sub(1);
                leg.sent_rtp_bytes = leg.sent_rtp_bytes.saturating_sub(len as u64);
            }
            Channel::Rtcp => {
                leg.sent_rtcp_packets = leg.sent_rtcp_packets.saturating_sub(1);
                leg.sent_rtcp_bytes = leg.sent_rtcp_bytes.saturating_sub(len as u64);
            }
        }
    }

    /// Time has passed: play the digits that are due, play out what is due, raise timeout
    /// events that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for to in [Side::Caller, Side::Callee] {
            if self.players[to.index()]
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.run_player(now, to);
            }
        }
        self.start_playout(now);
        self.release_retimed(now);
        let mut rounds = 0;
        while let Some(due) = self.playout_next.filter(|d| *d <= now) {
            if rounds == MAX_CATCH_UP {
                self.playout_next = Some(now + self.playout_period);
                break;
            }
            self.playout_tick(due);
            rounds += 1;
            let active = self.paths.iter().flatten().any(|p| p.playout_active());
            self.playout_next = active.then(|| due + self.playout_period);
        }
        for side in [Side::Caller, Side::Callee] {
            let leg = &mut self.legs[side.index()];
            let rate = leg.te_pt.map_or(8000, |(_, r)| r);
            if let Some(digit) = leg.dtmf.handle_timeout(now, rate) {
                let info_to = self.spec.leg(side.other()).dtmf == DtmfMode::Info;
                let at = at_ms(self.created, now, digit.duration_ms);
                self.events.push_back(dtmf_event(
                    self.id,
                    side,
                    digit,
                    info_to.then_some(side.other()),
                    at,
                ));
            }
        }
        for side in [Side::Caller, Side::Callee] {
            let leg = &self.legs[side.index()];
            let Some(since) = leg.silence_since else {
                continue;
            };
            if leg.timed_out {
                continue;
            }
            let limit = leg.timeout(&self.spec);
            let silent = now.saturating_duration_since(since);
            if silent >= limit {
                let kind = if leg.spec.hold {
                    EventKind::HoldTimeout
                } else {
                    EventKind::MediaTimeout
                };
                self.events.push_back(Event {
                    session: self.id,
                    side,
                    kind,
                    silent_for: silent,
                });
                self.legs[side.index()].timed_out = true;
            }
        }
    }

    /// The next instant at which `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let silence = self
            .legs
            .iter()
            .filter(|l| !l.timed_out)
            .filter_map(|l| l.silence_since.map(|s| s + l.timeout(&self.spec)));
        let dtmf = self.legs.iter().filter_map(|l| l.dtmf.poll_timeout());
        let retimed = self
            .retimers
            .iter()
            .flatten()
            .filter_map(|r| r.next_due_ms())
            .map(|ms| self.epoch + Duration::from_millis(ms));
        silence
            .chain(dtmf)
            .chain(self.poll_playout())
            .chain(retimed)
            .min()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn stats(&self, now: Instant) -> SessionStats {
        SessionStats {
            id: self.id,
            age: now.saturating_duration_since(self.created),
            caller: LegStats {
                transcoding: self.transcode_stats(Side::Caller),
                jitter_buffer: self.jitter_buffer_stats(Side::Caller),
                echo_canceller: self.echo_stats(Side::Caller),
                ..self.legs[0].snapshot(Side::Caller, now)
            },
            callee: LegStats {
                transcoding: self.transcode_stats(Side::Callee),
                jitter_buffer: self.jitter_buffer_stats(Side::Callee),
                echo_canceller: self.echo_stats(Side::Callee),
                ..self.legs[1].snapshot(Side::Callee, now)
            },
        }
    }
}

/// Where a new output stream starts: RFC 3550 asks for unpredictable initial values; a hash of
/// the session id and direction gives distinct, reproducible ones without a random source.
fn initial_position(id: SessionId, from: Side) -> StreamPosition {
    let mut x = id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (from.index() as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    StreamPosition {
        ssrc: (x >> 32) as u32 | 1,
        next_seq: (x >> 16) as u16 & 0x7fff,
        next_ts: x as u32 & 0x7fff_ffff,
    }
}

fn dtmf_event(
    session: SessionId,
    side: Side,
    d: crate::dtmf::Digit,
    info_to: Option<Side>,
    at_ms: u64,
) -> Event {
    Event {
        session,
        side,
        kind: EventKind::Dtmf {
            inband: false,
            digit: d.digit,
            duration_ms: d.duration_ms,
            volume: d.volume,
            ended: d.ended,
            info_to,
            at_ms,
        },
        silent_for: Duration::ZERO,
    }
}

/// When a digit of `duration_ms` that ended at `now` began, in ms since `created`.
fn at_ms(created: Instant, now: Instant, duration_ms: u32) -> u64 {
    let since = now.saturating_duration_since(created).as_millis() as u64;
    since.saturating_sub(u64::from(duration_ms))
}

/// SSRC of packets an overlay adds before the sender has sent anything (after that, the
/// sender's own SSRC is used).
fn overlay_ssrc(id: SessionId, from: Side) -> u32 {
    initial_position(id, from).ssrc ^ 0x5a5a_0000
}

#[cfg(test)]
mod footprint {
    /// A worker keeps one `Session` per call for the call's life (10,000 held calls are 10,000
    /// of them), and most calls relay: the codec paths and DTMF overlays, kilobytes each, are
    /// boxed and exist only where used. It was 17.8 kB inline; now a few kB.
    #[test]
    fn a_session_without_codec_work_stays_small() {
        let size = std::mem::size_of::<super::Session>();
        assert!(size <= 6 * 1024, "Session is {size} bytes");
    }
}
