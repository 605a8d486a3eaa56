"""What the node keeps of a call once it has ended, and what late messages of that call get.

An ended call with nothing left to do (docs/b2bua.md, "Ended calls") is forgotten at once: its
late messages are answered as its terminated dialogs would have answered them — a request in
one of its dialogs gets 481, a 2xx the carrier repeats (our ACK was lost) gets the same ACK
again, for LINGER_S — and what it leaves behind are plain tuples, which the cyclic collector
stops tracking, so the thousands of calls ended within the last 32 s at a few hundred calls per
second do not lengthen its full passes (the loop pauses that failed calls at 300 CPS, see
bench/README.md).

The customer and the carrier are two UDP endpoints on loopback speaking SIP as SIPp's built-in
``uac`` and ``uas`` do (INVITE with SDP → 180 → 200 → ACK → BYE → 200), so the test can send
what SIPp's scenarios cannot: a 2xx repeated after the call, a request in a dialog already gone.
"""

from __future__ import annotations

import asyncio
import gc
import re
from typing import Any, cast

import uvloop

from signaling.b2bua.ended import LINGER_S
from signaling.b2bua.node import Node
from signaling.b2bua.schedule import TIMER_SLACK
from signaling.sip.limits import OverloadConfig, OverloadGuard
from signaling.sip.message import cached_cseq, cached_name_addr, cached_via
from tests.b2bua_harness import Harness, node_with

SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
#: one datagram's wait, seconds: the node answers in the turn that received the message (a
#: shared machine under load may take its time to run the loop)
WAIT = 5.0


class Peer(asyncio.DatagramProtocol):
    """A UDP endpoint on loopback that sends SIP text and waits for what the node sends it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def bind(cls, port: int) -> Peer:
        peer = cls(port)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", port))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.inbox.put_nowait(data.decode())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def send(self, text: str, node_port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode(), ("127.0.0.1", node_port))

    async def receive(self, start: str) -> str:
        """The next message that starts with ``start`` (others, like a 100 Trying, skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"port {self.port}: no {start!r} from the node")
            try:
                text = await asyncio.wait_for(self.inbox.get(), left)
            except TimeoutError:
                raise AssertionError(f"port {self.port}: no {start!r} from the node") from None
            if text.startswith(start):
                return text

    async def nothing(self, within: float = 0.3) -> None:
        """Nothing arrives within ``within`` seconds."""
        try:
            text = await asyncio.wait_for(self.inbox.get(), within)
        except TimeoutError:
            return
        raise AssertionError(f"port {self.port}: unexpected {text[:60]!r}")


def header(message: str, name: str) -> str:
    found = re.search(rf"^{name}:[ \t]*([^\r\n]*)", message, re.MULTILINE | re.IGNORECASE)
    assert found is not None, f"no {name} in {message!r}"
    return found.group(1)


