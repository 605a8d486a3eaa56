"""What the API and the web manager read from a running node, and the one thing they do to it
(hang up a call): :class:`NodeLive`, an adapter over the B2BUA
:class:`~signaling.b2bua.node.Node` implementing the API's
:class:`~signaling.api.context.LiveCalls` and the web manager's
:class:`~signaling.web.app.NodeView` (concurrency, calls started, online phones, the debug
trace).

The node's state belongs to its event loop. The API and web manager run in that same loop when
the node serves them (``softswitch run``), and the reads here happen in ``async`` handlers on the
loop, so no lock is needed; :meth:`NodeLive.hangup` still hands the hang-up to the loop
thread-safely in case a server runs the application in another thread.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from signaling.api.context import LiveCall
from signaling.b2bua.node import Node
from signaling.trace import TraceRecord

#: Termination reason of a call an operator hung up from the web manager or the API.
OPERATOR_HANGUP = "Operator hangup"


def _wall(node_time: float | None, offset: float) -> datetime | None:
    return None if node_time is None else datetime.fromtimestamp(node_time + offset, UTC)


class NoNode:
    """No node in this process (a management-only process): nothing live."""

    def concurrency(self) -> int:
        return 0

    def calls_started(self) -> int:
        return 0

    def online_phones(self) -> int:
        return 0

    def trace(self, call_id: str) -> list[TraceRecord]:
        return []

    def trace_pcap(self, call_id: str) -> bytes:
        return b""


class NodeLive:
    """The live view of a running node (see the module doc)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _now(self) -> float:
        loop = self.node._loop
        return loop.time() if loop is not None else time.monotonic()

    def calls(self) -> list[LiveCall]:
        now = self._now()
        offset = time.time() - now  # node (loop) time -> Unix time
        sessions = getattr(self.node.router, "sessions", {})  # StoreRouter: the billing account
        out: list[LiveCall] = []
        for state in list(self.node.calls.values()):
            call = state.call
            record = call.record
            attempt = call.attempt
            session = sessions.get(call.call_id)
            answered = call.answered and record.answer is not None
            out.append(
                LiveCall(
                    call_id=call.call_id,
                    ingress=record.ingress,
                    account_id=getattr(session, "account_id", None),
                    caller=record.caller,
                    callee=record.callee,
                    source=f"{record.source[0]}:{record.source[1]}",
                    gateway=record.gateway or (attempt.route.gateway if attempt is not None else ""),
                    attempts=record.attempts,
                    state="answered" if answered else ("ringing" if record.ring is not None else "routing"),
                    start_time=datetime.fromtimestamp(record.start + offset, UTC),
                    answer_time=(
                        datetime.fromtimestamp(record.answer + offset, UTC)
                        if record.answer is not None
                        else None
                    ),
                    duration=max(0.0, now - record.answer) if record.answer is not None else 0.0,
                )
            )
        out.sort(key=lambda c: c.start_time)
        return out

    def hangup(self, call_id: str) -> bool:
        if call_id not in self.node.calls:
            return False
        loop = self.node._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            return self.node.hangup(call_id, OPERATOR_HANGUP)
        loop.call_soon_threadsafe(self.node.hangup, call_id, OPERATOR_HANGUP)
        return True

    def concurrency(self) -> int:
        return len(self.node.calls)

    def calls_started(self) -> int:
        return self.node.stats.calls_started

    def online_phones(self) -> int:
        return sum(1 for _ in self.node.registrar.online(self._now()))

    def trace(self, call_id: str) -> list[TraceRecord]:
        return self.node.tracer.records(call_id)

    def trace_pcap(self, call_id: str) -> bytes:
        return self.node.tracer.pcap(call_id)
