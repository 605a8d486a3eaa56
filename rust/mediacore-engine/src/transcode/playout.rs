//! Timer-driven playout of one decoded direction: the jitter buffer, the echo canceller, and
//! the pause/stop rules for a sender that goes quiet.
//!
//! Theory of operation. The session calls [`TranscodePath::play`] once per playout period
//! (10 or 20 ms) with the period's time on the session clock. The jitter buffer returns exactly
//! one period of PCM: the sender's audio at the buffer's current delay, concealment where a
//! packet is missing, stretched by a pitch period now and then towards the target delay. Before
//! the buffer has reached its starting delay nothing is sent. The block then goes through
//! the echo canceller (near end: this block; far end: the block the other direction sent
//! toward this sender one period earlier, which the session passes in), the in-band DTMF
//! detector (and muting), then the DTMF tones we sound toward the receiver replace it, and it
//! goes into the PCM queue that the encoder drains. While such a tone is due the clock runs even
//! without the sender's audio (not yet buffered, paused or stopped): the tone replaces silence.
//!
//! A sender that stops (end of call, hold, silence suppression) is concealed for
//! [`CONCEAL_TAIL_MS`] past the point where its audio should have played: Appendix I
//! concealment has faded to silence by then. After that the output pauses, like a DTX gap (our
//! RTP timestamps keep counting, nothing is sent, the next packet carries a marker), while the
//! buffer's timeline keeps running so a resuming sender is placed correctly. After
//! [`STOP_AFTER_MS`] without audio the direction stops pulling altogether; its next packet
//! starts a new timeline.
//!
//! With comfort noise toward the receiver (its leg's `comfort_noise`, neither party on hold),
//! every period without the sender's audio (paused, stopped, or refilling the buffer after a
//! stop) sends a block of noise at the sender's learnt background level instead ([`comfort`]):
//! the receiver gets one continuous stream (no marker at the pause or at the resumption, the
//! timestamps advance with the noise), and the playout clock keeps running while the sender is
//! quiet. A DTMF tone still replaces the block.
//!
//! [`comfort`]: super::comfort

use std::collections::VecDeque;

use mediacore_dsp::aec::EchoStats;
use mediacore_dsp::jitter::JitterStats;

use super::TranscodePath;
use crate::spec::DtmfRoute;

/// Concealment sent after a sender's audio runs out, ms (Appendix I fades out in 60 ms).
pub const CONCEAL_TAIL_MS: u64 = 60;
/// No audio for this long: playout stops until the sender's next packet, ms.
pub const STOP_AFTER_MS: u64 = 2000;

/// Converts a sender's RTP timestamps to 8 kHz sample units (the jitter buffer's clock),
/// extending them across wrap-around first so a 48 kHz clock wraps cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsTo8k {
    clock_rate: u32,
    last: Option<u32>,
    extended: i64,
}

impl Default for TsTo8k {
    fn default() -> Self {
        TsTo8k::new(8000)
    }
}

impl TsTo8k {
    pub fn new(clock_rate: u32) -> Self {
        TsTo8k {
            clock_rate: clock_rate.max(1),
            last: None,
            extended: 0,
        }
    }

    pub fn convert(&mut self, ts: u32) -> u32 {
        if self.clock_rate == 8000 {
            return ts;
        }
        self.extended = match self.last {
            None => i64::from(ts),
            Some(last) => self.extended + i64::from(ts.wrapping_sub(last) as i32),
        };
        self.last = Some(ts);
        self.extended
            .wrapping_mul(8000)
            .div_euclid(i64::from(self.clock_rate)) as u32
    }
}

impl TranscodePath {
    /// The direction has audio or DTMF tones to play out (the playout clock must run for it).
    pub fn playout_active(&self) -> bool {
        (self.jb_input.is_some() && !self.stopped) || self.tone_pending() || self.noise_fills()
    }

    /// Gaps in the sender's audio are filled with comfort noise (on, and audio has played).
    pub(super) fn noise_fills(&self) -> bool {
        self.cng.as_ref().is_some_and(|c| c.primed)
    }

    /// A block of comfort noise into `decoded`, if gaps are filled with it.
    fn comfort_noise(&mut self, samples: usize) -> bool {
        let Some(cng) = self.cng.as_mut().filter(|c| c.primed) else {
            return false;
        };
        self.decoded.clear();
        self.decoded.resize(samples, 0);
        cng.fill(&mut self.decoded);
        true
    }

    /// What the last `play` queued for sending (empty if nothing): the echo reference of the
    /// receiving party's leg.
    pub fn sent_block(&self) -> &[i16] {
        &self.sent
    }

