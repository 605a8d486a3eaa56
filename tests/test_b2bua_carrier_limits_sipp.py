"""A carrier's max_calls / max_cps with the static router, end to end: the node running, SIPp as
the customer and as the carriers, media through the in-process engine.

Reference: routing gateway ``Max Concurrent Calls`` / ``Max CPS`` (architecture-billing-payments
T36: "GW_A at Max Concurrent Calls → new call skips GW_A and goes to GW_B";
security-quality-timerouting-failover behaviour 57: skipped without an INVITE, the next carrier
tried at once). The node takes the carrier's slot when the attempt starts and gives it back when
the attempt ends or the answered call ends (signaling/b2bua/carrier_limits.py); every test ends
with every admission counter back at zero."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from signaling.b2bua.carrier_limits import carrier_key
from tests.b2bua_harness import Harness, node_with, peers_listening
from tests.sipp_calls import assert_nothing_leaked, carrier, customer, ended_records, ok, run, start


def slots_in_use(h: Harness) -> dict[str, int]:
    """Every admission key of the node's file (customers' and carriers') with its calls in use."""
    cfg = h.node.config
    keys = ["in:" + gw.name for gw in cfg.mapping_gateways]
    keys += [carrier_key(gw.name) for gw in cfg.routing_gateways]
    return {key: h.node.admission.active(key) for key in keys}


async def no_slot_held(h: Harness) -> None:
    await assert_nothing_leaked(h)
    assert set(slots_in_use(h).values()) == {0}, slots_in_use(h)
    assert h.node.router.held == {}  # type: ignore[attr-defined]  # CarrierLimits, under the meter


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert condition(), "condition not reached in time"


def test_a_carrier_with_max_calls_1_takes_one_call_the_second_fails_over() -> None:
    """carrier-0 (priority 0, one line) carries the first call; the second, placed while the
    first is up, is never offered to carrier-0 and goes to carrier-1; a third, after both
    ended, finds carrier-0's line free again. RTP flows through the engine on every call."""

    async def main() -> None:
        async with node_with(carriers=[{"max_calls": 1}, {}]) as h:
            first_carrier = start(carrier(h, "uas_answer.xml", 0, calls=2, rtp_echo=True))
            second_carrier = start(carrier(h, "uas_answer.xml", 1, calls=1, rtp_echo=True))
            await peers_listening()
            first = start(customer(h, "uac_basic.xml", 0))
            await until(lambda: h.node.admission.active(carrier_key("carrier-0")) == 1)
            await until(lambda: any(s.call.answered for s in h.node.calls.values()))
            second = await customer(h, "uac_basic.xml", 1)
            ok(first=await first, second=second)
            assert h.node.admission.active(carrier_key("carrier-0")) == 0
            third = await customer(h, "uac_basic.xml", 2)
            c0, c1 = await first_carrier, await second_carrier
            ok(third=third, carrier0=c0, carrier1=c1)
            assert len(c0.received("INVITE")) == 2 and len(c1.received("INVITE")) == 1
            records = await ended_records(h, 3)
            by_call = sorted(records, key=lambda r: r.start)
            assert [r.gateway for r in by_call] == ["carrier-0", "carrier-1", "carrier-0"]
            assert [r.attempts for r in by_call] == [1, 1, 1]  # the busy carrier was not tried
            for record in records:
                assert record.termination == "Normal" and record.answer is not None
                assert record.media_packets["caller"] >= 50 and record.media_packets["callee"] >= 50, record
            assert h.node.gateways.gateways["carrier-0"].attempts == 2  # metered only when tried
            await no_slot_held(h)

    run(main())


def test_every_carrier_at_max_calls_refuses_the_caller_with_503_all_gateway_busy() -> None:
    async def main() -> None:
        async with node_with(carriers=[{"max_calls": 1}]) as h:
            only = start(carrier(h, "uas_answer.xml", 0, calls=1, rtp_echo=True))
            await peers_listening()
            first = start(customer(h, "uac_basic.xml", 0))
            await until(lambda: any(s.call.answered for s in h.node.calls.values()))
            refused = await customer(h, "uac_expect_failure.xml", 1, fill={"CODE": "503"})
            ok(refused=refused, first=await first, carrier=await only)
            assert len((await only).received("INVITE")) == 1
            by_call = sorted(await ended_records(h, 2), key=lambda r: r.start)
            assert by_call[0].answer is not None and by_call[0].gateway == "carrier-0"
            busy = by_call[1]
            assert busy.final_status == 503 and busy.termination == "AllGatewayBusy"
            assert busy.attempts == 0 and busy.gateway is None
            assert h.node.stats.failed_by_reason.get("AllGatewayBusy") == 1
            await no_slot_held(h)

    run(main())


