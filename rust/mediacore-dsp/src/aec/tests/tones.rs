//! Narrow-band far-end signals (G.168 §6.4.2.7, test 6): a tone excites
//! one direction of the tap space; the canceller must not diverge on it
//! (output never louder than its input) and must converge again on speech.

use super::signals::{g168_models, g168_tones, looped, pcap_speech, tones};
use super::{at_level, cfg, db, power, to_f64, EchoPath, Run, Scenario, RATE};

const ERL_DB: f64 = 6.0;
const TONE_DBM0: f64 = -10.0;
const SPEECH_DBM0: f64 = -13.0;

fn run(path: &EchoPath, far: &[f64]) -> Run {
    Scenario {
        path,
        far,
        erl_db: ERL_DB,
        talker: None,
        noise_dbm0: -65.0,
        g711: false,
        cfg: cfg(64, false),
    }
    .run()
}

/// Worst 1 s window of output-over-input power in `[from, to)`, dB.
fn worst_gain(r: &Run, from: f64, to: f64) -> f64 {
    let mut worst = f64::MIN;
    let mut t = from;
    while t + 1.0 <= to + 1e-9 {
        let s = super::span(t, t + 1.0, r.out.len());
        let gain = db(
            power(&to_f64(&r.out[s.clone()])),
            power(&to_f64(&r.near[s])),
        );
        worst = worst.max(gain);
        t += 1.0;
    }
    worst
}

fn speech(seconds: f64) -> Vec<f64> {
    at_level(
        &looped(&pcap_speech(), 0, (seconds * RATE as f64) as usize),
        SPEECH_DBM0,
    )
}

/// 10 s of a 1 kHz tone from the start, then speech.
#[test]
fn tone_first_then_speech_converges() {
    let tone = at_level(&tones(10 * RATE, &[1000.0, 0.0]), TONE_DBM0);
    let far: Vec<f64> = tone.into_iter().chain(speech(15.0)).collect();
    for path in g168_models() {
        let r = run(&path, &far);
        let gain = worst_gain(&r, 0.0, 10.0);
        let after = r.linear_erle(17.0, 25.0);
        println!(
            "{}: 1 kHz worst out/in {gain:+.1} dB, speech ERLE after {after:.1} dB",
            path.name
        );
        assert!(
            gain <= 0.0,
            "{}: output {gain:+.1} dB over input on the tone",
            path.name
        );
        assert!(
            after >= 40.0,
            "{}: ERLE after the tone {after:.1} dB",
            path.name
        );
    }
}

/// Converged on speech, then each G.168 test-6 tone or DTMF pair for 5 s,
/// then speech again: no divergence on the tones, and the speech ERLE
/// afterwards at least 40 dB and within 6 dB of a run that never saw them
/// (the tones leave the filter tuned to them; speech re-trains it).
#[test]
fn g168_tones_after_convergence_do_not_diverge() {
    let list = g168_tones();
    assert!(list.len() >= 8, "{list:?}");
    let tone_seconds = 5 * list.len();
    let mut far = speech(8.0);
    for (f1, f2) in &list {
        far.extend(at_level(&tones(5 * RATE, &[*f1, *f2]), TONE_DBM0));
    }
    let tones_end = 8.0 + tone_seconds as f64;
    far.extend(speech(12.0));
    // The reference hears the same speech with silence instead of tones.
    let reference_far: Vec<f64> = far
        .iter()
        .enumerate()
        .map(|(n, v)| {
            let t = n as f64 / RATE as f64;
            if (8.0..tones_end).contains(&t) {
                0.0
            } else {
                *v
            }
        })
        .collect();
    for path in g168_models() {
        let r = run(&path, &far);
        let reference = run(&path, &reference_far);
        let gain = worst_gain(&r, 8.0, tones_end);
        let window = (tones_end + 1.0, tones_end + 12.0);
        let after = r.linear_erle(window.0, window.1);
        let expected = reference.linear_erle(window.0, window.1);
        println!(
            "{}: tones worst out/in {gain:+.1} dB, speech ERLE after {after:.1} dB ({expected:.1} without tones)",
            path.name
        );
        assert!(
            gain <= 0.0,
            "{}: output {gain:+.1} dB over input on tones",
            path.name
        );
        assert!(
            after >= 40.0 && after >= expected - 6.0,
            "{}: ERLE after tones {after:.1} dB, {expected:.1} dB without",
            path.name
        );
    }
}
