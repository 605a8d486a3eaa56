//! RTP/RTCP port-pair allocation from the configured range: even RTP port, RTCP = RTP + 1.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use socket2::{Domain, Protocol, Socket, Type};

/// Allocates port pairs round-robin through the range, so a port just released is not handed
/// out again at once (late packets of the old call must not land in a new one).
pub struct PortAllocator {
    first: u16,
    last_rtp: u16,
    next: u16,
    in_use: HashSet<u16>,
}

/// A bound, non-blocking RTP socket and its RTCP companion.
pub struct PortPair {
    pub rtp: Socket,
    pub rtcp: Socket,
    pub rtp_port: u16,
}

impl PortAllocator {
    /// `port_min..=port_max` must hold at least one pair (see `EngineConfig::validate`).
    pub fn new(port_min: u16, port_max: u16) -> Self {
        let first = port_min + (port_min & 1);
        let mut last_rtp = port_max.saturating_sub(1);
        last_rtp -= last_rtp & 1;
        PortAllocator {
            first,
            last_rtp,
            next: first,
            in_use: HashSet::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        if self.last_rtp < self.first {
            0
        } else {
            usize::from((self.last_rtp - self.first) / 2) + 1
        }
    }

    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }

    /// Takes the next free pair's number in the round-robin order, unbound: `None` when
    /// every pair is in use.
    fn reserve(&mut self) -> Option<u16> {
        for _ in 0..self.capacity() {
            let port = self.next;
            self.next = if port >= self.last_rtp {
                self.first
            } else {
                port + 2
            };
            if self.in_use.insert(port) {
                return Some(port);
            }
        }
        None
    }

    pub fn release(&mut self, rtp_port: u16) {
        self.in_use.remove(&rtp_port);
    }
}

/// Binds the next free pair on `ip` with the given ToS/traffic-class byte; ports taken by
/// other programs are skipped. `None` when every pair is busy, or the allocator is poisoned.
///
/// The pair's number is taken under the lock, but its two sockets are bound outside it: the
/// eight syscalls of a pair would otherwise keep a media worker releasing a deleted call's
/// ports waiting on the lock, and the wake-up when it is handed over cost more than the wait.
pub fn allocate(ports: &Mutex<PortAllocator>, ip: IpAddr, tos: u8) -> Option<PortPair> {
    let tries = ports.lock().ok()?.capacity();
    for _ in 0..tries {
        let port = ports.lock().ok()?.reserve()?;
        let bound = bind_udp(SocketAddr::new(ip, port), tos).and_then(|rtp| {
            bind_udp(SocketAddr::new(ip, port + 1), tos).map(|rtcp| PortPair {
                rtp,
                rtcp,
                rtp_port: port,
            })
        });
        match bound {
            Ok(pair) => return Some(pair),
            // in use by another program: give the number back, try the next one
            Err(_) => ports.lock().ok()?.release(port),
        }
    }
    None
}

/// Gives back the pairs numbered by their RTP ports (their sockets closed or about to be):
/// the one way the engine and its workers release ports.
pub fn release_pairs(ports: &Mutex<PortAllocator>, rtp_ports: &[u16]) {
    if let Ok(mut alloc) = ports.lock() {
        for &port in rtp_ports {
            alloc.release(port);
        }
    }
}

/// Receive buffer per media socket: ~1 s of a 100-call burst is far beyond what a relay socket
/// queues, but the default (208 KiB) is fine; we only raise it for bursty early media.
const SOCKET_BUFFER_BYTES: usize = 256 * 1024;

pub fn bind_udp(addr: SocketAddr, tos: u8) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    // Non-blocking from the start (one syscall instead of three: every call binds four of
    // these, and the two `fcntl`s of a later `set_nonblocking` were a tenth of a call's
    // media-setup syscalls).
    let sock = Socket::new(domain, dgram_type(), Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    set_tos(&sock, addr.is_ipv4(), tos)?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    sock.set_nonblocking(true)?;
    // Best effort: a smaller buffer still works.
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    sock.bind(&addr.into())?;
    Ok(sock)
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn dgram_type() -> Type {
    Type::DGRAM.nonblocking()
}

/// Where the socket type cannot carry the flag, `bind_udp` sets it after creation.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn dgram_type() -> Type {
    Type::DGRAM
}

/// Sets the DSCP/ECN byte: IPv4 ToS, IPv6 traffic class.
pub fn set_tos(sock: &Socket, ipv4: bool, tos: u8) -> io::Result<()> {
    if ipv4 {
        sock.set_tos_v4(u32::from(tos))
    } else {
        sock.set_tclass_v6(u32::from(tos))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::net::Ipv4Addr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A range of `pairs` pairs on loopback, from `from` on, that nothing holds now (best
    /// effort: a port found free is bound and released again). Each test searches its own
    /// part of the port space: tests run in parallel.
    fn free_range(from: u16, pairs: u16) -> (u16, u16) {
        for start in (from..from + 6000).step_by(64) {
            let end = start + 2 * pairs - 1;
            if (start..=end).all(|p| std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).is_ok()) {
                return (start, end);
            }
        }
        panic!("no free port range on loopback");
    }

    #[test]
    fn a_pair_taken_by_another_program_is_skipped_and_its_number_given_back() {
        let (start, end) = free_range(41000, 3);
        let ports = Mutex::new(PortAllocator::new(start, end));
        let squatter = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, start + 1)).unwrap();
        let pair = allocate(&ports, LOOPBACK, 0).expect("the next pair is free");
        assert_eq!(
            pair.rtp_port,
            start + 2,
            "the pair whose RTCP port is taken is skipped"
        );
        assert_eq!(
            ports.lock().unwrap().in_use(),
            1,
            "the skipped number is not left in use"
        );
        drop(squatter);
        let next = allocate(&ports, LOOPBACK, 0).expect("one pair is still free");
        assert_eq!(
            next.rtp_port,
            start + 4,
            "round robin: the next pair, not the skipped one"
        );
    }

    #[test]
    fn every_pair_in_use_is_none_and_a_released_pair_comes_back_last() {
        let (start, end) = free_range(48000, 2);
        let ports = Mutex::new(PortAllocator::new(start, end));
        let first = allocate(&ports, LOOPBACK, 0).unwrap();
        let number = first.rtp_port;
        drop(first);
        ports.lock().unwrap().release(number);
        let first = allocate(&ports, LOOPBACK, 0).unwrap();
        assert_ne!(
            first.rtp_port, number,
            "a pair just released is not handed out at once"
        );
        let second = allocate(&ports, LOOPBACK, 0).unwrap();
        assert!(
            allocate(&ports, LOOPBACK, 0).is_none(),
            "both pairs are in use"
        );
        assert_eq!(ports.lock().unwrap().in_use(), 2);
        let released = second.rtp_port;
        drop(second);
        ports.lock().unwrap().release(released);
        let again = allocate(&ports, LOOPBACK, 0).unwrap();
        assert_eq!(again.rtp_port, released, "the only free pair");
        drop(first);
    }
}
