"""The account's IP whitelist through a real node on the store, with SIPp as the phone sending
from 127.0.0.1 or 127.0.0.2 (both local on Linux): a phone REGISTERs and calls only from the
listed networks, anything else gets 403 after its digest, binds nothing, starts no call and
charges nothing (timers-trace-routing-dialplan.md behaviour 60, §9 "403 Forbidden ... source IP
not allowed (IP whitelist)"; docs/sip-auth-registrar-limits.md "IP whitelist")."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from signaling.observe.metrics import build_registry, exposition
from signaling.routing import IP_NOT_ALLOWED
from signaling.store import Account
from tests.b2bua_harness import peers_listening, sipp
from tests.callproc.test_phone_node_sipp import PhoneNode, phone_node, register
from tests.callproc.world import d
from tests.store.conftest import TEST_DIGEST

OTHER = "127.0.0.2"
FORBIDDEN = "uac_register_forbidden.xml"


async def call_out(h: PhoneNode, *, local_ip: str, scenario: str = "uac_auth.xml") -> int:
    fill = {"CODE": "403"} if scenario == "uac_auth_refused.xml" else None
    uac = await sipp(
        scenario,
        port=h.phone_port,
        target=h.target,
        media_port=h.media_base + 10,
        extra=[
            *("-s", "12125550100", "-au", "alice", "-ap", TEST_DIGEST),
            *("-auth_uri", f"12125550100@{h.target}"),
        ],
        fill=fill,
        local_ip=local_ip,
    )
    assert uac.returncode == 0, uac.output
    return uac.returncode


@pytest.mark.timeout(90)
def test_behaviour_60_register_only_from_the_whitelist(tmp_path: Path) -> None:
    async def main() -> None:
        async with phone_node(tmp_path, ip_whitelist=("127.0.0.1",)) as h:
            # from 127.0.0.2: 401, then 403 once the password is proved; nothing bound
            assert await register(h, local_ip=OTHER, scenario=FORBIDDEN) == 0
            assert h.node.registrar.lookup("2001", h.node.now()) == []
            assert h.node.stats.whitelist_refused == {"REGISTER": 1}
            metrics = exposition(build_registry(h.node, process=False))[0].decode()
            assert 'softswitch_whitelist_refused_total{method="REGISTER"} 1.0' in metrics
            # from 127.0.0.1: registered
            assert await register(h) == 0
            (binding,) = h.node.registrar.lookup("2001", h.node.now())
            assert binding.source == ("127.0.0.1", h.phone_port)

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_behaviour_60_invite_only_from_the_whitelist(tmp_path: Path) -> None:
    async def main() -> None:
        async with phone_node(tmp_path, ip_whitelist=("127.0.0.1/32",)) as h:
            # from 127.0.0.2: 407, then 403; no carrier is running, so a forwarded INVITE
            # would have timed out into another status, not 403
            await call_out(h, local_ip=OTHER, scenario="uac_auth_refused.xml")
            await asyncio.sleep(0.2)
            assert h.node.calls == {}
            (refused,) = list(h.router.records)
            assert (refused.sip_code, refused.termination_reason) == (403, IP_NOT_ALLOWED)
            assert (refused.phone, refused.routing_gateway, refused.fee) == ("2001", "", d("0"))
            assert h.store.admin().get(Account, h.account_id).balance == d("10")
            assert h.node.stats.whitelist_refused == {"INVITE": 1}
            assert h.node.stats.failed_by_reason.get(IP_NOT_ALLOWED) == 1
            # from 127.0.0.1: the call goes through to the carrier and is paid
            carrier = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_port, media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            await call_out(h, local_ip="127.0.0.1")
            assert (await carrier).returncode == 0
            await asyncio.sleep(0.2)
            answered = list(h.router.records)[-1]
            assert (answered.termination_reason, answered.routing_gateway) == ("Normal", "carrier")
            assert answered.fee > 0

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_behaviour_60_a_cidr_entry(tmp_path: Path) -> None:
    """127.0.0.0/31 holds 127.0.0.0 and 127.0.0.1, not 127.0.0.2; an IPv6 entry beside it."""

    async def main() -> None:
        async with phone_node(tmp_path, ip_whitelist=("2001:db8::/32", "127.0.0.0/31")) as h:
            assert await register(h, local_ip=OTHER, scenario=FORBIDDEN) == 0
            assert h.node.registrar.lookup("2001", h.node.now()) == []
            assert await register(h) == 0
            assert len(h.node.registrar.lookup("2001", h.node.now())) == 1

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_an_empty_whitelist_allows_any_address(tmp_path: Path) -> None:
    async def main() -> None:
        async with phone_node(tmp_path) as h:
            assert await register(h, local_ip=OTHER) == 0
            (binding,) = h.node.registrar.lookup("2001", h.node.now())
            assert binding.source == (OTHER, h.phone_port)
            assert h.node.stats.whitelist_refused == {}

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_refusals_are_not_wrong_passwords_for_the_defence(tmp_path: Path) -> None:
    """With loopback untrusted and a block after 3 failed authentications, four refused
    REGISTERs from outside the whitelist do not block the address, and the phone registers
    from there as soon as the whitelist admits it."""

    async def main() -> None:
        strict: dict[str, dict[str, object]] = {"defence": {"trust_loopback": False, "auth_failures": 3}}
        async with phone_node(tmp_path, ip_whitelist=("127.0.0.1",), sections=strict) as h:
            for _ in range(4):
                assert await register(h, local_ip=OTHER, scenario=FORBIDDEN) == 0
            assert h.node.stats.whitelist_refused == {"REGISTER": 4}
            # not blocked, and the proved password did not make the address trusted either
            # (its later REGISTERs would have passed as an authenticated source's)
            assert h.node.defence.auto_blocks.get("auth", 0) == 0
            assert h.node.defence.accepted_authenticated == 0
            admin = h.store.admin()
            account = admin.get(Account, h.account_id)
            admin.update(replace(account, ip_whitelist=("127.0.0.1", OTHER)))
            h.router.refresh()
            assert await register(h, local_ip=OTHER) == 0
            (binding,) = h.node.registrar.lookup("2001", h.node.now())
            assert binding.source == (OTHER, h.phone_port)

    asyncio.run(main())
