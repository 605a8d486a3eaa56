//! G.711 A-law (PCMA) and µ-law (PCMU), bit-exact with the ITU-T G.191
//! reference `g711.c` (`alaw_compress`/`alaw_expand`/`ulaw_compress`/
//! `ulaw_expand`), plus the G.711 Tables 3 and 4 direct A↔µ conversion.
//!
//! Encoding is a table lookup. A-law output depends only on `s >> 4` (the
//! 13-bit linear input of G.711, with G.191's one's-complement handling of
//! negatives), µ-law only on `s >> 2` (14-bit), so the tables hold 4096 and
//! 16384 bytes, built at compile time from the computed forms below
//! ([`alaw_compress`], [`ulaw_compress`]), which are kept public for
//! constant contexts and for the cost comparison in `examples/codec_cost.rs`.
//!
//! Notes on code points:
//! - µ-law has two zeros: `0xFF` (+0) and `0x7F` (−0) both decode to 0,
//!   and 0 encodes to `0xFF`, so `ulaw_encode(ulaw_decode(0x7F)) == 0xFF`.
//!   Every other code, and every A-law code, survives decode-then-encode.
//! - The A↔µ tables are those of G.711 (Table 3 µ→A, Table 4 A→µ). They are
//!   not decode-then-encode (with the G.191 encoder); in every differing
//!   case the table picks the adjacent level on the other side:
//!   - µ→A, 44 codes: µ `0x20..=0x2E`, `0x3F`, `0x4E`, `0x4F` of either
//!     sign (tops of µ-law segments, mapped up so that A→µ→A round trips
//!     there), and the negative odd codes `0x71..=0x7F` (levels −0, −16,
//!     …, −112, exactly midway between two A-law levels: the table breaks
//!     the tie away from zero as on the positive side, G.191's
//!     one's-complement encoder towards zero);
//!   - A→µ, 32 codes: A `0x00..=0x0F` and `0x80..=0x8F` (A-law levels
//!     4224..8064, mapped down, the counterpart of the µ→A segment tops).
//!
//!   Double conversion is transparent except where one law is coarser than
//!   the other: A→µ→A returns the original code for all but 16 A codes,
//!   µ→A→µ for all but the 16 odd µ codes nearest zero (µ-law is finer
//!   there). The tests pin all these sets.

use super::{lookup_kind, CodecDef, CodecError, CodecKind, Decoder, Encoder};

/// A-law code for the smallest positive level (+8): conventional silence.
pub const ALAW_SILENCE: u8 = 0xD5;
/// µ-law code for +0.
pub const ULAW_SILENCE: u8 = 0xFF;

/// G.191 `alaw_compress` for one sample, computed (no table).
pub const fn alaw_compress(s: i16) -> u8 {
    // G.191 takes the one's complement of negatives before the shift, so
    // -1..-16 share the code of 0..15 apart from the sign.
    let (mag, sign) = if s < 0 {
        ((!s >> 4) as u16, 0x00)
    } else {
        ((s >> 4) as u16, 0x80)
    };
    // mag is 0..=2047: segment 0 is linear, segment e >= 1 covers
    // [16 << (e-1), 32 << (e-1)) with 16 steps.
    let code = if mag < 16 {
        mag
    } else {
        let exp = (16 - mag.leading_zeros() as u16) - 4;
        (exp << 4) | ((mag >> (exp - 1)) & 0x0F)
    };
    (code as u8 | sign) ^ 0x55
}

/// G.191 `alaw_expand` for one code.
pub const fn alaw_expand(code: u8) -> i16 {
    let ix = (code ^ 0x55) & 0x7F;
    let exp = ix >> 4;
    let mut mant = (ix & 0x0F) as i16;
    if exp > 0 {
        mant += 16;
    }
    // Reconstruct at the middle of the quantisation interval.
    mant = (mant << 4) + 8;
    if exp > 1 {
        mant <<= exp - 1;
    }
    if code & 0x80 != 0 {
        mant
    } else {
        -mant
    }
}

/// G.191 `ulaw_compress` for one sample, computed (no table).
pub const fn ulaw_compress(s: i16) -> u8 {
    let (mag, sign) = if s < 0 {
        ((!s >> 2) as u16, 0x00)
    } else {
        ((s >> 2) as u16, 0x80)
    };
    // Bias by 33 so that the segment boundaries fall on powers of two.
    let mut biased = mag + 33;
    if biased > 0x1FFF {
        biased = 0x1FFF;
    }
    let segment = 1 + (16 - (biased >> 6).leading_zeros() as u16); // 1..=8
    let high = 8 - segment;
    let low = 0x0F - ((biased >> segment) & 0x0F);
    ((high << 4) | low) as u8 | sign
}

