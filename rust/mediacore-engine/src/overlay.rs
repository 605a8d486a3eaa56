//! DTMF conversion on a relayed direction: the packets stay the sender's, with DTMF work laid
//! over them.
//!
//! Theory of operation. A relayed direction forwards the sender's bytes untouched. When the
//! legs' DTMF modes differ (or the control plane plays digits toward the receiver), the
//! overlay takes part in that direction without decoding and re-encoding everything:
//!
//! - **Numbering.** The receiver sees one RTP stream: the sender's SSRC and timestamps, and
//!   sequence numbers `sender's + offset`. Every packet the overlay adds (an RFC 4733 event,
//!   a tone packet) takes the next sequence number and raises the offset by one; every packet
//!   it keeps back lowers it by one. While the offset is zero the sender's packets go out as
//!   they came (no copy); otherwise each is copied into a pooled buffer and renumbered, so the
//!   receiver never sees a gap or a duplicate that the sender did not cause. A new sender SSRC
//!   is a new stream and starts at offset zero.
//! - **Events → tones** (sender RFC 2833, receiver in-band; G.711 only). Each telephone-event
//!   packet says how much of the digit should have sounded (its duration from the event
//!   timestamp). The overlay keeps `covered`, the timestamp up to which the receiver has audio:
//!   an event packet that reaches past it is replaced by tone audio for the missing samples
//!   (same sequence slot; more packets if more than 20 ms is missing), and a sender audio packet
//!   that falls inside the digit gets the tone written over its payload (the waveform is a
//!   function of the position in the digit, so pieces line up whatever arrives). Whatever is
//!   already covered is kept back, so a sender that sends audio and events at once is heard
//!   once.
//! - **Tones → events or INFO** (sender in-band; G.711 only). Each audio packet is decoded by
//!   table (G.711 is a lookup per sample) for the Goertzel detector only — nothing is
//!   re-encoded except while a tone sounds, when the payload is replaced by G.711 silence so the
//!   digit does not reach the receiver twice. Toward an RFC 2833 receiver a confirmed digit
//!   starts an event (marker, the tone's start timestamp) updated after each audio packet and
//!   closed by three end packets.
//! - **Events → INFO** and a sender whose mode does not take events: telephone-event packets
//!   are kept back. **Events → events** with different negotiated payload types need no
//!   overlay: the direction's payload-type map renumbers them like any relayed packet.
//! - **Payload types.** Every sender packet that leaves through the overlay (a renumbered copy,
//!   one with a tone written over it) gets its payload type from the direction's map
//!   ([`crate::spec::relay_pt_map`]), once; one the overlay hands back as `Forward` is mapped by
//!   the session. What the overlay makes itself carries the receiver's numbers already: events
//!   the receiver's telephone-event type, tone audio the mapped type of the sender's audio.
//!   A voice gain toward the receiver (`gain.rs`) is applied with the map, to the sender's
//!   audio only: tones and silence the overlay writes keep their level.
//! - **Play DTMF** (`DtmfSink`): events are inserted at the stream's current timestamp (the
//!   sender's last timestamp, advanced by the wall time since when it fell silent); tones are
//!   inserted as G.711 packets while the sender's own audio is kept back.
//!
//! Cost: nothing per packet on a direction without an overlay. With one, a table decode and
//! the detector (about 0.4 µs per 20 ms) where tones are listened for, and a 172-byte copy per
//! packet while the offset is not zero.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mediacore_dsp::codec::{g711, CodecDef, CodecKind};
use mediacore_dsp::dtmf::{DetectorEvent, DtmfDetector, DtmfGenerator};
use mediacore_proto::{digit_for_event, event_for_digit, RtpHeader, TelephoneEvent};

use crate::gain::{relay_gain, RelayGain};
use crate::spec::{map_payload_type, relay_pt_map, DtmfRoute, LegSpec, PtMap, PT_IDENTITY};
use crate::transcode::send_codec;

