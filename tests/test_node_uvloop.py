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

from tests.b2bua_harness import node_with, peers_listening, sipp

CALLEE = ["-s", "12125550100"]


def test_basic_call_on_uvloop() -> None:
    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        async with node_with() as h:
            carrier = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_ports[0], media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_basic.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=CALLEE,
            )
            uas = await carrier
            assert uac.returncode == 0, uac.output
            assert uas.returncode == 0, uas.output
            await asyncio.sleep(0.2)
            [record] = h.node.ended_records
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
