//! Jitter-buffer scenarios on a tiny deterministic network simulator:
//! 20 ms A-law packets cut from real speech (SIPp's `g711a.pcap`, or a
//! synthetic voice when it is absent), delivered with jitter, reordering,
//! duplicates, burst loss and clock drift, pulled every 20 ms, all faster
//! than real time.

use super::*;
use crate::codec::{g711, new_decoder, new_encoder, EncoderOptions};
use proptest::prelude::*;

const PCAP: &str = "/usr/share/sip-tester/g711a.pcap";
const FRAME: usize = 160;

/// Numerical Recipes LCG.
struct Lcg(u64);

impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 8 kHz speech: the RTP payloads of a classic pcap (Ethernet/IPv4/UDP/RTP,
/// PT 8) decoded, or `None` if the file is absent or unparsable.
fn pcap_speech(path: &str) -> Option<Vec<i16>> {
    let mut pcm = Vec::new();
    for p in crate::test_pcap::pcap_rtp(path)?
        .iter()
        .filter(|p| p.pt == 8)
    {
        g711::decode_alaw(&p.payload, &mut pcm);
    }
    (pcm.len() > 8000).then_some(pcm)
}

/// A voice with a wandering pitch, syllables and pauses, for when the
/// capture is missing.
fn synthetic_speech(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let pitch = 120.0 + 30.0 * (2.0 * std::f64::consts::PI * 0.5 * t).sin();
            let phase = 2.0 * std::f64::consts::PI * pitch * t;
            let envelope = (2.0 * std::f64::consts::PI * 2.0 * t).sin().abs();
            let x = envelope
                * (5000.0 * phase.sin()
                    + 2500.0 * (2.0 * phase).sin()
                    + 1200.0 * (3.0 * phase).sin());
            x as i16
        })
        .collect()
}

/// `seconds` of speech, looping the capture.
fn speech(seconds: usize) -> Vec<i16> {
    let samples = seconds * 8000;
    match pcap_speech(PCAP) {
        Some(pcm) => pcm.iter().copied().cycle().take(samples).collect(),
        None => synthetic_speech(samples),
    }
}

#[derive(Clone)]
struct Scenario {
    seconds: usize,
    /// One-way delay beyond the fixed 30 ms path for packet `k`, ms.
    jitter: fn(&mut Lcg, usize) -> f64,
    reorder: f64,
    duplicate: f64,
    /// Packet indices that are lost.
    lost: fn(usize) -> bool,
    /// Receiver clock rate relative to the sender's, minus one.
    drift: f64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seconds: 20,
            jitter: |rng, _| 10.0 * rng.next_f64(),
            reorder: 0.0,
            duplicate: 0.0,
            lost: |_| false,
            drift: 0.0,
        }
    }
}

struct Outcome {
    input: Vec<i16>,
    output: Vec<i16>,
    /// Stats after every pull, with the pull's time.
    trace: Vec<(u64, JitterStats)>,
    stats: JitterStats,
    injected_swaps: u64,
    injected_duplicates: u64,
    /// First copies that arrived after a higher sequence number.
    expected_reordered: u64,
    drift: f64,
}

fn run(cfg: JitterConfig, scenario: &Scenario) -> Outcome {
    run_with(cfg, scenario, CodecKind::Pcma)
}

