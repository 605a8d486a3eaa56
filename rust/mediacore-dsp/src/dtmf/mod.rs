//! In-band DTMF (ITU-T Q.23 tone pairs): a speech-robust detector and a
//! tone generator, both on the engine's internal 8 kHz mono `i16` PCM.
//!
//! Q.23 assigns each of the 16 keys one frequency from a low ("row") group
//! and one from a high ("column") group:
//!
//! ```text
//!            1209  1336  1477  1633 Hz
//!    697 Hz    1     2     3     A
//!    770 Hz    4     5     6     B
//!    852 Hz    7     8     9     C
//!    941 Hz    *     0     #     D
//! ```
//!
//! The detector ([`DtmfDetector`]) is sans-IO: its clock is the count of
//! samples it has been fed, and events carry sample positions on that
//! clock. The generator ([`DtmfGenerator`]) writes one digit's tone pair
//! for a given duration, phase-continuous across calls. Neither allocates
//! per call; neither panics on any input.
//!
//! Levels are in dBm0 per tone. The reference is G.711's: a sine whose
//! peak is the codec's full scale is +3.14 dBm0 (A-law), so on our 16-bit
//! scale a 0 dBm0 sine has a peak of [`DBM0_PEAK`] (µ-law's +3.17 dBm0
//! with a 32 124 full scale differs by 0.2 dB, well inside the tolerances
//! here).

mod detector;
mod generator;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod test_signal;

pub use detector::{DetectorConfig, DetectorEvent, DtmfDetector};
pub use generator::DtmfGenerator;

/// Sample rate of the detector and generator, Hz.
pub const SAMPLE_RATE_HZ: f32 = 8000.0;

/// Peak amplitude (16-bit scale) of a 0 dBm0 sine: 32768 · 10^(−3.14/20).
pub const DBM0_PEAK: f32 = 22_827.0;

/// The 16 keys in row-major order of the Q.23 table: index `4·row + column`.
pub const DIGITS: [char; 16] = [
    '1', '2', '3', 'A', '4', '5', '6', 'B', '7', '8', '9', 'C', '*', '0', '#', 'D',
];

/// Low-group (row) frequencies, Hz.
pub const ROW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies, Hz.
pub const COLUMN_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Index of `digit` in [`DIGITS`] (lower-case `a`–`d` accepted too).
pub fn digit_index(digit: char) -> Option<usize> {
    let digit = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&d| d == digit)
}

/// Low/high frequency pair (Hz) of a digit, `None` for other chars.
pub fn tone_pair(digit: char) -> Option<(f32, f32)> {
    let index = digit_index(digit)?;
    Some((ROW_HZ[index / 4], COLUMN_HZ[index % 4]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tone_pairs_follow_q23() {
        assert_eq!(tone_pair('1'), Some((697.0, 1209.0)));
        assert_eq!(tone_pair('5'), Some((770.0, 1336.0)));
        assert_eq!(tone_pair('9'), Some((852.0, 1477.0)));
        assert_eq!(tone_pair('*'), Some((941.0, 1209.0)));
        assert_eq!(tone_pair('0'), Some((941.0, 1336.0)));
        assert_eq!(tone_pair('#'), Some((941.0, 1477.0)));
        assert_eq!(tone_pair('D'), Some((941.0, 1633.0)));
        assert_eq!(tone_pair('d'), Some((941.0, 1633.0)));
        assert_eq!(tone_pair('E'), None);
        assert_eq!(tone_pair(' '), None);
        for (i, &d) in DIGITS.iter().enumerate() {
            assert_eq!(digit_index(d), Some(i));
        }
    }
}
