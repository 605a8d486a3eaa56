//! `NgControl`: the ng command layer in-process. The control plane speaks one media-control
//! vocabulary (rtpengine's ng: offer, answer, delete, query…) whether the engine runs in this
//! process or on a media node; in-process the datagram goes straight to the sans-IO
//! `NgProcessor` instead of over UDP, and the reply comes back the same way.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use mediacore_engine::{MediaControl, SessionId};
use mediacore_ng::NgProcessor;
use mediacore_runtime::Engine as RtEngine;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

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
}

impl NgControl {
    pub fn new(engine: RtEngine) -> Self {
        let control: Arc<dyn MediaControl> = Arc::new(engine);
        NgControl {
            processor: Mutex::new(NgProcessor::new(control)),
        }
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
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let reply = py.detach(|| {
            self.processor
                .lock()
                .map(|mut p| p.handle(datagram, Instant::now(), unix))
                .map_err(|_| ())
        });
        let reply = reply.map_err(|_| media_error("ng processor lock poisoned"))?;
        Ok(reply.map(|r| PyBytes::new(py, &r)))
    }

    /// `(call_id, caller_tag, callee_tag)` of the call owning `session_id`, or `None`.
    fn call_of<'py>(&self, py: Python<'py>, session_id: u64) -> PyResult<Option<OwnerTuple<'py>>> {
        let found = self
            .processor
            .lock()
            .map_err(|_| media_error("ng processor lock poisoned"))?
            .call_of(SessionId(session_id));
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
        Ok(self
            .processor
            .lock()
            .map_err(|_| media_error("ng processor lock poisoned"))?
            .call_count())
    }

    /// Deletes every call's sessions (shutdown).
    fn delete_all(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            self.processor
                .lock()
                .map(|mut p| p.delete_all())
                .map_err(|_| ())
        })
        .map_err(|_| media_error("ng processor lock poisoned"))
    }
}
