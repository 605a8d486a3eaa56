//! The ng command layer, sans-IO: a datagram and the time in, the reply datagram out.
//!
//! [`NgProcessor::handle`] splits the cookie, answers retransmissions from the reply cache,
//! decodes the bencode dictionary and dispatches on `command`. Every failure becomes a reply
//! `{result: "error", error-reason: ...}`; nothing a client sends can panic the processor or
//! leave engine sessions behind that no call owns.

mod cache;
mod call;
mod report;
mod request;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use mediacore_engine::{LegStats, MediaControl, PendingStats, SessionId, SessionStats, Side};

use crate::bencode::{self, Value};
use crate::frame;
use crate::sdp::Sdp;
pub use cache::{ReplyCache, REPLY_CACHE_MAX_ENTRIES, REPLY_CACHE_TTL};
use call::{Call, Role};
use report::Detail;
pub use report::PartyCounters;
pub use request::NgError;
use request::{
    play_request, MediaOptions, Request, ERR_NOT_DICT, ERR_NO_AUDIO, ERR_NO_FROM_TAG, ERR_NO_SDP,
    ERR_UNKNOWN_CALL, ERR_UNKNOWN_COMMAND, ERR_UNKNOWN_TAG,
};

/// Which call an engine session belongs to, and the tags of its two parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOwner {
    pub call_id: Vec<u8>,
    pub caller_tag: Vec<u8>,
    pub callee_tag: Option<Vec<u8>>,
}

/// A `delete` started by [`NgProcessor::delete_deferred`]: the call is gone from the processor,
/// its sessions are being deleted, and the reply (with the final statistics) is built once they
/// are all known.
#[derive(Debug)]
pub struct PendingDelete {
    call: Call,
    sessions: Vec<(SessionId, PendingStats)>,
    unix_time: u64,
    detail: Detail,
}

impl PendingDelete {
    /// Whether every session's outcome is known at `now`. Never blocks.
    pub fn is_done(&mut self, now: Instant) -> bool {
        let mut done = true;
        for (_, pending) in &mut self.sessions {
            done &= pending.is_done(now);
        }
        done
    }

    /// The `delete` reply: the statistics of the sessions that were deleted (as `delete`
    /// answers, a session that failed is left out). Waits for any outcome not known yet, up to
    /// its deadline.
    pub fn finish(self) -> Value {
        let (unix_time, detail) = (self.unix_time, self.detail);
        let (call, stats) = self.outcomes();
        merge(ok(), report::call_report(&call, &stats, unix_time, detail))
    }

    /// What [`finish`](Self::finish)'s reply tells of each party, without the reply: the
    /// counters a call's record keeps (see [`PartyCounters`]). Waits as `finish` does.
    pub fn finish_counters(self) -> Vec<PartyCounters> {
        let (call, stats) = self.outcomes();
        report::call_counters(&call, &stats)
    }

    /// The call and the statistics of its sessions that were deleted (a session that failed
    /// is left out), waiting for any not known yet up to its deadline.
    fn outcomes(self) -> (Call, HashMap<SessionId, SessionStats>) {
        let stats = self
            .sessions
            .into_iter()
            .filter_map(|(id, pending)| pending.wait().ok().map(|s| (id, s)))
            .collect();
        (self.call, stats)
    }
}

/// The statistics a `delete` asks for: the counters only with our flag `brief-stats`.
fn report_detail(req: &Request<'_>) -> Detail {
    if req.strings("flags").iter().any(|f| f == "brief-stats") {
        Detail::Brief
    } else {
        Detail::Full
    }
}

/// What [`NgProcessor::delete_deferred`] did: answered at once (an error, or a call without
/// sessions), or started a deletion whose reply comes later.
#[derive(Debug)]
pub enum DeleteStart {
    Done(Value),
    Pending(PendingDelete),
}

/// Serves the ng protocol against a [`MediaControl`].
pub struct NgProcessor {
    control: Arc<dyn MediaControl>,
    calls: HashMap<Vec<u8>, Call>,
    reply_cache: ReplyCache,
}

type Outcome = Result<Value, NgError>;

fn ok() -> Value {
    Value::dict().with("result", "ok")
}

fn error_reply(reason: &str) -> Value {
    Value::dict()
        .with("result", "error")
        .with("error-reason", reason)
}

