//! A worker thread: owns its sessions and their sockets outright, so the packet path takes no
//! lock. Commands arrive on a channel with a mio waker; replies go back on per-request channels.
//!
//! Loop: wait for readiness (bounded by the earliest session timer and the next tick), then for
//! each readable socket receive until the kernel queue is empty (recvmmsg batches), asking the
//! session what to do with each datagram and sending it on at once from the same buffer. The
//! buffers are the worker's; nothing is allocated per packet.
//!
//! Timers: each session says when it next has something to do (`poll_timeout`: the next
//! playout period of its jitter buffers, every 10–20 ms while audio or DTMF tones play, the
//! next step of a digit being played, every 20 ms, a relay re-timing release, or a media
//! timeout). The worker keeps those deadlines in a min-heap and wakes for the earliest, so a
//! 20 ms playout clock is served within the poll's 1 ms resolution (mio rounds its timeout up
//! to whole milliseconds, so a wake-up is never early). A session's entry is refreshed after
//! every packet it consumed and every timeout it handled; stale entries are skipped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mediacore_engine::control::ControlError;
use mediacore_engine::{
    Channel, DtmfPlay, Event, Session, SessionId, SessionSpec, SessionStats, Side, Verdict,
};
use mio::net::UdpSocket;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::events::EventQueue;
use crate::ports::{release_pairs, set_tos, PortAllocator, PortPair};
use crate::recv_batch::{RecvBatch, BATCH};

pub const WAKER: Token = Token(usize::MAX);
/// Weight of the newest 100 ms sample in the smoothed busy ratio: about a one-second memory.
const BUSY_SMOOTHING: f64 = 0.2;
/// Timer granularity: media timeouts are in seconds, so checking every 100 ms is exact enough
/// and costs one pass over the sessions ten times a second.
const TICK: Duration = Duration::from_millis(100);
/// Readiness events handled per poll call.
const EVENTS_CAPACITY: usize = 1024;

// Commands are per call, not per packet: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// A session built (and its codecs set up) on the control thread, which also bound its
    /// sockets and registered them with this worker's poller under `slot` (see [`Slots`]).
    /// One-way and quiet: the worker has nothing left to do that can fail, and a datagram on
    /// one of the sockets wakes it, to run this command before reading it. Commands reach a
    /// worker in order, so a later update or delete of the session finds it.
    Create {
        session: Box<Session>,
        legs: [PortPair; 2],
        slot: usize,
        ipv4: bool,
    },
    /// `reply` None: one-way, for an update that cannot fail in the worker (the new spec
    /// transcodes nothing, so no codec is set up); a failure (the session never registered, a
    /// DSCP that could not be set) is counted in `setup_failures`.
    Update {
        id: SessionId,
        spec: SessionSpec,
        reply: Option<SyncSender<Result<(), ControlError>>>,
    },
    Query {
        id: SessionId,
        reply: SyncSender<Result<SessionStats, ControlError>>,
    },
    Delete {
        id: SessionId,
        reply: SyncSender<Result<SessionStats, ControlError>>,
    },
    PlayDtmf {
        id: SessionId,
        to: Side,
        play: DtmfPlay,
        reply: SyncSender<Result<(), ControlError>>,
    },
    /// Answered once every command queued before it has run: the control thread waits on it
    /// when the ports are exhausted, so that quietly queued deletes release theirs first.
    Barrier {
        reply: SyncSender<Result<(), ControlError>>,
    },
    Shutdown,
}

/// Engine-wide counters a worker publishes once per tick (not per packet).
#[derive(Default)]
pub struct WorkerCounters {
    pub datagrams_in: AtomicU64,
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub send_errors: AtomicU64,
    /// One-way commands the worker could not apply (a `Create` or an update).
    pub setup_failures: AtomicU64,
    pub sessions: AtomicU64,
    /// Share of wall time the worker spent working (not waiting), per mille, smoothed over
    /// about a second: the CPU guard of admission control reads it.
    pub busy_permille: AtomicU64,
    pub transcoding_sessions: AtomicU64,
}

struct Entry {
    session: Session,
    /// The deadline this session has in the timer heap, if any.
    scheduled: Option<Instant>,
    /// `[side][channel]`: caller RTP, caller RTCP, callee RTP, callee RTCP.
    sockets: [[UdpSocket; 2]; 2],
    rtp_ports: [u16; 2],
    ipv4: bool,
}

