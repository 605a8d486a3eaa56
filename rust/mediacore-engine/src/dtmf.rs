//! RFC 4733 (RFC 2833) telephone-event reception: each digit reported exactly once.
//!
//! Theory of operation. An event is identified by its RTP timestamp (all packets of one event,
//! including the three end-packet retransmissions, carry the event's start timestamp). A digit
//! is reported when its first end packet arrives; later packets with the same timestamp are
//! retransmissions and are ignored. If the end packets are all lost, the digit is reported when
//! the next event starts or when the event has been silent for `END_TIMEOUT` (the caller
//! drives that with `poll_timeout`), with the last duration seen.

use std::time::{Duration, Instant};

use mediacore_proto::{digit_for_event, RtpHeader, TelephoneEvent};

/// An event whose packets stopped without an end bit is closed after this long (RFC 4733 §2.5.2.2
/// suggests senders refresh at least every 50 ms; 500 ms is ten refreshes missed).
pub const END_TIMEOUT: Duration = Duration::from_millis(500);

/// One received digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// '0'-'9', '*', '#', 'A'-'D', 'F' (flash).
    pub digit: char,
    /// Event duration in ms (from its RTP duration field, at the payload type's clock rate).
    pub duration_ms: u32,
    /// Tone power as -dBm0 (10 means -10 dBm0).
    pub volume: u8,
    /// False when the digit was closed without an end packet (all end packets lost).
    pub ended: bool,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    ts: u32,
    event: TelephoneEvent,
    last_seen: Instant,
}

/// Per-leg receiver state.
#[derive(Debug, Default, Clone)]
pub struct Rfc4733Receiver {
    open: Option<Open>,
    /// Timestamp of the last event reported, so its retransmitted end packets are ignored.
    reported_ts: Option<u32>,
    pub malformed: u64,
}

impl Rfc4733Receiver {
    /// Feeds one telephone-event packet; returns the digit(s) completed by it (at most two:
    /// a previous event closed by this one starting, and this one if it ends at once).
    pub fn push(
        &mut self,
        hdr: &RtpHeader,
        payload: &[u8],
        clock_rate: u32,
        now: Instant,
    ) -> [Option<Digit>; 2] {
        let mut out = [None, None];
        let Ok(ev) = TelephoneEvent::parse(payload) else {
            self.malformed += 1;
            return out;
        };
        if self.reported_ts == Some(hdr.timestamp) {
            return out; // a retransmitted end packet (or a straggler) of a reported event
        }
        if let Some(open) = self.open {
            if open.ts != hdr.timestamp {
                out[0] = self.close(false, clock_rate);
            }
        }
        let open = self.open.get_or_insert(Open {
            ts: hdr.timestamp,
            event: ev,
            last_seen: now,
        });
        if ev.duration >= open.event.duration || ev.end {
            open.event = ev;
        }
        open.last_seen = now;
        if ev.end {
            out[1] = self.close(true, clock_rate);
        }
        out
    }

    /// When an unfinished event should be closed, if one is open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.open.map(|o| o.last_seen + END_TIMEOUT)
    }

    /// Closes an event whose end packets never came.
    pub fn handle_timeout(&mut self, now: Instant, clock_rate: u32) -> Option<Digit> {
        match self.open {
            Some(o) if now.saturating_duration_since(o.last_seen) >= END_TIMEOUT => {
                self.close(false, clock_rate)
            }
            _ => None,
        }
    }

    fn close(&mut self, ended: bool, clock_rate: u32) -> Option<Digit> {
        let open = self.open.take()?;
        self.reported_ts = Some(open.ts);
        let digit = digit_for_event(open.event.event)?;
        let rate = u64::from(clock_rate.max(1));
        Some(Digit {
            digit,
            duration_ms: (u64::from(open.event.duration) * 1000 / rate) as u32,
            volume: open.event.volume,
            ended,
        })
    }
}