/// What the session does with the packet after the overlay saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayVerdict {
    /// Send the sender's bytes unchanged but for the payload-type map, which the session
    /// applies.
    Forward,
    /// The overlay queued what goes out instead (possibly nothing).
    Consumed,
}

/// Counters of one overlay (per direction).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverlayStats {
    /// Sender packets sent as a renumbered copy.
    pub rewritten: u64,
    /// Packets the overlay added: events, tone audio.
    pub inserted: u64,
    /// Sender packets kept back: events toward an INFO or in-band receiver, events from a
    /// sender whose mode does not take them, audio replaced by a played digit.
    pub suppressed: u64,
    /// Sender audio packets sent with a tone written over them, or with a tone muted.
    pub replaced: u64,
}

/// Tone level when an event says 0 (0 dBm0 would be too loud); as on the transcoding path.
const DEFAULT_TONE_DBM0: f32 = -10.0;
/// Volume reported in events for detected tones (-dBm0).
const DETECTED_TONE_VOLUME: u8 = 10;
/// RFC 4733 §2.5.1.4: the end packet is sent three times.
pub const END_PACKET_COPIES: usize = 3;
/// Largest audio piece the overlay writes at once (20 ms).
const PIECE: u32 = 160;

/// Is `a` before `b` in wrapping 32-bit timestamp arithmetic?
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    ts: u32,
    /// Timestamp units the packet covered.
    units: u32,
    at: Instant,
}

struct RelayTone {
    event_ts: u32,
    generator: DtmfGenerator,
    /// The final duration (8 kHz samples) once the end packet came.
    end: Option<u32>,
    /// The longest duration the events announced so far (8 kHz samples).
    announced: u32,
}

/// Sender audio this far (8 kHz samples, 150 ms: three missed 50 ms updates) past what a digit's
/// events announced ends the digit when its end packets were lost (as on the transcoding path).
const LOST_END_SAMPLES: u32 = 1200;
/// Sender audio this far (1 s) before the audio we generated is a jump in its clock, not an
/// overlap: it is passed on and our coverage forgotten.
const MAX_OVERLAP_SAMPLES: u32 = 8000;

struct Sending {
    code: u8,
    ts: u32,
    first: bool,
    ending: bool,
    duration: u32,
}

struct Detect {
    detector: DtmfDetector,
    found: Vec<DetectorEvent>,
    pcm: Vec<i16>,
    sending: Option<Sending>,
}

/// DTMF work on one relayed direction (sender → receiver). See the module documentation.
pub struct RelayOverlay {
    src: DtmfRoute,
    dst: DtmfRoute,
    /// The sender's telephone-event payload type, when it negotiated one.
    src_te: Option<u8>,
    /// Sender payload type → receiver payload type (the session's map of this direction).
    pt_map: PtMap,
    /// Voice gain toward the receiver on the sender's G.711 audio (the session's of this
    /// direction), applied to the sender's packets that leave as copies; tones we write keep
    /// their level.
    gain: Option<Box<RelayGain>>,
    /// The shared codec when it is G.711 (audio work possible), else `None`.
    codec: Option<&'static CodecDef>,
    /// Payload type of tone packets we write: the sender's last audio payload type, mapped.
    audio_pt: u8,
    /// RTP timestamp units per 8 kHz sample of the audio codec.
    units: u32,
    ssrc: Option<u32>,
    own_ssrc: u32,
    highest: Option<u16>,
    offset: u16,
    last: Option<Clock>,
    /// Where our own clock started, for a stream the sender never sent on.
    origin: Option<(Instant, u32)>,
    covered: Option<u32>,
    /// Audio we generated reaches this timestamp: sender audio before it is kept back.
    own_until: Option<u32>,
    tone: Option<RelayTone>,
    /// Event timestamp of the last digit rendered as tones (its stragglers are ignored).
    finished_ts: Option<u32>,
    detect: Option<Detect>,
    /// A played digit sounds: the sender's audio is kept back.
    suppress: bool,
    scratch: Vec<i16>,
    pub stats: OverlayStats,
}