fn run_with(cfg: JitterConfig, scenario: &Scenario, kind: CodecKind) -> Outcome {
    let input = speech(scenario.seconds);
    let mut encoder = new_encoder(kind, EncoderOptions::default()).unwrap();
    let mut rng = Lcg(0x5eed);
    // (arrival, seq, ts, payload)
    let mut events: Vec<(f64, u16, u32, Vec<u8>)> = Vec::new();
    let packets = input.len() / FRAME;
    let mut swaps = 0;
    let mut dups = 0;
    for k in 0..packets {
        let mut payload = Vec::new();
        encoder
            .encode(&input[k * FRAME..(k + 1) * FRAME], &mut payload)
            .unwrap();
        if (scenario.lost)(k) {
            continue;
        }
        let sent = 20.0 * k as f64;
        let arrival = (sent + 30.0 + (scenario.jitter)(&mut rng, k)) * (1.0 + scenario.drift);
        let seq = 65000u16.wrapping_add(k as u16);
        let ts = 4_294_960_000u32.wrapping_add((k * FRAME) as u32);
        events.push((arrival, seq, ts, payload.clone()));
        if rng.next_f64() < scenario.duplicate {
            events.push((arrival + 1.0 + 5.0 * rng.next_f64(), seq, ts, payload));
            dups += 1;
        }
    }
    // Adjacent swaps: the later packet overtakes.
    let mut i = 0;
    while i + 1 < events.len() {
        if events[i].1 != events[i + 1].1 && rng.next_f64() < scenario.reorder {
            let later = events[i + 1].0.max(events[i].0);
            events[i].0 = later + 0.5;
            events[i + 1].0 = later;
            swaps += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut seen = std::collections::HashSet::new();
    let mut highest = None;
    let mut expected_reordered = 0;
    for (_, seq, _, _) in &events {
        let k = seq.wrapping_sub(65000);
        if seen.insert(k) {
            if highest.is_some_and(|h| k < h) {
                expected_reordered += 1;
            }
            highest = highest.max(Some(k));
        }
    }

    let mut jb = JitterBuffer::new(cfg).unwrap();
    let mut decoder = new_decoder(kind).unwrap();
    let mut output = Vec::with_capacity(input.len() + 8000);
    let mut trace = Vec::new();
    let mut next = events.iter().peekable();
    let pulls = (scenario.seconds * 1000 + 400) / 20;
    let mut out = [0i16; FRAME];
    for j in 0..pulls {
        let now = 7 + 20 * j as u64;
        while let Some((arrival, seq, ts, payload)) = next.peek() {
            if *arrival > now as f64 {
                break;
            }
            jb.insert(*seq, *ts, payload, *arrival as u64);
            next.next();
        }
        jb.pull(now, decoder.as_mut(), &mut out);
        output.extend_from_slice(&out);
        trace.push((now, jb.stats()));
    }
    Outcome {
        input,
        output,
        trace,
        stats: jb.stats(),
        injected_swaps: swaps,
        injected_duplicates: dups,
        expected_reordered,
        drift: scenario.drift,
    }
}

impl Outcome {
    fn between(&self, from_ms: u64, to_ms: u64) -> impl Iterator<Item = &JitterStats> {
        self.trace
            .iter()
            .filter(move |(t, _)| (from_ms..to_ms).contains(t))
            .map(|(_, s)| s)
    }

    fn mean_delay(&self, from_ms: u64, to_ms: u64) -> f32 {
        let (sum, n) = self
            .between(from_ms, to_ms)
            .fold((0.0, 0), |(s, n), st| (s + st.current_delay_ms, n + 1));
        sum / n.max(1) as f32
    }

    fn concealed_between(&self, from_ms: u64, to_ms: u64) -> (u64, u64) {
        let first = self
            .between(from_ms, to_ms)
            .next()
            .copied()
            .unwrap_or_default();
        let last = self
            .between(from_ms, to_ms)
            .last()
            .copied()
            .unwrap_or_default();
        (
            last.concealed_ms - first.concealed_ms,
            last.played_ms - first.played_ms,
        )
    }

    /// Median over 40 ms output blocks (speech only) of the best normalised
    /// correlation with the input near the position the delay implies.
    fn quality(&self) -> f64 {
        let mut scores = Vec::new();
        for (j, (now, st)) in self.trace.iter().enumerate().step_by(4) {
            let block = &self.output[j * FRAME..];
            if block.len() < 2 * FRAME || st.played_ms < 1000 {
                continue;
            }
            let block = &block[..2 * FRAME];
            let energy: f64 = block.iter().map(|&s| f64::from(s).powi(2)).sum();
            if energy < (2 * FRAME) as f64 * 500.0 * 500.0 {
                continue;
            }
            // Expected input position: played at `now`, sent `30 + delay`
            // earlier (receiver ms, converted to the sender's clock).
            let sent = (*now as f64 - f64::from(st.current_delay_ms)) / (1.0 + self.drift) - 30.0;
            let expected = 8.0 * sent;
            let mut best = f64::MIN;
            for lag in -240i64..=240 {
                let start = expected as i64 + lag;
                if start < 0 || start as usize + 2 * FRAME > self.input.len() {
                    continue;
                }
                let seg = &self.input[start as usize..start as usize + 2 * FRAME];
                let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
                for (&a, &b) in block.iter().zip(seg) {
                    ab += f64::from(a) * f64::from(b);
                    aa += f64::from(a).powi(2);
                    bb += f64::from(b).powi(2);
                }
                best = best.max(ab / (aa * bb).sqrt().max(1.0));
            }
            scores.push(best);
        }
        scores.sort_by(f64::total_cmp);
        scores.get(scores.len() / 2).copied().unwrap_or(0.0)
    }
}

fn max_jump(x: &[i16]) -> i32 {
    x.windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap_or(0)
}

#[test]
fn speech_source_is_the_capture() {
    let pcm = speech(1);
    assert_eq!(pcm.len(), 8000);
    if std::path::Path::new(PCAP).exists() {
        let capture = pcap_speech(PCAP).unwrap();
        assert_eq!(capture.len(), 236 * 240, "236 packets of 30 ms");
    }
}

#[test]
fn mild_jitter_adds_little_delay_and_rarely_conceals() {
    let o = run(JitterConfig::default(), &Scenario::default());
    let delay = o.mean_delay(3000, 20_000);
    let (concealed, played) = o.concealed_between(3000, 20_000);
    let quality = o.quality();
    eprintln!("mild: mean delay {delay:.1} ms, concealed {concealed}/{played} ms, quality {quality:.3}, {:?}", o.stats);
    assert!(delay <= 20.0 + 10.0, "{delay}");
    assert!(o.between(3000, 20_000).all(|s| s.current_delay_ms <= 40.0));
    assert!(concealed as f64 <= 0.02 * played as f64);
    assert!(quality > 0.9, "{quality}");
    assert_eq!(
        o.stats.late + o.stats.duplicates + o.stats.discarded,
        o.stats.late
    );
}

#[test]
fn adapts_to_heavy_jitter_quickly_and_back_slowly() {
    // 40 ms sigma (sum of three uniforms 0..80 ms) from 10 s to 40 s.
    let scenario = Scenario {
        seconds: 70,
        jitter: |rng, k| {
            let t = k * 20;
            if (10_000..40_000).contains(&t) {
                (0..3).map(|_| 80.0 * rng.next_f64()).sum()
            } else {
                10.0 * rng.next_f64()
            }
        },
        ..Scenario::default()
    };
    let o = run(JitterConfig::default(), &scenario);
    let before = o.mean_delay(5000, 10_000);
    let adapted_at = o
        .trace
        .iter()
        .find(|(t, s)| *t >= 10_000 && s.target_delay_ms >= 120.0)
        .map(|(t, _)| *t);
    let (concealed, played) = o.concealed_between(15_000, 40_000);
    let during = o.mean_delay(15_000, 40_000);
    let relaxed_at = o
        .trace
        .iter()
        .find(|(t, s)| *t >= 40_000 && s.target_delay_ms <= 40.0)
        .map(|(t, _)| *t);
    let after = o.mean_delay(65_000, 70_000);
    eprintln!(
        "heavy: before {before:.1} ms, target >= 120 ms at {adapted_at:?}, during {during:.1} ms, concealed {concealed}/{played} ms, \
         target <= 40 ms at {relaxed_at:?}, after {after:.1} ms, quality {:.3}, {:?}",
        o.quality(),
        o.stats
    );
    let adapted_at = adapted_at.unwrap();
    assert!(adapted_at <= 13_000, "adapted at {adapted_at}");
    assert!(
        concealed as f64 <= 0.02 * played as f64,
        "{concealed}/{played}"
    );
    let relaxed_at = relaxed_at.unwrap();
    assert!(relaxed_at > 42_000, "down slowly: {relaxed_at}");
    assert!(relaxed_at <= 60_000, "but down: {relaxed_at}");
    assert!(after <= 40.0, "{after}");
}

#[test]
fn reordering_and_duplicates_cost_nothing() {
    let scenario = Scenario {
        reorder: 0.05,
        duplicate: 0.03,
        ..Scenario::default()
    };
    let o = run(JitterConfig::default(), &scenario);
    eprintln!(
        "reorder/dup: swaps {} dups {}, {:?}",
        o.injected_swaps, o.injected_duplicates, o.stats
    );
    assert!(o.injected_swaps > 20 && o.injected_duplicates > 10);
    assert_eq!(o.stats.duplicates, o.injected_duplicates);
    assert_eq!(o.stats.reordered, o.expected_reordered);
    // A swapped packet arrives at least one packet time late: the first
    // one may find the buffer at its 20 ms minimum and be concealed, after
    // which the target covers them.
    assert!(o.stats.late <= 1, "{:?}", o.stats);
    assert!(o.stats.concealed_ms <= 20, "{:?}", o.stats);
    let (concealed, _) = o.concealed_between(3000, 20_000);
    assert_eq!(concealed, 0);
    assert!(o.quality() > 0.9);
}

#[test]
fn burst_loss_is_concealed_smoothly_and_audio_resumes() {
    // Four bursts of five packets (100 ms) at 4, 8, 12 and 16 s.
    let scenario = Scenario {
        lost: |k| k >= 200 && k % 200 < 5 && k < 1000,
        ..Scenario::default()
    };
    let o = run(JitterConfig::default(), &scenario);
    let quality = o.quality();
    eprintln!("bursts: quality {quality:.3}, {:?}", o.stats);
    assert!(
        (380..=440).contains(&o.stats.concealed_ms),
        "{}",
        o.stats.concealed_ms
    );
    assert_eq!(o.stats.late, 0);
    let natural = max_jump(&o.input);
    assert!(
        max_jump(&o.output) <= natural,
        "{} > {natural}",
        max_jump(&o.output)
    );
    // Audio resumes: the output 200 ms after each burst carries speech again.
    for burst in 1..=4u64 {
        let t = burst * 4000 + 400;
        let j = o.trace.iter().position(|(now, _)| *now >= t).unwrap();
        let energy: f64 = o.output[j * FRAME..(j + 25) * FRAME]
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum();
        assert!(energy > 0.0);
    }
    assert!(quality > 0.85, "{quality}");
}

#[test]
fn clock_drift_neither_grows_nor_drains_the_buffer() {
    for drift in [0.005, -0.005] {
        let scenario = Scenario {
            seconds: 60,
            drift,
            ..Scenario::default()
        };
        let o = run(JitterConfig::default(), &scenario);
        let early = o.mean_delay(10_000, 30_000);
        let late = o.mean_delay(40_000, 60_000);
        let (concealed, played) = o.concealed_between(10_000, 60_000);
        eprintln!(
            "drift {drift}: delay {early:.1} -> {late:.1} ms, concealed {concealed}/{played}, quality {:.3}, {:?}",
            o.quality(),
            o.stats
        );
        assert!((late - early).abs() <= 10.0, "{early} {late}");
        assert!(late <= 60.0);
        assert!(o.quality() > 0.9);
        assert!(
            concealed as f64 <= 0.01 * played as f64,
            "{concealed}/{played}"
        );
        let (stretched, other) = if drift > 0.0 {
            (o.stats.expand_rate, o.stats.accelerate_rate)
        } else {
            (o.stats.accelerate_rate, o.stats.expand_rate)
        };
        assert!(
            (0.003..0.012).contains(&stretched),
            "{drift}: {stretched} vs {other}"
        );
    }
}

#[test]
fn g729_uses_the_codec_concealment() {
    let scenario = Scenario {
        lost: |k| k >= 200 && k % 200 < 5 && k < 600,
        ..Scenario::default()
    };
    let o = run_with(JitterConfig::default(), &scenario, CodecKind::G729);
    eprintln!("g729 bursts: {:?}", o.stats);
    assert!(
        (180..=240).contains(&o.stats.concealed_ms),
        "{}",
        o.stats.concealed_ms
    );
    assert!(o.quality() > 0.5);
}

#[test]
fn fixed_mode_holds_its_delay_and_plays_in_time_audio_untouched() {
    let cfg = JitterConfig {
        adaptive: false,
        initial_delay_ms: 60,
        ..JitterConfig::default()
    };
    let scenario = Scenario {
        seconds: 10,
        // Up to 30 ms of jitter plus up to 20 ms of pull grid: always within 60 ms.
        jitter: |rng, _| 30.0 * rng.next_f64(),
        ..Scenario::default()
    };
    let o = run(cfg, &scenario);
    eprintln!("fixed: {:?}", o.stats);
    assert!(o
        .trace
        .iter()
        .filter(|(_, s)| s.played_ms > 0)
        .all(|(_, s)| s.target_delay_ms == 60.0));
    assert_eq!(o.stats.accelerate_rate, 0.0);
    assert_eq!(o.stats.expand_rate, 0.0);
    // Nothing concealed while the stream lasts (after its end the buffer conceals).
    assert_eq!(o.concealed_between(0, 10_000).0, 0);
    // The output is the A-law-quantised input, delayed, sample for sample.
    let mut quantised = Vec::new();
    let mut payload = Vec::new();
    for chunk in o.input.chunks_exact(FRAME) {
        payload.clear();
        g711::encode_alaw(chunk, &mut payload);
        g711::decode_alaw(&payload, &mut quantised);
    }
    let first = o.output.iter().position(|&s| s != 0).unwrap();
    let lead = quantised.iter().position(|&s| s != 0).unwrap();
    let shift = first - lead;
    let n = quantised.len().min(o.output.len() - shift) - FRAME;
    assert_eq!(&o.output[shift..shift + n], &quantised[..n]);
    // A fixed buffer still follows a drifting clock, by large steps only.
    let drifting = Scenario {
        seconds: 30,
        drift: 0.005,
        ..Scenario::default()
    };
    let o = run(cfg, &drifting);
    let late = o.mean_delay(25_000, 30_000);
    eprintln!("fixed with drift: delay {late:.1} ms, {:?}", o.stats);
    assert!((30.0..=100.0).contains(&late), "{late}");
    assert!(o.stats.expand_rate > 0.0);
}

#[test]
fn timestamp_jump_resyncs_instead_of_disabling() {
    let input = speech(4);
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let mut dec = new_decoder(CodecKind::Pcma).unwrap();
    let mut out = [0i16; FRAME];
    let mut payload = Vec::new();
    let mut energy_after = 0.0;
    for k in 0..(input.len() / FRAME) {
        payload.clear();
        g711::encode_alaw(&input[k * FRAME..(k + 1) * FRAME], &mut payload);
        // Half way, a new source: random-looking seq and timestamp.
        let (seq, ts) = if k < 100 {
            (k as u16, (k * FRAME) as u32)
        } else {
            (40_000 + k as u16, 3_000_000_000 + (k * FRAME) as u32)
        };
        let now = 20 * k as u64;
        jb.insert(seq, ts, &payload, now);
        jb.pull(now + 5, dec.as_mut(), &mut out);
        if k > 130 {
            energy_after += out.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        }
    }
    let stats = jb.stats();
    assert_eq!(stats.resyncs, 1, "{stats:?}");
    assert!(stats.discarded <= 2, "{stats:?}");
    assert!(energy_after > 1e9, "audio resumed");
    assert!(stats.current_delay_ms <= 60.0, "{stats:?}");
}

#[test]
fn silence_suppression_gap_is_not_counted_as_loss() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let mut dec = new_decoder(CodecKind::Pcmu).unwrap();
    let mut out = [0i16; FRAME];
    let payload = [0x80u8; FRAME];
    let mut seq = 0u16;
    for j in 0..300u64 {
        let now = 20 * j;
        // Talk 0-2 s, pause (no packets, timestamps keep counting), talk from 4 s.
        if !(100..200).contains(&j) {
            jb.insert(seq, (j * FRAME as u64) as u32, &payload, now);
            seq = seq.wrapping_add(1);
        }
        jb.pull(now + 3, dec.as_mut(), &mut out);
    }
    let stats = jb.stats();
    assert_eq!(stats.concealed_ms, 0, "{stats:?}");
    assert_eq!(stats.late, 0, "{stats:?}");
}

#[test]
fn config_is_validated() {
    assert!(JitterBuffer::new(JitterConfig {
        min_delay_ms: 300,
        ..JitterConfig::default()
    })
    .is_err());
    assert!(JitterBuffer::new(JitterConfig {
        quantile: 1.0,
        ..JitterConfig::default()
    })
    .is_err());
    assert!(JitterBuffer::new(JitterConfig {
        max_delay_ms: 60_000,
        ..JitterConfig::default()
    })
    .is_err());
    let jb = JitterBuffer::new(JitterConfig {
        initial_delay_ms: 1,
        ..JitterConfig::default()
    })
    .unwrap();
    assert_eq!(jb.config().initial_delay_ms, 20);
    assert_eq!(jb.stats(), JitterStats::default());
}

#[test]
fn pull_before_any_packet_is_silence() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let mut dec = new_decoder(CodecKind::Pcma).unwrap();
    let mut out = [5i16; 400];
    jb.pull(0, dec.as_mut(), &mut out);
    assert!(out.iter().all(|&s| s == 0));
    jb.pull(0, dec.as_mut(), &mut []);
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        seq: u16,
        ts: u32,
        len: usize,
        arrival: u64,
    },
    Pull {
        now: u64,
        len: usize,
    },
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u16>(), any::<u32>(), 0usize..2000, any::<u64>())
            .prop_map(|(seq, ts, len, arrival)| Op::Insert { seq, ts, len, arrival }),
        3 => (any::<u16>(), 0u32..2000, 1usize..400, 0u64..100_000)
            .prop_map(|(seq, ts, len, arrival)| Op::Insert { seq: seq % 64, ts: ts * 80, len: len % 400 + 1, arrival }),
        4 => (any::<u64>(), 0usize..1000).prop_map(|(now, len)| Op::Pull { now, len }),
        4 => (0u64..100_000, 0usize..400).prop_map(|(now, len)| Op::Pull { now, len }),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_interleavings(
        ops in proptest::collection::vec(op(), 1..200),
        g729 in any::<bool>(),
        min in 0u32..100,
        span in 0u32..400,
    ) {
        let cfg = JitterConfig { adaptive: true, min_delay_ms: min, max_delay_ms: min + span, initial_delay_ms: min + span / 2, quantile: 0.9 };
        let mut jb = JitterBuffer::new(cfg).unwrap();
        let mut dec = new_decoder(if g729 { CodecKind::G729 } else { CodecKind::Pcma }).unwrap();
        let payload = [0x55u8; 2000];
        let mut out = vec![0i16; 1000];
        for op in ops {
            match op {
                Op::Insert { seq, ts, len, arrival } => jb.insert(seq, ts, &payload[..len], arrival),
                Op::Pull { now, len } => {
                    jb.pull(now, dec.as_mut(), &mut out[..len]);
                }
                Op::Reset => jb.reset(),
            }
            let stats = jb.stats();
            prop_assert!(stats.current_delay_ms.is_finite() && stats.target_delay_ms.is_finite());
            prop_assert!(stats.concealment_rate.is_finite());
        }
    }
}
