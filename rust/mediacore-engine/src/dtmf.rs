//! RFC 4733 (RFC 2833) telephone-event reception: each digit reported exactly once.
//!
//! Theory of operation. An event is identified by its RTP timestamp (all packets of one event,
//! including the three end-packet retransmissions, carry the event's start timestamp). A digit
//! is reported when its first end packet arrives; later packets with the same timestamp are
//! retransmissions and are ignored. If the end packets are all lost, the digit is reported when
//! the next event starts or when the event has been silent for `END_TIMEOUT` (the caller
//! drives that with `poll_timeout`), with the last duration seen.

use std::collections::VecDeque;
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

/// Digits a control plane asked to play toward one leg ("play DTMF"), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfPlay {
    /// '0'-'9', '*', '#', 'A'-'D' (upper case).
    pub digits: Vec<char>,
    /// How long each digit sounds (ms).
    pub duration_ms: u32,
    /// Tone level as -dBm0 (8 means -8 dBm0), also the RFC 4733 volume field.
    pub volume: u8,
    /// Silence after each digit (ms).
    pub pause_ms: u32,
    /// The digits came from the sending party as SIP INFO (ng `DTMF-source: info`): on an
    /// `auto` leg they take part in its first-kind lock (see `Session::play_dtmf`).
    pub from_info: bool,
}

/// Limits of a play request: Q.24 asks receivers to accept digits from 40 ms, and 5 s is
/// rtpengine's upper bound for duration and pause.
pub const PLAY_MIN_MS: u32 = 40;
pub const PLAY_MAX_MS: u32 = 5000;
/// Digits one request (and one leg's queue) may hold.
pub const PLAY_MAX_DIGITS: usize = 64;
/// rtpengine's defaults for `play DTMF`: 250 ms digits at -8 dBm0, 100 ms apart.
pub const PLAY_DEFAULT_DURATION_MS: u32 = 250;
pub const PLAY_DEFAULT_VOLUME: u8 = 8;
pub const PLAY_DEFAULT_PAUSE_MS: u32 = 100;

impl DtmfPlay {
    /// Validates a request; the error names what is wrong.
    pub fn new(digits: &str, duration_ms: u32, volume: u8, pause_ms: u32) -> Result<Self, String> {
        let digits: Vec<char> = digits.chars().map(|c| c.to_ascii_uppercase()).collect();
        if digits.is_empty() {
            return Err("digits: empty".into());
        }
        if digits.len() > PLAY_MAX_DIGITS {
            return Err(format!("digits: more than {PLAY_MAX_DIGITS}"));
        }
        if let Some(bad) = digits
            .iter()
            .find(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'))
        {
            return Err(format!("digits: {bad:?} is not 0-9, *, #, A-D"));
        }
        for (name, v) in [("duration", duration_ms), ("pause", pause_ms)] {
            if !(PLAY_MIN_MS..=PLAY_MAX_MS).contains(&v) {
                return Err(format!(
                    "{name}: {v} ms is not in {PLAY_MIN_MS}..={PLAY_MAX_MS}"
                ));
            }
        }
        if volume > mediacore_proto::telephone_event::MAX_VOLUME {
            return Err(format!("volume: -{volume} dBm0 is below -63 dBm0"));
        }
        Ok(DtmfPlay {
            digits,
            duration_ms,
            volume,
            pause_ms,
            from_info: false,
        })
    }
}

/// Played digits advance in steps of this length: one event update or one 20 ms tone packet.
pub const PLAY_STEP: Duration = Duration::from_millis(20);
/// 8 kHz samples per step.
pub const PLAY_STEP_SAMPLES: u32 = 160;

#[derive(Debug, Clone, Copy)]
struct Queued {
    digit: char,
    code: u8,
    samples: u32,
    volume: u8,
    pause: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Playing {
    q: Queued,
    started: Instant,
    sent: u32,
}

/// What a player asks the session to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayStep {
    /// A digit begins (the stream position now is its event timestamp).
    Begin {
        digit: char,
        code: u8,
        volume: u8,
        samples: u32,
    },
    /// Samples `from..from + n` of the digit (8 kHz); `end` on the last piece.
    Piece {
        digit: char,
        code: u8,
        volume: u8,
        from: u32,
        n: u32,
        end: bool,
        started: Instant,
    },
}

/// The queue of digits being played toward one leg, timed by injected `now`: a digit begins,
/// a piece follows every [`PLAY_STEP`], then the pause, then the next digit. Steps are due at
/// exact multiples of the step from the digit's start, so late calls catch up without drift.
#[derive(Debug, Default, Clone)]
pub struct DtmfPlayer {
    queue: VecDeque<Queued>,
    current: Option<Playing>,
    next_at: Option<Instant>,
}

impl DtmfPlayer {
    /// Queues the digits of `play` after whatever is queued; starts at `now` when idle.
    pub fn enqueue(&mut self, play: &DtmfPlay, now: Instant) -> Result<(), String> {
        if self.queue.len() + play.digits.len() > PLAY_MAX_DIGITS {
            return Err(format!("more than {PLAY_MAX_DIGITS} digits queued"));
        }
        for &digit in &play.digits {
            let Some(code) = mediacore_proto::event_for_digit(digit) else {
                return Err(format!("digits: {digit:?} has no event code"));
            };
            self.queue.push_back(Queued {
                digit,
                code,
                samples: play.duration_ms * 8,
                volume: play.volume,
                pause: Duration::from_millis(u64::from(play.pause_ms)),
            });
        }
        if self.next_at.is_none() {
            self.next_at = Some(now);
        }
        Ok(())
    }

    pub fn is_idle(&self) -> bool {
        self.next_at.is_none()
    }

    /// Digits waiting or sounding.
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.current.is_some())
    }

    /// When the next step is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }

    /// Drops everything queued (the leg went away).
    pub fn clear(&mut self) {
        *self = DtmfPlayer::default();
    }

    /// The next step due at `now`, if any; call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<PlayStep> {
        let at = self.next_at.filter(|t| *t <= now)?;
        match self.current.as_mut() {
            None => {
                let Some(q) = self.queue.pop_front() else {
                    self.next_at = None;
                    return None;
                };
                self.current = Some(Playing {
                    q,
                    started: at,
                    sent: 0,
                });
                Some(PlayStep::Begin {
                    digit: q.digit,
                    code: q.code,
                    volume: q.volume,
                    samples: q.samples,
                })
            }
            Some(p) if p.sent < p.q.samples => {
                let from = p.sent;
                let n = PLAY_STEP_SAMPLES.min(p.q.samples - from);
                p.sent += n;
                let end = p.sent == p.q.samples;
                self.next_at = Some(if end {
                    at + PLAY_STEP + p.q.pause
                } else {
                    at + PLAY_STEP
                });
                Some(PlayStep::Piece {
                    digit: p.q.digit,
                    code: p.q.code,
                    volume: p.q.volume,
                    from,
                    n,
                    end,
                    started: p.started,
                })
            }
            Some(_) => {
                // The pause is over: the next digit starts now, or the player goes idle.
                self.current = None;
                if self.queue.is_empty() {
                    self.next_at = None;
                    None
                } else {
                    self.poll(now)
                }
            }
        }
    }
}
