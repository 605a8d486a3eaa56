//! G.729 through our wrapper is bit-exact with libbcg729 called directly.

use super::*;
use crate::codec::test_signal::{energy, speech_like};
use proptest::prelude::*;

/// Raw bcg729 encoder, per frame, straight through the FFI.
fn raw_encode_frames(pcm: &[i16], vad: bool) -> Vec<Vec<u8>> {
    let ctx = unsafe { ffi::initBcg729EncoderChannel(u8::from(vad)) };
    assert!(!ctx.is_null());
    let frames = pcm
        .chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let mut bits = [0u8; FRAME_BYTES];
            let mut len = 0u8;
            unsafe { ffi::bcg729Encoder(ctx, frame.as_ptr(), bits.as_mut_ptr(), &mut len) };
            bits[..usize::from(len)].to_vec()
        })
        .collect();
    unsafe { ffi::closeBcg729EncoderChannel(ctx) };
    frames
}

/// Raw bcg729 decoder over a list of frames (10 bytes voice, 2 bytes SID,
/// 0 bytes untransmitted → erasure).
fn raw_decode_frames(frames: &[Vec<u8>]) -> Vec<i16> {
    let ctx = unsafe { ffi::initBcg729DecoderChannel() };
    assert!(!ctx.is_null());
    let mut out = Vec::new();
    for frame in frames {
        let mut signal = [0i16; FRAME_SAMPLES];
        unsafe {
            if frame.is_empty() {
                ffi::bcg729Decoder(ctx, std::ptr::null(), 0, 1, 0, 0, signal.as_mut_ptr());
            } else {
                let sid = u8::from(frame.len() == SID_BYTES);
                ffi::bcg729Decoder(
                    ctx,
                    frame.as_ptr(),
                    frame.len() as u8,
                    0,
                    sid,
                    0,
                    signal.as_mut_ptr(),
                );
            }
        }
        out.extend_from_slice(&signal);
    }
    unsafe { ffi::closeBcg729DecoderChannel(ctx) };
    out
}

const SECONDS: usize = 6;

#[test]
fn encoder_is_bit_exact_with_bcg729_without_vad() {
    let pcm = speech_like(SECONDS * 8000, 1, true);
    let expected: Vec<u8> = raw_encode_frames(&pcm, false).concat();
    assert_eq!(expected.len(), SECONDS * 1000, "8 kbit/s");
    for frames_per_packet in [1, 2, 3, 4, 6] {
        let mut enc = G729Encoder::new(false).unwrap();
        let mut payload = Vec::new();
        for packet in pcm.chunks_exact(frames_per_packet * FRAME_SAMPLES) {
            let n = enc.encode(packet, &mut payload).unwrap();
            assert_eq!(n, frames_per_packet * FRAME_BYTES);
        }
        assert_eq!(payload, expected, "{frames_per_packet} frames per packet");
    }
}

#[test]
fn encoder_is_bit_exact_with_bcg729_with_vad() {
    let pcm = speech_like(SECONDS * 8000, 2, true);
    let expected = raw_encode_frames(&pcm, true);
    let mut enc = G729Encoder::new(true).unwrap();
    for (packet, expected) in pcm.chunks_exact(FRAME_SAMPLES).zip(&expected) {
        let mut payload = Vec::new();
        enc.encode(packet, &mut payload).unwrap();
        assert_eq!(&payload, expected);
    }
    // The pauses produced DTX: SID frames and untransmitted frames.
    let sids = expected.iter().filter(|f| f.len() == SID_BYTES).count();
    let untransmitted = expected.iter().filter(|f| f.is_empty()).count();
    assert!(sids >= 3, "{sids} SID frames");
    assert!(untransmitted > 100, "{untransmitted} untransmitted frames");
}

