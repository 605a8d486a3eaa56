//! The playout FIFO: decoded (or concealed) PCM not yet played.
//!
//! A fixed array with a read and a write position. Played samples leave at
//! the front; [`Fifo::expand`] needs free room in front of the read
//! position, so compaction always moves the contents to [`FRONT`].

use super::stretch::{accelerate_in_place, expand_in_place, MAX_LAG};

/// Free room kept before the unplayed audio, samples (≥ the longest lag).
const FRONT: usize = 2 * MAX_LAG;
/// Unplayed audio held at most, samples (512 ms): far more than a pull, the
/// stretch look-ahead and the longest packet need.
const CAPACITY: usize = 4096;

#[derive(Debug)]
pub(crate) struct Fifo {
    buf: Vec<i16>,
    start: usize,
    end: usize,
}

impl Fifo {
    pub(crate) fn new() -> Self {
        Fifo {
            buf: vec![0; FRONT + CAPACITY],
            start: FRONT,
            end: FRONT,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn clear(&mut self) {
        self.start = FRONT;
        self.end = FRONT;
    }

    /// The unplayed audio.
    pub(crate) fn audio(&self) -> &[i16] {
        &self.buf[self.start..self.end]
    }

    /// The last `len` unplayed samples (fewer if fewer are queued).
    pub(crate) fn tail_mut(&mut self, len: usize) -> &mut [i16] {
        let from = self.end - len.min(self.len());
        &mut self.buf[from..self.end]
    }

    fn compact(&mut self) {
        let len = self.len();
        self.buf.copy_within(self.start..self.end, FRONT);
        self.start = FRONT;
        self.end = FRONT + len;
    }

    /// Appends as much of `audio` as fits; returns samples appended.
    pub(crate) fn push(&mut self, audio: &[i16]) -> usize {
        let take = audio.len().min(CAPACITY.saturating_sub(self.len()));
        if self.end + take > self.buf.len() {
            self.compact();
        }
        self.buf[self.end..self.end + take].copy_from_slice(&audio[..take]);
        self.end += take;
        take
    }

    /// Fills `out` from the front (zeros if the FIFO runs short).
    pub(crate) fn pop(&mut self, out: &mut [i16]) {
        let take = out.len().min(self.len());
        out[..take].copy_from_slice(&self.buf[self.start..self.start + take]);
        out[take..].fill(0);
        self.start += take;
        if self.start == self.end {
            self.start = FRONT;
            self.end = FRONT;
        }
    }

    /// Removes one period of `lag` samples at the front (see
    /// [`accelerate_in_place`]).
    pub(crate) fn accelerate(&mut self, lag: usize) -> bool {
        let done = accelerate_in_place(&mut self.buf[self.start..self.end], lag);
        if done {
            self.start += lag;
        }
        done
    }

    /// Inserts one period of `lag` samples at the front (see
    /// [`expand_in_place`]).
    pub(crate) fn expand(&mut self, lag: usize) -> bool {
        if lag > FRONT || self.len() < 2 * lag || self.len() + lag > CAPACITY {
            return false;
        }
        if self.start < lag {
            self.compact();
        }
        let done = expand_in_place(&mut self.buf[self.start - lag..self.end], lag);
        if done {
            self.start -= lag;
        }
        done
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_compact_and_overflow() {
        let mut fifo = Fifo::new();
        let block: Vec<i16> = (0..1000).map(|n| n as i16).collect();
        for _ in 0..20 {
            assert_eq!(fifo.push(&block[..160]), 160);
            let mut out = [0i16; 160];
            fifo.pop(&mut out);
            assert_eq!(out[..], block[..160]);
        }
        let mut pushed = 0;
        for _ in 0..10 {
            pushed += fifo.push(&block);
        }
        assert_eq!(pushed, CAPACITY);
        let mut out = vec![7i16; CAPACITY + 5];
        fifo.pop(&mut out);
        assert_eq!(&out[CAPACITY..], &[0; 5]);
        assert_eq!(fifo.len(), 0);
    }

    #[test]
    fn stretch_changes_length_by_the_lag() {
        let mut fifo = Fifo::new();
        let block: Vec<i16> = (0..400).map(|n| ((n % 50) * 100) as i16).collect();
        fifo.push(&block);
        assert!(fifo.expand(50));
        assert_eq!(fifo.len(), 450);
        assert!(fifo.accelerate(50));
        assert_eq!(fifo.len(), 400);
        assert!(!fifo.expand(MAX_LAG * 3));
        assert_eq!(fifo.audio().len(), 400);
    }
}