/// Does a relayed direction from `from` to `to` need an overlay for the legs' DTMF modes?
pub fn overlay_needed(from: &LegSpec, to: &LegSpec) -> bool {
    let (src, dst) = (from.dtmf_route(), to.dtmf_route());
    let src_te = from.telephone_event().map(|t| t.0);
    match (src, dst) {
        // Different payload types are the payload-type map's work.
        (DtmfRoute::Events { .. }, DtmfRoute::Events { .. }) => false,
        (DtmfRoute::Events { .. }, _) => true,
        // A sender whose mode does not take events: its telephone-events are kept back.
        (_, _) if src_te.is_some() => true,
        (DtmfRoute::Inband, DtmfRoute::Events { .. } | DtmfRoute::Info) => true,
        _ => false,
    }
}

impl RelayOverlay {
    pub fn new(from: &LegSpec, to: &LegSpec, own_ssrc: u32) -> Self {
        let mut o = RelayOverlay {
            src: DtmfRoute::Inband,
            dst: DtmfRoute::Inband,
            src_te: None,
            pt_map: PT_IDENTITY,
            gain: None,
            codec: None,
            audio_pt: 0,
            units: 1,
            ssrc: None,
            own_ssrc,
            highest: None,
            offset: 0,
            last: None,
            origin: None,
            covered: None,
            own_until: None,
            tone: None,
            finished_ts: None,
            detect: None,
            suppress: false,
            scratch: Vec::with_capacity(PIECE as usize),
            stats: OverlayStats::default(),
        };
        o.reconfigure(from, to);
        o
    }

    /// New legs (re-INVITE): modes and payload types change, numbering continues.
    pub fn reconfigure(&mut self, from: &LegSpec, to: &LegSpec) {
        self.src = from.dtmf_route();
        self.dst = to.dtmf_route();
        self.src_te = from.sent_event_pt();
        self.pt_map = relay_pt_map(from, to);
        self.gain = relay_gain(from, to);
        let shared = send_codec(from).map(|(c, d)| (c.pt, d));
        self.codec = shared
            .map(|(_, d)| d)
            .filter(|d| matches!(d.kind, CodecKind::Pcma | CodecKind::Pcmu));
        if let Some((pt, d)) = shared {
            self.audio_pt = self.mapped(pt);
            self.units = d.rtp_units_per_sample().max(1);
        }
        let listen = self.src == DtmfRoute::Inband && self.dst != DtmfRoute::Inband;
        if listen && self.codec.is_some() {
            if self.detect.is_none() {
                self.detect = Some(Detect {
                    detector: DtmfDetector::new(),
                    found: Vec::with_capacity(4),
                    pcm: Vec::with_capacity(480),
                    sending: None,
                });
            }
        } else {
            self.detect = None;
        }
    }

    /// An overlay created mid-call continues the sender's stream as last seen: SSRC, sequence
    /// number, timestamp and payload length (samples, for G.711) of its last packet at `at`.
    pub fn continue_stream(&mut self, ssrc: u32, seq: u16, ts: u32, len: usize, at: Instant) {
        self.ssrc = Some(ssrc);
        self.highest = Some(seq);
        let units = if self.codec.is_some() {
            len as u32 * self.units
        } else {
            0
        };
        self.last = Some(Clock { ts, units, at });
    }

    /// Whether in-band audio can be written into this stream (the shared codec is G.711).
    pub fn can_write_audio(&self) -> bool {
        self.codec.is_some()
    }

