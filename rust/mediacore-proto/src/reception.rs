//! RFC 3550 receiver statistics for one stream: sequence tracking (A.1, without
//! probation), loss (A.3) and interarrival jitter (A.8).
//!
//! # Theory of operation
//!
//! The stream has at most one current *source*: an SSRC and a sequence state
//! (`base`, the first extended sequence number, and `max`, the highest). Each
//! packet is placed relative to `max` by the signed 16-bit distance of its
//! sequence number:
//!
//! * ahead by 1..=[`MAX_DROPOUT`]: in order; `max` advances, skipped numbers
//!   are gaps (lost until they turn up);
//! * equal to `max`, or behind but already marked in the bitmap: duplicate;
//! * behind by less than [`WINDOW`]: out of order, fills its gap (a packet
//!   from before `base` moves `base` back, so it is expected too);
//! * anything else (a jump ahead of more than `MAX_DROPOUT`, or behind by
//!   more than [`MAX_MISORDER`] and outside the window): the sender restarted
//!   its sequence. The current source's expected/lost are folded into the
//!   totals and a fresh sequence state starts at this packet.
//!
//! A new SSRC does the same fold and also restarts jitter. RFC 3550 A.1 waits
//! for a second sequential packet before believing a restart; this version
//! believes the first one, as a relay must forward it anyway.
//!
//! Everything is O(1) with a fixed 1024-bit bitmap; no allocation.

use crate::rtp::RtpHeader;

/// Largest forward jump, in packets, still taken as loss rather than a restart (RFC 3550 A.1).
pub const MAX_DROPOUT: u64 = 3000;
/// Packets behind the highest that RFC 3550 A.1 still accepts as reordering;
/// here the duplicate window below covers more, so this only documents the floor.
pub const MAX_MISORDER: u64 = 100;
/// Extended sequence numbers behind the highest for which duplicates are detected, in packets.
pub const WINDOW: u64 = 1024;

const WINDOW_WORDS: usize = (WINDOW / 64) as usize;
const _: () = assert!(WINDOW > MAX_MISORDER && WINDOW % 64 == 0);

/// How a packet fitted the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    First,
    InOrder,
    OutOfOrder,
    Duplicate,
    /// New SSRC: sequence state restarted.
    SourceChanged,
    /// Huge jump: treated as a restart per MAX_DROPOUT / MAX_MISORDER.
    Restarted,
}

/// Counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceptionSnapshot {
    /// Every valid RTP packet recorded, duplicates included.
    pub packets: u64,
    /// Wire bytes of those packets (the `wire_len` passed in).
    pub bytes: u64,
    /// Sum over sources of (highest_ext - base_ext + 1).
    pub expected: u64,
    /// Expected minus unique received, clamped at 0 per source.
    pub lost: i64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// RFC 3550 interarrival jitter in RTP timestamp units (the J/16 value).
    pub jitter: u32,
    /// Jitter converted with the last clock rate, in milliseconds (0.0 if that rate was 0).
    pub jitter_ms: f64,
    pub ssrc: Option<u32>,
    pub ssrc_changes: u64,
    /// Extended highest sequence number of the current source.
    pub highest_seq: u64,
    /// Arrival time of the last packet, in the caller's microseconds.
    pub last_arrival_us: Option<u64>,
    /// Sequence restarts within one SSRC (jumps beyond MAX_DROPOUT / the window).
    pub restarts: u64,
}

/// Sequence state of the current source.
#[derive(Debug, Clone, Default)]
struct SourceSeq {
    base: u64,
    max: u64,
    /// Distinct extended sequence numbers received in base..=max.
    unique: u64,
    /// Bit `ext % WINDOW` is set when `ext` (within WINDOW of max) was received.
    seen: [u64; WINDOW_WORDS],
}

enum Placement {
    InOrder,
    OutOfOrder,
    Duplicate,
    Restart,
}

