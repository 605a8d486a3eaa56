"""The running node's calls as the API shows them (the reference's "Current Call" monitor)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from signaling.api.context import LiveCall
from signaling.routing import Router

if TYPE_CHECKING:
    from signaling.b2bua.node import Node

#: The termination reason of a call an operator ended through the API.
OPERATOR_HANGUP = "Operator hangup"


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
                )
            )
        return out

    def hangup(self, call_id: str) -> bool:
        return self.node.hangup(call_id, OPERATOR_HANGUP)
