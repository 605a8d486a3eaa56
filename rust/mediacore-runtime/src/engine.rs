//! The engine handle: starts the workers, places sessions on them, and implements the media
//! control vocabulary. Every method here is per call, never per packet.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mediacore_engine::control::{ControlError, LocalPorts, MediaControl, SessionInfo};
use mediacore_engine::{SessionId, SessionSpec, SessionStats};
use mio::{Poll, Waker};

use crate::config::EngineConfig;
use crate::events::{EventQueue, EventRecord};
use crate::ports::PortAllocator;
use crate::worker::{Command, Worker, WorkerCounters, WAKER};

/// A worker that does not answer a control request within this time is considered wedged; the
/// caller gets an error instead of hanging the control plane.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

struct WorkerHandle {
    tx: Sender<Command>,
    waker: Waker,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<WorkerCounters>,
}

struct Inner {
    config: EngineConfig,
    workers: Vec<WorkerHandle>,
    ports: Arc<Mutex<PortAllocator>>,
    /// Which worker owns each session.
    directory: Mutex<HashMap<SessionId, usize>>,
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
    pub ports_in_use: u64,
    pub port_capacity: u64,
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
            let worker = Worker::new(poll, rx, events.clone(), ports.clone(), counters.clone());
            let thread = std::thread::Builder::new()
                .name(format!("media-worker-{n}"))
                .spawn(move || worker.run())
                .map_err(|e| io_err("spawning a worker", e))?;
            workers.push(WorkerHandle {
                tx,
                waker,
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
        }
        if let Ok(p) = self.inner.ports.lock() {
            t.ports_in_use = p.in_use() as u64 * 2;
            t.port_capacity = p.capacity() as u64 * 2;
        }
        t
    }

    /// Stops every worker, closing all sockets and releasing all ports. Idempotent.
    pub fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        for w in &self.inner.workers {
            let _ = w.tx.send(Command::Shutdown);
            let _ = w.waker.wake();
        }
        for w in &self.inner.workers {
            let handle = w.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        if let Ok(mut d) = self.inner.directory.lock() {
            d.clear();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    fn send(&self, worker: usize, cmd: Command) -> Result<(), ControlError> {
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
        w.waker
            .wake()
            .map_err(|e| ControlError::Unavailable(e.to_string()))
    }

    fn worker_of(&self, id: SessionId) -> Result<usize, ControlError> {
        let d = self
            .inner
            .directory
            .lock()
            .map_err(|_| ControlError::Unavailable("directory poisoned".into()))?;
        d.get(&id).copied().ok_or(ControlError::UnknownSession(id))
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
        let ip = self.inner.config.interface;
        let legs = {
            let mut alloc = self
                .inner
                .ports
                .lock()
                .map_err(|_| ControlError::Unavailable("port allocator poisoned".into()))?;
            let caller = alloc
                .allocate(ip, spec.caller.dscp << 2)
                .ok_or(ControlError::PortsExhausted)?;
            match alloc.allocate(ip, spec.callee.dscp << 2) {
                Some(callee) => [caller, callee],
                None => {
                    alloc.release(caller.rtp_port);
                    return Err(ControlError::PortsExhausted);
                }
            }
        };
        let adv = self.advertised_address();
        let id = SessionId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let info = SessionInfo {
            id,
            caller: local(adv, legs[0].rtp_port),
            callee: local(adv, legs[1].rtp_port),
        };
        let worker =
            self.inner.next_worker.fetch_add(1, Ordering::Relaxed) % self.inner.workers.len();
        self.request(worker, |reply| Command::Create {
            id,
            spec,
            legs,
            reply,
        })?;
        if let Ok(mut d) = self.inner.directory.lock() {
            d.insert(id, worker);
        }
        Ok(info)
    }

    fn update(&self, id: SessionId, spec: SessionSpec) -> Result<(), ControlError> {
        spec.validate()
            .map_err(|e| ControlError::InvalidSpec(e.to_string()))?;
        let worker = self.worker_of(id)?;
        self.request(worker, |reply| Command::Update { id, spec, reply })
    }

    fn query(&self, id: SessionId) -> Result<SessionStats, ControlError> {
        let worker = self.worker_of(id)?;
        self.request(worker, |reply| Command::Query { id, reply })
    }

    fn delete(&self, id: SessionId) -> Result<SessionStats, ControlError> {
        let worker = self.worker_of(id)?;
        let r = self.request(worker, |reply| Command::Delete { id, reply });
        if let Ok(mut d) = self.inner.directory.lock() {
            d.remove(&id);
        }
        r
    }

    fn default_spec(&self) -> SessionSpec {
        SessionSpec {
            rtp_timeout: self.inner.config.rtp_timeout,
            hold_timeout: self.inner.config.hold_timeout,
            ..SessionSpec::default()
        }
    }

    fn advertised_address(&self) -> IpAddr {
        self.inner
            .config
            .advertise
            .unwrap_or(self.inner.config.interface)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            for w in &self.workers {
                let _ = w.tx.send(Command::Shutdown);
                let _ = w.waker.wake();
            }
            for w in &self.workers {
                if let Some(h) = w.thread.lock().ok().and_then(|mut t| t.take()) {
                    let _ = h.join();
                }
            }
        }
    }
}
