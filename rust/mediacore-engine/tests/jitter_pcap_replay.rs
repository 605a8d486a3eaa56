//! pcap replay through the jitter buffer: SIPp's G.711 speech capture (`g711a.pcap`, 236
//! packets of 30 ms) fed to a transcoding session (PCMA 30 ms in, PCMU 20 ms out) at its own
//! capture times, then with seeded, reproducible jitter (40 ms σ), reordering, duplicates and
//! burst loss; faster than real time through the sans-IO `Session` (packets at their arrival
//! times, `handle_timeout` at every `poll_timeout`).
//!
//! The figures each scenario prints are recorded in `docs/jitter-buffer.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::{Duration, Instant};

use common::pcap::{rtp_packets, SIPP_SPEECH};
use common::*;
use mediacore_dsp::codec::g711;
use mediacore_dsp::jitter::JitterStats;
use mediacore_engine::{Channel, CodecSpec, JitterBufferSpec, Session, SessionId, Side};
use mediacore_proto::RtpHeader;

/// Numerical Recipes LCG: reproducible jitter.
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

/// The capture looped `loops` times as one stream (sequence numbers and timestamps continue),
/// each packet with its send time: the capture's own timing, loop after loop.
fn capture_stream(loops: usize) -> Vec<(f64, Vec<u8>)> {
    let packets = rtp_packets(SIPP_SPEECH).expect("SIPp's g711a.pcap (Debian sip-tester)");
    assert_eq!(packets.len(), 236);
    let period_ms = 236.0 * 30.0;
    let mut out = Vec::new();
    for l in 0..loops {
        for (i, p) in packets.iter().enumerate() {
            let k = (l * packets.len() + i) as u32;
            let mut rtp = p.rtp.clone();
            rtp[1] &= 0x7f; // the capture's marker belongs to its first packet only
            rtp[2..4].copy_from_slice(&(1000u16.wrapping_add(k as u16)).to_be_bytes());
            rtp[4..8].copy_from_slice(&(50_000 + 240 * k).to_be_bytes());
            rtp[8..12].copy_from_slice(&0x5EED_u32.to_be_bytes());
            out.push((l as f64 * period_ms + p.time_us as f64 / 1000.0, rtp));
        }
    }
    out
}

struct Network {
    /// Extra one-way delay of packet `k` sent at `t` ms.
    jitter: fn(&mut Lcg, usize, f64) -> f64,
    /// Probability that a packet is swapped with the next one.
    reorder: f64,
    duplicate: f64,
    lost: fn(usize) -> bool,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            jitter: |_, _, _| 0.0,
            reorder: 0.0,
            duplicate: 0.0,
            lost: |_| false,
        }
    }
}

struct Outcome {
    /// Jitter-buffer statistics after every playout period, with its time (ms).
    trace: Vec<(f64, JitterStats)>,
    stats: JitterStats,
    /// Decoded output audio, placed by its RTP timestamp (silence in pauses).
    output: Vec<i16>,
    injected_duplicates: u64,
    reordered_sends: u64,
}

impl Outcome {
    fn between(&self, from_ms: f64, to_ms: f64) -> impl Iterator<Item = &JitterStats> {
        self.trace
            .iter()
            .filter(move |(t, _)| (from_ms..to_ms).contains(t))
            .map(|(_, s)| s)
    }
    fn mean_delay(&self, from_ms: f64, to_ms: f64) -> f32 {
        let (sum, n) = self
            .between(from_ms, to_ms)
            .fold((0.0, 0), |(s, n), st| (s + st.current_delay_ms, n + 1));
        sum / n.max(1) as f32
    }
    fn max_delay(&self, from_ms: f64, to_ms: f64) -> f32 {
        self.between(from_ms, to_ms)
            .map(|s| s.current_delay_ms)
            .fold(0.0, f32::max)
    }
    /// (concealed ms, played ms) between two times.
    fn concealed(&self, from_ms: f64, to_ms: f64) -> (u64, u64) {
        let first = self.between(from_ms, to_ms).next().copied().unwrap();
        let last = self.between(from_ms, to_ms).last().copied().unwrap();
        (
            last.concealed_ms - first.concealed_ms,
            last.played_ms - first.played_ms,
        )
    }
}