    /// Takes one valid RTP packet from the sender. Digits heard as tones are appended to
    /// `digits` as (digit, duration ms, start timestamp offset in ms from now); what goes out
    /// instead of the packet is appended to `out`.
    pub fn push(
        &mut self,
        now: Instant,
        hdr: &RtpHeader,
        data: &[u8],
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
        digits: &mut Vec<(char, u32)>,
    ) -> OverlayVerdict {
        if self.ssrc != Some(hdr.ssrc) {
            // A new stream (a restarted phone, or our own numbering before the sender spoke).
            self.ssrc = Some(hdr.ssrc);
            self.highest = None;
            self.offset = 0;
            self.last = None;
            self.covered = None;
            self.own_until = None;
            self.tone = None;
            self.finished_ts = None;
        }
        let in_order = match self.highest {
            None => true,
            Some(h) => (hdr.sequence.wrapping_sub(h) as i16) > 0,
        };
        if in_order {
            self.highest = Some(hdr.sequence);
        }
        if self.src_te == Some(hdr.payload_type) {
            return self.event_packet(hdr, data, in_order, pool, out);
        }
        self.audio_pt = self.mapped(hdr.payload_type);
        self.audio_packet(now, hdr, data, in_order, pool, out, digits)
    }

    fn keep_back(&mut self, in_order: bool) -> OverlayVerdict {
        if in_order {
            self.offset = self.offset.wrapping_sub(1);
        }
        self.stats.suppressed += 1;
        OverlayVerdict::Consumed
    }

    /// The receiver's payload type for the sender's `pt`.
    fn mapped(&self, pt: u8) -> u8 {
        self.pt_map[usize::from(pt & 0x7f)]
    }

