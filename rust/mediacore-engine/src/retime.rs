//! The optional jitter buffer of a relayed stream: packets are held and sent on, unchanged, at a
//! smoothed pace (VOS3000 `SS_JITTERBUFFER_*` with `relay` set; off by default).
//!
//! Theory of operation. A relayed stream is not decoded, so nothing can be concealed or
//! time-stretched: the buffer only re-times. Each RTP packet's transit (`8·arrival − ts`, in
//! 8 kHz units) feeds the same delay estimator as the decoding jitter buffer (minimum transit
//! over a sliding window as the base, a quantile target with fast attack and slow release,
//! clamped to `[min, max]`). A packet is due when the playout position reaches it:
//! `8·t − ts − base ≥ target`; held packets leave in sequence order, each at its due time, so
//! the receiver sees the sender's spacing again with the network's jitter taken out, up to the
//! target. A packet arriving after a later one has left is sent at once and counted late (a
//! relay never drops media it could still deliver); duplicates of held packets are dropped.
//! A timestamp or sequence jump, or a new SSRC, restarts the timeline.

use std::collections::VecDeque;

use mediacore_dsp::jitter::{DelayEstimator, JitterConfig, JitterStats};
use mediacore_proto::RtpHeader;

use crate::spec::{JitterBufferSpec, JitterMode};

/// Packets held at most (beyond it the oldest leaves early, not dropped): 1 s of 10 ms packets.
const MAX_HELD: usize = 100;
/// A timestamp further than this from the expected one (8 kHz samples, 2 s) is a new timeline.
const MAX_TS_JUMP: i64 = 16_000;

struct Held {
    seq: i64,
    /// Extended timestamp, 8 kHz units.
    ts: i64,
    data: Vec<u8>,
}

pub struct Retimer {
    spec: JitterBufferSpec,
    delay: DelayEstimator,
    held: VecDeque<Held>,
    ssrc: Option<u32>,
    highest_seq: i64,
    highest_ts: i64,
    /// Highest sequence number sent on.
    released_seq: Option<i64>,
    last_delay: i64,
    stats: JitterStats,
}

impl Retimer {
    pub fn new(spec: JitterBufferSpec) -> Self {
        Retimer {
            delay: DelayEstimator::new(&config(&spec)),
            spec,
            held: VecDeque::new(),
            ssrc: None,
            highest_seq: 0,
            highest_ts: 0,
            released_seq: None,
            last_delay: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn spec(&self) -> JitterBufferSpec {
        self.spec
    }

    /// Takes a packet arrived at `now_ms` whose payload type runs at `clock_rate` Hz. Returns
    /// it back if it must be sent at once (late, or not re-timable); otherwise keeps a copy
    /// (in a buffer from `pool`) until it is due.
    pub fn push<'a>(
        &mut self,
        hdr: &RtpHeader,
        data: &'a [u8],
        clock_rate: u32,
        now_ms: u64,
        pool: &mut Vec<Vec<u8>>,
    ) -> Option<&'a [u8]> {
        self.stats.packets += 1;
        if clock_rate == 0 {
            return Some(data);
        }
        let rate = i64::from(clock_rate);
        let fresh = self.ssrc != Some(hdr.ssrc);
        let seq = extend(self.highest_seq, i64::from(hdr.sequence), 16);
        let ts = extend(self.highest_ts * rate / 8000, i64::from(hdr.timestamp), 32) * 8000 / rate;
        let now = now_ms as i64;
        let transit = now * 8 - ts;
        let jumped = (seq - self.highest_seq).abs() > 3000
            || (transit - self.delay.base()).abs() > MAX_TS_JUMP;
        if fresh || jumped {
            if self.ssrc.is_some() {
                self.stats.resyncs += 1;
            }
            self.ssrc = Some(hdr.ssrc);
            let seq = i64::from(hdr.sequence);
            let ts = i64::from(hdr.timestamp) * 8000 / rate;
            self.highest_seq = seq;
            self.highest_ts = ts;
            self.released_seq = None;
            let initial = i64::from(self.spec.default_ms) * 8;
            self.delay.restart(now * 8 - ts, initial, now_ms);
            self.hold(seq, ts, data, pool);
            return None;
        }
        self.delay.observe_transit(transit, now_ms);
        self.delay.observe_need(transit, now_ms);
        if seq < self.highest_seq {
            self.stats.reordered += 1;
        }
        self.highest_seq = self.highest_seq.max(seq);
        self.highest_ts = self.highest_ts.max(ts);
        if self.held.iter().any(|h| h.seq == seq) {
            self.stats.duplicates += 1;
            return None;
        }
        if self.released_seq.is_some_and(|r| seq <= r) {
            self.stats.late += 1;
            return Some(data);
        }
        self.hold(seq, ts, data, pool);
        None
    }