fn replay(jb: JitterBufferSpec, stream: &[(f64, Vec<u8>)], net: &Network) -> Outcome {
    let mut sp = spec();
    sp.caller.codecs = vec![CodecSpec::new(8, "PCMA", 8000)];
    sp.caller.ptime_ms = 30;
    sp.caller.jitter_buffer = jb;
    sp.callee.codecs = vec![CodecSpec::new(0, "PCMU", 8000)];
    sp.callee.ptime_ms = 20;
    let t0 = Instant::now();
    let mut s = Session::new(SessionId(9), sp, t0).unwrap();

    let mut rng = Lcg(0x5EED_0004);
    let mut arrivals: Vec<(f64, Vec<u8>)> = Vec::new();
    let mut dups = 0;
    for (k, (sent, rtp)) in stream.iter().enumerate() {
        if (net.lost)(k) {
            continue;
        }
        let at = sent + (net.jitter)(&mut rng, k, *sent);
        arrivals.push((at, rtp.clone()));
        if rng.uniform() < net.duplicate {
            arrivals.push((at + 1.0 + 5.0 * rng.uniform(), rtp.clone()));
            dups += 1;
        }
    }
    // Adjacent swaps: the later packet overtakes.
    let mut swaps = 0;
    let mut i = 0;
    while i + 1 < arrivals.len() {
        if rng.uniform() < net.reorder && arrivals[i].1[2..4] != arrivals[i + 1].1[2..4] {
            let later = arrivals[i].0.max(arrivals[i + 1].0);
            arrivals[i].0 = later + 0.5;
            arrivals[i + 1].0 = later;
            swaps += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));

    let at = |ms: f64| t0 + Duration::from_micros((ms * 1000.0) as u64);
    let mut trace = Vec::new();
    let mut sent: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut run_timers = |s: &mut Session, until: Instant, sent: &mut Vec<(u32, Vec<u8>)>| {
        while let Some(due) = s.poll_timeout().filter(|d| *d <= until) {
            s.handle_timeout(due);
            while let Some(tx) = s.poll_transmit() {
                let h = RtpHeader::parse(&tx.data).unwrap();
                sent.push((h.timestamp, h.payload(&tx.data).to_vec()));
                s.recycle(tx.data);
            }
            if let Some(jb) = s.stats(due).caller.jitter_buffer {
                trace.push((due.duration_since(t0).as_secs_f64() * 1000.0, jb.stats));
            }
        }
    };
    for (ms, rtp) in &mut arrivals {
        let now = at(*ms);
        run_timers(&mut s, now, &mut sent);
        s.handle_packet(now, Side::Caller, Channel::Rtp, addr(CALLER), rtp);
        while let Some(tx) = s.poll_transmit() {
            s.recycle(tx.data);
        }
    }
    let end = arrivals.last().map_or(0.0, |a| a.0) + 3000.0;
    run_timers(&mut s, at(end), &mut sent);

    let first_ts = sent.first().map_or(0, |p| p.0);
    let mut output = Vec::new();
    for (ts, payload) in &sent {
        let pos = ts.wrapping_sub(first_ts) as usize;
        if output.len() < pos {
            output.resize(pos, 0);
        }
        output.truncate(pos);
        g711::decode_ulaw(payload, &mut output);
    }
    let stats = s.stats(at(end)).caller.jitter_buffer.unwrap().stats;
    Outcome {
        trace,
        stats,
        output,
        injected_duplicates: dups,
        reordered_sends: swaps,
    }
}

/// The capture decoded: what a perfect receiver would play.
fn reference(stream: &[(f64, Vec<u8>)]) -> Vec<i16> {
    let mut pcm = Vec::new();
    for (_, rtp) in stream {
        g711::decode_alaw(&rtp[12..], &mut pcm);
    }
    pcm
}

/// (Median, 10th percentile) over 40 ms blocks of speech of the normalised correlation between the reference
/// block and the output where it was played (1.0: unchanged). The alignment is tracked block by
/// block (±60 ms around the last one) because the buffer's delay changes; when the track is
/// lost (the delay jumped in a pause) it is found again over ±500 ms.
fn similarity(output: &[i16], reference: &[i16]) -> (f64, f64) {
    const BLOCK: usize = 320;
    let corr = |a: &[i16], b: &[i16]| {
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            ab += f64::from(x) * f64::from(y);
            aa += f64::from(x).powi(2);
            bb += f64::from(y).powi(2);
        }
        ab / (aa * bb).sqrt().max(1.0)
    };
    let best_near = |start: usize, around: i64, span: i64| -> (f64, i64) {
        let block = &reference[start..start + BLOCK];
        (around - span..=around + span)
            .filter_map(|shift| {
                let from = usize::try_from(start as i64 + shift).ok()?;
                let seg = output.get(from..from + BLOCK)?;
                Some((corr(seg, block), shift))
            })
            .fold((f64::MIN, around), |a, b| if b.0 > a.0 { b } else { a })
    };
    let mut shift = 0i64;
    let mut scores = Vec::new();
    let mut start = 0usize;
    while start + BLOCK <= reference.len() {
        let block = &reference[start..start + BLOCK];
        let energy: f64 = block.iter().map(|&s| f64::from(s).powi(2)).sum();
        if energy > BLOCK as f64 * 500.0 * 500.0 {
            let (mut score, mut found) = best_near(start, shift, 480);
            if score < 0.6 {
                (score, found) = best_near(start, shift, 4000);
            }
            if score > 0.6 {
                shift = found;
            }
            scores.push(score);
        }
        start += BLOCK;
    }
    scores.sort_by(f64::total_cmp);
    (scores[scores.len() / 2], scores[scores.len() / 10])
}

