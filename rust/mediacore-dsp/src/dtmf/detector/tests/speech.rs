//! No false digits on speech: SIPp's recorded speech and synthetic speech.
//!
//! Besides the zero-digit assertion, each test checks and prints two
//! margins: how many single windows pass every per-window check with the
//! default tuning (and the longest run of them, against the
//! [`START_WINDOWS`] needed to start a digit), and the longest run under a
//! deliberately relaxed tuning (tone fraction 0.5, relative peak 6 dB),
//! which must still stay short of a digit. It also prints the largest tone
//! energy fraction among windows that passed the level, twist and
//! relative-peak checks (against [`MIN_TONE_FRACTION`]).

use super::super::super::test_signal::{detect, gain, speech_like};
use super::*;
use crate::codec::g711::alaw_decode;
use crate::test_pcap::pcap_rtp_payloads;

const SIPP_SPEECH: &str = "/usr/share/sip-tester/g711a.pcap";

#[derive(Debug, Default)]
pub(super) struct Margins {
    pub(super) windows: usize,
    pub(super) accepted: usize,
    pub(super) longest_run: usize,
    pub(super) max_fraction: f32,
    /// Rejections by reason: level, twist, relative peak, fraction, frequency.
    pub(super) rejects: [usize; 5],
}

pub(super) fn margins(config: &DetectorConfig, pcm: &[i16]) -> Margins {
    let mut m = Margins::default();
    let mut run = (None, 0usize);
    for (w, decision) in DtmfDetector::windows(config, pcm) {
        m.windows += 1;
        match decision {
            Ok(d) => {
                m.accepted += 1;
                run = if run.0 == Some(d) {
                    (run.0, run.1 + 1)
                } else {
                    (Some(d), 1)
                };
                m.longest_run = m.longest_run.max(run.1);
            }
            Err(reason) => {
                run = (None, 0);
                m.rejects[reason as usize] += 1;
            }
        }
        if matches!(decision, Ok(_) | Err(Reject::Fraction | Reject::Frequency)) {
            m.max_fraction = m.max_fraction.max(DtmfDetector::tone_fraction(&w));
        }
    }
    m
}

fn relaxed() -> DetectorConfig {
    DetectorConfig {
        min_tone_fraction: 0.5,
        relative_peak_db: 6.0,
        ..DetectorConfig::default()
    }
}

/// Asserts no digits and the margins described above; returns them.
fn assert_no_digits(pcm: &[i16], what: &str) {
    let events = detect(pcm);
    assert!(events.is_empty(), "{what}: {events:?}");
    let strict = margins(&DetectorConfig::default(), pcm);
    let loose = margins(&relaxed(), pcm);
    println!(
        "{what}: {strict:?}; relaxed: {} windows accepted, longest run {}",
        loose.accepted, loose.longest_run
    );
    assert!(strict.longest_run < 2, "{what}: {strict:?}");
    assert!(
        loose.longest_run < START_WINDOWS as usize,
        "{what}: {loose:?}"
    );
}

/// SIPp's speech sample (7.08 s of A-law), decoded; `None` if absent.
pub(super) fn sipp_speech() -> Option<Vec<i16>> {
    let payloads = pcap_rtp_payloads(SIPP_SPEECH)?;
    assert_eq!(payloads.len(), 236);
    assert!(payloads.iter().all(|p| p.len() == 240));
    Some(payloads.iter().flatten().map(|&c| alaw_decode(c)).collect())
}

#[test]
fn sipp_speech_looped_yields_no_digits() {
    let Some(speech) = sipp_speech() else {
        println!("skipped: {SIPP_SPEECH} not found (Debian package sip-tester)");
        return;
    };
    // 236 packets of 30 ms: 7.08 s, looped 10 times. The loop is not
    // aligned to the 53-sample half-blocks, so each pass is analysed at a
    // different phase.
    let looped: Vec<i16> = speech
        .iter()
        .copied()
        .cycle()
        .take(10 * speech.len())
        .collect();
    assert_eq!(looped.len(), 566_400);
    for db in [0.0, 6.0, -6.0, 12.0, -20.0] {
        assert_no_digits(&gain(&looped, db), &format!("SIPp speech ×10 {db:+} dB"));
    }
}

#[test]
fn synthetic_speech_yields_no_digits() {
    for seed in [1, 2, 3, 4] {
        let speech = speech_like(60 * 8000, seed);
        for db in [0.0, 8.0] {
            assert_no_digits(
                &gain(&speech, db),
                &format!("synthetic speech seed {seed} {db:+} dB"),
            );
        }
    }
}

#[test]
fn speech_with_digits_keeps_the_digits() {
    // Digits during speech (talk-over) at 10 dB above the speech level.
    let Some(speech) = sipp_speech() else {
        println!("skipped: {SIPP_SPEECH} not found");
        return;
    };
    let digits = digit_sequence(&all_digits(), -10.0, 80 * MS, 80 * MS);
    let quiet = gain(&speech, -10.0);
    let mixed: Vec<i16> = digits
        .iter()
        .zip(quiet.iter().cycle())
        .map(|(&d, &s)| d.saturating_add(s))
        .collect();
    assert_eq!(digit_string(&detect(&mixed)), all_digits());
}