    pub fn jitter_stats(&self) -> JitterStats {
        self.jb.stats()
    }

    /// Echo-canceller statistics, once it has processed audio.
    pub fn echo_stats(&self) -> Option<EchoStats> {
        self.aec
            .as_ref()
            .filter(|_| self.aec_used)
            .map(|a| a.stats())
    }

    /// Echo canceller tail, if the sender's leg has one.
    pub fn echo_tail_ms(&self) -> Option<u32> {
        self.aec.as_ref().map(|a| a.config().tail_ms)
    }

    /// One playout period of `samples` at `now_ms` (session clock). `far` is the block sent
    /// toward this direction's sender one period earlier (its echo reference), if the other
    /// direction is decoded. Finished packets are appended to `out`.
    pub fn play(
        &mut self,
        now_ms: u64,
        samples: usize,
        far: Option<&[i16]>,
        pool: &mut Vec<Vec<u8>>,
        out: &mut VecDeque<Vec<u8>>,
    ) {
        self.sent.clear();
        let audio = self.pull(now_ms, samples);
        let noise = !audio && self.comfort_noise(samples);
        if !audio && !noise {
            if !self.tone_pending() {
                return;
            }
            // No audio to play (none yet, or the sender paused), but a digit sounds.
            self.decoded.clear();
            self.decoded.resize(samples, 0);
        }
        self.count_silent_periods(now_ms, samples);
        if let (true, Some(aec), Some(far)) = (audio, self.aec.as_mut(), far) {
            if far.len() == self.decoded.len() {
                self.aec_out.clear();
                self.aec_out.resize(samples, 0);
                aec.process(far, &self.decoded, &mut self.aec_out);
                std::mem::swap(&mut self.decoded, &mut self.aec_out);
                self.aec_used = true;
            }
        }
        if let (true, Some(cng)) = (audio, self.cng.as_mut()) {
            // The sender's last packet came within the buffer's delay: this block is its
            // audio, not the concealment after its last packet, and tells its background.
            let delay = self.jb.stats().current_delay_ms.max(0.0) as u64;
            let fresh = self
                .last_audio_ms
                .is_some_and(|t| now_ms.saturating_sub(t) <= delay);
            cng.played(&self.decoded, fresh);
        }
        // Digits the sender plays as tones are listened for in its audio (and muted toward a
        // receiver that gets them another way); then the digits we sound toward the receiver
        // replace that audio. The detector does not hear blocks a played digit replaces.
        let replacing = self.played.is_some() || self.suppress_input;
        if audio && !replacing && self.src_dtmf == DtmfRoute::Inband {
            // Only a sender whose digits are tones is listened to: on an RFC 2833 or INFO leg
            // a tone leaked into the audio is not a second digit.
            let before = self.detected.len();
            self.detector.process(&self.decoded, &mut self.detected);
            if self.mute_tones {
                self.track_tones(before);
            }
        }
        // The receiver's voice gain on the sender's audio (after the canceller and the detector
        // heard it as sent; before the tones we play, which keep their level). `sent` below is
        // then what leaves: the other leg's echo reference. Comfort noise, made at the level
        // learnt from the sender's audio before the gain, is scaled alike.
        if let (true, Some(factor)) = (audio || noise, self.gain) {
            crate::gain::scale_pcm(&mut self.decoded, factor);
        }
        let hush = if audio && self.tone.is_some() {
            self.jb.stats().current_delay_ms.max(0.0) as u64 * 8
        } else {
            0
        };
        self.dtmf_over_block(hush);
        self.sent.extend_from_slice(&self.decoded);
        self.queue_decoded();
        let before = self.stats.encoded_packets;
        self.drain_encoded(pool, out);
        if noise {
            self.stats.cng_packets += self.stats.encoded_packets - before;
        }
    }

    /// The periods since the last block that queued nothing (the sender paused or stopped)
    /// still pass on the receiver's clock: the next packet's timestamp is that much later
    /// (RFC 3550 §5.1: the timestamp is the sampling instant), as after a DTX gap, so the
    /// receiver's jitter estimate and playout see a silence, not a late packet.
    fn count_silent_periods(&mut self, now_ms: u64, samples: usize) {
        let period_ms = samples as u64 / 8;
        if let Some(last) = self.last_block_ms.replace(now_ms) {
            let gap_ms = now_ms.saturating_sub(last).saturating_sub(period_ms);
            if gap_ms > 0 {
                let units = u64::from(self.out_def.rtp_units_per_sample());
                // RTP timestamps wrap: only the low 32 bits of the advance matter.
                let advance = (gap_ms * 8 * units) as u32;
                self.pos.next_ts = self.pos.next_ts.wrapping_add(advance);
            }
        }
    }

