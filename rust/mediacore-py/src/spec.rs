//! Turning the Python spec (a dict shaped like `mediacore.SessionSpec`) into the engine's
//! validated `SessionSpec`, once per call. Unknown keys are errors that name themselves.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mediacore_engine::{
    CodecSpec, DtmfMode, EchoCancelSpec, JitterBufferSpec, JitterMode, LatchPolicy, LegSpec,
    SessionSpec, MAX_GAIN_DB,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::errors::spec_error;

const SESSION_KEYS: &[&str] = &["caller", "callee", "rtp_timeout", "hold_timeout"];
const LEG_KEYS: &[&str] = &[
    "remote_rtp",
    "remote_rtcp",
    "latch",
    "dscp",
    "hold",
    "clock_rates",
    "codecs",
    "ptime",
    "vad",
    "jitter_buffer",
    "echo_cancel",
    "dtmf",
    "gain_db",
    "comfort_noise",
    "local_ip",
];
const JITTER_KEYS: &[&str] = &["mode", "min", "max", "default", "relay"];
const ECHO_KEYS: &[&str] = &["enabled", "tail"];
const CODEC_KEYS: &[&str] = &["pt", "name", "clock_rate", "channels", "fmtp"];

/// Static payload types (RFC 3551) for the string shorthand `"PCMA"`.
fn static_codec(name: &str) -> Option<CodecSpec> {
    let (pt, canonical) = match name.to_ascii_uppercase().as_str() {
        "PCMU" => (0, "PCMU"),
        "PCMA" => (8, "PCMA"),
        "G729" => (18, "G729"),
        _ => return None,
    };
    Some(CodecSpec::new(pt, canonical, 8000))
}

fn parse_codec(v: &Bound<'_, PyAny>, field: &str) -> PyResult<CodecSpec> {
    if let Ok(name) = v.extract::<String>() {
        return static_codec(&name).ok_or_else(|| {
            spec_error(format!(
                "{field}: {name:?} has no static payload type; give a dict with pt, name, clock_rate"
            ))
        });
    }
    let d = v
        .cast::<PyDict>()
        .map_err(|_| spec_error(format!("{field}: expected a codec name or a dict")))?;
    check_keys(d, CODEC_KEYS, &format!("{field}."))?;
    let pt: i64 = match d.get_item("pt")? {
        Some(x) => x
            .extract()
            .map_err(|_| spec_error(format!("{field}.pt: expected an int")))?,
        None => return Err(spec_error(format!("{field}.pt: required"))),
    };
    let pt = u8::try_from(pt)
        .ok()
        .filter(|p| *p <= 127)
        .ok_or_else(|| spec_error(format!("{field}.pt: {pt} is not in 0..=127")))?;
    let name: String = match d.get_item("name")? {
        Some(x) => x
            .extract()
            .map_err(|_| spec_error(format!("{field}.name: expected a str")))?,
        None => return Err(spec_error(format!("{field}.name: required"))),
    };
    let default_rate = if name.eq_ignore_ascii_case("opus") {
        48000
    } else {
        8000
    };
    let rate: i64 = match d.get_item("clock_rate")? {
        Some(x) => x
            .extract()
            .map_err(|_| spec_error(format!("{field}.clock_rate: expected an int")))?,
        None => default_rate,
    };
    let mut c = CodecSpec::new(
        pt,
        &name,
        u32::try_from(rate)
            .ok()
            .filter(|r| *r > 0)
            .ok_or_else(|| spec_error(format!("{field}.clock_rate: {rate} is not positive")))?,
    );
    if let Some(x) = d.get_item("channels")? {
        let ch: i64 = x
            .extract()
            .map_err(|_| spec_error(format!("{field}.channels: expected an int")))?;
        c.channels = u8::try_from(ch)
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| spec_error(format!("{field}.channels: {ch} is not positive")))?;
    }
    if let Some(x) = d.get_item("fmtp")? {
        if !x.is_none() {
            c.fmtp = Some(
                x.extract()
                    .map_err(|_| spec_error(format!("{field}.fmtp: expected a str")))?,
            );
        }
    }
    Ok(c)
}

