//! The receiver thread: one epoll (mio) over every endpoint socket, draining each readable
//! socket (recvmmsg batches) until it is empty and timestamping each packet on arrival. A packet counts once per
//! (call, direction, round) via a bitmap, so duplicates cannot hide loss; packets arriving on
//! the wrong endpoint are counted as misrouted, not received. In transcode mode packets are
//! matched by ordinal instead (see `transcode`), and the bitmap is indexed by that ordinal.

use crate::histogram::Histogram;
use crate::packet::{self, PACKET_LEN};
use crate::recv_batch::{RecvBatch, BATCH};
use crate::schedule::Schedule;
use crate::transcode::{self, Lookup, StreamState, Transcode};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Longest single epoll wait, so the deadline is noticed promptly.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Readiness events fetched per epoll_wait.
const EVENTS_CAPACITY: usize = 1024;

#[derive(Default)]
pub struct ReceiverCounts {
    /// Unique timed-phase packets that reached the right endpoint.
    pub received: u64,
    pub duplicates: u64,
    /// Probe packets for another call or the wrong direction.
    pub misrouted: u64,
    /// Datagrams that are not our probes.
    pub foreign: u64,
    pub warmup: u64,
    pub recv_errors: u64,
    /// Transcode mode: packets with another payload type or size than the leg's codec.
    pub wrong_payload: u64,
    /// Transcode mode: output k arrived before input k was sent (the engine emitted more
    /// packets than it was given, or emitted before its first input).
    pub ordinal_ahead: u64,
    /// Transcode mode: sequence number before the first one received (reordered first packet).
    pub ordinal_before_first: u64,
    /// Transcode mode: ordinal beyond the last packet sent.
    pub ordinal_beyond: u64,
}

pub struct ReceiverReport {
    pub counts: ReceiverCounts,
    pub latency: Histogram,
    /// The same samples split by direction: `[A→B (received by B), B→A (received by A)]`.
    pub latency_by_direction: [Histogram; 2],
}

impl ReceiverReport {
    fn record_latency(&mut self, socket_index: usize, ns: u64) {
        self.latency.record(ns);
        // Endpoint B (odd index) receives A→B, index 0 of the pair.
        self.latency_by_direction[1 - socket_index % 2].record(ns);
    }
}

/// Receives until `deadline_ns` (on the schedule's clock).
pub fn run(
    schedule: &Schedule,
    sockets: &[UdpSocket],
    deadline_ns: u64,
    transcode: Option<&Transcode>,
) -> Result<ReceiverReport, String> {
    let mut poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    for (index, socket) in sockets.iter().enumerate() {
        poll.registry()
            .register(
                &mut SourceFd(&socket.as_raw_fd()),
                Token(index),
                Interest::READABLE,
            )
            .map_err(|e| format!("epoll register: {e}"))?;
    }
    let measured = schedule.measured_rounds as usize;
    let mut seen = vec![0u64; (sockets.len() * measured).div_ceil(64)];
    let mut report = ReceiverReport {
        counts: ReceiverCounts::default(),
        latency: Histogram::new(),
        latency_by_direction: [Histogram::new(), Histogram::new()],
    };
    let mut streams: Vec<StreamState> = Vec::new();
    streams.resize_with(sockets.len(), StreamState::default);
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    // One byte more than a probe, so an oversized datagram is noticed rather than truncated.
    let mut batch = RecvBatch::<{ PACKET_LEN + 1 }>::new();
    loop {
        let now = schedule.now_ns();
        if now >= deadline_ns {
            break;
        }
        let wait = Duration::from_nanos(deadline_ns - now).min(MAX_WAIT);
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        for event in &events {
            let index = event.token().0;
            let Some(socket) = sockets.get(index) else {
                continue;
            };
            let fd = socket.as_raw_fd();
            loop {
                let count = match batch.recv(fd) {
                    Ok(count) => count,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // An ICMP error from an earlier send is reported here once; keep draining.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        report.counts.recv_errors += 1;
                        continue;
                    }
                    Err(_) => {
                        report.counts.recv_errors += 1;
                        break;
                    }
                };
                let arrived_ns = schedule.now_ns();
                for i in 0..count {
                    let datagram = batch.datagram(i);
                    match (transcode, streams.get_mut(index)) {
                        (Some(t), Some(stream)) => account_transcoded(
                            schedule,
                            t,
                            stream,
                            index,
                            datagram,
                            arrived_ns,
                            &mut seen,
                            &mut report,
                        ),
                        _ => account(
                            schedule,
                            index,
                            datagram,
                            arrived_ns,
                            &mut seen,
                            &mut report,
                        ),
                    }
                }
                if count < BATCH {
                    break; // a short batch means the socket is drained
                }
            }
        }
    }
    Ok(report)
}

