//! Reading an ng request dictionary: required keys, flags and the per-request media options.
//!
//! Unknown keys and unknown flags are ignored, as rtpengine does: Kamailio and OpenSIPS pass
//! through whatever the script writer put in the flags string, and refusing the call for a flag
//! this relay has no use for would be worse than ignoring it.

use std::net::IpAddr;

use mediacore_engine::dtmf::{
    DtmfPlay, PLAY_DEFAULT_DURATION_MS, PLAY_DEFAULT_PAUSE_MS, PLAY_DEFAULT_VOLUME, PLAY_MAX_MS,
};
use mediacore_engine::{DtmfMode, JitterMode, LatchPolicy, LegSpec, MAX_GAIN_DB};

use crate::bencode::Value;
use crate::codec::CodecOptions;

/// A request the processor refuses; `reason` becomes the reply's `error-reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgError {
    pub reason: String,
}

impl NgError {
    pub fn new(reason: impl Into<String>) -> Self {
        NgError {
            reason: reason.into(),
        }
    }
}

pub const ERR_NOT_DICT: &str = "Failed to decode bencode dictionary";
pub const ERR_NO_COMMAND: &str = "No command in message";
pub const ERR_UNKNOWN_COMMAND: &str = "Unrecognized command";
pub const ERR_NO_CALL_ID: &str = "No call-id in message";
pub const ERR_NO_FROM_TAG: &str = "No from-tag in message";
pub const ERR_NO_SDP: &str = "No SDP body in message";
pub const ERR_UNKNOWN_CALL: &str = "Unknown call-ID";

/// Read access to a request dictionary.
pub struct Request<'a> {
    dict: &'a Value,
}

impl<'a> Request<'a> {
    pub fn new(dict: &'a Value) -> Result<Self, NgError> {
        match dict {
            Value::Dict(_) => Ok(Request { dict }),
            _ => Err(NgError::new(ERR_NOT_DICT)),
        }
    }

    /// A non-empty byte-string key.
    pub fn bytes(&self, key: &str) -> Option<&'a [u8]> {
        self.dict
            .dict_get(key)
            .and_then(Value::as_bytes)
            .filter(|b| !b.is_empty())
    }

    pub fn required(&self, key: &str, missing: &str) -> Result<&'a [u8], NgError> {
        self.bytes(key).ok_or_else(|| NgError::new(missing))
    }

    pub fn command(&self) -> Result<&'a [u8], NgError> {
        self.required("command", ERR_NO_COMMAND)
    }

    pub fn call_id(&self) -> Result<&'a [u8], NgError> {
        self.required("call-id", ERR_NO_CALL_ID)
    }

    /// The strings of a list key (non-string items skipped; a single string counts as a list).
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.dict.dict_get(key).map(strings).unwrap_or_default()
    }

    /// Any value by key.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.dict.dict_get(key)
    }

    /// An integer key, also accepted as a decimal string (clients differ).
    pub fn int(&self, key: &str) -> Option<Result<i64, NgError>> {
        let v = self.dict.dict_get(key)?;
        Some(match v {
            Value::Int(n) => Ok(*n),
            Value::Bytes(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| NgError::new(format!("Invalid value for {key}"))),
            _ => Err(NgError::new(format!("Invalid value for {key}"))),
        })
    }
}

/// The strings of a list value (non-string items skipped; a single string counts as a list).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::List(items) => items
            .iter()
            .filter_map(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
        Value::Bytes(b) => vec![String::from_utf8_lossy(b).into_owned()],
        _ => Vec::new(),
    }
}