    /// The sender's packet as it goes out: as it came (the session maps its payload type), or
    /// renumbered and mapped in a copy.
    fn pass(
        &mut self,
        hdr: &RtpHeader,
        data: &[u8],
        out: &mut VecDeque<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> OverlayVerdict {
        if self.offset == 0 {
            return OverlayVerdict::Forward;
        }
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        if let Some(seq) = buf.get_mut(2..4) {
            seq.copy_from_slice(&hdr.sequence.wrapping_add(self.offset).to_be_bytes());
        }
        if let Some(g) = self.gain.as_deref() {
            g.apply(hdr, &mut buf);
        }
        map_payload_type(&mut buf, &self.pt_map);
        self.stats.rewritten += 1;
        out.push_back(buf);
        OverlayVerdict::Consumed
    }

    fn event_packet(
        &mut self,
        hdr: &RtpHeader,
        data: &[u8],
        in_order: bool,
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) -> OverlayVerdict {
        match self.dst {
            _ if !self.src.is_events() => self.keep_back(in_order),
            DtmfRoute::Info => self.keep_back(in_order),
            DtmfRoute::Events { .. } => self.pass(hdr, data, out, pool),
            DtmfRoute::Inband if self.codec.is_none() => self.keep_back(in_order),
            DtmfRoute::Inband => self.event_to_tone(hdr, data, in_order, pool, out),
        }
    }

    /// An RFC 2833 packet toward an in-band receiver: tone audio for whatever of the digit the
    /// receiver does not have yet, in this packet's sequence slot.
    fn event_to_tone(
        &mut self,
        hdr: &RtpHeader,
        data: &[u8],
        in_order: bool,
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) -> OverlayVerdict {
        let Ok(ev) = TelephoneEvent::parse(hdr.payload(data)) else {
            return self.keep_back(in_order);
        };
        let Some(digit) = digit_for_event(ev.event).filter(|d| *d != 'F') else {
            return self.keep_back(in_order);
        };
        if self.finished_ts == Some(hdr.timestamp) {
            return self.keep_back(in_order); // a retransmitted end of a digit already played
        }
        if self
            .tone
            .as_ref()
            .is_none_or(|t| t.event_ts != hdr.timestamp)
        {
            let level = if ev.volume == 0 {
                DEFAULT_TONE_DBM0
            } else {
                -f32::from(ev.volume)
            };
            let Some(generator) = DtmfGenerator::new(digit, level, u64::MAX / 2) else {
                return self.keep_back(in_order);
            };
            self.tone = Some(RelayTone {
                event_ts: hdr.timestamp,
                generator,
                end: None,
                announced: 0,
            });
        }
        let units = self.units;
        let Some(tone) = self.tone.as_mut() else {
            return self.keep_back(in_order);
        };
        let duration = u32::from(ev.duration) / units;
        tone.announced = tone.announced.max(duration);
        if ev.end {
            tone.end = Some(duration);
        }
        let event_ts = tone.event_ts;
        let target = event_ts.wrapping_add(duration * units);
        let start = match self.covered {
            Some(c) if !ts_before(c, event_ts) => c,
            _ => event_ts,
        };
        let mut produced = 0;
        let mut at = start;
        let mut replaced_slot = false;
        while ts_before(at, target) {
            let pos = at.wrapping_sub(event_ts) / units;
            let n = (target.wrapping_sub(at) / units).min(PIECE);
            if n == 0 {
                break;
            }
            let seq = if replaced_slot || !in_order {
                self.insert_seq()
            } else {
                replaced_slot = true;
                hdr.sequence.wrapping_add(self.offset)
            };
            self.tone_piece(pos, n, None);
            if let Some(buf) = self.audio_buf(seq, at, pool) {
                out.push_back(buf);
                produced += 1;
            }
            at = at.wrapping_add(n * units);
            self.covered = Some(at);
        }
        if ev.end {
            self.finished_ts = Some(event_ts);
        }
        if produced == 0 {
            return self.keep_back(in_order);
        }
        if !replaced_slot && in_order {
            // Every piece was inserted and this packet's own slot went unused.
            self.offset = self.offset.wrapping_sub(1);
        }
        OverlayVerdict::Consumed
    }

    /// Fills `scratch` with `n` samples of the current tone from position `pos`; positions at
    /// or past `end` are silence.
    fn tone_piece(&mut self, pos: u32, n: u32, end: Option<u32>) {
        self.scratch.clear();
        self.scratch.resize(n as usize, 0);
        if let Some(t) = self.tone.as_mut() {
            let end = end.or(t.end).unwrap_or(u32::MAX);
            let sounding = end.saturating_sub(pos).min(n) as usize;
            t.generator.seek(u64::from(pos));
            if let Some(head) = self.scratch.get_mut(..sounding) {
                t.generator.fill(head);
            }
        }
    }

    /// A G.711 packet of `scratch` with the sender's SSRC and audio payload type.
    fn audio_buf(&mut self, seq: u16, ts: u32, pool: &mut Vec<Vec<u8>>) -> Option<Vec<u8>> {
        let codec = self.codec?;
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.resize(RtpHeader::MIN_LEN, 0);
        let h = header(self.audio_pt, false, seq, ts, self.stream_ssrc());
        if h.write_basic(&mut buf).is_none() {
            pool.push(buf);
            return None;
        }
        encode_g711(codec, &self.scratch, &mut buf);
        self.stats.inserted += 1;
        Some(buf)
    }

    #[allow(clippy::too_many_arguments)]
    fn audio_packet(
        &mut self,
        now: Instant,
        hdr: &RtpHeader,
        data: &[u8],
        in_order: bool,
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
        digits: &mut Vec<(char, u32)>,
    ) -> OverlayVerdict {
        let payload = hdr.payload(data);
        let Some(codec) = self.codec else {
            // No audio work possible: numbering only.
            self.note_clock(hdr, 0, now, in_order);
            return self.pass(hdr, data, out, pool);
        };
        let n = payload.len() as u32; // G.711: one byte per sample
        let ts = hdr.timestamp;
        self.note_clock(hdr, n, now, in_order);
        if self.suppress {
            return self.keep_back(in_order);
        }
        if let Some(own) = self.own_until {
            let behind = own.wrapping_sub(ts) / self.units;
            if ts_before(ts, own) && behind <= MAX_OVERLAP_SAMPLES {
                return self.keep_back(in_order);
            }
            self.own_until = None;
            if ts_before(ts, own) {
                self.covered = None; // the sender's clock jumped back: follow it
            }
        }
        // Sender audio inside a digit rendered from events: the tone goes over it.
        let mut tone_from = None;
        if let Some(t) = self.tone.as_mut() {
            if !ts_before(ts, t.event_ts) {
                let pos = ts.wrapping_sub(t.event_ts) / self.units;
                if t.end.is_none() && pos > t.announced.saturating_add(LOST_END_SAMPLES) {
                    t.end = Some(t.announced); // its end packets were lost
                }
                match t.end {
                    Some(end) if pos >= end => {
                        self.tone = None;
                    }
                    _ => tone_from = Some(pos),
                }
            }
        }
        if tone_from.is_some() {
            if let Some(c) = self.covered {
                if !ts_before(c, ts.wrapping_add(n * self.units)) {
                    return self.keep_back(in_order); // the events' tone already covers it
                }
            }
        }
        // Tones in the sender's audio toward an RFC 2833 / INFO receiver.
        let mut mute = false;
        if let Some(d) = self.detect.as_mut() {
            d.pcm.clear();
            decode_g711(codec, payload, &mut d.pcm);
            let p0 = d.detector.position();
            let first = d.found.len();
            d.detector.process(&d.pcm, &mut d.found);
            for e in d.found.drain(first..) {
                match e {
                    DetectorEvent::Start { digit, at_sample } => {
                        if let Some(code) = event_for_digit(digit) {
                            let back = p0.saturating_sub(at_sample).min(u64::from(u32::MAX));
                            let event_ts = ts.wrapping_sub(back as u32 * self.units);
                            d.sending = Some(Sending {
                                code,
                                ts: event_ts,
                                first: true,
                                ending: false,
                                duration: 0,
                            });
                        }
                    }
                    DetectorEvent::End {
                        digit,
                        duration_samples,
                        ..
                    } => {
                        digits.push((digit, (duration_samples / 8) as u32));
                        if let Some(s) = d.sending.as_mut() {
                            s.ending = true;
                            s.duration = (duration_samples as u32).saturating_mul(self.units);
                        }
                    }
                }
            }
            d.found.clear();
            mute = d.detector.in_tone() || d.sending.as_ref().is_some_and(|s| !s.ending);
        }
        let end_ts = ts.wrapping_add(n * self.units);
        if self.covered.is_none_or(|c| ts_before(c, end_ts)) {
            self.covered = Some(end_ts);
        }
        let verdict = if let Some(pos) = tone_from {
            self.tone_piece(pos, n, None);
            self.stats.replaced += 1;
            self.replace_payload(hdr, data, pool, out, codec);
            OverlayVerdict::Consumed
        } else if mute {
            self.scratch.clear();
            self.scratch.resize(n as usize, 0);
            self.stats.replaced += 1;
            self.replace_payload(hdr, data, pool, out, codec);
            OverlayVerdict::Consumed
        } else {
            self.pass(hdr, data, out, pool)
        };
        let events = self.detected_event_update(end_ts, pool);
        if events.is_empty() {
            return verdict;
        }
        if verdict == OverlayVerdict::Forward {
            // The events follow the audio packet, so it goes out as a copy too.
            let mut buf = pool.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(data);
            if let Some(g) = self.gain.as_deref() {
                g.apply(hdr, &mut buf);
            }
            map_payload_type(&mut buf, &self.pt_map);
            out.push_back(buf);
        }
        out.extend(events);
        OverlayVerdict::Consumed
    }

    fn note_clock(&mut self, hdr: &RtpHeader, n: u32, now: Instant, in_order: bool) {
        if in_order {
            self.last = Some(Clock {
                ts: hdr.timestamp,
                units: n * self.units,
                at: now,
            });
        }
    }

    /// The sender's packet with `scratch` (G.711-encoded) as its payload.
    fn replace_payload(
        &mut self,
        hdr: &RtpHeader,
        data: &[u8],
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
        codec: &'static CodecDef,
    ) {
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data.get(..hdr.header_len).unwrap_or_default());
        if let Some(b) = buf.first_mut() {
            *b &= !0x20; // no padding after the new payload
        }
        if let Some(seq) = buf.get_mut(2..4) {
            seq.copy_from_slice(&hdr.sequence.wrapping_add(self.offset).to_be_bytes());
        }
        map_payload_type(&mut buf, &self.pt_map);
        encode_g711(codec, &self.scratch, &mut buf);
        out.push_back(buf);
    }

