//! `mediacore-runtime`: the only part of the media engine that owns sockets, threads and the
//! clock. A small fixed number of workers each own their sessions and sockets; the control
//! plane reaches them through [`Engine`] (which implements `MediaControl`) and the ng server.

pub mod config;
pub mod engine;
pub mod events;
pub mod ng_server;
pub mod ports;
pub mod recv_batch;
pub mod worker;

pub use config::{default_workers, EngineConfig};
pub use engine::{Engine, EngineTotals};
pub use events::EventRecord;
pub use ng_server::NgServer;

/// What the crate's tests share: RTP to send through a session, and the two peers around it.
#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used)]

    use std::net::UdpSocket;
    use std::time::Duration;

    /// A PCMU packet of 20 ms with sequence number `seq`.
    pub fn rtp(seq: u16) -> Vec<u8> {
        let mut packet = vec![0x80, 0x00];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        packet.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        packet.extend_from_slice(&[0xd5; 160]);
        packet
    }

    /// A caller (its reads bounded by 2 s) and a callee on loopback.
    pub fn peers() -> (UdpSocket, UdpSocket) {
        let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
        let callee = UdpSocket::bind("127.0.0.1:0").unwrap();
        caller
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        (caller, callee)
    }
}