/// G.191 `ulaw_expand` for one code.
pub const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code;
    let exp = ((inverted >> 4) & 0x07) as i16;
    let mant = (inverted & 0x0F) as i16;
    let step = 4 << (exp + 1);
    let magnitude = (0x80 << exp) + step * mant + step / 2 - 4 * 33;
    if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

// (Function pointers cannot be called in const fn, hence the `law` switch.)
const fn build_encode_table<const N: usize>(law: Law) -> [u8; N] {
    let shift = match law {
        Law::A => 4,
        Law::Mu => 2,
    };
    let mut table = [0u8; N];
    let mut i = 0;
    while i < N {
        // Index i holds the code of the samples whose `s >> shift`, masked
        // to log2(N) bits, equals i; the top half are the negatives.
        let top = if i >= N / 2 {
            i as i32 - N as i32
        } else {
            i as i32
        };
        let sample = (top << shift) as i16;
        table[i] = match law {
            Law::A => alaw_compress(sample),
            Law::Mu => ulaw_compress(sample),
        };
        i += 1;
    }
    table
}

const fn build_decode_table(law: Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match law {
            Law::A => alaw_expand(i as u8),
            Law::Mu => ulaw_expand(i as u8),
        };
        i += 1;
    }
    table
}

static ALAW_ENCODE: [u8; 4096] = build_encode_table(Law::A);
static ULAW_ENCODE: [u8; 16384] = build_encode_table(Law::Mu);
/// A-law code → linear sample.
pub static ALAW_DECODE: [i16; 256] = build_decode_table(Law::A);
/// µ-law code → linear sample.
pub static ULAW_DECODE: [i16; 256] = build_decode_table(Law::Mu);

#[inline]
pub fn alaw_encode(s: i16) -> u8 {
    ALAW_ENCODE[((s >> 4) as u16 & 0x0FFF) as usize]
}

#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

#[inline]
pub fn ulaw_encode(s: i16) -> u8 {
    ULAW_ENCODE[((s >> 2) as u16 & 0x3FFF) as usize]
}

#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// G.711 Table 4, A→µ, by decoder output value number: entry `a - 1` is the
/// µ-law value number for A-law value number `a` (1..=128, magnitude order;
/// µ-law value numbers are 0..=127). The sign is carried over unchanged.
const A_TO_MU_VALUE: [u8; 128] = [
    1, 3, 5, 7, 9, 11, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, //
    24, 25, 26, 27, 28, 29, 30, 31, 32, 32, 33, 33, 34, 34, 35, 35, //
    36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 48, 49, 49, //
    50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 64, //
    65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, //
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, //
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, //
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
];

/// G.711 Table 3, µ→A, by decoder output value number: entry `u` is the
/// A-law value number (1..=128) for µ-law value number `u` (0..=127).
const MU_TO_A_VALUE: [u8; 128] = [
    1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, //
    9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, //
    25, 27, 29, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, //
    46, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, //
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, //
    80, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, //
    97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, //
    113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128,
];

// Value numbers ↔ codes: the sign bit (0x80 = positive) is the same in both
// laws; A-law codes have their even bits inverted (XOR 0x55), µ-law codes
// are fully inverted, so that the µ value number is 0x7F minus the code.
const fn build_a_to_mu() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        let sign = code as u8 & 0x80;
        let a_value = (code as u8 ^ 0x55) & 0x7F; // a - 1
        let mu_value = A_TO_MU_VALUE[a_value as usize];
        table[code] = sign | (0x7F - mu_value);
        code += 1;
    }
    table
}

const fn build_mu_to_a() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        let sign = code as u8 & 0x80;
        let mu_value = 0x7F - (code as u8 & 0x7F);
        let a_value = MU_TO_A_VALUE[mu_value as usize] - 1;
        table[code] = (sign | a_value) ^ 0x55;
        code += 1;
    }
    table
}

static ALAW_TO_ULAW: [u8; 256] = build_a_to_mu();
static ULAW_TO_ALAW: [u8; 256] = build_mu_to_a();

