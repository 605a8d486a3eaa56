"""The gateways' codec settings applied to one call attempt (docs/b2bua.md, "Codecs").

Theory of operation. Each attempt toward a carrier plans its codecs afresh, because each
carrier (routing gateway) has its own settings, against the customer's (mapping gateway's):

1. :func:`plan_attempt` reads the caller's SDP offer and runs
   :func:`signaling.media.codec_policy.plan_offer`. With media proxy on, the plan becomes the ng
   ``codec`` options of the engine's offer (strip / mask / offer / transcode), so the engine
   itself writes the carrier's SDP and transcodes when the legs end up on different codecs;
   with media proxy off there is no engine, nothing can be converted, and the caller's SDP is
   only cut to the planned codecs. G.729 is then spelled per the carrier's "G729 negotiation
   mode" (:meth:`CodecStep.toward_carrier`), and the codecs the engine appended are moved
   before telephone-event; telephone-event goes on the carrier's "RFC2833 Payload" (or is
   added, "Use peer RFC2833 ability" off), and an added one is taken out of the answer toward
   the caller again.
2. :meth:`CodecStep.check_answer` runs ``plan_answer`` on the carrier's SDP (a 18x or the 2xx)
   before anything of it reaches the caller; the engine's answer toward the caller is then
   spelled per the customer's G.729 mode (:meth:`CodecStep.toward_caller`).

Both raise :class:`~signaling.media.codec_policy.CodecMismatch`; the call answers it with 488
Not Acceptable Here or tries the next carrier (the rule is in docs/decisions.md).

Calls whose SDP has no audio section, or no SDP, are left alone (``plan`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass

from signaling.media.codec_policy import (
    AnswerPlan,
    Codec,
    GatewayCodecPolicy,
    OfferPlan,
    offer_codec_options,
    plan_answer,
    plan_offer,
)
from signaling.media.sdp_codecs import (
    audio_codecs,
    audio_first,
    drop_telephone_event,
    keep_formats,
    name_g729,
    telephone_event_on,
)

__all__ = ["CodecStep", "plan_attempt", "reoffer_options"]


@dataclass(slots=True)
class CodecStep:
    """One attempt's codec plan, from the offer to the answer."""

    mapping: GatewayCodecPolicy
    routing: GatewayCodecPolicy
    #: The engine may convert: media proxy on or auto on both gateways.
    can_transcode: bool
    plan: OfferPlan | None = None
    #: ng ``codec`` options for the engine's offer (empty: the SDP passes as it is).
    options: dict[str, list[str]] | None = None
    answer: AnswerPlan | None = None
    #: telephone-event was added to the carrier's offer (the caller never offered it).
    added_te: bool = False

    def toward_carrier(self, sdp: bytes, proxied: bool) -> bytes:
        """The SDP of the INVITE to the carrier: the engine's offer (``proxied``) or the caller's
        own SDP cut to the planned codecs, with G.729 spelled as the carrier wants and, media
        anchored, telephone-event on the carrier's "RFC2833 Payload" (added when its "Use peer
        RFC2833 ability" is off and the caller has none)."""
        if self.plan is None or not sdp:
            return sdp
        if not proxied:
            return keep_formats(sdp, [c.pt for c in self.plan.to_callee])
        named = name_g729(sdp, [c.name for c in self.plan.to_callee if c.family == "G729"])
        pt = self.routing.rfc2833_payload
        if pt is not None:
            named, self.added_te = telephone_event_on(named, pt, not self.routing.use_peer_rfc2833)
        return audio_first(named) if self.options else named

    def check_answer(self, sdp: bytes) -> None:
        """Plan the answer from the carrier's SDP; raises CodecMismatch when it does not fit."""
        if self.plan is None or not sdp:
            return
        answered = audio_codecs(sdp)
        if answered is None:
            return
        self.answer = plan_answer(
            self.mapping, self.routing, self.plan, answered, can_transcode=self.can_transcode
        )

    def toward_caller(self, sdp: bytes) -> bytes:
        """The engine's answer toward the caller, G.729 spelled per the customer's mode."""
        if self.added_te:  # the caller never offered it: its digits are converted instead
            sdp = drop_telephone_event(sdp)
        if self.answer is None or not sdp:
            return sdp
        names = [c.name for c in self.answer.to_caller if c.family == "G729"]
        return name_g729(sdp, names[:1])


def plan_attempt(
    mapping: GatewayCodecPolicy, routing: GatewayCodecPolicy, sdp: bytes, *, can_transcode: bool
) -> CodecStep:
    """Plan an attempt from the caller's SDP; raises CodecMismatch when nothing fits."""
    step = CodecStep(mapping, routing, can_transcode)
    offered = audio_codecs(sdp) if sdp else None
    if offered is None:
        return step
    step.plan = plan_offer(mapping, routing, offered, can_transcode=can_transcode)
    step.options = offer_codec_options(offered, step.plan)
    return step


def reoffer_options(
    offerer: GatewayCodecPolicy, answerer: GatewayCodecPolicy, sdp: bytes
) -> dict[str, list[str]]:
    """The ng ``codec`` options of a re-offer (re-INVITE, UPDATE) through the engine, from the
    party whose gateway is ``offerer`` toward the other's: the same policy as the call's first
    offer, so a transcoded call stays transcoded. Raises CodecMismatch."""
    offered: list[Codec] | None = audio_codecs(sdp) if sdp else None
    if offered is None:
        return {}
    return offer_codec_options(offered, plan_offer(offerer, answerer, offered))
