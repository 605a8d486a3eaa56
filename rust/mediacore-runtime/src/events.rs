//! The engine's outbound event queue: workers push, the control plane drains in batches after
//! its event loop sees the eventfd become readable. Nothing here is per packet.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::SystemTime;

use mediacore_engine::Event;

/// Events beyond this many undrained are counted and discarded rather than growing without
/// bound when nobody drains (e.g. a media-only node with no control plane attached).
pub const MAX_QUEUED_EVENTS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventRecord {
    pub event: Event,
    /// Wall-clock time the event was raised, seconds since the Unix epoch.
    pub unix_time: f64,
}

pub struct EventQueue {
    queue: Mutex<VecDeque<EventRecord>>,
    /// A copy of each event for an in-engine consumer (the ng server's dead-call reaper), so
    /// that it and the control plane's drain do not steal events from each other.
    tap: Mutex<Option<Vec<Event>>>,
    overflowed: Mutex<u64>,
    fd: OwnedFd,
}

impl EventQueue {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(EventQueue {
            queue: Mutex::new(VecDeque::new()),
            tap: Mutex::new(None),
            overflowed: Mutex::new(0),
            fd,
        })
    }

    /// The descriptor that becomes readable when events are waiting.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Starts keeping a copy of every event for [`EventQueue::take_tapped`].
    pub fn enable_tap(&self) {
        if let Ok(mut t) = self.tap.lock() {
            t.get_or_insert_with(Vec::new);
        }
    }

    /// The events copied since the last call (empty unless the tap is enabled).
    pub fn take_tapped(&self) -> Vec<Event> {
        self.tap
            .lock()
            .ok()
            .and_then(|mut t| t.as_mut().map(std::mem::take))
            .unwrap_or_default()
    }

    pub fn push_all(&self, events: impl IntoIterator<Item = Event>) {
        let events: Vec<Event> = events.into_iter().collect();
        if let Ok(mut t) = self.tap.lock() {
            if let Some(tap) = t.as_mut() {
                // Bounded like the main queue: a stalled consumer costs counts, not memory.
                let room = MAX_QUEUED_EVENTS.saturating_sub(tap.len());
                tap.extend(events.iter().copied().take(room));
            }
        }
        let unix_time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut pushed = false;
        if let Ok(mut q) = self.queue.lock() {
            for event in events {
                if q.len() >= MAX_QUEUED_EVENTS {
                    if let Ok(mut n) = self.overflowed.lock() {
                        *n += 1;
                    }
                    continue;
                }
                q.push_back(EventRecord { event, unix_time });
                pushed = true;
            }
        }
        if pushed {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our eventfd. A full counter (EAGAIN)
            // still leaves the fd readable, which is all we need.
            unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Takes up to `max` events. The eventfd is reset first, so an event pushed while we drain
    /// makes it readable again and is not missed.
    pub fn drain(&self, max: usize) -> Vec<EventRecord> {
        let mut counter: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (nothing pending) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut counter as *mut u64).cast(), 8) };
        let Ok(mut q) = self.queue.lock() else {
            return Vec::new();
        };
        let n = q.len().min(max);
        let out: Vec<EventRecord> = q.drain(..n).collect();
        if !q.is_empty() {
            let one: u64 = 1;
            // SAFETY: as in push_all.
            unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
        out
    }

    pub fn pending(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    pub fn overflowed(&self) -> u64 {
        self.overflowed.lock().map(|n| *n).unwrap_or(0)
    }
}
