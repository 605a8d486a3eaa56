//! Fixed-size latency histogram: 1 µs buckets up to 100 ms plus one overflow bucket, so
//! recording is one array increment and percentiles never need the samples.

/// Bucket width in nanoseconds.
const BUCKET_NS: u64 = 1_000;
/// Number of 1 µs buckets: 100 ms of range; slower packets land in the overflow bucket.
const BUCKETS: usize = 100_000;

pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_ns: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS + 1],
            total: 0,
            max_ns: 0,
        }
    }

    pub fn record(&mut self, ns: u64) {
        let bucket = usize::try_from(ns / BUCKET_NS).map_or(BUCKETS, |b| b.min(BUCKETS));
        self.counts[bucket] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn max_us(&self) -> f64 {
        self.max_ns as f64 / 1_000.0
    }

    /// The `pct`-th percentile in µs, as the midpoint of its bucket; 0 when empty. A value in
    /// the overflow bucket reports the exact maximum.
    pub fn percentile_us(&self, pct: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((pct / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                if bucket == BUCKETS {
                    break;
                }
                let mid_ns = bucket as f64 * BUCKET_NS as f64 + BUCKET_NS as f64 / 2.0;
                return (mid_ns / 1_000.0).min(self.max_us());
            }
        }
        self.max_us()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_uniform_samples() {
        let mut h = Histogram::new();
        for us in 1..=100u64 {
            h.record(us * 1_000 + 100);
        }
        assert_eq!(h.total, 100);
        assert_eq!(h.percentile_us(50.0), 50.5);
        assert_eq!(h.percentile_us(99.0), 99.5);
        assert_eq!(h.max_us(), 100.1);
    }

    #[test]
    fn overflow_reports_the_maximum() {
        let mut h = Histogram::new();
        h.record(5_000_000_000);
        assert_eq!(h.percentile_us(50.0), 5_000_000.0);
        assert_eq!(Histogram::new().percentile_us(99.0), 0.0);
    }
}
