"""The B2BUA with real peers: SIPp as the customer's phone and as the carriers, media through the
in-process engine, on loopback. Each test bounds its SIPp runs (-timeout) and awaits them all."""

from __future__ import annotations

import asyncio

from tests.b2bua_harness import node_with, peers_listening, sipp

CALLEE = ["-s", "12125550100"]


def test_basic_call_with_media_and_caller_bye() -> None:
    async def main() -> None:
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
            assert record.answer is not None and record.gateway == "carrier-0"
            assert record.termination == "Normal" and record.ended_by == "caller"
            assert record.callee == "12125550100" and record.attempts == 1
            # 2 s of 20 ms packets from the caller, echoed back by the carrier, through the engine
            assert record.media_packets["caller"] >= 60, record.media_packets
            assert record.media_packets["callee"] >= 60, record.media_packets
            assert h.engine.session_ids() == []
            assert h.node.calls == {}

    asyncio.run(main())


def test_failover_to_the_second_carrier_after_503() -> None:
    async def main() -> None:
        async with node_with(carriers=[{}, {}]) as h:
            first = asyncio.create_task(
                sipp(
                    "uas_reject.xml",
                    port=h.carrier_ports[0],
                    media_port=h.media_base,
                    fill={"CODE": "503", "REASON": "Service Unavailable"},
                )
            )
            second = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_ports[1], media_port=h.media_base + 4, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_basic.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=CALLEE,
            )
            assert uac.returncode == 0, uac.output
            assert (await first).returncode == 0
            assert (await second).returncode == 0
            await asyncio.sleep(0.2)
            [record] = h.node.ended_records
            assert record.attempts == 2 and record.gateway == "carrier-1"
            assert record.media_packets["callee"] >= 60

    asyncio.run(main())


def test_busy_stops_switching_and_reaches_the_caller() -> None:
    async def main() -> None:
        async with node_with(carriers=[{}, {}]) as h:
            first = asyncio.create_task(
                sipp(
                    "uas_reject.xml",
                    port=h.carrier_ports[0],
                    media_port=h.media_base,
                    fill={"CODE": "486", "REASON": "Busy Here"},
                )
            )
            await peers_listening()
            uac = await sipp(
                "uac_expect_failure.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=CALLEE,
                fill={"CODE": "486"},
            )
            assert uac.returncode == 0, uac.output
            assert (await first).returncode == 0
            await asyncio.sleep(0.2)
            [record] = h.node.ended_records
            assert record.attempts == 1 and record.final_status == 486
            assert h.engine.session_ids() == []

    asyncio.run(main())


def test_unknown_customer_is_refused_without_call_state() -> None:
    async def main() -> None:
        async with node_with(customer={"addresses": ["10.1.1.1"]}) as h:
            uac = await sipp(
                "uac_expect_failure.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=CALLEE,
                fill={"CODE": "403"},
            )
            assert uac.returncode == 0, uac.output
            [record] = h.node.ended_records
            assert record.termination == "UnknownGateway"
            assert h.engine.session_ids() == [] and h.node.calls == {}

    asyncio.run(main())


PASSWORD_CUSTOMER = {"addresses": [], "username": "gw1", "password": "s3cret"}


def test_password_customer_is_challenged_then_admitted() -> None:
    async def main() -> None:
        async with node_with(customer=PASSWORD_CUSTOMER) as h:
            carrier = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_ports[0], media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_auth.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                # SIPp puts the target address in the digest uri unless told the Request-URI
                extra=[*CALLEE, "-au", "gw1", "-ap", "s3cret", "-auth_uri", f"12125550100@{h.target}"],
            )
            assert uac.returncode == 0, uac.output
            assert (await carrier).returncode == 0
            await asyncio.sleep(0.2)
            [record] = h.node.ended_records
            assert record.ingress == "customer" and record.answer is not None

    asyncio.run(main())


def test_wrong_password_never_reaches_a_carrier() -> None:
    async def main() -> None:
        async with node_with(customer=PASSWORD_CUSTOMER) as h:
            uac = await sipp(
                "uac_auth.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=[*CALLEE, "-au", "gw1", "-ap", "wrong", "-auth_uri", f"12125550100@{h.target}"],
                timeout=5,
            )
            assert uac.returncode != 0  # the second INVITE is refused, not answered
            assert "SIP/2.0 403 Forbidden" in uac.output, uac.output
            assert h.node.ended_records == [] and h.node.calls == {}
            assert h.engine.session_ids() == []

    asyncio.run(main())


def test_register_with_digest_auth() -> None:
    async def main() -> None:
        async with node_with(customer=PASSWORD_CUSTOMER) as h:
            uac = await sipp(
                "uac_register.xml",
                port=h.customer_port,
                target=h.target,
                media_port=h.media_base + 10,
                extra=["-au", "gw1", "-ap", "s3cret"],
                fill={"USER": "gw1"},
            )
            assert uac.returncode == 0, uac.output
            online = dict(h.node.registrar.online(h.node.now()))
            [binding] = online["gw1"]  # bindings are keyed by the user part (phones by number)
            assert binding.source == ("127.0.0.1", h.customer_port)

    asyncio.run(main())
