//! Adaptive jitter buffer with time-stretching and packet-loss concealment,
//! for streams that are decoded.
//!
//! Theory of operation. Sans-IO: the caller hands in packets with their
//! arrival time ([`JitterBuffer::insert`]) and pulls PCM at its own playout
//! ticks ([`JitterBuffer::pull`]); nothing here reads a clock.
//!
//! - *Packets* wait encoded in a fixed pool of slots ([`buffer`]), ordered by
//!   extended sequence number: reordering is free, duplicates are found by
//!   slot, and nothing is allocated per packet once the pool is warm.
//! - *Timeline.* Everything is measured in 8 kHz samples. A packet's
//!   transit is `8·arrival − rtp_ts`; the playout position is the RTP
//!   timestamp of the next sample to be played, `play_ts`; at time `t` the
//!   playout delay is `8·t − play_ts − base`, where the base is the recent
//!   minimum transit ([`delay`]). So the delay is exact at every pull (not a
//!   noisy buffer level), and it is what [`JitterStats::current_delay_ms`]
//!   reports.
//! - *Target.* Each packet's need (the delay at which it would just have
//!   been in time, given where its first sample falls in the pull grid)
//!   feeds a forgetting histogram; the target is its quantile, raised at
//!   once by any packet needing more, decaying slowly, clamped to
//!   `[min_delay_ms, max_delay_ms]` ([`delay`]).
//! - *Playout.* Packets are decoded in sequence into a PCM FIFO, a little
//!   ahead of need. At each pull the delay is steered towards the target by
//!   removing (accelerate) or repeating (pre-emptive expand) one pitch
//!   period at the front of the FIFO, in periodic or quiet audio unless far
//!   off target (removal waits for strongly periodic or quiet stretches:
//!   too much delay is never urgent) ([`stretch`]). When the FIFO cannot cover the pull and the next packet
//!   is missing the gap is concealed: below the target the concealment is
//!   inserted (delay grows; the packet will still be played), at or above it
//!   the missing audio is given up (the timeline advances; if the packet
//!   comes later it is discarded as late). G.711 uses the built-in
//!   Appendix I concealer ([`plc`]); other codecs their own
//!   [`Decoder::conceal`].
//! - *Never disables itself.* Implausible packets (a timestamp far from the
//!   expected arrival, a sequence number far off) are dropped, but three in
//!   a row are taken as a new timeline and the buffer resynchronises; the
//!   caller can also [`JitterBuffer::reset`] on an SSRC change.

mod buffer;
mod delay;
mod fifo;
mod plc;
mod stats;
mod stretch;

use crate::codec::{CodecKind, Decoder};
use buffer::{extend_seq, extend_ts, PacketStore, MAX_PAYLOAD};
pub use delay::DelayEstimator;
use fifo::Fifo;
use plc::Plc;
use stats::Counters;
pub use stats::JitterStats;

/// Jitter-buffer parameters; the VOS3000 names are `SS_JITTERBUFFER_MODE`
/// (`adaptive`), `SS_JITTERBUFFER_MIN`, `SS_JITTERBUFFER_MAX` and
/// `SS_JITTERBUFFER_DEFAULT` (`initial_delay_ms`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Adaptive (VOS3000 mode 1, default): the target follows the measured
    /// jitter within `[min_delay_ms, max_delay_ms]`. Fixed (mode 0): the
    /// target is `initial_delay_ms` for good, and audio is only
    /// time-stretched when the delay is far off it (a clock drifting, or a
    /// restart), so in-time audio plays out untouched.
    pub adaptive: bool,
    /// Lowest target delay, ms.
    pub min_delay_ms: u32,
    /// Highest target delay, ms.
    pub max_delay_ms: u32,
    /// Target delay before any jitter has been measured, ms.
    pub initial_delay_ms: u32,
    /// Fraction of packets the target delay should have in time, (0, 1).
    pub quantile: f32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            adaptive: true,
            min_delay_ms: 20,
            max_delay_ms: 200,
            initial_delay_ms: 40,
            quantile: 0.95,
        }
    }
}

