//! One direction of a transcoding session: RTP from the sending party, decoded by its payload
//! type, into an 8 kHz PCM queue; encoded in the receiving party's codec and ptime into a new
//! RTP stream of our own (continuous sequence numbers and timestamps, one SSRC, marker on
//! talkspurt start).
//!
//! Theory of operation. `push` takes one parsed RTP packet of the sending party. Audio goes
//! into the direction's adaptive jitter buffer (still encoded); telephone-event packets are
//! re-stamped into the output stream at once, unchanged in content, or (toward a receiver
//! without telephone-event) set up a digit to sound as tones. The session's playout clock then
//! calls `play` every 10 or 20 ms ([`playout`]): the jitter buffer decodes what is due
//! (concealing what is missing, time-stretching towards its target delay), the echo canceller
//! and the DTMF detector see the block, DTMF tones we sound (a digit played by the control
//! plane, or one rendered from events) replace it, and it joins the PCM queue. A voice gain
//! toward the receiver scales the sender's audio just before the tones (`gain.rs`).
//! Whenever the queue holds a full output packet's worth of samples it is encoded and written
//! into a packet buffer that the session hands to the runtime.

use std::collections::VecDeque;

use mediacore_dsp::aec::{EchoCanceller, EchoCancellerConfig};
use mediacore_dsp::codec::{
    lookup, new_decoder, new_encoder, CodecDef, CodecKind, Decoder, Encoder, EncoderOptions,
};
use mediacore_dsp::dtmf::{DetectorEvent, DtmfDetector, DtmfGenerator};
use mediacore_dsp::jitter::{JitterBuffer, JitterConfig};
use mediacore_proto::{digit_for_event, TelephoneEvent};
use mediacore_proto::{RtpHeader, SeqExtender};

use crate::spec::{CodecSpec, DtmfRoute, JitterMode, LegSpec};

mod comfort;
mod playout;
pub use comfort::ComfortNoise;
pub use playout::TsTo8k;
/// Upper bound on queued PCM (8 kHz samples): 1 s. Beyond it the oldest audio is discarded, so
/// a sender faster than its clock cannot grow memory or latency without bound.
const MAX_QUEUED_SAMPLES: usize = 8000;

/// Where an output stream's numbering stands; carried across path rebuilds (codec or ptime
/// change on re-offer) and from relayed packets, so the far end sees one continuous stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub next_seq: u16,
    /// Timestamp of the next audio packet, in the output clock.
    pub next_ts: u32,
}

/// Counters of one transcoding direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscodeStats {
    /// Audio packets taken into the jitter buffer (its own statistics say how many were
    /// played, late, duplicated or discarded, and how much was concealed).
    pub decoded_packets: u64,
    /// Telephone-event packets older than a packet already received (dropped).
    pub late_events: u64,
    pub unknown_payload_type: u64,
    pub encoded_packets: u64,
    pub encode_errors: u64,
    /// Encoded packets that came out empty (G.729 Annex B DTX) and were not sent.
    pub dtx_packets: u64,
    /// Packets of comfort noise sent while the sender was quiet (part of `encoded_packets`).
    pub cng_packets: u64,
    pub dtmf_packets: u64,
    /// Telephone-event packets not passed on: the sender's mode does not take events, or the
    /// receiver's mode is SIP INFO.
    pub dtmf_suppressed: u64,
    /// PCM samples discarded because the queue overflowed.
    pub overflow_samples: u64,
}

struct InCodec {
    pt: u8,
    /// The codec, if we can decode it.
    kind: Option<CodecKind>,
    /// Its RTP clock rate (the jitter buffer counts in 8 kHz samples).
    clock_rate: u32,
    decoder: Option<Box<dyn Decoder>>,
    telephone_event: bool,
}

