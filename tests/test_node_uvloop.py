"""The node on uvloop, the loop `softswitch run` uses when it is installed (a dependency).

uvloop's handles differ from asyncio's: a timer armed for a time already past comes back as a
plain ``Handle`` (no ``when()``), which once made every call fail with 500 after its first
message. A real call through the node on uvloop (SIPp as customer and carrier, media through
the in-process engine, the 2xx retransmitted until SIPp's ACK, timers armed and cancelled on
every step) must complete as on the stdlib loop, with no handler error.
"""

from __future__ import annotations

import asyncio

import uvloop

from tests.b2bua_harness import node_with
from tests.sipp_calls import call, carrier, customer, ended_records


def test_basic_call_on_uvloop() -> None:
    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        async with node_with() as h:
            await call(h, customer(h), carrier(h, rtp_echo=True))
            [record] = await ended_records(h, 1)
            assert record.answer is not None and record.termination == "Normal"
            assert record.media_packets["caller"] >= 60, record.media_packets
            assert h.node.stats.handler_errors == 0
            assert h.node.calls == {} and h.engine is not None and h.engine.session_ids() == []
            # deadlines already past (what a busy loop meets all the time): uvloop arms a plain
            # Handle; an earlier deadline after it must still re-arm, and both must fire
            loop = asyncio.get_running_loop()
            fired: list[int] = []
            h.node.deadlines.set("late", loop.time() - 1.0, lambda: fired.append(1))
            h.node._reschedule()
            h.node.deadlines.set("later", loop.time() - 2.0, lambda: fired.append(2))
            h.node._reschedule()
            await asyncio.sleep(0.05)
            assert fired == [2, 1]

    uvloop.run(asyncio.wait_for(main(), 60))