/// Highest `max_delay_ms` accepted, ms.
pub const MAX_DELAY_LIMIT_MS: u32 = 5000;
/// Times beyond this (ms, ~142 000 years) are clamped, keeping `8·t` in i64.
const MAX_TIME_MS: u64 = 1 << 52;
/// Unplayed audio decoded ahead of the pull, samples (30 ms): room for the
/// stretch search (window plus the longest lag).
const LOOKAHEAD: usize = 240;
/// Pulls are processed in chunks of at most this many samples (20 ms); each
/// chunk gets at most one stretch decision.
const CHUNK: usize = 160;
/// Playout delay is kept within `[target, target + BAND_MS]`: expand below
/// the band, accelerate above it, never stretching across it.
const BAND_MS: i64 = 5;
/// Stretch even aperiodic, loud audio when this far off target, ms.
const FORCE_ACCELERATE_MS: i64 = 30;
const FORCE_EXPAND_MS: i64 = 20;
/// Audio counts as periodic enough to stretch inaudibly above this
/// normalised correlation, or quiet enough below this mean square (about
/// −40 dBov).
const STRETCH_CORRELATION: f64 = 0.8;
const REMOVE_CORRELATION: f64 = 0.95;
const QUIET_POWER: f64 = 330.0 * 330.0;
/// A packet is implausible if it arrives this much earlier than its
/// timestamp says (ms), or later than `max_delay_ms` plus this (ms), or its
/// sequence number is more than this ahead of the highest seen.
const MAX_EARLY_MS: i64 = 1000;
const MAX_LATE_EXTRA_MS: i64 = 2000;
const MAX_SEQ_JUMP: i64 = 3000;
/// Consecutive implausible packets that make a new timeline.
const RESYNC_AFTER: u32 = 3;
/// Default packet and pull length before any is seen, samples (20 ms).
const DEFAULT_FRAME: usize = 160;

pub struct JitterBuffer {
    cfg: JitterConfig,
    store: PacketStore,
    delay: DelayEstimator,
    fifo: Fifo,
    plc: Plc,
    scratch: Vec<i16>,
    counters: Counters,
    /// A timeline exists (a packet has been accepted since the last reset).
    synced: bool,
    /// Playout has started on this timeline.
    started: bool,
    highest_seq: i64,
    highest_ts: i64,
    /// Lowest sequence number not yet decoded or given up.
    next_seq: i64,
    /// RTP timestamp of the next sample to enter the FIFO.
    next_ts: i64,
    /// Highest decoded sequence number and a bitmap of the 64 below it
    /// (bit i: `last_decoded - i` was decoded), for duplicate detection.
    last_decoded: Option<i64>,
    decoded_mask: u64,
    last_packet_len: usize,
    pull_len: usize,
    implausible_run: u32,
    /// Timeline-advancing concealment not yet known to be loss: if the next
    /// decoded packet follows the last one in sequence it was a
    /// transmission pause (DTX), not loss, and is not counted.
    pending_concealed: u64,
    current_delay: i64,
}

impl JitterBuffer {
    pub fn new(cfg: JitterConfig) -> Result<Self, String> {
        if cfg.min_delay_ms > cfg.max_delay_ms {
            return Err(format!(
                "min_delay_ms {} exceeds max_delay_ms {}",
                cfg.min_delay_ms, cfg.max_delay_ms
            ));
        }
        if cfg.max_delay_ms > MAX_DELAY_LIMIT_MS {
            return Err(format!(
                "max_delay_ms {} exceeds {MAX_DELAY_LIMIT_MS}",
                cfg.max_delay_ms
            ));
        }
        if !(cfg.quantile > 0.0 && cfg.quantile < 1.0) {
            return Err(format!("quantile {} is not in (0, 1)", cfg.quantile));
        }
        let mut cfg = cfg;
        cfg.initial_delay_ms = cfg
            .initial_delay_ms
            .clamp(cfg.min_delay_ms, cfg.max_delay_ms);
        if !cfg.adaptive {
            cfg.min_delay_ms = cfg.initial_delay_ms;
            cfg.max_delay_ms = cfg.initial_delay_ms;
        }
        // Room for max_delay of 10 ms packets, twice, plus reordering slack.
        let slots = (cfg.max_delay_ms as usize / 10 + 1) * 2 + 32;
        Ok(JitterBuffer {
            cfg,
            store: PacketStore::new(slots),
            delay: DelayEstimator::new(&cfg),
            fifo: Fifo::new(),
            plc: Plc::new(),
            scratch: Vec::with_capacity(8192),
            counters: Counters::default(),
            synced: false,
            started: false,
            highest_seq: 0,
            highest_ts: 0,
            next_seq: 0,
            next_ts: 0,
            last_decoded: None,
            decoded_mask: 0,
            last_packet_len: DEFAULT_FRAME,
            pull_len: DEFAULT_FRAME,
            implausible_run: 0,
            pending_concealed: 0,
            current_delay: 0,
        })
    }

    pub fn config(&self) -> JitterConfig {
        self.cfg
    }

    /// Playout has started: pulls return the stream's audio (or its
    /// concealment), not the silence that precedes the first packet.
    pub fn is_playing(&self) -> bool {
        self.started
    }

