"""A real :class:`Node` over a :class:`StoreRouter`, run by hand on a fake clock: no loop, no
socket. What the node sends is recorded (:attr:`FakeClockNode.sent`), what arrives is handed to
it as its transport would, and :meth:`FakeClockNode.advance` runs its timers in order as the
loop's one timer handle would. The in-process media engine answers at once, as it does on the
loop. The store-backed reload is the router's ``refresh()`` (what the driver runs every 2 s)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.callproc import StoreRouter
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.sip.message import Request, Response
from signaling.sip.parser import parse_message
from signaling.store import Store
from tests.b2bua_harness import BLOCK, port_block
from tests.callproc.world import CUSTOMER_IP, NODE_T0, T0

CUSTOMER = (CUSTOMER_IP, 5060)
CARRIER = ("127.0.0.1", 5080)  # basic_world's first routing gateway
SDP = b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n"
SDP_B = b"v=0\r\no=b 1 1 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n"


@dataclass
class Sent:
    at: float
    addr: tuple[str, int]
    message: Request | Response


@dataclass
class FakeClockNode:
    node: Node
    router: StoreRouter
    clock: float = NODE_T0
    sent: list[Sent] = field(default_factory=list)
    #: what was not SIP: NAT keep-alives, (when, where, payload)
    keepalives: list[tuple[float, tuple[str, int], bytes]] = field(default_factory=list)

    def _send(self, data: bytes, addr: tuple[str, int], transport: str = "UDP") -> None:
        if not data.startswith((b"SIP/2.0 ", b"INVITE ", b"ACK ", b"BYE ", b"CANCEL ", b"OPTIONS ")):
            self.keepalives.append((self.clock, addr, data))
            return
        message = parse_message(data)
        assert isinstance(message, Request | Response), data
        self.sent.append(Sent(self.clock, addr, message))

    def receive(self, data: bytes, source: tuple[str, int] = CUSTOMER) -> None:
        self.node._on_data(data, source, "UDP")

    def _next_due(self) -> float | None:
        node = self.node
        times = (
            node.deadlines.next_deadline(),
            node.layer.poll_timeout(),
            node.registrar.get_timer(),
            node.keepalive.get_timer(),
        )
        return min((t for t in times if t is not None), default=None)

    def advance(self, seconds: float) -> None:
        """Move the clock by ``seconds``, running the node's timers as they fall due."""
        target = self.clock + seconds
        for _ in range(100_000):  # bounded: a timer that never stops re-arming fails the test
            due = self._next_due()
            if due is None or due > target:
                break
            self.clock = max(self.clock, due)
            self.node._on_timer()
        else:
            raise AssertionError("the node's timers did not settle")
        self.clock = target

    def to(self, addr: tuple[str, int], kind: str | int) -> list[Sent]:
        """What went to ``addr``: requests of method ``kind``, or responses of status ``kind``."""
        out = []
        for s in self.sent:
            m = s.message
            if s.addr != addr:
                continue
            what = m.method if isinstance(m, Request) else m.status
            if what == kind:
                out.append(s)
        return out


@contextlib.contextmanager
def fake_clock_node(store: Store, parameters: dict[str, Any] | None = None) -> Iterator[FakeClockNode]:
    """A node whose file's ``[parameters]`` are ``parameters``, routing through ``store``."""
    with port_block() as base:
        cfg = load({"sip": {"listen": f"127.0.0.1:{base}"}, "parameters": dict(parameters or {})})
        engine = MediaEngine(interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1)
        media = InProcessMedia(engine)
        try:
            router = StoreRouter(
                store, parameters=cfg.parameters, clock_offset=lambda: T0.timestamp() - NODE_T0
            )
            node = Node(cfg, media, router)
            harness = FakeClockNode(node, router)
            node.now = lambda: harness.clock  # type: ignore[method-assign]
            node.local = ("127.0.0.1", base)
            node.transport.send = harness._send  # type: ignore[method-assign]
            yield harness
        finally:
            media.close()
            engine.close()


def invite(call_id: str, *, timer: bool = False) -> bytes:
    """The customer's INVITE (from basic_world's mapping gateway address) to 12125550100."""
    extra = "Supported: timer\r\n" if timer else ""
    head = (
        f"INVITE sip:12125550100@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {CUSTOMER_IP}:5060;branch=z9hG4bK-{call_id}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:5550001@{CUSTOMER_IP}>;tag=a-{call_id}\r\n"
        f"To: <sip:12125550100@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:5550001@{CUSTOMER_IP}:5060>\r\n{extra}Content-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n\r\n"
    )
    return head.encode() + SDP


def answer(request: Request, *, session_expires: str | None = None) -> bytes:
    """The carrier's 200 OK (with SDP) to the INVITE ``request``."""
    h = request.headers
    extra = f"Session-Expires: {session_expires}\r\nRequire: timer\r\n" if session_expires else ""
    head = (
        f"SIP/2.0 200 OK\r\nVia: {h.get('Via')}\r\nFrom: {h.get('From')}\r\n"
        f"To: {h.get('To')};tag=b-{request.call_id}\r\nCall-ID: {request.call_id}\r\n"
        f"CSeq: {h.get('CSeq')}\r\nContact: <sip:12125550100@127.0.0.1:5080>\r\n{extra}"
        f"Content-Type: application/sdp\r\nContent-Length: {len(SDP_B)}\r\n\r\n"
    )
    return head.encode() + SDP_B
