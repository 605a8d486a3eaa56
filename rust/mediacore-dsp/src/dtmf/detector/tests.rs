//! Detector behaviour on clean and impaired tone pairs (Q.24 limits).

use proptest::prelude::*;

use super::super::test_signal::{
    detect, digit_sequence, digit_string, digits, gain, power, tone_pair_pcm, Lcg,
};
use super::super::{tone_pair, DIGITS};
use super::*;

mod codec;
mod speech;

const MS: usize = 8;

/// A single digit `digit` as a tone pair with per-tone levels and
/// frequency factors, `on_ms` long, with 100 ms of silence around it.
fn lone_tone(digit: char, levels: (f64, f64), factors: (f64, f64), on_ms: usize) -> Vec<i16> {
    let (low, high) = tone_pair(digit).unwrap();
    let mut pcm = vec![0i16; 100 * MS];
    pcm.extend(tone_pair_pcm(
        (f64::from(low) * factors.0, f64::from(high) * factors.1),
        levels,
        on_ms * MS,
    ));
    pcm.extend(vec![0i16; 100 * MS]);
    pcm
}

fn all_digits() -> String {
    DIGITS.iter().collect()
}

#[test]
fn every_digit_detected_once_in_order_with_its_duration() {
    let pcm = digit_sequence(&all_digits(), -10.0, 100 * MS, 100 * MS);
    let found = digits(&detect(&pcm));
    assert_eq!(found.iter().map(|d| d.0).collect::<String>(), all_digits());
    for (i, &(digit, start, duration)) in found.iter().enumerate() {
        let true_start = (200 * i + 100) * MS;
        let start_error = start as i64 - true_start as i64;
        let duration_error = duration as i64 - 100 * MS as i64;
        assert!(
            start_error.abs() <= 10 * MS as i64,
            "{digit}: start {start_error}"
        );
        assert!(
            duration_error.abs() <= 15 * MS as i64,
            "{digit}: duration {duration_error}"
        );
    }
}

#[test]
fn block_size_does_not_change_events() {
    let pcm = digit_sequence("159#", -12.0, 70 * MS, 60 * MS);
    let reference = detect(&pcm);
    assert_eq!(digit_string(&reference), "159#");
    for block in [1, 7, 53, 106, 333, pcm.len()] {
        let mut detector = DtmfDetector::new();
        let mut events = Vec::new();
        for chunk in pcm.chunks(block) {
            detector.process(chunk, &mut events);
        }
        detector.finish(&mut events);
        assert_eq!(events, reference, "block {block}");
    }
}

#[test]
fn levels_from_minus_25_to_0_dbm0_are_detected() {
    for level in -25..=0 {
        for digit in ['1', '5', '9', 'D', '*'] {
            let l = f64::from(level);
            let pcm = lone_tone(digit, (l, l), (1.0, 1.0), 60);
            assert_eq!(
                digit_string(&detect(&pcm)),
                digit.to_string(),
                "{level} dBm0"
            );
        }
    }
}

#[test]
fn quiet_pairs_are_rejected() {
    for level in [-45.0, -40.0] {
        for digit in DIGITS {
            let pcm = lone_tone(digit, (level, level), (1.0, 1.0), 100);
            assert!(detect(&pcm).is_empty(), "{digit} at {level} dBm0");
        }
    }
}

#[test]
fn twist_limits() {
    for digit in DIGITS {
        // Column 4 dB below the row (normal twist) and 2 or 6 dB above
        // (reverse): accepted, also at the low end of the level range.
        for levels in [
            (-10.0, -14.0),
            (-12.0, -10.0),
            (-14.0, -8.0),
            (-22.0, -26.0),
            (-25.0, -23.0),
        ] {
            let pcm = lone_tone(digit, levels, (1.0, 1.0), 60);
            assert_eq!(digit_string(&detect(&pcm)), digit.to_string(), "{levels:?}");
        }
        // 10 dB either way: rejected.
        for levels in [(-5.0, -15.0), (-15.0, -5.0)] {
            let pcm = lone_tone(digit, levels, (1.0, 1.0), 100);
            assert!(detect(&pcm).is_empty(), "{digit} {levels:?}");
        }
    }
}

#[test]
fn twenty_five_ms_is_too_short_and_45_ms_is_enough() {
    for digit in DIGITS {
        // Every alignment of the tone against the 53-sample half-blocks.
        for offset in (0..53).step_by(4) {
            let mut short = vec![0i16; offset];
            short.extend(lone_tone(digit, (-10.0, -10.0), (1.0, 1.0), 25));
            assert!(detect(&short).is_empty(), "{digit} 25 ms, offset {offset}");
            let mut long = vec![0i16; offset];
            long.extend(lone_tone(digit, (-10.0, -10.0), (1.0, 1.0), 45));
            assert_eq!(
                digit_string(&detect(&long)),
                digit.to_string(),
                "offset {offset}"
            );
        }
    }
}

