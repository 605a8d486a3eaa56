"""The running node's calls as the API shows them (the reference's "Current Call" monitor)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from signaling.api.context import LiveCall
from signaling.media.sdp_codecs import audio_codecs
from signaling.routing import Router

if TYPE_CHECKING:
    from signaling.b2bua.node import Node

#: The termination reason of a call an operator ended through the API.
OPERATOR_HANGUP = "Operator hangup"


def leg_codecs(call: Any) -> tuple[str, str]:  # noqa: ANN401 (a b2bua Call)
    """(caller's codec, callee's codec) of an answered call: the codec plan's answer (the CDR's
    ``codec_in``/``codec_out``, which differ when transcoding), else the first codec of the SDP
    we answered the caller with — without a codec plan the carrier's answer is relayed, so both
    legs talk it. ("", "") before the answer."""
    record = call.record
    if record.answer is None:
        return "", ""
    if record.codec_in or record.codec_out:
        return record.codec_in, record.codec_out
    found = audio_codecs(call.a.sdp_sent) if call.a.sdp_sent else None
    name = found[0].name if found else ""
    return name, name


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(seconds, 6), UTC)


class NodeCalls:
    """:class:`~signaling.api.context.LiveCalls` over a :class:`Node` (called on its loop)."""

    def __init__(self, node: Node, router: Router) -> None:
        self.node = node
        self.router = router

    def calls(self) -> list[LiveCall]:
        offset = time.time() - self.node.now()  # the node's loop clock → Unix time
        sessions = getattr(self.router, "sessions", {})
        out: list[LiveCall] = []
        for call_id, state in list(self.node.calls.items()):
            call = state.call
            record = call.record
            now = self.node.now()
            session = sessions.get(call_id)
            attempt = call.attempt
            if call.answered:
                phase = "answered"
            elif record.ring is not None:
                phase = "ringing"
            else:
                phase = "routing"
            caller_codec, callee_codec = leg_codecs(call)
            out.append(
                LiveCall(
                    call_id=call_id,
                    ingress=record.ingress,
                    account_id=getattr(session, "account_id", None),
                    caller=record.caller,
                    callee=record.callee,
                    source=f"{record.source[0]}:{record.source[1]}",
                    gateway=attempt.route.gateway if attempt is not None else (record.gateway or ""),
                    attempts=record.attempts,
                    state=phase,
                    start_time=utc(record.start + offset),
                    answer_time=None if record.answer is None else utc(record.answer + offset),
                    duration=0.0 if record.answer is None else max(0.0, now - record.answer),
                    caller_dtmf=call.a.dtmf,
                    callee_dtmf=call.b.dtmf if call.b is not None else "",
                    caller_codec=caller_codec,
                    callee_codec=callee_codec,
                )
            )
        return out

    def hangup(self, call_id: str) -> bool:
        return self.node.hangup(call_id, OPERATOR_HANGUP)
