//! The delay target: how far behind the fastest packets playout should run.
//!
//! Theory of operation (NetEQ-class). Every arriving packet gives two
//! numbers, both in 8 kHz samples on the receiver's clock:
//! - its *transit* `8·arrival − rtp_ts`, constant up to a sender/receiver
//!   offset when the network adds no delay. The minimum over a sliding
//!   window ([`BASE_WINDOW_MS`]) is the *base*: the fastest path, the zero of
//!   every delay we report. A sliding window (not an all-time minimum) lets
//!   the base follow clock drift between sender and receiver.
//! - its *need*: the playout position at which it would just have been in
//!   time, i.e. its transit plus where its first sample falls inside the
//!   receiver's pull grid (see `JitterBuffer::insert`).
//!
//! Needs go into a histogram with exponential forgetting (time constant
//! [`HISTOGRAM_TAU_MS`]); its `quantile` is the steady-state target. A
//! packet needing more than the current target raises the target at once
//! (fast attack: that packet was, or would have been, late); a target above
//! the quantile decays towards it with half-life [`TARGET_HALF_LIFE_MS`]
//! (slow release). The target is clamped to `base + [min, max]`.
//!
//! Needs are recorded relative to the base at the time they are observed,
//! and the target is kept relative to the current base. So with clock drift
//! (the transit, and with it every need, moving steadily) old needs still
//! describe the jitter rather than where the transit used to be: the
//! target neither lags behind a falling transit (adding delay) nor is left
//! behind by a rising one (losing packets).

use super::JitterConfig;

/// Forgetting time constant of the need histogram, ms: after jitter stops,
/// old needs lose their weight in ~3 time constants.
const HISTOGRAM_TAU_MS: f64 = 3000.0;
/// Half-life of the target's decay towards the quantile, ms (slow release).
const TARGET_HALF_LIFE_MS: f64 = 2000.0;
/// Sliding window of the base (minimum transit), ms, in blocks.
const BASE_BLOCK_MS: u64 = 500;
const BASE_BLOCKS: usize = 6;
/// Histogram range above `max_delay_ms`, ms; higher needs land in the top bin.
const RANGE_EXTRA_MS: u32 = 100;
/// Renormalise histogram weights before `exp` of this overflows f64.
const MAX_WEIGHT_EXPONENT: f64 = 500.0;

/// The delay target and its base, in 8 kHz samples on the receiver's clock. Public so that a
/// packet-level re-timer (the relay path's optional jitter buffer) can share the same policy.
#[derive(Debug)]
pub struct DelayEstimator {
    quantile: f64,
    min_samples: i64,
    max_samples: i64,
    /// 1 ms bins of `need − base`, weighted by arrival time.
    bins: Vec<f64>,
    total: f64,
    weight_origin_ms: u64,
    block_min: [i64; BASE_BLOCKS],
    block_id: u64,
    base: i64,
    /// Target relative to the base, samples.
    target: i64,
    last_update_ms: u64,
}

impl DelayEstimator {
    /// An estimator for `cfg`'s range (for a fixed delay give `min = max = initial`).
    pub fn new(cfg: &JitterConfig) -> Self {
        let bins = (cfg.max_delay_ms + RANGE_EXTRA_MS) as usize;
        DelayEstimator {
            quantile: f64::from(cfg.quantile),
            min_samples: i64::from(cfg.min_delay_ms) * 8,
            max_samples: i64::from(cfg.max_delay_ms) * 8,
            bins: vec![0.0; bins],
            total: 0.0,
            weight_origin_ms: 0,
            block_min: [i64::MAX; BASE_BLOCKS],
            block_id: 0,
            base: 0,
            target: 0,
            last_update_ms: 0,
        }
    }

    /// Starts (or restarts after a resync) from one packet of `transit`,
    /// with the target `initial` samples above it. Needs already learnt
    /// are kept: the path's jitter does not change with a new timestamp base.
    pub fn restart(&mut self, transit: i64, initial: i64, now_ms: u64) {
        self.block_min = [transit; BASE_BLOCKS];
        self.block_id = now_ms / BASE_BLOCK_MS;
        self.base = transit;
        if self.total <= 0.0 {
            self.target = initial;
        }
        self.last_update_ms = now_ms;
        self.clamp_target();
    }

    /// The base: minimum transit over the window, samples.
    pub fn base(&self) -> i64 {
        self.base
    }

    /// The target playout position (clamped), samples, absolute.
    pub fn target(&self) -> i64 {
        self.base.saturating_add(self.target)
    }

    /// The target relative to the base, samples.
    pub fn relative_target(&self) -> i64 {
        self.target
    }

