//! The one media-control vocabulary: what a control plane (the Python API in-process, or the ng
//! protocol over UDP) may ask of an engine. The runtime implements it; the ng server consumes it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Instant;

use crate::dtmf::DtmfPlay;
use crate::spec::{SessionSpec, Side};
use crate::stats::SessionStats;
use crate::SessionId;

/// The local ports a new session was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPorts {
    pub rtp: SocketAddr,
    pub rtcp: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    /// Ports facing the caller (the offerer): the caller sends its media here.
    pub caller: LocalPorts,
    /// Ports facing the callee (the answerer).
    pub callee: LocalPorts,
}

/// Why a control request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The spec is invalid; the message names the field.
    InvalidSpec(String),
    /// No such session (already deleted, or never created).
    UnknownSession(SessionId),
    /// No free port pair in the configured range (admission control: refuse, don't degrade).
    PortsExhausted,
    /// No transcoding slot free, or the media workers are too busy to take another
    /// transcoding session without degrading the calls they carry. The text says which.
    TranscodingCapacity(String),
    /// The engine is shutting down or a worker is gone.
    Unavailable(String),
    /// A socket could not be set up.
    Io(String),
    /// The session cannot do what was asked in its current state (e.g. play in-band DTMF into
    /// a relayed stream whose codec we cannot write); the text says why.
    Refused(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::InvalidSpec(m) => write!(f, "{m}"),
            ControlError::UnknownSession(id) => write!(f, "unknown session {id}"),
            ControlError::PortsExhausted => {
                write!(f, "no free RTP/RTCP port pair in the configured range")
            }
            ControlError::TranscodingCapacity(m) => write!(f, "transcoding capacity reached: {m}"),
            ControlError::Unavailable(m) => write!(f, "engine unavailable: {m}"),
            ControlError::Io(m) => write!(f, "socket error: {m}"),
            ControlError::Refused(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// Per-call (never per-packet) control of a media engine.
pub trait MediaControl: Send + Sync {
    fn create(&self, spec: SessionSpec) -> Result<SessionInfo, ControlError>;
    fn update(&self, id: SessionId, spec: SessionSpec) -> Result<(), ControlError>;
    fn query(&self, id: SessionId) -> Result<SessionStats, ControlError>;
    /// Deletes the session, releasing its ports, and returns its final statistics.
    fn delete(&self, id: SessionId) -> Result<SessionStats, ControlError>;
    /// Starts deleting the session and returns at once; its final statistics come later through
    /// the returned [`PendingStats`]. The session is gone for every later command the moment
    /// this returns. Engines that delete synchronously answer with statistics already there.
    fn delete_deferred(&self, id: SessionId) -> Result<PendingStats, ControlError> {
        Ok(PendingStats::ready(self.delete(id)))
    }
    /// Queues digits to play toward the party of leg `to` ("play DTMF"), rendered per that
    /// leg's DTMF mode. Engines without DTMF generation refuse.
    fn play_dtmf(&self, id: SessionId, to: Side, play: DtmfPlay) -> Result<(), ControlError> {
        let _ = (to, play);
        Err(ControlError::Unavailable(format!(
            "session {id}: this engine cannot play DTMF"
        )))
    }
    /// A spec with this engine's defaults (configured timeouts, default DSCP and latching),
    /// for control planes such as ng that build specs from SDP.
    fn default_spec(&self) -> SessionSpec {
        SessionSpec::default()
    }
    /// The address media sockets are bound to (what SDP should advertise).
    fn advertised_address(&self) -> std::net::IpAddr;
    /// Makes commands queued without waking their worker take effect now (an engine that
    /// queues some commands quietly: a deferred delete's statistics are only computed then).
    /// Whoever polls [`PendingStats`] calls it while some are not done.
    fn flush(&self) {}
}

/// The final statistics of a session whose deletion was started by
/// [`MediaControl::delete_deferred`]: there already, or still to come from the thread that owns
/// the session, by a deadline after which the deletion counts as failed.
pub struct PendingStats {
    state: Pending,
}

enum Pending {
    Ready(Box<Result<SessionStats, ControlError>>),
    Waiting {
        reply: Receiver<Result<SessionStats, ControlError>>,
        deadline: Instant,
    },
}

fn no_answer() -> ControlError {
    ControlError::Unavailable("worker did not answer".into())
}

impl PendingStats {
    /// Statistics (or the failure) known now.
    pub fn ready(result: Result<SessionStats, ControlError>) -> Self {
        PendingStats {
            state: Pending::Ready(Box::new(result)),
        }
    }

    /// Statistics to come on `reply`; none by `deadline` is a failure.
    pub fn waiting(reply: Receiver<Result<SessionStats, ControlError>>, deadline: Instant) -> Self {
        PendingStats {
            state: Pending::Waiting { reply, deadline },
        }
    }

    /// Whether the outcome is known at `now` (the statistics came, the owner is gone, or the
    /// deadline passed). Never blocks.
    pub fn is_done(&mut self, now: Instant) -> bool {
        let outcome = match &self.state {
            Pending::Ready(_) => return true,
            Pending::Waiting { reply, deadline } => match reply.try_recv() {
                Ok(result) => result,
                Err(TryRecvError::Disconnected) => Err(no_answer()),
                Err(TryRecvError::Empty) if now >= *deadline => Err(no_answer()),
                Err(TryRecvError::Empty) => return false,
            },
        };
        self.state = Pending::Ready(Box::new(outcome));
        true
    }

    /// The outcome, waiting for it until the deadline when it is not known yet.
    pub fn wait(self) -> Result<SessionStats, ControlError> {
        match self.state {
            Pending::Ready(result) => *result,
            Pending::Waiting { reply, deadline } => {
                let left = deadline.saturating_duration_since(Instant::now());
                match reply.recv_timeout(left) {
                    Ok(result) => result,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                        Err(no_answer())
                    }
                }
            }
        }
    }
}

impl fmt::Debug for PendingStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            Pending::Ready(r) => f.debug_tuple("PendingStats::Ready").field(r).finish(),
            Pending::Waiting { deadline, .. } => f
                .debug_struct("PendingStats::Waiting")
                .field("deadline", deadline)
                .finish(),
        }
    }
}
