//! A blocking client for rtpengine's ng control protocol: each request is one UDP datagram
//! `<cookie> <bencoded dict>` and the reply repeats the cookie. Retransmissions reuse the cookie,
//! so an engine that already handled the request answers from its cookie cache instead of
//! acting twice. Every request is bounded: `attempts` sends, each waiting `timeout`.

use crate::bencode::{self, Value};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Largest ng reply we accept; SDP replies for one stream are a few hundred bytes.
const MAX_REPLY_BYTES: usize = 65_536;

pub struct NgClient {
    socket: UdpSocket,
    engine: SocketAddr,
    timeout: Duration,
    attempts: u32,
    cookie_prefix: String,
    next_cookie: u64,
    reply: Vec<u8>,
}

impl NgClient {
    pub fn new(
        local_ip: std::net::IpAddr,
        engine: SocketAddr,
        timeout: Duration,
        attempts: u32,
    ) -> Result<NgClient, String> {
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
            .map_err(|e| format!("ng socket bind: {e}"))?;
        Ok(NgClient {
            socket,
            engine,
            timeout,
            attempts: attempts.max(1),
            cookie_prefix: format!("rtpload{}", std::process::id()),
            next_cookie: 0,
            reply: vec![0; MAX_REPLY_BYTES],
        })
    }

    /// Sends `request` and returns the reply dictionary; an ng `result: error` becomes `Err`.
    pub fn request(&mut self, request: &Value) -> Result<Value, String> {
        self.next_cookie += 1;
        let cookie = format!("{}_{}", self.cookie_prefix, self.next_cookie);
        let mut datagram = cookie.clone().into_bytes();
        datagram.push(b' ');
        request.encode(&mut datagram);
        for _ in 0..self.attempts {
            self.socket
                .send_to(&datagram, self.engine)
                .map_err(|e| format!("ng send to {}: {e}", self.engine))?;
            if let Some(reply) = self.await_reply(cookie.as_bytes())? {
                return check_result(reply);
            }
        }
        Err(format!(
            "no ng reply from {} after {} attempts of {} ms",
            self.engine,
            self.attempts,
            self.timeout.as_millis()
        ))
    }

    /// Waits up to `timeout` for the reply carrying `cookie`, skipping stale replies to earlier
    /// requests. `Ok(None)` means the wait timed out.
    fn await_reply(&mut self, cookie: &[u8]) -> Result<Option<Value>, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|e| format!("ng socket timeout: {e}"))?;
            let len = match self.socket.recv(&mut self.reply) {
                Ok(len) => len,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                // ICMP port unreachable (engine not listening) surfaces as ConnectionRefused on
                // Linux; count it as a lost attempt rather than an immediate failure.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(format!("ng recv: {e}")),
            };
            let datagram = &self.reply[..len];
            let Some(space) = datagram.iter().position(|&c| c == b' ') else {
                continue;
            };
            if &datagram[..space] != cookie {
                continue;
            }
            return bencode::decode(&datagram[space + 1..]).map(Some);
        }
    }
}

fn check_result(reply: Value) -> Result<Value, String> {
    match reply.get("result").and_then(Value::as_text) {
        Some("ok") | Some("pong") => Ok(reply),
        Some(other) => {
            let reason = reply
                .get("error-reason")
                .and_then(Value::as_text)
                .unwrap_or("no error-reason");
            Err(format!("ng result {other:?}: {reason}"))
        }
        None => Err("ng reply without result".into()),
    }
}
