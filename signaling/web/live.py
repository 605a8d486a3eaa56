"""What the web manager reads from a running node, and the one thing it does to it (hang up a
call): a small protocol, :class:`LiveSource`, and its adapter over the B2BUA
:class:`~signaling.b2bua.node.Node`.

The node's state belongs to its event loop. The web application runs in that same loop when
the node serves it (``softswitch run``), and every read here happens in a request handler on the
loop, so no lock is needed; :meth:`NodeLive.hangup` still hands the hang-up to the loop
thread-safely in case a server runs the application in another thread.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from signaling.b2bua.node import Node
from signaling.trace import TraceRecord

#: Termination reason of a call an operator hung up from the web manager or the API.
OPERATOR_HANGUP = "Operator hangup"


@dataclass(frozen=True, slots=True)
class LiveCall:
    call_id: str
    caller: str
    callee: str
    #: The mapping gateway (customer) the call came in on.
    ingress: str
    #: The routing gateway (carrier) tried now or answered; "" before the first attempt.
    gateway: str
    #: Unix time of the INVITE.
    started_at: float
    answered: bool
    #: Seconds since the INVITE, and of conversation (0 before the answer).
    age: float
    talk: float
    source: str


@dataclass(frozen=True, slots=True)
class NodeCounters:
    calls_started: int
    calls_answered: int
    calls_failed: int
    calls_rejected: int


class LiveSource(Protocol):
    def calls(self) -> list[LiveCall]: ...

    def concurrency(self) -> int: ...

    def counters(self) -> NodeCounters: ...

    def online_phones(self) -> int: ...

    def online_mapping(self) -> set[str]:
        """Mapping gateways with a call up now."""
        ...

    def hangup(self, call_id: str) -> bool: ...

    def trace(self, call_id: str) -> list[TraceRecord]: ...

    def trace_pcap(self, call_id: str) -> bytes: ...


class NoNode:
    """No node in this process (the API served alone): nothing live."""

    def calls(self) -> list[LiveCall]:
        return []

    def concurrency(self) -> int:
        return 0

    def counters(self) -> NodeCounters:
        return NodeCounters(0, 0, 0, 0)

    def online_phones(self) -> int:
        return 0

    def online_mapping(self) -> set[str]:
        return set()

    def hangup(self, call_id: str) -> bool:
        return False

    def trace(self, call_id: str) -> list[TraceRecord]:
        return []

    def trace_pcap(self, call_id: str) -> bytes:
        return b""


class NodeLive:
    """:class:`LiveSource` over a running node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _now(self) -> float:
        loop = self.node._loop
        return loop.time() if loop is not None else time.monotonic()

    def calls(self) -> list[LiveCall]:
        now = self._now()
        wall = time.time()
        out: list[LiveCall] = []
        for state in list(self.node.calls.values()):
            call = state.call
            record = call.record
            gateway = record.gateway or (call.attempt.route.gateway if call.attempt is not None else "")
            out.append(
                LiveCall(
                    call_id=call.call_id,
                    caller=record.caller,
                    callee=record.callee,
                    ingress=record.ingress,
                    gateway=gateway,
                    started_at=wall - (now - record.start),
                    answered=call.answered,
                    age=max(0.0, now - record.start),
                    talk=max(0.0, now - record.answer) if record.answer is not None else 0.0,
                    source=f"{record.source[0]}:{record.source[1]}",
                )
            )
        out.sort(key=lambda c: c.started_at)
        return out

    def concurrency(self) -> int:
        return len(self.node.calls)

    def counters(self) -> NodeCounters:
        s = self.node.stats
        return NodeCounters(s.calls_started, s.calls_answered, s.calls_failed, s.calls_rejected)

    def online_phones(self) -> int:
        return sum(1 for _ in self.node.registrar.online(self._now()))

    def online_mapping(self) -> set[str]:
        return {state.call.record.ingress for state in list(self.node.calls.values())}

    def hangup(self, call_id: str) -> bool:
        if call_id not in self.node.calls:
            return False
        loop = self.node._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            return self.node.hangup(call_id, OPERATOR_HANGUP)
        loop.call_soon_threadsafe(self.node.hangup, call_id, OPERATOR_HANGUP)
        return True

    def trace(self, call_id: str) -> list[TraceRecord]:
        return self.node.tracer.records(call_id)

    def trace_pcap(self, call_id: str) -> bytes:
        return self.node.tracer.pcap(call_id)