#[test]
fn the_captures_own_timing_adds_little_delay_and_conceals_nothing() {
    let stream = capture_stream(3); // 21 s
    let reference = reference(&stream);
    for (name, jb, limit_ms) in [
        // VOS3000 defaults: 20 ms minimum, 60 ms start.
        (
            "defaults (min 20, start 60)",
            JitterBufferSpec::default(),
            25.0,
        ),
        // No floor: what the capture's own jitter needs.
        (
            "min 0, start 20",
            JitterBufferSpec {
                min_ms: 0,
                default_ms: 20,
                ..JitterBufferSpec::default()
            },
            20.0,
        ),
    ] {
        let o = replay(jb, &stream, &Network::default());
        let (concealed, played) = o.concealed(5000.0, 21_000.0);
        let mean = o.mean_delay(5000.0, 21_000.0);
        let max = o.max_delay(5000.0, 21_000.0);
        let (sim, p10) = similarity(&o.output, &reference);
        eprintln!(
            "capture timing, {name}: delay after 5 s mean {mean:.1} ms, max {max:.1} ms; \
             concealed {concealed}/{played} ms; similarity median {sim:.3}, p10 {p10:.3}; {:?}",
            o.stats
        );
        assert!(max <= limit_ms, "{name}: max delay {max} ms");
        assert!(
            concealed * 1000 <= played,
            "{name}: at most 0.1 % concealed"
        );
        assert_eq!((o.stats.late, o.stats.discarded), (0, 0), "{name}");
        assert!(sim > 0.99 && p10 > 0.95, "{name}: similarity {sim} {p10}");
    }
}

#[test]
fn forty_ms_sigma_jitter_is_absorbed_within_seconds_with_graceful_loss() {
    // 28 s: the capture's own timing for 7 s, then 40 ms σ jitter (sum of three uniform
    // 0–80 ms delays) with 2 % adjacent swaps, 1 % duplicates, and two bursts of 5 lost
    // packets (150 ms).
    let stream = capture_stream(4);
    let jitter_from = 7000.0;
    let net = Network {
        jitter: |rng, _, t| {
            if t >= 7000.0 {
                (0..3).map(|_| 80.0 * rng.uniform()).sum()
            } else {
                0.0
            }
        },
        reorder: 0.02,
        duplicate: 0.01,
        lost: |k| (500..505).contains(&k) || (700..705).contains(&k),
    };
    let o = replay(JitterBufferSpec::default(), &stream, &net);
    let settled = o.mean_delay(15_000.0, 28_000.0);
    let settled_target = o
        .between(15_000.0, 28_000.0)
        .map(|s| s.target_delay_ms)
        .sum::<f32>()
        / o.between(15_000.0, 28_000.0).count() as f32;
    let adapted_at = o
        .trace
        .iter()
        .find(|(t, s)| *t >= jitter_from && s.target_delay_ms >= 0.9 * settled_target)
        .map(|(t, _)| t - jitter_from)
        .unwrap();
    // Bursts: packets 500–504 and 700–704 were sent at about 15.0 s and 21.0 s.
    let windows = [
        (10_000.0, 14_800.0),
        (16_000.0, 20_800.0),
        (22_000.0, 28_000.0),
    ];
    let (mut concealed, mut played) = (0, 0);
    for (a, b) in windows {
        let (c, p) = o.concealed(a, b);
        concealed += c;
        played += p;
    }
    let rate = concealed as f64 / played as f64;
    let before = o.mean_delay(3000.0, 7000.0);
    eprintln!(
        "40 ms σ: delay before {before:.1} ms; target reached 90 % of its settled {settled_target:.1} ms \
         {adapted_at:.0} ms after the jitter began; settled delay {settled:.1} ms; concealment \
         outside bursts {concealed}/{played} ms = {:.2} %; swaps {}, duplicates {}; {:?}",
        100.0 * rate,
        o.reordered_sends,
        o.injected_duplicates,
        o.stats
    );
    assert!(adapted_at <= 3000.0, "adapted {adapted_at} ms after onset");
    assert!(rate <= 0.02, "concealment {:.2} %", 100.0 * rate);
    assert!(
        settled <= 200.0 + 5.0,
        "within SS_JITTERBUFFER_MAX: {settled}"
    );
    assert_eq!(o.stats.duplicates, o.injected_duplicates);
    assert!(o.stats.reordered >= o.reordered_sends);
    let reference = reference(&stream);
    let (sim, p10) = similarity(&o.output, &reference);
    eprintln!("40 ms σ: similarity median {sim:.3}, p10 {p10:.3}");
    assert!(sim > 0.95 && p10 > 0.9, "similarity {sim} {p10}");
}