/// A worker's session slots (a slot's four sockets are registered under its tokens,
/// `token_for`): taken by the control thread, which registers a new session's sockets itself
/// so that creating a session needs no wake of the worker, and given back by the worker when
/// it has closed a deleted session's sockets.
#[derive(Default)]
pub struct Slots {
    free: Vec<usize>,
    len: usize,
}

impl Slots {
    pub fn take(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.len += 1;
            self.len - 1
        })
    }

    pub fn give_back(&mut self, slot: usize) {
        self.free.push(slot);
    }
}

/// Registers a new session's four sockets with a worker's poller (`registry`, a clone of the
/// worker's) under `slot`'s tokens: done on the control thread, so a failure is an answer to
/// the create, not a count. Sockets registered before a failure leave the poller when they
/// are closed.
pub fn register_legs(registry: &Registry, slot: usize, legs: &[PortPair; 2]) -> io::Result<()> {
    for (side, pair) in [Side::Caller, Side::Callee].into_iter().zip(legs) {
        for (channel, sock) in [(Channel::Rtp, &pair.rtp), (Channel::Rtcp, &pair.rtcp)] {
            registry.register(
                &mut SourceFd(&sock.as_raw_fd()),
                token_for(slot, side, channel),
                Interest::READABLE,
            )?;
        }
    }
    Ok(())
}

fn channel_index(c: Channel) -> usize {
    match c {
        Channel::Rtp => 0,
        Channel::Rtcp => 1,
    }
}

fn token_for(slot: usize, side: Side, channel: Channel) -> Token {
    Token(slot * 4 + side.index() * 2 + channel_index(channel))
}

fn decode_token(t: Token) -> (usize, Side, Channel) {
    let side = if (t.0 >> 1) & 1 == 0 {
        Side::Caller
    } else {
        Side::Callee
    };
    let channel = if t.0 & 1 == 0 {
        Channel::Rtp
    } else {
        Channel::Rtcp
    };
    (t.0 / 4, side, channel)
}

pub struct Worker {
    poll: Poll,
    /// Set by the control side when it queued a command without waking this worker (an update
    /// that cannot fail, a deferred delete: `Engine::send_quiet`); cleared here before each
    /// drain. `Engine::flush` wakes the workers it finds set.
    quiet: Arc<AtomicBool>,
    slots: Vec<Option<Entry>>,
    /// Shared with the engine: which slots are free (see [`Slots`]).
    slot_pool: Arc<Mutex<Slots>>,
    /// Slots a datagram was signalled for while empty: a session whose sockets the control
    /// thread registered, and whose `Create` had not reached the worker yet. The edge is gone,
    /// so `create` reads those sockets once.
    signalled_empty: Vec<usize>,
    by_id: HashMap<SessionId, usize>,
    commands: Receiver<Command>,
    events: Arc<EventQueue>,
    ports: Arc<Mutex<PortAllocator>>,
    counters: Arc<WorkerCounters>,
    batch: RecvBatch,
    /// (deadline, slot): sessions' next `poll_timeout`, earliest first.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Scratch: slots served by one `run_timers` call.
    served: Vec<usize>,
    last_tick_at: Instant,
    last_cpu: Duration,
    /// Smoothed share of a core this worker uses (0.0..=1.0).
    busy: f64,
    // Local tallies, published to `counters` each tick.
    datagrams_in: u64,
    forwarded: u64,
    dropped: u64,
    send_errors: u64,
    setup_failures: u64,
}

impl Worker {
    pub fn new(
        poll: Poll,
        quiet: Arc<AtomicBool>,
        slot_pool: Arc<Mutex<Slots>>,
        commands: Receiver<Command>,
        events: Arc<EventQueue>,
        ports: Arc<Mutex<PortAllocator>>,
        counters: Arc<WorkerCounters>,
    ) -> Self {
        Worker {
            poll,
            quiet,
            slots: Vec::new(),
            slot_pool,
            signalled_empty: Vec::new(),
            by_id: HashMap::new(),
            commands,
            events,
            ports,
            counters,
            batch: RecvBatch::new(),
            timers: BinaryHeap::new(),
            served: Vec::new(),
            last_tick_at: Instant::now(),
            last_cpu: Duration::ZERO, // read on the worker's own thread when it starts
            busy: 0.0,
            datagrams_in: 0,
            forwarded: 0,
            dropped: 0,
            send_errors: 0,
            setup_failures: 0,
        }
    }