def answer(request: str, status: str, to_tag: str, body: str = "", contact_port: int | None = None) -> str:
    """A UAS's response: Via, From, To (with our tag), Call-ID and CSeq copied."""
    lines = [f"SIP/2.0 {status}"]
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in re.findall(rf"^{name}:[ \t]*([^\r\n]*)", request, re.MULTILINE):
            tagged = value + f";tag={to_tag}" if name == "To" and ";tag=" not in value else value
            lines.append(f"{name}: {tagged}")
    if contact_port is not None:
        lines.append(f"Contact: <sip:127.0.0.1:{contact_port}>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def in_dialog(method: str, n: int, branch: str, *, to_tag: str, cseq: int, port: int) -> str:
    return (
        f"{method} sip:service@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{branch}\r\n"
        f"From: sipp <sip:sipp@127.0.0.1:{port}>;tag=caller{n}\r\n"
        f"To: <sip:12125550100@127.0.0.1>;tag={to_tag}\r\n"
        f"Call-ID: call-{n}@127.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    )


async def call(h: Harness, caller: Peer, carrier: Peer, n: int) -> tuple[str, str, str]:
    """One whole call, the caller hanging up. Returns the caller's To tag (the node's), the
    carrier's 200 OK to the INVITE and the ACK the node sent the carrier for it."""
    body = SDP.format(port=h.media_base + 10)
    await caller.send(
        f"INVITE sip:12125550100@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bK-{n}-invite\r\n"
        f"From: sipp <sip:sipp@127.0.0.1:{caller.port}>;tag=caller{n}\r\n"
        f"To: <sip:12125550100@127.0.0.1>\r\n"
        f"Call-ID: call-{n}@127.0.0.1\r\n"
        f"CSeq: 1 INVITE\r\n"
        f"Contact: <sip:sipp@127.0.0.1:{caller.port}>\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}",
        h.sip_port,
    )
    invite = await carrier.receive("INVITE ")
    await carrier.send(answer(invite, "180 Ringing", f"callee{n}", contact_port=carrier.port), h.sip_port)
    ok = answer(invite, "200 OK", f"callee{n}", SDP.format(port=h.media_base + 12), carrier.port)
    await carrier.send(ok, h.sip_port)
    ack = await carrier.receive("ACK ")
    answered = await caller.receive("SIP/2.0 200")
    to_tag = header(answered, "To").rpartition(";tag=")[2]
    await caller.send(in_dialog("ACK", n, f"{n}-ack", to_tag=to_tag, cseq=1, port=caller.port), h.sip_port)
    await caller.send(in_dialog("BYE", n, f"{n}-bye", to_tag=to_tag, cseq=2, port=caller.port), h.sip_port)
    bye = await carrier.receive("BYE ")
    await caller.receive("SIP/2.0 200")
    await carrier.send(answer(bye, "200 OK", f"callee{n}"), h.sip_port)
    return to_tag, ok, ack


async def ended(node: Node, count: int) -> None:
    """Wait (bounded) until ``count`` calls have ended."""
    for _ in range(100):
        if len(node.ended_records) >= count and not node.calls:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(node.ended_records)} calls ended, {len(node.calls)} up")


def test_an_ended_call_is_forgotten_and_late_messages_get_what_its_dialogs_gave() -> None:
    async def main() -> None:
        async with node_with() as h:
            caller, carrier = await Peer.bind(h.customer_port), await Peer.bind(h.carrier_ports[0])
            try:
                # a 2xx repeated during the call (before our ACK reached the carrier) gets the ACK
                to_tag, ok, first_ack = await call(h, caller, carrier, 1)
                await ended(h.node, 1)
                assert h.node.calls == {} and h.node._lingering == {}
                assert h.node._dialogs == {} and h.node._by_transaction == {}
                # the carrier repeats its 2xx (our ACK lost): the same ACK again, byte for byte
                await carrier.send(ok, h.sip_port)
                assert await carrier.receive("ACK ") == first_ack
                # a request in the caller's dialog, gone: 481, as the terminated dialog answered
                late_bye = in_dialog("BYE", 1, "1-late", to_tag=to_tag, cseq=3, port=caller.port)
                await caller.send(late_bye, h.sip_port)
                late = await caller.receive("SIP/2.0 ")
                assert late.startswith("SIP/2.0 481") and header(late, "CSeq") == "3 BYE"
                # past LINGER_S the repeated 2xx finds nothing: no ACK
                h.node._expire_ended(asyncio.get_running_loop().time() + LINGER_S + 1)
                await carrier.send(ok, h.sip_port)
                await carrier.nothing()
                assert h.node.stats.handler_errors == 0
            finally:
                caller.close()
                carrier.close()

    uvloop.run(asyncio.wait_for(main(), 60))


def test_a_2xx_repeated_during_the_call_gets_the_ack_again() -> None:
    async def main() -> None:
        async with node_with() as h:
            caller, carrier = await Peer.bind(h.customer_port), await Peer.bind(h.carrier_ports[0])
            try:
                body = SDP.format(port=h.media_base + 10)
                await caller.send(
                    f"INVITE sip:12125550100@127.0.0.1 SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bK-7-invite\r\n"
                    f"From: <sip:sipp@127.0.0.1:{caller.port}>;tag=caller7\r\n"
                    f"To: <sip:12125550100@127.0.0.1>\r\n"
                    f"Call-ID: call-7@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
                    f"Contact: <sip:sipp@127.0.0.1:{caller.port}>\r\nMax-Forwards: 70\r\n"
                    f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}",
                    h.sip_port,
                )
                invite = await carrier.receive("INVITE ")
                ok = answer(invite, "200 OK", "callee7", SDP.format(port=h.media_base + 12), carrier.port)
                await carrier.send(ok, h.sip_port)
                ack = await carrier.receive("ACK ")
                # the INVITE client transaction is in Accepted: the repeated 2xx reaches the
                # dialog, which acknowledges it again (RFC 3261 §13.2.2.4)
                await carrier.send(ok, h.sip_port)
                assert await carrier.receive("ACK ") == ack
                assert list(h.node.calls) == ["call-7@127.0.0.1"]
            finally:
                caller.close()
                carrier.close()

    uvloop.run(asyncio.wait_for(main(), 60))


