"""The B2BUA with real peers: SIPp as the customer's phone and as the carriers, media through the
in-process engine, on loopback. Each test bounds its SIPp runs (-timeout) and awaits them all."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from signaling.media.control import DEFERRED, InProcessMedia
from tests.b2bua_harness import node_with
from tests.sipp_calls import CALLEE, call, carrier, customer, ended_records, run


def test_basic_call_with_media_and_caller_bye() -> None:
    async def main() -> None:
        async with node_with() as h:
            await call(h, customer(h), carrier(h, rtp_echo=True))
            [record] = await ended_records(h, 1)
            assert record.answer is not None and record.gateway == "carrier-0"
            assert record.termination == "Normal" and record.ended_by == "caller"
            assert record.callee == "12125550100" and record.attempts == 1
            # 2 s of 20 ms packets from the caller, echoed back by the carrier, through the engine
            assert record.media_packets["caller"] >= 60, record.media_packets
            assert record.media_packets["callee"] >= 60, record.media_packets
            assert h.engine.session_ids() == []
            assert h.node.calls == {}

    run(main())


def test_failover_to_the_second_carrier_after_503() -> None:
    async def main() -> None:
        async with node_with(carriers=[{}, {}]) as h:
            await call(
                h,
                customer(h),
                carrier(h, "uas_reject.xml", 0, fill={"CODE": "503", "REASON": "Service Unavailable"}),
                carrier(h, "uas_answer.xml", 1, rtp_echo=True),
            )
            [record] = await ended_records(h, 1)
            assert record.attempts == 2 and record.gateway == "carrier-1"
            assert record.media_packets["callee"] >= 60

    run(main())


def test_busy_stops_switching_and_reaches_the_caller() -> None:
    async def main() -> None:
        async with node_with(carriers=[{}, {}]) as h:
            await call(
                h,
                customer(h, "uac_expect_failure.xml", fill={"CODE": "486"}),
                carrier(h, "uas_reject.xml", fill={"CODE": "486", "REASON": "Busy Here"}),
            )
            [record] = await ended_records(h, 1)
            assert record.attempts == 1 and record.final_status == 486
            assert h.engine.session_ids() == []

    run(main())


def test_unknown_customer_is_refused_without_call_state() -> None:
    async def main() -> None:
        async with node_with(customer={"addresses": ["10.1.1.1"]}) as h:
            await call(h, customer(h, "uac_expect_failure.xml", fill={"CODE": "403"}))
            [record] = h.node.ended_records
            assert record.termination == "UnknownGateway"
            assert h.engine.session_ids() == [] and h.node.calls == {}

    run(main())


PASSWORD_CUSTOMER = {"addresses": [], "username": "gw1", "password": "s3cret"}


def test_password_customer_is_challenged_then_admitted() -> None:
    async def main() -> None:
        async with node_with(customer=PASSWORD_CUSTOMER) as h:
            # SIPp puts the target address in the digest uri unless told the Request-URI
            auth = ["-au", "gw1", "-ap", "s3cret", "-auth_uri", f"12125550100@{h.target}"]
            await call(h, customer(h, "uac_auth.xml", extra=[*CALLEE, *auth]), carrier(h, rtp_echo=True))
            [record] = await ended_records(h, 1)
            assert record.ingress == "customer" and record.answer is not None

    run(main())


def test_wrong_password_never_reaches_a_carrier() -> None:
    async def main() -> None:
        async with node_with(customer=PASSWORD_CUSTOMER) as h:
            auth = ["-au", "gw1", "-ap", "wrong", "-auth_uri", f"12125550100@{h.target}"]
            uac = await customer(h, "uac_auth.xml", extra=[*CALLEE, *auth], timeout=5)
            assert uac.returncode != 0  # the second INVITE is refused, not answered
            assert "SIP/2.0 403 Forbidden" in uac.output, uac.output
            assert h.node.ended_records == [] and h.node.calls == {}
            assert h.engine.session_ids() == []

    run(main())


def test_register_with_digest_auth() -> None:
    async def main() -> None:
        async with node_with(customer=PASSWORD_CUSTOMER) as h:
            await call(
                h,
                customer(h, "uac_register.xml", extra=["-au", "gw1", "-ap", "s3cret"], fill={"USER": "gw1"}),
            )
            online = dict(h.node.registrar.online(h.node.now()))
            [binding] = online["gw1"]  # bindings are keyed by the user part (phones by number)
            assert binding.source == ("127.0.0.1", h.customer_port)

    run(main())


def test_a_slow_media_worker_holds_only_that_call_and_loses_nothing() -> None:
    """The node ends a call's media without waiting for the media worker (delete_later): made
    300 ms late here, the call's later inputs (the carrier's 200 to our BYE) queue behind it
    and run once the final statistics are in; the call ends cleanly with its media figures."""

    async def main() -> None:
        async with node_with() as h:
            media = h.media
            assert isinstance(media, InProcessMedia)
            real = media.delete_later
            queued_at_release: list[int] = []

            def slow_delete(call_id: str, from_tag: str | None, done: Callable[[Any], None]) -> object:
                loop = asyncio.get_running_loop()

                def late(result: Any) -> None:
                    def release() -> None:
                        state = h.node.calls.get(call_id)
                        queued_at_release.append(len(state.queue) if state is not None else -1)
                        done(result)

                    loop.call_later(0.3, release)

                started = real(call_id, from_tag, late)
                if started is DEFERRED:
                    return DEFERRED
                late(started)  # a reply known at once: made late all the same
                return DEFERRED

            media.delete_later = slow_delete  # type: ignore[method-assign]
            await call(h, customer(h), carrier(h, rtp_echo=True))
            [record] = await ended_records(h, 1)
            assert queued_at_release and queued_at_release[0] >= 1, queued_at_release
            assert record.termination == "Normal" and record.ended_by == "caller"
            assert record.media_packets["caller"] >= 60, record.media_packets
            assert record.media_packets["callee"] >= 60, record.media_packets
            assert h.node.stats.handler_errors == 0
            assert h.engine.session_ids() == []
            assert h.node.calls == {}

    run(main())