    /// After an audio packet: the event for a tone being heard, or its three end packets.
    fn detected_event_update(&mut self, end_ts: u32, pool: &mut Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let Some(pt) = self.dst.event_pt() else {
            return Vec::new();
        };
        let units = self.units;
        let Some(s) = self.detect.as_mut().and_then(|d| d.sending.as_mut()) else {
            return Vec::new();
        };
        if !s.ending {
            s.duration = end_ts.wrapping_sub(s.ts);
        }
        let (code, ts, first, ending) = (s.code, s.ts, s.first, s.ending);
        let duration = s.duration.max(units).min(u32::from(u16::MAX)) as u16;
        s.first = false;
        if ending {
            if let Some(d) = self.detect.as_mut() {
                d.sending = None;
            }
        }
        let ev = TelephoneEvent {
            event: code,
            end: ending,
            volume: DETECTED_TONE_VOLUME,
            duration,
        };
        let copies = if ending { END_PACKET_COPIES } else { 1 };
        let mut v = Vec::with_capacity(copies);
        self.emit_event_into(pt, first, ts, ev, copies, pool, &mut v);
        v
    }

    fn stream_ssrc(&self) -> u32 {
        self.ssrc.unwrap_or(self.own_ssrc)
    }

    /// The sequence number of a packet we add, raising the offset.
    fn insert_seq(&mut self) -> u16 {
        let highest = *self
            .highest
            .get_or_insert((self.own_ssrc >> 8) as u16 & 0x7fff);
        if self.ssrc.is_none() {
            self.ssrc = Some(self.own_ssrc);
        }
        let seq = highest.wrapping_add(self.offset).wrapping_add(1);
        self.offset = self.offset.wrapping_add(1);
        seq
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_event_into<E: Extend<Vec<u8>>>(
        &mut self,
        pt: u8,
        marker: bool,
        ts: u32,
        ev: TelephoneEvent,
        copies: usize,
        pool: &mut Vec<Vec<u8>>,
        out: &mut E,
    ) {
        let seq = self.insert_seq();
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.resize(RtpHeader::MIN_LEN + TelephoneEvent::LEN, 0);
        let h = header(pt, marker, seq, ts, self.stream_ssrc());
        if h.write_basic(&mut buf).is_none()
            || buf
                .get_mut(RtpHeader::MIN_LEN..)
                .and_then(|p| ev.write(p))
                .is_none()
        {
            pool.push(buf);
            self.offset = self.offset.wrapping_sub(1);
            return;
        }
        for _ in 1..copies {
            let mut copy = pool.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(&buf);
            out.extend(Some(copy));
        }
        out.extend(Some(buf));
        self.stats.inserted += copies as u64;
    }
}

/// Where a stream toward a receiver can take digits played by the control plane: the relay
/// overlay or a transcoding path.
pub trait DtmfSink {
    /// The timestamp a digit starting now gets (the output stream's current position).
    fn stream_ts(&mut self, now: Instant) -> u32;
    /// Sends one RFC 4733 event packet (`copies` identical copies for an end packet).
    #[allow(clippy::too_many_arguments)]
    fn send_event(
        &mut self,
        pt: u8,
        marker: bool,
        ts: u32,
        ev: TelephoneEvent,
        copies: usize,
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    );
    /// Sends 8 kHz PCM (a played tone) in place of the sender's audio.
    fn send_pcm(
        &mut self,
        now: Instant,
        pcm: &[i16],
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    );
    /// Takes a played digit's whole tone (`samples` long) to sound on the stream's own clock,
    /// or hands it back when the sink takes the tone piece by piece through `send_pcm` (the
    /// default).
    fn own_tone(&mut self, tone: DtmfGenerator, _samples: u32) -> Option<DtmfGenerator> {
        Some(tone)
    }
    /// While on, the sender's audio is kept back (a played digit sounds instead).
    fn set_suppress(&mut self, on: bool);
    /// RTP timestamp units per 8 kHz sample of the stream's audio.
    fn units(&self) -> u32;
}

impl DtmfSink for RelayOverlay {
    fn stream_ts(&mut self, now: Instant) -> u32 {
        let pos = match self.last {
            Some(c) => {
                // The sender's next packet is due one packet after its last; past that, its
                // clock runs on with the wall clock.
                let due = c.at + samples_duration(c.units / self.units.max(1));
                let late = now.saturating_duration_since(due);
                c.ts.wrapping_add(c.units)
                    .wrapping_add(duration_samples(late) * self.units)
            }
            None => {
                let (t0, ts0) = *self
                    .origin
                    .get_or_insert((now, self.own_ssrc.rotate_left(11) & 0x7fff_ffff));
                ts0.wrapping_add(duration_samples(now.saturating_duration_since(t0)) * self.units)
            }
        };
        match self.covered {
            Some(c) if ts_before(pos, c) => c,
            _ => pos,
        }
    }