/// What the flags and keys of an offer or answer ask of the sending party's leg and the SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOptions {
    pub latch: LatchPolicy,
    /// From `DSCP` or `TOS`; `None` keeps the current (or default) marking.
    pub dscp: Option<u8>,
    /// `SIP-source-address` with `received-from`: use this IP instead of the SDP's.
    pub source_address: Option<IpAddr>,
    /// `replace: ["origin"]` or flag `replace-origin`.
    pub replace_origin: bool,
    /// The `codec` dictionary and the `codec-<verb>-<codec>` / `codec-<verb>=<codec>` flags.
    pub codec: CodecOptions,
    /// Jitter buffer and echo canceller of the sending party's leg (our own keys and flags).
    pub dsp: DspOptions,
    /// `DTMF-mode` key or flag (`DTMF-mode=info`, `DTMF-mode-inband`): the sending party's
    /// leg mode; `None` keeps the current one (default `auto`).
    pub dtmf: Option<DtmfMode>,
    /// `voice-gain` (our key, dB, -10..=10; VOS3000 `SS_VOICEGAIN`): the gain toward both
    /// parties of the call; `None` keeps the current one (default 0).
    pub gain_db: Option<i8>,
    /// `comfort-noise` (our own key, VOS3000 `SS_COMFORTNOISE`): comfort noise toward both
    /// parties on decoded directions; `None` keeps the current setting (default off).
    pub comfort_noise: Option<bool>,
    /// `direction`: the media interface of the sending party's leg and of the other party's,
    /// for legs this request creates (`None`: the engine's default interface). Existing legs
    /// keep their ports.
    pub interfaces: [Option<IpAddr>; 2],
}

/// `jitter-buffer-mode` ("fixed"/"adaptive" or 0/1, VOS3000 `SS_JITTERBUFFER_MODE`),
/// `jitter-buffer-min`/`-max`/`-default` (ms), flags `jitter-buffer` / `no-jitter-buffer`
/// (re-time the party's stream when it is relayed), `echo-cancel` / `no-echo-cancel` and
/// `echo-cancel-tail` (ms). What is not given stays as it was (or at the defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DspOptions {
    pub jitter_mode: Option<JitterMode>,
    pub jitter_min_ms: Option<u32>,
    pub jitter_max_ms: Option<u32>,
    pub jitter_default_ms: Option<u32>,
    pub jitter_relay: Option<bool>,
    pub echo_cancel: Option<bool>,
    pub echo_tail_ms: Option<u32>,
}

impl DspOptions {
    fn from_request(req: &Request<'_>, has: impl Fn(&str) -> bool) -> Result<Self, NgError> {
        let ms = |key: &str| -> Result<Option<u32>, NgError> {
            match req.int(key) {
                None => Ok(None),
                Some(v) => {
                    let v = v?;
                    u32::try_from(v)
                        .map(Some)
                        .map_err(|_| NgError::new(format!("Invalid value for {key}")))
                }
            }
        };
        let jitter_mode = match req.bytes("jitter-buffer-mode") {
            None => match req.int("jitter-buffer-mode") {
                None => None,
                Some(v) => Some(match v? {
                    0 => JitterMode::Fixed,
                    1 => JitterMode::Adaptive,
                    _ => return Err(NgError::new("Invalid value for jitter-buffer-mode")),
                }),
            },
            Some(b) => Some(match b.to_ascii_lowercase().as_slice() {
                b"fixed" | b"0" => JitterMode::Fixed,
                b"adaptive" | b"1" => JitterMode::Adaptive,
                _ => return Err(NgError::new("Invalid value for jitter-buffer-mode")),
            }),
        };
        let flag = |on: &str, off: &str| {
            if has(off) {
                Some(false)
            } else if has(on) {
                Some(true)
            } else {
                None
            }
        };
        Ok(DspOptions {
            jitter_mode,
            jitter_min_ms: ms("jitter-buffer-min")?,
            jitter_max_ms: ms("jitter-buffer-max")?,
            jitter_default_ms: ms("jitter-buffer-default")?,
            jitter_relay: flag("jitter-buffer", "no-jitter-buffer"),
            echo_cancel: flag("echo-cancel", "no-echo-cancel"),
            echo_tail_ms: ms("echo-cancel-tail")?,
        })
    }