impl NgProcessor {
    pub fn new(control: Arc<dyn MediaControl>) -> Self {
        NgProcessor {
            control,
            calls: HashMap::new(),
            reply_cache: ReplyCache::default(),
        }
    }

    /// Handles one request datagram; returns the reply datagram, or `None` when no cookie could
    /// be split off (there is nothing to address a reply with).
    ///
    /// `now` measures reply-cache age; `unix_time` (seconds) stamps calls and packets in replies.
    pub fn handle(&mut self, datagram: &[u8], now: Instant, unix_time: u64) -> Option<Vec<u8>> {
        let frame = frame::split(datagram).ok()?;
        if let Some(reply) = self.reply_cache.get(frame.cookie, frame.body, now) {
            return Some(reply);
        }
        let body = match self.execute(frame.body, unix_time) {
            Ok(v) => v,
            Err(e) => error_reply(&e.reason),
        };
        let reply = frame::reply(frame.cookie, &body.to_bytes());
        self.reply_cache
            .insert(frame.cookie, frame.body, reply.clone(), now);
        Some(reply)
    }

    /// Number of calls with state (offered and not deleted).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Deletes every session of every call (shutdown); engine errors are ignored.
    /// Makes the engine's quietly queued commands take effect now ([`MediaControl::flush`]):
    /// a deferred delete's statistics come only after it.
    pub fn flush(&self) {
        self.control.flush();
    }

    pub fn delete_all(&mut self) {
        for (_, call) in self.calls.drain() {
            for id in call.sessions() {
                let _ = self.control.delete(id);
            }
        }
    }

    /// The call a session belongs to: its call-id and the tag of the party on each side
    /// (caller, callee). Lets an in-process control plane map engine events to its calls.
    pub fn call_of(&self, session: SessionId) -> Option<CallOwner> {
        self.calls.iter().find_map(|(id, call)| {
            call.sessions().any(|s| s == session).then(|| CallOwner {
                call_id: id.clone(),
                caller_tag: call.caller_tag.clone(),
                callee_tag: call.callee_tag.clone(),
            })
        })
    }

    /// A session of some call reported silence (a media or hold timeout). When every leg of
    /// every session of that call is silent — timed out, or facing a party that never became
    /// known — the call is dead (rtpengine's `--timeout` rule) and is deleted, freeing its ports:
    /// the signalling side may never send `delete` (a lost BYE, a restarted proxy). One-way
    /// audio keeps a call alive. Returns the deleted call-id.
    pub fn expire_if_silent(&mut self, session: SessionId) -> Option<Vec<u8>> {
        let call_id = self
            .calls
            .iter()
            .find(|(_, call)| call.sessions().any(|s| s == session))
            .map(|(id, _)| id.clone())?;
        let call = self.calls.get(&call_id)?;
        let dead = call.sessions().all(|id| match self.control.query(id) {
            Ok(stats) => leg_silent(&stats.caller) && leg_silent(&stats.callee),
            Err(_) => true,
        });
        if !dead {
            return None;
        }
        let call = self.calls.remove(&call_id)?;
        for id in call.sessions() {
            let _ = self.control.delete(id);
        }
        Some(call_id)
    }

    /// Handles one request already decoded (an in-process control plane: no datagram, no
    /// cookie, no reply cache). Failures come back as `{result: "error", error-reason}`.
    pub fn handle_value(&mut self, value: &Value, unix_time: u64) -> Value {
        self.execute_value(value, unix_time)
            .unwrap_or_else(|e| error_reply(&e.reason))
    }

    fn execute(&mut self, body: &[u8], unix_time: u64) -> Outcome {
        let value = bencode::decode(body).map_err(|_| NgError::new(ERR_NOT_DICT))?;
        self.execute_value(&value, unix_time)
    }

    fn execute_value(&mut self, value: &Value, unix_time: u64) -> Outcome {
        let req = Request::new(value)?;
        let command = req.command()?.to_ascii_lowercase();
        match command.as_slice() {
            b"ping" => Ok(Value::dict().with("result", "pong")),
            b"offer" => self.offer(&req, unix_time),
            b"answer" => self.answer(&req, unix_time),
            b"delete" => self.delete(&req, unix_time),
            b"query" => self.query(&req, unix_time),
            b"list" => Ok(self.list()),
            b"play dtmf" => self.play_dtmf(&req),
            _ => Err(NgError::new(ERR_UNKNOWN_COMMAND)),
        }
    }

