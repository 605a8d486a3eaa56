//! The exported per-call measurements: ERL, ERLE, bulk delay, double-talk
//! ratio, convergence.

use super::signals::{g168_models, looped, noise, pcap_speech};
use super::{at_level, cfg, EchoPath, Scenario, RATE};
use crate::aec::{EchoCanceller, EchoStats};

fn speech(seconds: f64) -> Vec<f64> {
    at_level(
        &looped(&pcap_speech(), 0, (seconds * RATE as f64) as usize),
        -13.0,
    )
}

#[test]
fn erl_and_erle_are_reported() {
    let far = speech(12.0);
    for path in g168_models() {
        for erl_db in [6.0, 10.0, 15.0] {
            let r = Scenario {
                path: &path,
                far: &far,
                erl_db,
                talker: None,
                noise_dbm0: -65.0,
                g711: false,
                cfg: cfg(64, true),
            }
            .run();
            let s = r.stats_at(12.0);
            let measured = r.linear_erle(9.0, 12.0).min(r.erle(9.0, 12.0));
            println!(
                "{} ERL {erl_db}: reported ERL {:.1} dB, ERLE {:.1} dB (measured {measured:.1}), \
                 DT ratio {:.3}, converged {}",
                path.name, s.erl_db, s.erle_db, s.double_talk_ratio, s.converged
            );
            assert!(
                (s.erl_db - erl_db as f32).abs() <= 2.0,
                "{}: {s:?}",
                path.name
            );
            assert!(s.converged, "{}: {s:?}", path.name);
            assert!(s.erle_db >= 30.0, "{}: {s:?}", path.name);
            assert!(s.double_talk_ratio <= 0.1, "{}: {s:?}", path.name);
        }
    }
}

/// A pure delay: the largest tap is exactly the delay.
#[test]
fn pure_delay_is_reported_exactly() {
    let far = at_level(&noise(5 * RATE, 11), -15.0);
    for (delay_ms, tail_ms) in [(0usize, 64u32), (5, 64), (20, 64), (63, 64), (100, 128)] {
        let path = EchoPath {
            name: format!("delay {delay_ms} ms"),
            response: vec![1.0],
            delay: delay_ms * 8,
        };
        let r = Scenario {
            path: &path,
            far: &far,
            erl_db: 6.0,
            talker: None,
            noise_dbm0: -65.0,
            g711: false,
            cfg: cfg(tail_ms, true),
        }
        .run();
        let s = r.stats_at(5.0);
        println!("{}: {s:?}", path.name);
        assert!(
            (s.delay_ms - delay_ms as f32).abs() < 0.2,
            "{}: {s:?}",
            path.name
        );
    }
}

/// G.168 models behind a known pure delay: the reported bulk delay is the
/// delay plus the model's own peak position, within 2 ms.
#[test]
fn bulk_delay_of_the_g168_models() {
    let far = speech(8.0);
    for path in g168_models() {
        let delayed = EchoPath {
            delay: 30 * 8,
            ..path.clone()
        };
        let r = Scenario {
            path: &delayed,
            far: &far,
            erl_db: 6.0,
            talker: None,
            noise_dbm0: -65.0,
            g711: false,
            cfg: cfg(64, true),
        }
        .run();
        let expected = delayed.bulk_delay() as f32 / 8.0;
        let s = r.stats_at(8.0);
        println!(
            "{} + 30 ms: delay {:.2} ms (expected {expected:.2})",
            path.name, s.delay_ms
        );
        assert!((s.delay_ms - expected).abs() <= 2.0, "{}: {s:?}", path.name);
    }
}

#[test]
fn reset_forgets_the_call() {
    let far = speech(4.0);
    let path = &g168_models()[0];
    let echo = path.echo(&far, 6.0);
    let x: Vec<i16> = far.iter().map(|v| *v as i16).collect();
    let d: Vec<i16> = echo.iter().map(|v| *v as i16).collect();
    let mut aec = EchoCanceller::new(cfg(64, true)).unwrap();
    let mut out = vec![0; x.len()];
    aec.process(&x, &d, &mut out);
    assert!(aec.stats().converged);
    aec.reset();
    let fresh = EchoCanceller::new(cfg(64, true)).unwrap();
    assert_eq!(aec.stats(), fresh.stats());
    assert_eq!(
        aec.stats(),
        EchoStats {
            delay_ms: 63.875,
            ..EchoStats::default()
        }
    );
}
