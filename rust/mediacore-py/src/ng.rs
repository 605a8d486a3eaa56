//! `NgControl`: the ng command layer in-process. The control plane speaks one media-control
//! vocabulary (rtpengine's ng: offer, answer, delete, query…) whether the engine runs in this
//! process or on a media node; in-process the datagram goes straight to the sans-IO
//! `NgProcessor` instead of over UDP, and the reply comes back the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use mediacore_engine::{MediaControl, SessionId};
use mediacore_ng::{DeleteStart, NgProcessor, PartyCounters, PendingDelete};
use mediacore_runtime::Engine as RtEngine;
use std::collections::BTreeMap;

use mediacore_ng::bencode::Value;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

use crate::errors::media_error;

/// `(call_id, caller_tag, callee_tag)` as Python bytes.
type OwnerTuple<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Option<Bound<'py, PyBytes>>,
);

/// The ng processor bound to one engine, called directly (no socket).
#[pyclass(module = "mediacore._core", frozen)]
pub struct NgControl {
    processor: Mutex<NgProcessor>,
    /// `delete`s started by `delete_deferred` whose replies are not collected yet, by token.
    pending: Mutex<Vec<Deferred>>,
    next_token: AtomicU64,
}

/// `(token, reply)` pairs of deferred deletes, as Python objects.
type Collected<'py> = Vec<(u64, Bound<'py, PyAny>)>;

/// A deferred `delete`: its token, the deletion, and whether its outcome is wanted as the
/// parties' counters (`counters=True`) rather than the reply dictionary.
struct Deferred {
    token: u64,
    pending: PendingDelete,
    counters: bool,
}

/// What a deferred delete hands back, built without the GIL.
enum Outcome {
    Reply(Value),
    Counters(Vec<PartyCounters>),
}

impl Deferred {
    fn outcome(self) -> (u64, Outcome) {
        let outcome = if self.counters {
            Outcome::Counters(self.pending.finish_counters())
        } else {
            Outcome::Reply(self.pending.finish())
        };
        (self.token, outcome)
    }
}

/// A deferred delete's outcome as Python objects: the reply dictionary, or a tuple with one
/// `(tag, rtp_packets, quality)` per party, `quality` being `(expected, lost, jitter_us)` or
/// None.
fn outcome_object<'py>(py: Python<'py>, outcome: &Outcome) -> PyResult<Bound<'py, PyAny>> {
    match outcome {
        Outcome::Reply(reply) => from_value(py, reply),
        Outcome::Counters(parties) => {
            let items = parties
                .iter()
                .map(|p| {
                    let quality = match p.quality {
                        Some(q) => q.into_pyobject(py)?.into_any(),
                        None => py.None().into_bound(py),
                    };
                    (PyBytes::new(py, &p.tag), p.rtp_packets, quality).into_pyobject(py)
                })
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(py, items)?.into_any())
        }
    }
}

fn outcome_objects<'py>(
    py: Python<'py>,
    outcomes: Vec<(u64, Outcome)>,
) -> PyResult<Collected<'py>> {
    outcomes
        .into_iter()
        .map(|(token, outcome)| Ok((token, outcome_object(py, &outcome)?)))
        .collect()
}

impl NgControl {
    pub fn new(engine: RtEngine) -> Self {
        let control: Arc<dyn MediaControl> = Arc::new(engine);
        NgControl {
            processor: Mutex::new(NgProcessor::new(control)),
            pending: Mutex::new(Vec::new()),
            next_token: AtomicU64::new(1),
        }
    }

    fn locked(&self) -> PyResult<MutexGuard<'_, NgProcessor>> {
        self.processor
            .lock()
            .map_err(|_| media_error("ng processor lock poisoned"))
    }

    fn pending_deletes_locked(&self) -> PyResult<MutexGuard<'_, Vec<Deferred>>> {
        self.pending
            .lock()
            .map_err(|_| media_error("pending deletes lock poisoned"))
    }
}

