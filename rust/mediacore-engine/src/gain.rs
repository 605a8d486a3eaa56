//! Voice gain toward a party (VOS3000 `SS_VOICEGAIN`: dB, -10..=+10, default 0).
//!
//! Theory of operation. A leg's `gain_db` scales the audio sent *toward* that party by
//! 10^(dB/20), rounded and saturated to 16 bits (a high gain clips, as the reference warns).
//! Where the audio is:
//!
//! - **relayed G.711** (the sender's payload type is PCMU or PCMA as the sender's codec list
//!   names it; static 0/8 when its list is unknown): each payload byte goes through a 256-entry
//!   table of its law (decode, scale, re-encode with the same law), in place, on every path a
//!   relayed packet leaves by (forwarded, re-timed, through the DTMF overlay). The tables are
//!   built once per direction when the session is created or updated ([`relay_gain`]); a
//!   direction without gain has none and costs one branch per packet. Telephone-events, CN (13)
//!   and every other payload pass untouched; so does the RTP padding.
//! - **decoded** (a transcoding direction): the linear PCM is scaled ([`scale_pcm`]) just
//!   before it is queued for encoding, after the echo canceller and the DTMF detector saw the
//!   sender's own level, and before the tones the engine plays replace it (those keep their
//!   own level).
//! - **relayed compressed codecs** (G.729, Opus…) cannot be scaled without decoding: they pass
//!   unchanged, and gain alone never makes a direction transcode (docs/decisions.md).

use mediacore_dsp::codec::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use mediacore_proto::RtpHeader;

use crate::spec::LegSpec;

/// Largest gain (and attenuation) accepted, dB (the reference's range, -10..+10).
pub const MAX_GAIN_DB: i8 = 10;

/// Payload-type class: not G.711 (untouched).
const NONE: u8 = 0;
/// Payload-type class: µ-law (table 0).
const ULAW: u8 = 1;
/// Payload-type class: A-law (table 1).
const ALAW: u8 = 2;

/// The linear factor of `db`: 10^(dB/20).
pub fn gain_factor(db: i8) -> f32 {
    10f32.powf(f32::from(db) / 20.0)
}

/// `s` scaled by `factor`, rounded, saturated to i16.
#[inline]
fn scale(s: i16, factor: f32) -> i16 {
    // `as` saturates a float to the integer's range.
    (f32::from(s) * factor).round() as i16
}

/// Scales decoded audio in place by `factor` (see [`gain_factor`]), saturating.
pub fn scale_pcm(pcm: &mut [i16], factor: f32) {
    for s in pcm {
        *s = scale(*s, factor);
    }
}

/// The 256-entry table of one G.711 law at `db`: byte in → byte out. A code whose scaled value
/// equals its own value keeps its byte, so 0 dB is the identity (µ-law's two zeros included).
pub fn g711_gain_table(alaw: bool, db: i8) -> [u8; 256] {
    let factor = gain_factor(db);
    let mut t = [0u8; 256];
    for (code, slot) in t.iter_mut().enumerate() {
        let code = code as u8;
        let x = if alaw {
            alaw_decode(code)
        } else {
            ulaw_decode(code)
        };
        let y = scale(x, factor);
        *slot = if y == x {
            code
        } else if alaw {
            alaw_encode(y)
        } else {
            ulaw_encode(y)
        };
    }
    t
}

/// The gain of one relayed direction: which of the sender's payload types are G.711, and the
/// table of each law.
pub struct RelayGain {
    class: [u8; 128],
    /// µ-law, A-law.
    tables: [[u8; 256]; 2],
}

/// The gain of the relayed direction from `from`'s party to `to`'s party, or `None` when there
/// is nothing to do (0 dB toward the receiver, or no G.711 payload type from the sender).
pub fn relay_gain(from: &LegSpec, to: &LegSpec) -> Option<Box<RelayGain>> {
    if to.gain_db == 0 {
        return None;
    }
    let mut class = [NONE; 128];
    if from.codecs.is_empty() {
        // An unknown list: the static types of RFC 3551 are all we know.
        class[0] = ULAW;
        class[8] = ALAW;
    }
    let mut decided = [false; 128];
    for c in &from.codecs {
        let i = usize::from(c.pt & 0x7f);
        if std::mem::replace(&mut decided[i], true) {
            continue; // only the first entry for a payload type decides it
        }
        class[i] = match c.name.to_ascii_uppercase().as_str() {
            "PCMU" if c.clock_rate == 8000 => ULAW,
            "PCMA" if c.clock_rate == 8000 => ALAW,
            _ => NONE,
        };
    }
    if class.iter().all(|&c| c == NONE) {
        return None;
    }
    Some(Box::new(RelayGain {
        class,
        tables: [
            g711_gain_table(false, to.gain_db),
            g711_gain_table(true, to.gain_db),
        ],
    }))
}

impl RelayGain {
    /// Scales the payload of the RTP packet `pkt` (whose header is `hdr`, the sender's payload
    /// type) in place when that payload type is G.711; anything else is left alone.
    #[inline]
    pub fn apply(&self, hdr: &RtpHeader, pkt: &mut [u8]) {
        let table = match self.class[usize::from(hdr.payload_type & 0x7f)] {
            ULAW => &self.tables[0],
            ALAW => &self.tables[1],
            _ => return,
        };
        let end = hdr.header_len.saturating_add(hdr.payload_len);
        if let Some(payload) = pkt.get_mut(hdr.header_len..end) {
            for b in payload {
                *b = table[usize::from(*b)];
            }
        }
    }

