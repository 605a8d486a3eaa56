//! The statistics part of `query` and `delete` replies, in rtpengine's layout: per tag
//! (party), per media, one RTP and one RTCP stream with what that party sent us; totals over
//! the call; and our own `mediacore` dictionary with the RFC 3550 receive statistics.
//!
//! A `delete` with the flag `brief-stats` (our own; the in-process control plane sends it, as it
//! reads only the counters) gets the same layout cut to the counters: per tag, per media, each
//! stream's `flags` and `stats`, the RTP stream's `mediacore` receive quality (`expected`,
//! `lost`, `jitter_us`), and the totals: a fifth of the full report's values for an audio call.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use mediacore_engine::{
    EchoCancelStats, JitterBufferStats, LegStats, SessionId, SessionStats, Side,
};

use super::call::{facing, Call, CallMedia};
use crate::bencode::Value;

fn family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

fn endpoint(a: SocketAddr) -> Value {
    Value::dict()
        .with("family", family(a.ip()))
        .with("address", a.ip().to_string())
        .with("port", a.port())
}

fn counters(packets: u64, bytes: u64, errors: u64) -> Value {
    Value::dict()
        .with("packets", packets)
        .with("bytes", bytes)
        .with("errors", errors)
}

fn flag(b: bool) -> Value {
    Value::Int(i64::from(b))
}

/// Datagrams dropped on the RTP side: everything but malformed RTCP.
fn rtp_errors(leg: &LegStats) -> u64 {
    leg.dropped
        .total()
        .saturating_sub(leg.dropped.malformed_rtcp)
}

/// Unix seconds of the last packet from the party; 0 when nothing arrived yet.
fn last_packet(leg: &LegStats, unix_time: u64) -> u64 {
    leg.since_last_packet
        .map_or(0, |d| unix_time.saturating_sub(d.as_secs()))
}

/// How much a report carries: everything, or the counters only (flag `brief-stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Full,
    Brief,
}

/// The receive quality of a `brief-stats` report: what a CDR keeps of a party's stream.
/// `dtmf_ignored` only when some digit was ignored: most calls have none, and the brief
/// report stays the three values.
fn brief_mediacore_dict(leg: &LegStats) -> Value {
    let rx = &leg.rtp;
    let mut d = Value::dict()
        .with("expected", rx.expected)
        .with("lost", rx.lost)
        .with("jitter_us", (rx.jitter_ms * 1000.0).round() as i64);
    if leg.dtmf_ignored > 0 {
        d.insert("dtmf_ignored", leg.dtmf_ignored);
    }
    d
}

fn mediacore_dict(leg: &LegStats, cm: &CallMedia, side: Side) -> Value {
    let rx = &leg.rtp;
    let spec = cm.spec.leg(side);
    let mut d = Value::dict()
        .with("expected", rx.expected)
        .with("lost", rx.lost)
        .with("jitter", u64::from(rx.jitter))
        .with("jitter_ms", (rx.jitter_ms).round() as i64)
        .with("jitter_us", (rx.jitter_ms * 1000.0).round() as i64)
        .with("duplicates", rx.duplicates)
        .with("out_of_order", rx.out_of_order)
        .with("ssrc_changes", rx.ssrc_changes)
        .with("datagrams", leg.datagrams)
        .with("dscp", spec.dscp)
        .with("gain_db", i64::from(spec.gain_db))
        .with("latch", spec.latch.as_str())
        .with("latched", flag(leg.latched))
        .with("hold", flag(leg.hold))
        .with("timed_out", flag(leg.timed_out))
        .with("dtmf_ignored", leg.dtmf_ignored)
        .with(
            "sent",
            Value::dict()
                .with("rtp_packets", leg.sent_rtp_packets)
                .with("rtp_bytes", leg.sent_rtp_bytes)
                .with("rtcp_packets", leg.sent_rtcp_packets)
                .with("rtcp_bytes", leg.sent_rtcp_bytes)
                .with("errors", leg.send_errors),
        )
        .with(
            "dropped",
            Value::dict()
                .with("malformed_rtp", leg.dropped.malformed_rtp)
                .with("malformed_rtcp", leg.dropped.malformed_rtcp)
                .with("foreign_source", leg.dropped.foreign_source)
                .with("no_destination", leg.dropped.no_destination)
                .with("oversized", leg.dropped.oversized),
        );
    if let Some(ssrc) = rx.ssrc {
        d.insert("ssrc", ssrc);
    }
    if let Some(jb) = &leg.jitter_buffer {
        d.insert("jitter buffer", jitter_buffer_dict(jb));
    }
    if let Some(ec) = &leg.echo_canceller {
        d.insert("echo canceller", echo_dict(ec));
    }
    d
}

