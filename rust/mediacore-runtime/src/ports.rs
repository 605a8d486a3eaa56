//! RTP/RTCP port-pair allocation from the configured range: even RTP port, RTCP = RTP + 1.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};

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

    /// Binds the next free pair on `ip` with the given ToS/traffic-class byte. Ports taken by
    /// other programs are skipped. `None` when every pair is busy.
    pub fn allocate(&mut self, ip: IpAddr, tos: u8) -> Option<PortPair> {
        for _ in 0..self.capacity() {
            let port = self.next;
            self.next = if port >= self.last_rtp {
                self.first
            } else {
                port + 2
            };
            if self.in_use.contains(&port) {
                continue;
            }
            let Ok(rtp) = bind_udp(SocketAddr::new(ip, port), tos) else {
                continue;
            };
            let Ok(rtcp) = bind_udp(SocketAddr::new(ip, port + 1), tos) else {
                continue;
            };
            self.in_use.insert(port);
            return Some(PortPair {
                rtp,
                rtcp,
                rtp_port: port,
            });
        }
        None
    }

    pub fn release(&mut self, rtp_port: u16) {
        self.in_use.remove(&rtp_port);
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
