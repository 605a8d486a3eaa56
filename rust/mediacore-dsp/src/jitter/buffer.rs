//! The packet store: encoded payloads waiting to be decoded, in a fixed
//! pool of slots indexed by extended sequence number.
//!
//! Theory of operation: RTP carries 16-bit sequence numbers and 32-bit
//! timestamps that wrap; the store extends both to `i64` against the highest
//! value seen so far (the usual RFC 3550 Appendix A.1 reasoning: a
//! difference of less than half the range is taken as the nearer of the two
//! possible distances). A packet lives in slot `ext_seq % slots` until it is
//! decoded or dropped, so lookup, duplicate detection and insertion are
//! O(1). A slot's payload `Vec` grows to the largest payload it has held and
//! is reused afterwards: once every slot has been used the store no longer
//! allocates.

/// Largest payload kept, bytes. Bigger ones are discarded: no codec we
/// decode produces RTP payloads near an Ethernet MTU.
pub(crate) const MAX_PAYLOAD: usize = 1500;

#[derive(Debug, Default)]
struct Slot {
    used: bool,
    seq: i64,
    ts: i64,
    payload: Vec<u8>,
}

/// A stored packet as seen by the playout side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) seq: i64,
    pub(crate) ts: i64,
}

#[derive(Debug)]
pub(crate) struct PacketStore {
    slots: Vec<Slot>,
    count: usize,
}

impl PacketStore {
    pub(crate) fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        PacketStore {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            count: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    fn index(&self, seq: i64) -> usize {
        // rem_euclid of a positive modulus is in 0..len: never out of bounds.
        seq.rem_euclid(self.slots.len() as i64) as usize
    }

    /// Whether `seq` is stored.
    pub(crate) fn contains(&self, seq: i64) -> bool {
        self.slots
            .get(self.index(seq))
            .is_some_and(|slot| slot.used && slot.seq == seq)
    }

    /// Stores a packet. The caller has made sure `seq` is inside the window
    /// `[first, first + capacity)`, so the slot is free or holds this very
    /// packet (a duplicate, which the caller has ruled out).
    pub(crate) fn put(&mut self, seq: i64, ts: i64, payload: &[u8]) {
        let index = self.index(seq);
        if let Some(slot) = self.slots.get_mut(index) {
            if !slot.used {
                self.count += 1;
            }
            slot.used = true;
            slot.seq = seq;
            slot.ts = ts;
            slot.payload.clear();
            slot.payload.extend_from_slice(payload);
        }
    }

    /// The stored packet with the smallest sequence number in
    /// `[from, to]`, if any.
    pub(crate) fn first_from(&self, from: i64, to: i64) -> Option<Stored> {
        if self.count == 0 || to < from {
            return None;
        }
        let span = (to - from).min(self.slots.len() as i64 - 1);
        (0..=span).find_map(|offset| {
            let seq = from + offset;
            let slot = self.slots.get(self.index(seq))?;
            (slot.used && slot.seq == seq).then_some(Stored { seq, ts: slot.ts })
        })
    }

    /// The payload of stored packet `seq` (empty if absent).
    pub(crate) fn payload(&self, seq: i64) -> &[u8] {
        match self.slots.get(self.index(seq)) {
            Some(slot) if slot.used && slot.seq == seq => &slot.payload,
            _ => &[],
        }
    }

    /// Removes packet `seq`; returns whether it was stored.
    pub(crate) fn remove(&mut self, seq: i64) -> bool {
        let index = self.index(seq);
        match self.slots.get_mut(index) {
            Some(slot) if slot.used && slot.seq == seq => {
                slot.used = false;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    /// Removes every stored packet with a sequence number below `seq`;
    /// returns how many were removed.
    pub(crate) fn remove_below(&mut self, seq: i64) -> u64 {
        let mut removed = 0;
        for slot in &mut self.slots {
            if slot.used && slot.seq < seq {
                slot.used = false;
                removed += 1;
            }
        }
        self.count -= removed as usize;
        removed
    }

    /// Empties the store; returns how many packets were dropped.
    pub(crate) fn clear(&mut self) -> u64 {
        self.remove_below(i64::MAX)
    }
}

/// Extends a wrapping 16-bit RTP sequence number to `i64` against a
/// reference (the highest extended value seen).
pub(crate) fn extend_seq(reference: i64, seq: u16) -> i64 {
    let delta = seq.wrapping_sub(reference as u16) as i16;
    reference.wrapping_add(i64::from(delta))
}

/// As [`extend_seq`] for 32-bit RTP timestamps.
pub(crate) fn extend_ts(reference: i64, ts: u32) -> i64 {
    let delta = ts.wrapping_sub(reference as u32) as i32;
    reference.wrapping_add(i64::from(delta))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn extension_wraps_both_ways() {
        assert_eq!(extend_seq(65535, 0), 65536);
        assert_eq!(extend_seq(65536, 65535), 65535);
        assert_eq!(extend_seq(70000, 4464), 70000);
        assert_eq!(extend_ts(0xFFFF_FF00, 0x10), 0x1_0000_0010);
        assert_eq!(extend_ts(0x1_0000_0010, 0xFFFF_FF00), 0xFFFF_FF00);
    }

    #[test]
    fn store_finds_in_sequence_order() {
        let mut store = PacketStore::new(8);
        store.put(12, 1920, &[1, 2]);
        store.put(10, 1600, &[3]);
        assert_eq!(store.len(), 2);
        assert!(store.contains(10) && !store.contains(11) && !store.contains(18));
        assert_eq!(store.first_from(9, 20), Some(Stored { seq: 10, ts: 1600 }));
        assert_eq!(store.first_from(11, 20), Some(Stored { seq: 12, ts: 1920 }));
        assert_eq!(store.payload(12), &[1, 2]);
        assert!(store.remove(10));
        assert!(!store.remove(10));
        assert_eq!(store.remove_below(100), 1);
        assert_eq!(store.len(), 0);
        assert_eq!(store.first_from(0, 100), None);
    }
}
