//! A fake in-memory `MediaControl` for the processor tests: hands out four ports per session
//! (caller RTP/RTCP, callee RTP/RTCP: 30000-30003, then 30004-30007, ...), records every spec it
//! is given, and can be told to refuse creates with `PortsExhausted`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use mediacore_engine::control::{ControlError, LocalPorts};
use mediacore_engine::{
    DropCounters, DtmfPlay, EchoCancelStats, EchoStats, JitterBufferStats, JitterStats, LegStats,
    MediaControl, SessionId, SessionInfo, SessionSpec, SessionStats, Side,
};

pub const ADVERTISED: &str = "203.0.113.1";

#[derive(Default)]
pub struct State {
    next_id: u64,
    next_port: u16,
    pub live: BTreeMap<SessionId, SessionSpec>,
    pub creates: Vec<SessionSpec>,
    pub updates: Vec<(SessionId, SessionSpec)>,
    pub deletes: Vec<SessionId>,
    /// Creates succeed while fewer than this many were made in total.
    pub fail_create_after: Option<usize>,
    /// `play_dtmf` requests: session, the leg the digits go to, the digits.
    pub plays: Vec<(SessionId, Side, DtmfPlay)>,
}

#[derive(Default)]
pub struct FakeControl {
    pub state: Mutex<State>,
}

/// A port on `ip` (a leg's `local_ip`), or on the advertised address, as the engine reports it.
fn addr(ip: Option<IpAddr>, port: u16) -> SocketAddr {
    let advertised = ADVERTISED.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
    SocketAddr::new(ip.unwrap_or(advertised), port)
}

impl FakeControl {
    pub fn new() -> Self {
        FakeControl::default()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    pub fn live_count(&self) -> usize {
        self.with(|s| s.live.len())
    }

    pub fn create_count(&self) -> usize {
        self.with(|s| s.creates.len())
    }

    fn stats(id: SessionId, spec: &SessionSpec) -> SessionStats {
        let leg = |side: Side, packets: u64| {
            let l = spec.leg(side);
            let mut stats = LegStats {
                side,
                remote_rtp: l.remote_rtp,
                remote_rtcp: l.remote_rtcp,
                latched: false,
                hold: l.hold,
                datagrams: packets + 2,
                rtp: Default::default(),
                rtcp_packets: 1,
                rtcp_bytes: 52,
                sent_rtp_packets: 3,
                sent_rtp_bytes: 516,
                sent_rtcp_packets: 1,
                sent_rtcp_bytes: 60,
                send_errors: 0,
                dropped: DropCounters {
                    malformed_rtp: 1,
                    malformed_rtcp: 0,
                    foreign_source: 0,
                    no_destination: 0,
                    oversized: 0,
                },
                since_last_packet: Some(Duration::from_secs(2)),
                timed_out: false,
                transcoding: None,
                // The caller's stream is decoded (jitter buffer, echo canceller); the callee's
                // is relayed.
                jitter_buffer: (side == Side::Caller).then_some(JitterBufferStats {
                    mode: l.jitter_buffer.mode,
                    relay: false,
                    stats: JitterStats {
                        current_delay_ms: 22.5,
                        target_delay_ms: 20.0,
                        packets,
                        late: 1,
                        concealed_ms: 20,
                        played_ms: 10_000,
                        concealment_rate: 0.002,
                        accelerate_rate: 0.0016,
                        ..JitterStats::default()
                    },
                }),
                echo_canceller: (side == Side::Caller).then_some(EchoCancelStats {
                    tail_ms: l.echo_cancel.tail_ms,
                    stats: EchoStats {
                        erl_db: 11.6,
                        erle_db: 31.4,
                        delay_ms: 5.0,
                        double_talk_ratio: 0.0,
                        converged: true,
                    },
                }),
                // The callee's SIP INFO digits were refused (it took RFC 2833 first).
                dtmf_ignored: if side == Side::Callee { 3 } else { 0 },
            };
            stats.rtp.packets = packets;
            stats.rtp.bytes = packets * 172;
            // one packet lost; the expected count differs by session, so a call's media (audio,
            // video) report apart
            stats.rtp.expected = packets + 1 + id.0;
            stats.rtp.lost = 1;
            stats.rtp.jitter_ms = 1.5;
            stats.rtp.ssrc = Some(0x1234_5678);
            stats
        };
        SessionStats {
            id,
            age: Duration::from_secs(60),
            caller: leg(Side::Caller, 10),
            callee: leg(Side::Callee, 7),
        }
    }
}

impl MediaControl for FakeControl {
    fn play_dtmf(&self, id: SessionId, to: Side, play: DtmfPlay) -> Result<(), ControlError> {
        self.with(|s| {
            if !s.live.contains_key(&id) {
                return Err(ControlError::UnknownSession(id));
            }
            s.plays.push((id, to, play));
            Ok(())
        })
    }

    fn create(&self, spec: SessionSpec) -> Result<SessionInfo, ControlError> {
        self.with(|s| {
            if s.fail_create_after.is_some_and(|n| s.creates.len() >= n) {
                return Err(ControlError::PortsExhausted);
            }
            s.creates.push(spec.clone());
            s.next_id += 1;
            let id = SessionId(s.next_id);
            let base = 30000 + s.next_port;
            s.next_port += 4;
            let (a, b) = (spec.caller.local_ip, spec.callee.local_ip);
            s.live.insert(id, spec);
            Ok(SessionInfo {
                id,
                caller: LocalPorts {
                    rtp: addr(a, base),
                    rtcp: addr(a, base + 1),
                },
                callee: LocalPorts {
                    rtp: addr(b, base + 2),
                    rtcp: addr(b, base + 3),
                },
            })
        })
    }

    fn update(&self, id: SessionId, spec: SessionSpec) -> Result<(), ControlError> {
        self.with(|s| {
            let slot = s
                .live
                .get_mut(&id)
                .ok_or(ControlError::UnknownSession(id))?;
            *slot = spec.clone();
            s.updates.push((id, spec));
            Ok(())
        })
    }

    fn query(&self, id: SessionId) -> Result<SessionStats, ControlError> {
        self.with(|s| {
            s.live
                .get(&id)
                .map(|spec| Self::stats(id, spec))
                .ok_or(ControlError::UnknownSession(id))
        })
    }

    fn delete(&self, id: SessionId) -> Result<SessionStats, ControlError> {
        self.with(|s| {
            s.deletes.push(id);
            s.live
                .remove(&id)
                .map(|spec| Self::stats(id, &spec))
                .ok_or(ControlError::UnknownSession(id))
        })
    }

    fn advertised_address(&self) -> IpAddr {
        ADVERTISED.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }
}
