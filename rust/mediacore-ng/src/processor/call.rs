//! One call as the ng layer sees it: two tagged parties (rtpengine's "monologues") and, per
//! `m=` index, the engine session relaying that stream.
//!
//! Theory of operation. Whoever sends an SDP is a *party* on one side of every session: the
//! original offerer is [`Side::Caller`], the answerer [`Side::Callee`]. Applying an SDP from side
//! `S` sets the `S` leg of each session (creating sessions for newly enabled streams, deleting
//! those the SDP disables with port 0) and yields the body for the *other* party, rewritten to
//! the ports that face it: the other party must send its media to us, on the ports of its own
//! side. Offer, re-offer from either party and answer are all this one operation; they differ
//! only in which side sent the SDP, in the checks made before applying it, and in codec
//! negotiation ([`crate::codec`]): an offer plans each audio section's codecs and remembers the
//! result; the answer to it is checked against that and may be rewritten toward the offerer.
//! Everything that can fail on input (codec options, format edits) is worked out before the
//! engine is touched.

use std::net::SocketAddr;

use mediacore_engine::control::LocalPorts;
use mediacore_engine::spec::CodecSpec;
use mediacore_engine::{LegSpec, MediaControl, SessionId, SessionInfo, SessionSpec, Side};

use super::request::{MediaOptions, NgError};
use crate::codec::{self, OfferState};
use crate::sdp::{FormatEdit, LocalMedia, Media, RewriteOptions, Sdp};

/// Whether an SDP is an offer (or re-offer) or the answer to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Offer,
    Answer,
}

/// The engine session behind one `m=` index.
#[derive(Debug, Clone)]
pub struct CallMedia {
    pub kind: String,
    pub proto: String,
    /// `None` while the stream is disabled (port 0).
    pub session: Option<SessionInfo>,
    /// The spec last given to the engine.
    pub spec: SessionSpec,
    /// What the last offer of this (audio) section left for its answer.
    pub negotiation: Option<OfferState>,
}

/// The codec side of one section of an SDP being applied.
#[derive(Debug, Clone, Default)]
struct SectionPlan {
    /// The sending party's leg codecs.
    codecs: Vec<CodecSpec>,
    /// The other party's leg codecs, when the answer changes them.
    other_codecs: Option<Vec<CodecSpec>>,
    edit: Option<FormatEdit>,
    /// Set by offers.
    negotiation: Option<OfferState>,
}

/// A call by call-id.
#[derive(Debug, Clone)]
pub struct Call {
    /// Unix seconds of the first offer.
    pub created: u64,
    /// Unix seconds of the last offer, answer or delete.
    pub last_signal: u64,
    pub caller_tag: Vec<u8>,
    pub callee_tag: Option<Vec<u8>>,
    pub media: Vec<CallMedia>,
}

/// The local ports of `info` that face the party on `side`.
pub fn facing(info: &SessionInfo, side: Side) -> LocalPorts {
    match side {
        Side::Caller => info.caller,
        Side::Callee => info.callee,
    }
}

impl Call {
    pub fn new(caller_tag: &[u8], unix_time: u64) -> Self {
        Call {
            created: unix_time,
            last_signal: unix_time,
            caller_tag: caller_tag.to_vec(),
            callee_tag: None,
            media: Vec::new(),
        }
    }

