//! Batched non-blocking receive with recvmmsg(2). Besides fetching several datagrams per
//! system call, a batch that comes back short proves the socket was drained, which saves the
//! extra recv that would otherwise be needed to see WouldBlock under edge-triggered epoll.

use std::io;
use std::os::fd::RawFd;

/// Datagrams fetched per recvmmsg call.
pub const BATCH: usize = 16;

pub struct RecvBatch<const LEN: usize> {
    buffers: Vec<[u8; LEN]>,
    lengths: [usize; BATCH],
}

impl<const LEN: usize> RecvBatch<LEN> {
    pub fn new() -> Self {
        RecvBatch {
            buffers: vec![[0; LEN]; BATCH],
            lengths: [0; BATCH],
        }
    }

    /// Receives up to `BATCH` datagrams without blocking; `Ok(0)` never happens, an empty
    /// socket is `Err(WouldBlock)`. Datagrams longer than `LEN` are truncated to `LEN`.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: all-zero iovec and mmsghdr values are valid (null pointers, zero lengths).
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for ((iovec, message), buffer) in iovecs
            .iter_mut()
            .zip(messages.iter_mut())
            .zip(self.buffers.iter_mut())
        {
            iovec.iov_base = buffer.as_mut_ptr().cast();
            iovec.iov_len = LEN;
            message.msg_hdr.msg_iov = iovec;
            message.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every message points at one iovec, which points at a live buffer of LEN
        // bytes; all of them outlive the call, and the kernel writes at most LEN bytes each.
        let count = unsafe {
            libc::recvmmsg(
                fd,
                messages.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let count = usize::try_from(count).map_err(|_| io::Error::last_os_error())?;
        for (length, message) in self.lengths.iter_mut().zip(&messages).take(count) {
            *length = message.msg_len as usize;
        }
        Ok(count)
    }

    /// The `index`-th datagram of the last batch.
    pub fn datagram(&self, index: usize) -> &[u8] {
        match (self.buffers.get(index), self.lengths.get(index)) {
            (Some(buffer), Some(&length)) => &buffer[..length.min(LEN)],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn drains_a_socket_in_batches() -> Result<(), io::Error> {
        let rx = UdpSocket::bind("127.0.0.1:0")?;
        let tx = UdpSocket::bind("127.0.0.1:0")?;
        let mut batch = RecvBatch::<4>::new();
        assert_eq!(
            batch.recv(rx.as_raw_fd()).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        for i in 0..(BATCH as u8 + 3) {
            tx.send_to(&[i, i, i, i, i], rx.local_addr()?)?;
        }
        assert_eq!(batch.recv(rx.as_raw_fd())?, BATCH);
        assert_eq!(batch.datagram(1), &[1, 1, 1, 1]);
        assert_eq!(batch.recv(rx.as_raw_fd())?, 3);
        assert_eq!(batch.datagram(2), &[BATCH as u8 + 2; 4]);
        Ok(())
    }
}
