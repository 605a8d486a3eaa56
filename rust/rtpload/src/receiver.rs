//! The receiver thread: one epoll (mio) over every endpoint socket, draining each readable
//! socket (recvmmsg batches) until it is empty and timestamping each packet on arrival. A packet counts once per
//! (call, direction, round) via a bitmap, so duplicates cannot hide loss; packets arriving on
//! the wrong endpoint are counted as misrouted, not received.

use crate::histogram::Histogram;
use crate::packet::{self, PACKET_LEN};
use crate::recv_batch::{RecvBatch, BATCH};
use crate::schedule::Schedule;
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
}

pub struct ReceiverReport {
    pub counts: ReceiverCounts,
    pub latency: Histogram,
}

/// Receives until `deadline_ns` (on the schedule's clock).
pub fn run(
    schedule: &Schedule,
    sockets: &[UdpSocket],
    deadline_ns: u64,
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
    };
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
                    account(
                        schedule,
                        index,
                        datagram,
                        arrived_ns,
                        &mut seen,
                        &mut report,
                    );
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
    // The stream (call, dir) arriving at socket `socket_index` is identified by the socket.
    let bit = socket_index * schedule.measured_rounds as usize + measured_index as usize;
    let (word, mask) = (bit / 64, 1u64 << (bit % 64));
    let Some(slot) = seen.get_mut(word) else {
        counts.foreign += 1;
        return;
    };
    if *slot & mask != 0 {
        counts.duplicates += 1;
        return;
    }
    *slot |= mask;
    counts.received += 1;
    report
        .latency
        .record(arrived_ns.saturating_sub(probe.sent_ns));
}