    /// As [`RelayGain::apply`], parsing the header first (a packet that does not parse is left
    /// alone).
    pub fn apply_unparsed(&self, pkt: &mut [u8]) {
        if let Ok(hdr) = RtpHeader::parse(pkt) {
            self.apply(&hdr, pkt);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spec::CodecSpec;

    fn rms_db(pcm: &[i16]) -> f64 {
        let e: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        10.0 * (e / pcm.len() as f64).log10()
    }

    type Codec = (fn(i16) -> u8, fn(u8) -> i16);

    fn law(alaw: bool) -> Codec {
        if alaw {
            (alaw_encode, alaw_decode)
        } else {
            (ulaw_encode, ulaw_decode)
        }
    }

    fn sine(amplitude: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin())
                    .round() as i16
            })
            .collect()
    }

    #[test]
    fn zero_db_is_the_identity_for_every_byte_of_both_laws() {
        for alaw in [false, true] {
            let t = g711_gain_table(alaw, 0);
            for (i, &b) in t.iter().enumerate() {
                assert_eq!(usize::from(b), i, "alaw={alaw} code {i}");
            }
        }
    }

    #[test]
    fn plus_six_db_doubles_mid_level_samples_and_saturates_at_full_scale() {
        for (alaw, enc, dec) in [
            (
                false,
                ulaw_encode as fn(i16) -> u8,
                ulaw_decode as fn(u8) -> i16,
            ),
            (true, alaw_encode, alaw_decode),
        ] {
            let t = g711_gain_table(alaw, 6);
            for x in [-8000i16, -1000, 500, 3000, 8000] {
                let code = enc(x);
                let got = f64::from(dec(t[usize::from(code)]));
                let want = f64::from(dec(code)) * 1.995;
                // G.711 steps are up to 1/16 of the value: within 7 % of double.
                assert!(
                    (got - want).abs() <= want.abs() * 0.07,
                    "alaw={alaw} x={x}: {got} vs {want}"
                );
            }
            // Full scale saturates instead of wrapping round.
            let top = t[usize::from(enc(i16::MAX))];
            assert_eq!(top, enc(i16::MAX), "alaw={alaw}");
            let bottom = t[usize::from(enc(i16::MIN))];
            assert_eq!(bottom, enc(i16::MIN), "alaw={alaw}");
            assert!(dec(t[usize::from(enc(20000))]) > 30000);
            assert!(dec(t[usize::from(enc(-20000))]) < -30000);
        }
    }

    #[test]
    fn minus_ten_db_lowers_a_sine_by_ten_db() {
        for alaw in [false, true] {
            let (enc, dec) = law(alaw);
            let t = g711_gain_table(alaw, -10);
            let codes: Vec<u8> = sine(3276.0, 8000).into_iter().map(enc).collect();
            let before: Vec<i16> = codes.iter().map(|&c| dec(c)).collect();
            let after: Vec<i16> = codes.iter().map(|&c| dec(t[usize::from(c)])).collect();
            let d = rms_db(&after) - rms_db(&before);
            assert!((d + 10.0).abs() < 0.3, "alaw={alaw}: {d} dB");
        }
    }

    #[test]
    fn pcm_scaling_saturates() {
        let mut pcm = [10000i16, -10000, 20000, -20000, 0];
        scale_pcm(&mut pcm, gain_factor(6));
        assert_eq!(pcm, [19953, -19953, i16::MAX, i16::MIN, 0]);
        let mut pcm = sine(8000.0, 800);
        let before = rms_db(&pcm);
        scale_pcm(&mut pcm, gain_factor(-10));
        assert!((rms_db(&pcm) - before + 10.0).abs() < 0.05);
    }

    fn leg(codecs: &[(u8, &str)], gain_db: i8) -> LegSpec {
        LegSpec {
            codecs: codecs
                .iter()
                .map(|&(pt, name)| CodecSpec::new(pt, name, 8000))
                .collect(),
            gain_db,
            ..LegSpec::default()
        }
    }

    fn packet(pt: u8, payload: &[u8], padding: u8) -> Vec<u8> {
        let mut p = vec![0x80 | if padding > 0 { 0x20 } else { 0 }, pt, 0, 1];
        p.extend_from_slice(&[0, 0, 0, 160, 0, 0, 0, 7]);
        p.extend_from_slice(payload);
        if padding > 0 {
            p.extend(std::iter::repeat_n(0u8, usize::from(padding - 1)));
            p.push(padding);
        }
        p
    }

    #[test]
    fn only_g711_payload_types_of_the_sender_are_scaled() {
        let from = leg(
            &[
                (8, "PCMA"),
                (96, "PCMU"),
                (18, "G729"),
                (101, "telephone-event"),
            ],
            0,
        );
        let to = leg(&[(8, "PCMA")], 6);
        assert!(relay_gain(&from, &leg(&[(8, "PCMA")], 0)).is_none());
        let g = relay_gain(&from, &to).unwrap();
        let payload = [ulaw_encode(1000); 4];
        for (pt, scaled) in [(8, true), (96, true), (0, false), (18, false), (101, false)] {
            let mut p = packet(pt, &payload, 3);
            let before = p.clone();
            g.apply_unparsed(&mut p);
            assert_eq!(p[..12], before[..12], "header untouched");
            assert_eq!(p[16..], before[16..], "padding untouched");
            assert_eq!(p[12..16] != before[12..16], scaled, "pt {pt}");
        }
        // An unknown codec list: the static types only.
        let g = relay_gain(&LegSpec::default(), &to).unwrap();
        for (pt, scaled) in [(0, true), (8, true), (96, false)] {
            let mut p = packet(pt, &payload, 0);
            let before = p.clone();
            g.apply_unparsed(&mut p);
            assert_eq!(p != before, scaled, "unknown list, pt {pt}");
        }
        // A sender with no G.711 at all: nothing to build.
        assert!(relay_gain(&leg(&[(18, "G729")], 0), &to).is_none());
    }
}
