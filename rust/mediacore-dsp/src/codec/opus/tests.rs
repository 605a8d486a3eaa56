use super::*;
use crate::codec::test_signal::{best_correlation, energy, speech_like};
use proptest::prelude::*;

fn round_trip(pcm: &[i16], packet_samples: usize, bitrate: Option<u32>) -> (Vec<i16>, usize) {
    let mut enc = OpusEncoder::new(bitrate).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = Vec::new();
    let mut bytes = 0;
    for packet in pcm.chunks_exact(packet_samples) {
        let mut payload = Vec::new();
        let n = enc.encode(packet, &mut payload).unwrap();
        assert_eq!(n, payload.len());
        bytes += n;
        let decoded = dec.decode(&payload, &mut out).unwrap();
        assert_eq!(decoded, packet_samples);
    }
    (out, bytes)
}

#[test]
fn encode_decode_preserves_length_and_waveform() {
    let pcm = speech_like(3 * 8000, 11, false);
    for packet_samples in [160, 320, 480] {
        let (out, _) = round_trip(&pcm, packet_samples, Some(24_000));
        assert_eq!(out.len(), pcm.len());
        // Opus has a few ms of algorithmic delay; find it, then compare.
        let (correlation, lag) = best_correlation(&pcm, &out, 200);
        // SILK is a parametric coder, not a waveform coder: on this noisy,
        // gliding-pitch signal it keeps about 0.7 correlation and 3 dB SNR
        // (measured with libopus 1.3.1); broken sample rates or framing
        // give roughly zero.
        assert!(
            correlation > 0.6,
            "{packet_samples}: correlation {correlation} at lag {lag}"
        );
        let n = pcm.len() - lag;
        let noise: f64 = pcm[..n]
            .iter()
            .zip(&out[lag..])
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let snr_db = 10.0 * (energy(&pcm[..n]) / noise).log10();
        assert!(snr_db > 1.5, "{packet_samples}: SNR {snr_db:.1} dB");
    }
}

#[test]
fn tones_survive_closely() {
    let pcm: Vec<i16> = (0..2 * 8000)
        .map(|n| {
            let t = n as f64 / 8000.0;
            (5000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 1100.0 * t).sin()) as i16
        })
        .collect();
    let (out, _) = round_trip(&pcm, 160, Some(24_000));
    // Lags beyond one 10 ms period of this signal would be ambiguous.
    let (correlation, lag) = best_correlation(&pcm[800..], &out[800..], 80);
    assert!(
        correlation > 0.95,
        "tones: correlation {correlation} at lag {lag}"
    );
}

#[test]
fn bitrate_option_is_applied() {
    let pcm = speech_like(2 * 8000, 12, false);
    let (_, low) = round_trip(&pcm, 160, Some(8_000));
    let (_, high) = round_trip(&pcm, 160, Some(32_000));
    assert!(
        low * 2 < high,
        "8 kbit/s: {low} bytes, 32 kbit/s: {high} bytes"
    );
    // 2 s at 8 kbit/s is about 2000 bytes.
    assert!((1000..3000).contains(&low), "{low}");
    assert!(OpusEncoder::new(Some(100)).is_err());
    assert!(OpusEncoder::new(Some(10_000_000)).is_err());
}

#[test]
fn encoder_rejects_other_durations() {
    let mut enc = OpusEncoder::new(None).unwrap();
    let mut out = Vec::new();
    for len in [0, 80, 159, 161, 640, 960] {
        assert!(enc.encode(&vec![0; len], &mut out).is_err(), "{len}");
    }
    assert!(out.is_empty());
}

#[test]
fn concealment_yields_the_requested_samples() {
    let pcm = speech_like(8000, 13, false);
    let mut enc = OpusEncoder::new(None).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = Vec::new();
    let mut payload = Vec::new();
    for packet in pcm.chunks_exact(160).take(10) {
        payload.clear();
        enc.encode(packet, &mut payload).unwrap();
        dec.decode(&payload, &mut out).unwrap();
    }
    for n in [160, 1, 37, 320, 2000, 0] {
        let before = out.len();
        dec.conceal(n, &mut out);
        assert_eq!(out.len() - before, n);
    }
    // PLC right after speech is not silence.
    out.clear();
    dec.decode(&payload, &mut out).unwrap();
    out.clear();
    dec.conceal(160, &mut out);
    assert!(energy(&out) > 0.0);
    // And the decoder still decodes afterwards.
    assert_eq!(dec.decode(&payload, &mut out).unwrap(), 160);
}

#[test]
fn concealment_before_any_packet_is_quiet() {
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = Vec::new();
    dec.conceal(480, &mut out);
    assert_eq!(out.len(), 480);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn stereo_and_wideband_packets_decode_to_8khz_mono() {
    let mut error = 0;
    let raw =
        unsafe { ffi::opus_encoder_create(48_000, 2, ffi::OPUS_APPLICATION_VOIP, &mut error) };
    assert!(!raw.is_null() && error == ffi::OPUS_OK);
    let pcm = vec![1000i16; 960 * 2]; // 20 ms, interleaved stereo, at 48 kHz
    let mut packet = [0u8; MAX_PAYLOAD_BYTES];
    let written = unsafe {
        ffi::opus_encode(
            raw,
            pcm.as_ptr(),
            960,
            packet.as_mut_ptr(),
            packet.len() as i32,
        )
    };
    unsafe { ffi::opus_encoder_destroy(raw) };
    let written = usize::try_from(written).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = Vec::new();
    assert_eq!(dec.decode(&packet[..written], &mut out).unwrap(), 160);
    assert_eq!(out.len(), 160);
}

#[test]
fn empty_and_garbage_payloads_are_errors() {
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = Vec::new();
    assert!(dec.decode(&[], &mut out).is_err());
    // TOC code 3 (arbitrary frame count) with a frame count of 0.
    assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
    // Code 3 claiming 48 frames of 20 ms: 960 ms, beyond the 120 ms limit.
    assert!(dec.decode(&[0x1B, 48], &mut out).is_err());
    assert!(out.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = vec![1i16, 2, 3];
        match dec.decode(&payload, &mut out) {
            Ok(n) => {
                prop_assert_eq!(out.len(), 3 + n);
                prop_assert!(n <= MAX_PACKET_SAMPLES);
            }
            Err(_) => prop_assert_eq!(&out, &[1, 2, 3]),
        }
        dec.conceal(160, &mut out);
    }
}