pub struct TranscodePath {
    inputs: Vec<InCodec>,
    out_def: &'static CodecDef,
    out_pt: u8,
    out_te_pt: Option<u8>,
    encoder: Box<dyn Encoder>,
    samples_per_packet: usize,
    pcm: VecDeque<i16>,
    frame: Vec<i16>,
    decoded: Vec<i16>,
    pos: StreamPosition,
    marker_pending: bool,
    in_ssrc: Option<u32>,
    seq: SeqExtender,
    last_seq: Option<u64>,
    /// The sender's audio, still encoded, until the playout clock pulls it.
    jb: JitterBuffer,
    /// The input codec (index into `inputs`) whose packets the jitter buffer holds.
    jb_input: Option<usize>,
    in_ts: TsTo8k,
    /// Arrival of the sender's last audio packet, ms on the session's clock.
    last_audio_ms: Option<u64>,
    /// The sender went quiet: output is paused (like DTX) until its audio resumes.
    paused: bool,
    /// Session-clock time of the last playout period that queued a block: periods after it
    /// that queued none (a pause, a stop) still advance the output timestamps.
    last_block_ms: Option<u64>,
    /// The sender stopped long ago: no playout until its next packet.
    stopped: bool,
    /// Echo canceller for the sender's audio (the echo of what we send the sender).
    aec: Option<EchoCanceller>,
    aec_out: Vec<i16>,
    aec_used: bool,
    /// The block `play` queued for sending in its last call (the other direction's echo
    /// reference); empty when it queued nothing.
    sent: Vec<i16>,
    /// Input timestamp of the current telephone event → its output timestamp.
    event_ts: Option<(u32, u32)>,
    /// Input timestamp of the last event whose end packets went out.
    event_end_sent: Option<u32>,
    /// An RFC 4733 event being played as tones toward a receiver without telephone-event.
    tone: Option<Tone>,
    /// How digits arrive from the sender and how they go to the receiver (the legs' modes).
    src_dtmf: DtmfRoute,
    dst_dtmf: DtmfRoute,
    /// Convert tones heard from the sender into RFC 4733 events toward the receiver.
    tones_to_events: bool,
    /// Mute tones heard from the sender (the receiver gets the digit another way).
    mute_tones: bool,
    /// A digit played by the control plane is sounding toward the receiver: the sender's
    /// audio is replaced by it (its tone, or silence).
    suppress_input: bool,
    /// The tone of a digit played by the control plane, sounding on the playout clock.
    played: Option<PlayedTone>,
    /// The event being sent for a tone heard in the sender's audio.
    sending: Option<SentEvent>,
    /// Output samples produced so far (the clock of `sending`).
    out_samples: u64,
    /// In-band DTMF detection on the decoded audio (about 0.4 µs per 20 ms).
    detector: DtmfDetector,
    detected: Vec<DetectorEvent>,
    /// Voice gain toward the receiver (linear factor of its `gain_db`; `None` at 0 dB), on the
    /// sender's decoded audio only (`gain.rs`).
    gain: Option<f32>,
    /// Comfort noise toward the receiver while the sender is quiet (the receiver's leg asks
    /// for it and neither party holds the call).
    cng: Option<ComfortNoise>,
    pub stats: TranscodeStats,
}

/// The first audio codec of a leg that we can encode, with its payload type.
pub fn send_codec(leg: &LegSpec) -> Option<(&CodecSpec, &'static CodecDef)> {
    leg.codecs
        .iter()
        .filter(|c| !c.is_telephone_event())
        .find_map(|c| lookup(&c.name, c.clock_rate).map(|d| (c, d)))
}

/// Does traffic from `from` to `to` need transcoding? Each party sends the first codec of its
/// own list (that is what our SDP put first toward it); when that differs from what the other
/// party receives, we decode and re-encode. Unknown codec lists mean relay.
///
/// DTMF conversion between the legs' modes does not by itself need a transcoding path when
/// the shared codec is G.711: the relay overlay (`overlay.rs`) writes tones, mutes and inserts
/// events in the relayed stream. With another shared codec (G.729, Opus) a conversion that
/// touches the audio goes through the transcoding path.
pub fn needs_transcoding(from: &LegSpec, to: &LegSpec) -> bool {
    match (send_codec(from), send_codec(to)) {
        (Some((a, def)), Some((b, _))) => {
            !a.same_codec(b) || (dtmf_touches_audio(from, to) && def.silence_byte.is_none())
        }
        _ => false,
    }
}

/// Does DTMF conversion from `from`'s party to `to`'s party work on the audio: RFC 2833 or
/// SIP INFO digits rendered as tones, or tones detected in the sender's audio (and muted)
/// because the receiver takes digits as events or SIP INFO?
pub fn dtmf_touches_audio(from: &LegSpec, to: &LegSpec) -> bool {
    matches!(
        (from.dtmf_route(), to.dtmf_route()),
        (DtmfRoute::Events { .. }, DtmfRoute::Inband)
            | (
                DtmfRoute::Inband,
                DtmfRoute::Events { .. } | DtmfRoute::Info
            )
    )
}

