//! Configuration checks and "no panic on any input".

use super::cfg;
use crate::aec::{EchoCanceller, EchoCancellerConfig};
use proptest::prelude::*;

#[test]
fn tail_lengths_are_validated() {
    for ok in [16, 24, 64, 120, 128] {
        assert!(EchoCanceller::new(cfg(ok, true)).is_ok(), "{ok} ms");
    }
    for bad in [0, 8, 12, 65, 136, 1000, u32::MAX] {
        let err = EchoCanceller::new(cfg(bad, true)).err().unwrap();
        assert!(err.contains("16..=128"), "{bad} ms: {err}");
    }
    assert_eq!(
        EchoCancellerConfig::default(),
        EchoCancellerConfig {
            tail_ms: 64,
            nlp: true,
            comfort_noise: true
        }
    );
}

#[test]
fn mismatched_lengths_process_the_common_prefix() {
    let mut aec = EchoCanceller::new(EchoCancellerConfig::default()).unwrap();
    let far = [1000i16; 100];
    let near = [500i16; 80];
    let mut out = [7i16; 120];
    aec.process(&far, &near, &mut out);
    assert!(out[80..].iter().all(|&v| v == 0));
    let mut short = [0i16; 10];
    aec.process(&far, &near, &mut short);
    aec.process(&[], &near, &mut short);
    assert!(short.iter().all(|&v| v == 0));
}

/// Full-scale square waves on both sides for 10 s (the worst signal for
/// the arithmetic): bounded output and finite statistics.
#[test]
fn full_scale_input_is_survived() {
    let mut aec = EchoCanceller::new(cfg(128, true)).unwrap();
    let mut out = [0i16; 160];
    for block in 0..500 {
        let far: Vec<i16> = (0..160)
            .map(|n| {
                if (n / 4 + block) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        let near: Vec<i16> = (0..160)
            .map(|n| {
                if (n / 7 + block) % 3 == 0 {
                    i16::MIN
                } else {
                    i16::MAX
                }
            })
            .collect();
        aec.process(&far, &near, &mut out);
    }
    let s = aec.stats();
    assert!(
        s.erl_db.is_finite() && s.erle_db.is_finite() && s.delay_ms.is_finite(),
        "{s:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_blocks_never_panic(
        tail in (2u32..=16).prop_map(|k| k * 8),
        nlp in any::<bool>(),
        comfort_noise in any::<bool>(),
        blocks in prop::collection::vec(
            (prop::collection::vec(any::<i16>(), 0..400),
             prop::collection::vec(any::<i16>(), 0..400),
             0usize..400),
            1..24),
    ) {
        let mut aec = EchoCanceller::new(EchoCancellerConfig { tail_ms: tail, nlp, comfort_noise }).unwrap();
        for (far, near, out_len) in blocks {
            let mut out = vec![1i16; out_len];
            aec.process(&far, &near, &mut out);
            let n = far.len().min(near.len()).min(out_len);
            prop_assert!(out[n..].iter().all(|&v| v == 0));
            let s = aec.stats();
            prop_assert!(s.erl_db.is_finite() && s.erle_db.is_finite());
            prop_assert!((0.0..=1.0).contains(&s.double_talk_ratio));
        }
    }
}

/// The block filter adapts every 64 samples but produces each output
/// sample from the input up to it: the output is the same, sample for
/// sample, whatever frames the caller cuts the audio into (10 ms, 20 ms,
/// one sample, one block, ragged), so the 64-sample blocks add no delay
/// on the playout clock's 80- or 160-sample frames.
#[test]
fn output_does_not_depend_on_the_frame_size() {
    use super::signals::{g168_models, looped, pcap_speech};
    use super::{at_level, quantise, RATE};
    let len = 3 * RATE;
    let far = quantise(&at_level(&looped(&pcap_speech(), 0, len), -13.0));
    let path = &g168_models()[0];
    let echo = path.echo(&super::to_f64(&far), 6.0);
    // A near-end talker over the last second as well, so that the double-talk
    // path is exercised too.
    let talker = at_level(&looped(&pcap_speech(), RATE, len), -25.0);
    let near: Vec<i16> = quantise(
        &(0..len)
            .map(|n| echo[n] + if n >= 2 * RATE { talker[n] } else { 0.0 })
            .collect::<Vec<_>>(),
    );
    let run = |sizes: &[usize]| {
        let mut aec = EchoCanceller::new(cfg(64, true)).unwrap();
        let mut out = vec![0i16; len];
        let mut at = 0;
        for &size in sizes.iter().cycle() {
            if at == len {
                break;
            }
            let end = (at + size).min(len);
            aec.process(&far[at..end], &near[at..end], &mut out[at..end]);
            at = end;
        }
        (out, aec.stats())
    };
    let (reference, stats) = run(&[160]);
    assert!(stats.converged, "{stats:?}");
    for sizes in [&[80][..], &[1], &[64], &[37, 123, 5, 300, 64, 1]] {
        let (out, s) = run(sizes);
        assert_eq!(s, stats, "frames of {sizes:?}");
        let first = out.iter().zip(&reference).position(|(a, b)| a != b);
        assert_eq!(first, None, "frames of {sizes:?}: first difference");
    }
}

/// No delay: with the far end silent the output is the near end, sample
/// for sample; once converged it is a near-end talker, aligned, with the
/// echo removed (a canceller that held samples back for its blocks would
/// leave the talker shifted against itself).
#[test]
fn no_delay_is_added() {
    use super::signals::{g168_models, looped, pcap_speech};
    use super::{at_level, db, power, quantise, RATE};
    let len = 6 * RATE;
    let silent = RATE / 4;
    let mut far = quantise(&at_level(&looped(&pcap_speech(), 0, len), -13.0));
    far[..silent].fill(0);
    let echo = g168_models()[0].echo(&super::to_f64(&far), 6.0);
    // The talker starts once the filter has converged.
    let mut talker = at_level(&looped(&pcap_speech(), 2 * RATE, len), -30.0);
    talker[..4 * RATE].fill(0.0);
    let near = quantise(&(0..len).map(|n| echo[n] + talker[n]).collect::<Vec<_>>());
    let mut aec = EchoCanceller::new(cfg(64, false)).unwrap();
    let mut out = vec![0i16; len];
    for ((x, d), o) in far
        .chunks(160)
        .zip(near.chunks(160))
        .zip(out.chunks_mut(160))
    {
        aec.process(x, d, o);
    }
    assert_eq!(out[..silent], near[..silent]);
    let tail = 4 * RATE..len;
    let residual: Vec<f64> = tail
        .clone()
        .map(|n| f64::from(out[n]) - talker[n])
        .collect();
    let talker_power = power(&talker[tail]);
    let below = db(talker_power, power(&residual));
    assert!(
        below >= 15.0,
        "output minus the aligned talker only {below:.1} dB under it"
    );
}