    pub fn run(mut self) {
        self.last_cpu = thread_cpu_time();
        self.last_tick_at = Instant::now();
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let wake = self
                .timers
                .peek()
                .map_or(next_tick, |Reverse((t, _))| (*t).min(next_tick));
            let wait = wake.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != ErrorKind::Interrupted {
                    eprintln!("mediacore worker: poll failed: {e}");
                    break;
                }
            }
            let now = Instant::now();
            // Commands first, at every wake, whatever woke the worker: a command queued without
            // a wake (`Engine::send_quiet`) takes effect before the next datagram of its session
            // is relayed, or at the latest at the next tick.
            if self.drain_commands(now) {
                break;
            }
            for ev in events.iter() {
                if ev.token() != WAKER {
                    self.receive(ev.token(), now);
                }
            }
            let now = Instant::now();
            self.run_timers(now);
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK;
            }
        }
        self.close_all();
    }

    /// Receives every queued datagram on one socket and relays each.
    fn receive(&mut self, token: Token, now: Instant) {
        let (slot, side, channel) = decode_token(token);
        let Some(Some(entry)) = self.slots.get_mut(slot) else {
            if !self.signalled_empty.contains(&slot) {
                self.signalled_empty.push(slot);
            }
            return;
        };
        let fd = entry.sockets[side.index()][channel_index(channel)].as_raw_fd();
        loop {
            let n = match self.batch.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ICMP port-unreachable from an earlier send surfaces here as ECONNREFUSED on
                // Linux; it is not about this socket's input, so keep reading.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(_) => break,
            };
            for i in 0..n {
                let Some((data, src, truncated)) = self.batch.get(i) else {
                    continue;
                };
                self.datagrams_in += 1;
                let Some(src) = src else {
                    self.dropped += 1;
                    continue;
                };
                if truncated {
                    entry.session.note_oversized(side);
                    self.dropped += 1;
                    continue;
                }
                match entry.session.handle_packet(now, side, channel, src, data) {
                    Verdict::Forward {
                        via,
                        channel: out_channel,
                        dest,
                    } => {
                        let sock = &entry.sockets[via.index()][channel_index(out_channel)];
                        if send(sock, data, dest).is_ok() {
                            self.forwarded += 1;
                        } else {
                            self.send_errors += 1;
                            entry.session.note_send_failed(via, out_channel, data.len());
                        }
                    }
                    Verdict::Consumed => {
                        let (sent, failed) = transmit_all(entry);
                        self.forwarded += sent;
                        self.send_errors += failed;
                        schedule(&mut self.timers, entry, slot);
                    }
                    Verdict::Drop(_) => self.dropped += 1,
                }
            }
            if n < BATCH {
                break; // a short batch: the socket is empty and the next datagram raises a new edge
            }
        }
    }

    /// Serves every session timer that is due: playout periods (whose packets are sent at
    /// once) and media timeouts.
    fn run_timers(&mut self, now: Instant) {
        // Each due session is served once per call: its next deadline goes back into the heap
        // only afterwards, so a session that is still due cannot keep this loop spinning.
        let mut served = std::mem::take(&mut self.served);
        while let Some(&Reverse((due, slot))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(Some(entry)) = self.slots.get_mut(slot) else {
                continue;
            };
            if entry.scheduled != Some(due) {
                continue; // superseded by an earlier deadline, or a reused slot
            }
            entry.scheduled = None;
            if entry.session.poll_timeout().is_some_and(|t| t <= now) {
                entry.session.handle_timeout(now);
                let (sent, failed) = transmit_all(entry);
                self.forwarded += sent;
                self.send_errors += failed;
            }
            served.push(slot);
        }
        for slot in served.drain(..) {
            if let Some(Some(entry)) = self.slots.get_mut(slot) {
                schedule(&mut self.timers, entry, slot);
            }
        }
        self.served = served;
    }

    fn tick(&mut self, now: Instant) {
        let mut raised: Vec<Event> = Vec::new();
        for entry in self.slots.iter_mut().flatten() {
            while let Some(ev) = entry.session.poll_event() {
                raised.push(ev);
            }
        }
        if !raised.is_empty() {
            self.events.push_all(raised);
        }
        let c = &self.counters;
        c.datagrams_in.store(self.datagrams_in, Ordering::Relaxed);
        c.forwarded.store(self.forwarded, Ordering::Relaxed);
        c.dropped.store(self.dropped, Ordering::Relaxed);
        c.send_errors.store(self.send_errors, Ordering::Relaxed);
        c.setup_failures
            .store(self.setup_failures, Ordering::Relaxed);
        c.sessions.store(self.by_id.len() as u64, Ordering::Relaxed);
        let transcoding = self
            .slots
            .iter()
            .flatten()
            .filter(|e| e.session.is_transcoding())
            .count();
        c.transcoding_sessions
            .store(transcoding as u64, Ordering::Relaxed);
        // The CPU this thread used since the last tick, over the wall time that passed.
        let cpu = thread_cpu_time();
        let wall = now
            .saturating_duration_since(self.last_tick_at)
            .as_secs_f64();
        if wall > 0.0 {
            let ratio = (cpu.saturating_sub(self.last_cpu).as_secs_f64() / wall).min(1.0);
            self.busy = BUSY_SMOOTHING * ratio + (1.0 - BUSY_SMOOTHING) * self.busy;
            c.busy_permille
                .store((self.busy * 1000.0) as u64, Ordering::Relaxed);
        }
        self.last_cpu = cpu;
        self.last_tick_at = now;
    }

    /// Returns true on shutdown.
    fn drain_commands(&mut self, now: Instant) -> bool {
        // before the drain: a command queued quietly after it sets the flag again
        self.quiet.store(false, Ordering::SeqCst);
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Create {
                    session,
                    legs,
                    slot,
                    ipv4,
                } => {
                    if self.create(*session, legs, slot, ipv4, now).is_err() {
                        self.setup_failures += 1;
                    }
                }
                Command::Update { id, spec, reply } => {
                    let r = self.update(id, spec, now);
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(r);
                        }
                        None if r.is_err() => self.setup_failures += 1,
                        None => {}
                    }
                }
                Command::Query { id, reply } => {
                    let r = match self
                        .by_id
                        .get(&id)
                        .and_then(|&s| self.slots.get(s))
                        .and_then(|e| e.as_ref())
                    {
                        Some(entry) => Ok(entry.session.stats(now)),
                        None => Err(ControlError::UnknownSession(id)),
                    };
                    let _ = reply.send(r);
                }
                Command::Delete { id, reply } => {
                    let r = self.delete(id, now);
                    let _ = reply.send(r);
                }
                Command::PlayDtmf {
                    id,
                    to,
                    play,
                    reply,
                } => {
                    let r = self.play_dtmf(id, to, &play, now);
                    let _ = reply.send(r);
                }
                Command::Barrier { reply } => {
                    let _ = reply.send(Ok(()));
                }
                Command::Shutdown => return true,
            }
        }
        false
    }

    fn create(
        &mut self,
        session: Session,
        legs: [PortPair; 2],
        slot: usize,
        ipv4: bool,
        now: Instant,
    ) -> Result<(), ControlError> {
        let id = session.id();
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        let rtp_ports = [legs[0].rtp_port, legs[1].rtp_port];
        if self.slots[slot].is_some() {
            // the control thread took a slot still in use: cannot happen (a slot is given
            // back only after its session's sockets are closed); its sockets close here
            self.release_ports(rtp_ports);
            return Err(ControlError::Io(format!("slot {slot} is in use")));
        }
        let [caller, callee] = legs;
        let to_mio = |s: socket2::Socket| UdpSocket::from_std(std::net::UdpSocket::from(s));
        let sockets = [
            [to_mio(caller.rtp), to_mio(caller.rtcp)],
            [to_mio(callee.rtp), to_mio(callee.rtcp)],
        ];
        let mut entry = Entry {
            session,
            scheduled: None,
            sockets,
            rtp_ports,
            ipv4,
        };
        schedule(&mut self.timers, &mut entry, slot);
        self.slots[slot] = Some(entry);
        self.by_id.insert(id, slot);
        if let Some(i) = self.signalled_empty.iter().position(|&s| s == slot) {
            self.signalled_empty.swap_remove(i);
            for side in [Side::Caller, Side::Callee] {
                for channel in [Channel::Rtp, Channel::Rtcp] {
                    self.receive(token_for(slot, side, channel), now);
                }
            }
        }
        Ok(())
    }

    fn update(
        &mut self,
        id: SessionId,
        spec: SessionSpec,
        now: Instant,
    ) -> Result<(), ControlError> {
        let Some(&slot) = self.by_id.get(&id) else {
            return Err(ControlError::UnknownSession(id));
        };
        let Some(Some(entry)) = self.slots.get_mut(slot) else {
            return Err(ControlError::UnknownSession(id));
        };
        let old = [
            entry.session.spec().caller.dscp,
            entry.session.spec().callee.dscp,
        ];
        entry
            .session
            .update(spec, now)
            .map_err(ControlError::InvalidSpec)?;
        schedule(&mut self.timers, entry, slot);
        for side in [Side::Caller, Side::Callee] {
            let new = entry.session.spec().leg(side).dscp;
            if old[side.index()] != new {
                for sock in &entry.sockets[side.index()] {
                    let s2 = socket2::SockRef::from(sock);
                    set_tos(&s2, entry.ipv4, new << 2)
                        .map_err(|e| ControlError::Io(e.to_string()))?;
                }
            }
        }
        Ok(())
    }

    fn delete(&mut self, id: SessionId, now: Instant) -> Result<SessionStats, ControlError> {
        let Some(slot) = self.by_id.remove(&id) else {
            return Err(ControlError::UnknownSession(id));
        };
        let Some(entry) = self.slots.get_mut(slot).and_then(|e| e.take()) else {
            return Err(ControlError::UnknownSession(id));
        };
        // No `deregister` first: closing a socket (dropping the entry) takes it out of the
        // epoll set, as none of them is ever duplicated; that saves four syscalls per call.
        let stats = entry.session.stats(now);
        let ports = entry.rtp_ports;
        drop(entry);
        self.release_ports(ports);
        // only now, its sockets closed (out of the poller): the control thread may hand the
        // slot's tokens to a new session's sockets
        if let Ok(mut pool) = self.slot_pool.lock() {
            pool.give_back(slot);
        }
        Ok(stats)
    }

    fn play_dtmf(
        &mut self,
        id: SessionId,
        to: Side,
        play: &DtmfPlay,
        now: Instant,
    ) -> Result<(), ControlError> {
        let Some(&slot) = self.by_id.get(&id) else {
            return Err(ControlError::UnknownSession(id));
        };
        let Some(Some(entry)) = self.slots.get_mut(slot) else {
            return Err(ControlError::UnknownSession(id));
        };
        entry
            .session
            .play_dtmf(now, to, play)
            .map_err(ControlError::Refused)?;
        let (sent, failed) = transmit_all(entry);
        self.forwarded += sent;
        self.send_errors += failed;
        // The digits' steps (and a decoded direction's playout periods for their tones) are
        // session deadlines like any other: `poll_timeout` covers them.
        schedule(&mut self.timers, entry, slot);
        Ok(())
    }

    fn release_ports(&self, ports: [u16; 2]) {
        release_pairs(&self.ports, &ports);
    }

    fn close_all(&mut self) {
        let ids: Vec<SessionId> = self.by_id.keys().copied().collect();
        let now = Instant::now();
        for id in ids {
            let _ = self.delete(id, now);
        }
        // Answer anything still queued so no caller waits forever.
        while let Ok(cmd) = self.commands.try_recv() {
            let gone = || ControlError::Unavailable("engine shut down".into());
            match cmd {
                Command::Create { legs, .. } => {
                    self.release_ports([legs[0].rtp_port, legs[1].rtp_port]);
                }
                Command::Update { reply, .. } => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(gone()));
                    }
                }
                Command::Query { reply, .. } | Command::Delete { reply, .. } => {
                    let _ = reply.send(Err(gone()));
                }
                Command::PlayDtmf { reply, .. } => {
                    let _ = reply.send(Err(gone()));
                }
                Command::Barrier { reply } => {
                    let _ = reply.send(Err(gone()));
                }
                Command::Shutdown => {}
            }
        }
    }
}