@pytest.mark.parametrize("backup", [True, False], ids=["fails-over", "503-without-backup"])
def test_a_carrier_with_max_cps_2_takes_two_of_five_attempts_in_half_a_second(backup: bool) -> None:
    """Five calls within half a second; carrier-0 takes at most two call attempts in any
    one-second window: the other three go to carrier-1, or get 503 when there is none."""

    async def main() -> None:
        carriers = [{"max_cps": 2}, {}] if backup else [{"max_cps": 2}]
        async with node_with(carriers=carriers) as h:
            limited = start(carrier(h, "uas_answer.xml", 0, calls=2))
            other = start(carrier(h, "uas_answer.xml", 1, calls=3)) if backup else None
            await peers_listening()
            uac = await customer(h, "uac_cps.xml", 0, calls=5, rate=10)
            c0 = await limited
            ok(caller=uac, carrier0=c0, **({"carrier1": await other} if other is not None else {}))
            assert len(c0.received("INVITE")) == 2
            records = await ended_records(h, 5)
            gateways = sorted(str(r.gateway) for r in records)
            if backup:
                assert gateways == ["carrier-0"] * 2 + ["carrier-1"] * 3
                assert all(r.answer is not None for r in records) and not uac.received(503)
            else:
                assert gateways == ["None"] * 3 + ["carrier-0"] * 2
                assert len(uac.received(503)) == 3
                refused = [r for r in records if r.gateway is None]
                assert {(r.final_status, r.termination, r.attempts) for r in refused} == {
                    (503, "AllGatewayBusy", 0)
                }
            await no_slot_held(h)

    run(main())


def test_the_line_comes_back_after_a_failure_a_cancel_an_answered_call_and_a_timeout() -> None:
    """One carrier with one line, called four times in turn: it refuses (503), rings until the
    caller cancels (487), answers, and stays silent past the INVITE timeout (408). Each call
    holds the line while it is tried and gives it back at its end."""

    async def main() -> None:
        async with node_with(carriers=[{"max_calls": 1}], parameters={"SS_SIP_TIMEOUT_INVITE": 1}) as h:
            line = carrier_key("carrier-0")
            steps = [
                (
                    "uas_reject.xml",
                    {"CODE": "503", "REASON": "Service Unavailable"},
                    "uac_expect_failure.xml",
                    "503",
                ),
                ("uas_ring.xml", None, "uac_cancel.xml", None),
                ("uas_answer.xml", None, "uac_basic.xml", None),
                # last: our INVITE to the silent carrier is retransmitted until Timer B (no CANCEL
                # before a provisional, RFC 3261 9.1), and would reach a next carrier on its port
                ("uas_silent.xml", {"WAIT_MS": "1500"}, "uac_expect_failure.xml", "408"),
            ]
            for index, (uas, uas_fill, uac, code) in enumerate(steps):
                far = start(carrier(h, uas, 0, **({"fill": uas_fill} if uas_fill else {})))
                await peers_listening()
                near = start(customer(h, uac, index, **({"fill": {"CODE": code}} if code else {})))
                if uac == "uac_basic.xml":  # up for 2 s: it holds the line meanwhile
                    await until(lambda: h.node.admission.active(line) == 1)
                ok(carrier=await far, caller=await near)
                await ended_records(h, index + 1)
                await until(lambda: h.node.admission.active(line) == 0)
            by_call = sorted(h.node.ended_records, key=lambda r: r.start)
            # every call reached the carrier: a line kept by an earlier one would make AllGatewayBusy
            assert [(r.gateway, r.attempts) for r in by_call] == [("carrier-0", 1)] * 4
            assert [r.final_status for r in by_call] == [503, 487, 200, 408]
            assert [r.termination for r in by_call] == [
                "AllRoutesFailed",
                "CallerCancel",
                "Normal",
                "AllRoutesFailed",
            ]
            await no_slot_held(h)

    run(main())