impl SourceSeq {
    fn start(seq: u16) -> Self {
        let mut s = SourceSeq {
            base: u64::from(seq),
            max: u64::from(seq),
            unique: 1,
            seen: [0; WINDOW_WORDS],
        };
        s.mark(s.max);
        s
    }

    fn expected(&self) -> u64 {
        self.max - self.base + 1
    }

    fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.unique)
    }

    fn slot(ext: u64) -> (usize, u64) {
        let bit = ext % WINDOW;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn is_marked(&self, ext: u64) -> bool {
        let (word, mask) = Self::slot(ext);
        self.seen.get(word).is_some_and(|w| w & mask != 0)
    }

    fn mark(&mut self, ext: u64) {
        let (word, mask) = Self::slot(ext);
        if let Some(w) = self.seen.get_mut(word) {
            *w |= mask;
        }
    }

    /// Forgets the bits that `max+1..=max+count` will reuse, a word at a time.
    fn clear_ahead(&mut self, count: u64) {
        if count >= WINDOW {
            self.seen = [0; WINDOW_WORDS];
            return;
        }
        let mut pos = (self.max + 1) % WINDOW;
        let mut left = count;
        while left > 0 {
            let bit = pos % 64;
            let take = (64 - bit).min(left);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << bit
            };
            if let Some(w) = self.seen.get_mut((pos / 64) as usize) {
                *w &= !mask;
            }
            pos = (pos + take) % WINDOW;
            left -= take;
        }
    }

    fn place(&mut self, seq: u16) -> Placement {
        let delta = seq.wrapping_sub(self.max as u16) as i16;
        if delta == 0 {
            return Placement::Duplicate;
        }
        if delta > 0 {
            let ahead = u64::from(delta.unsigned_abs());
            if ahead > MAX_DROPOUT {
                return Placement::Restart;
            }
            self.clear_ahead(ahead);
            self.max += ahead;
            self.mark(self.max);
            self.unique += 1;
            return Placement::InOrder;
        }
        let behind = u64::from(delta.unsigned_abs());
        // WINDOW > MAX_MISORDER, so outside the window is also beyond misorder.
        if behind >= WINDOW {
            return Placement::Restart;
        }
        let Some(ext) = self.max.checked_sub(behind) else {
            // Before extended sequence 0: cannot be tracked, so it is neither
            // expected nor counted as received.
            return Placement::OutOfOrder;
        };
        if self.is_marked(ext) {
            return Placement::Duplicate;
        }
        self.mark(ext);
        self.unique += 1;
        self.base = self.base.min(ext);
        Placement::OutOfOrder
    }
}

/// Reception statistics for one stream.
#[derive(Debug, Clone, Default)]
pub struct ReceptionStats {
    ssrc: Option<u32>,
    source: SourceSeq,
    ssrc_changes: u64,
    restarts: u64,
    packets: u64,
    bytes: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Totals of the sources before the current one.
    folded_expected: u64,
    folded_unique: u64,
    folded_lost: u64,
    /// Jitter estimate scaled by 16 (RFC 3550 A.8 fixed point).
    jitter16: u32,
    /// Arrival (in RTP clock units) minus RTP timestamp of the previous packet.
    last_transit: Option<u32>,
    clock_rate: u32,
    last_arrival_us: Option<u64>,
    /// Totals at the previous `take_fraction_lost`.
    prior_expected: u64,
    prior_received: u64,
}

/// Microseconds per second.
const US_PER_S: u64 = 1_000_000;

