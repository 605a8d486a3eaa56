//! Shared helpers for the session scenarios: packet builders and a session factory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Instant;

pub mod g168;
pub mod pcap;

use mediacore_engine::{LegSpec, Session, SessionId, SessionSpec};

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