/// Direct A-law → µ-law conversion per G.711 Table 4.
#[inline]
pub fn alaw_to_ulaw(code: u8) -> u8 {
    ALAW_TO_ULAW[code as usize]
}

/// Direct µ-law → A-law conversion per G.711 Table 3.
#[inline]
pub fn ulaw_to_alaw(code: u8) -> u8 {
    ULAW_TO_ALAW[code as usize]
}

pub fn encode_alaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| alaw_encode(s)));
}

pub fn decode_alaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| alaw_decode(c)));
}

pub fn encode_ulaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| ulaw_encode(s)));
}

pub fn decode_ulaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| ulaw_decode(c)));
}

/// PCMA payload → PCMU payload without going through linear PCM.
pub fn transcode_alaw_to_ulaw(codes: &[u8], out: &mut Vec<u8>) {
    out.extend(codes.iter().map(|&c| alaw_to_ulaw(c)));
}

/// PCMU payload → PCMA payload without going through linear PCM.
pub fn transcode_ulaw_to_alaw(codes: &[u8], out: &mut Vec<u8>) {
    out.extend(codes.iter().map(|&c| ulaw_to_alaw(c)));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// A-law, PCMA.
    A,
    /// µ-law, PCMU.
    Mu,
}

impl Law {
    fn kind(self) -> CodecKind {
        match self {
            Law::A => CodecKind::Pcma,
            Law::Mu => CodecKind::Pcmu,
        }
    }
}

/// Samples of history repeated by concealment: 10 ms.
const PLC_HISTORY: usize = 80;
/// Concealment fades linearly to silence over this many samples (60 ms) of
/// consecutive loss; later loss is plain silence.
const PLC_FADE_SAMPLES: usize = 480;

/// G.711 decoder with a deliberately simple concealment: the last 10 ms
/// decoded are repeated, faded linearly from full level to zero over the
/// first 60 ms of a loss. It avoids the click of inserting silence; the
/// proper G.711 Appendix I PLC (pitch-period repetition, overlap-add) is
/// planned separately.
#[derive(Debug)]
pub struct G711Decoder {
    law: Law,
    history: [i16; PLC_HISTORY],
    /// Consecutive samples concealed since the last decoded packet.
    concealed: usize,
}

impl G711Decoder {
    pub fn new(law: Law) -> Self {
        G711Decoder {
            law,
            history: [0; PLC_HISTORY],
            concealed: 0,
        }
    }

    fn remember(&mut self, recent: &[i16]) {
        if recent.len() >= PLC_HISTORY {
            self.history
                .copy_from_slice(&recent[recent.len() - PLC_HISTORY..]);
        } else {
            self.history.copy_within(recent.len().., 0);
            self.history[PLC_HISTORY - recent.len()..].copy_from_slice(recent);
        }
    }
}

impl Decoder for G711Decoder {
    fn def(&self) -> &'static CodecDef {
        lookup_kind(self.law.kind())
    }

    /// Every byte is a sample, so every payload is valid (an empty one
    /// decodes to nothing).
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        match self.law {
            Law::A => decode_alaw(payload, out),
            Law::Mu => decode_ulaw(payload, out),
        }
        if !payload.is_empty() {
            self.concealed = 0;
        }
        if let Some(decoded) = out.get(start..) {
            // Only the last 10 ms matter for the history.
            self.remember(&decoded[decoded.len().saturating_sub(PLC_HISTORY)..]);
        }
        Ok(payload.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.reserve(samples);
        for _ in 0..samples {
            let remaining = PLC_FADE_SAMPLES.saturating_sub(self.concealed);
            let source = self.history[self.concealed % PLC_HISTORY];
            // |source| <= 32768 and remaining <= 480: no overflow in i32.
            let faded = i32::from(source) * remaining as i32 / PLC_FADE_SAMPLES as i32;
            out.push(faded as i16);
            self.concealed = self.concealed.saturating_add(1);
        }
    }
}

#[derive(Debug)]
pub struct G711Encoder {
    law: Law,
}

impl G711Encoder {
    pub fn new(law: Law) -> Self {
        G711Encoder { law }
    }
}

impl Encoder for G711Encoder {
    fn def(&self) -> &'static CodecDef {
        lookup_kind(self.law.kind())
    }

    /// Any sample count is accepted: G.711 has no frames.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        match self.law {
            Law::A => encode_alaw(pcm, out),
            Law::Mu => encode_ulaw(pcm, out),
        }
        Ok(pcm.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