    fn send_event(
        &mut self,
        pt: u8,
        marker: bool,
        ts: u32,
        ev: TelephoneEvent,
        copies: usize,
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) {
        self.emit_event_into(pt, marker, ts, ev, copies, pool, out);
    }

    fn send_pcm(
        &mut self,
        now: Instant,
        pcm: &[i16],
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) {
        if self.codec.is_none() || pcm.is_empty() {
            return;
        }
        let ts = self.stream_ts(now);
        self.scratch.clear();
        self.scratch.extend_from_slice(pcm);
        let seq = self.insert_seq();
        if let Some(buf) = self.audio_buf(seq, ts, pool) {
            out.push_back(buf);
            let end = ts.wrapping_add(pcm.len() as u32 * self.units);
            self.covered = Some(end);
            self.own_until = Some(end);
        } else {
            self.offset = self.offset.wrapping_sub(1);
        }
    }

    fn set_suppress(&mut self, on: bool) {
        self.suppress = on;
    }

    fn units(&self) -> u32 {
        self.units
    }
}

fn header(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) -> RtpHeader {
    RtpHeader {
        padding: false,
        extension: false,
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
        csrc_count: 0,
        header_len: RtpHeader::MIN_LEN,
        payload_len: 0,
        padding_len: 0,
    }
}

fn encode_g711(codec: &CodecDef, pcm: &[i16], out: &mut Vec<u8>) {
    match codec.kind {
        CodecKind::Pcmu => out.extend(pcm.iter().map(|&s| g711::ulaw_encode(s))),
        _ => out.extend(pcm.iter().map(|&s| g711::alaw_encode(s))),
    }
}

fn decode_g711(codec: &CodecDef, payload: &[u8], out: &mut Vec<i16>) {
    match codec.kind {
        CodecKind::Pcmu => out.extend(payload.iter().map(|&b| g711::ulaw_decode(b))),
        _ => out.extend(payload.iter().map(|&b| g711::alaw_decode(b))),
    }
}

/// 8 kHz samples in `d`.
fn duration_samples(d: Duration) -> u32 {
    (d.as_micros() * 8 / 1000).min(u128::from(u32::MAX / 2)) as u32
}

fn samples_duration(n: u32) -> Duration {
    Duration::from_micros(u64::from(n) * 1000 / 8)
}
