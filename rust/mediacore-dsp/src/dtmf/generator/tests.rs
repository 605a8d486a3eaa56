//! Generator: exact frequencies, level, phase continuity, duration.

use super::super::test_signal::{dbm0_peak, dft_magnitude, power};
use super::super::{tone_pair, DIGITS};
use super::*;

fn generate(digit: char, level: f32, samples: usize, block: usize) -> Vec<i16> {
    let mut generator = DtmfGenerator::new(digit, level, samples as u64).unwrap();
    let mut out = vec![0i16; samples + 3 * block];
    let mut at = 0;
    loop {
        let end = (at + block).min(out.len());
        let written = generator.fill(&mut out[at..end]);
        if written == 0 {
            break;
        }
        at += written;
    }
    assert!(generator.is_done());
    out.truncate(at);
    out
}

#[test]
fn rejects_unknown_digits_and_bad_levels() {
    assert!(DtmfGenerator::new('E', -10.0, 800).is_none());
    assert!(DtmfGenerator::new('5', f32::NAN, 800).is_none());
    assert!(DtmfGenerator::new('5', f32::INFINITY, 800).is_none());
    assert!(DtmfGenerator::new('5', 0.5, 800).is_none());
    assert!(DtmfGenerator::new('5', -63.0, 800).is_some());
    assert_eq!(
        DtmfGenerator::new('b', -10.0, 800).map(|g| g.digit()),
        Some('B')
    );
}

#[test]
fn frequencies_are_exact() {
    // One second: DFT bins 1 Hz apart, so each Q.23 frequency is a bin and
    // the tone's energy must sit there, not 1 Hz (or 0.5 Hz) to either side.
    for digit in DIGITS {
        let pcm = generate(digit, -10.0, 8000, 160);
        let (low, high) = tone_pair(digit).unwrap();
        for f in [f64::from(low), f64::from(high)] {
            let on = dft_magnitude(&pcm, f);
            let expected = dbm0_peak(-10.0) * 8000.0 / 2.0;
            assert!(
                (on / expected - 1.0).abs() < 0.001,
                "{digit} {f}: {on} vs {expected}"
            );
            for offset in [-1.0, -0.5, 0.5, 1.0] {
                let off = dft_magnitude(&pcm, f + offset);
                assert!(off < on * 0.65, "{digit} {f}{offset:+}: {off} vs {on}");
            }
            // Nothing at the other group's frequencies.
            for other in ROW_HZ_OTHER.iter().chain(&COL_HZ_OTHER) {
                if (other - f).abs() > 1.0 && f64::from(low) != *other && f64::from(high) != *other
                {
                    assert!(dft_magnitude(&pcm, *other) < on * 1e-3);
                }
            }
        }
    }
}

const ROW_HZ_OTHER: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COL_HZ_OTHER: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

#[test]
fn level_is_within_half_a_db() {
    for level in [-40.0f32, -25.0, -10.0, -3.0] {
        for digit in DIGITS {
            let pcm = generate(digit, level, 8000, 160);
            // Two tones of equal level: twice the power of one.
            let expected = 2.0 * dbm0_peak(f64::from(level)).powi(2) / 2.0;
            let error_db = 10.0 * (power(&pcm) / expected).log10();
            assert!(error_db.abs() < 0.5, "{digit} at {level}: {error_db:.3} dB");
            let (low, high) = tone_pair(digit).unwrap();
            let per_tone = [low, high].map(|f| {
                let amplitude = 2.0 * dft_magnitude(&pcm, f64::from(f)) / 8000.0;
                20.0 * (amplitude / dbm0_peak(f64::from(level))).log10()
            });
            assert!(per_tone.iter().all(|e| e.abs() < 0.05), "{per_tone:?}");
        }
    }
}

#[test]
fn phase_is_continuous_across_odd_block_sizes() {
    let reference = generate('9', -6.0, 4000, 4000);
    for block in [1, 3, 7, 53, 79, 159, 161, 997] {
        let pcm = generate('9', -6.0, 4000, block);
        let worst = pcm
            .iter()
            .zip(&reference)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .max();
        assert_eq!(worst, Some(0), "block {block}");
    }
    // And the waveform itself has no jumps: a step between neighbours is
    // bounded by the slope of the pair, A·(ω₁ + ω₂).
    let a = dbm0_peak(-6.0);
    let slope = a * std::f64::consts::TAU * (852.0 + 1477.0) / 8000.0;
    for pair in reference.windows(2) {
        assert!(f64::from(i32::from(pair[1]) - i32::from(pair[0])).abs() <= slope + 1.0);
    }
}

#[test]
fn duration_is_exact() {
    for samples in [0usize, 1, 159, 160, 161, 800, 12_345] {
        for block in [1, 160, 1000] {
            assert_eq!(
                generate('#', -10.0, samples, block).len(),
                samples,
                "{samples} / {block}"
            );
        }
    }
    let mut generator = DtmfGenerator::new('1', -10.0, 100).unwrap();
    let mut out = [7i16; 160];
    assert_eq!(generator.remaining(), 100);
    assert_eq!(generator.fill(&mut out), 100);
    assert!(
        out[100..].iter().all(|&s| s == 7),
        "writes only what it reports"
    );
    assert_eq!(generator.fill(&mut out), 0);
    assert!(generator.is_done());
    assert_eq!(generator.fill(&mut []), 0);
}

#[test]
fn loudest_level_is_clipped_not_wrapped() {
    let pcm = generate('D', 0.0, 800, 160);
    let peak = pcm.iter().map(|&s| i32::from(s).abs()).max().unwrap();
    assert!(peak >= 32767);
    // Clipping keeps the sign: positive peaks stay positive.
    let (low, high) = tone_pair('D').unwrap();
    let ideal: Vec<f64> = (0..800)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            dbm0_peak(0.0)
                * ((std::f64::consts::TAU * f64::from(low) * t).sin()
                    + (std::f64::consts::TAU * f64::from(high) * t).sin())
        })
        .collect();
    for (&s, &x) in pcm.iter().zip(&ideal) {
        assert!(x.abs() < 100.0 || (f64::from(s) > 0.0) == (x > 0.0));
    }
}