    fn offer(&mut self, req: &Request<'_>, unix_time: u64) -> Outcome {
        let call_id = req.call_id()?;
        let from_tag = req.required("from-tag", ERR_NO_FROM_TAG)?;
        let sdp = parse_sdp(req)?;
        let opts = MediaOptions::from_request(req)?;
        let control = Arc::clone(&self.control);
        let body = match self.calls.get_mut(call_id) {
            None => {
                let mut call = Call::new(from_tag, unix_time);
                let body =
                    call.apply_sdp(control.as_ref(), &sdp, Side::Caller, Role::Offer, &opts)?;
                self.calls.insert(call_id.to_vec(), call);
                body
            }
            Some(call) => {
                let side = reoffer_side(call, from_tag, req.bytes("to-tag"));
                let body = call.apply_sdp(control.as_ref(), &sdp, side, Role::Offer, &opts)?;
                match side {
                    Side::Caller => call.caller_tag = from_tag.to_vec(),
                    Side::Callee => call.callee_tag = Some(from_tag.to_vec()),
                }
                call.last_signal = unix_time;
                body
            }
        };
        Ok(ok().with("sdp", body))
    }

    fn answer(&mut self, req: &Request<'_>, unix_time: u64) -> Outcome {
        let call_id = req.call_id()?;
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or_else(|| NgError::new(ERR_UNKNOWN_CALL))?;
        let from_tag = req.required("from-tag", ERR_NO_FROM_TAG)?;
        let to_tag = req.bytes("to-tag");
        let sdp = parse_sdp(req)?;
        let opts = MediaOptions::from_request(req)?;
        if sdp.media.len() != call.media.len() {
            return Err(NgError::new(format!(
                "Failed to parse SDP: answer has {} media sections, the offer had {}",
                sdp.media.len(),
                call.media.len()
            )));
        }
        if let Some(i) = sdp
            .media
            .iter()
            .zip(&call.media)
            .position(|(m, cm)| m.is_enabled() && cm.session.is_none())
        {
            return Err(NgError::new(format!(
                "Failed to parse SDP: answer enables media section {i} the offer disabled"
            )));
        }
        let side = answerer_side(call, from_tag, to_tag);
        let body = call.apply_sdp(self.control.as_ref(), &sdp, side, Role::Answer, &opts)?;
        if let (Side::Callee, Some(tag)) = (side, to_tag) {
            call.callee_tag = Some(tag.to_vec());
        }
        call.last_signal = unix_time;
        Ok(ok().with("sdp", body))
    }

    /// The call a `delete` names, taken out of the processor (stamped with the time).
    fn take_call(&mut self, req: &Request<'_>, unix_time: u64) -> Result<Call, NgError> {
        let call_id = req.call_id()?;
        let mut call = self
            .calls
            .remove(call_id)
            .ok_or_else(|| NgError::new(ERR_UNKNOWN_CALL))?;
        call.last_signal = unix_time;
        Ok(call)
    }

    fn delete(&mut self, req: &Request<'_>, unix_time: u64) -> Outcome {
        let call = self.take_call(req, unix_time)?;
        let stats: HashMap<_, SessionStats> = call
            .sessions()
            .filter_map(|id| self.control.delete(id).ok().map(|s| (id, s)))
            .collect();
        let detail = report_detail(req);
        Ok(merge(
            ok(),
            report::call_report(&call, &stats, unix_time, detail),
        ))
    }

    /// `delete` without waiting for the engine's final statistics (an in-process control
    /// plane, which must not stall on a media worker): the call and its sessions are gone for
    /// every later command at once; the reply is [`PendingDelete::finish`]'s. `value` is a
    /// `delete` request; anything else is answered as [`NgProcessor::handle_value`] would.
    pub fn delete_deferred(&mut self, value: &Value, unix_time: u64) -> DeleteStart {
        let started = Request::new(value).and_then(|req| {
            if !req.command()?.eq_ignore_ascii_case(b"delete") {
                return Ok(None);
            }
            let call = self.take_call(&req, unix_time)?;
            let sessions: Vec<(SessionId, PendingStats)> = call
                .sessions()
                .map(|id| {
                    let pending = self
                        .control
                        .delete_deferred(id)
                        .unwrap_or_else(|e| PendingStats::ready(Err(e)));
                    (id, pending)
                })
                .collect();
            Ok(Some(PendingDelete {
                call,
                sessions,
                unix_time,
                detail: report_detail(&req),
            }))
        });
        match started {
            Ok(Some(pending)) => DeleteStart::Pending(pending),
            Ok(None) => DeleteStart::Done(self.handle_value(value, unix_time)),
            Err(e) => DeleteStart::Done(error_reply(&e.reason)),
        }
    }

