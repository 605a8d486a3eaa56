//! Shared helpers for the session scenarios: packet builders and a session factory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub mod g168;
pub mod pcap;

use mediacore_engine::{Channel, LegSpec, Session, SessionId, SessionSpec, Side, Verdict};
use mediacore_proto::RtpHeader;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A 12-byte-header RTP packet with a 160-byte PCMA payload.
pub fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(std::iter::repeat_n(0xd5, 160));
    p
}

/// An RTCP receiver report with no report blocks (8 bytes).
pub fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

pub const CALLER: &str = "192.0.2.10:4000";
pub const CALLEE: &str = "198.51.100.20:5000";

pub fn spec() -> SessionSpec {
    SessionSpec {
        caller: LegSpec {
            remote_rtp: Some(addr(CALLER)),
            ..LegSpec::default()
        },
        callee: LegSpec {
            remote_rtp: Some(addr(CALLEE)),
            ..LegSpec::default()
        },
        ..SessionSpec::default()
    }
}

pub fn session(spec: SessionSpec, now: Instant) -> Session {
    spec.validate().unwrap();
    Session::new(SessionId(1), spec, now).unwrap()
}

/// Drives a session: packets in at given times, timers run, everything sent out collected as
/// (toward side, bytes) in the order it left.
pub struct Rig {
    pub s: Session,
    pub t0: Instant,
    pub out: Vec<(Side, Vec<u8>)>,
}

impl Rig {
    pub fn new(sp: SessionSpec) -> Self {
        let t0 = Instant::now();
        Rig {
            s: Session::new(SessionId(7), sp, t0).unwrap(),
            t0,
            out: Vec::new(),
        }
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Runs the session's timers due up to `until`.
    pub fn advance(&mut self, until: Instant) {
        while let Some(due) = self.s.poll_timeout().filter(|d| *d <= until) {
            self.s.handle_timeout(due);
            self.collect();
        }
    }

    pub fn collect(&mut self) {
        while let Some(tx) = self.s.poll_transmit() {
            self.out.push((tx.via, tx.data.clone()));
            self.s.recycle(tx.data);
        }
    }

    /// Delivers `pkt` from `from`'s party at `ms`; returns the verdict.
    pub fn send(&mut self, ms: u64, from: Side, channel: Channel, pkt: &[u8]) -> Verdict {
        let now = self.at(ms);
        self.advance(now);
        let src = addr(if from == Side::Caller { CALLER } else { CALLEE });
        let mut data = pkt.to_vec();
        let v = self.s.handle_packet(now, from, channel, src, &mut data);
        match v {
            Verdict::Forward { via, .. } => self.out.push((via, data)),
            Verdict::Consumed => self.collect(),
            Verdict::Drop(r) => panic!("dropped: {r:?}"),
        }
        v
    }

    /// The RTP headers of what went toward `side`'s party.
    pub fn toward(&self, side: Side) -> Vec<RtpHeader> {
        self.out
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, d)| RtpHeader::parse(d).unwrap())
            .collect()
    }

    /// What went toward `side`'s party, as sent.
    pub fn bytes_toward(&self, side: Side) -> Vec<&[u8]> {
        self.out
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, d)| d.as_slice())
            .collect()
    }
}