/// `comfort noise`: whether comfort noise goes toward this party; `comfort noise packets`: how
/// many were sent to it, when the direction toward it is decoded.
fn comfort_noise_entries(d: &mut Value, cm: &CallMedia, stats: &SessionStats, side: Side) {
    d.insert("comfort noise", flag(cm.spec.leg(side).comfort_noise));
    if let Some(t) = &stats.leg(side.other()).transcoding {
        d.insert("comfort noise packets", t.cng_packets);
    }
}

/// Milliseconds (or per-mille rates) as bencode integers: bencode has no floats.
fn rounded(v: f32) -> i64 {
    if v.is_finite() {
        v.round() as i64
    } else {
        0
    }
}

fn jitter_buffer_dict(jb: &JitterBufferStats) -> Value {
    let s = &jb.stats;
    Value::dict()
        .with("mode", jb.mode.as_str())
        .with("relay", flag(jb.relay))
        .with("current delay ms", rounded(s.current_delay_ms))
        .with("target delay ms", rounded(s.target_delay_ms))
        .with("packets", s.packets)
        .with("late", s.late)
        .with("discarded", s.discarded)
        .with("duplicates", s.duplicates)
        .with("reordered", s.reordered)
        .with("concealed ms", s.concealed_ms)
        .with("played ms", s.played_ms)
        .with("concealment permille", rounded(s.concealment_rate * 1000.0))
        .with("accelerate permille", rounded(s.accelerate_rate * 1000.0))
        .with("expand permille", rounded(s.expand_rate * 1000.0))
        .with("resyncs", s.resyncs)
}

fn echo_dict(ec: &EchoCancelStats) -> Value {
    let s = &ec.stats;
    Value::dict()
        .with("tail ms", ec.tail_ms)
        .with("delay ms", rounded(s.delay_ms))
        .with("ERL dB", rounded(s.erl_db))
        .with("ERLE dB", rounded(s.erle_db))
        .with(
            "double talk permille",
            rounded(s.double_talk_ratio * 1000.0),
        )
        .with("converged", flag(s.converged))
}

/// The RTP and RTCP streams of the party on `side` for one media.
fn streams(
    cm: &CallMedia,
    stats: Option<&SessionStats>,
    side: Side,
    unix_time: u64,
    detail: Detail,
) -> Vec<Value> {
    let Some(info) = cm.session else {
        return Vec::new();
    };
    let mut rtp = Value::dict().with("flags", vec![Value::str("RTP")]);
    let mut rtcp = Value::dict().with("flags", vec![Value::str("RTCP")]);
    if detail == Detail::Full {
        let ports = facing(&info, side);
        let spec = cm.spec.leg(side);
        rtp.insert("local port", ports.rtp.port());
        rtcp.insert("local port", ports.rtcp.port());
        if let Some(a) = spec.remote_rtp {
            rtp.insert("advertised endpoint", endpoint(a));
        }
        if let Some(a) = spec.remote_rtcp {
            rtcp.insert("advertised endpoint", endpoint(a));
        }
    }
    if let Some(leg) = stats.map(|s| s.leg(side)) {
        rtp.insert(
            "stats",
            counters(leg.rtp.packets, leg.rtp.bytes, rtp_errors(leg)),
        );
        rtcp.insert(
            "stats",
            counters(leg.rtcp_packets, leg.rtcp_bytes, leg.dropped.malformed_rtcp),
        );
        match detail {
            Detail::Brief => rtp.insert("mediacore", brief_mediacore_dict(leg)),
            Detail::Full => {
                if let Some(a) = leg.remote_rtp {
                    rtp.insert("endpoint", endpoint(a));
                }
                if let Some(a) = leg.remote_rtcp {
                    rtcp.insert("endpoint", endpoint(a));
                }
                rtp.insert("last packet", last_packet(leg, unix_time));
                rtcp.insert("last packet", last_packet(leg, unix_time));
                let mut mc = mediacore_dict(leg, cm, side);
                if let Some(s) = stats {
                    comfort_noise_entries(&mut mc, cm, s, side);
                }
                rtp.insert("mediacore", mc);
            }
        }
    }
    vec![rtp, rtcp]
}