    /// Pulls one block of the sender's audio into `decoded`; false when there is none to
    /// play (the buffer is filling to its starting delay, or the sender paused or stopped).
    fn pull(&mut self, now_ms: u64, samples: usize) -> bool {
        if self.jb_input.is_none() || self.stopped {
            return false;
        }
        let Some(decoder) = self
            .jb_input
            .and_then(|i| self.inputs.get_mut(i))
            .and_then(|i| i.decoder.as_mut())
        else {
            return false;
        };
        self.decoded.clear();
        self.decoded.resize(samples, 0);
        self.jb.pull(now_ms, decoder.as_mut(), &mut self.decoded);
        if !self.jb.is_playing() {
            return false; // still filling up to the starting delay
        }
        let idle = self
            .last_audio_ms
            .map_or(u64::MAX, |t| now_ms.saturating_sub(t));
        if idle >= STOP_AFTER_MS && self.jb.buffered_packets() == 0 {
            self.jb.stop();
            self.stopped = true;
            self.paused = false;
            // With comfort noise the stream toward the receiver goes on: no new talkspurt.
            self.marker_pending |= !self.noise_fills();
            return false;
        }
        let delay = self.jb.stats().current_delay_ms.max(0.0) as u64;
        if idle > delay + CONCEAL_TAIL_MS && self.jb.buffered_packets() == 0 {
            // The sender has gone quiet: pause like a DTX gap rather than send silence.
            if !self.paused && !self.noise_fills() {
                self.marker_pending = true;
            }
            self.paused = true;
            return false;
        }
        true
    }

    /// Takes over what a path being replaced (re-INVITE, codec or ptime change) had learnt,
    /// where it still applies: the buffered audio and learnt jitter (same buffer settings), the
    /// decoders of codecs that stay, the converged echo canceller (same tail), the queued PCM,
    /// the event numbering and a DTMF digit still sounding.
    pub fn adopt(&mut self, old: &mut TranscodePath) {
        if self.jb.config() == old.jb.config() {
            std::mem::swap(&mut self.jb, &mut old.jb);
            self.in_ts = old.in_ts;
            self.last_audio_ms = old.last_audio_ms;
            self.paused = old.paused;
            self.stopped = old.stopped;
            self.last_block_ms = old.last_block_ms;
            self.jb_input = old.jb_input.and_then(|i| {
                let prev = old.inputs.get(i)?;
                self.inputs
                    .iter()
                    .position(|n| n.pt == prev.pt && n.kind == prev.kind && !n.telephone_event)
            });
            if self.jb_input.is_none() {
                self.jb.reset();
            }
        }
        for input in &mut self.inputs {
            if let Some(prev) = old
                .inputs
                .iter_mut()
                .find(|p| p.pt == input.pt && p.kind == input.kind)
            {
                input.decoder = prev.decoder.take();
            }
        }
        if let (Some(new), Some(prev)) = (self.aec.as_ref(), old.aec.as_ref()) {
            if new.config() == prev.config() {
                std::mem::swap(&mut self.aec, &mut old.aec);
                self.aec_used = old.aec_used;
            }
        }
        if let (Some(new), Some(prev)) = (self.cng.as_mut(), old.cng.as_ref()) {
            *new = *prev; // the learnt background and the noise stream go on
        }
        std::mem::swap(&mut self.pcm, &mut old.pcm);
        self.in_ssrc = old.in_ssrc;
        self.seq = std::mem::take(&mut old.seq);
        self.last_seq = old.last_seq;
        self.event_ts = old.event_ts;
        self.event_end_sent = old.event_end_sent;
        // A digit sounding (played, or rendered from events) goes on in the new path.
        self.tone = old.tone.take();
        self.played = old.played.take();
        self.suppress_input = old.suppress_input;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::TsTo8k;

    #[test]
    fn timestamps_convert_to_8khz_across_wrap_around() {
        let mut t = TsTo8k::new(8000);
        assert_eq!(t.convert(123), 123);
        let mut t = TsTo8k::new(48000);
        let start = u32::MAX - 960 * 2 + 1;
        let a = t.convert(start);
        let b = t.convert(start.wrapping_add(960));
        let c = t.convert(start.wrapping_add(1920)); // wrapped
        let d = t.convert(start.wrapping_add(2880));
        assert_eq!(b.wrapping_sub(a), 160);
        assert_eq!(c.wrapping_sub(b), 160);
        assert_eq!(d.wrapping_sub(c), 160);
    }
}