    fn query(&mut self, req: &Request<'_>, unix_time: u64) -> Outcome {
        let call_id = req.call_id()?;
        let call = self
            .calls
            .get(call_id)
            .ok_or_else(|| NgError::new(ERR_UNKNOWN_CALL))?;
        let stats: HashMap<_, SessionStats> = call
            .sessions()
            .filter_map(|id| self.control.query(id).ok().map(|s| (id, s)))
            .collect();
        Ok(merge(
            ok(),
            report::call_report(call, &stats, unix_time, Detail::Full),
        ))
    }

    /// `play DTMF`: the party named by `from-tag` "generates" the digits, which are injected
    /// into its stream toward the other party and rendered per that party's DTMF mode (events,
    /// tones, or an event for the SIP layer to send as INFO), on every audio stream of the call.
    fn play_dtmf(&mut self, req: &Request<'_>) -> Outcome {
        let call_id = req.call_id()?;
        let call = self
            .calls
            .get(call_id)
            .ok_or_else(|| NgError::new(ERR_UNKNOWN_CALL))?;
        let tag = req.required("from-tag", ERR_NO_FROM_TAG)?;
        let from = if tag == call.caller_tag.as_slice() {
            Side::Caller
        } else if call.callee_tag.as_deref() == Some(tag) {
            Side::Callee
        } else {
            return Err(NgError::new(ERR_UNKNOWN_TAG));
        };
        let play = play_request(req)?;
        let sessions: Vec<SessionId> = call
            .media
            .iter()
            .filter(|m| m.kind.eq_ignore_ascii_case("audio"))
            .filter_map(|m| m.session.map(|s| s.id))
            .collect();
        if sessions.is_empty() {
            return Err(NgError::new(ERR_NO_AUDIO));
        }
        for id in sessions {
            self.control
                .play_dtmf(id, from.other(), play.clone())
                .map_err(|e| NgError::new(e.to_string()))?;
        }
        Ok(ok())
    }

    fn list(&self) -> Value {
        let mut ids: Vec<&Vec<u8>> = self.calls.keys().collect();
        ids.sort();
        ok().with(
            "calls",
            ids.into_iter()
                .map(|id| Value::Bytes(id.clone()))
                .collect::<Vec<_>>(),
        )
    }
}

fn parse_sdp(req: &Request<'_>) -> Result<Sdp, NgError> {
    let body = req.bytes("sdp").ok_or_else(|| NgError::new(ERR_NO_SDP))?;
    Sdp::parse(body).map_err(|e| NgError::new(format!("Failed to parse SDP: {e}")))
}

/// Which party sent a re-offer: the callee when its tag is the from-tag (or, with an unknown
/// from-tag, when the to-tag is the caller's); otherwise the caller.
fn reoffer_side(call: &Call, from_tag: &[u8], to_tag: Option<&[u8]>) -> Side {
    let callee_sent = call.callee_tag.as_deref() == Some(from_tag)
        || (from_tag != call.caller_tag.as_slice() && to_tag == Some(call.caller_tag.as_slice()));
    if callee_sent {
        Side::Callee
    } else {
        Side::Caller
    }
}

/// Which party sent an answer: normally the callee (from-tag is the caller's); the caller when
/// answering a re-offer of the callee (from-tag is the callee's, to-tag the caller's).
fn answerer_side(call: &Call, from_tag: &[u8], to_tag: Option<&[u8]>) -> Side {
    if from_tag == call.caller_tag.as_slice() {
        Side::Callee
    } else if call.callee_tag.as_deref() == Some(from_tag)
        || to_tag == Some(call.caller_tag.as_slice())
    {
        Side::Caller
    } else {
        Side::Callee
    }
}

/// `base` with the keys of `extra` added.
fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Dict(b), Value::Dict(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

/// A leg is silent when it timed out, or when its party never became known and never sent.
fn leg_silent(leg: &LegStats) -> bool {
    leg.timed_out || (leg.remote_rtp.is_none() && leg.since_last_packet.is_none())
}
