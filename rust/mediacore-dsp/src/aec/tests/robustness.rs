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
