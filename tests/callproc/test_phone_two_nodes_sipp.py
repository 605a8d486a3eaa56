"""A phone registered with node B is reached through node A: two SIP nodes (each its own Node,
StoreRouter, router driver, store connection and media engine, as two `softswitch run`
processes have) on one store — SQLite and a real PostgreSQL server — with SIPp as the phone and
the customer, on loopback (docs/routing.md, "Phones on several nodes"; timers-trace-routing-
dialplan.md §2.6 and behaviour 64; architecture-billing-payments.md CAP-3.1 step 1).

The phone registers at node B; the customer calls its number through node A; node A admits,
bills and forwards the call to node B, which delivers it to the phone's registration; the phone
answers and echoes the audio. One CDR, one charge, RTP both ways. Node B dead: 480 "The called
not online". An INVITE claiming to be a node hop without the proof: 403, nothing delivered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.callproc import StoreRouter
from signaling.callproc.cluster import _signature
from signaling.callproc.driver import RouterDriver
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.store import Account, Phone, Store, open_store
from tests.b2bua_harness import port_block, sipp, wait_bound
from tests.callproc.world import basic_world, d
from tests.store.conftest import TEST_DIGEST

PER_SECOND = (("1", "0.6", 1, "0.6", 1), ("2", "0.06", 1, "0.06", 1))  # 0.01 and 0.001 a second
#: How long a node waits for the other to learn of a registration or a death, seconds (the
#: drivers sync every 0.5 s here).
SYNC_WAIT = 10.0


@dataclass
class Member:
    name: str
    node: Node
    router: StoreRouter
    driver: RouterDriver
    store: Store
    port: int
    running: bool = True

    async def stop(self, *, leave: bool = True) -> None:
        if self.running:
            self.running = False
            await self.node.stop()
            await self.driver.stop(leave=leave)


@dataclass
class TwoNodes:
    a: Member
    b: Member
    store: Store
    account_id: int
    customer_port: int
    phone_port: int
    media_base: int


@contextlib.asynccontextmanager
async def two_nodes(url: str, *, node_ttl: float = 15.0) -> AsyncIterator[TwoNodes]:
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        customer_port, phone_port = base + 10, base + 11
        store = stack.enter_context(open_store(url))
        ids = basic_world(
            store,
            customer_rates=PER_SECOND,
            gateways=({"name": "carrier", "prefixes": ("1",), "port": base + 2},),
            # the customer is known by address and port: the phone, on another port, is not
            mapping={"auth_mode": "ip_port", "addresses": (f"127.0.0.1:{customer_port}",)},
        )
        store.admin().create(Phone(ids.customer, number="2001", sip_user="alice", sip_password=TEST_DIGEST))
        members: list[Member] = []
        try:
            for i, name in enumerate(("node-a", "node-b")):
                port = base + i
                own_store = stack.enter_context(open_store(url))  # each node its own connection
                cfg = load({"sip": {"listen": f"127.0.0.1:{port}"}, "store": {"url": url, "node": name}})
                low = base + 50 + 25 * i
                engine = MediaEngine(interface="127.0.0.1", port_min=low, port_max=low + 24, workers=1)
                stack.callback(engine.close)
                media = InProcessMedia(engine)
                stack.callback(media.close)
                router = StoreRouter(own_store, node=name, parameters=cfg.parameters, node_ttl=node_ttl)
                node = Node(cfg, media, router)
                await node.start()
                driver = RouterDriver(router, refresh_interval=0.5)
                driver.start()
                members.append(Member(name, node, router, driver, own_store, port))
            yield TwoNodes(members[0], members[1], store, ids.customer, customer_port, phone_port, base + 20)
        finally:
            for member in members:
                await member.stop()


async def register_at(h: TwoNodes, member: Member) -> None:
    result = await sipp(
        "uac_register.xml",
        port=h.phone_port,
        target=f"127.0.0.1:{member.port}",
        media_port=h.media_base + 30,
        extra=["-au", "alice", "-ap", TEST_DIGEST],
        fill={"USER": "2001"},
    )
    assert result.returncode == 0, result.output


async def until(check: object, what: str) -> None:
    """Wait (bounded) until ``check()`` is true."""
    deadline = time.monotonic() + SYNC_WAIT
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {SYNC_WAIT} s: {what}")
        await asyncio.sleep(0.1)


def knows(member: Member) -> bool:
    router = member.router
    return router.cluster.locate(("2001",), router.wall(member.node.now())) is not None


@pytest.mark.timeout(90)
def test_a_phone_registered_at_node_b_answers_a_call_entering_node_a(store_url: str) -> None:
    async def main() -> None:
        async with two_nodes(store_url) as h:
            await register_at(h, h.b)
            await until(lambda: knows(h.a), "node A learns where 2001 is registered")
            assert not knows(h.b)  # node B has it in its own registrar, not from the store
            phone = asyncio.create_task(
                sipp("uas_answer.xml", port=h.phone_port, media_port=h.media_base, rtp_echo=True)
            )
            await wait_bound(h.phone_port)  # the phone listens before the call is placed
            uac = await sipp(
                "uac_basic.xml",
                port=h.customer_port,
                target=f"127.0.0.1:{h.a.port}",
                media_port=h.media_base + 10,
                extra=["-s", "2001"],
            )
            assert uac.returncode == 0, uac.output
            assert (await phone).returncode == 0  # the phone answered at its registration, via node B
            await until(lambda: len(h.a.router.records) == 1, "node A's CDR")
            (cdr,) = h.a.router.records
            today = datetime.now(UTC).date()
            assert [c.call_id for c in h.store.cdrs(today, today)] == [cdr.call_id]  # one CDR in all
            assert list(h.b.router.records) == []  # node B wrote none
            assert (cdr.mapping_gateway, cdr.routing_gateway, cdr.termination_reason) == (
                "cust",
                "phone:2001@node-b",
                "Normal",
            )
            assert cdr.billed_seconds >= 2 and cdr.fee == d("0.001") * cdr.billed_seconds
            assert h.store.admin().get(Account, h.account_id).balance == d("10") - cdr.fee  # one charge
            assert h.store.reservations() == []
            packets = json.loads(cdr.media_quality)
            assert packets["caller"] > 20 and packets["callee"] > 20  # RTP both ways through node A
            (delivered,) = h.b.node.ended_records
            assert delivered.ingress == "node:node-a" and delivered.gateway == "phone:2001"
            assert delivered.media_packets.get("callee", 0) > 20  # and through node B to the phone

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_a_phone_of_a_dead_node_is_not_online(store_url: str) -> None:
    """Node B dies (stops without leaving the store, as after a crash): once its heartbeat is
    older than node_ttl node A finds its phone not online: 480, "The called not online"."""

    async def main() -> None:
        async with two_nodes(store_url, node_ttl=2.0) as h:
            await register_at(h, h.b)
            await until(lambda: knows(h.a), "node A learns where 2001 is registered")
            await h.b.stop(leave=False)
            await until(lambda: not knows(h.a), "node A finds node B dead")
            uac = await sipp(
                "uac_expect_failure.xml",
                port=h.customer_port,
                target=f"127.0.0.1:{h.a.port}",
                media_port=h.media_base + 10,
                extra=["-s", "2001"],
                fill={"CODE": "480"},
            )
            assert uac.returncode == 0, uac.output
            (cdr,) = h.a.router.records
            assert (cdr.sip_code, cdr.termination_reason, cdr.gateways_tried) == (
                480,
                "The called not online",
                (),
            )

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_a_forged_node_hop_invite_is_refused(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """INVITEs to node B claiming to come from node A: with a made-up signature and with a
    correct one (made with the store's secret) from an address that is not node A's SIP
    address; then, node A gone (its row still alive), from node A's very address and port with
    a made-up signature. 403 each time, nothing delivered to the registered phone, no CDR."""

    async def main() -> None:
        async with two_nodes(store_url) as h:
            await register_at(h, h.b)
            view = h.b.router.cluster.view
            assert view is not None
            stamp = str(int(time.time()))
            real = _signature(view.secret, ("node-a", "node-b", stamp, "feed", "2001"))
            made_up = f"node=node-a;to=node-b;at={stamp};nonce=f00d;sig={'0' * 64}"
            signed = f"node=node-a;to=node-b;at={stamp};nonce=feed;sig={real}"
            await h.a.stop(leave=False)  # its port is free, its row alive for node_ttl
            for port, header in (
                (h.customer_port + 5, made_up),
                (h.customer_port + 5, signed),
                (h.a.port, made_up),
            ):
                uac = await sipp(
                    "uac_node_hop.xml",
                    port=port,
                    target=f"127.0.0.1:{h.b.port}",
                    media_port=h.media_base + 10,
                    extra=["-s", "2001"],
                    fill={"CODE": "403", "HOP": header},
                )
                assert uac.returncode == 0, uac.output
            assert [r.termination for r in h.b.node.ended_records] == ["Node hop refused"] * 3
            assert all(r.attempts == 0 for r in h.b.node.ended_records)  # the phone was never called
            reasons = [
                r.getMessage().rpartition("node hop refused: ")[2]
                for r in caplog.records
                if "node hop" in r.getMessage()
            ]
            assert [reason.startswith("from 127.0.0.1:") for reason in reasons] == [True, True, False]
            assert reasons[2] == "bad signature"
            today = datetime.now(UTC).date()
            assert h.store.cdrs(today, today) == []

    asyncio.run(main())