impl TranscodePath {
    /// Builds the path for traffic from the party of `from` to the party of `to`, continuing
    /// `pos` if given. Errors name the codec that could not be set up.
    pub fn new(from: &LegSpec, to: &LegSpec, pos: StreamPosition) -> Result<Self, String> {
        let (out_spec, out_def) = send_codec(to)
            .ok_or_else(|| "no codec we can encode for the receiving party".to_string())?;
        let samples_per_packet = (to.ptime_ms as usize) * 8;
        if !out_def.allowed_ptimes_ms.contains(&to.ptime_ms) {
            return Err(format!(
                "ptime {} ms is not allowed for {}",
                to.ptime_ms, out_def.name
            ));
        }
        let encoder = new_encoder(
            out_def.kind,
            EncoderOptions {
                vad: to.vad,
                bitrate: None,
            },
        )
        .map_err(|e| format!("{}: {e}", out_def.name))?;
        let inputs = from
            .codecs
            .iter()
            .map(|c| InCodec {
                pt: c.pt,
                kind: lookup(&c.name, c.clock_rate).map(|d| d.kind),
                clock_rate: c.clock_rate,
                decoder: None,
                telephone_event: c.is_telephone_event(),
            })
            .collect();
        let jb_spec = from.jitter_buffer;
        let jb = JitterBuffer::new(JitterConfig {
            adaptive: jb_spec.mode == JitterMode::Adaptive,
            min_delay_ms: jb_spec.min_ms,
            max_delay_ms: jb_spec.max_ms,
            initial_delay_ms: jb_spec.default_ms,
            ..JitterConfig::default()
        })
        .map_err(|e| format!("jitter buffer: {e}"))?;
        let aec = if from.echo_cancel.enabled {
            Some(
                EchoCanceller::new(EchoCancellerConfig {
                    tail_ms: from.echo_cancel.tail_ms,
                    ..EchoCancellerConfig::default()
                })
                .map_err(|e| format!("echo canceller: {e}"))?,
            )
        } else {
            None
        };
        let (src_dtmf, dst_dtmf) = (from.dtmf_route(), to.dtmf_route());
        let src_inband = src_dtmf == DtmfRoute::Inband;
        Ok(TranscodePath {
            inputs,
            out_def,
            out_pt: out_spec.pt,
            out_te_pt: dst_dtmf.event_pt(),
            encoder,
            samples_per_packet,
            pcm: VecDeque::with_capacity(MAX_QUEUED_SAMPLES),
            frame: Vec::with_capacity(samples_per_packet),
            decoded: Vec::with_capacity(960),
            pos,
            marker_pending: true,
            in_ssrc: None,
            seq: SeqExtender::new(),
            last_seq: None,
            jb,
            jb_input: None,
            in_ts: TsTo8k::default(),
            last_audio_ms: None,
            last_block_ms: None,
            paused: false,
            stopped: false,
            aec,
            aec_out: Vec::with_capacity(160),
            aec_used: false,
            sent: Vec::with_capacity(160),
            event_ts: None,
            event_end_sent: None,
            tone: None,
            src_dtmf,
            dst_dtmf,
            tones_to_events: src_inband && dst_dtmf.is_events(),
            mute_tones: src_inband && dst_dtmf != DtmfRoute::Inband,
            suppress_input: false,
            played: None,
            sending: None,
            out_samples: 0,
            detector: DtmfDetector::new(),
            detected: Vec::with_capacity(4),
            gain: (to.gain_db != 0).then(|| crate::gain::gain_factor(to.gain_db)),
            cng: (to.comfort_noise && !from.hold && !to.hold).then(|| ComfortNoise::new(pos.ssrc)),
            stats: TranscodeStats::default(),
        })
    }

    pub fn position(&self) -> StreamPosition {
        self.pos
    }

