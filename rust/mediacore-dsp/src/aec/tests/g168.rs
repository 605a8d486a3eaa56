//! Convergence and steady-state ERLE on every G.168 Annex D echo path.
//!
//! Run with `--nocapture` to see the per-model table.
//!
//! Figures: "steady" is the ERLE once the far-end material has been heard
//! once (from [`STEADY_FROM`] s: the SIPp speech sample is 6.1 s long, and
//! speech keeps exciting bands the filter has not yet seen until then);
//! "1 s→end" is the whole run after the first second; "at 1 s" is the
//! 250 ms ending at 1 s.

use super::signals::{g168_models, looped, noise, pcap_speech};
use super::{at_level, cfg, EchoPath, Run, Scenario, RATE};

/// Seconds per run.
const SECONDS: f64 = 20.0;
/// Steady state is measured from here to the end, s.
const STEADY_FROM: f64 = 7.0;
const NEAR_NOISE_DBM0: f64 = -65.0;
/// Far-end levels, dBm0: speech at an ordinary talker level, and noise.
const SPEECH_DBM0: f64 = -13.0;
const NOISE_DBM0: f64 = -15.0;

enum Far {
    Speech,
    Noise,
}

fn far_signal(kind: &Far) -> Vec<f64> {
    far_signal_for(kind, SECONDS)
}

fn far_signal_for(kind: &Far, seconds: f64) -> Vec<f64> {
    let len = (seconds * RATE as f64) as usize;
    match kind {
        Far::Speech => at_level(&looped(&pcap_speech(), 0, len), SPEECH_DBM0),
        Far::Noise => at_level(&noise(len, 7), NOISE_DBM0),
    }
}

fn run(path: &EchoPath, far: &[f64], erl_db: f64, g711: bool, nlp: bool, tail_ms: u32) -> Run {
    Scenario {
        path,
        far,
        erl_db,
        talker: None,
        noise_dbm0: NEAR_NOISE_DBM0,
        g711,
        cfg: cfg(tail_ms, nlp),
    }
    .run()
}

/// Every model × far-end signal × ERL, one closure per measured figure.
fn sweep(mut each: impl FnMut(&str, &EchoPath, &[f64], f64) -> Vec<String>) -> Vec<String> {
    let mut failures = Vec::new();
    for (far_name, far) in [
        ("speech", far_signal(&Far::Speech)),
        ("noise", far_signal(&Far::Noise)),
    ] {
        for path in g168_models() {
            for erl_db in [6.0, 10.0] {
                failures.extend(each(far_name, &path, &far, erl_db));
            }
        }
    }
    failures
}

#[test]
fn linear_echo_is_cancelled_by_at_least_40_db_on_every_model() {
    println!("model  far     ERL  linear ERLE: steady  1 s→end  at 1 s   with NLP: steady");
    let failures = sweep(|far_name, path, far, erl_db| {
        let off = run(path, far, erl_db, false, false, 64);
        let on = run(path, far, erl_db, false, true, 64);
        let steady = off.linear_erle(STEADY_FROM, SECONDS);
        let after_1s = off.linear_erle(1.0, SECONDS);
        let early = off.erle(0.75, 1.0);
        let with_nlp = on.erle(STEADY_FROM, SECONDS);
        println!(
            "{:<6} {far_name:<7} {erl_db:>3}  {steady:>19.1}  {after_1s:>7.1}  {early:>6.1}  {with_nlp:>16.1}",
            path.name
        );
        let mut f = Vec::new();
        let what = format!("{} {far_name} ERL {erl_db}", path.name);
        if steady < 40.0 {
            f.push(format!("{what}: steady linear ERLE {steady:.1} dB < 40"));
        }
        if after_1s < 35.0 {
            f.push(format!(
                "{what}: linear ERLE from 1 s {after_1s:.1} dB < 35"
            ));
        }
        if early < 20.0 {
            f.push(format!("{what}: ERLE {early:.1} dB at 0.75..1 s < 20"));
        }
        // With the NLP the output is comfort noise at the background level:
        // at least as good as the linear canceller with the background.
        let raw = off.erle(STEADY_FROM, SECONDS);
        if with_nlp < 40.0 || with_nlp < raw {
            f.push(format!(
                "{what}: ERLE with NLP {with_nlp:.1} dB (NLP off {raw:.1})"
            ));
        }
        f
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn g711_quantised_echo_is_cancelled_by_at_least_30_db_on_every_model() {
    println!("model  far     ERL  ERLE NLP off: steady  1 s→end   with NLP: steady");
    let failures = sweep(|far_name, path, far, erl_db| {
        let off = run(path, far, erl_db, true, false, 64);
        let on = run(path, far, erl_db, true, true, 64);
        let steady = off.erle(STEADY_FROM, SECONDS);
        let after_1s = off.erle(1.0, SECONDS);
        let with_nlp = on.erle(STEADY_FROM, SECONDS);
        println!(
            "{:<6} {far_name:<7} {erl_db:>3}  {steady:>20.1}  {after_1s:>7.1}  {with_nlp:>17.1}",
            path.name
        );
        let what = format!("{} {far_name} ERL {erl_db}", path.name);
        let mut f = Vec::new();
        if after_1s < 30.0 {
            f.push(format!("{what}: G.711 ERLE from 1 s {after_1s:.1} dB < 30"));
        }
        if with_nlp < steady {
            f.push(format!(
                "{what}: NLP made it worse: {with_nlp:.1} < {steady:.1} dB"
            ));
        }
        f
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

/// An echo 70 ms behind the hybrid model is beyond a 64 ms tail (no
/// cancellation to speak of) and within a 128 ms one. Twice the taps
/// converge about half as fast, so the steady state is taken over the last
/// 10 s of a 30 s run.
#[test]
fn echo_delayed_70_ms_needs_the_128_ms_tail() {
    const LONG_SECONDS: f64 = 30.0;
    let far = far_signal_for(&Far::Speech, LONG_SECONDS);
    for path in g168_models() {
        let delayed = EchoPath {
            delay: 70 * 8,
            ..path.clone()
        };
        let steady = |tail_ms| {
            run(&delayed, &far, 6.0, false, false, tail_ms)
                .linear_erle(LONG_SECONDS - 10.0, LONG_SECONDS)
        };
        let (short, long) = (steady(64), steady(128));
        println!(
            "{} + 70 ms: steady linear ERLE, 64 ms tail {short:.1} dB, 128 ms tail {long:.1} dB",
            path.name
        );
        assert!(
            short < 10.0,
            "{}: 64 ms tail cancelled {short:.1} dB",
            path.name
        );
        assert!(long >= 40.0, "{}: 128 ms tail only {long:.1} dB", path.name);
    }
}
