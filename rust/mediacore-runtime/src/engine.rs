//! The engine handle: starts the workers, places sessions on them, and implements the media
//! control vocabulary. Every method here is per call, never per packet.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mediacore_engine::control::{
    ControlError, LocalPorts, MediaControl, PendingStats, SessionInfo,
};
use mediacore_engine::transcode::needs_transcoding;
use mediacore_engine::{DtmfPlay, LegSpec, Session, SessionId, SessionSpec, SessionStats, Side};
use mio::{Poll, Registry, Waker};

use crate::config::EngineConfig;
use crate::events::{EventQueue, EventRecord};
use crate::ports::{allocate, release_pairs, PortAllocator, PortPair};
use crate::worker::{register_legs, Command, Slots, Worker, WorkerCounters, WAKER};

/// A worker that does not answer a control request within this time is considered wedged; the
/// caller gets an error instead of hanging the control plane.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

struct WorkerHandle {
    tx: Sender<Command>,
    waker: Waker,
    /// A clone of the worker's poller registry: a new session's sockets are registered from
    /// the control thread, under a slot taken from `slots`.
    registry: Registry,
    slots: Arc<Mutex<Slots>>,
    /// Commands wait in `tx` without a wake (see `Engine::send_quiet`); the worker clears it.
    quiet: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<WorkerCounters>,
}

#[derive(Debug, Clone, Copy)]
struct Placement {
    worker: usize,
    transcoding: bool,
}

/// Does either direction of `spec` decode and re-encode?
fn spec_transcodes(spec: &SessionSpec) -> bool {
    needs_transcoding(&spec.caller, &spec.callee) || needs_transcoding(&spec.callee, &spec.caller)
}

struct Inner {
    config: EngineConfig,
    workers: Vec<WorkerHandle>,
    ports: Arc<Mutex<PortAllocator>>,
    /// Which worker owns each session, and whether it holds a transcoding slot.
    directory: Mutex<HashMap<SessionId, Placement>>,
    /// Transcoding slots in use.
    transcoding: Mutex<usize>,
    next_id: AtomicU64,
    next_worker: AtomicUsize,
    events: Arc<EventQueue>,
    closed: AtomicBool,
}

/// Totals across workers, refreshed by the workers ten times a second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineTotals {
    pub sessions: u64,
    pub datagrams_in: u64,
    pub forwarded: u64,
    pub dropped: u64,
    pub send_errors: u64,
    /// One-way commands a worker could not apply (a `Create` or an update: the session's next
    /// command finds it unknown, or under its old spec).
    pub setup_failures: u64,
    pub ports_in_use: u64,
    pub port_capacity: u64,
    pub transcoding_sessions: u64,
    pub transcode_slots: u64,
    /// The busiest worker's smoothed CPU use, per mille of a core.
    pub busy_permille: u64,
}