impl ReceptionStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one valid RTP packet.
    ///
    /// `arrival_us`: arrival time in microseconds from any fixed monotonic
    /// origin; `clock_rate`: RTP clock in Hz (0 = unknown: jitter not updated).
    /// Duplicates are detected within the last [`WINDOW`] extended sequence
    /// numbers. Jitter is updated only for in-order/out-of-order
    /// non-duplicate packets, per A.8.
    pub fn record(
        &mut self,
        hdr: &RtpHeader,
        wire_len: usize,
        arrival_us: u64,
        clock_rate: u32,
    ) -> Arrival {
        self.packets += 1;
        self.bytes = self.bytes.saturating_add(wire_len as u64);
        self.last_arrival_us = Some(arrival_us);

        let arrival = match self.ssrc {
            None => {
                self.ssrc = Some(hdr.ssrc);
                self.source = SourceSeq::start(hdr.sequence);
                Arrival::First
            }
            Some(ssrc) if ssrc != hdr.ssrc => {
                self.fold_source(hdr.sequence);
                self.ssrc = Some(hdr.ssrc);
                self.ssrc_changes += 1;
                self.jitter16 = 0;
                Arrival::SourceChanged
            }
            Some(_) => match self.source.place(hdr.sequence) {
                Placement::InOrder => Arrival::InOrder,
                Placement::OutOfOrder => {
                    self.out_of_order += 1;
                    Arrival::OutOfOrder
                }
                Placement::Duplicate => {
                    self.duplicates += 1;
                    return Arrival::Duplicate;
                }
                Placement::Restart => {
                    self.fold_source(hdr.sequence);
                    self.restarts += 1;
                    Arrival::Restarted
                }
            },
        };
        if matches!(
            arrival,
            Arrival::First | Arrival::SourceChanged | Arrival::Restarted
        ) {
            // Timestamps of a new or restarted sequence are unrelated to the old ones.
            self.last_transit = None;
        }
        self.update_jitter(hdr.timestamp, arrival_us, clock_rate);
        arrival
    }

    fn fold_source(&mut self, seq: u16) {
        self.folded_expected += self.source.expected();
        self.folded_unique += self.source.unique;
        self.folded_lost += self.source.lost();
        self.source = SourceSeq::start(seq);
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, kept scaled by 16 in integers.
    fn update_jitter(&mut self, timestamp: u32, arrival_us: u64, clock_rate: u32) {
        if clock_rate != self.clock_rate {
            // Transit in a different clock is not comparable.
            self.last_transit = None;
            self.clock_rate = clock_rate;
        }
        if clock_rate == 0 {
            return;
        }
        let rate = u64::from(clock_rate);
        // Only the low 32 bits matter (transit wraps like the RTP timestamp),
        // so wrapping arithmetic keeps them exact.
        let arrival_ticks = (arrival_us / US_PER_S)
            .wrapping_mul(rate)
            .wrapping_add((arrival_us % US_PER_S) * rate / US_PER_S);
        let transit = (arrival_ticks as u32).wrapping_sub(timestamp);
        if let Some(last) = self.last_transit {
            let d = i64::from(transit.wrapping_sub(last) as i32).abs();
            let j = i64::from(self.jitter16);
            let next = j + d - ((j + 8) >> 4);
            self.jitter16 = next.clamp(0, i64::from(u32::MAX)) as u32;
        }
        self.last_transit = Some(transit);
    }

    fn total_expected(&self) -> u64 {
        self.folded_expected
            + if self.ssrc.is_some() {
                self.source.expected()
            } else {
                0
            }
    }

    fn total_received(&self) -> u64 {
        self.folded_unique + self.source.unique
    }

    pub fn snapshot(&self) -> ReceptionSnapshot {
        let current_lost = if self.ssrc.is_some() {
            self.source.lost()
        } else {
            0
        };
        let jitter = self.jitter16 >> 4;
        ReceptionSnapshot {
            packets: self.packets,
            bytes: self.bytes,
            expected: self.total_expected(),
            lost: i64::try_from(self.folded_lost + current_lost).unwrap_or(i64::MAX),
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
            jitter,
            jitter_ms: if self.clock_rate == 0 {
                0.0
            } else {
                f64::from(jitter) * 1000.0 / f64::from(self.clock_rate)
            },
            ssrc: self.ssrc,
            ssrc_changes: self.ssrc_changes,
            highest_seq: if self.ssrc.is_some() {
                self.source.max
            } else {
                0
            },
            last_arrival_us: self.last_arrival_us,
            restarts: self.restarts,
        }
    }

    /// RFC 3550 A.3 fraction lost since the previous call, 8-bit fixed point
    /// (256 = all): 0 when nothing was expected or more arrived than expected.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.total_expected();
        let received = self.total_received();
        let expected_interval = expected - self.prior_expected;
        let received_interval = received - self.prior_received;
        self.prior_expected = expected;
        self.prior_received = received;
        if expected_interval == 0 || received_interval >= expected_interval {
            return 0;
        }
        let lost_interval = expected_interval - received_interval;
        u8::try_from((lost_interval << 8) / expected_interval).unwrap_or(u8::MAX)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// 20 ms of 8 kHz audio: 160 timestamp units per packet.
    const PTIME_US: u64 = 20_000;
    const TS_STEP: u32 = 160;
    const RATE: u32 = 8000;

    fn hdr(ssrc: u32, seq: u16, ts: u32) -> RtpHeader {
        RtpHeader {
            padding: false,
            extension: false,
            marker: false,
            payload_type: 0,
            sequence: seq,
            timestamp: ts,
            ssrc,
            csrc_count: 0,
            header_len: 12,
            payload_len: 160,
            padding_len: 0,
        }
    }

    /// Records packet `i` of a regular stream starting at `first_seq`.
    fn send(stats: &mut ReceptionStats, first_seq: u16, i: u64) -> Arrival {
        let seq = first_seq.wrapping_add(i as u16);
        let ts = 1000u32.wrapping_add(TS_STEP.wrapping_mul(i as u32));
        stats.record(&hdr(0xabc, seq, ts), 172, i * PTIME_US, RATE)
    }

    #[test]
    fn in_order_stream() {
        let mut s = ReceptionStats::new();
        assert_eq!(send(&mut s, 10, 0), Arrival::First);
        for i in 1..100 {
            assert_eq!(send(&mut s, 10, i), Arrival::InOrder);
        }
        let snap = s.snapshot();
        assert_eq!(snap.packets, 100);
        assert_eq!(snap.bytes, 17_200);
        assert_eq!(snap.expected, 100);
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.highest_seq, 109);
        assert_eq!(snap.ssrc, Some(0xabc));
        assert_eq!(snap.last_arrival_us, Some(99 * PTIME_US));
        assert_eq!(snap.jitter, 0, "constant spacing has no jitter");
        assert_eq!(s.take_fraction_lost(), 0);
    }

    #[test]
    fn every_tenth_dropped() {
        let mut s = ReceptionStats::new();
        for i in (0..100).filter(|i| i % 10 != 5) {
            send(&mut s, 0, i);
        }
        let snap = s.snapshot();
        assert_eq!((snap.packets, snap.expected, snap.lost), (90, 100, 10));
        // 10 of 100 = 25.6/256, truncated.
        assert_eq!(s.take_fraction_lost(), 25);
        assert_eq!(s.take_fraction_lost(), 0, "nothing new since the last call");
    }

    #[test]
    fn duplicates_are_not_loss() {
        let mut s = ReceptionStats::new();
        for i in 0..50 {
            send(&mut s, 0, i);
            if i % 5 == 0 {
                assert_eq!(send(&mut s, 0, i), Arrival::Duplicate);
            }
        }
        // A duplicate well behind the highest is still caught by the window.
        assert_eq!(send(&mut s, 0, 3), Arrival::Duplicate);
        let snap = s.snapshot();
        assert_eq!(snap.packets, 61);
        assert_eq!(snap.duplicates, 11);
        assert_eq!((snap.expected, snap.lost), (50, 0));
        assert_eq!(s.take_fraction_lost(), 0);
    }

    #[test]
    fn reordering_is_not_loss() {
        let mut s = ReceptionStats::new();
        let order = [0u64, 1, 3, 2, 4, 7, 5, 6, 8, 9];
        let mut arrivals = Vec::new();
        for &i in &order {
            arrivals.push(send(&mut s, 500, i));
        }
        assert_eq!(arrivals[3], Arrival::OutOfOrder);
        let snap = s.snapshot();
        assert_eq!(snap.out_of_order, 3);
        assert_eq!((snap.expected, snap.lost, snap.duplicates), (10, 0, 0));
    }

    #[test]
    fn packet_before_first_extends_base() {
        let mut s = ReceptionStats::new();
        send(&mut s, 0, 5);
        send(&mut s, 0, 6);
        assert_eq!(send(&mut s, 0, 4), Arrival::OutOfOrder);
        assert_eq!(send(&mut s, 0, 4), Arrival::Duplicate);
        let snap = s.snapshot();
        assert_eq!((snap.expected, snap.lost), (3, 0));
    }

    #[test]
    fn wrap_around() {
        let mut s = ReceptionStats::new();
        for i in 0..100 {
            let a = send(&mut s, 65_500, i);
            assert!(matches!(a, Arrival::First | Arrival::InOrder));
        }
        let snap = s.snapshot();
        assert_eq!((snap.expected, snap.lost), (100, 0));
        assert_eq!(snap.highest_seq, 65_500 + 99);
        assert_eq!(snap.highest_seq >> 16, 1, "one roll-over");

        let mut s = ReceptionStats::new();
        for i in (0..100).filter(|&i| i != 30) {
            send(&mut s, 65_500, i);
        }
        assert_eq!(s.snapshot().lost, 1);
        // Seq 65530 arrives after the wrap; it belongs to the first cycle.
        assert_eq!(send(&mut s, 65_500, 31), Arrival::Duplicate);
        assert_eq!(send(&mut s, 65_500, 30), Arrival::OutOfOrder);
        let snap = s.snapshot();
        assert_eq!((snap.expected, snap.lost), (100, 0));
    }

    #[test]
    fn ssrc_change_restarts_sequence() {
        let mut s = ReceptionStats::new();
        for i in (0..20).filter(|i| *i != 7) {
            send(&mut s, 100, i);
        }
        let a = s.record(&hdr(0xdef, 40_000, 5), 172, 21 * PTIME_US, RATE);
        assert_eq!(a, Arrival::SourceChanged);
        for seq in 40_001..40_010 {
            assert_eq!(
                s.record(&hdr(0xdef, seq, 5), 172, 22 * PTIME_US, RATE),
                Arrival::InOrder
            );
        }
        let snap = s.snapshot();
        assert_eq!(snap.packets, 29);
        assert_eq!(snap.ssrc, Some(0xdef));
        assert_eq!(snap.ssrc_changes, 1);
        assert_eq!(snap.expected, 20 + 10);
        assert_eq!(snap.lost, 1);
        assert_eq!(snap.highest_seq, 40_009);
    }

    #[test]
    fn huge_jumps_restart() {
        let mut s = ReceptionStats::new();
        for i in 0..10 {
            send(&mut s, 1000, i);
        }
        // 2999 missing packets is still loss.
        assert_eq!(send(&mut s, 1000, 9 + 3000), Arrival::InOrder);
        assert_eq!(s.snapshot().lost, 2999);
        // A jump of 3001 ahead is a restart.
        assert_eq!(send(&mut s, 1000, 9 + 3000 + 3001), Arrival::Restarted);
        let snap = s.snapshot();
        assert_eq!(snap.restarts, 1);
        assert_eq!(snap.expected, 3010 + 1);
        assert_eq!(snap.lost, 2999);
        // Far behind the window: another restart, not a duplicate or reorder.
        assert_eq!(send(&mut s, 1000, 0), Arrival::Restarted);
        assert_eq!(s.snapshot().restarts, 2);
        assert_eq!(s.snapshot().packets, 13);
    }

    #[test]
    fn reorder_inside_window_beyond_misorder() {
        let mut s = ReceptionStats::new();
        for i in (0..600).filter(|i| *i != 10) {
            send(&mut s, 0, i);
        }
        assert_eq!(send(&mut s, 0, 10), Arrival::OutOfOrder);
        assert_eq!(s.snapshot().lost, 0);
    }

    #[test]
    fn jitter_alternating_offsets() {
        // Packets every 20 ms at 8 kHz, arriving alternately 10 ms late and 10 ms
        // early: transit alternates +80/-80 units, so every |D| is 160. A.8 is an
        // exponential average of |D| (gain 1/16), so J converges to 160, not 80.
        // The integer form J16 += |D| - round(J16/16) settles once
        // round(J16/16) == 160, i.e. J16 in 2552..=2567, so J16 >> 4 is 159 or 160.
        let mut s = ReceptionStats::new();
        for i in 0..300u64 {
            let nominal = 1_000_000 + i * PTIME_US;
            let arrival = if i % 2 == 0 {
                nominal + 10_000
            } else {
                nominal - 10_000
            };
            s.record(&hdr(1, i as u16, (i as u32) * TS_STEP), 172, arrival, RATE);
        }
        let snap = s.snapshot();
        assert!((159..=160).contains(&snap.jitter), "jitter {}", snap.jitter);
        assert!(
            (snap.jitter_ms - 20.0).abs() < 0.2,
            "jitter_ms {}",
            snap.jitter_ms
        );
    }

    #[test]
    fn jitter_needs_clock_rate() {
        let mut s = ReceptionStats::new();
        for i in 0..50u64 {
            let offset = if i % 2 == 0 { 7_000 } else { 0 };
            s.record(
                &hdr(1, i as u16, (i as u32) * TS_STEP),
                172,
                i * PTIME_US + offset,
                0,
            );
        }
        let snap = s.snapshot();
        assert_eq!((snap.jitter, snap.jitter_ms), (0, 0.0));
    }

    #[test]
    fn jitter_ignores_duplicates_and_wraps_timestamps() {
        let mut s = ReceptionStats::new();
        let base_ts = u32::MAX - 1000;
        for i in 0..50u64 {
            let ts = base_ts.wrapping_add((i as u32) * TS_STEP);
            s.record(&hdr(1, i as u16, ts), 172, i * PTIME_US, RATE);
            // A duplicate arriving 15 ms later must not disturb the estimate.
            s.record(&hdr(1, i as u16, ts), 172, i * PTIME_US + 15_000, RATE);
        }
        assert_eq!(s.snapshot().jitter, 0);
        assert_eq!(s.snapshot().duplicates, 50);
    }

    #[test]
    fn fraction_lost_intervals() {
        let mut s = ReceptionStats::new();
        for i in (0..100).filter(|i| i % 2 == 0) {
            send(&mut s, 0, i);
        }
        // 99 expected (0..=98), 50 received: 49/99 * 256 = 126.7, truncated.
        assert_eq!(s.take_fraction_lost(), 126);
        // 99 was never sent above: with it, this interval is complete.
        for i in 99..200 {
            send(&mut s, 0, i);
        }
        assert_eq!(s.take_fraction_lost(), 0);
        // Gap 200 filled by nothing, 201 arrives: 2 expected, 1 received = 128/256.
        send(&mut s, 0, 201);
        assert_eq!(s.take_fraction_lost(), 128);
        assert_eq!(ReceptionStats::new().take_fraction_lost(), 0);
    }

    #[test]
    fn empty_snapshot() {
        let snap = ReceptionStats::new().snapshot();
        assert_eq!(snap, ReceptionSnapshot::default());
    }
}
