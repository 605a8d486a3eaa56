//! CPU cost of the relay path through the sans-IO session, per packet: the work
//! `Session::handle_packet` does for a forwarded RTP packet (source check, parse, statistics,
//! destination, payload-type map), with no socket.
//!
//! `cargo run --release --example relay_path_cost -p mediacore-engine`
//!
//! Three sessions: PCMA on 8 both sides (the map is the identity), the same with a voice gain
//! of +6 dB toward both parties (`SS_VOICEGAIN`: each payload byte through a table), and G.729
//! on 18 ↔ G729a on 96 (every packet renumbered). 20 ms packets alternate between the parties, 200,000 per run;
//! prints ns per packet, median and best of 9 runs. Without the gain case (`gain_db`, added
//! later) the source builds against the engine before the payload-type map (it passes the
//! buffer as `&mut`, which coerces to the old `&[u8]`), so a reference tree can be measured with
//! the same program (bench/README.md).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mediacore_engine::{
    Channel, CodecSpec, LegSpec, Session, SessionId, SessionSpec, Side, Verdict,
};

const PACKETS: u32 = 200_000;
const RUNS: usize = 9;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9)))
}

fn leg(remote: &str, codecs: Vec<CodecSpec>) -> LegSpec {
    LegSpec {
        remote_rtp: Some(addr(remote)),
        codecs,
        ..LegSpec::default()
    }
}

fn packet(pt: u8, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p.extend(std::iter::repeat_n(0xd5, len));
    p
}

/// Nanoseconds per packet of one run.
fn run(spec: &SessionSpec, pts: (u8, u8), len: usize) -> f64 {
    let t0 = Instant::now();
    let Ok(mut s) = Session::new(SessionId(1), spec.clone(), t0) else {
        eprintln!("session refused");
        return f64::NAN;
    };
    let (a, b) = (addr("192.0.2.10:4000"), addr("198.51.100.20:5000"));
    let mut bufs = [packet(pts.0, len), packet(pts.1, len)];
    let mut forwarded = 0u32;
    let start = Instant::now();
    for k in 0..PACKETS {
        let (side, src, i) = if k % 2 == 0 {
            (Side::Caller, a, 0)
        } else {
            (Side::Callee, b, 1)
        };
        let n = k / 2;
        let buf = &mut bufs[i];
        // Each party's own numbering: sequence +1, timestamp +160, its payload type.
        buf[1] = if i == 0 { pts.0 } else { pts.1 };
        buf[2..4].copy_from_slice(&(n as u16).to_be_bytes());
        buf[4..8].copy_from_slice(&(n * 160).to_be_bytes());
        buf[8..12].copy_from_slice(&(0x1000 + i as u32).to_be_bytes());
        let now = t0 + Duration::from_micros(u64::from(n) * 20_000);
        if let Verdict::Forward { .. } =
            black_box(s.handle_packet(now, side, Channel::Rtp, src, buf))
        {
            forwarded += 1;
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(PACKETS);
    if forwarded != PACKETS {
        eprintln!("only {forwarded} of {PACKETS} forwarded");
    }
    ns
}

fn main() {
    let pcma = || vec![CodecSpec::new(8, "PCMA", 8000)];
    let identity = SessionSpec {
        caller: leg("192.0.2.10:4000", pcma()),
        callee: leg("198.51.100.20:5000", pcma()),
        ..SessionSpec::default()
    };
    let renumbered = SessionSpec {
        caller: leg("192.0.2.10:4000", vec![CodecSpec::new(18, "G729", 8000)]),
        callee: leg(
            "198.51.100.20:5000",
            vec![CodecSpec::new(96, "G729a", 8000)],
        ),
        ..SessionSpec::default()
    };
    // SS_VOICEGAIN: every payload byte of both directions through the law's table.
    let mut gained = identity.clone();
    gained.caller.gain_db = 6;
    gained.callee.gain_db = 6;
    println!("relay path, {PACKETS} packets per run, {RUNS} runs: ns per packet (median, best)");
    for (name, spec, pts, len) in [
        ("PCMA 8 <-> PCMA 8 (identity)", &identity, (8, 8), 160),
        ("PCMA 8 <-> PCMA 8, voice gain +6 dB", &gained, (8, 8), 160),
        (
            "G729 18 <-> G729a 96 (renumbered)",
            &renumbered,
            (18, 96),
            20,
        ),
    ] {
        let mut runs: Vec<f64> = (0..RUNS).map(|_| run(spec, pts, len)).collect();
        runs.sort_by(f64::total_cmp);
        println!("{name:<36} {:>8.1} {:>8.1}", runs[RUNS / 2], runs[0]);
    }
}
