//! When each packet is due. Every call sends one packet per direction each 20 ms period
//! ("round"); call `c` of `n` sends at offset `c * 20 ms / n` within the period, so the load is
//! spread evenly instead of bursting. Numbering all sends as slots `k = round * n + call`, slot
//! `k` is due at `start + k * 20 ms / n`.
//!
//! Rounds `0..warmup_rounds` are warm-up (not counted); the next `measured_rounds` rounds are
//! the timed phase. All times are nanoseconds since `base`, a monotonic instant shared by the
//! sender and receiver threads.

use std::time::{Duration, Instant};

/// Packetisation interval: 20 ms of audio per packet.
pub const PERIOD_NS: u64 = 20_000_000;

pub struct Schedule {
    pub base: Instant,
    /// When slot 0 is due, ns after `base`.
    pub start_ns: u64,
    pub calls: u32,
    pub warmup_rounds: u32,
    pub measured_rounds: u32,
}

impl Schedule {
    pub fn new(calls: u32, warmup: Duration, measured: Duration, lead: Duration) -> Schedule {
        let rounds =
            |d: Duration| u32::try_from(d.as_nanos() / u128::from(PERIOD_NS)).unwrap_or(u32::MAX);
        Schedule {
            base: Instant::now(),
            start_ns: u64::try_from(lead.as_nanos()).unwrap_or(u64::MAX),
            calls,
            warmup_rounds: rounds(warmup),
            measured_rounds: rounds(measured),
        }
    }

    /// Nanoseconds since `base`.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn total_slots(&self) -> u64 {
        u64::from(self.calls) * u64::from(self.warmup_rounds + self.measured_rounds)
    }

    pub fn slot_due_ns(&self, slot: u64) -> u64 {
        self.start_ns + slot * PERIOD_NS / u64::from(self.calls)
    }

    /// Start of the timed phase (first measured round), ns after `base`.
    pub fn timed_start_ns(&self) -> u64 {
        self.start_ns + u64::from(self.warmup_rounds) * PERIOD_NS
    }

    /// End of the timed phase, ns after `base`.
    pub fn timed_end_ns(&self) -> u64 {
        self.timed_start_ns() + u64::from(self.measured_rounds) * PERIOD_NS
    }

    /// The measured-round index of `round`, or `None` for warm-up (or out-of-range) rounds.
    pub fn measured_index(&self, round: u32) -> Option<u32> {
        round
            .checked_sub(self.warmup_rounds)
            .filter(|&m| m < self.measured_rounds)
    }

    pub fn sleep_until_ns(&self, due_ns: u64) {
        let now = self.now_ns();
        if due_ns > now {
            std::thread::sleep(Duration::from_nanos(due_ns - now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_calls_over_the_period() {
        let s = Schedule::new(
            4,
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::ZERO,
        );
        assert_eq!(s.warmup_rounds, 50);
        assert_eq!(s.measured_rounds, 100);
        assert_eq!(s.total_slots(), 600);
        assert_eq!(s.slot_due_ns(1), 5_000_000);
        assert_eq!(s.slot_due_ns(4), PERIOD_NS);
        assert_eq!(s.timed_end_ns() - s.timed_start_ns(), 2_000_000_000);
        assert_eq!(s.measured_index(49), None);
        assert_eq!(s.measured_index(50), Some(0));
        assert_eq!(s.measured_index(150), None);
    }
}
