//! Batched receive with recvmmsg(2), with each datagram's source address.
//!
//! Under edge-triggered epoll a socket must be read until it is empty. Reading one datagram at a
//! time costs an extra `recvfrom` per wake-up just to see `EWOULDBLOCK`; a recvmmsg batch that
//! comes back short already proves the queue was empty (a datagram arriving afterwards raises a
//! new edge), so a relay socket that wakes with one packet costs one receive call, not two.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams fetched per call. Relay sockets rarely hold more than a few; 16 covers bursts.
pub const BATCH: usize = 16;
/// Per-datagram buffer: larger than any Ethernet-MTU RTP packet, and a datagram that does not
/// fit is reported as truncated (and dropped as malformed) rather than relayed cut short.
pub const DATAGRAM_MAX: usize = 4096;

pub struct RecvBatch {
    buffers: Box<[[u8; DATAGRAM_MAX]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    lengths: [usize; BATCH],
    truncated: [bool; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        RecvBatch {
            buffers: vec![[0u8; DATAGRAM_MAX]; BATCH].into_boxed_slice(),
            addrs: vec![zero_addr; BATCH].into_boxed_slice(),
            lengths: [0; BATCH],
            truncated: [false; BATCH],
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking. An empty socket is
    /// `Err(WouldBlock)`; a count below `BATCH` means the socket was drained.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: all-zero iovec/mmsghdr values are valid (null pointers, zero lengths).
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (iov, msg)) in iovecs.iter_mut().zip(msgs.iter_mut()).enumerate() {
            let (Some(buf), Some(addr)) = (self.buffers.get_mut(i), self.addrs.get_mut(i)) else {
                break;
            };
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = DATAGRAM_MAX;
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
            msg.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            msg.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: each message points at one iovec over a live DATAGRAM_MAX-byte buffer and at a
        // live sockaddr_storage; all outlive the call and the kernel writes within their sizes.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (i, msg) in msgs.iter().enumerate().take(n) {
            if let (Some(len), Some(tr)) = (self.lengths.get_mut(i), self.truncated.get_mut(i)) {
                *len = (msg.msg_len as usize).min(DATAGRAM_MAX);
                *tr = msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            }
        }
        Ok(n)
    }

    /// The `i`-th datagram of the last batch: its bytes (writable: the session maps the RTP
    /// payload type in place before the datagram is sent on), source, and whether it was
    /// truncated.
    pub fn get(&mut self, i: usize) -> Option<(&mut [u8], Option<SocketAddr>, bool)> {
        let len = *self.lengths.get(i)?;
        let src = self.addrs.get(i).and_then(to_socket_addr);
        let truncated = *self.truncated.get(i)?;
        let buf = self.buffers.get_mut(i)?;
        Some((buf.get_mut(..len)?, src, truncated))
    }
}

fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // enough for and aligned for.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn receives_batches_with_sources_and_reports_empty() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = RecvBatch::new();
        assert_eq!(
            b.recv(rx.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for n in 0..(BATCH + 3) {
            tx.send_to(&[n as u8; 20], rx.local_addr().unwrap())
                .unwrap();
        }
        let big = vec![7u8; DATAGRAM_MAX + 10];
        tx.send_to(&big, rx.local_addr().unwrap()).unwrap();
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), BATCH);
        let (data, src, truncated) = b.get(3).unwrap();
        assert_eq!(data, &[3u8; 20]);
        assert_eq!(src, Some(tx.local_addr().unwrap()));
        assert!(!truncated);
        assert_eq!(
            b.recv(rx.as_raw_fd()).unwrap(),
            4,
            "a short batch: the socket is drained"
        );
        let (data, _, truncated) = b.get(3).unwrap();
        assert_eq!(data.len(), DATAGRAM_MAX);
        assert!(truncated);
    }

    #[test]
    fn ipv6_sources() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            return;
        };
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        let mut b = RecvBatch::new();
        std::thread::sleep(std::time::Duration::from_millis(10));
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 1);
        assert_eq!(b.get(0).unwrap().1, Some(tx.local_addr().unwrap()));
    }
}
