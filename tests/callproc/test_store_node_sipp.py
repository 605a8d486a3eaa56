"""The SIP node on the store: SIPp as the customer and the carrier, the StoreRouter deciding,
rating and writing the CDR, on loopback with the in-process media engine (the harness of
tests/b2bua_harness.py for ports and SIPp runs). The CDR is written as ``softswitch run`` writes
it, by a CdrWriter in group commits, or (``batched=False``) before ``call_ended`` returns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.callproc import StoreRouter
from signaling.callproc.cdrwriter import CdrWriter
from signaling.callproc.driver import RouterDriver
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.store import Account, Store, open_store
from tests.b2bua_harness import BLOCK, peers_listening, port_block, sipp
from tests.callproc.world import basic_world, d

CALLEE = ["-s", "12125550100"]
PER_SECOND = (("1", "0.6", 1, "0.6", 1),)  # 0.01 a second


@dataclass
class StoreNode:
    node: Node
    router: StoreRouter
    store: Store
    account_id: int
    sip_port: int
    carrier_port: int
    customer_port: int
    media_base: int
    done: asyncio.Queue[str]


@contextlib.asynccontextmanager
async def store_node(tmp_path: Path, balance: str, *, batched: bool = False) -> AsyncIterator[StoreNode]:
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        url = f"sqlite:///{tmp_path / 'node.db'}"
        store = stack.enter_context(open_store(url))
        ids = basic_world(
            store,
            balance=balance,
            customer_rates=PER_SECOND,
            gateways=({"name": "carrier", "prefixes": ("1",), "port": base + 1},),
            mapping={"addresses": ("127.0.0.1",)},
        )
        cfg = load({"sip": {"listen": f"127.0.0.1:{base}"}, "store": {"url": url, "node": "sipp-node"}})
        engine = MediaEngine(interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1)
        stack.callback(engine.close)
        media = InProcessMedia(engine)
        stack.callback(media.close)
        writer = CdrWriter(store) if batched else None
        router = StoreRouter(store, node="sipp-node", parameters=cfg.parameters, cdr_writer=writer)
        done: asyncio.Queue[str] = asyncio.Queue()
        router.on_call_done(lambda call_id, _cdr: done.put_nowait(call_id))
        node = Node(cfg, media, router)
        await node.start()
        driver = RouterDriver(router, refresh_interval=0.5)
        driver.start()
        try:
            yield StoreNode(node, router, store, ids.customer, base, base + 1, base + 10, base + 20, done)
        finally:
            await node.stop()
            await driver.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("batched", [True, False], ids=["cdr-writer", "cdr-in-call-ended"])
def test_a_call_through_the_node_is_rated_and_recorded(tmp_path: Path, batched: bool) -> None:
    async def main() -> None:
        async with store_node(tmp_path, balance="10", batched=batched) as h:
            carrier = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_port, media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_basic.xml",
                port=h.customer_port,
                target=f"127.0.0.1:{h.sip_port}",
                media_port=h.media_base + 10,
                extra=CALLEE,
            )
            assert uac.returncode == 0, uac.output
            assert (await carrier).returncode == 0
            await asyncio.wait_for(h.done.get(), 5)  # done: the CDR is durable
            (cdr,) = list(h.router.records)
            assert (cdr.mapping_gateway, cdr.routing_gateway, cdr.termination_reason) == (
                "cust",
                "carrier",
                "Normal",
            )
            assert 2000 <= cdr.hold_ms < 3000 and cdr.billed_seconds in (2, 3)
            assert cdr.fee == d("0.01") * cdr.billed_seconds
            assert h.store.admin().get(Account, h.account_id).balance == d("10") - cdr.fee
            assert h.store.reservations() == []
            assert '"caller":' in cdr.media_quality  # RTP counts from the engine

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_the_node_hangs_up_when_the_credit_runs_out(tmp_path: Path) -> None:
    async def main() -> None:
        async with store_node(tmp_path, balance="0.02") as h:  # two seconds of talk
            carrier = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_port, media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_wait_bye.xml",
                port=h.customer_port,
                target=f"127.0.0.1:{h.sip_port}",
                media_port=h.media_base + 10,
                extra=CALLEE,
                timeout=20,
            )
            assert uac.returncode == 0, uac.output  # it received the switch's BYE
            assert (await carrier).returncode == 0  # and so did the carrier
            await asyncio.wait_for(h.done.get(), 5)
            (cdr,) = list(h.router.records)
            assert cdr.termination_reason == "Insufficient balance" and cdr.ended_by == "system"
            assert 1500 <= cdr.hold_ms <= 2000
            assert cdr.fee == d("0.02")
            assert h.store.admin().get(Account, h.account_id).balance == 0

    asyncio.run(main())