    /// Applies what was given to `leg`.
    pub fn apply(&self, leg: &mut LegSpec) {
        let jb = &mut leg.jitter_buffer;
        jb.mode = self.jitter_mode.unwrap_or(jb.mode);
        jb.min_ms = self.jitter_min_ms.unwrap_or(jb.min_ms);
        jb.max_ms = self.jitter_max_ms.unwrap_or(jb.max_ms);
        jb.default_ms = self.jitter_default_ms.unwrap_or(jb.default_ms);
        jb.relay = self.jitter_relay.unwrap_or(jb.relay);
        let ec = &mut leg.echo_cancel;
        ec.enabled = self.echo_cancel.unwrap_or(ec.enabled);
        ec.tail_ms = self.echo_tail_ms.unwrap_or(ec.tail_ms);
    }
}

impl MediaOptions {
    pub fn from_request(req: &Request<'_>) -> Result<Self, NgError> {
        let flags: Vec<String> = req
            .strings("flags")
            .iter()
            .map(|f| f.to_ascii_lowercase())
            .collect();
        let has = |f: &str| flags.iter().any(|x| x == f);
        let latch = if has("asymmetric") || has("strict-source") {
            LatchPolicy::Strict
        } else {
            LatchPolicy::Learn
        };
        let replace_origin = has("replace-origin")
            || req
                .strings("replace")
                .iter()
                .any(|r| r.eq_ignore_ascii_case("origin"));
        let source_address = if has("sip-source-address") {
            received_from(req)
        } else {
            None
        };
        Ok(MediaOptions {
            latch,
            dscp: dscp(req)?,
            source_address,
            replace_origin,
            codec: codec_options(req),
            dsp: DspOptions::from_request(req, has)?,
            dtmf: dtmf_mode(req, &flags)?,
            gain_db: voice_gain(req)?,
            comfort_noise: comfort_noise(req)?,
            interfaces: direction(req)?,
        })
    }
}

/// Interface names that mean the engine's default interface: rtpengine's name for an unnamed
/// interface, the empty name, and the two names Kamailio/OpenSIPS scripts commonly send to a
/// one-interface relay (accepted, as before `direction` selected anything).
const DEFAULT_INTERFACE_NAMES: &[&str] = &["", "default", "internal", "external"];

/// `direction`: up to two interface names, the sending party's side first. Our interfaces are
/// named by their IP address (docs/control-protocol.md); whether the engine has that address
/// is the engine's check when the leg is created.
fn direction(req: &Request<'_>) -> Result<[Option<IpAddr>; 2], NgError> {
    let Some(value) = req.get("direction") else {
        return Ok([None, None]);
    };
    let names = strings(value);
    if names.len() > 2 {
        return Err(NgError::new(format!(
            "Invalid direction: {} interface names, expected two",
            names.len()
        )));
    }
    let mut out = [None, None];
    for (slot, name) in out.iter_mut().zip(&names) {
        let name = name.trim();
        if DEFAULT_INTERFACE_NAMES
            .iter()
            .any(|d| d.eq_ignore_ascii_case(name))
        {
            continue;
        }
        *slot = Some(
            name.parse::<IpAddr>()
                .map_err(|_| NgError::new(format!("Unknown interface '{name}' in direction")))?,
        );
    }
    Ok(out)
}

pub const ERR_UNKNOWN_TAG: &str = "Unknown from-tag";
pub const ERR_NO_AUDIO: &str = "No audio stream to play DTMF on";
pub const ERR_NO_CODE: &str = "No valid DTMF event code given";
/// rtpengine's lower bound for `duration` and `pause` (ms); values outside its range are
/// clamped, as rtpengine does.
pub const PLAY_NG_MIN_MS: u32 = 100;