    fn hold(&mut self, seq: i64, ts: i64, data: &[u8], pool: &mut Vec<Vec<u8>>) {
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        let at = self
            .held
            .iter()
            .position(|h| h.seq > seq)
            .unwrap_or(self.held.len());
        self.held.insert(at, Held { seq, ts, data: buf });
    }

    /// When the next held packet is due, ms on the session clock.
    pub fn next_due_ms(&self) -> Option<u64> {
        let head = self.held.front()?;
        // Rounded up: at the returned millisecond the packet is due.
        let due = (head.ts + self.delay.target() + 7).div_euclid(8);
        Some(due.max(0) as u64)
    }

    /// Sends on (appends to `out`) every held packet due at `now_ms`, in sequence order.
    pub fn release(&mut self, now_ms: u64, out: &mut VecDeque<Vec<u8>>) {
        self.delay.update(now_ms);
        let position = now_ms as i64 * 8;
        while let Some(head) = self.held.front() {
            let overflow = self.held.len() > MAX_HELD;
            if position - head.ts < self.delay.target() && !overflow {
                break;
            }
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.last_delay = position - h.ts - self.delay.base();
            self.released_seq = Some(self.released_seq.map_or(h.seq, |r| r.max(h.seq)));
            out.push_back(h.data);
        }
    }

    pub fn stats(&self) -> JitterStats {
        JitterStats {
            current_delay_ms: self.last_delay as f32 / 8.0,
            target_delay_ms: if self.ssrc.is_some() {
                self.delay.relative_target() as f32 / 8.0
            } else {
                0.0
            },
            ..self.stats
        }
    }
}

fn config(spec: &JitterBufferSpec) -> JitterConfig {
    let (min, max) = match spec.mode {
        JitterMode::Fixed => (spec.default_ms, spec.default_ms),
        JitterMode::Adaptive => (spec.min_ms, spec.max_ms),
    };
    JitterConfig {
        adaptive: spec.mode == JitterMode::Adaptive,
        min_delay_ms: min,
        max_delay_ms: max,
        initial_delay_ms: spec.default_ms,
        ..JitterConfig::default()
    }
}

/// Extends a wrapping `bits`-bit counter to i64 against `reference` (the nearer candidate).
fn extend(reference: i64, value: i64, bits: u32) -> i64 {
    let modulus = 1i64 << bits;
    let base = reference - reference.rem_euclid(modulus);
    [base - modulus, base, base + modulus]
        .iter()
        .map(|b| b + value)
        .min_by_key(|c| (c - reference).abs())
        .unwrap_or(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::extend;

    #[test]
    fn counters_extend_across_wrap_around() {
        assert_eq!(extend(65535, 0, 16), 65536);
        assert_eq!(extend(65536, 65535, 16), 65535);
        assert_eq!(extend(0, 65535, 16), -1);
        assert_eq!(extend(0xFFFF_FF00, 0x10, 32), 0x1_0000_0010);
    }
}
