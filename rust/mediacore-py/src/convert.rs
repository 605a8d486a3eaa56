//! Engine values → Python dicts (shaped as the TypedDicts in `mediacore/_core.pyi`).

use std::net::SocketAddr;
use std::time::SystemTime;

use mediacore_engine::control::{LocalPorts, SessionInfo};
use mediacore_engine::{EchoCancelStats, EventKind, JitterBufferStats, LegStats, SessionStats};
use mediacore_runtime::{EngineTotals, EventRecord};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;

fn addr(py: Python<'_>, a: Option<SocketAddr>) -> PyResult<Py<PyAny>> {
    match a {
        Some(a) => (a.ip().to_string(), a.port()).into_py_any(py),
        None => Ok(py.None()),
    }
}

fn ports<'py>(py: Python<'py>, p: &LocalPorts) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rtp", addr(py, Some(p.rtp))?)?;
    d.set_item("rtcp", addr(py, Some(p.rtcp))?)?;
    Ok(d)
}

pub fn session_info<'py>(py: Python<'py>, info: &SessionInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", info.id.0)?;
    d.set_item("caller", ports(py, &info.caller)?)?;
    d.set_item("callee", ports(py, &info.callee)?)?;
    Ok(d)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn leg<'py>(py: Python<'py>, l: &LegStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("remote_rtp", addr(py, l.remote_rtp)?)?;
    d.set_item("remote_rtcp", addr(py, l.remote_rtcp)?)?;
    d.set_item("latched", l.latched)?;
    d.set_item("hold", l.hold)?;
    d.set_item("datagrams", l.datagrams)?;
    let r = &l.rtp;
    d.set_item("packets", r.packets)?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("expected", r.expected)?;
    d.set_item("lost", r.lost)?;
    d.set_item("duplicates", r.duplicates)?;
    d.set_item("out_of_order", r.out_of_order)?;
    d.set_item("jitter", r.jitter)?;
    d.set_item("jitter_ms", r.jitter_ms)?;
    d.set_item("ssrc", r.ssrc)?;
    d.set_item("ssrc_changes", r.ssrc_changes)?;
    d.set_item("highest_seq", r.highest_seq)?;
    d.set_item("rtcp_packets", l.rtcp_packets)?;
    d.set_item("rtcp_bytes", l.rtcp_bytes)?;
    d.set_item("sent_rtp_packets", l.sent_rtp_packets)?;
    d.set_item("sent_rtp_bytes", l.sent_rtp_bytes)?;
    d.set_item("sent_rtcp_packets", l.sent_rtcp_packets)?;
    d.set_item("sent_rtcp_bytes", l.sent_rtcp_bytes)?;
    d.set_item("send_errors", l.send_errors)?;
    let dropped = PyDict::new(py);
    dropped.set_item("malformed_rtp", l.dropped.malformed_rtp)?;
    dropped.set_item("malformed_rtcp", l.dropped.malformed_rtcp)?;
    dropped.set_item("foreign_source", l.dropped.foreign_source)?;
    dropped.set_item("no_destination", l.dropped.no_destination)?;
    dropped.set_item("oversized", l.dropped.oversized)?;
    d.set_item("dropped", dropped)?;
    d.set_item(
        "last_packet",
        l.since_last_packet.map(|s| unix_now() - s.as_secs_f64()),
    )?;
    d.set_item("timed_out", l.timed_out)?;
    d.set_item("dtmf_ignored", l.dtmf_ignored)?;
    match &l.transcoding {
        Some(t) => {
            let td = PyDict::new(py);
            td.set_item("decoded_packets", t.decoded_packets)?;
            td.set_item("late_events", t.late_events)?;
            td.set_item("unknown_payload_type", t.unknown_payload_type)?;
            td.set_item("encoded_packets", t.encoded_packets)?;
            td.set_item("encode_errors", t.encode_errors)?;
            td.set_item("dtx_packets", t.dtx_packets)?;
            td.set_item("cng_packets", t.cng_packets)?;
            td.set_item("dtmf_packets", t.dtmf_packets)?;
            td.set_item("dtmf_suppressed", t.dtmf_suppressed)?;
            td.set_item("overflow_samples", t.overflow_samples)?;
            d.set_item("transcoding", td)?;
        }
        None => d.set_item("transcoding", py.None())?,
    }
    match &l.jitter_buffer {
        Some(jb) => d.set_item("jitter_buffer", jitter_buffer(py, jb)?)?,
        None => d.set_item("jitter_buffer", py.None())?,
    }
    match &l.echo_canceller {
        Some(ec) => d.set_item("echo_canceller", echo_canceller(py, ec)?)?,
        None => d.set_item("echo_canceller", py.None())?,
    }
    Ok(d)
}