    /// Packets stored and not yet decoded.
    pub fn buffered_packets(&self) -> usize {
        self.store.len()
    }

    /// Ends playout (the stream stopped: hold, end of call, a long pause):
    /// stored packets are discarded and unplayed audio dropped; the next
    /// packet starts a new timeline and playout begins again once the
    /// target delay is reached. Statistics and learnt jitter are kept.
    pub fn stop(&mut self) {
        self.reset();
        self.fifo.clear();
        self.started = false;
    }

    /// Forgets the current timeline (call on an SSRC change): the next
    /// packet starts a new one. Audio already decoded still plays out, and
    /// statistics and learnt jitter are kept.
    pub fn reset(&mut self) {
        self.counters.discarded += self.store.clear();
        self.synced = false;
        self.implausible_run = 0;
    }

    /// Stores an encoded payload (copied into the slot pool). `rtp_ts` is
    /// in 8 kHz units (the caller converts for Opus).
    pub fn insert(&mut self, seq: u16, rtp_ts: u32, payload: &[u8], arrival_ms: u64) {
        let arrival = arrival_ms.min(MAX_TIME_MS);
        self.counters.packets += 1;
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            self.counters.discarded += 1;
            return;
        }
        if !self.synced {
            self.resync(seq, rtp_ts, arrival);
        }
        let mut ext_seq = extend_seq(self.highest_seq, seq);
        let mut ext_ts = extend_ts(self.highest_ts, rtp_ts);
        let mut transit = transit_of(arrival, ext_ts);
        if !self.plausible(ext_seq, transit) {
            self.implausible_run += 1;
            if self.implausible_run < RESYNC_AFTER {
                self.counters.discarded += 1;
                return;
            }
            self.resync(seq, rtp_ts, arrival);
            ext_seq = extend_seq(self.highest_seq, seq);
            ext_ts = extend_ts(self.highest_ts, rtp_ts);
            transit = transit_of(arrival, ext_ts);
        }
        self.implausible_run = 0;
        self.delay.observe_transit(transit, arrival);

        if self.store.contains(ext_seq) || self.was_decoded(ext_seq) {
            self.counters.duplicates += 1;
            return;
        }
        if ext_seq < self.highest_seq {
            self.counters.reordered += 1;
        }
        self.highest_seq = self.highest_seq.max(ext_seq);
        self.highest_ts = self.highest_ts.max(ext_ts);

        // Its need: the delay at which its first sample would just have made
        // the pull that plays it.
        let play_ts = self.play_ts();
        let offset = ext_ts
            .wrapping_sub(play_ts)
            .rem_euclid(self.pull_len.max(1) as i64);
        self.delay
            .observe_need(transit.saturating_add(offset), arrival);

