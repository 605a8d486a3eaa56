//! Per-stream statistics of the jitter buffer.

/// A snapshot of one stream's jitter-buffer statistics. Delays are
/// relative to the fastest packet seen recently (the "base"), so they are
/// the delay the buffer adds on top of the network's best case.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Playout delay at the last pull, ms.
    pub current_delay_ms: f32,
    /// Delay the buffer is steering towards, ms.
    pub target_delay_ms: f32,
    /// Packets handed to `insert`.
    pub packets: u64,
    /// Packets that arrived after their audio had been played (concealed).
    pub late: u64,
    pub duplicates: u64,
    /// Packets dropped for other reasons: overflow of the packet store,
    /// implausible sequence number or timestamp (far too old, a jump not yet
    /// confirmed by following packets), oversized, empty or undecodable.
    pub discarded: u64,
    /// Packets that arrived after a packet with a higher sequence number.
    pub reordered: u64,
    /// Concealed audio, ms: packets lost or late, plus audio synthesised
    /// while the buffer waited for a late packet below its target delay.
    pub concealed_ms: u64,
    /// Audio played since playout started, ms.
    pub played_ms: u64,
    /// `concealed / played`.
    pub concealment_rate: f32,
    /// Audio removed by accelerate / played.
    pub accelerate_rate: f32,
    /// Audio inserted by pre-emptive expand / played.
    pub expand_rate: f32,
    /// Times the buffer resynchronised to a new timeline (timestamp jump,
    /// restarted stream, or `reset`).
    pub resyncs: u64,
}

/// Running counters, in samples where the stats are in ms.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) packets: u64,
    pub(crate) late: u64,
    pub(crate) duplicates: u64,
    pub(crate) discarded: u64,
    pub(crate) reordered: u64,
    pub(crate) resyncs: u64,
    pub(crate) concealed: u64,
    pub(crate) played: u64,
    pub(crate) accelerated: u64,
    pub(crate) expanded: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self, current_delay_ms: f32, target_delay_ms: f32) -> JitterStats {
        let rate = |samples: u64| {
            if self.played == 0 {
                0.0
            } else {
                (samples as f64 / self.played as f64) as f32
            }
        };
        JitterStats {
            current_delay_ms,
            target_delay_ms,
            packets: self.packets,
            late: self.late,
            duplicates: self.duplicates,
            discarded: self.discarded,
            reordered: self.reordered,
            concealed_ms: self.concealed / 8,
            played_ms: self.played / 8,
            concealment_rate: rate(self.concealed),
            accelerate_rate: rate(self.accelerated),
            expand_rate: rate(self.expanded),
            resyncs: self.resyncs,
        }
    }
}