    pub fn tag(&self, side: Side) -> Option<&[u8]> {
        match side {
            Side::Caller => Some(&self.caller_tag),
            Side::Callee => self.callee_tag.as_deref(),
        }
    }

    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.media.iter().filter_map(|m| m.session.map(|s| s.id))
    }

    /// Applies an SDP sent by the party on `side` and returns the body for the other party.
    ///
    /// New sessions are created first; if one fails, those created by this call are deleted
    /// again and the call is left as it was. Updates and deletions follow (an engine failure
    /// there is reported, and the call keeps the state reached so far).
    pub fn apply_sdp(
        &mut self,
        control: &dyn MediaControl,
        sdp: &Sdp,
        side: Side,
        role: Role,
        opts: &MediaOptions,
    ) -> Result<Vec<u8>, NgError> {
        let plans = self.plan_codecs(sdp, side, role, opts)?;
        let edits: Vec<Option<FormatEdit>> = plans.iter().map(|p| p.edit.clone()).collect();
        let outgoing = sdp
            .with_formats(&edits)
            .map_err(|e| NgError::new(format!("Failed to parse SDP: {e}")))?;
        let no_plan = SectionPlan::default();
        let mut media = self.media.clone();
        let mut created: Vec<SessionId> = Vec::new();
        for (i, m) in sdp.media.iter().enumerate() {
            if media.len() <= i {
                // A stream the call has not seen before, disabled until created below: every
                // m= index keeps its slot, so the sections after a disabled one stay aligned.
                media.push(CallMedia {
                    kind: m.kind.clone(),
                    proto: m.proto.clone(),
                    session: None,
                    spec: control.default_spec(),
                    negotiation: None,
                });
            }
            if media[i].session.is_some() || !m.is_enabled() {
                continue;
            }
            // A fresh spec: the other party's leg of a new stream is unknown until it sends SDP
            // (or media, which latching learns from).
            let mut spec = control.default_spec();
            call_wide(opts, &mut spec);
            let plan = plans.get(i).unwrap_or(&no_plan);
            *spec.leg_mut(side) = leg_from_media(m, opts, spec.leg(side), plan);
            spec.leg_mut(side).local_ip = opts.interfaces[0];
            spec.leg_mut(side.other()).local_ip = opts.interfaces[1];
            match control.create(spec.clone()) {
                Ok(info) => {
                    created.push(info.id);
                    let cm = CallMedia {
                        kind: m.kind.clone(),
                        proto: m.proto.clone(),
                        session: Some(info),
                        spec,
                        negotiation: plan.negotiation.clone(),
                    };
                    media[i] = cm;
                }
                Err(e) => {
                    for id in created {
                        let _ = control.delete(id);
                    }
                    return Err(NgError::new(e.to_string()));
                }
            }
        }
        for (i, m) in sdp.media.iter().enumerate() {
            let cm = &mut media[i];
            let Some(info) = cm.session else { continue };
            if created.contains(&info.id) {
                continue;
            }
            if !m.is_enabled() {
                // The party disabled the stream: release its ports, keep port 0 in the SDP.
                let _ = control.delete(info.id);
                cm.session = None;
                cm.negotiation = None;
                continue;
            }
            let plan = plans.get(i).unwrap_or(&no_plan);
            let mut spec = cm.spec.clone();
            call_wide(opts, &mut spec);
            *spec.leg_mut(side) = leg_from_media(m, opts, spec.leg(side), plan);
            if let Some(codecs) = &plan.other_codecs {
                spec.leg_mut(side.other()).codecs = codecs.clone();
            }
            if let Err(e) = control.update(info.id, spec.clone()) {
                self.media = media;
                return Err(NgError::new(e.to_string()));
            }
            cm.spec = spec;
            if role == Role::Offer {
                cm.negotiation = plan.negotiation.clone();
            }
        }
        self.media = media;

        // Each section carries the address of the ports the other party sends to (the engine
        // gives the advertised address of each leg's interface).
        let locals: Vec<Option<LocalMedia>> = self
            .media
            .iter()
            .map(|cm| {
                cm.session.map(|info| {
                    let ports = facing(&info, side.other());
                    LocalMedia {
                        address: ports.rtp.ip(),
                        rtp_port: ports.rtp.port(),
                        rtcp_port: ports.rtcp.port(),
                    }
                })
            })
            .collect();
        let origin = locals
            .iter()
            .flatten()
            .next()
            .map_or_else(|| control.advertised_address(), |l| l.address);
        let rewrite = RewriteOptions {
            strip_ice: true,
            origin: opts.replace_origin.then_some(origin),
        };
        Ok(outgoing.rewrite(&locals, &rewrite))
    }

    /// The codec plan of every section of `sdp`. Only enabled audio sections negotiate; the
    /// others carry no codec list (the engine relays them as they come).
    fn plan_codecs(
        &self,
        sdp: &Sdp,
        side: Side,
        role: Role,
        opts: &MediaOptions,
    ) -> Result<Vec<SectionPlan>, NgError> {
        sdp.media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if !m.is_enabled() || !m.kind.eq_ignore_ascii_case("audio") {
                    return Ok(SectionPlan::default());
                }
                Ok(match role {
                    Role::Offer => {
                        let p = codec::plan_offer(m, &opts.codec, side).map_err(NgError::new)?;
                        SectionPlan {
                            codecs: p.codecs,
                            other_codecs: None,
                            edit: p.edit,
                            negotiation: Some(p.state),
                        }
                    }
                    Role::Answer => {
                        let state = self.media.get(i).and_then(|cm| cm.negotiation.as_ref());
                        let p = codec::plan_answer(m, state, side, &opts.codec);
                        SectionPlan {
                            codecs: p.codecs,
                            other_codecs: p.offerer_codecs,
                            edit: p.edit,
                            negotiation: None,
                        }
                    }
                })
            })
            .collect()
    }
}

/// The leg of the party that sent `m`; latch and DSCP come from the request, else stay as they
/// were, as do its jitter buffer and echo canceller unless the request sets them; codecs from
/// the section's plan, packetisation from its `a=ptime`.
/// What a request sets for both parties of the call at once: DSCP, voice gain, comfort noise
/// (each kept when the request does not name it).
fn call_wide(opts: &MediaOptions, spec: &mut SessionSpec) {
    for leg in [&mut spec.caller, &mut spec.callee] {
        if let Some(dscp) = opts.dscp {
            leg.dscp = dscp;
        }
        if let Some(gain) = opts.gain_db {
            leg.gain_db = gain;
        }
        if let Some(on) = opts.comfort_noise {
            leg.comfort_noise = on;
        }
    }
}

fn leg_from_media(
    m: &Media,
    opts: &MediaOptions,
    current: &LegSpec,
    plan: &SectionPlan,
) -> LegSpec {
    let relocate = |a: Option<SocketAddr>| match (a, opts.source_address) {
        (Some(a), Some(ip)) => Some(SocketAddr::new(ip, a.port())),
        (a, _) => a,
    };
    let mut leg = LegSpec {
        remote_rtp: relocate(m.remote_rtp),
        remote_rtcp: relocate(m.remote_rtcp),
        latch: opts.latch,
        dscp: opts.dscp.unwrap_or(current.dscp),
        hold: m.hold,
        clock_rates: m.clock_rates(),
        codecs: plan.codecs.clone(),
        ptime_ms: codec::leg_ptime(m),
        vad: codec::leg_vad(&plan.codecs),
        jitter_buffer: current.jitter_buffer,
        echo_cancel: current.echo_cancel,
        dtmf: opts.dtmf.unwrap_or(current.dtmf),
        gain_db: opts.gain_db.unwrap_or(current.gain_db),
        comfort_noise: opts.comfort_noise.unwrap_or(current.comfort_noise),
        local_ip: current.local_ip,
    };
    opts.dsp.apply(&mut leg);
    leg
}
