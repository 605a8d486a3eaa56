//! One direction of a transcoding session: RTP from the sending party, decoded by its payload
//! type, into an 8 kHz PCM queue; encoded in the receiving party's codec and ptime into a new
//! RTP stream of our own (continuous sequence numbers and timestamps, one SSRC, marker on
//! talkspurt start).
//!
//! Theory of operation. `push` takes one parsed RTP packet of the sending party. Audio goes
//! into the direction's adaptive jitter buffer (still encoded); telephone-event packets are
//! re-stamped into the output stream at once, unchanged in content, or rendered as tones.
//! The session's playout clock then calls `play` every 10 or 20 ms ([`playout`]): the jitter
//! buffer decodes what is due (concealing what is missing, time-stretching towards its target
//! delay), the echo canceller and the DTMF detector see the block, and it joins the PCM queue.
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

use crate::spec::{CodecSpec, JitterMode, LegSpec};

mod playout;
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
    pub dtmf_packets: u64,
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
    /// An RFC 4733 event being played as tones toward a receiver without telephone-event.
    tone: Option<Tone>,
    /// Convert tones heard from the sender into RFC 4733 events toward the receiver.
    tones_to_events: bool,
    /// The event being sent for a tone heard in the sender's audio.
    sending: Option<SentEvent>,
    /// Output samples produced so far (the clock of `sending`).
    out_samples: u64,
    /// In-band DTMF detection on the decoded audio (about 0.4 µs per 20 ms).
    detector: DtmfDetector,
    detected: Vec<DetectorEvent>,
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
pub fn needs_transcoding(from: &LegSpec, to: &LegSpec) -> bool {
    match (send_codec(from), send_codec(to)) {
        (Some((a, _)), Some((b, _))) => {
            !a.same_codec(b) || dtmf_to_inband(from, to) || inband_to_dtmf(from, to)
        }
        _ => false,
    }
}

/// The receiver negotiated telephone-event but the sender did not: digits the sender plays as
/// tones become RFC 4733 events (and the tones are suppressed, so they are not heard twice).
pub fn inband_to_dtmf(from: &LegSpec, to: &LegSpec) -> bool {
    dtmf_to_inband(to, from)
}

/// The sender signals DTMF as RFC 4733 events but the receiver did not negotiate
/// telephone-event: the digits must become tones in the audio, so the direction is decoded and
/// re-encoded even when both use the same codec.
pub fn dtmf_to_inband(from: &LegSpec, to: &LegSpec) -> bool {
    let has_te = |l: &LegSpec| l.codecs.iter().any(CodecSpec::is_telephone_event);
    has_te(from) && !has_te(to)
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
        Ok(TranscodePath {
            inputs,
            out_def,
            out_pt: out_spec.pt,
            out_te_pt: to
                .codecs
                .iter()
                .find(|c| c.is_telephone_event())
                .map(|c| c.pt),
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
            paused: false,
            stopped: false,
            aec,
            aec_out: Vec::with_capacity(160),
            aec_used: false,
            sent: Vec::with_capacity(160),
            event_ts: None,
            tone: None,
            tones_to_events: inband_to_dtmf(from, to),
            sending: None,
            out_samples: 0,
            detector: DtmfDetector::new(),
            detected: Vec::with_capacity(4),
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
            self.forward_event(hdr, payload, pool, out);
            return false;
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
            self.marker_pending = true;
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
            self.play_event_inband(hdr, payload, pool, out);
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
        self.stats.dtmf_packets += 1;
        out.push_back(buf);
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
                DetectorEvent::Start { digit, .. } => {
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

/// An RFC 4733 event being rendered as tones: identified by its RTP timestamp.
struct Tone {
    ts: u32,
    generator: DtmfGenerator,
    /// Samples of tone already queued (the event's duration field counts from its start).
    generated: u64,
    ended: bool,
}

/// Tone level when the event says nothing useful (volume 0 would be 0 dBm0: too loud).
const DEFAULT_TONE_DBM0: f32 = -10.0;

impl TranscodePath {
    /// Renders RFC 4733 event packets as DTMF tones in the outgoing audio: each packet's
    /// duration field says how much of the digit should have sounded by now, and the difference
    /// is generated into the PCM queue. Retransmitted end packets add nothing.
    fn play_event_inband(
        &mut self,
        hdr: &RtpHeader,
        payload: &[u8],
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) {
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
                ended: false,
            });
            self.marker_pending = true;
        }
        let Some(tone) = self.tone.as_mut() else {
            return;
        };
        if tone.ended {
            return;
        }
        let target = u64::from(ev.duration);
        let mut fresh = false;
        if target > tone.generated {
            let n = (target - tone.generated).min(MAX_QUEUED_SAMPLES as u64) as usize;
            self.decoded.clear();
            self.decoded.resize(n, 0);
            tone.generator.fill(&mut self.decoded);
            tone.generated = target;
            fresh = true;
        }
        if ev.end {
            tone.ended = true;
        }
        if fresh {
            self.queue_decoded();
        }
        self.stats.dtmf_packets += 1;
        self.drain_encoded(pool, out);
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
