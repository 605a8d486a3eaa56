//! RFC 4733 §2.3 telephone-event payload (DTMF carried as RTP events).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! ```
//!
//! The R bit is reserved: ignored on parse, written as 0.

use core::fmt;

/// Event code for the hook flash (RFC 4733 §3.2, table 7).
pub const EVENT_FLASH: u8 = 16;

/// Largest volume the 6-bit field can carry: -63 dBm0.
pub const MAX_VOLUME: u8 = 63;

/// One telephone-event report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0..=15 DTMF, 16 flash (RFC 4733 §3.2).
    pub event: u8,
    /// Set in the final packet(s) of an event.
    pub end: bool,
    /// Power level of the tone as a positive number: 10 means -10 dBm0. 0..=63.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units from the event's timestamp.
    pub duration: u16,
}

/// Why a payload is not a telephone-event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelephoneEventError {
    /// Payload shorter than 4 bytes.
    TooShort,
    /// Volume above 63 (only from [`TelephoneEvent::new`]: the wire field is 6 bits).
    VolumeOutOfRange,
}

impl TelephoneEventError {
    /// Stable snake_case reason, for counters and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            TelephoneEventError::TooShort => "too_short",
            TelephoneEventError::VolumeOutOfRange => "volume_out_of_range",
        }
    }
}

impl fmt::Display for TelephoneEventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for TelephoneEventError {}

impl TelephoneEvent {
    /// Bytes of one event on the wire.
    pub const LEN: usize = 4;

    /// Builds an event, checking that the volume fits its 6-bit field.
    pub fn new(
        event: u8,
        end: bool,
        volume: u8,
        duration: u16,
    ) -> Result<Self, TelephoneEventError> {
        if volume > MAX_VOLUME {
            return Err(TelephoneEventError::VolumeOutOfRange);
        }
        Ok(TelephoneEvent {
            event,
            end,
            volume,
            duration,
        })
    }

    /// Decodes the first event of `payload` (a payload may carry more, RFC 4733 §2.5.1.5).
    #[inline]
    pub fn parse(payload: &[u8]) -> Result<Self, TelephoneEventError> {
        let &[event, flags, d0, d1, ..] = payload else {
            return Err(TelephoneEventError::TooShort);
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// Writes the 4-byte wire form; returns 4, or None if `out` is shorter.
    /// A volume above 63 is clamped to 63 so it cannot spill into the E/R bits.
    #[inline]
    pub fn write(&self, out: &mut [u8]) -> Option<usize> {
        let out: &mut [u8; 4] = out.first_chunk_mut::<4>()?;
        let d = self.duration.to_be_bytes();
        *out = [
            self.event,
            (u8::from(self.end) << 7) | self.volume.min(MAX_VOLUME),
            d[0],
            d[1],
        ];
        Some(Self::LEN)
    }
}

/// Event code for a dial-pad key: '0'..='9' -> 0..=9, '*' -> 10, '#' -> 11,
/// 'A'..='D' (either case) -> 12..=15, 'F' (either case, flash) -> 16.
pub fn event_for_digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        'F' | 'f' => Some(EVENT_FLASH),
        _ => None,
    }
}

/// The key for an event code, inverse of [`event_for_digit`] (upper case letters).
pub fn digit_for_event(ev: u8) -> Option<char> {
    match ev {
        0..=9 => Some(char::from(b'0' + ev)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + ev - 12)),
        EVENT_FLASH => Some('F'),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parse_known_bytes() {
        // Digit 5, end, -10 dBm0, 800 units (100 ms at 8 kHz); R bit set and ignored.
        let ev = TelephoneEvent::parse(&[5, 0xc0 | 10, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        let mut out = [0u8; 4];
        assert_eq!(ev.write(&mut out), Some(4));
        assert_eq!(out, [5, 0x80 | 10, 0x03, 0x20]);
    }

    #[test]
    fn round_trip_and_end_bit() {
        for end in [false, true] {
            let ev = TelephoneEvent::new(11, end, 63, 0xffff).unwrap();
            let mut out = [0u8; 6];
            assert_eq!(ev.write(&mut out), Some(4));
            assert_eq!(out[1] & 0x80 != 0, end);
            assert_eq!(TelephoneEvent::parse(&out).unwrap(), ev);
        }
    }

    #[test]
    fn errors_and_clamp() {
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(TelephoneEventError::TooShort)
        );
        assert_eq!(
            TelephoneEvent::new(1, false, 64, 0),
            Err(TelephoneEventError::VolumeOutOfRange)
        );
        let loud = TelephoneEvent {
            event: 1,
            end: false,
            volume: 0xff,
            duration: 0,
        };
        let mut out = [0u8; 4];
        assert_eq!(loud.write(&mut out[..3]), None);
        loud.write(&mut out).unwrap();
        assert_eq!(out[1], 63);
        assert_eq!(TelephoneEventError::TooShort.as_str(), "too_short");
    }

    #[test]
    fn digit_mapping() {
        let keys = "0123456789*#ABCDF";
        for (code, key) in keys.chars().enumerate() {
            assert_eq!(event_for_digit(key), Some(code as u8));
            assert_eq!(digit_for_event(code as u8), Some(key));
        }
        for (lower, code) in [('a', 12), ('b', 13), ('c', 14), ('d', 15), ('f', 16)] {
            assert_eq!(event_for_digit(lower), Some(code));
        }
        assert_eq!(event_for_digit('E'), None);
        assert_eq!(event_for_digit('x'), None);
        assert_eq!(digit_for_event(17), None);
        assert_eq!(digit_for_event(255), None);
    }
}
