"""The node's one loop timer and the sources it serves (signaling/b2bua/schedule.py).

After every input the node keeps one loop handle at the earliest deadline of its timer sources:
the transaction layer, its own deadlines, the ended calls, the registrar and the keep-alives.
It asks them only when one of them armed something earlier than the handle since it last
looked (``EarliestArmed``, shared by all of them): each source must note what it arms, or a
deadline earlier than the handle would wait for the handle.
"""

from __future__ import annotations

import asyncio
import math

import uvloop

from signaling.b2bua.deadlines import Deadlines
from signaling.b2bua.ended import LINGER_S, EndedCalls
from signaling.sip.keepalive import KeepAliveConfig, NatKeepAlive
from signaling.sip.message import Headers, Request
from signaling.sip.registrar import Registrar
from signaling.sip.timer_queues import EarliestArmed, TimerQueues
from tests.b2bua_harness import node_with


def test_every_timer_source_notes_the_earliest_deadline_it_arms() -> None:
    queues: TimerQueues[int] = TimerQueues(mark := EarliestArmed())
    queues.push(40.0, 32.0, 1, "B")
    queues.push(8.5, 0.5, 2, "A")
    queues.push(9.0, 1.0, 3, "A")
    assert mark.at == 8.5

    deadlines = Deadlines(mark := EarliestArmed())
    deadlines.set("attempt", 12.0, lambda: None)
    deadlines.set("attempt", 11.0, lambda: None)  # re-armed earlier
    assert mark.at == 11.0

    ended = EndedCalls(mark := EarliestArmed())
    ended.add(100.0, "call-1", None, None)
    assert mark.at == 100.0 + LINGER_S

    keepalive = NatKeepAlive(KeepAliveConfig(period=20.0), mark := EarliestArmed())
    keepalive.add(("192.0.2.7", 5060), 50.0)
    assert mark.at == 70.0
    # a new pacing can bring the next batch earlier without any new target
    mark.at = math.inf
    keepalive.configure(KeepAliveConfig(period=20.0, send_interval_ms=100), 60.0)
    assert mark.at <= 70.0

    registrar = Registrar(armed=(mark := EarliestArmed()))
    request = Request(
        "REGISTER",
        "sip:softswitch.example",
        Headers(
            [
                ("Via", "SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-reg-1"),
                ("From", "<sip:1001@softswitch.example>;tag=ab12"),
                ("To", "<sip:1001@softswitch.example>"),
                ("Call-ID", "reg-1@phone"),
                ("CSeq", "1 REGISTER"),
                ("Contact", "<sip:1001@192.0.2.20:5060>"),
                ("Expires", "300"),
            ]
        ),
    )
    response = registrar.register(request, ("192.0.2.20", 5060), 1000.0)
    assert response.status == 200
    assert mark.at == 1300.0 == registrar.get_timer()


def test_a_deadline_earlier_than_the_handle_moves_it_and_a_later_one_asks_no_source() -> None:
    async def main() -> None:
        async with node_with() as h:
            node = h.node
            loop = asyncio.get_running_loop()
            fired: list[str] = []
            node.deadlines.set("far", loop.time() + 600.0, lambda: fired.append("far"))
            node._reschedule()
            far_handle = node._timer
            assert far_handle is not None and node._timer_at >= loop.time() + 599.0

            # later than the handle: kept, and no source is asked
            asked: list[str] = []
            poll = node.layer.poll_timeout

            def counted() -> float | None:
                asked.append("layer")
                return poll()

            node.layer.poll_timeout = counted  # type: ignore[method-assign]
            node.deadlines.set("farther", loop.time() + 700.0, lambda: fired.append("farther"))
            node._reschedule()
            assert node._timer is far_handle and asked == []

            # earlier than the handle: the sources are asked, the handle moves and fires
            node.deadlines.set("soon", loop.time() + 0.05, lambda: fired.append("soon"))
            node._reschedule()
            assert asked == ["layer"] and node._timer is not far_handle
            assert node._timer_at < loop.time() + 1.0
            for _ in range(100):  # bounded: 2 s at most
                if fired:
                    break
                await asyncio.sleep(0.02)
            assert fired == ["soon"]

    uvloop.run(asyncio.wait_for(main(), 60))