/// Sends every datagram the session produced; returns (sent, failed).
fn transmit_all(entry: &mut Entry) -> (u64, u64) {
    let (mut sent, mut failed) = (0, 0);
    while let Some(tx) = entry.session.poll_transmit() {
        let sock = &entry.sockets[tx.via.index()][channel_index(tx.channel)];
        if send(sock, &tx.data, tx.dest).is_ok() {
            sent += 1;
        } else {
            failed += 1;
            entry
                .session
                .note_send_failed(tx.via, tx.channel, tx.data.len());
        }
        entry.session.recycle(tx.data);
    }
    (sent, failed)
}

/// Puts the session's next deadline in the heap if it is earlier than the one already there
/// (a later one is found when the earlier entry fires and the session is asked again).
fn schedule(timers: &mut BinaryHeap<Reverse<(Instant, usize)>>, entry: &mut Entry, slot: usize) {
    let Some(next) = entry.session.poll_timeout() else {
        return;
    };
    if entry.scheduled.is_none_or(|s| next < s) {
        entry.scheduled = Some(next);
        timers.push(Reverse((next, slot)));
    }
}

fn send(sock: &UdpSocket, data: &[u8], dest: SocketAddr) -> io::Result<usize> {
    loop {
        match sock.send_to(data, dest) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// CPU time consumed by the calling thread (user + system).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::mpsc;

    use crate::ports::allocate;
    use crate::test_support::{peers, rtp};

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// The control thread registers a new session's sockets before its `Create` reaches the
    /// worker: a datagram signalled in between (its slot still empty) is read when the
    /// `Create` comes, not left waiting for a second datagram's edge.
    #[test]
    fn a_datagram_signalled_before_the_create_arrives_is_relayed_when_it_does() {
        let poll = Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let slots = Arc::new(Mutex::new(Slots::default()));
        let (_tx, rx) = mpsc::channel();
        let ports = Arc::new(Mutex::new(PortAllocator::new(43200, 43239)));
        let mut worker = Worker::new(
            poll,
            Arc::new(AtomicBool::new(false)),
            slots.clone(),
            rx,
            Arc::new(EventQueue::new().unwrap()),
            ports.clone(),
            Arc::new(WorkerCounters::default()),
        );
        let (caller, callee) = peers();
        let mut spec = SessionSpec::default();
        spec.caller.remote_rtp = Some(caller.local_addr().unwrap());
        let session = Session::new(SessionId(7), spec, Instant::now()).unwrap();
        let legs = [
            allocate(&ports, LOOPBACK, 0).unwrap(),
            allocate(&ports, LOOPBACK, 0).unwrap(),
        ];
        let slot = slots.lock().unwrap().take();
        register_legs(&registry, slot, &legs).unwrap();

        // the callee's packet arrives and is signalled while the slot is empty
        let to_engine = SocketAddr::new(LOOPBACK, legs[1].rtp_port);
        callee.send_to(&rtp(1), to_engine).unwrap();
        let mut events = Events::with_capacity(8);
        worker
            .poll
            .poll(&mut events, Some(Duration::from_secs(2)))
            .unwrap();
        let tokens: Vec<Token> = events.iter().map(|ev| ev.token()).collect();
        assert_eq!(tokens, vec![token_for(slot, Side::Callee, Channel::Rtp)]);
        let now = Instant::now();
        worker.receive(tokens[0], now);
        assert_eq!(worker.signalled_empty, vec![slot]);

        // the Create: the waiting datagram is read and relayed at once
        worker.create(session, legs, slot, true, now).unwrap();
        assert!(worker.signalled_empty.is_empty());
        let mut buf = [0u8; 512];
        let (n, _) = caller.recv_from(&mut buf).expect("relayed on create");
        assert_eq!(&buf[..n], &rtp(1)[..]);
        assert_eq!(worker.forwarded, 1);

        // deleted: its slot is free again, for the next session's sockets
        worker.delete(SessionId(7), Instant::now()).unwrap();
        assert_eq!(slots.lock().unwrap().take(), slot);
        assert_eq!(ports.lock().unwrap().in_use(), 0);
    }
}
