"""Re-offers in an answered call: a re-INVITE or UPDATE with SDP from either party, relayed to
the other under the call's codec policy, its answer checked like the call's first answer, and
what happens when that answer does not fit (docs/b2bua.md "Re-offers", docs/decisions.md "A
re-offer's answer that does not fit"). Split from call.py; these functions act on the call.

Theory of operation. The call keeps the offer/answer in force (:class:`Exchange`): each
party's SDP as the engine was given it. A re-offer from party X goes through the same planning
as the first offer (:func:`signaling.b2bua.codecs.plan_attempt`, X's gateway as the offering
side), to the engine (which applies X's new SDP and writes the other party's), and on to Y.
Y's answer is checked against the plan before anything of it reaches the engine or X:

* it fits — the engine applies it, X gets the answer, and it is the exchange in force;
* it does not fit (or Y answered no SDP, or the engine refused it) — Y's 2xx is acknowledged
  (RFC 3261 §13.2.2.4), X gets 488 Not Acceptable Here with a Warning 305 (RFC 3261 §14.2: X
  stays on its session, §14.1), the engine is given the exchange in force again at once (it is
  never left with X's new SDP half applied), and Y is sent an offer of the session it had
  before — same SDP, origin version one up, as many ``m=`` lines as it last saw (RFC 3264
  §8; RFC 6141 rolls a session back the same way, by a new offer) — in the same method. Y's
  answer to that restores the call; if Y changed its media in it, the engine is given that
  (checked against the policy again). Only if Y refuses the restoring offer (a second 491
  included: one retry after 2.5 s) or answers something that cannot be used is the call
  ended, with both legs hung up.

A relayed re-offer that gets no 2xx leaves both parties on their session (RFC 3261 §14.1):
the engine is given the exchange in force again, and the failure goes back to X.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from signaling.b2bua.codecs import CodecStep, plan_attempt
from signaling.b2bua.parts import CODEC_MISMATCH, MEDIA_FAILURE, SDP, Exchange, Leg, MediaResult, Pending
from signaling.media.codec_policy import CodecMismatch
from signaling.media.control import MediaControlError, OfferOptions
from signaling.media.sdp_streams import (
    keep_disabled,
    media_key,
    one_audio_stream,
    pad_sections,
    restoring_offer,
    section_count,
    trim_sections,
    version_above,
)
from signaling.sip.message import Request, Response
from signaling.sip.transaction import TransactionId

if TYPE_CHECKING:
    from collections.abc import Callable

    from signaling.b2bua.call import Call

log = logging.getLogger("softswitch.call")

#: how long before a restoring offer answered 491 (glare) is sent again (RFC 3261 §14.1: we
#: own neither Call-ID, so 0-2 s would do; a little more leaves the other party's offer room)
RESTORE_RETRY_S = 2.5
RESTORE_TRIES = 2


def _plan(call: Call, offerer: str, sdp: bytes) -> CodecStep:
    """The codec plan of an offer from leg ``offerer``: its gateway's settings as the offering
    side (the call's first offer's rules, the roles swapped for a carrier's re-offer)."""
    route = call.attempt.route if call.attempt is not None else None
    mapping = call.admission.codecs
    routing = route.codecs if route is not None else mapping
    policies = (mapping, routing) if offerer == "a" else (routing, mapping)
    return plan_attempt(*policies, sdp, can_transcode=call.media_proxy)


def _warning(call: Call, leg: Leg) -> list[tuple[str, str]]:
    return [("Warning", f'305 {call.host.local_via(leg.transport).host} "Incompatible media format"')]


# -- the re-offer -------------------------------------------------------------------------------


def relay_offer(call: Call, leg: Leg, other: Leg, request: Request, transaction: TransactionId) -> None:
    """An SDP offer in a re-INVITE or UPDATE from ``leg``: plan it, through the engine, to
    ``other``. Further audio streams are refused with port 0 (signaling/media/sdp_streams.py)."""
    # as many m= lines as the other party has seen (more only after a refused re-offer that
    # added streams: RFC 3264 §8); the answer is cut back to the offerer's count in _accept
    body = pad_sections(one_audio_stream(request.body), other.sdp_sent)
    try:
        codecs = _plan(call, leg.name, body)
    except CodecMismatch as exc:
        log.info("call %s: re-offer refused: %s", call.call_id, exc)
        call._respond_in(leg, request, transaction, exc.sip_status, extra=_warning(call, leg))
        return
    pending = Pending(leg.name, request, transaction, offer_media=True, codecs=codecs, offer=body)
    if not call.media_proxy:
        _send_offer(call, other, pending, codecs.toward_carrier(body, proxied=False))
        return

    def offered(result: MediaResult) -> None:
        if isinstance(result, MediaControlError):
            log.info("call %s: re-offer refused by the engine: %s", call.call_id, result)
            call._respond_in(leg, request, transaction, 488, extra=_warning(call, leg))
            replay(call, call.exchange)  # whatever of it the engine applied is undone
            return
        if call.active:
            _send_offer(call, other, pending, codecs.toward_carrier(result, proxied=True))

    options = OfferOptions(codec=codecs.options or {})
    call.host.media(call, "offer", (call.call_id, call._media_tag(leg), body, options), offered)


def _send_offer(call: Call, other: Leg, pending: Pending, body: bytes) -> None:
    body = version_above(body, other.sdp_sent)  # after a restoring offer of ours: still up
    pending.sent = body
    tid = call._send_in_dialog(other, pending.request.method, body, SDP)
    if tid is None:  # the other dialog cannot take a request now
        origin = call.leg(pending.origin)
        if origin is not None:
            call._respond_in(origin, pending.request, pending.transaction, 491)
        if call.media_proxy:
            replay(call, call.exchange)
        return
    call.relayed[tid] = pending


def answered(call: Call, origin: Leg, other: Leg, pending: Pending, response: Response) -> None:
    """The final response of ``other`` to a re-offer of ``origin`` (ours when restoring)."""
    if pending.restore:
        _restored(call, origin, other, pending, response)
        return
    if response.status >= 300:
        # nothing changed for either party (RFC 3261 §14.1); the engine goes back to that too
        status, reason = response.status, response.reason
        call._respond_in(origin, pending.request, pending.transaction, status, reason=reason)
        if call.media_proxy:
            replay(call, call.exchange)
        return
    codecs = pending.codecs
    answer = keep_disabled(response.body, pending.sent) if response.content_type == SDP else b""
    try:
        if not answer:
            raise CodecMismatch("the 2xx carries no answer to the re-offer")
        if codecs is not None:
            codecs.check_answer(answer)
    except CodecMismatch as exc:
        _refuse_answer(call, origin, other, pending, str(exc))
        return
    if not call.media_proxy:
        _accept(call, pending, response, answer=answer, body=answer)
        return

    def applied(result: MediaResult) -> None:
        if isinstance(result, MediaControlError):
            _refuse_answer(call, origin, other, pending, f"the engine refused it: {result}")
            return
        if call.active:
            toward = codecs.toward_caller(result) if codecs is not None else result
            _accept(call, pending, response, answer=answer, body=toward)

    tags = (call._media_tag(origin), call._media_tag(other))
    call.host.media(call, "answer", (call.call_id, *tags, answer), applied)


def _accept(call: Call, pending: Pending, response: Response, *, answer: bytes, body: bytes) -> None:
    """The answer fits: ``body`` to the re-offering party, ``answer`` is in force."""
    origin = call.leg(pending.origin)
    other = call._other(origin) if origin is not None else None
    if origin is None or other is None:
        return
    body = trim_sections(body, section_count(pending.request.body))
    call._respond_in(
        origin, pending.request, pending.transaction, response.status, body=body, reason=response.reason
    )
    other.sdp_sent = pending.sent
    codec = pending.codecs.options if pending.codecs is not None else None
    call.exchange = Exchange(origin.name, pending.offer, dict(codec or {}), answer)
    step = pending.codecs
    plan = step.answer if step is not None else None
    if plan is not None and plan.to_caller and plan.callee_codecs:
        # the CDR names the codecs in force when the call ends: the re-offer's plan runs from
        # the re-offering party ("caller" in the plan) toward the other
        toward_origin = plan.to_caller[0].name
        toward_other = str(plan.callee_codecs[0]["name"])
        if origin.name == "a":
            call.record.codec_in, call.record.codec_out = toward_origin, toward_other
        else:
            call.record.codec_in, call.record.codec_out = toward_other, toward_origin


def _refuse_answer(call: Call, origin: Leg, other: Leg, pending: Pending, reason: str) -> None:
    """The answer to ``origin``'s re-offer cannot be used: 488 to ``origin``, the engine and
    ``other`` back on the exchange in force (its 2xx was acknowledged already)."""
    log.info("call %s: the answer to %s's re-offer does not fit: %s", call.call_id, origin.name, reason)
    call._respond_in(origin, pending.request, pending.transaction, 488, extra=_warning(call, origin))
    _restore(call, origin, other, pending, 1)


def _restore(call: Call, origin: Leg, other: Leg, last: Pending, tries: int) -> None:
    """Put the engine back on the exchange in force, then offer ``other`` the session it had
    (``last``: the offer it saw last from us)."""
    exchange = call.exchange
    if exchange is None:  # cannot happen: an answered call has its exchange
        call.hangup(CODEC_MISMATCH)
        return
    # as many m= lines as the other party last saw: the sections it was offered beyond those
    # in force are kept at port 0 on both sides (RFC 3264 §8: never fewer m= lines)
    exchange = Exchange(
        exchange.offerer,
        pad_sections(exchange.offer, last.sent),
        exchange.codec,
        pad_sections(exchange.answer, last.sent),
    )

    def send(fresh: bytes | None) -> None:
        body = restoring_offer(other.sdp_sent, last.sent, fresh)
        pending = Pending(
            origin.name, last.request, last.transaction, offer_media=True, sent=body, restore=tries
        )
        tid = call._send_in_dialog(other, last.request.method, body, SDP)
        if tid is None:
            call.hangup(CODEC_MISMATCH)
            return
        call.relayed[tid] = pending

    if not call.media_proxy:
        call.exchange = exchange
        send(None)
        return
    replay(call, exchange, lambda toward: send(toward.get(other.name)))


def _restored(call: Call, origin: Leg, other: Leg, pending: Pending, response: Response) -> None:
    """``other`` answered our restoring offer."""
    if response.status >= 300:
        if response.status == 491 and pending.restore < RESTORE_TRIES:
            log.info("call %s: restoring offer met glare, again in %.1f s", call.call_id, RESTORE_RETRY_S)

            def again() -> None:
                if call.active:
                    _restore(call, origin, other, pending, pending.restore + 1)

            call.host.set_timer(call, "restore", RESTORE_RETRY_S, again)
            return
        log.info("call %s: the restoring offer was refused (%s): hanging up", call.call_id, response.status)
        call.hangup(CODEC_MISMATCH)
        return
    other.sdp_sent = pending.sent
    exchange = call.exchange
    new = keep_disabled(response.body, pending.sent) if response.content_type == SDP else b""
    if exchange is None or not new or media_key(new) == media_key(exchange.sent_by(other.name)):
        return  # back on the session in force, which the engine already runs
    # the other party answered with media of its own (another port, codec, direction): the
    # engine takes it if the call's policy does; with media proxy off the first party would
    # have to be told, and the call cannot be kept on known media
    if exchange.offerer == other.name:
        candidate = Exchange(other.name, new, {}, exchange.answer)
    else:
        candidate = Exchange(exchange.offerer, exchange.offer, exchange.codec, new)
    try:
        if not call.media_proxy:
            raise CodecMismatch("media proxy off: the other party cannot be told")
        step = _plan(call, candidate.offerer, candidate.offer)
        step.check_answer(candidate.answer)
    except CodecMismatch as exc:
        log.info("call %s: the answer to the restoring offer does not fit: %s", call.call_id, exc)
        call.hangup(CODEC_MISMATCH)
        return
    candidate.codec = dict(step.options or {})
    replay(call, candidate)


def failed(call: Call, pending: Pending, status: int) -> None:
    """Our copy of a re-offer (or our restoring offer) got no response, or could not be sent."""
    if pending.restore:
        call.hangup(f"SIP {status}")
        return
    if call.media_proxy and status not in (408, 481):
        replay(call, call.exchange)


# -- the engine ---------------------------------------------------------------------------------


def replay(
    call: Call, exchange: Exchange | None, then: Callable[[dict[str, bytes]], None] | None = None
) -> None:
    """Give the engine ``exchange`` again: the offer from its offerer, then the answer, with
    each leg's DTMF mode as at call setup. ``then`` gets the SDP the engine wrote toward each
    party (by leg name); an engine refusal ends the call (its media is no longer known)."""
    offerer = call.leg(exchange.offerer) if exchange is not None else None
    answerer = call._other(offerer) if offerer is not None else None
    if exchange is None or offerer is None or answerer is None or not call.active:
        return
    toward: dict[str, bytes] = {}

    def refused(result: MediaResult) -> bool:
        if isinstance(result, MediaControlError):
            log.warning("call %s: the engine refused the session in force: %s", call.call_id, result)
            call.hangup(MEDIA_FAILURE)
            return True
        return not call.active

    def applied(result: MediaResult) -> None:
        if refused(result):
            return
        call.exchange = exchange
        toward[offerer.name] = result
        if then is not None:
            then(toward)

    def offered(result: MediaResult) -> None:
        if refused(result):
            return
        toward[answerer.name] = result
        tags = (call._media_tag(offerer), call._media_tag(answerer))
        options = OfferOptions(extra={"DTMF-mode": answerer.dtmf})
        call.host.media(call, "answer", (call.call_id, *tags, exchange.answer, options), applied)

    options = OfferOptions(codec=exchange.codec, extra={"DTMF-mode": offerer.dtmf})
    call.host.media(call, "offer", (call.call_id, call._media_tag(offerer), exchange.offer, options), offered)