#[test]
fn decoder_is_bit_exact_with_bcg729() {
    for vad in [false, true] {
        let pcm = speech_like(SECONDS * 8000, 3, true);
        let frames = raw_encode_frames(&pcm, vad);
        let expected = raw_decode_frames(&frames);
        let mut dec = G729Decoder::new().unwrap();
        let mut out = Vec::new();
        for frame in &frames {
            if frame.is_empty() {
                dec.conceal(FRAME_SAMPLES, &mut out);
            } else {
                assert_eq!(dec.decode(frame, &mut out).unwrap(), FRAME_SAMPLES);
            }
        }
        assert_eq!(out, expected, "vad {vad}");
        // And the result sounds like the input: comparable energy in speech.
        let ratio = energy(&out[..8000]) / energy(&pcm[..8000]);
        assert!((0.3..3.0).contains(&ratio), "energy ratio {ratio}");
    }
}

#[test]
fn multi_frame_payload_decodes_like_single_frames() {
    let pcm = speech_like(8000, 4, false);
    let frames = raw_encode_frames(&pcm, false);
    let expected = raw_decode_frames(&frames);
    let mut dec = G729Decoder::new().unwrap();
    let mut out = Vec::new();
    for packet in frames.chunks(4) {
        let payload = packet.concat();
        assert_eq!(
            dec.decode(&payload, &mut out).unwrap(),
            packet.len() * FRAME_SAMPLES
        );
    }
    assert_eq!(out, expected);
}