fn account(
    schedule: &Schedule,
    socket_index: usize,
    datagram: &[u8],
    arrived_ns: u64,
    seen: &mut [u64],
    report: &mut ReceiverReport,
) {
    let counts = &mut report.counts;
    let Some(probe) = packet::read(datagram).filter(|_| datagram.len() == PACKET_LEN) else {
        counts.foreign += 1;
        return;
    };
    // Endpoint A (even index) receives B→A (dir 1), endpoint B (odd index) receives A→B (dir 0).
    let expected_dir = 1 - (socket_index % 2) as u8;
    if probe.call as usize != socket_index / 2 || probe.dir != expected_dir {
        counts.misrouted += 1;
        return;
    }
    let Some(measured_index) = schedule.measured_index(probe.round) else {
        counts.warmup += 1;
        return;
    };
    if first_sighting(schedule, socket_index, measured_index, seen, counts) {
        report.record_latency(socket_index, arrived_ns.saturating_sub(probe.sent_ns));
    }
}

/// Marks (stream, measured round) as seen; false (and counted) if it was seen before.
fn first_sighting(
    schedule: &Schedule,
    socket_index: usize,
    measured_index: u32,
    seen: &mut [u64],
    counts: &mut ReceiverCounts,
) -> bool {
    // The stream (call, dir) arriving at socket `socket_index` is identified by the socket.
    let bit = socket_index * schedule.measured_rounds as usize + measured_index as usize;
    let (word, mask) = (bit / 64, 1u64 << (bit % 64));
    let Some(slot) = seen.get_mut(word) else {
        counts.foreign += 1;
        return false;
    };
    if *slot & mask != 0 {
        counts.duplicates += 1;
        return false;
    }
    *slot |= mask;
    counts.received += 1;
    true
}

/// Transcode mode: the packet's ordinal on its stream names the input it answers.
#[allow(clippy::too_many_arguments)]
fn account_transcoded(
    schedule: &Schedule,
    t: &Transcode,
    stream: &mut StreamState,
    socket_index: usize,
    datagram: &[u8],
    arrived_ns: u64,
    seen: &mut [u64],
    report: &mut ReceiverReport,
) {
    let counts = &mut report.counts;
    let Some((payload_type, seq, payload_len)) = transcode::parse(datagram) else {
        counts.foreign += 1;
        return;
    };
    if (payload_type, payload_len) != transcode::expects(socket_index, t.through_engine) {
        counts.wrong_payload += 1;
        return;
    }
    let Ok(round) = u32::try_from(stream.ordinal(seq)) else {
        counts.ordinal_before_first += 1;
        return;
    };
    if round >= schedule.warmup_rounds + schedule.measured_rounds {
        counts.ordinal_beyond += 1;
        return;
    }
    let sent_ns = match t.sent.lookup(socket_index, round) {
        Lookup::Sent(ns) => Some(ns),
        Lookup::NotYet => {
            counts.ordinal_ahead += 1;
            None
        }
        // Sent more than the ring's span ago: its due time is close enough for a latency
        // that is off the histogram's scale anyway.
        Lookup::Overwritten => {
            let call = (socket_index / 2) as u64;
            Some(schedule.slot_due_ns(u64::from(round) * u64::from(schedule.calls) + call))
        }
    };
    let Some(measured_index) = schedule.measured_index(round) else {
        counts.warmup += 1;
        return;
    };
    if first_sighting(schedule, socket_index, measured_index, seen, counts) {
        if let Some(sent_ns) = sent_ns {
            report.record_latency(socket_index, arrived_ns.saturating_sub(sent_ns));
        }
    }
}
