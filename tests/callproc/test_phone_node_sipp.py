"""Registered phones through the SIP node on the store, with SIPp as the phone, the customer
and the carrier (loopback, in-process media): a phone registers with its digest credentials,
receives a call to its number at its registered address, is "not online" when unregistered, and
places a call authenticated by its credentials and billed to its account (architecture
CAP-3.1 step 1; timers-trace-routing-dialplan.md §2.6, behaviours 59 and 64)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.callproc import StoreRouter
from signaling.callproc.driver import RouterDriver
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.store import Account, Phone, Store, open_store
from tests.b2bua_harness import BLOCK, peers_listening, port_block, sipp
from tests.callproc.world import basic_world, d
from tests.store.conftest import TEST_DIGEST

PER_SECOND = (("1", "0.6", 1, "0.6", 1), ("2", "0.06", 1, "0.06", 1))  # 0.01 and 0.001 a second


@dataclass
class PhoneNode:
    node: Node
    router: StoreRouter
    store: Store
    account_id: int
    sip_port: int
    carrier_port: int
    customer_port: int
    phone_port: int
    media_base: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.sip_port}"


@contextlib.asynccontextmanager
async def phone_node(
    tmp_path: Path,
    *,
    locked_account: bool = False,
    ip_whitelist: tuple[str, ...] = (),
    sections: dict[str, dict[str, object]] | None = None,
) -> AsyncIterator[PhoneNode]:
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        url = f"sqlite:///{tmp_path / 'node.db'}"
        store = stack.enter_context(open_store(url))
        customer_port = base + 10
        ids = basic_world(
            store,
            customer_rates=PER_SECOND,
            gateways=({"name": "carrier", "prefixes": ("1",), "port": base + 1},),
            # the customer is known by address and port: the phone, on another port, is not
            mapping={"auth_mode": "ip_port", "addresses": (f"127.0.0.1:{customer_port}",)},
        )
        admin = store.admin()
        admin.create(Phone(ids.customer, number="2001", sip_user="alice", sip_password=TEST_DIGEST))
        if locked_account or ip_whitelist:
            account = admin.get(Account, ids.customer)
            admin.update(replace(account, locked=locked_account, ip_whitelist=ip_whitelist))
        sip = {"listen": f"127.0.0.1:{base}"}
        cfg = load({"sip": sip, "store": {"url": url, "node": "phones"}, **(sections or {})})
        engine = MediaEngine(interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1)
        stack.callback(engine.close)
        media = InProcessMedia(engine)
        stack.callback(media.close)
        router = StoreRouter(store, node="phones", parameters=cfg.parameters)
        node = Node(cfg, media, router)
        await node.start()
        driver = RouterDriver(router, refresh_interval=0.5)
        driver.start()
        try:
            yield PhoneNode(
                node, router, store, ids.customer, base, base + 1, customer_port, base + 11, base + 20
            )
        finally:
            await node.stop()
            await driver.stop()


async def register(
    h: PhoneNode,
    user: str = "alice",
    aor: str = "2001",
    *,
    local_ip: str = "127.0.0.1",
    scenario: str = "uac_register.xml",
) -> int:
    """0 when the REGISTER ended as ``scenario`` expects (uac_register.xml: 200)."""
    result = await sipp(
        scenario,
        port=h.phone_port,
        target=h.target,
        media_port=h.media_base + 30,
        extra=["-au", user, "-ap", TEST_DIGEST],
        fill={"USER": aor},
        local_ip=local_ip,
    )
    return result.returncode


@pytest.mark.timeout(60)
def test_a_registered_phone_receives_a_call_to_its_number(tmp_path: Path) -> None:
    async def main() -> None:
        async with phone_node(tmp_path) as h:
            assert await register(h) == 0
            (binding,) = h.node.registrar.lookup("2001", h.node.now())
            assert binding.source == ("127.0.0.1", h.phone_port)
            phone = asyncio.create_task(
                sipp("uas_answer.xml", port=h.phone_port, media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_basic.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=["-s", "2001"],
            )
            assert uac.returncode == 0, uac.output
            assert (await phone).returncode == 0  # the phone answered at its registered address
            await asyncio.sleep(0.2)
            (cdr,) = list(h.router.records)
            assert (cdr.mapping_gateway, cdr.routing_gateway, cdr.termination_reason) == (
                "cust",
                "phone:2001",
                "Normal",
            )
            assert cdr.fee == d("0.001") * cdr.billed_seconds and cdr.billed_seconds >= 2

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_an_unregistered_phone_is_not_online(tmp_path: Path) -> None:
    async def main() -> None:
        async with phone_node(tmp_path) as h:
            uac = await sipp(
                "uac_expect_failure.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=["-s", "2001"],
                fill={"CODE": "480"},
            )
            assert uac.returncode == 0, uac.output
            (cdr,) = list(h.router.records)
            assert (cdr.sip_code, cdr.termination_reason) == (480, "The called not online")

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_phone_calls_out_with_its_credentials_and_its_account_pays(tmp_path: Path) -> None:
    async def main() -> None:
        async with phone_node(tmp_path) as h:
            carrier = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_port, media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_auth.xml",
                port=h.phone_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=[
                    *("-s", "12125550100", "-au", "alice", "-ap", TEST_DIGEST),
                    *("-auth_uri", f"12125550100@{h.target}"),
                ],
            )
            assert uac.returncode == 0, uac.output
            assert (await carrier).returncode == 0
            await asyncio.sleep(0.2)
            (cdr,) = list(h.router.records)
            assert (cdr.phone, cdr.mapping_gateway, cdr.caller) == ("2001", "", "2001")
            assert cdr.routing_gateway == "carrier"
            assert cdr.fee == d("0.01") * cdr.billed_seconds and cdr.fee > 0
            assert h.store.admin().get(Account, h.account_id).balance == d("10") - cdr.fee

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_behaviour_59_a_phone_of_a_locked_account_cannot_register(tmp_path: Path) -> None:
    async def main() -> None:
        async with phone_node(tmp_path, locked_account=True) as h:
            assert await register(h) != 0  # 403 after the digest exchange, not the 200 it waits for
            assert h.node.registrar.lookup("2001", h.node.now()) == []

    asyncio.run(main())