    /// Digits heard in the decoded audio since the last call: (digit, duration in ms).
    pub fn take_inband_digits(&mut self) -> impl Iterator<Item = (char, u32)> + '_ {
        self.detected.drain(..).filter_map(|e| match e {
            DetectorEvent::End {
                digit,
                duration_samples,
                ..
            } => Some((digit, (duration_samples / 8) as u32)),
            DetectorEvent::Start { .. } => None,
        })
    }

    /// Takes one RTP packet from the sender, arrived at `arrival_ms` (session clock). Audio
    /// goes into the jitter buffer; telephone events are forwarded (or rendered as tones) at
    /// once, their packets appended to `out` (each a complete RTP datagram, written into a
    /// buffer from `pool`). Returns true when audio was buffered: the playout clock must run.
    pub fn push(
        &mut self,
        hdr: &RtpHeader,
        data: &[u8],
        from_codecs: &[CodecSpec],
        arrival_ms: u64,
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) -> bool {
        if self.in_ssrc != Some(hdr.ssrc) {
            // A new source (a restarted phone, a re-INVITE): its numbering starts afresh; ours
            // continues, with a marker.
            self.in_ssrc = Some(hdr.ssrc);
            self.seq = SeqExtender::new();
            self.last_seq = None;
            self.event_ts = None;
            self.marker_pending = true;
            self.jb.reset();
        }
        let ext = self.seq.extend(hdr.sequence).0;
        let payload = hdr.payload(data);
        let pt = hdr.payload_type;
        let Some(idx) = prepare_input(&mut self.inputs, pt, from_codecs) else {
            self.stats.unknown_payload_type += 1;
            return false;
        };
        if self.inputs.get(idx).is_some_and(|i| i.telephone_event) {
            if self.last_seq.is_some_and(|last| ext <= last) {
                self.stats.late_events += 1;
                return false;
            }
            self.last_seq = Some(ext);
            if self.src_dtmf.is_events() && self.dst_dtmf != DtmfRoute::Info {
                self.forward_event(hdr, payload, pool, out);
            } else {
                // The sender's mode does not take events (an explicit in-band or INFO leg), or
                // the receiver gets digits as SIP INFO: the event stays out of the media.
                self.stats.dtmf_suppressed += 1;
            }
            return self.tone_pending();
        }
        let Some(input) = self.inputs.get(idx).filter(|i| i.decoder.is_some()) else {
            self.stats.unknown_payload_type += 1;
            return false;
        };
        if self.jb_input != Some(idx) {
            // Another codec from the same sender: its packets start a new timeline.
            if self.jb_input.is_some() {
                self.jb.reset();
            }
            self.jb_input = Some(idx);
            self.in_ts = TsTo8k::new(input.clock_rate);
        }
        self.last_seq = Some(self.last_seq.map_or(ext, |last| last.max(ext)));
        let ts = self.in_ts.convert(hdr.timestamp);
        self.jb.insert(hdr.sequence, ts, payload, arrival_ms);
        self.stats.decoded_packets += 1;
        self.last_audio_ms = Some(arrival_ms);
        if self.stopped || self.paused {
            self.stopped = false;
            self.paused = false;
            // After comfort noise the stream toward the receiver was continuous: no marker.
            self.marker_pending |= !self.noise_fills();
        }
        true
    }

    fn queue_decoded(&mut self) {
        let overflow = (self.pcm.len() + self.decoded.len()).saturating_sub(MAX_QUEUED_SAMPLES);
        if overflow > 0 {
            let drop_n = overflow.min(self.pcm.len());
            self.pcm.drain(..drop_n);
            self.stats.overflow_samples += overflow as u64;
        }
        let skip = self.decoded.len().saturating_sub(MAX_QUEUED_SAMPLES);
        self.pcm.extend(self.decoded.iter().skip(skip).copied());
    }

    fn drain_encoded(&mut self, pool: &mut Vec<Vec<u8>>, out: &mut VecDeque<Vec<u8>>) {
        let units = self.out_def.rtp_units_per_sample();
        while self.pcm.len() >= self.samples_per_packet {
            self.frame.clear();
            self.frame.extend(self.pcm.drain(..self.samples_per_packet));
            let mut buf = pool.pop().unwrap_or_default();
            buf.clear();
            buf.resize(RtpHeader::MIN_LEN, 0);
            let ts = self.pos.next_ts;
            self.pos.next_ts = ts.wrapping_add(self.samples_per_packet as u32 * units);
            self.out_samples += self.samples_per_packet as u64;
            match self.encoder.encode(&self.frame, &mut buf) {
                Ok(0) => {
                    // Annex B DTX: nothing to send for this interval; the next packet starts a
                    // new talkspurt.
                    self.stats.dtx_packets += 1;
                    self.marker_pending = true;
                    pool.push(buf);
                    continue;
                }
                Ok(_) => {}
                Err(_) => {
                    self.stats.encode_errors += 1;
                    pool.push(buf);
                    continue;
                }
            }
            let hdr = self.header(self.out_pt, self.marker_pending, ts);
            self.marker_pending = false;
            if hdr.write_basic(&mut buf).is_none() {
                pool.push(buf);
                continue;
            }
            self.stats.encoded_packets += 1;
            out.push_back(buf);
            self.send_event_update(pool, out);
        }
    }

    fn header(&mut self, pt: u8, marker: bool, ts: u32) -> RtpHeader {
        let seq = self.pos.next_seq;
        self.pos.next_seq = seq.wrapping_add(1);
        RtpHeader {
            padding: false,
            extension: false,
            marker,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: self.pos.ssrc,
            csrc_count: 0,
            header_len: RtpHeader::MIN_LEN,
            payload_len: 0,
            padding_len: 0,
        }
    }

    /// RFC 4733 events keep their content; they get our SSRC, sequence and a timestamp in our
    /// clock (the event's start maps to where our audio stream stands).
    fn forward_event(
        &mut self,
        hdr: &RtpHeader,
        payload: &[u8],
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) {
        let Some(pt) = self.out_te_pt else {
            // The receiving party did not negotiate telephone-event: play the digit as tones.
            self.play_event_inband(hdr, payload);
            return;
        };
        let ts = match self.event_ts {
            Some((input, output)) if input == hdr.timestamp => output,
            _ => {
                let output = self.pos.next_ts;
                self.event_ts = Some((hdr.timestamp, output));
                output
            }
        };
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.resize(RtpHeader::MIN_LEN, 0);
        let h = self.header(pt, hdr.marker, ts);
        if h.write_basic(&mut buf).is_none() {
            pool.push(buf);
            return;
        }
        buf.extend_from_slice(payload);
        // The end: three copies from us, whatever number (and numbering) the sender used; its
        // own retransmissions are not forwarded again.
        let end = payload.get(1).is_some_and(|f| f & 0x80 != 0);
        let copies = if end {
            if self.event_end_sent == Some(hdr.timestamp) {
                self.header_undo();
                pool.push(buf);
                return;
            }
            self.event_end_sent = Some(hdr.timestamp);
            END_PACKET_COPIES
        } else {
            1
        };
        for _ in 1..copies {
            let mut copy = pool.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(&buf);
            out.push_back(copy);
        }
        self.stats.dtmf_packets += copies as u64;
        out.push_back(buf);
    }

    /// Takes back the sequence number `header` just used (for a packet not sent after all).
    fn header_undo(&mut self) {
        self.pos.next_seq = self.pos.next_seq.wrapping_sub(1);
    }
}

