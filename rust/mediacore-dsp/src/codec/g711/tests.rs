//! G.711 against an independent transcription of the ITU-T G.191 `g711.c`
//! reference (segment-search loops, 16-bit left-justified input), run
//! exhaustively over all inputs.

use super::*;
use proptest::prelude::*;

/// G.191 `alaw_compress`, one sample, written as in the reference.
fn g191_alaw_compress(linear: i16) -> u8 {
    let mut ix: i16 = if linear < 0 {
        (!linear) >> 4
    } else {
        linear >> 4
    };
    if ix > 15 {
        let mut iexp: i16 = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if linear >= 0 {
        ix |= 0x0080;
    }
    (ix ^ 0x0055) as u8
}

/// G.191 `alaw_expand`.
fn g191_alaw_expand(log: u8) -> i16 {
    let mut ix = i16::from(log) ^ 0x0055;
    ix &= 0x007F;
    let iexp = ix >> 4;
    let mut mant = ix & 0x000F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x0008;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    if log > 127 {
        mant
    } else {
        -mant
    }
}

/// G.191 `ulaw_compress`.
fn g191_ulaw_compress(linear: i16) -> u8 {
    let mut absno: i32 = if linear < 0 {
        (i32::from(!linear) >> 2) + 33
    } else {
        (i32::from(linear) >> 2) + 33
    };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x0008 - segno;
    let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
    let mut log = (high_nibble << 4) | low_nibble;
    if linear >= 0 {
        log |= 0x0080;
    }
    log as u8
}

/// G.191 `ulaw_expand`.
fn g191_ulaw_expand(log: u8) -> i16 {
    let sign: i32 = if log < 0x80 { -1 } else { 1 };
    let mut mantissa = !i32::from(log);
    let exponent = (mantissa >> 4) & 0x0007;
    let segment = exponent + 1;
    mantissa &= 0x000F;
    let step = 4 << segment;
    (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

fn all_samples() -> impl Iterator<Item = i16> {
    i16::MIN..=i16::MAX
}

#[test]
fn alaw_encode_matches_g191_for_every_sample() {
    for s in all_samples() {
        let expected = g191_alaw_compress(s);
        assert_eq!(alaw_encode(s), expected, "sample {s}");
        assert_eq!(alaw_compress(s), expected, "computed, sample {s}");
    }
}

#[test]
fn ulaw_encode_matches_g191_for_every_sample() {
    for s in all_samples() {
        let expected = g191_ulaw_compress(s);
        assert_eq!(ulaw_encode(s), expected, "sample {s}");
        assert_eq!(ulaw_compress(s), expected, "computed, sample {s}");
    }
}

#[test]
fn decode_matches_g191_for_every_code() {
    for code in 0..=255u8 {
        assert_eq!(
            alaw_decode(code),
            g191_alaw_expand(code),
            "A-law {code:#04x}"
        );
        assert_eq!(
            ulaw_decode(code),
            g191_ulaw_expand(code),
            "µ-law {code:#04x}"
        );
    }
}

#[test]
fn known_values() {
    assert_eq!(alaw_encode(0), ALAW_SILENCE);
    assert_eq!(ulaw_encode(0), ULAW_SILENCE);
    assert_eq!(alaw_decode(ALAW_SILENCE), 8);
    assert_eq!(ulaw_decode(ULAW_SILENCE), 0);
    assert_eq!(alaw_decode(0xAA), 32256);
    assert_eq!(alaw_decode(0x2A), -32256);
    assert_eq!(ulaw_decode(0x80), 32124);
    assert_eq!(ulaw_decode(0x00), -32124);
    assert_eq!(alaw_encode(i16::MAX), 0xAA);
    assert_eq!(alaw_encode(i16::MIN), 0x2A);
    assert_eq!(ulaw_encode(i16::MAX), 0x80);
    assert_eq!(ulaw_encode(i16::MIN), 0x00);
}

#[test]
fn encode_of_decode_is_identity_except_negative_ulaw_zero() {
    for code in 0..=255u8 {
        assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(
            ulaw_encode(ulaw_decode(code)),
            expected,
            "µ-law {code:#04x}"
        );
    }
    assert_eq!(ulaw_decode(0x7F), ulaw_decode(0xFF));
}

/// Codes where the G.711 tables differ from decode-then-encode, as
/// documented in the module header.
fn mu_to_a_table_differs(code: u8) -> bool {
    let m = code & 0x7F;
    let negative = code & 0x80 == 0;
    (0x20..=0x2E).contains(&m)
        || [0x3F, 0x4E, 0x4F].contains(&m)
        || (negative && m >= 0x71 && m % 2 == 1)
}

fn a_to_mu_table_differs(code: u8) -> bool {
    code & 0x7F <= 0x0F
}

#[test]
fn conversion_tables_differ_from_decode_encode_exactly_where_documented() {
    let mut mu_differs = 0;
    let mut a_differs = 0;
    for code in 0..=255u8 {
        let via_linear = alaw_encode(ulaw_decode(code));
        assert_eq!(
            ulaw_to_alaw(code) != via_linear,
            mu_to_a_table_differs(code),
            "µ {code:#04x}"
        );
        mu_differs += usize::from(ulaw_to_alaw(code) != via_linear);
        let via_linear = ulaw_encode(alaw_decode(code));
        assert_eq!(
            alaw_to_ulaw(code) != via_linear,
            a_to_mu_table_differs(code),
            "A {code:#04x}"
        );
        a_differs += usize::from(alaw_to_ulaw(code) != via_linear);
    }
    assert_eq!((mu_differs, a_differs), (44, 32));
}

#[test]
fn conversion_spot_values() {
    // Table 3: the two µ-law zeros go to the A-law levels ±8.
    assert_eq!(ulaw_to_alaw(0xFF), 0xD5);
    assert_eq!(ulaw_to_alaw(0x7F), 0x55);
    // Full scale maps to full scale.
    assert_eq!(ulaw_to_alaw(0x80), 0xAA);
    assert_eq!(alaw_to_ulaw(0xAA), 0x80);
    // Table 4 at A-law 8064 picks µ-law 7932, where encoding the decoded
    // value would give 8316; Table 3 maps 7932 back to 8064.
    assert_eq!(alaw_decode(0x8A), 8064);
    assert_eq!(ulaw_decode(alaw_to_ulaw(0x8A)), 7932);
    assert_eq!(ulaw_to_alaw(alaw_to_ulaw(0x8A)), 0x8A);
}

/// Position of a code's level among all levels of its law, in order.
fn level_rank(levels: &[i16; 256], code: u8) -> usize {
    let mut sorted: Vec<i16> = levels.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.binary_search(&levels[code as usize]).unwrap()
}

#[test]
fn where_tables_differ_they_pick_the_adjacent_level_on_the_other_side() {
    for code in 0..=255u8 {
        let table = ulaw_to_alaw(code);
        let via_linear = alaw_encode(ulaw_decode(code));
        if table != via_linear {
            let (t, v) = (
                level_rank(&ALAW_DECODE, table),
                level_rank(&ALAW_DECODE, via_linear),
            );
            assert_eq!(t.abs_diff(v), 1, "µ {code:#04x}");
            let level = i32::from(ulaw_decode(code));
            let (tl, vl) = (
                i32::from(alaw_decode(table)),
                i32::from(alaw_decode(via_linear)),
            );
            assert!(
                (tl - level).signum() != (vl - level).signum(),
                "µ {code:#04x}"
            );
        }
        let table = alaw_to_ulaw(code);
        let via_linear = ulaw_encode(alaw_decode(code));
        if table != via_linear {
            let (t, v) = (
                level_rank(&ULAW_DECODE, table),
                level_rank(&ULAW_DECODE, via_linear),
            );
            assert_eq!(t.abs_diff(v), 1, "A {code:#04x}");
            assert!(
                ulaw_decode(table).abs() < ulaw_decode(via_linear).abs(),
                "A {code:#04x}: down"
            );
        }
    }
}

#[test]
fn conversion_preserves_sign_and_order() {
    for code in 0..=255u8 {
        assert_eq!(alaw_to_ulaw(code) & 0x80, code & 0x80);
        assert_eq!(ulaw_to_alaw(code) & 0x80, code & 0x80);
        // The laws are symmetric, so is the conversion.
        assert_eq!(
            ulaw_decode(alaw_to_ulaw(code ^ 0x80)),
            -ulaw_decode(alaw_to_ulaw(code))
        );
        assert_eq!(
            alaw_decode(ulaw_to_alaw(code ^ 0x80)),
            -alaw_decode(ulaw_to_alaw(code))
        );
    }
    // Monotone: sorting codes by decoded value keeps the converted values sorted.
    let mut a_codes: Vec<u8> = (0..=255).collect();
    a_codes.sort_by_key(|&c| alaw_decode(c));
    let mapped: Vec<i16> = a_codes
        .iter()
        .map(|&c| ulaw_decode(alaw_to_ulaw(c)))
        .collect();
    assert!(mapped.windows(2).all(|w| w[0] <= w[1]));
    let mut mu_codes: Vec<u8> = (0..=255).collect();
    mu_codes.sort_by_key(|&c| ulaw_decode(c));
    let mapped: Vec<i16> = mu_codes
        .iter()
        .map(|&c| alaw_decode(ulaw_to_alaw(c)))
        .collect();
    assert!(mapped.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn double_conversion_is_transparent_except_where_the_other_law_is_coarser() {
    let a_lossy: Vec<u8> = (0..=255u8)
        .filter(|&c| ulaw_to_alaw(alaw_to_ulaw(c)) != c)
        .collect();
    assert_eq!(
        a_lossy,
        [
            0x05, 0x48, 0x4A, 0x4C, 0x4E, 0x6B, 0x79, 0x7B, 0x85, 0xC8, 0xCA, 0xCC, 0xCE, 0xEB,
            0xF9, 0xFB
        ]
    );
    let mu_lossy: Vec<u8> = (0..=255u8)
        .filter(|&c| alaw_to_ulaw(ulaw_to_alaw(c)) != c)
        .collect();
    let expected: Vec<u8> = (0x71..=0x7F)
        .step_by(2)
        .chain((0xF1..=0xFF).step_by(2))
        .collect();
    assert_eq!(mu_lossy, expected);
    // Where it is lossy, one more round trip is stable.
    for c in 0..=255u8 {
        let once = ulaw_to_alaw(alaw_to_ulaw(c));
        assert_eq!(ulaw_to_alaw(alaw_to_ulaw(once)), once);
        let once = alaw_to_ulaw(ulaw_to_alaw(c));
        assert_eq!(alaw_to_ulaw(ulaw_to_alaw(once)), once);
    }
}

#[test]
fn slice_helpers_append() {
    let pcm = [0i16, 1000, -1000, i16::MAX, i16::MIN];
    let mut a = vec![0xEE];
    encode_alaw(&pcm, &mut a);
    assert_eq!(a.len(), 6);
    assert_eq!(a[0], 0xEE);
    let mut u = Vec::new();
    encode_ulaw(&pcm, &mut u);
    let mut back = Vec::new();
    decode_alaw(&a[1..], &mut back);
    decode_ulaw(&u, &mut back);
    assert_eq!(back.len(), 10);
    let mut converted = Vec::new();
    transcode_alaw_to_ulaw(&a[1..], &mut converted);
    transcode_ulaw_to_alaw(&u, &mut converted);
    assert_eq!(converted.len(), 10);
}

#[test]
fn decoder_and_encoder_round_trip() {
    for law in [Law::A, Law::Mu] {
        let mut enc = G711Encoder::new(law);
        let mut dec = G711Decoder::new(law);
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20000 - 10000) as i16)
            .collect();
        let mut payload = Vec::new();
        assert_eq!(enc.encode(&pcm, &mut payload).unwrap(), 160);
        let mut out = Vec::new();
        assert_eq!(dec.decode(&payload, &mut out).unwrap(), 160);
        for (a, b) in pcm.iter().zip(&out) {
            // G.711 quantisation error is at most half a step: 1/32 of the level.
            assert!((i32::from(*a) - i32::from(*b)).abs() <= i32::from(a.unsigned_abs() / 16) + 16);
        }
        assert_eq!(dec.decode(&[], &mut out).unwrap(), 0);
    }
}

#[test]
fn concealment_repeats_the_last_10_ms_fading_to_silence() {
    let mut dec = G711Decoder::new(Law::A);
    let pcm: Vec<i16> = (0..160)
        .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
        .collect();
    let mut payload = Vec::new();
    encode_alaw(&pcm, &mut payload);
    let mut out = Vec::new();
    dec.decode(&payload, &mut out).unwrap();
    let last = out[out.len() - 1];
    out.clear();
    dec.conceal(160, &mut out);
    assert_eq!(out.len(), 160);
    assert_eq!(out[0].signum(), -last.signum());
    assert!(out[0].unsigned_abs() > 7000);
    assert!(out[159].unsigned_abs() < out[0].unsigned_abs());
    out.clear();
    dec.conceal(400, &mut out);
    assert_eq!(out.len(), 400);
    assert!(out[320..].iter().all(|&s| s == 0), "silent after 60 ms");
    // A good packet restarts the fade.
    dec.decode(&payload, &mut Vec::new()).unwrap();
    out.clear();
    dec.conceal(1, &mut out);
    assert!(out[0].unsigned_abs() > 7000);
}

#[test]
fn concealment_with_short_history() {
    let mut dec = G711Decoder::new(Law::Mu);
    let mut out = Vec::new();
    dec.conceal(100, &mut out);
    assert!(out.iter().all(|&s| s == 0));
    dec.decode(&[0x80; 3], &mut out).unwrap();
    out.clear();
    dec.conceal(PLC_HISTORY, &mut out);
    // The three decoded samples sit at the end of the history.
    assert_eq!(&out[..PLC_HISTORY - 3], &[0; PLC_HISTORY - 3][..]);
    assert!(out[PLC_HISTORY - 3..].iter().all(|&s| s > 0));
}

proptest! {
    #[test]
    fn any_payload_decodes_to_one_sample_per_byte(payload in proptest::collection::vec(any::<u8>(), 0..400)) {
        for law in [Law::A, Law::Mu] {
            let mut dec = G711Decoder::new(law);
            let mut out = Vec::new();
            prop_assert_eq!(dec.decode(&payload, &mut out).unwrap(), payload.len());
            prop_assert_eq!(out.len(), payload.len());
        }
    }
}