/// `created`, `last signal`, `tags` and `totals` of a call; `stats` holds what the engine
/// returned per session (sessions it no longer knows are listed without counters). A brief
/// report has `tags` (each with its `medias`: `index`, `type` and `streams`) and `totals`.
pub fn call_report(
    call: &Call,
    stats: &HashMap<SessionId, SessionStats>,
    unix_time: u64,
    detail: Detail,
) -> Value {
    let mut tags = Value::dict();
    for side in [Side::Caller, Side::Callee] {
        let Some(tag) = call.tag(side) else { continue };
        let medias: Vec<Value> = call
            .media
            .iter()
            .enumerate()
            .map(|(i, cm)| {
                let st = cm.session.and_then(|s| stats.get(&s.id));
                let mut media = Value::dict()
                    .with("index", u64::try_from(i + 1).unwrap_or(u64::MAX))
                    .with("type", cm.kind.as_str())
                    .with("streams", streams(cm, st, side, unix_time, detail));
                if detail == Detail::Full {
                    media.insert("protocol", cm.proto.as_str());
                }
                media
            })
            .collect();
        let mut mono = Value::dict().with("medias", medias);
        if detail == Detail::Full {
            mono.insert("tag", tag);
            mono.insert(
                "in dialogue with",
                call.tag(side.other()).unwrap_or_default(),
            );
        }
        if let Value::Dict(map) = &mut tags {
            map.insert(tag.to_vec(), mono);
        }
    }
    let (mut rtp, mut rtcp) = ([0u64; 3], [0u64; 3]);
    for s in stats.values() {
        for leg in [&s.caller, &s.callee] {
            for (acc, v) in rtp
                .iter_mut()
                .zip([leg.rtp.packets, leg.rtp.bytes, rtp_errors(leg)])
            {
                *acc = acc.saturating_add(v);
            }
            for (acc, v) in
                rtcp.iter_mut()
                    .zip([leg.rtcp_packets, leg.rtcp_bytes, leg.dropped.malformed_rtcp])
            {
                *acc = acc.saturating_add(v);
            }
        }
    }
    let totals = Value::dict()
        .with("RTP", counters(rtp[0], rtp[1], rtp[2]))
        .with("RTCP", counters(rtcp[0], rtcp[1], rtcp[2]));
    let report = Value::dict().with("tags", tags).with("totals", totals);
    match detail {
        Detail::Brief => report,
        Detail::Full => report
            .with("created", call.created)
            .with("last signal", call.last_signal),
    }
}

/// What a call's record keeps of one party, read from the engine's final statistics without
/// building a report: the RTP packets received from the party over all its media, and the
/// receive quality of its last media with statistics. The same numbers a `brief-stats`
/// report carries under the party's tag (each RTP stream's `stats` `packets`, its
/// `mediacore` `expected`, `lost` and `jitter_us`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyCounters {
    pub tag: Vec<u8>,
    pub rtp_packets: u64,
    /// `(expected, lost, jitter in µs)`; None when no media of the party has statistics.
    pub quality: Option<(u64, i64, i64)>,
}

/// [`PartyCounters`] of each party with a tag, the caller's first.
pub fn call_counters(call: &Call, stats: &HashMap<SessionId, SessionStats>) -> Vec<PartyCounters> {
    let mut parties = Vec::with_capacity(2);
    for side in [Side::Caller, Side::Callee] {
        let Some(tag) = call.tag(side) else { continue };
        let mut party = PartyCounters {
            tag: tag.to_vec(),
            rtp_packets: 0,
            quality: None,
        };
        for cm in &call.media {
            let Some(leg) = cm
                .session
                .and_then(|s| stats.get(&s.id))
                .map(|s| s.leg(side))
            else {
                continue;
            };
            let rx = &leg.rtp;
            party.rtp_packets = party.rtp_packets.saturating_add(rx.packets);
            party.quality = Some((rx.expected, rx.lost, (rx.jitter_ms * 1000.0).round() as i64));
        }
        parties.push(party);
    }
    parties
}