    pub fn observe_transit(&mut self, transit: i64, arrival_ms: u64) {
        let id = arrival_ms / BASE_BLOCK_MS;
        if id > self.block_id {
            let steps = (id - self.block_id).min(BASE_BLOCKS as u64);
            for step in 1..=steps {
                let slot = (self.block_id + step) % BASE_BLOCKS as u64;
                if let Some(min) = self.block_min.get_mut(slot as usize) {
                    *min = i64::MAX;
                }
            }
            self.block_id = id;
        }
        if let Some(min) = self
            .block_min
            .get_mut((self.block_id % BASE_BLOCKS as u64) as usize)
        {
            *min = (*min).min(transit);
        }
        self.base = self.block_min.iter().copied().min().unwrap_or(transit);
    }

    /// Records one packet's need (samples, absolute) at `arrival_ms`.
    pub fn observe_need(&mut self, need: i64, arrival_ms: u64) {
        let need = need.saturating_sub(self.base).max(0);
        let mut exponent = (arrival_ms as f64 - self.weight_origin_ms as f64) / HISTOGRAM_TAU_MS;
        if exponent > MAX_WEIGHT_EXPONENT {
            let scale = (-exponent).exp();
            self.bins.iter_mut().for_each(|bin| *bin *= scale);
            self.total *= scale;
            self.weight_origin_ms = arrival_ms;
            exponent = 0.0;
        }
        let weight = exponent.exp();
        let last = self.bins.len().saturating_sub(1);
        let index = (need / 8).clamp(0, last as i64) as usize;
        if let Some(bin) = self.bins.get_mut(index) {
            *bin += weight;
            self.total += weight;
        }
        // Fast attack: this packet needed more delay than we had planned.
        self.target = self.target.max(need);
        self.clamp_target();
    }

    /// The `quantile` of the need histogram, samples relative to the base.
    pub fn quantile_need(&self) -> Option<i64> {
        if self.total <= 0.0 {
            return None;
        }
        let tail = (1.0 - self.quantile) * self.total;
        let mut above = 0.0;
        for (index, bin) in self.bins.iter().enumerate().rev() {
            above += bin;
            if above > tail {
                // Upper edge of the bin: rather a little early than late.
                return Some((index as i64 + 1) * 8);
            }
        }
        Some(0)
    }

    /// Lets the target decay towards the quantile (slow release).
    pub fn update(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_update_ms) as f64;
        self.last_update_ms = self.last_update_ms.max(now_ms);
        if let Some(quantile) = self.quantile_need() {
            if quantile >= self.target {
                self.target = quantile;
            } else {
                let keep = 0.5f64.powf(elapsed / TARGET_HALF_LIFE_MS);
                let excess = (self.target - quantile) as f64 * keep;
                self.target = quantile.saturating_add(excess as i64);
            }
        }
        self.clamp_target();
    }

    fn clamp_target(&mut self) {
        self.target = self
            .target
            .clamp(self.min_samples, self.max_samples.max(self.min_samples));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn estimator() -> DelayEstimator {
        let mut est = DelayEstimator::new(&JitterConfig::default());
        est.restart(1000, 40 * 8, 0);
        est
    }

    #[test]
    fn quantile_of_uniform_needs() {
        let mut est = estimator();
        for i in 0..1000u64 {
            let need = 1000 + (i % 100) as i64 * 8; // 0..99 ms above base
            est.observe_transit(1000, i * 20);
            est.observe_need(need, i * 20);
        }
        let ms = est.quantile_need().unwrap() / 8;
        assert!((93..=98).contains(&ms), "{ms}");
    }

    #[test]
    fn fast_attack_slow_release_and_clamps() {
        let mut est = estimator();
        est.observe_need(1000 + 150 * 8, 0);
        assert_eq!(est.target(), 1000 + 150 * 8);
        est.observe_need(1000 + 900 * 8, 0);
        assert_eq!(est.target(), 1000 + 200 * 8, "clamped to max");
        // Only small needs from now on: the target comes down, slowly.
        let mut t = 0;
        for _ in 0..50 {
            t += 20;
            est.observe_transit(1000, t);
            est.observe_need(1000, t);
            est.update(t);
        }
        assert!(est.target() > 1000 + 150 * 8, "{}", est.target());
        for _ in 0..1000 {
            t += 20;
            est.observe_transit(1000, t);
            est.observe_need(1000, t);
            est.update(t);
        }
        assert_eq!(est.target(), 1000 + 20 * 8, "clamped to min");
    }

    #[test]
    fn histogram_follows_a_drifting_base() {
        let mut est = estimator();
        for i in 0..20_000i64 {
            let base = 1000 + i * 4 / 5; // transit grows 0.5 %
            let t = i as u64 * 20;
            est.observe_transit(base, t);
            est.observe_need(base + 30 * 8, t);
            est.update(t);
        }
        // 30 ms plus the base's lag behind a rising transit (3 s · 0.5 %).
        let q = est.quantile_need().unwrap();
        assert!((30 * 8..=50 * 8).contains(&q), "{q}");
        assert!((30 * 8..=50 * 8).contains(&est.relative_target()));
    }
}
