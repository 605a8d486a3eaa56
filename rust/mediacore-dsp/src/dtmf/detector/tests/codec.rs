//! Digits through the codecs of the transcoding path.

use std::ops::RangeInclusive;

use super::super::super::test_signal::{detect, digit_sequence, digits, gain, speech_like};
use super::speech::{margins, sipp_speech};
use super::*;
use crate::codec::{g711, new_decoder, new_encoder, CodecKind, EncoderOptions};

/// `pcm` encoded and decoded by `kind`, 20 ms packets (the tail that does
/// not fill a packet is dropped).
fn through(kind: CodecKind, pcm: &[i16]) -> Vec<i16> {
    let mut encoder = new_encoder(kind, EncoderOptions::default()).unwrap();
    let mut decoder = new_decoder(kind).unwrap();
    let mut out = Vec::with_capacity(pcm.len());
    let mut payload = Vec::new();
    for packet in pcm.chunks_exact(160) {
        payload.clear();
        encoder.encode(packet, &mut payload).unwrap();
        decoder.decode(&payload, &mut out).unwrap();
    }
    out
}

/// Checks that the 16 digits of 100 ms each are found once, in order,
/// with durations in `durations_ms`; returns the shortest found, ms.
fn check_all_digits(pcm: &[i16], durations_ms: RangeInclusive<u64>, what: &str) -> f64 {
    let found = digits(&detect(pcm));
    let string: String = found.iter().map(|d| d.0).collect();
    assert_eq!(string, all_digits(), "{what}: {found:?}");
    for &(digit, _, duration) in &found {
        let ms = duration / MS as u64;
        assert!(durations_ms.contains(&ms), "{what} {digit}: {ms} ms");
    }
    found.iter().map(|d| d.2).min().unwrap_or(0) as f64 / MS as f64
}

#[test]
fn digits_through_g711_a_law_and_mu_law() {
    for level in [-25.0, -10.0, 0.0] {
        let pcm = digit_sequence(&all_digits(), level, 100 * MS, 100 * MS);
        let alaw: Vec<i16> = pcm
            .iter()
            .map(|&s| g711::alaw_decode(g711::alaw_encode(s)))
            .collect();
        let ulaw: Vec<i16> = pcm
            .iter()
            .map(|&s| g711::ulaw_decode(g711::ulaw_encode(s)))
            .collect();
        check_all_digits(&alaw, 85..=115, "A-law");
        check_all_digits(&ulaw, 85..=115, "µ-law");
        assert_eq!(through(CodecKind::Pcma, &pcm), alaw);
    }
}

#[test]
fn digits_through_a_g729_tandem() {
    // G.729 smears the tone's onset (the coder adapts over a frame or two)
    // and lets single windows fail mid-tone, so durations come out short;
    // each digit must still be reported exactly once.
    let config = DetectorConfig::default();
    for level in [-25.0, -20.0, -10.0, -4.0, 0.0] {
        let pcm = digit_sequence(&all_digits(), level, 100 * MS, 100 * MS);
        let once = through(CodecKind::G729, &pcm);
        let shortest = check_all_digits(&once, 39..=115, "G.729");
        let m = margins(&config, &once);
        println!("G.729 once, {level} dBm0: shortest {shortest} ms, {m:?}");
        let twice = through(CodecKind::G729, &once);
        let shortest = check_all_digits(&twice, 39..=115, "G.729 tandem");
        let m = margins(&config, &twice);
        println!("G.729 twice, {level} dBm0: shortest {shortest} ms, {m:?}");
        // G.729 then G.711, as on a transcoded leg.
        let mixed: Vec<i16> = once
            .iter()
            .map(|&s| g711::alaw_decode(g711::alaw_encode(s)))
            .collect();
        check_all_digits(&mixed, 39..=115, "G.729 + A-law");
    }
}

#[test]
fn speech_through_a_g729_tandem_yields_no_digits() {
    // The codec's distortion must not turn speech into tones either.
    let mut speech = sipp_speech().unwrap_or_default();
    speech.extend(speech_like(20 * 8000, 7));
    for db in [0.0, 6.0] {
        let once = through(CodecKind::G729, &gain(&speech, db));
        let twice = through(CodecKind::G729, &once);
        for (passes, pcm) in [(1, &once), (2, &twice)] {
            let events = detect(pcm);
            let m = margins(&DetectorConfig::default(), pcm);
            println!("speech through G.729 ×{passes} {db:+} dB: {m:?}");
            assert!(events.is_empty(), "{passes} {db}: {events:?}");
        }
    }
}
