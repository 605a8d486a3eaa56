"""What the web manager reads from a running node besides its calls (which it reads, like the
API, through :class:`signaling.api.livecalls.NodeCalls`): :class:`NodeLive` implements
:class:`~signaling.web.app.NodeView` over the B2BUA :class:`~signaling.b2bua.node.Node` —
concurrency, calls started (for calls per second), online phones, the per-call debug trace.

Everything here is read on the node's event loop, where the API and web manager run inside
``softswitch run``: no lock is needed.
"""

from __future__ import annotations

from signaling.b2bua.node import Node
from signaling.trace import TraceRecord


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
    """:class:`~signaling.web.app.NodeView` of a running node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def concurrency(self) -> int:
        return len(self.node.calls)

    def calls_started(self) -> int:
        return self.node.stats.calls_started

    def online_phones(self) -> int:
        return sum(1 for _ in self.node.registrar.online(self.node.now()))

    def trace(self, call_id: str) -> list[TraceRecord]:
        return self.node.tracer.records(call_id)

    def trace_pcap(self, call_id: str) -> bytes:
        return self.node.tracer.pcap(call_id)
