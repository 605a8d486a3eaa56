//! `mediacore._core`: the media engine as seen from Python. One crossing per call event
//! (create, update, query, delete) and one per batch of events; never per packet. Blocking waits
//! for a worker's reply release the GIL.

mod convert;
mod errors;
mod ng;
mod spec;

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use mediacore_engine::{DtmfPlay, MediaControl, SessionId, SessionSpec, Side};
use mediacore_runtime::{default_workers, Engine as RtEngine, EngineConfig, NgServer};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use errors::{control_error, media_error, spec_error};

/// The extension's own allocator. A session is built on the control thread (the Python loop's)
/// and dropped on its media worker: with glibc's allocator that free takes the control thread's
/// arena lock, and the two threads woke each other through it at every call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A running media engine: worker threads relaying RTP/RTCP for two-leg sessions.
#[pyclass(module = "mediacore._core", frozen)]
struct Engine {
    engine: RtEngine,
    ng: Mutex<Option<NgServer>>,
}

impl Engine {
    fn live(&self) -> PyResult<&RtEngine> {
        if self.engine.is_closed() {
            return Err(media_error("engine is closed"));
        }
        Ok(&self.engine)
    }
    fn defaults(&self) -> SessionSpec {
        self.engine.default_spec()
    }
}

fn seconds_opt(v: f64, name: &str) -> PyResult<Duration> {
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(spec_error(format!(
            "{name}: {v} is not a positive number of seconds"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

fn port(v: i64, name: &str) -> PyResult<u16> {
    u16::try_from(v)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| spec_error(format!("{name}: {v} is not in 1..=65535")))
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (interface = "127.0.0.1", port_min = 10000, port_max = 20000, workers = None, rtp_timeout = 30.0, hold_timeout = 3600.0, advertise = None, transcode_slots = 1000, cpu_guard = 0.85, jitter_buffer = None, echo_cancel = None, interfaces = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        interface: &str,
        port_min: i64,
        port_max: i64,
        workers: Option<i64>,
        rtp_timeout: f64,
        hold_timeout: f64,
        advertise: Option<&str>,
        transcode_slots: i64,
        cpu_guard: f64,
        jitter_buffer: Option<&Bound<'_, PyAny>>,
        echo_cancel: Option<&Bound<'_, PyAny>>,
        interfaces: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let interfaces = interfaces
            .unwrap_or_default()
            .iter()
            .map(|i| {
                i.parse::<IpAddr>()
                    .map_err(|_| spec_error(format!("interfaces: {i:?} is not an IP address")))
            })
            .collect::<PyResult<Vec<IpAddr>>>()?;
        let interface: IpAddr = interface
            .parse()
            .map_err(|_| spec_error(format!("interface: {interface:?} is not an IP address")))?;
        let advertise = match advertise {
            Some(a) => Some(
                a.parse::<IpAddr>()
                    .map_err(|_| spec_error(format!("advertise: {a:?} is not an IP address")))?,
            ),
            None => None,
        };
        let workers = match workers {
            Some(w) => usize::try_from(w)
                .map_err(|_| spec_error(format!("workers: {w} is not in 1..=64")))?,
            None => default_workers(),
        };
        let config = EngineConfig {
            interface,
            advertise,
            interfaces,
            port_min: port(port_min, "port_min")?,
            port_max: port(port_max, "port_max")?,
            workers,
            rtp_timeout: seconds_opt(rtp_timeout, "rtp_timeout")?,
            hold_timeout: seconds_opt(hold_timeout, "hold_timeout")?,
            transcode_slots: usize::try_from(transcode_slots).map_err(|_| {
                spec_error(format!("transcode_slots: {transcode_slots} is negative"))
            })?,
            cpu_guard,
            jitter_buffer: match jitter_buffer {
                Some(v) => spec::parse_jitter_buffer(v, "jitter_buffer", Default::default())?,
                None => Default::default(),
            },
            echo_cancel: match echo_cancel {
                Some(v) => spec::parse_echo_cancel(v, "echo_cancel", Default::default())?,
                None => Default::default(),
            },
        };
        config.validate().map_err(spec_error)?;
        let engine = RtEngine::start(config).map_err(media_error)?;
        Ok(Engine {
            engine,
            ng: Mutex::new(None),
        })
    }

    /// Creates a session from a spec dict; returns its id and local ports.
    fn create_session<'py>(
        &self,
        py: Python<'py>,
        spec: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let spec = spec::parse_session(spec, self.defaults())?;
        let engine = self.live()?.clone();
        let info = py
            .detach(move || engine.create(spec))
            .map_err(control_error)?;
        convert::session_info(py, &info)
    }

    fn update_session(
        &self,
        py: Python<'_>,
        session_id: u64,
        spec: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let spec = spec::parse_session(spec, self.defaults())?;
        let engine = self.live()?.clone();
        py.detach(move || engine.update(SessionId(session_id), spec))
            .map_err(control_error)
    }

    fn query_session<'py>(&self, py: Python<'py>, session_id: u64) -> PyResult<Bound<'py, PyDict>> {
        let engine = self.live()?.clone();
        let stats = py
            .detach(move || engine.query(SessionId(session_id)))
            .map_err(control_error)?;
        convert::session_stats(py, &stats)
    }

    /// Deletes a session, releasing its ports; returns the final statistics (for the CDR).
    fn delete_session<'py>(
        &self,
        py: Python<'py>,
        session_id: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let engine = self.live()?.clone();
        let stats = py
            .detach(move || engine.delete(SessionId(session_id)))
            .map_err(control_error)?;
        convert::session_stats(py, &stats)
    }

    /// Queues `digits` to play toward the party of `to_leg` ("caller" or "callee"), rendered
    /// per that leg's DTMF mode; returns at once (the digits play in the media workers).
    #[pyo3(signature = (session_id, to_leg, digits, duration_ms = 250, volume = -8, pause_ms = 100))]
    #[pyo3(
        text_signature = "(self, /, session_id, to_leg, digits, duration_ms=250, volume=-8, pause_ms=100)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn play_dtmf(
        &self,
        py: Python<'_>,
        session_id: u64,
        to_leg: &str,
        digits: &str,
        duration_ms: i64,
        volume: i64,
        pause_ms: i64,
    ) -> PyResult<()> {
        let to = match to_leg {
            "caller" => Side::Caller,
            "callee" => Side::Callee,
            other => {
                return Err(spec_error(format!(
                    "to_leg: {other:?} is not 'caller' or 'callee'"
                )))
            }
        };
        let ms = |v: i64, name: &str| {
            u32::try_from(v).map_err(|_| spec_error(format!("{name}: {v} is not a duration in ms")))
        };
        let volume = u8::try_from(-volume)
            .ok()
            .filter(|v| *v <= 63)
            .ok_or_else(|| spec_error(format!("volume: {volume} dBm0 is not in -63..=0")))?;
        let play = DtmfPlay::new(
            digits,
            ms(duration_ms, "duration_ms")?,
            volume,
            ms(pause_ms, "pause_ms")?,
        )
        .map_err(spec_error)?;
        let engine = self.live()?.clone();
        py.detach(move || engine.play_dtmf(SessionId(session_id), to, play))
            .map_err(control_error)
    }

    fn session_ids(&self) -> Vec<u64> {
        self.engine.session_ids().into_iter().map(|s| s.0).collect()
    }

    /// A descriptor that becomes readable when events are waiting (for `loop.add_reader`).
    fn event_fd(&self) -> i32 {
        self.engine.event_fd()
    }

    #[pyo3(signature = (max_events = 1024))]
    fn drain_events<'py>(
        &self,
        py: Python<'py>,
        max_events: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let events = self.engine.drain_events(max_events);
        let list = PyList::empty(py);
        for e in &events {
            list.append(convert::event(py, e)?)?;
        }
        Ok(list)
    }

    fn totals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        convert::totals(py, &self.engine.totals())
    }

    /// Serves rtpengine's ng protocol on `listen` ("host:port"); returns the bound address.
    fn serve_ng(&self, listen: &str) -> PyResult<(String, u16)> {
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| spec_error(format!("listen_ng: {listen:?} is not host:port")))?;
        let engine = self.live()?.clone();
        let mut slot = self
            .ng
            .lock()
            .map_err(|_| media_error("ng server lock poisoned"))?;
        if slot.is_some() {
            return Err(media_error("the ng server is already running"));
        }
        let server = NgServer::start(addr, engine)
            .map_err(|e| media_error(format!("listen_ng {addr}: {e}")))?;
        let local = server.local_addr();
        *slot = Some(server);
        Ok((local.ip().to_string(), local.port()))
    }

    /// The ng command layer of this engine, called in-process (see `NgControl`).
    fn ng_control(&self) -> PyResult<ng::NgControl> {
        Ok(ng::NgControl::new(self.live()?.clone()))
    }

    fn stop_ng(&self, py: Python<'_>) -> PyResult<()> {
        let server = self
            .ng
            .lock()
            .map_err(|_| media_error("ng server lock poisoned"))?
            .take();
        if let Some(mut s) = server {
            py.detach(move || s.stop());
        }
        Ok(())
    }

    /// Stops the ng server and the workers; every socket is closed. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.stop_ng(py)?;
        let engine = self.engine.clone();
        py.detach(move || engine.shutdown());
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.engine.is_closed()
    }

    /// Number of media worker threads.
    #[getter]
    fn workers(&self) -> usize {
        self.engine.config().workers
    }

    #[getter]
    fn advertised_address(&self) -> String {
        self.engine.advertised_address().to_string()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<ng::NgControl>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