/// An RFC 4733 event we send for a tone heard in the sender's audio.
struct SentEvent {
    code: u8,
    /// Output RTP timestamp of the event (all its packets carry it).
    ts: u32,
    /// `out_samples` when the event began.
    start: u64,
    first: bool,
    ending: bool,
}

/// Volume we report for detected tones (-dBm0): typical DTMF send level.
const DETECTED_TONE_VOLUME: u8 = 10;
/// RFC 4733 §2.5.1.4: the end packet is sent three times.
const END_PACKET_COPIES: usize = 3;

impl TranscodePath {
    /// Looks at what the detector found in the last block: a digit starting opens an event
    /// toward the receiver, a digit ending closes it; while a tone sounds the audio is muted so
    /// the receiver does not get the digit twice (as a tone and as an event).
    fn track_tones(&mut self, first_new: usize) {
        for e in self.detected.iter().skip(first_new) {
            match *e {
                DetectorEvent::Start { digit, .. } if self.tones_to_events => {
                    if let Some(code) = mediacore_proto::event_for_digit(digit) {
                        self.sending = Some(SentEvent {
                            code,
                            ts: self.pos.next_ts,
                            start: self.out_samples,
                            first: true,
                            ending: false,
                        });
                    }
                }
                DetectorEvent::End { .. } => {
                    if let Some(ev) = self.sending.as_mut() {
                        ev.ending = true;
                    }
                }
                DetectorEvent::Start { .. } => {}
            }
        }
        if self.detector.in_tone() || self.sending.as_ref().is_some_and(|e| !e.ending) {
            self.decoded.iter_mut().for_each(|s| *s = 0);
        }
    }