/// The digits, duration, volume and pause of a `play DTMF` request, rtpengine's way: `code`
/// (or `digit`) is an event number 0–15 or a one-character string (we also take a string of
/// several digits, played in order); `duration` and `pause` in ms are clamped to 100..=5000
/// (defaults 250 and 100); `volume` is in dB below full scale (default -8; a positive number
/// means the same negative one), clamped to 63.
pub fn play_request(req: &Request<'_>) -> Result<DtmfPlay, NgError> {
    let code = req.get("code").or_else(|| req.get("digit"));
    let digits: String = match code {
        Some(Value::Int(n)) => u8::try_from(*n)
            .ok()
            .filter(|n| *n <= 15)
            .and_then(|n| "0123456789*#ABCD".chars().nth(usize::from(n)))
            .map(String::from)
            .ok_or_else(|| NgError::new(ERR_NO_CODE))?,
        Some(Value::Bytes(b)) if !b.is_empty() => String::from_utf8_lossy(b).into_owned(),
        _ => return Err(NgError::new(ERR_NO_CODE)),
    };
    let ms = |key: &str, default: u32| -> Result<u32, NgError> {
        Ok(match req.int(key) {
            None => default,
            Some(v) => v?.clamp(i64::from(PLAY_NG_MIN_MS), i64::from(PLAY_MAX_MS)) as u32,
        })
    };
    let duration = ms("duration", PLAY_DEFAULT_DURATION_MS)?;
    let pause = ms("pause", PLAY_DEFAULT_PAUSE_MS)?;
    let volume = match req.int("volume") {
        None => PLAY_DEFAULT_VOLUME,
        Some(v) => v?.unsigned_abs().min(63) as u8,
    };
    let mut play = DtmfPlay::new(&digits, duration, volume, pause)
        .map_err(|e| NgError::new(format!("{ERR_NO_CODE}: {e}")))?;
    // ours: the digits are the party's SIP INFO, subject to its first-kind lock
    play.from_info = req
        .bytes("DTMF-source")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"info"));
    Ok(play)
}

pub const ERR_BAD_DTMF_MODE: &str = "Invalid DTMF-mode (expected auto, rfc2833, info or inband)";

/// `DTMF-mode: "<mode>"`, or the flag `DTMF-mode=<mode>` / `DTMF-mode-<mode>` (flags are
/// already lower-cased). An unknown mode is an error: silently keeping another mode would
/// send digits where the operator said not to.
fn dtmf_mode(req: &Request<'_>, flags: &[String]) -> Result<Option<DtmfMode>, NgError> {
    let from_flag = flags.iter().rev().find_map(|f| {
        f.strip_prefix("dtmf-mode=")
            .or_else(|| f.strip_prefix("dtmf-mode-"))
    });
    let key = req
        .bytes("DTMF-mode")
        .map(|b| String::from_utf8_lossy(b).into_owned());
    match key.as_deref().or(from_flag) {
        None => Ok(None),
        Some(m) => DtmfMode::parse(m)
            .map(Some)
            .ok_or_else(|| NgError::new(ERR_BAD_DTMF_MODE)),
    }
}

/// `codec: { strip: [...], mask: [...], consume: [...], transcode: [...], offer: [...],
/// accept: [...] }` plus the flat flags; unknown verbs and unparsable entries are ignored.
fn codec_options(req: &Request<'_>) -> CodecOptions {
    let mut opts = CodecOptions::default();
    if let Some(dict) = req.get("codec").and_then(Value::as_dict) {
        for (verb, entries) in dict {
            let verb = String::from_utf8_lossy(verb);
            for entry in strings(entries) {
                opts.add(&verb, &entry);
            }
        }
    }
    for flag in req.strings("flags") {
        opts.add_flag(flag.trim());
    }
    opts
}

/// `received-from: [ "IP4" | "IP6", "<address>" ]`; anything unparsable is ignored.
fn received_from(req: &Request<'_>) -> Option<IpAddr> {
    let list = req.strings("received-from");
    list.get(1).and_then(|a| a.trim().parse().ok())
}

/// `voice-gain`: an integer number of dB in -10..=10, or a string of one (our extension; a
/// real rtpengine ignores the key). Anything else is refused, naming the value.
fn voice_gain(req: &Request<'_>) -> Result<Option<i8>, NgError> {
    let bad = |shown: String| {
        NgError::new(format!(
            "Invalid voice-gain value {shown} (expected an integer from -{MAX_GAIN_DB} to {MAX_GAIN_DB} dB)"
        ))
    };
    let n = match req.get("voice-gain") {
        None => return Ok(None),
        Some(Value::Int(n)) => *n,
        Some(Value::Bytes(b)) => {
            let text = String::from_utf8_lossy(b);
            text.trim()
                .parse::<i64>()
                .map_err(|_| bad(format!("{text:?}")))?
        }
        Some(_) => return Err(bad("(not an integer)".into())),
    };
    i8::try_from(n)
        .ok()
        .filter(|g| (-MAX_GAIN_DB..=MAX_GAIN_DB).contains(g))
        .map(Some)
        .ok_or_else(|| bad(n.to_string()))
}