#[test]
fn decoding_is_deterministic() {
    let pcm = speech_like(2 * 8000, 5, true);
    let payload: Vec<u8> = raw_encode_frames(&pcm, false).concat();
    let run = || {
        let mut dec = G729Decoder::new().unwrap();
        let mut out = Vec::new();
        for packet in payload.chunks(20) {
            dec.decode(packet, &mut out).unwrap();
        }
        dec.conceal(240, &mut out);
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn silence_with_vad_becomes_sid_then_nothing_and_decodes_to_comfort_noise() {
    // Quiet background noise: the Annex B VAD, which starts out calling
    // everything voice, settles on "inactive" after about 1.6 s.
    let mut lcg = crate::codec::test_signal::Lcg::new(9);
    let pcm: Vec<i16> = (0..3 * 8000).map(|_| lcg.noise(80) as i16).collect();
    let mut enc = G729Encoder::new(true).unwrap();
    let mut payloads = Vec::new();
    for packet in pcm.chunks_exact(2 * FRAME_SAMPLES) {
        let mut payload = Vec::new();
        enc.encode(packet, &mut payload).unwrap();
        payloads.push(payload);
    }
    let lengths: Vec<usize> = payloads.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().all(|&n| frames_in_payload(n).is_some()),
        "{lengths:?}"
    );
    let first_sid = lengths
        .iter()
        .position(|&n| n % FRAME_BYTES == SID_BYTES)
        .expect("a SID frame");
    assert!(
        lengths.iter().filter(|&&n| n == 0).count() > 10,
        "{lengths:?}"
    );

    let mut dec = G729Decoder::new().unwrap();
    let mut out = Vec::new();
    for payload in &payloads[..first_sid] {
        dec.decode(payload, &mut out).unwrap();
    }
    let sid = &payloads[first_sid];
    let mut noise = Vec::new();
    let samples = dec.decode(sid, &mut noise).unwrap();
    assert_eq!(
        samples,
        frames_in_payload(sid.len()).unwrap() * FRAME_SAMPLES
    );
    assert_eq!(noise.len(), samples);
    // DTX gap: conceal continues comfort noise.
    dec.conceal(800, &mut noise);
    assert_eq!(noise.len(), samples + 800);
    assert!(
        noise.iter().any(|&s| s != 0),
        "comfort noise is not digital silence"
    );
    let rms = (energy(&noise) / noise.len() as f64).sqrt();
    assert!(rms < 500.0, "comfort noise stays quiet: rms {rms}");
}

#[test]
fn a_bare_sid_payload_decodes_to_one_frame() {
    let mut dec = G729Decoder::new().unwrap();
    let mut out = Vec::new();
    assert_eq!(dec.decode(&[0x5a, 0x3c], &mut out).unwrap(), FRAME_SAMPLES);
    assert_eq!(out.len(), FRAME_SAMPLES);
    dec.conceal(FRAME_SAMPLES, &mut out);
    assert_eq!(out.len(), 2 * FRAME_SAMPLES);
}

#[test]
fn empty_payload_is_dtx_with_no_samples() {
    let mut dec = G729Decoder::new().unwrap();
    let mut out = vec![7];
    assert_eq!(dec.decode(&[], &mut out).unwrap(), 0);
    assert_eq!(out, [7]);
}

#[test]
fn bad_payload_lengths_are_rejected_without_output() {
    let mut dec = G729Decoder::new().unwrap();
    let mut out = Vec::new();
    for len in (1..=64).filter(|len| len % 10 != 0 && len % 10 != 2) {
        let err = dec.decode(&vec![0x42; len], &mut out).unwrap_err();
        assert!(matches!(err, CodecError::BadPayload(_)), "{len}");
    }
    assert!(out.is_empty());
    for len in [2, 10, 12, 20, 22, 60, 62] {
        assert!(dec.decode(&vec![0x42; len], &mut out).is_ok(), "{len}");
    }
}

#[test]
fn encoder_rejects_partial_frames() {
    let mut enc = G729Encoder::new(false).unwrap();
    let mut out = Vec::new();
    for len in [0, 1, 79, 81, 159] {
        assert!(enc.encode(&vec![0; len], &mut out).is_err(), "{len}");
    }
    assert!(out.is_empty());
}

#[test]
fn concealment_appends_exactly_the_requested_samples() {
    let mut dec = G729Decoder::new().unwrap();
    let mut out = Vec::new();
    for n in [0, 1, 79, 80, 81, 160, 1000] {
        out.clear();
        dec.conceal(n, &mut out);
        assert_eq!(out.len(), n);
    }
}

#[test]
fn vad_packets_stay_well_formed_for_every_ptime() {
    let pcm = speech_like(SECONDS * 8000, 6, true);
    for frames_per_packet in [2, 3, 4, 6] {
        let mut enc = G729Encoder::new(true).unwrap();
        let mut dec = G729Decoder::new().unwrap();
        let mut out = Vec::new();
        for packet in pcm.chunks_exact(frames_per_packet * FRAME_SAMPLES) {
            let mut payload = Vec::new();
            let n = enc.encode(packet, &mut payload).unwrap();
            assert_eq!(n, payload.len());
            assert!(frames_in_payload(n).is_some(), "{n} bytes");
            let frames = frames_in_payload(n).unwrap();
            assert!(frames <= frames_per_packet);
            dec.decode(&payload, &mut out).unwrap();
            dec.conceal((frames_per_packet - frames) * FRAME_SAMPLES, &mut out);
        }
        assert_eq!(out.len(), pcm.len());
    }
}

proptest! {
    #[test]
    fn arbitrary_frames_of_valid_length_decode(
        voice in proptest::collection::vec(any::<[u8; FRAME_BYTES]>(), 0..7),
        sid in proptest::option::of(any::<[u8; SID_BYTES]>()),
        lost in 0usize..300,
    ) {
        let mut payload: Vec<u8> = voice.concat();
        if let Some(sid) = sid {
            payload.extend_from_slice(&sid);
        }
        let mut dec = G729Decoder::new().unwrap();
        let mut out = Vec::new();
        let n = dec.decode(&payload, &mut out).unwrap();
        prop_assert_eq!(n, (voice.len() + usize::from(sid.is_some())) * FRAME_SAMPLES);
        prop_assert_eq!(out.len(), n);
        dec.conceal(lost, &mut out);
        prop_assert_eq!(out.len(), n + lost);
        // The decoder keeps working after garbage.
        dec.decode(&payload, &mut out).unwrap();
    }

    #[test]
    fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..80)) {
        let mut dec = G729Decoder::new().unwrap();
        let mut out = Vec::new();
        match dec.decode(&payload, &mut out) {
            Ok(n) => prop_assert_eq!(n, out.len()),
            Err(_) => prop_assert!(out.is_empty()),
        }
    }
}