#[pymethods]
impl NgControl {
    /// Handles one ng datagram (`cookie SP bencode`) and returns the reply datagram, or `None`
    /// when no cookie could be split off. Releases the GIL while the engine works.
    fn handle<'py>(
        &self,
        py: Python<'py>,
        datagram: &[u8],
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let unix = unix_now();
        let reply = py.detach(|| {
            self.locked()
                .map(|mut p| p.handle(datagram, Instant::now(), unix))
        })?;
        Ok(reply.map(|r| PyBytes::new(py, &r)))
    }

    /// Handles one ng request given as a dictionary (str or bytes keys and strings, ints, lists,
    /// dicts) and returns the reply dictionary (strings as bytes): the same commands as
    /// `handle`, without bencode on either side.
    fn request<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = to_value(command.as_any(), 0)?;
        let unix = unix_now();
        let reply = py.detach(|| self.locked().map(|mut p| p.handle_value(&value, unix)))?;
        from_value(py, &reply)
    }

    /// A `delete` request (as for `request`) that does not wait for the media workers: the call
    /// is gone for every later command when this returns. Returns the reply dictionary when it
    /// is known at once (an error, such as an unknown call), else an int token whose outcome
    /// `collect_deletes` hands back once the final statistics are in: the reply dictionary, or
    /// with `counters=True` only what a call's record keeps of it, a tuple with one
    /// `(tag, rtp_packets, quality)` per party (`quality`: `(expected, lost, jitter_us)` of the
    /// RTP received from that party, or None without statistics).
    #[pyo3(signature = (command, counters=false))]
    fn delete_deferred<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyDict>,
        counters: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = to_value(command.as_any(), 0)?;
        let unix = unix_now();
        let started = self.locked()?.delete_deferred(&value, unix);
        match started {
            DeleteStart::Done(reply) => from_value(py, &reply),
            DeleteStart::Pending(pending) => {
                let token = self.next_token.fetch_add(1, Ordering::Relaxed);
                self.pending_deletes_locked()?.push(Deferred {
                    token,
                    pending,
                    counters,
                });
                Ok(token.into_pyobject(py)?.into_any())
            }
        }
    }

    /// The deferred deletes whose outcome is known now, as `(token, reply)`; never blocks. A
    /// worker that has not answered within the engine's reply timeout counts as failed (the
    /// reply then lacks that session's statistics).
    fn collect_deletes<'py>(&self, py: Python<'py>) -> PyResult<Collected<'py>> {
        let now = Instant::now();
        let (done, waiting): (Vec<Deferred>, bool) = {
            let mut pending = self.pending_deletes_locked()?;
            let mut done = Vec::new();
            let mut i = 0;
            while i < pending.len() {
                if pending[i].pending.is_done(now) {
                    done.push(pending.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            (done, !pending.is_empty())
        };
        if waiting {
            // deletes are queued without waking their worker: the ones still waiting are
            // carried out now if nothing else woke it since (the next collection finds them)
            self.locked()?.flush();
        }
        outcome_objects(py, done.into_iter().map(Deferred::outcome).collect())
    }

    /// Every deferred delete's reply, waiting (without the GIL) for those not known yet, up
    /// to the reply timeout: for shutdown, so no call's final statistics are lost.
    fn finish_deletes<'py>(&self, py: Python<'py>) -> PyResult<Collected<'py>> {
        let all: Vec<Deferred> = std::mem::take(&mut *self.pending_deletes_locked()?);
        self.locked()?.flush();
        let outcomes = py.detach(|| all.into_iter().map(Deferred::outcome).collect());
        outcome_objects(py, outcomes)
    }

    /// Deferred deletes not collected yet.
    #[getter]
    fn pending_deletes(&self) -> PyResult<usize> {
        Ok(self.pending_deletes_locked()?.len())
    }

    /// `(call_id, caller_tag, callee_tag)` of the call owning `session_id`, or `None`.
    fn call_of<'py>(&self, py: Python<'py>, session_id: u64) -> PyResult<Option<OwnerTuple<'py>>> {
        let found = self.locked()?.call_of(SessionId(session_id));
        Ok(found.map(|o| {
            (
                PyBytes::new(py, &o.call_id),
                PyBytes::new(py, &o.caller_tag),
                o.callee_tag.map(|t| PyBytes::new(py, &t)),
            )
        }))
    }

    /// Number of calls with media state.
    #[getter]
    fn call_count(&self) -> PyResult<usize> {
        Ok(self.locked()?.call_count())
    }

    /// Deletes every call's sessions (shutdown).
    fn delete_all(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.locked().map(|mut p| p.delete_all()))
    }
}

/// Seconds since the Unix epoch (stamps calls and packets in replies); 0 on a clock before it.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Nesting deeper than this is refused (a request is a few levels deep).
const MAX_DEPTH: usize = 16;

fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("ng request nested too deeply"));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Bytes(s.to_str()?.as_bytes().to_vec()));
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(PyValueError::new_err("ng has no booleans"));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return Ok(Value::Int(i.extract::<i64>()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = BTreeMap::new();
        for (k, v) in d.iter() {
            let key = match to_value(&k, depth + 1)? {
                Value::Bytes(b) => b,
                _ => return Err(PyValueError::new_err("ng dictionary keys are strings")),
            };
            map.insert(key, to_value(&v, depth + 1)?);
        }
        return Ok(Value::Dict(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|v| to_value(&v, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::List);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|v| to_value(&v, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::List);
    }
    Err(PyValueError::new_err(format!(
        "cannot send {} in an ng request",
        obj.get_type().name()?
    )))
}

fn from_value<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(from_value(py, item)?)?;
            }
            list.into_any()
        }
        Value::Dict(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(PyBytes::new(py, k), from_value(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
