//! The one funnel from engine errors to Python exceptions.
//!
//! The exception classes are plain Python (`mediacore/errors.py`) so that they can subclass both
//! our base class and the builtin a caller expects (`MediaSpecError(MediaError, ValueError)`,
//! `UnknownSessionError(MediaError, KeyError)`), as httptools keeps its exceptions in Python.

use mediacore_engine::control::ControlError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::PyErr;

fn raise(name: &str, msg: String) -> PyErr {
    Python::attach(|py| {
        let cls = py
            .import("mediacore.errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match cls {
            Ok(cls) => PyErr::from_type(cls, msg),
            Err(_) => PyRuntimeError::new_err(msg),
        }
    })
}

pub fn control_error(e: ControlError) -> PyErr {
    let msg = e.to_string();
    match e {
        ControlError::InvalidSpec(_) => raise("MediaSpecError", msg),
        ControlError::PortsExhausted => raise("CapacityError", msg),
        ControlError::TranscodingCapacity(_) => raise("TranscodingCapacityError", msg),
        ControlError::UnknownSession(_) => raise("UnknownSessionError", msg),
        ControlError::Unavailable(_) | ControlError::Io(_) => raise("MediaError", msg),
        ControlError::Refused(_) => raise("DtmfError", msg),
    }
}

pub fn spec_error(msg: impl Into<String>) -> PyErr {
    raise("MediaSpecError", msg.into())
}

pub fn media_error(msg: impl Into<String>) -> PyErr {
    raise("MediaError", msg.into())
}