/// The frequency deviations measured at the shifted tones of `digit`:
/// in single windows, and averaged over every run of [`START_WINDOWS`]
/// windows (as the start decision does), all lying wholly inside the tone.
fn measured_deviations(digit: char, factors: (f64, f64)) -> (Vec<f32>, Vec<f32>) {
    let index = DIGITS.iter().position(|&d| d == digit).unwrap();
    let (low, high) = tone_pair(digit).unwrap();
    let pcm = tone_pair_pcm(
        (f64::from(low) * factors.0, f64::from(high) * factors.1),
        (-10.0, -10.0),
        200 * MS,
    );
    let windows = DtmfDetector::windows(&DetectorConfig::default(), &pcm);
    let (mut single, mut averaged) = (Vec::new(), Vec::new());
    for (tone, factor) in tone_indices(index as u8)
        .into_iter()
        .zip([factors.0, factors.1])
    {
        if factor == 1.0 {
            continue;
        }
        let freq = if tone < 4 {
            ROW_HZ[tone]
        } else {
            COLUMN_HZ[tone - 4]
        };
        single.extend(
            windows
                .iter()
                .map(|(w, _)| DtmfDetector::deviation(w, tone).abs()),
        );
        for run in windows.windows(START_WINDOWS as usize) {
            let (re, im) = run.iter().fold((0f32, 0f32), |a, (w, _)| {
                (a.0 + w.z[tone].0, a.1 + w.z[tone].1)
            });
            averaged.push((im.atan2(re) / drift_of(1.0, freq)).abs());
        }
    }
    (single, averaged)
}

#[test]
fn frequency_deviation_is_measured_to_a_quarter_percent_over_a_start_run() {
    let max = |v: &[f32]| v.iter().copied().fold(0f32, f32::max);
    let min = |v: &[f32]| v.iter().copied().fold(f32::MAX, f32::min);
    let (mut accept, mut reject) = ([0f32; 2], [f32::MAX; 2]);
    for digit in DIGITS {
        for f in [1.015, 0.985] {
            let (single, averaged) = measured_deviations(digit, (f, f));
            accept = [accept[0].max(max(&single)), accept[1].max(max(&averaged))];
        }
        for factors in [(1.035, 1.0), (0.965, 1.0), (1.0, 1.035), (1.0, 0.965)] {
            let (single, averaged) = measured_deviations(digit, factors);
            reject = [reject[0].min(min(&single)), reject[1].min(min(&averaged))];
        }
    }
    println!(
        "±1.5 % tones measure ≤ {:.4} (one window), ≤ {:.4} (run); ±3.5 % tones ≥ {:.4}, ≥ {:.4}",
        accept[0], accept[1], reject[0], reject[1]
    );
    assert!(accept[0] < MAX_WINDOW_DEVIATION);
    assert!(
        accept[1] < 0.0175 && reject[1] > 0.0325,
        "{accept:?} {reject:?}"
    );
}

#[test]
fn frequency_deviation_of_1_5_percent_is_accepted_and_3_5_rejected() {
    for digit in DIGITS {
        for factors in [
            (1.015, 1.015),
            (0.985, 0.985),
            (1.015, 0.985),
            (0.985, 1.015),
        ] {
            let pcm = lone_tone(digit, (-10.0, -10.0), factors, 60);
            assert_eq!(
                digit_string(&detect(&pcm)),
                digit.to_string(),
                "{factors:?}"
            );
        }
        for factors in [(1.035, 1.0), (0.965, 1.0), (1.0, 1.035), (1.0, 0.965)] {
            let pcm = lone_tone(digit, (-10.0, -10.0), factors, 100);
            assert!(detect(&pcm).is_empty(), "{digit} {factors:?}");
        }
    }
}

#[test]
fn a_10_ms_drop_out_is_bridged_and_a_40_ms_pause_separates() {
    for offset in (0..53).step_by(5) {
        let mut pcm = vec![0i16; 100 * MS + offset];
        let tone = digit_sequence("7", -10.0, 60 * MS, 0);
        pcm.extend(&tone);
        pcm.extend(vec![0i16; 10 * MS]);
        pcm.extend(&tone);
        pcm.extend(vec![0i16; 40 * MS]);
        pcm.extend(&tone);
        pcm.extend(vec![0i16; 100 * MS]);
        let found = digits(&detect(&pcm));
        assert_eq!(found.len(), 2, "offset {offset}: {found:?}");
        // The first digit spans both halves around the drop-out.
        assert!(found[0].2 >= 120 * MS as u64, "{found:?}");
    }
}

