//! The reply cache: ng runs over UDP and clients retransmit (Kamailio resends a request when no
//! reply arrived within its timeout). Executing an `offer` twice would allocate ports twice, and
//! executing a `delete` twice would answer the retransmission with "Unknown call-ID", so a
//! request whose cookie and body match one answered within [`REPLY_CACHE_TTL`] gets the same
//! reply bytes again without being executed.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// How long a reply is kept for retransmissions (rtpengine uses 30 s too).
pub const REPLY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Upper bound on cached replies; beyond it the oldest are evicted (at ~2 kB per reply, 20 MB).
pub const REPLY_CACHE_MAX_ENTRIES: usize = 10_000;

struct Entry {
    body_hash: u64,
    reply: Vec<u8>,
    stored: Instant,
}

/// Replies by cookie, expired by age (measured with the caller's `now`) and bounded in size.
pub struct ReplyCache {
    entries: HashMap<Vec<u8>, Entry>,
    /// Insertion order, for expiry and eviction; stale items (cookie re-stored since) are skipped.
    order: VecDeque<(Vec<u8>, Instant)>,
    max_entries: usize,
}

impl Default for ReplyCache {
    fn default() -> Self {
        ReplyCache::with_capacity(REPLY_CACHE_MAX_ENTRIES)
    }
}

fn hash_body(body: &[u8]) -> u64 {
    // DefaultHasher::new() is keyed with fixed keys: stable within the process, which is all a
    // retransmission check needs.
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

impl ReplyCache {
    pub fn with_capacity(max_entries: usize) -> Self {
        ReplyCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            max_entries: max_entries.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached reply for a retransmission of `body` under `cookie`, if still fresh.
    pub fn get(&mut self, cookie: &[u8], body: &[u8], now: Instant) -> Option<Vec<u8>> {
        self.expire(now);
        let entry = self.entries.get(cookie)?;
        (entry.body_hash == hash_body(body)).then(|| entry.reply.clone())
    }

    pub fn insert(&mut self, cookie: &[u8], body: &[u8], reply: Vec<u8>, now: Instant) {
        self.expire(now);
        self.entries.insert(
            cookie.to_vec(),
            Entry {
                body_hash: hash_body(body),
                reply,
                stored: now,
            },
        );
        self.order.push_back((cookie.to_vec(), now));
        // The queue may also hold stale items of re-stored cookies; bound it as well.
        while self.entries.len() > self.max_entries || self.order.len() > 2 * self.max_entries {
            if !self.pop_oldest() {
                break;
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((_, stored)) = self.order.front() {
            if now.saturating_duration_since(*stored) < REPLY_CACHE_TTL {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Drops the oldest queue item and its entry if the entry is that item. False when empty.
    fn pop_oldest(&mut self) -> bool {
        let Some((cookie, stored)) = self.order.pop_front() else {
            return false;
        };
        if self
            .entries
            .get(&cookie)
            .is_some_and(|e| e.stored == stored)
        {
            self.entries.remove(&cookie);
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn hit_within_ttl_miss_after() {
        let t0 = Instant::now();
        let mut c = ReplyCache::default();
        c.insert(b"c1", b"body", b"reply".to_vec(), t0);
        assert_eq!(
            c.get(b"c1", b"body", t0 + Duration::from_secs(29)),
            Some(b"reply".to_vec())
        );
        assert_eq!(c.get(b"c1", b"other body", t0), None);
        assert_eq!(c.get(b"c2", b"body", t0), None);
        assert_eq!(c.get(b"c1", b"body", t0 + REPLY_CACHE_TTL), None);
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_evicting_oldest() {
        let t0 = Instant::now();
        let mut c = ReplyCache::with_capacity(3);
        for i in 0..5u8 {
            c.insert(
                &[i],
                b"b",
                vec![i],
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&[0], b"b", t0), None);
        assert_eq!(c.get(&[1], b"b", t0), None);
        assert_eq!(c.get(&[4], b"b", t0), Some(vec![4]));
    }

    #[test]
    fn restored_cookie_survives_its_old_queue_item() {
        let t0 = Instant::now();
        let mut c = ReplyCache::default();
        c.insert(b"c", b"b1", vec![1], t0);
        c.insert(b"c", b"b2", vec![2], t0 + Duration::from_secs(20));
        assert_eq!(
            c.get(b"c", b"b2", t0 + Duration::from_secs(40)),
            Some(vec![2])
        );
    }
}
