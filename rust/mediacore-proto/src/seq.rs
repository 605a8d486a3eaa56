//! Extended RTP sequence numbers (RFC 3550 A.1): the 16-bit wire value plus
//! the count of roll-overs, so ordering and gaps survive the wrap at 65535.

/// A 64-bit extended sequence number: `rollovers << 16 | sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The 16-bit sequence number as on the wire.
    pub fn wire(self) -> u16 {
        self.0 as u16
    }

    /// How many times the 16-bit sequence number has wrapped (RFC 3550 "cycles").
    pub fn rollovers(self) -> u64 {
        self.0 >> 16
    }
}

impl From<SeqNo> for u64 {
    fn from(s: SeqNo) -> u64 {
        s.0
    }
}

/// Extends 16-bit RTP sequence numbers to 64 bits across roll-over.
#[derive(Debug, Default, Clone)]
pub struct SeqExtender {
    max: Option<u64>,
}

impl SeqExtender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `seq` relative to the highest seen so far: the candidate
    /// nearest to the maximum, which handles wrap both ways (a late packet
    /// from before a wrap stays in the previous cycle).
    ///
    /// Extended values cannot go below 0: a late packet from "before" the
    /// first one seen (e.g. 65534 after a first packet of 1) is returned in
    /// the first cycle without moving the maximum.
    #[inline]
    pub fn extend(&mut self, seq: u16) -> SeqNo {
        let Some(max) = self.max else {
            self.max = Some(u64::from(seq));
            return SeqNo(u64::from(seq));
        };
        let delta = i64::from(seq.wrapping_sub(max as u16) as i16);
        match max.checked_add_signed(delta) {
            Some(ext) => {
                if ext > max {
                    self.max = Some(ext);
                }
                SeqNo(ext)
            }
            None => SeqNo(u64::from(seq)),
        }
    }

    /// The highest extended sequence number seen, if any.
    pub fn max(&self) -> Option<SeqNo> {
        self.max.map(SeqNo)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn forward_wrap() {
        let mut x = SeqExtender::new();
        assert_eq!(x.max(), None);
        assert_eq!(x.extend(65534), SeqNo(65534));
        assert_eq!(x.extend(65535), SeqNo(65535));
        assert_eq!(x.extend(0), SeqNo(65536));
        assert_eq!(x.extend(1), SeqNo(65537));
        assert_eq!(x.max(), Some(SeqNo(65537)));
        assert_eq!(SeqNo(65537).wire(), 1);
        assert_eq!(SeqNo(65537).rollovers(), 1);
    }

    #[test]
    fn reorder_across_wrap_stays_in_previous_cycle() {
        let mut x = SeqExtender::new();
        x.extend(65533);
        x.extend(0);
        x.extend(1);
        assert_eq!(x.extend(65534), SeqNo(65534));
        assert_eq!(x.max(), Some(SeqNo(65537)));
        assert_eq!(x.extend(2), SeqNo(65538));
    }

    #[test]
    fn late_packet_before_first_cycle_does_not_go_negative() {
        let mut x = SeqExtender::new();
        x.extend(1);
        assert_eq!(x.extend(65534), SeqNo(65534));
        assert_eq!(x.max(), Some(SeqNo(1)));
        assert_eq!(x.extend(2), SeqNo(2));
    }

    #[test]
    fn many_cycles() {
        let mut x = SeqExtender::new();
        let mut expect = 100u64;
        for _ in 0..5 * 65536 / 1000 {
            assert_eq!(x.extend(expect as u16), SeqNo(expect));
            expect += 1000;
        }
    }
}