fn jitter_buffer<'py>(py: Python<'py>, jb: &JitterBufferStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let s = &jb.stats;
    d.set_item("mode", jb.mode.as_str())?;
    d.set_item("relay", jb.relay)?;
    d.set_item("current_delay_ms", s.current_delay_ms)?;
    d.set_item("target_delay_ms", s.target_delay_ms)?;
    d.set_item("packets", s.packets)?;
    d.set_item("late", s.late)?;
    d.set_item("discarded", s.discarded)?;
    d.set_item("duplicates", s.duplicates)?;
    d.set_item("reordered", s.reordered)?;
    d.set_item("concealed_ms", s.concealed_ms)?;
    d.set_item("played_ms", s.played_ms)?;
    d.set_item("concealment_rate", s.concealment_rate)?;
    d.set_item("accelerate_rate", s.accelerate_rate)?;
    d.set_item("expand_rate", s.expand_rate)?;
    d.set_item("resyncs", s.resyncs)?;
    Ok(d)
}

fn echo_canceller<'py>(py: Python<'py>, ec: &EchoCancelStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let s = &ec.stats;
    d.set_item("tail_ms", ec.tail_ms)?;
    d.set_item("delay_ms", s.delay_ms)?;
    d.set_item("erl_db", s.erl_db)?;
    d.set_item("erle_db", s.erle_db)?;
    d.set_item("double_talk_ratio", s.double_talk_ratio)?;
    d.set_item("converged", s.converged)?;
    Ok(d)
}

pub fn session_stats<'py>(py: Python<'py>, s: &SessionStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", s.id.0)?;
    d.set_item("age", s.age.as_secs_f64())?;
    d.set_item("caller", leg(py, &s.caller)?)?;
    d.set_item("callee", leg(py, &s.callee)?)?;
    Ok(d)
}

pub fn event<'py>(py: Python<'py>, e: &EventRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", e.event.kind.as_str())?;
    d.set_item("session", e.event.session.0)?;
    d.set_item("side", e.event.side.as_str())?;
    d.set_item("silent_for", e.event.silent_for.as_secs_f64())?;
    d.set_item("time", e.unix_time)?;
    match e.event.kind {
        EventKind::Dtmf {
            inband,
            digit,
            duration_ms,
            volume,
            ended,
            info_to,
            at_ms,
        } => {
            d.set_item("inband", inband)?;
            d.set_item("digit", digit.to_string())?;
            d.set_item("duration_ms", duration_ms)?;
            d.set_item("volume", volume)?;
            d.set_item("ended", ended)?;
            d.set_item("info_to", info_to.map(|s| s.as_str()))?;
            d.set_item("at_ms", at_ms)?;
        }
        EventKind::DtmfPlayed {
            digit,
            duration_ms,
            volume,
            via,
            at_ms,
        } => {
            d.set_item("digit", digit.to_string())?;
            d.set_item("duration_ms", duration_ms)?;
            d.set_item("volume", volume)?;
            d.set_item("via", via.as_str())?;
            d.set_item("at_ms", at_ms)?;
        }
        EventKind::MediaTimeout | EventKind::HoldTimeout => {}
    }
    Ok(d)
}

pub fn totals<'py>(py: Python<'py>, t: &EngineTotals) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("sessions", t.sessions)?;
    d.set_item("datagrams_in", t.datagrams_in)?;
    d.set_item("forwarded", t.forwarded)?;
    d.set_item("dropped", t.dropped)?;
    d.set_item("send_errors", t.send_errors)?;
    d.set_item("setup_failures", t.setup_failures)?;
    d.set_item("ports_in_use", t.ports_in_use)?;
    d.set_item("port_capacity", t.port_capacity)?;
    d.set_item("transcoding_sessions", t.transcoding_sessions)?;
    d.set_item("transcode_slots", t.transcode_slots)?;
    d.set_item("busy_permille", t.busy_permille)?;
    Ok(d)
}