fn check_keys(d: &Bound<'_, PyDict>, allowed: &[&str], where_: &str) -> PyResult<()> {
    for k in d.keys() {
        let name: String = k
            .extract()
            .map_err(|_| spec_error(format!("{where_}: keys must be strings")))?;
        if !allowed.contains(&name.as_str()) {
            return Err(spec_error(format!(
                "{where_}{name}: unknown key (allowed: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn parse_addr(v: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<SocketAddr>> {
    if v.is_none() {
        return Ok(None);
    }
    let t = v
        .cast::<PyTuple>()
        .map_err(|_| spec_error(format!("{field}: expected (host, port) or None")))?;
    if t.len() != 2 {
        return Err(spec_error(format!(
            "{field}: expected (host, port) or None"
        )));
    }
    let host: String = t
        .get_item(0)?
        .extract()
        .map_err(|_| spec_error(format!("{field}: host must be a str")))?;
    let port: i64 = t
        .get_item(1)?
        .extract()
        .map_err(|_| spec_error(format!("{field}: port must be an int")))?;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| spec_error(format!("{field}: {host:?} is not an IP address")))?;
    let port = u16::try_from(port)
        .map_err(|_| spec_error(format!("{field}: port {port} is not in 0..=65535")))?;
    Ok(Some(SocketAddr::new(ip, port)))
}

fn seconds(v: &Bound<'_, PyAny>, field: &str) -> PyResult<Duration> {
    let s: f64 = v
        .extract()
        .map_err(|_| spec_error(format!("{field}: expected seconds as a number")))?;
    if !s.is_finite() || s <= 0.0 || s > 1e9 {
        return Err(spec_error(format!(
            "{field}: {s} is not a positive number of seconds"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

fn milliseconds(d: &Bound<'_, PyDict>, key: &str, field: &str) -> PyResult<Option<u32>> {
    let Some(x) = d.get_item(key)? else {
        return Ok(None);
    };
    let n: i64 = x
        .extract()
        .map_err(|_| spec_error(format!("{field}.{key}: expected an int (ms)")))?;
    u32::try_from(n)
        .map(Some)
        .map_err(|_| spec_error(format!("{field}.{key}: {n} is not a number of ms")))
}

fn boolean(d: &Bound<'_, PyDict>, key: &str, field: &str) -> PyResult<Option<bool>> {
    match d.get_item(key)? {
        Some(x) => x
            .extract()
            .map(Some)
            .map_err(|_| spec_error(format!("{field}.{key}: expected a bool"))),
        None => Ok(None),
    }
}

/// `{"mode": "fixed"|"adaptive", "min": ms, "max": ms, "default": ms, "relay": bool}`
/// (VOS3000 `SS_JITTERBUFFER_MODE`, `_MIN`, `_MAX`, `_DEFAULT`); missing keys keep defaults.
pub fn parse_jitter_buffer(
    v: &Bound<'_, PyAny>,
    field: &str,
    base: JitterBufferSpec,
) -> PyResult<JitterBufferSpec> {
    let d = v
        .cast::<PyDict>()
        .map_err(|_| spec_error(format!("{field}: expected a dict")))?;
    check_keys(d, JITTER_KEYS, &format!("{field}."))?;
    let mut jb = base;
    if let Some(x) = d.get_item("mode")? {
        let m: String = x
            .extract()
            .map_err(|_| spec_error(format!("{field}.mode: expected 'fixed' or 'adaptive'")))?;
        jb.mode = match m.as_str() {
            "fixed" => JitterMode::Fixed,
            "adaptive" => JitterMode::Adaptive,
            other => {
                return Err(spec_error(format!(
                    "{field}.mode: {other:?} is not 'fixed' or 'adaptive'"
                )))
            }
        };
    }
    jb.min_ms = milliseconds(d, "min", field)?.unwrap_or(jb.min_ms);
    jb.max_ms = milliseconds(d, "max", field)?.unwrap_or(jb.max_ms);
    jb.default_ms = milliseconds(d, "default", field)?.unwrap_or(jb.default_ms);
    jb.relay = boolean(d, "relay", field)?.unwrap_or(jb.relay);
    Ok(jb)
}

/// `{"enabled": bool, "tail": 64|128}` (VOS3000 `SS_ECHOCANCEL`, `SS_ECHOCANCELTAIL`).
pub fn parse_echo_cancel(
    v: &Bound<'_, PyAny>,
    field: &str,
    base: EchoCancelSpec,
) -> PyResult<EchoCancelSpec> {
    let d = v
        .cast::<PyDict>()
        .map_err(|_| spec_error(format!("{field}: expected a dict")))?;
    check_keys(d, ECHO_KEYS, &format!("{field}."))?;
    let mut ec = base;
    ec.enabled = boolean(d, "enabled", field)?.unwrap_or(ec.enabled);
    ec.tail_ms = milliseconds(d, "tail", field)?.unwrap_or(ec.tail_ms);
    Ok(ec)
}

fn parse_leg(v: &Bound<'_, PyAny>, side: &str, base: &LegSpec) -> PyResult<LegSpec> {
    let d = v
        .cast::<PyDict>()
        .map_err(|_| spec_error(format!("{side}: expected a dict")))?;
    let prefix = format!("{side}.");
    check_keys(d, LEG_KEYS, &prefix)?;
    let mut leg = LegSpec {
        jitter_buffer: base.jitter_buffer,
        echo_cancel: base.echo_cancel,
        ..LegSpec::default()
    };
    if let Some(x) = d.get_item("remote_rtp")? {
        leg.remote_rtp = parse_addr(&x, &format!("{prefix}remote_rtp"))?;
    }
    if let Some(x) = d.get_item("remote_rtcp")? {
        leg.remote_rtcp = parse_addr(&x, &format!("{prefix}remote_rtcp"))?;
    }
    if let Some(x) = d.get_item("latch")? {
        let s: String = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}latch: expected 'learn' or 'strict'")))?;
        leg.latch = match s.as_str() {
            "learn" => LatchPolicy::Learn,
            "strict" => LatchPolicy::Strict,
            other => {
                return Err(spec_error(format!(
                    "{prefix}latch: {other:?} is not 'learn' or 'strict'"
                )))
            }
        };
    }
    if let Some(x) = d.get_item("dscp")? {
        let n: i64 = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}dscp: expected an int")))?;
        leg.dscp = u8::try_from(n)
            .ok()
            .filter(|d| *d <= 63)
            .ok_or_else(|| spec_error(format!("{prefix}dscp: {n} is not in 0..=63")))?;
    }
    if let Some(x) = d.get_item("hold")? {
        leg.hold = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}hold: expected a bool")))?;
    }
    if let Some(x) = d.get_item("codecs")? {
        let list = x
            .cast::<PyList>()
            .map_err(|_| spec_error(format!("{prefix}codecs: expected a list")))?;
        for (i, item) in list.iter().enumerate() {
            leg.codecs
                .push(parse_codec(&item, &format!("{prefix}codecs[{i}]"))?);
        }
    }
    if let Some(x) = d.get_item("ptime")? {
        let p: i64 = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}ptime: expected an int (ms)")))?;
        leg.ptime_ms = u32::try_from(p)
            .ok()
            .filter(|p| [10, 20, 30, 40, 60].contains(p))
            .ok_or_else(|| spec_error(format!("{prefix}ptime: {p} is not 10, 20, 30, 40 or 60")))?;
    }
    if let Some(x) = d.get_item("local_ip")? {
        if !x.is_none() {
            let text: String = x
                .extract()
                .map_err(|_| spec_error(format!("{prefix}local_ip: expected a str or None")))?;
            leg.local_ip = Some(text.parse().map_err(|_| {
                spec_error(format!("{prefix}local_ip: {text:?} is not an IP address"))
            })?);
        }
    }
    if let Some(x) = d.get_item("comfort_noise")? {
        leg.comfort_noise = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}comfort_noise: expected a bool")))?;
    }
    if let Some(x) = d.get_item("vad")? {
        leg.vad = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}vad: expected a bool")))?;
    }
    if let Some(x) = d.get_item("jitter_buffer")? {
        leg.jitter_buffer =
            parse_jitter_buffer(&x, &format!("{prefix}jitter_buffer"), leg.jitter_buffer)?;
    }
    if let Some(x) = d.get_item("echo_cancel")? {
        leg.echo_cancel = parse_echo_cancel(&x, &format!("{prefix}echo_cancel"), leg.echo_cancel)?;
    }
    if let Some(x) = d.get_item("dtmf")? {
        let what = "expected 'auto', 'rfc2833', 'info' or 'inband'";
        let s: String = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}dtmf: {what}")))?;
        leg.dtmf = match s.as_str() {
            "auto" => DtmfMode::Auto,
            "rfc2833" => DtmfMode::Rfc2833,
            "info" => DtmfMode::Info,
            "inband" => DtmfMode::Inband,
            other => return Err(spec_error(format!("{prefix}dtmf: {other:?}: {what}"))),
        };
    }
    if let Some(x) = d.get_item("gain_db")? {
        let n: i64 = x
            .extract()
            .map_err(|_| spec_error(format!("{prefix}gain_db: expected an int (dB)")))?;
        leg.gain_db = i8::try_from(n)
            .ok()
            .filter(|g| (-MAX_GAIN_DB..=MAX_GAIN_DB).contains(g))
            .ok_or_else(|| spec_error(format!("{prefix}gain_db: {n} dB is not in -10..=10")))?;
    }
    if let Some(x) = d.get_item("clock_rates")? {
        let rates = x
            .cast::<PyDict>()
            .map_err(|_| spec_error(format!("{prefix}clock_rates: expected dict[int, int]")))?;
        for (k, v) in rates.iter() {
            let pt: i64 = k
                .extract()
                .map_err(|_| spec_error(format!("{prefix}clock_rates: keys are payload types")))?;
            let rate: i64 = v
                .extract()
                .map_err(|_| spec_error(format!("{prefix}clock_rates: values are Hz")))?;
            let pt = u8::try_from(pt).ok().filter(|p| *p <= 127).ok_or_else(|| {
                spec_error(format!(
                    "{prefix}clock_rates: payload type {pt} is not in 0..=127"
                ))
            })?;
            let rate = u32::try_from(rate).ok().filter(|r| *r > 0).ok_or_else(|| {
                spec_error(format!(
                    "{prefix}clock_rates: clock rate {rate} is not positive"
                ))
            })?;
            leg.clock_rates.push((pt, rate));
        }
    }
    Ok(leg)
}

/// Builds the engine spec; `defaults` is the engine's (timeouts, each leg's jitter buffer and
/// echo canceller).
pub fn parse_session(v: &Bound<'_, PyAny>, defaults: SessionSpec) -> PyResult<SessionSpec> {
    let d = v
        .cast::<PyDict>()
        .map_err(|_| spec_error("session spec: expected a dict"))?;
    check_keys(d, SESSION_KEYS, "")?;
    let mut spec = defaults;
    if let Some(x) = d.get_item("caller")? {
        spec.caller = parse_leg(&x, "caller", &spec.caller)?;
    }
    if let Some(x) = d.get_item("callee")? {
        spec.callee = parse_leg(&x, "callee", &spec.callee)?;
    }
    if let Some(x) = d.get_item("rtp_timeout")? {
        spec.rtp_timeout = seconds(&x, "rtp_timeout")?;
    }
    if let Some(x) = d.get_item("hold_timeout")? {
        spec.hold_timeout = seconds(&x, "hold_timeout")?;
    }
    spec.validate().map_err(|e| spec_error(e.to_string()))?;
    Ok(spec)
}
