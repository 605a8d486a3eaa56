//! The optional jitter buffer on a relayed stream: off by default; when a leg asks for it
//! (`jitter_buffer.relay`), its party's packets leave unchanged, in order, re-timed to the
//! sender's own spacing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_engine::{Channel, JitterMode, Session, SessionId, Side, Verdict};

/// Numerical Recipes LCG.
struct Lcg(u64);
impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// (time sent on in µs, bytes) of every packet the caller's 20 ms stream produced toward the
/// callee, when packet k arrives at 20·k ms plus `jitter(k)` ms.
fn relay(
    s: &mut Session,
    t0: Instant,
    packets: usize,
    jitter: impl Fn(usize) -> f64,
) -> Vec<(u64, Vec<u8>)> {
    let mut arrivals: Vec<(f64, usize)> = (0..packets)
        .map(|k| (20.0 * k as f64 + jitter(k), k))
        .collect();
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    let run = |s: &mut Session, until: Instant, out: &mut Vec<(u64, Vec<u8>)>| {
        while let Some(due) = s.poll_timeout().filter(|d| *d <= until) {
            s.handle_timeout(due);
            while let Some(tx) = s.poll_transmit() {
                assert_eq!((tx.via, tx.dest), (Side::Callee, addr(CALLEE)));
                out.push((due.duration_since(t0).as_micros() as u64, tx.data.clone()));
                s.recycle(tx.data);
            }
        }
    };
    for (at, k) in arrivals {
        let now = t0 + Duration::from_micros((at * 1000.0) as u64);
        run(s, now, &mut out);
        let mut p = rtp(k as u16, 160 * k as u32, 0x77);
        match s.handle_packet(now, Side::Caller, Channel::Rtp, addr(CALLER), &mut p) {
            Verdict::Consumed => {}
            Verdict::Forward { via, dest, .. } => {
                assert_eq!((via, dest), (Side::Callee, addr(CALLEE)));
                out.push((now.duration_since(t0).as_micros() as u64, p));
            }
            Verdict::Drop(r) => panic!("{r:?}"),
        }
    }
    run(s, t0 + Duration::from_secs(60), &mut out);
    out
}

fn seq(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[2], p[3]])
}

fn spacing_spread_ms(sent: &[(u64, Vec<u8>)]) -> f64 {
    let gaps: Vec<f64> = sent
        .windows(2)
        .map(|w| (w[1].0 as f64 - w[0].0 as f64) / 1000.0)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt()
}

#[test]
fn relay_is_not_buffered_by_default() {
    let t0 = Instant::now();
    let mut s = Session::new(SessionId(1), spec(), t0).unwrap();
    let sent = relay(&mut s, t0, 50, |k| ((k * 7) % 30) as f64);
    assert_eq!(sent.len(), 50);
    assert!(s.stats(t0).caller.jitter_buffer.is_none());
}

#[test]
fn a_relay_jitter_buffer_restores_the_senders_spacing() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.caller.jitter_buffer.relay = true;
    let mut s = Session::new(SessionId(1), sp, t0).unwrap();
    let mut rng = Lcg(42);
    let jitter: Vec<f64> = (0..500).map(|_| 40.0 * rng.uniform()).collect();
    let sent = relay(&mut s, t0, 500, |k| jitter[k]);
    // Every packet, unchanged, in order.
    assert_eq!(sent.len(), 500);
    for (k, (_, p)) in sent.iter().enumerate() {
        assert_eq!(p, &rtp(k as u16, 160 * k as u32, 0x77));
    }
    let arrival_spread = {
        let mut a: Vec<(u64, Vec<u8>)> = (0..500)
            .map(|k| {
                (
                    (20_000.0 * k as f64 + jitter[k] * 1000.0) as u64,
                    Vec::new(),
                )
            })
            .collect();
        a.sort();
        spacing_spread_ms(&a[250..])
    };
    let spread = spacing_spread_ms(&sent[250..]);
    let jb = s.stats(t0).caller.jitter_buffer.unwrap();
    eprintln!(
        "relay re-timing: arrival spacing σ {arrival_spread:.1} ms, sent on σ {spread:.1} ms; {jb:?}"
    );
    assert!(jb.relay);
    assert_eq!(jb.mode, JitterMode::Adaptive);
    assert!(
        spread < 2.0 && arrival_spread > 10.0,
        "{spread} {arrival_spread}"
    );
    assert!((30.0..=60.0).contains(&jb.stats.target_delay_ms), "{jb:?}");
    assert_eq!(jb.stats.late, 0);
    assert!(
        s.stats(t0).callee.jitter_buffer.is_none(),
        "only the caller's stream"
    );
}

#[test]
fn a_packet_later_than_the_buffer_is_sent_at_once_and_counted() {
    let t0 = Instant::now();
    let mut sp = spec();
    sp.caller.jitter_buffer.relay = true;
    sp.caller.jitter_buffer.mode = JitterMode::Fixed;
    let mut s = Session::new(SessionId(1), sp, t0).unwrap();
    let sent = relay(&mut s, t0, 50, |k| if k == 20 { 150.0 } else { 0.0 });
    assert_eq!(sent.len(), 50, "a relay never drops what it can deliver");
    let order: Vec<u16> = sent.iter().map(|(_, p)| seq(p)).collect();
    let late_at = order.iter().position(|&q| q == 20).unwrap();
    assert!(late_at > 20, "sent after its successors: {order:?}");
    let jb = s.stats(t0).caller.jitter_buffer.unwrap().stats;
    assert_eq!(jb.late, 1, "{jb:?}");
    assert_eq!(jb.target_delay_ms, 60.0);
}