/// A running media engine. Cloning shares it; `shutdown` (or dropping the last clone) stops it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    pub fn start(config: EngineConfig) -> Result<Engine, String> {
        config.validate()?;
        let io_err = |what: &str, e: io::Error| format!("{what}: {e}");
        // A further interface that is not an address of this host would fail every bind later,
        // as "no free port": say so now.
        for ip in &config.interfaces {
            crate::ports::bind_udp(SocketAddr::new(*ip, 0), 0)
                .map_err(|e| io_err(&format!("interfaces: {ip} cannot be bound"), e))?;
        }
        let ports = Arc::new(Mutex::new(PortAllocator::new(
            config.port_min,
            config.port_max,
        )));
        let events = Arc::new(EventQueue::new().map_err(|e| io_err("eventfd", e))?);
        let mut workers = Vec::with_capacity(config.workers);
        for n in 0..config.workers {
            let poll = Poll::new().map_err(|e| io_err("epoll", e))?;
            let waker = Waker::new(poll.registry(), WAKER).map_err(|e| io_err("waker", e))?;
            let (tx, rx) = mpsc::channel();
            let counters = Arc::new(WorkerCounters::default());
            let quiet = Arc::new(AtomicBool::new(false));
            let registry = poll
                .registry()
                .try_clone()
                .map_err(|e| io_err("epoll", e))?;
            let slots = Arc::new(Mutex::new(Slots::default()));
            let worker = Worker::new(
                poll,
                quiet.clone(),
                slots.clone(),
                rx,
                events.clone(),
                ports.clone(),
                counters.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("media-worker-{n}"))
                .spawn(move || worker.run())
                .map_err(|e| io_err("spawning a worker", e))?;
            workers.push(WorkerHandle {
                tx,
                waker,
                registry,
                slots,
                quiet,
                thread: Mutex::new(Some(thread)),
                counters,
            });
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                workers,
                ports,
                directory: Mutex::new(HashMap::new()),
                transcoding: Mutex::new(0),
                next_id: AtomicU64::new(1),
                next_worker: AtomicUsize::new(0),
                events,
                closed: AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn event_fd(&self) -> i32 {
        self.inner.events.fd()
    }

    pub fn drain_events(&self, max: usize) -> Vec<EventRecord> {
        self.inner.events.drain(max)
    }

    /// Starts copying events for [`Engine::take_tapped_events`] (used by the ng server).
    pub fn enable_event_tap(&self) {
        self.inner.events.enable_tap();
    }

    pub fn take_tapped_events(&self) -> Vec<mediacore_engine::Event> {
        self.inner.events.take_tapped()
    }

    pub fn session_count(&self) -> usize {
        self.inner.directory.lock().map(|d| d.len()).unwrap_or(0)
    }

    pub fn session_ids(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self
            .inner
            .directory
            .lock()
            .map(|d| d.keys().copied().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn totals(&self) -> EngineTotals {
        let mut t = EngineTotals::default();
        for w in &self.inner.workers {
            let c = &w.counters;
            t.sessions += c.sessions.load(Ordering::Relaxed);
            t.datagrams_in += c.datagrams_in.load(Ordering::Relaxed);
            t.forwarded += c.forwarded.load(Ordering::Relaxed);
            t.dropped += c.dropped.load(Ordering::Relaxed);
            t.send_errors += c.send_errors.load(Ordering::Relaxed);
            t.setup_failures += c.setup_failures.load(Ordering::Relaxed);
            t.busy_permille = t.busy_permille.max(c.busy_permille.load(Ordering::Relaxed));
        }
        t.transcoding_sessions = self.transcoding_sessions() as u64;
        t.transcode_slots = self.inner.config.transcode_slots as u64;
        if let Ok(p) = self.inner.ports.lock() {
            t.ports_in_use = p.in_use() as u64 * 2;
            t.port_capacity = p.capacity() as u64 * 2;
        }
        t
    }

    /// Stops every worker, closing all sockets and releasing all ports. Idempotent.
    pub fn shutdown(&self) {
        if !self.inner.stop_workers() {
            return;
        }
        if let Ok(mut d) = self.inner.directory.lock() {
            d.clear();
        }
        if let Ok(mut used) = self.inner.transcoding.lock() {
            *used = 0;
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Puts `cmd` in `worker`'s queue and returns the worker, to wake or not.
    fn enqueue(&self, worker: usize, cmd: Command) -> Result<&WorkerHandle, ControlError> {
        if self.is_closed() {
            return Err(ControlError::Unavailable("engine shut down".into()));
        }
        let w = self
            .inner
            .workers
            .get(worker)
            .ok_or_else(|| ControlError::Unavailable("no such worker".into()))?;
        w.tx.send(cmd)
            .map_err(|_| ControlError::Unavailable("worker stopped".into()))?;
        Ok(w)
    }

    fn send(&self, worker: usize, cmd: Command) -> Result<(), ControlError> {
        self.enqueue(worker, cmd)?
            .waker
            .wake()
            .map_err(|e| ControlError::Unavailable(e.to_string()))
    }

    /// Queues `cmd` for `worker` without waking it: for a command whose effect can wait for
    /// the worker's next wake (a datagram on one of its sockets, any other command, its tick
    /// at most 100 ms away, or [`MediaControl::flush`]). A worker applies its commands before
    /// the datagrams that woke it, so a quiet update still comes before the session's next
    /// packet. An idle worker is not woken, on this VM about 14 µs of CPU each time, three
    /// times a call when every command woke it.
    fn send_quiet(&self, worker: usize, cmd: Command) -> Result<(), ControlError> {
        self.enqueue(worker, cmd)?
            .quiet
            .store(true, Ordering::SeqCst);
        Ok(())
    }

    fn placement(&self, id: SessionId) -> Result<Placement, ControlError> {
        let d = self
            .inner
            .directory
            .lock()
            .map_err(|_| ControlError::Unavailable("directory poisoned".into()))?;
        d.get(&id).copied().ok_or(ControlError::UnknownSession(id))
    }

    /// Takes a transcoding slot, or says why not: all slots taken, or a worker too busy.
    fn admit_transcoding(&self) -> Result<(), ControlError> {
        let cfg = &self.inner.config;
        let busiest = self
            .inner
            .workers
            .iter()
            .map(|w| w.counters.busy_permille.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let guard = (cfg.cpu_guard * 1000.0) as u64;
        if busiest > guard {
            return Err(ControlError::TranscodingCapacity(format!(
                "media workers at {:.0} % of a core (guard {:.0} %)",
                busiest as f64 / 10.0,
                cfg.cpu_guard * 100.0
            )));
        }
        let mut used = self
            .inner
            .transcoding
            .lock()
            .map_err(|_| ControlError::Unavailable("slot counter poisoned".into()))?;
        if *used >= cfg.transcode_slots {
            return Err(ControlError::TranscodingCapacity(format!(
                "all {} transcoding slots in use",
                cfg.transcode_slots
            )));
        }
        *used += 1;
        Ok(())
    }

    fn release_slot(&self, held: bool) {
        if held {
            if let Ok(mut used) = self.inner.transcoding.lock() {
                *used = used.saturating_sub(1);
            }
        }
    }

    /// The interface a leg's ports are bound on: its `local_ip`, which must be one of the
    /// engine's interfaces, else the default interface.
    fn leg_interface(&self, leg: &LegSpec, side: &str) -> Result<IpAddr, ControlError> {
        let cfg = &self.inner.config;
        match leg.local_ip {
            None => Ok(cfg.interface),
            Some(ip) if cfg.has_interface(ip) => Ok(ip),
            Some(ip) => {
                let known: Vec<String> = std::iter::once(cfg.interface)
                    .chain(cfg.interfaces.iter().copied())
                    .map(|i| i.to_string())
                    .collect();
                Err(ControlError::InvalidSpec(format!(
                    "{side}.local_ip: {ip} is not one of this engine's media interfaces ({})",
                    known.join(", ")
                )))
            }
        }
    }

    /// Binds each leg's RTP/RTCP pair on its leg's interface; returns the pairs and those
    /// interfaces.
    fn allocate_ports(
        &self,
        spec: &SessionSpec,
    ) -> Result<([PortPair; 2], [IpAddr; 2]), ControlError> {
        match self.try_allocate_ports(spec) {
            // deletes queued quietly hold their ports until a worker wakes: run them, then
            // try once more (only when the range is full: the common path never waits)
            Err(ControlError::PortsExhausted) if self.settle_workers() => {
                self.try_allocate_ports(spec)
            }
            result => result,
        }
    }

    /// Runs what every worker has queued: wakes each and waits (at most the reply timeout
    /// each) until it has answered a barrier queued after its commands. Every worker, not only
    /// those whose `quiet` flag is set: a worker clears the flag as it starts draining, so a
    /// delete it is running at that moment would be missed; the barrier is answered after it.
    /// The range is full when this runs, a refusal's path: a round trip per worker is cheap
    /// there. True when some worker answered.
    fn settle_workers(&self) -> bool {
        let mut settled = false;
        for n in 0..self.inner.workers.len() {
            if self.request(n, |reply| Command::Barrier { reply }).is_ok() {
                settled = true;
            }
        }
        settled
    }

    fn try_allocate_ports(
        &self,
        spec: &SessionSpec,
    ) -> Result<([PortPair; 2], [IpAddr; 2]), ControlError> {
        let ips = [
            self.leg_interface(&spec.caller, "caller")?,
            self.leg_interface(&spec.callee, "callee")?,
        ];
        let ports = &self.inner.ports;
        if ports.is_poisoned() {
            return Err(ControlError::Unavailable("port allocator poisoned".into()));
        }
        let caller =
            allocate(ports, ips[0], spec.caller.dscp << 2).ok_or(ControlError::PortsExhausted)?;
        match allocate(ports, ips[1], spec.callee.dscp << 2) {
            Some(callee) => Ok(([caller, callee], ips)),
            None => {
                release_pairs(ports, &[caller.rtp_port]);
                Err(ControlError::PortsExhausted)
            }
        }
    }

    /// Transcoding sessions now holding a slot.
    pub fn transcoding_sessions(&self) -> usize {
        self.inner.transcoding.lock().map(|u| *u).unwrap_or(0)
    }

    /// Takes a session being deleted out of the directory, and frees its transcoding slot.
    fn forget(&self, id: SessionId, placement: Placement) {
        let removed = self
            .inner
            .directory
            .lock()
            .ok()
            .and_then(|mut d| d.remove(&id));
        if removed.is_some() {
            self.release_slot(placement.transcoding);
        }
    }

    fn request<T>(
        &self,
        worker: usize,
        make: impl FnOnce(mpsc::SyncSender<Result<T, ControlError>>) -> Command,
    ) -> Result<T, ControlError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(worker, make(tx))?;
        rx.recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| ControlError::Unavailable("worker did not answer".into()))?
    }
}

fn local(ip: IpAddr, rtp: u16) -> LocalPorts {
    LocalPorts {
        rtp: SocketAddr::new(ip, rtp),
        rtcp: SocketAddr::new(ip, rtp + 1),
    }
}

impl MediaControl for Engine {
    fn create(&self, spec: SessionSpec) -> Result<SessionInfo, ControlError> {
        spec.validate()
            .map_err(|e| ControlError::InvalidSpec(e.to_string()))?;
        let id = SessionId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        // Codecs are set up here, on the control thread, so a failure is an immediate answer.
        let session = Session::new(id, spec, Instant::now()).map_err(ControlError::InvalidSpec)?;
        let transcoding = session.is_transcoding();
        if transcoding {
            self.admit_transcoding()?;
        }
        let (legs, ips) = match self.allocate_ports(session.spec()) {
            Ok(bound) => bound,
            Err(e) => {
                self.release_slot(transcoding);
                return Err(e);
            }
        };
        let cfg = &self.inner.config;
        let info = SessionInfo {
            id,
            caller: local(cfg.sdp_address(ips[0]), legs[0].rtp_port),
            callee: local(cfg.sdp_address(ips[1]), legs[1].rtp_port),
        };
        let worker =
            self.inner.next_worker.fetch_add(1, Ordering::Relaxed) % self.inner.workers.len();
        let rtp_ports = [legs[0].rtp_port, legs[1].rtp_port];
        let failed = |e: ControlError, slot: Option<usize>| {
            if let (Some(slot), Some(w)) = (slot, self.inner.workers.get(worker)) {
                if let Ok(mut pool) = w.slots.lock() {
                    pool.give_back(slot);
                }
            }
            release_pairs(&self.inner.ports, &rtp_ports);
            self.release_slot(transcoding);
            Err(e)
        };
        let Some(handle) = self.inner.workers.get(worker) else {
            return failed(ControlError::Unavailable("no such worker".into()), None);
        };
        let Ok(slot) = handle.slots.lock().map(|mut pool| pool.take()) else {
            return failed(ControlError::Unavailable("slot pool poisoned".into()), None);
        };
        // Registered here, not by the worker: creating a session does not wake it (see
        // `Command::Create`). The legs' sockets close (leaving the poller) on any failure.
        if let Err(e) = register_legs(&handle.registry, slot, &legs) {
            drop(legs);
            return failed(ControlError::Io(e.to_string()), Some(slot));
        }
        let session = Box::new(session);
        let ipv4 = ips[0].is_ipv4();
        let create = Command::Create {
            session,
            legs,
            slot,
            ipv4,
        };
        if let Err(e) = self.send_quiet(worker, create) {
            return failed(e, Some(slot));
        }
        if let Ok(mut d) = self.inner.directory.lock() {
            d.insert(
                id,
                Placement {
                    worker,
                    transcoding,
                },
            );
        }
        Ok(info)
    }

    fn update(&self, id: SessionId, spec: SessionSpec) -> Result<(), ControlError> {
        spec.validate()
            .map_err(|e| ControlError::InvalidSpec(e.to_string()))?;
        let placement = self.placement(id)?;
        let (was, will) = (placement.transcoding, spec_transcodes(&spec));
        if will && !was {
            self.admit_transcoding()?;
        }
        let r = if will {
            // Codecs are set up in the worker, and that can fail: wait for its answer.
            self.request(placement.worker, |reply| Command::Update {
                id,
                spec,
                reply: Some(reply),
            })
        } else {
            // Nothing to set up: the update cannot fail in the worker, so it is one-way (the
            // session's later commands reach the worker after it, in order), and quiet: the
            // worker applies it before it relays the session's next datagram.
            self.send_quiet(
                placement.worker,
                Command::Update {
                    id,
                    spec,
                    reply: None,
                },
            )
        };
        // Give back a slot that a session no longer needs, or that a failed update took.
        match (r.is_ok(), was, will) {
            (true, true, false) | (false, false, true) => self.release_slot(true),
            _ => {}
        }
        let now_transcoding = if r.is_ok() { will } else { was };
        if let Ok(mut d) = self.inner.directory.lock() {
            if let Some(p) = d.get_mut(&id) {
                p.transcoding = now_transcoding;
            }
        }
        r
    }

    fn query(&self, id: SessionId) -> Result<SessionStats, ControlError> {
        let worker = self.placement(id)?.worker;
        self.request(worker, |reply| Command::Query { id, reply })
    }

    fn play_dtmf(&self, id: SessionId, to: Side, play: DtmfPlay) -> Result<(), ControlError> {
        let worker = self.placement(id)?.worker;
        self.request(worker, |reply| Command::PlayDtmf {
            id,
            to,
            play,
            reply,
        })
    }

    fn delete_deferred(&self, id: SessionId) -> Result<PendingStats, ControlError> {
        let placement = self.placement(id)?;
        let (reply, stats) = mpsc::sync_channel(1);
        // quiet: the statistics are collected later anyway (whoever polls them calls `flush`)
        let sent = self.send_quiet(placement.worker, Command::Delete { id, reply });
        // gone for every later command now; the worker runs its commands in order, so the
        // session is deleted before anything sent to that worker after this
        self.forget(id, placement);
        sent?;
        Ok(PendingStats::waiting(stats, Instant::now() + REPLY_TIMEOUT))
    }

    fn delete(&self, id: SessionId) -> Result<SessionStats, ControlError> {
        let placement = self.placement(id)?;
        let r = self.request(placement.worker, |reply| Command::Delete { id, reply });
        self.forget(id, placement);
        r
    }

    fn default_spec(&self) -> SessionSpec {
        let c = &self.inner.config;
        let leg = LegSpec {
            jitter_buffer: c.jitter_buffer,
            echo_cancel: c.echo_cancel,
            ..LegSpec::default()
        };
        SessionSpec {
            caller: leg.clone(),
            callee: leg,
            rtp_timeout: c.rtp_timeout,
            hold_timeout: c.hold_timeout,
        }
    }

    fn advertised_address(&self) -> IpAddr {
        self.inner
            .config
            .advertise
            .unwrap_or(self.inner.config.interface)
    }

    fn flush(&self) {
        for w in &self.inner.workers {
            if w.quiet.swap(false, Ordering::SeqCst) {
                let _ = w.waker.wake();
            }
        }
    }
}

impl Inner {
    /// Tells every worker to stop and waits for it (sockets closed, ports released). Returns
    /// false if the engine was already closed.
    fn stop_workers(&self) -> bool {
        if self.closed.swap(true, Ordering::SeqCst) {
            return false;
        }
        for w in &self.workers {
            let _ = w.tx.send(Command::Shutdown);
            let _ = w.waker.wake();
        }
        for w in &self.workers {
            let handle = w.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        true
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::test_support::{peers, rtp};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An engine on 127.0.0.1 (advertised as 203.0.113.1) with a further interface 127.0.0.2:
    /// 127.0.0.0/8 is local on Linux without setup.
    fn engine(port_min: u16) -> Engine {
        Engine::start(EngineConfig {
            interface: ip("127.0.0.1"),
            advertise: Some(ip("203.0.113.1")),
            interfaces: vec![ip("127.0.0.2")],
            port_min,
            port_max: port_min + 40,
            workers: 1,
            ..EngineConfig::default()
        })
        .unwrap()
    }

    fn on(caller: Option<&str>, callee: Option<&str>) -> SessionSpec {
        let mut spec = SessionSpec::default();
        spec.caller.local_ip = caller.map(ip);
        spec.callee.local_ip = callee.map(ip);
        spec
    }

    /// Whether a UDP port on `at` is taken (bound by the engine).
    fn bound(at: SocketAddr) -> bool {
        std::net::UdpSocket::bind(at).is_err()
    }

    #[test]
    fn a_leg_is_bound_on_its_named_interface() {
        let e = engine(42100);
        let info = e.create(on(None, Some("127.0.0.2"))).unwrap();
        // the default interface is advertised as configured; a further one as itself
        assert_eq!(info.caller.rtp.ip(), ip("203.0.113.1"));
        assert_eq!(info.callee.rtp.ip(), ip("127.0.0.2"));
        assert_eq!(info.callee.rtcp.ip(), ip("127.0.0.2"));
        let callee = info.callee.rtp.port();
        assert!(bound(SocketAddr::new(ip("127.0.0.2"), callee)));
        assert!(bound(SocketAddr::new(ip("127.0.0.2"), callee + 1)));
        assert!(
            !bound(SocketAddr::new(ip("127.0.0.1"), callee)),
            "not on the default"
        );
        let caller = info.caller.rtp.port();
        assert!(bound(SocketAddr::new(ip("127.0.0.1"), caller)));
        assert!(!bound(SocketAddr::new(ip("127.0.0.2"), caller)));

        // naming the default interface is the default
        let info = e.create(on(Some("127.0.0.1"), Some("127.0.0.1"))).unwrap();
        assert_eq!(info.callee.rtp.ip(), ip("203.0.113.1"));
        e.shutdown();
    }

    #[test]
    fn a_quiet_update_is_in_force_for_the_next_datagram_and_a_deferred_delete_ends_on_flush() {
        let e = engine(42400);
        let info = e.create(on(None, None)).unwrap();
        // answered by the worker: it has the session, and waits for its next wake
        e.query(info.id).unwrap();
        let (caller, callee) = peers();
        // the answer: the caller's address known from now on, queued without waking the worker
        let mut spec = on(None, None);
        spec.caller.remote_rtp = Some(caller.local_addr().unwrap());
        e.update(info.id, spec).unwrap();
        // the callee's first packet wakes the worker, which applies the update before it
        // relays the packet: it reaches the caller's new address
        let to_engine = SocketAddr::new(ip("127.0.0.1"), info.callee.rtp.port());
        callee.send_to(&rtp(1), to_engine).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = caller
            .recv_from(&mut buf)
            .expect("relayed to the updated address");
        assert_eq!(&buf[..n], &rtp(1)[..]);

        // a deferred delete is queued without a wake; flush carries it out
        let pending = e.delete_deferred(info.id).unwrap();
        e.flush();
        let stats = pending.wait().unwrap();
        assert_eq!(stats.callee.datagrams, 1);
        assert_eq!(stats.caller.sent_rtp_packets, 1);
        assert_eq!(e.totals().ports_in_use, 0, "its ports are released");
        assert_eq!(e.session_count(), 0);
        e.shutdown();
    }

    #[test]
    fn a_session_created_without_a_wake_relays_its_first_datagram() {
        let e = engine(42500);
        let (caller, callee) = peers();
        let mut spec = on(None, None);
        spec.caller.remote_rtp = Some(caller.local_addr().unwrap());
        // queued quietly, its sockets registered by this thread: the first datagram wakes the
        // worker, which runs the Create before it reads the datagram
        let info = e.create(spec).unwrap();
        let to_engine = SocketAddr::new(ip("127.0.0.1"), info.callee.rtp.port());
        callee.send_to(&rtp(1), to_engine).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = caller.recv_from(&mut buf).expect("relayed");
        assert_eq!(&buf[..n], &rtp(1)[..]);
        // the slot is reused by the next session once the first is deleted
        e.delete(info.id).unwrap();
        let again = e.create(on(None, None)).unwrap();
        e.query(again.id).unwrap();
        e.delete(again.id).unwrap();
        assert_eq!(e.totals().ports_in_use, 0);
        e.shutdown();
    }

    #[test]
    fn ports_held_by_a_quietly_queued_delete_are_free_for_the_next_session() {
        // a range of two pairs: one session's worth
        let e = Engine::start(EngineConfig {
            interface: ip("127.0.0.1"),
            port_min: 42600,
            port_max: 42603,
            workers: 1,
            ..EngineConfig::default()
        })
        .unwrap();
        let first = e.create(on(None, None)).unwrap();
        // its delete waits in the worker's queue, unflushed, its ports still bound
        let pending = e.delete_deferred(first.id).unwrap();
        let second = e
            .create(on(None, None))
            .expect("the full range runs the queued delete first");
        assert_eq!(pending.wait().unwrap().caller.datagrams, 0);
        assert!(matches!(
            e.create(on(None, None)),
            Err(ControlError::PortsExhausted)
        ));
        e.delete(second.id).unwrap();
        e.shutdown();
    }

    #[test]
    fn an_address_that_is_not_an_interface_is_refused() {
        let e = engine(42200);
        let err = e.create(on(Some("127.0.0.3"), None)).unwrap_err();
        assert_eq!(
            err,
            ControlError::InvalidSpec(
                "caller.local_ip: 127.0.0.3 is not one of this engine's media interfaces \
                 (127.0.0.1, 127.0.0.2)"
                    .into()
            )
        );
        assert!(e.create(on(None, Some("10.255.0.1"))).is_err());
        assert_eq!(e.totals().ports_in_use, 0, "nothing bound");
        assert_eq!(e.session_count(), 0);
        e.shutdown();
    }

    #[test]
    fn a_further_interface_the_host_lacks_stops_the_start() {
        let err = Engine::start(EngineConfig {
            interfaces: vec![ip("192.0.2.77")],
            port_min: 42300,
            port_max: 42340,
            workers: 1,
            ..EngineConfig::default()
        })
        .err()
        .expect("refused");
        assert!(
            err.starts_with("interfaces: 192.0.2.77 cannot be bound"),
            "{err}"
        );
        let err = EngineConfig {
            interfaces: vec![ip("0.0.0.0")],
            ..EngineConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.starts_with("interfaces: 0.0.0.0"), "{err}");
    }
}