    /// After each output packet: one event packet carrying the duration so far, or the three
    /// end packets when the tone has stopped.
    fn send_event_update(&mut self, pool: &mut Vec<Vec<u8>>, out: &mut VecDeque<Vec<u8>>) {
        let (Some(ev), Some(pt)) = (self.sending.as_ref(), self.out_te_pt) else {
            return;
        };
        let (code, ts, first, ending) = (ev.code, ev.ts, ev.first, ev.ending);
        let duration = (self.out_samples - ev.start).min(u64::from(u16::MAX)) as u16;
        let payload = TelephoneEvent {
            event: code,
            end: ending,
            volume: DETECTED_TONE_VOLUME,
            duration,
        };
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.resize(RtpHeader::MIN_LEN + TelephoneEvent::LEN, 0);
        let h = self.header(pt, first, ts);
        if h.write_basic(&mut buf).is_none()
            || payload.write(&mut buf[RtpHeader::MIN_LEN..]).is_none()
        {
            pool.push(buf);
            return;
        }
        let copies = if ending { END_PACKET_COPIES } else { 1 };
        for _ in 1..copies {
            let mut copy = pool.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(&buf);
            out.push_back(copy);
        }
        out.push_back(buf);
        self.stats.dtmf_packets += copies as u64;
        if ending {
            self.sending = None;
        } else if let Some(ev) = self.sending.as_mut() {
            ev.first = false;
        }
    }
}

/// An RFC 4733 event being rendered as tones: identified by its RTP timestamp. The tone
/// sounds on the playout clock, in place of the audio pulled from the jitter buffer.
struct Tone {
    ts: u32,
    generator: DtmfGenerator,
    /// Samples of tone sounded so far (the event's duration field counts from its start).
    generated: u64,
    /// The longest duration the events announced so far (8 kHz samples).
    announced: u64,
    /// The digit's final duration, once its end packet came (or its end was given up).
    end: Option<u64>,
    /// After the tone: sender audio still muted (samples). The sender's audio reaches the
    /// output one jitter-buffer delay after the events do, so the part that ran alongside
    /// the digit (silence, or a tone leaked into it) would otherwise follow our tone.
    hush: u64,
}

impl Tone {
    /// Tone or muting still to come.
    fn pending(&self) -> bool {
        self.end.is_none_or(|e| self.generated < e) || self.hush > 0
    }
}

/// A digit played by the control plane toward the receiver (in-band), sounding on the
/// playout clock in place of the sender's audio.
struct PlayedTone {
    generator: DtmfGenerator,
    /// Samples still to sound.
    remaining: u64,
}

/// A digit whose end packets never come stops sounding once it has run this far (8 kHz
/// samples, 150 ms: three missed 50 ms updates) past what its events announced.
pub const LOST_END_SAMPLES: u64 = 1200;

/// Tone level when the event says nothing useful (volume 0 would be 0 dBm0: too loud).
const DEFAULT_TONE_DBM0: f32 = -10.0;

impl TranscodePath {
    /// Takes an RFC 4733 event packet toward a receiver without telephone-event: the digit
    /// starts sounding at the next playout period and lasts what the events announce (the
    /// end packet's duration). Retransmitted end packets change nothing.
    fn play_event_inband(&mut self, hdr: &RtpHeader, payload: &[u8]) {
        let Ok(ev) = TelephoneEvent::parse(payload) else {
            return;
        };
        let Some(digit) = digit_for_event(ev.event).filter(|d| *d != 'F') else {
            return;
        };
        if self.tone.as_ref().is_none_or(|t| t.ts != hdr.timestamp) {
            let level = if ev.volume == 0 {
                DEFAULT_TONE_DBM0
            } else {
                -f32::from(ev.volume)
            };
            let Some(generator) = DtmfGenerator::new(digit, level, u64::MAX / 2) else {
                return;
            };
            self.tone = Some(Tone {
                ts: hdr.timestamp,
                generator,
                generated: 0,
                announced: 0,
                end: None,
                hush: 0,
            });
            self.marker_pending = true;
        }
        let Some(tone) = self.tone.as_mut() else {
            return;
        };
        if tone.end.is_some() {
            return;
        }
        tone.announced = tone.announced.max(u64::from(ev.duration));
        if ev.end {
            tone.end = Some(tone.announced);
        }
        self.stats.dtmf_packets += 1;
    }