        let already_played = ext_ts.saturating_add(self.last_packet_len as i64) <= self.next_ts;
        if ext_seq < self.next_seq || already_played {
            self.counters.late += 1;
            return;
        }
        let window_end = self.next_seq.saturating_add(self.store.capacity() as i64);
        if ext_seq >= window_end {
            // Far ahead (a long outage): give up the oldest waiting packets.
            let new_next = ext_seq - self.store.capacity() as i64 + 1;
            self.counters.discarded += self.store.remove_below(new_next);
            self.next_seq = new_next;
        }
        self.store.put(ext_seq, ext_ts, payload);
    }

    /// Produces exactly `out.len()` samples of 8 kHz PCM for playout at
    /// `now_ms`, decoding with `decoder`.
    pub fn pull(&mut self, now_ms: u64, decoder: &mut dyn Decoder, out: &mut [i16]) {
        if out.is_empty() {
            return;
        }
        let now = now_ms.min(MAX_TIME_MS);
        self.pull_len = out.len();
        self.delay.update(now);
        let mut offset_ms = 0;
        for chunk in out.chunks_mut(CHUNK) {
            self.pull_chunk(now.saturating_add(offset_ms), decoder, chunk);
            offset_ms += chunk.len() as u64 / 8;
        }
    }

    pub fn stats(&self) -> JitterStats {
        let ms = |samples: i64| samples as f32 / 8.0;
        let target = self.delay.relative_target();
        self.counters.snapshot(
            ms(self.current_delay),
            // Kept through a stop or reset: the learnt target still describes the path.
            if self.counters.packets > 0 {
                ms(target)
            } else {
                0.0
            },
        )
    }

    fn play_ts(&self) -> i64 {
        self.next_ts.saturating_sub(self.fifo.len() as i64)
    }

    fn plausible(&self, ext_seq: i64, transit: i64) -> bool {
        let seq_delta = ext_seq.saturating_sub(self.highest_seq);
        let relative = transit.saturating_sub(self.delay.base());
        let too_old = -(self.store.capacity() as i64) - 64;
        let latest = (i64::from(self.cfg.max_delay_ms) + MAX_LATE_EXTRA_MS) * 8;
        (too_old..=MAX_SEQ_JUMP).contains(&seq_delta)
            && (-MAX_EARLY_MS * 8..=latest).contains(&relative)
    }

    /// Starts a new timeline at this packet; decoded audio still plays.
    fn resync(&mut self, seq: u16, rtp_ts: u32, arrival: u64) {
        if self.synced {
            self.counters.resyncs += 1;
        }
        self.counters.discarded += self.store.clear();
        let ts = i64::from(rtp_ts);
        self.highest_seq = i64::from(seq);
        self.highest_ts = ts;
        self.next_seq = i64::from(seq);
        // The FIFO's unplayed audio precedes the new stream on the timeline.
        self.next_ts = ts;
        self.last_decoded = None;
        self.decoded_mask = 0;
        self.pending_concealed = 0;
        let transit = transit_of(arrival, ts);
        let initial = i64::from(self.cfg.initial_delay_ms) * 8;
        self.delay.restart(transit, initial, arrival);
        self.synced = true;
    }

    fn was_decoded(&self, seq: i64) -> bool {
        let Some(last) = self.last_decoded else {
            return false;
        };
        let back = last.saturating_sub(seq);
        (0..64).contains(&back) && self.decoded_mask & (1u64 << back) != 0
    }

    fn mark_decoded(&mut self, seq: i64) {
        match self.last_decoded {
            Some(last) if seq <= last => {
                let back = last - seq;
                if back < 64 {
                    self.decoded_mask |= 1u64 << back;
                }
            }
            Some(last) => {
                let shift = seq - last;
                self.decoded_mask = if shift >= 64 {
                    0
                } else {
                    self.decoded_mask << shift
                };
                self.decoded_mask |= 1;
                self.last_decoded = Some(seq);
            }
            None => {
                self.decoded_mask = 1;
                self.last_decoded = Some(seq);
            }
        }
    }

    fn pull_chunk(&mut self, now: u64, decoder: &mut dyn Decoder, out: &mut [i16]) {
        let need = out.len();
        if !self.synced && self.fifo.len() == 0 {
            out.fill(0);
            return;
        }
        if !self.started {
            let ready = self.position(now) >= self.delay.target() - need as i64 / 2;
            if !ready || !self.synced {
                out.fill(0);
                return;
            }
            self.started = true;
        }
        self.refill(decoder, need + LOOKAHEAD);
        self.stretch(now, need);
        // Cover the pull: decode what is due, conceal what is missing. Each
        // round decodes or drops a packet, or conceals at least one sample;
        // the bound only guards against a codec that conceals nothing.
        for _ in 0..4 * CHUNK {
            if self.fifo.len() >= need {
                break;
            }
            if self.synced && self.decode_next(decoder) {
                continue;
            }
            self.conceal(now, decoder, need - self.fifo.len());
        }
        self.current_delay = self.position(now).saturating_sub(self.delay.base());
        self.fifo.pop(out);
        self.counters.played += need as u64;
    }

    /// The playout position at `now` against the transit scale, samples.
    fn position(&self, now: u64) -> i64 {
        ((now as i64) * 8).saturating_sub(self.play_ts())
    }

    /// Decodes packets due in sequence until `want` samples are queued.
    fn refill(&mut self, decoder: &mut dyn Decoder, want: usize) {
        while self.synced && self.fifo.len() < want && self.decode_next(decoder) {}
    }

    /// Decodes (or drops, if wholly late) the next stored packet if it is
    /// due, i.e. starts no later than the FIFO's end. Returns whether a
    /// packet was consumed.
    fn decode_next(&mut self, decoder: &mut dyn Decoder) -> bool {
        let Some(packet) = self.store.first_from(self.next_seq, self.highest_seq) else {
            return false;
        };
        if packet.ts > self.next_ts {
            return false;
        }
        self.scratch.clear();
        let decoded = decoder.decode(self.store.payload(packet.seq), &mut self.scratch);
        self.store.remove(packet.seq);
        self.next_seq = packet.seq + 1;
        if decoded.is_err() {
            self.scratch.clear();
            self.counters.discarded += 1;
            return true;
        }
        let len = self.scratch.len();
        let end = packet.ts.saturating_add(len as i64);
        if end <= self.next_ts {
            self.counters.late += 1;
            return true;
        }
        if self.pending_concealed > 0 {
            let in_sequence = self.last_decoded.is_some_and(|last| packet.seq == last + 1);
            if !in_sequence {
                self.counters.concealed += self.pending_concealed;
            }
            self.pending_concealed = 0;
        }
        self.mark_decoded(packet.seq);
        self.last_packet_len = len;
        let skip = (self.next_ts - packet.ts).clamp(0, len as i64) as usize;
        let builtin = uses_builtin_plc(decoder);
        let audio = &mut self.scratch[skip..];
        if builtin {
            self.plc.resume(audio);
            self.plc.remember(audio);
        }
        let pushed = self.fifo.push(audio);
        if pushed < audio.len() {
            self.counters.discarded += 1;
        }
        self.next_ts = end;
        true
    }

    /// Conceals `missing` samples. Below the target the concealment is
    /// inserted and the missing packet still awaited (delay grows, as with
    /// expand); at or above it the timeline moves on (up to the next stored
    /// packet at most) and the packet, if it comes, is late.
    fn conceal(&mut self, now: u64, decoder: &mut dyn Decoder, missing: usize) {
        let advance = self.position(now) >= self.delay.target() || !self.synced;
        let mut amount = missing.min(CHUNK);
        if advance {
            if let Some(next) = self.store.first_from(self.next_seq, self.highest_seq) {
                let gap = next.ts.saturating_sub(self.next_ts).max(1);
                amount = amount.min(gap as usize);
            }
        }
        self.scratch.clear();
        if uses_builtin_plc(decoder) {
            self.scratch.resize(amount, 0);
            self.plc
                .conceal(&mut self.scratch, self.fifo.tail_mut(CHUNK));
        } else {
            let frame = decoder.def().frame_samples.max(1);
            decoder.conceal(amount.div_ceil(frame) * frame, &mut self.scratch);
        }
        if self.scratch.is_empty() {
            // A codec that conceals nothing: play silence rather than stall.
            self.scratch.resize(amount, 0);
        }
        let produced = self.fifo.push(&self.scratch) as u64;
        if advance {
            self.next_ts = self.next_ts.saturating_add(produced as i64);
            self.pending_concealed += produced;
        } else {
            self.counters.concealed += produced;
        }
    }

    /// One accelerate or expand step towards the band above the target,
    /// if worthwhile.
    fn stretch(&mut self, now: u64, need: usize) {
        // A fixed buffer holds its delay: only a large error (drift, a
        // restart) is corrected, never the small wander of in-time audio.
        let only_forced = !self.cfg.adaptive;
        let position = self.position(now);
        let low = self.delay.target();
        let high = low.saturating_add(BAND_MS * 8);
        let queued = self.fifo.len();
        if position > high {
            let excess = position - high;
            // Never undershoot the band; keep the pull covered.
            let max_lag = ((position - low) as usize)
                .min(queued.saturating_sub(need))
                .min(queued / 2);
            let Some(found) = stretch::find_period(self.fifo.audio(), max_lag) else {
                return;
            };
            let forced = excess > FORCE_ACCELERATE_MS * 8;
            if (forced || !only_forced)
                && acceptable_to_remove(&found, forced)
                && self.fifo.accelerate(found.lag)
            {
                self.counters.accelerated += found.lag as u64;
            }
        } else if position < low {
            let deficit = low - position;
            let max_lag = ((high - position) as usize).min(queued / 2);
            let Some(found) = stretch::find_period(self.fifo.audio(), max_lag) else {
                return;
            };
            let forced = deficit > FORCE_EXPAND_MS * 8;
            if (forced || !only_forced) && acceptable(&found, forced) && self.fifo.expand(found.lag)
            {
                self.counters.expanded += found.lag as u64;
            }
        }
    }
}

fn acceptable(found: &stretch::Match, forced: bool) -> bool {
    forced || found.correlation >= STRETCH_CORRELATION || found.power <= QUIET_POWER
}

/// Removing audio is never urgent below the forcing threshold (too much delay is only delay):
/// it waits for a quiet stretch or a strongly periodic one, where a pitch period goes unheard.
fn acceptable_to_remove(found: &stretch::Match, forced: bool) -> bool {
    forced || found.correlation >= REMOVE_CORRELATION || found.power <= QUIET_POWER
}

fn uses_builtin_plc(decoder: &dyn Decoder) -> bool {
    matches!(decoder.def().kind, CodecKind::Pcma | CodecKind::Pcmu)
}

/// `8·arrival − ts`, samples.
fn transit_of(arrival_ms: u64, ts: i64) -> i64 {
    ((arrival_ms.min(MAX_TIME_MS) as i64) * 8).saturating_sub(ts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