/// `DSCP` (0..=63) wins over `TOS` (a ToS byte, 0..=255, whose upper six bits are the DSCP).
fn dscp(req: &Request<'_>) -> Result<Option<u8>, NgError> {
    if let Some(v) = req.int("DSCP") {
        let v = v?;
        return u8::try_from(v)
            .ok()
            .filter(|d| *d <= 63)
            .map(Some)
            .ok_or_else(|| NgError::new(format!("Invalid DSCP value {v}")));
    }
    if let Some(v) = req.int("TOS") {
        let v = v?;
        return u8::try_from(v)
            .map(|tos| Some(tos >> 2))
            .map_err(|_| NgError::new(format!("Invalid TOS value {v}")));
    }
    Ok(None)
}

/// `comfort-noise`: "on"/"off", "yes"/"no", 1/0 (an integer or a string).
fn comfort_noise(req: &Request<'_>) -> Result<Option<bool>, NgError> {
    let Some(v) = req.get("comfort-noise") else {
        return Ok(None);
    };
    let text = match v {
        Value::Int(n) => n.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).trim().to_ascii_lowercase(),
        _ => String::from("(not a string)"),
    };
    match text.as_str() {
        "on" | "yes" | "1" => Ok(Some(true)),
        "off" | "no" | "0" => Ok(Some(false)),
        _ => Err(NgError::new(format!(
            "Invalid comfort-noise value {text} (on or off)"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn opts(v: Value) -> Result<MediaOptions, NgError> {
        MediaOptions::from_request(&Request::new(&v).unwrap())
    }

    #[test]
    fn defaults() {
        let o = opts(Value::dict()).unwrap();
        assert_eq!(
            o,
            MediaOptions {
                latch: LatchPolicy::Learn,
                dscp: None,
                source_address: None,
                replace_origin: false,
                codec: CodecOptions::default(),
                dsp: DspOptions::default(),
                dtmf: None,
                gain_db: None,
                comfort_noise: None,
                interfaces: [None, None],
            }
        );
    }

    #[test]
    fn direction_names_interfaces_by_address() {
        let dir = |names: Value| opts(Value::dict().with("direction", names));
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let two = |a: &str, b: &str| Value::List(vec![Value::str(a), Value::str(b)]);
        assert_eq!(
            dir(two("10.1.1.1", "default")).unwrap().interfaces,
            [ip("10.1.1.1"), None]
        );
        assert_eq!(
            dir(two("External", "2001:db8::5")).unwrap().interfaces,
            [None, ip("2001:db8::5")]
        );
        assert_eq!(
            dir(Value::str("10.1.1.1")).unwrap().interfaces,
            [ip("10.1.1.1"), None]
        );
        assert_eq!(
            dir(two("default", "eth1")).unwrap_err().reason,
            "Unknown interface 'eth1' in direction"
        );
    }

    #[test]
    fn flags() {
        let flags = |f: &[&str]| {
            Value::dict().with("flags", f.iter().map(|s| Value::str(s)).collect::<Vec<_>>())
        };
        assert_eq!(
            opts(flags(&["asymmetric"])).unwrap().latch,
            LatchPolicy::Strict
        );
        assert_eq!(
            opts(flags(&["strict-source"])).unwrap().latch,
            LatchPolicy::Strict
        );
        assert_eq!(
            opts(flags(&["symmetric", "no-such-flag"])).unwrap().latch,
            LatchPolicy::Learn
        );
        assert!(opts(flags(&["replace-origin"])).unwrap().replace_origin);
        let v = Value::dict().with(
            "replace",
            vec![Value::str("origin"), Value::str("session-connection")],
        );
        assert!(opts(v).unwrap().replace_origin);
        let v = flags(&["SIP-source-address"]).with(
            "received-from",
            vec![Value::str("IP4"), Value::str("198.51.100.9")],
        );
        assert_eq!(
            opts(v).unwrap().source_address,
            Some("198.51.100.9".parse().unwrap())
        );
        let v = Value::dict().with(
            "received-from",
            vec![Value::str("IP4"), Value::str("198.51.100.9")],
        );
        assert_eq!(opts(v).unwrap().source_address, None);
    }

    #[test]
    fn codec_dictionary_and_flags() {
        let v = Value::dict()
            .with(
                "codec",
                Value::dict()
                    .with("transcode", vec![Value::str("G729")])
                    .with("strip", "PCMU")
                    .with("frobnicate", vec![Value::str("x")]),
            )
            .with(
                "flags",
                vec![
                    Value::str("codec-mask-all"),
                    Value::str("codec-accept=opus/48000"),
                ],
            );
        let c = opts(v).unwrap().codec;
        assert_eq!(c.transcode.len(), 1);
        assert_eq!(c.strip.names.len(), 1);
        assert!(c.mask.all);
        assert_eq!(c.accept.names[0].clock_rate, Some(48000));
        assert!(opts(Value::dict().with("codec", "x"))
            .unwrap()
            .codec
            .is_empty());
    }

    #[test]
    fn comfort_noise_on_and_off() {
        let cn = |v: Value| opts(Value::dict().with("comfort-noise", v));
        for on in [
            Value::str("on"),
            Value::str("YES"),
            Value::str("1"),
            Value::Int(1),
        ] {
            assert_eq!(cn(on).unwrap().comfort_noise, Some(true));
        }
        for off in [Value::str("off"), Value::str("no"), Value::Int(0)] {
            assert_eq!(cn(off).unwrap().comfort_noise, Some(false));
        }
        assert_eq!(
            cn(Value::str("loud")).unwrap_err().reason,
            "Invalid comfort-noise value loud (on or off)"
        );
        assert!(cn(Value::Int(2)).is_err());
    }

    #[test]
    fn dscp_and_tos() {
        assert_eq!(
            opts(Value::dict().with("DSCP", 26i64)).unwrap().dscp,
            Some(26)
        );
        assert_eq!(
            opts(Value::dict().with("TOS", 184i64)).unwrap().dscp,
            Some(46)
        );
        assert_eq!(
            opts(Value::dict().with("TOS", "104")).unwrap().dscp,
            Some(26)
        );
        assert_eq!(
            opts(Value::dict().with("DSCP", 64i64)).unwrap_err().reason,
            "Invalid DSCP value 64"
        );
        assert_eq!(
            opts(Value::dict().with("TOS", 256i64)).unwrap_err().reason,
            "Invalid TOS value 256"
        );
        assert_eq!(
            opts(Value::dict().with("TOS", "x")).unwrap_err().reason,
            "Invalid value for TOS"
        );
    }

    #[test]
    fn voice_gain_from_minus_ten_to_ten_db() {
        let gain = |v: Value| opts(Value::dict().with("voice-gain", v));
        assert_eq!(gain(Value::Int(6)).unwrap().gain_db, Some(6));
        assert_eq!(gain(Value::str("-10")).unwrap().gain_db, Some(-10));
        assert_eq!(gain(Value::str(" 10 ")).unwrap().gain_db, Some(10));
        for (v, shown) in [
            (Value::Int(11), "11"),
            (Value::Int(-11), "-11"),
            (Value::str("loud"), "\"loud\""),
            (Value::str("2.5"), "\"2.5\""),
        ] {
            assert_eq!(
                gain(v).unwrap_err().reason,
                format!("Invalid voice-gain value {shown} (expected an integer from -10 to 10 dB)")
            );
        }
        assert!(gain(Value::List(vec![])).is_err());
    }

    #[test]
    fn required_keys() {
        let v = Value::dict().with("call-id", "");
        let r = Request::new(&v).unwrap();
        assert_eq!(r.call_id().unwrap_err().reason, ERR_NO_CALL_ID);
        assert_eq!(
            Request::new(&Value::Int(1)).err().unwrap().reason,
            ERR_NOT_DICT
        );
    }
}