    /// DTMF audio is pending: a digit rendered from events, a digit played by the control
    /// plane, or the sender muted for one (the playout clock must run even without audio).
    pub fn tone_pending(&self) -> bool {
        self.played.is_some()
            || self.suppress_input
            || self.tone.as_ref().is_some_and(Tone::pending)
    }

    /// Writes the DTMF audio due in this playout block over `decoded` (the sender's audio, or
    /// silence): a digit played by the control plane, or an RFC 4733 digit rendered as tones.
    /// Returns whether any of the sender's audio was replaced.
    pub(super) fn dtmf_over_block(&mut self, hush_samples: u64) -> bool {
        let n = self.decoded.len();
        if let Some(p) = self.played.as_mut() {
            let k = (p.remaining.min(n as u64)) as usize;
            p.generator.fill(&mut self.decoded[..k]);
            p.remaining -= k as u64;
            if p.remaining == 0 {
                self.played = None;
            }
            if self.suppress_input {
                self.decoded[k..].fill(0);
            }
            return true;
        }
        if self.suppress_input {
            self.decoded.fill(0);
            return true;
        }
        let Some(t) = self.tone.as_mut().filter(|t| t.pending()) else {
            return false;
        };
        if t.end.is_none() && t.generated > t.announced + LOST_END_SAMPLES {
            t.end = Some(t.generated); // its end packets were lost: the sender is heard again
        }
        let stop = t.end.unwrap_or(u64::MAX);
        let k = stop.saturating_sub(t.generated).min(n as u64) as usize;
        t.generator.fill(&mut self.decoded[..k]);
        t.generated += k as u64;
        let mut done = k;
        if t.end.is_some() && t.generated >= stop {
            if k > 0 {
                t.hush = hush_samples; // the tone just finished
            }
            let h = (t.hush.min((n - done) as u64)) as usize;
            self.decoded[done..done + h].fill(0);
            t.hush -= h as u64;
            done += h;
        }
        done > 0
    }
}

/// Index of the sender's codec with payload type `pt`, its decoder created on first use.
fn prepare_input(inputs: &mut [InCodec], pt: u8, codecs: &[CodecSpec]) -> Option<usize> {
    let idx = inputs.iter().position(|c| c.pt == pt)?;
    let input = inputs.get_mut(idx)?;
    if input.decoder.is_none() && !input.telephone_event {
        let spec = codecs.iter().find(|c| c.pt == pt)?;
        let def = lookup(&spec.name, spec.clock_rate)?;
        input.decoder = new_decoder(def.kind).ok();
    }
    Some(idx)
}

impl crate::overlay::DtmfSink for TranscodePath {
    fn stream_ts(&mut self, _now: std::time::Instant) -> u32 {
        self.pos.next_ts
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
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.resize(RtpHeader::MIN_LEN + TelephoneEvent::LEN, 0);
        let h = self.header(pt, marker, ts);
        if h.write_basic(&mut buf).is_none()
            || buf
                .get_mut(RtpHeader::MIN_LEN..)
                .and_then(|p| ev.write(p))
                .is_none()
        {
            pool.push(buf);
            return;
        }
        for _ in 1..copies {
            let mut copy = pool.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(&buf);
            out.push_back(copy);
        }
        out.push_back(buf);
        self.stats.dtmf_packets += copies as u64;
    }

    /// Never called for a transcoding path: it takes a played digit's tone whole
    /// (`own_tone`) and sounds it on its playout clock, in place of the pulled audio.
    fn send_pcm(
        &mut self,
        _now: std::time::Instant,
        _pcm: &[i16],
        _pool: &mut Vec<Vec<u8>>,
        _out: &mut VecDeque<Vec<u8>>,
    ) {
    }

    fn own_tone(&mut self, tone: DtmfGenerator, samples: u32) -> Option<DtmfGenerator> {
        self.played = Some(PlayedTone {
            generator: tone,
            remaining: u64::from(samples),
        });
        None
    }

    fn set_suppress(&mut self, on: bool) {
        self.suppress_input = on;
    }

    fn units(&self) -> u32 {
        self.out_def.rtp_units_per_sample()
    }
}

impl TranscodePath {
    /// The receiver's DTMF route (how digits reach it).
    pub fn dst_dtmf(&self) -> DtmfRoute {
        self.dst_dtmf
    }
}
