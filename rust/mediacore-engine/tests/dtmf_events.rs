//! RFC 4733 telephone-events from a party are reported exactly once per digit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mediacore_engine::{Channel, CodecSpec, Event, EventKind, Session, SessionId, Side};

fn event_packet(seq: u16, ts: u32, digit: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut p = vec![0x80, 101];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234u32.to_be_bytes());
    p.extend_from_slice(&[digit, if end { 0x80 | 10 } else { 10 }]);
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

fn dtmf_session() -> Session {
    let mut sp = spec();
    for leg in [&mut sp.caller, &mut sp.callee] {
        leg.codecs = vec![
            CodecSpec::new(8, "PCMA", 8000),
            CodecSpec::new(101, "telephone-event", 8000),
        ];
    }
    Session::new(SessionId(7), sp, Instant::now()).unwrap()
}

fn digits(s: &mut Session) -> Vec<(char, u32, bool)> {
    std::iter::from_fn(|| s.poll_event())
        .filter_map(|e: Event| match e.kind {
            EventKind::Dtmf {
                inband: false,
                digit,
                duration_ms,
                ended,
                ..
            } => Some((digit, duration_ms, ended)),
            _ => None,
        })
        .collect()
}

/// One digit as a sender emits it: updates every 50 ms, then the end packet three times.
fn send_digit(s: &mut Session, t0: Instant, seq: &mut u16, ts: u32, digit: u8, with_end: bool) {
    for k in 1..=4u16 {
        s.handle_packet(
            t0,
            Side::Caller,
            Channel::Rtp,
            addr(CALLER),
            &mut event_packet(*seq, ts, digit, false, k * 400),
        );
        *seq += 1;
    }
    if with_end {
        for _ in 0..3 {
            s.handle_packet(
                t0,
                Side::Caller,
                Channel::Rtp,
                addr(CALLER),
                &mut event_packet(*seq, ts, digit, true, 2000),
            );
        }
        *seq += 1;
    }
}

#[test]
fn each_digit_once_despite_three_end_packets() {
    let mut s = dtmf_session();
    let t0 = Instant::now();
    let mut seq = 1;
    for (i, d) in [1u8, 10, 11, 15].into_iter().enumerate() {
        send_digit(&mut s, t0, &mut seq, 8000 * (i as u32 + 1), d, true);
    }
    assert_eq!(
        digits(&mut s),
        vec![
            ('1', 250, true),
            ('*', 250, true),
            ('#', 250, true),
            ('D', 250, true)
        ]
    );
}

#[test]
fn a_lost_end_is_closed_by_the_next_digit_or_by_time() {
    let mut s = dtmf_session();
    let t0 = Instant::now();
    let mut seq = 1;
    send_digit(&mut s, t0, &mut seq, 8000, 5, false);
    send_digit(&mut s, t0, &mut seq, 16000, 6, false);
    assert_eq!(digits(&mut s), vec![('5', 200, false)]);
    let later = t0 + Duration::from_millis(600);
    assert!(s.poll_timeout().is_some_and(|t| t <= later));
    s.handle_timeout(later);
    assert_eq!(digits(&mut s), vec![('6', 200, false)]);
}

#[test]
fn the_same_digit_twice_is_two_digits() {
    let mut s = dtmf_session();
    let t0 = Instant::now();
    let mut seq = 1;
    send_digit(&mut s, t0, &mut seq, 8000, 3, true);
    send_digit(&mut s, t0, &mut seq, 12000, 3, true);
    assert_eq!(digits(&mut s).len(), 2);
}

#[test]
fn without_a_negotiated_telephone_event_nothing_is_reported() {
    let t0 = Instant::now();
    let mut s = Session::new(SessionId(1), spec(), t0).unwrap();
    let mut seq = 1;
    send_digit(&mut s, t0, &mut seq, 8000, 3, true);
    assert!(digits(&mut s).is_empty());
}

#[test]
fn inband_digits_in_a_transcoded_stream_are_reported() {
    use mediacore_dsp::codec::g711;
    use mediacore_dsp::dtmf::DtmfGenerator;
    let mut sp = spec();
    sp.caller.codecs = vec![CodecSpec::new(8, "PCMA", 8000)];
    sp.callee.codecs = vec![CodecSpec::new(0, "PCMU", 8000)];
    let mut s = Session::new(SessionId(3), sp, Instant::now()).unwrap();
    // "7", "#" as tones: 100 ms on, 100 ms off, in 20 ms PCMA packets.
    let mut pcm = Vec::new();
    for d in ['7', '#'] {
        let mut g = DtmfGenerator::new(d, -10.0, 800).unwrap();
        let mut buf = vec![0i16; 800];
        g.fill(&mut buf);
        pcm.extend(buf);
        pcm.extend(std::iter::repeat_n(0i16, 800));
    }
    let t0 = Instant::now();
    for (i, chunk) in pcm.chunks_exact(160).enumerate() {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&(i as u16).to_be_bytes());
        p.extend_from_slice(&(i as u32 * 160).to_be_bytes());
        p.extend_from_slice(&5u32.to_be_bytes());
        p.extend(chunk.iter().map(|&x| g711::alaw_encode(x)));
        // Played out of the jitter buffer: packets at their own times, timers run.
        let now = t0 + Duration::from_millis(20 * i as u64);
        while let Some(due) = s.poll_timeout().filter(|d| *d <= now) {
            s.handle_timeout(due);
        }
        s.handle_packet(now, Side::Caller, Channel::Rtp, addr(CALLER), &mut p);
        while let Some(tx) = s.poll_transmit() {
            s.recycle(tx.data);
        }
    }
    let end = t0 + Duration::from_secs(1);
    while let Some(due) = s.poll_timeout().filter(|d| *d <= end) {
        s.handle_timeout(due);
        while let Some(tx) = s.poll_transmit() {
            s.recycle(tx.data);
        }
    }
    let got: Vec<(char, u32)> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e.kind {
            EventKind::Dtmf {
                inband: true,
                digit,
                duration_ms,
                ..
            } => Some((digit, duration_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(got.iter().map(|g| g.0).collect::<String>(), "7#");
    assert!(got.iter().all(|g| (85..=115).contains(&g.1)), "{got:?}");
}
