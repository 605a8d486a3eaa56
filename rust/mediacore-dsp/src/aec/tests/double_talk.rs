//! Double talk: once converged, a near-end talker as loud as the echo for
//! 5 s must neither make the filter diverge nor be clipped by the NLP.

use super::signals::{g168_models, looped, pcap_speech};
use super::{at_level, cfg, db, power, Scenario, RATE};

const SECONDS: f64 = 20.0;
const FAR_DBM0: f64 = -13.0;
const ERL_DB: f64 = 6.0;
/// The near-end talker speaks over `[DT_FROM, DT_TO)`, s.
const DT_FROM: f64 = 6.0;
const DT_TO: f64 = 11.0;
/// After double talk: this window is compared with a run without it, s.
const AFTER: (f64, f64) = (11.5, 15.0);

/// A different stretch of the same recording (3 s in), silent outside the
/// double-talk interval, scaled to the echo's power over that interval.
fn talker(len: usize, echo: &[f64]) -> Vec<f64> {
    let speech = pcap_speech();
    let (a, b) = (
        (DT_FROM * RATE as f64) as usize,
        (DT_TO * RATE as f64) as usize,
    );
    let voice = looped(&speech, 3 * RATE, b - a);
    let k = (power(&echo[a..b]) / power(&voice)).sqrt();
    let mut t = vec![0.0; len];
    for (dst, v) in t[a..b].iter_mut().zip(&voice) {
        *dst = v * k;
    }
    t
}

#[test]
fn double_talk_neither_diverges_the_filter_nor_is_clipped() {
    let len = (SECONDS * RATE as f64) as usize;
    let far = at_level(&looped(&pcap_speech(), 0, len), FAR_DBM0);
    println!("model  ERLE before  after (no-DT run)  out/talker during DT (NLP on)  DT ratio");
    for path in g168_models() {
        let scenario = |talker: Option<&[f64]>, nlp: bool| {
            Scenario {
                path: &path,
                far: &far,
                erl_db: ERL_DB,
                talker,
                noise_dbm0: -65.0,
                g711: false,
                cfg: cfg(64, nlp),
            }
            .run()
        };
        let quiet = scenario(None, false);
        let voice = talker(len, &quiet.echo);
        let loud = scenario(Some(&voice), false);
        let before = loud.linear_erle(DT_FROM - 2.0, DT_FROM);
        let after = loud.linear_erle(AFTER.0, AFTER.1);
        let reference = quiet.linear_erle(AFTER.0, AFTER.1);

        let with_nlp = scenario(Some(&voice), true);
        let span = super::span(DT_FROM, DT_TO, len);
        let out: Vec<f64> = with_nlp.out[span.clone()]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let passed = db(power(&out), power(&voice[span]));
        let ratio = with_nlp.stats_at(SECONDS).double_talk_ratio;
        println!(
            "{:<6} {before:>11.1}  {after:>5.1} ({reference:>4.1})  {passed:>+29.1}  {ratio:>8.2}",
            path.name
        );
        assert!(
            after >= reference - 3.0,
            "{}: ERLE after double talk {after:.1} dB, {reference:.1} dB without it",
            path.name
        );
        assert!(
            after >= before - 3.0,
            "{}: ERLE after double talk {after:.1} dB, before {before:.1} dB",
            path.name
        );
        assert!(
            passed.abs() <= 3.0,
            "{}: output during double talk {passed:+.1} dB from the near-end talker",
            path.name
        );
    }
}
