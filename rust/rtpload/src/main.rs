//! rtpload: an RTP load generator for media relays controlled by rtpengine's ng protocol.
//!
//! Theory of operation: bind two endpoint sockets per call (A = caller, B = callee); set each
//! call up through the engine with ng `offer` (A's SDP) and `answer` (B's SDP), learning from
//! the rewritten SDPs where A and B must send. Then one sender thread plays 20 ms PCMA packets
//! in both directions for every call, spread evenly over each 20 ms period, and one receiver
//! thread epolls all endpoints and timestamps arrivals. The main thread samples engine and own
//! CPU at the edges of the timed phase. After a grace period for stragglers every call is
//! deleted. Every phase is bounded in time; failures are counted and reported.
//!
//! `--mode transcode` sets calls up as PCMA (A) ↔ G.729 (B), sends real speech and matches
//! packets by ordinal (see `transcode`); `--codec-floor` measures libbcg729's own cost.

mod args;
mod bencode;
mod calls;
mod cpu;
mod floor;
mod g729;
mod histogram;
mod ng;
mod packet;
mod receiver;
mod recv_batch;
mod report;
mod schedule;
mod sdp;
mod sender;
mod speech;
mod transcode;

use bencode::Value;
use ng::NgClient;
use report::Report;
use schedule::Schedule;
use speech::Speech;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Time between the end of setup and the first packet, so both threads are running.
const LEAD_TIME: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        print!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let result = args::parse(std::env::args().skip(1)).and_then(|opts| {
        if let Some(budget) = opts.codec_floor {
            let floor = floor::measure(&Speech::load(&opts.pcap)?, budget)?;
            return Ok(if opts.json {
                floor.json()
            } else {
                floor.human()
            });
        }
        let report = run(&opts)?;
        Ok(if opts.json {
            report.json()
        } else {
            report.human()
        })
    });
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rtpload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &args::Options) -> Result<Report, String> {
    cpu::raise_fd_limit();
    let speech = match opts.mode {
        args::Mode::Relay => None,
        args::Mode::Transcode => Some(Speech::load(&opts.pcap)?),
    };
    let endpoints = calls::bind_endpoints(opts.local_ip, opts.port_base, 2 * opts.calls as usize)?;
    let mut client = match opts.ng {
        Some(engine) => {
            let mut client =
                NgClient::new(opts.local_ip, engine, opts.ng_timeout, opts.ng_attempts)?;
            client
                .request(&Value::dict(vec![("command", Value::str("ping"))]))
                .map_err(|e| format!("engine at {engine} did not answer ping: {e}"))?;
            Some(client)
        }
        None => None,
    };
    let calls = match client.as_mut() {
        Some(client) => calls::through_engine(client, endpoints, opts.mode)?,
        None => calls::direct(endpoints)?,
    };
    let active = (calls.sockets.len() / 2) as u32;
    if active == 0 {
        return Err(format!(
            "all {} calls failed setup; first error: {}",
            opts.calls,
            calls.first_failure.as_deref().unwrap_or("none")
        ));
    }

    let send_times = transcode::SendTimes::new(if speech.is_some() {
        calls.sockets.len()
    } else {
        0
    });
    let transcode = speech.as_ref().map(|speech| transcode::Transcode {
        speech,
        sent: &send_times,
        through_engine: client.is_some(),
    });
    let transcode = transcode.as_ref();
    let schedule = Schedule::new(active, opts.warmup, opts.duration, LEAD_TIME);
    let deadline_ns = schedule.timed_end_ns() + u64::try_from(opts.grace.as_nanos()).unwrap_or(0);
    let traffic = std::thread::scope(|scope| {
        let receiver =
            scope.spawn(|| receiver::run(&schedule, &calls.sockets, deadline_ns, transcode));
        let sender = scope.spawn(|| {
            sender::run(
                &schedule,
                &calls.sockets,
                &calls.destinations,
                opts.tick,
                transcode,
            )
        });
        let cpu = measure_cpu(&schedule, &opts.engine_pids);
        let sent = sender
            .join()
            .map_err(|_| "sender thread panicked".to_string())?;
        let received = receiver
            .join()
            .map_err(|_| "receiver thread panicked".to_string())??;
        Ok::<_, String>((sent, received, cpu))
    });
    // Delete the calls even if the traffic phase failed, then report the failure.
    let delete_failures = client
        .as_mut()
        .map_or(0, |client| calls::delete_all(client, &calls.ng_ids));
    let (sent, received, cpu) = traffic?;
    let cpu = cpu?;

    Ok(Report {
        engine: opts.engine_name.clone(),
        mode: opts.mode.name(),
        calls: opts.calls,
        setup_failures: calls.setup_failures,
        delete_failures,
        duration_s: cpu.wall.as_secs_f64(),
        sent: sent.sent,
        send_errors: sent.send_errors,
        counts: received.counts,
        latency: received.latency,
        latency_by_direction: received.latency_by_direction,
        send_lateness: sent.lateness,
        engine_cpu_s: cpu.engine.map(|d| d.as_secs_f64()),
        gen_cpu_s: cpu.own.as_secs_f64(),
    })
}

struct CpuSample {
    /// Actual length of the timed phase as observed by the sampling thread.
    wall: Duration,
    engine: Option<Duration>,
    own: Duration,
}

/// Samples engine (summed over `engine_pids`) and own CPU at the start and end of the timed
/// phase.
fn measure_cpu(schedule: &Schedule, engine_pids: &[u32]) -> Result<CpuSample, String> {
    let sample = || -> Result<(Instant, Option<Duration>, Duration), String> {
        let mut engine = None;
        for &pid in engine_pids {
            engine = Some(engine.unwrap_or(Duration::ZERO) + cpu::process_cpu(pid)?);
        }
        Ok((Instant::now(), engine, cpu::own_cpu()?))
    };
    schedule.sleep_until_ns(schedule.timed_start_ns());
    let (t0, engine0, own0) = sample()?;
    schedule.sleep_until_ns(schedule.timed_end_ns());
    let (t1, engine1, own1) = sample()?;
    Ok(CpuSample {
        wall: t1 - t0,
        engine: engine0.zip(engine1).map(|(a, b)| b.saturating_sub(a)),
        own: own1.saturating_sub(own0),
    })
}