#[test]
fn digits_in_noise_at_15_db_snr_are_detected() {
    let pcm = digit_sequence(&all_digits(), -10.0, 60 * MS, 60 * MS);
    // Noise 15 dB below the tone pair's power (−10 dBm0 per tone).
    let pair_power = power(&digit_sequence("5", -10.0, 8000, 0));
    let sigma = (pair_power / 10f64.powf(1.5)).sqrt();
    for seed in 1..=4 {
        let mut lcg = Lcg::new(seed);
        let noisy: Vec<i16> = pcm
            .iter()
            .map(|&s| {
                (f64::from(s) + sigma * lcg.gauss())
                    .round()
                    .clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        assert_eq!(digit_string(&detect(&noisy)), all_digits(), "seed {seed}");
    }
}

#[test]
fn clipped_loud_digits_are_detected() {
    let pcm = gain(&digit_sequence(&all_digits(), 0.0, 60 * MS, 60 * MS), 3.0);
    assert_eq!(digit_string(&detect(&pcm)), all_digits());
}

#[test]
fn in_tone_follows_the_tone() {
    let tone = digit_sequence("0", -10.0, 200 * MS, 0);
    let mut detector = DtmfDetector::new();
    let mut events = Vec::new();
    detector.process(&vec![0i16; 800], &mut events);
    assert!(!detector.in_tone());
    detector.process(&tone[..400], &mut events);
    assert!(detector.in_tone(), "after 50 ms of tone");
    assert!(events.is_empty() || detector.current_digit() == Some('0'));
    detector.process(&tone[400..], &mut events);
    assert_eq!(detector.current_digit(), Some('0'));
    detector.process(&vec![0i16; 800], &mut events);
    assert!(!detector.in_tone());
    assert_eq!(detector.current_digit(), None);
    assert_eq!(digit_string(&events), "0");
    assert_eq!(detector.position(), 800 + 1600 + 800);
}

#[test]
fn events_go_into_the_callers_vec_without_growing_it() {
    // The detector appends into the caller's Vec only.
    let pcm = digit_sequence("12", -10.0, 100 * MS, 100 * MS);
    let mut detector = DtmfDetector::new();
    let mut events = Vec::with_capacity(8);
    let capacity = events.capacity();
    for block in pcm.chunks(160) {
        detector.process(block, &mut events);
    }
    assert_eq!(events.capacity(), capacity);
    assert_eq!(events.len(), 4);
}

#[test]
fn clean_tones_have_the_expected_window_measurements() {
    let (mut low, mut high, mut worst) = (f32::MAX, f32::MIN, 0f32);
    for (index, digit) in DIGITS.iter().enumerate() {
        let pcm = digit_sequence(&digit.to_string(), -10.0, 400 * MS, 0);
        let windows = DtmfDetector::windows(&DetectorConfig::default(), &pcm);
        assert_eq!(windows.len(), 400 * MS / HALF_BLOCK - 1);
        for (w, decision) in &windows {
            assert_eq!(*decision, Ok(index as u8), "{w:?}");
            let fraction = DtmfDetector::tone_fraction(w);
            (low, high) = (low.min(fraction), high.max(fraction));
            // On frequency: the measured deviation is only the other
            // tone's leakage into each 53-sample half-block.
            for tone in [index / 4, 4 + index % 4] {
                worst = worst.max(DtmfDetector::deviation(w, tone).abs());
            }
        }
    }
    println!("clean tone fraction {low:.3}..{high:.3}, deviation ≤ {worst:.4}");
    assert!(low > 0.85 && high < 1.15, "{low} {high}");
    assert!(worst < 0.01, "{worst}");
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        blocks in proptest::collection::vec(proptest::collection::vec(any::<i16>(), 0..400), 0..20)
    ) {
        let mut detector = DtmfDetector::new();
        let mut events = Vec::new();
        let mut total = 0u64;
        for block in &blocks {
            detector.process(block, &mut events);
            total += block.len() as u64;
        }
        detector.finish(&mut events);
        prop_assert_eq!(detector.position(), total);
        prop_assert_eq!(events.len() % 2, 0);
    }

    #[test]
    fn extreme_repeating_patterns_never_panic(value in any::<i16>(), period in 1usize..20) {
        let pcm: Vec<i16> = (0..4000).map(|n| if n % period == 0 { value } else { value / -2 }).collect();
        let mut events = Vec::new();
        let mut detector = DtmfDetector::new();
        detector.process(&pcm, &mut events);
        detector.finish(&mut events);
        prop_assert_eq!(events.len() % 2, 0);
    }
}
