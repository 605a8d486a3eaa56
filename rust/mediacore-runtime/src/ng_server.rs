//! The ng control socket: one thread, one UDP socket, the sans-IO `NgProcessor` behind it.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use mediacore_engine::MediaControl;
use mediacore_ng::NgProcessor;

use crate::engine::Engine;

/// How often the server thread looks at its stop flag while idle.
const STOP_POLL: Duration = Duration::from_millis(100);

pub struct NgServer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NgServer {
    /// Binds `addr` and serves `engine` until `stop`. Calls whose media has gone silent on
    /// every leg are deleted (see `NgProcessor::expire_if_silent`), and calls still open at
    /// stop are deleted, so a media node never strands ports.
    pub fn start(addr: SocketAddr, engine: Engine) -> io::Result<NgServer> {
        let sock = UdpSocket::bind(addr)?;
        sock.set_read_timeout(Some(STOP_POLL))?;
        let local = sock.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        engine.enable_event_tap();
        let thread = std::thread::Builder::new()
            .name("ng-control".into())
            .spawn(move || {
                let control: Arc<dyn MediaControl> = Arc::new(engine.clone());
                let mut processor = NgProcessor::new(control);
                let mut buf = vec![0u8; 65_536];
                while !flag.load(Ordering::SeqCst) {
                    for event in engine.take_tapped_events() {
                        if let Some(call_id) = processor.expire_if_silent(event.session) {
                            eprintln!(
                                "ng: call {} deleted: no media on any leg ({})",
                                String::from_utf8_lossy(&call_id),
                                event.kind.as_str()
                            );
                        }
                    }
                    let (len, src) = match sock.recv_from(&mut buf) {
                        Ok(r) => r,
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock
                                    | ErrorKind::TimedOut
                                    | ErrorKind::Interrupted
                            ) =>
                        {
                            continue
                        }
                        Err(_) => continue,
                    };
                    let unix = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    if let Some(reply) = processor.handle(&buf[..len], Instant::now(), unix) {
                        let _ = sock.send_to(&reply, src);
                    }
                }
                processor.delete_all();
            })?;
        Ok(NgServer {
            local,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