def test_ended_calls_leave_nothing_for_the_cyclic_collector() -> None:
    calls = 30

    async def main() -> None:
        async with node_with() as h:
            # the full collections counting objects keep the loop thread busy for a while (a
            # second and more in a test process that has run many tests): the overload guard
            # would take that for overload and refuse the next INVITE with 503
            h.node.overload = OverloadGuard(OverloadConfig(cpu_high=2.0, cpu_low=2.0))
            caller, carrier = await Peer.bind(h.customer_port), await Peer.bind(h.carrier_ports[0])
            try:
                await call(h, caller, carrier, 100)  # first allocations, caches
                await ended(h.node, 1)
                tracked = _tracked_objects()
                for n in range(calls):
                    await call(h, caller, carrier, 200 + n)
                await ended(h.node, 1 + calls)
                # what is kept for LINGER_S is untracked as it is kept, not at the collector's
                # later passes (one level of nesting per pass: a steady state of tens of
                # thousands of held calls made each young collection walk them all)
                rests = [r for r in h.node.layer._by_id.values() if isinstance(r, tuple)]
                kept = [*h.node._ended._queue, *h.node._ended._acks.values()]
                assert len(rests) >= 3 * calls and len(kept) >= 2 * calls
                assert not [held for held in rests + kept if gc.is_tracked(held)]
                # each answered call's 2xx retransmission timer (T1) was cancelled by its ACK;
                # its entry leaves the node's deadline heap when the loop timer next fires,
                # past that T1 (the heap is only looked at then: Schedule._reschedule)
                await asyncio.sleep(h.node.layer.timers.t1 + 2 * TIMER_SLACK)
                # what the calls left within LINGER_S: rests of transactions and the ACKs,
                # plain tuples; each call's record (h.node.ended_records) is what remains tracked
                per_call = (_tracked_objects() - tracked) / calls
                assert per_call < 3, per_call  # before: ~80 (the whole call, its transactions)
                assert len(h.node.layer) >= 3 * calls  # the transactions are still there
            finally:
                caller.close()
                carrier.close()

    uvloop.run(asyncio.wait_for(main(), 60))


def _tracked_objects() -> int:
    """Objects the cyclic collector tracks, the parse caches (bounded, shared by all calls)
    emptied first. A pass untracks a tuple whose items are all untracked; a running node's
    young collections meet a rest's nested tuples in the order they were made, innermost
    first, but a full pass may meet them the other way round: one pass per level of nesting
    (a transaction's keys: up to five)."""
    for cache in (cached_name_addr, cached_via, cached_cseq):
        cache.cache_clear()
    for _ in range(6):
        gc.collect()
    return len(gc.get_objects())
