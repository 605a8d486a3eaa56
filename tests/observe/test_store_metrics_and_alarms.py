"""The node on the store: the ledger-write latency histogram, the CDR queue and its backlog
alarm, the balance-low alarm — with SIPp calls through a real node and the store failing on
purpose (a CDR write refused) to build a backlog."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from signaling.observe.alarms import AlarmConfig
from signaling.observe.driver import Observer
from signaling.observe.metrics import build_registry, exposition
from signaling.observe.system import SystemSampler
from signaling.store import StoreError
from tests.b2bua_harness import peers_listening, sipp
from tests.callproc.test_store_node_sipp import CALLEE, StoreNode, store_node


def samples(h: StoreNode) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = exposition(build_registry(h.node, process=False))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def call(h: StoreNode) -> None:
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
    for _ in range(40):
        if not h.node.calls:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)


class QuietSampler(SystemSampler):
    """No resource alarm from whatever else this machine runs."""

    def sample(self, now: float, **_: Any) -> Any:
        from signaling.observe.alarms import SystemSample  # noqa: PLC0415

        return SystemSample()


def kinds(events: Sequence[Any]) -> list[tuple[str, str, str]]:
    return [(e.action, e.alarm["kind"], e.alarm["subject"]) for e in events]


@pytest.mark.timeout(90)
def test_ledger_latency_cdr_backlog_and_balance_alarms(tmp_path: Path) -> None:
    async def main() -> None:
        async with store_node(tmp_path, balance="10") as h:
            await call(h)
            s = samples(h)
            for operation in ("hold", "answer", "settle"):
                count = s[("softswitch_ledger_write_seconds_count", (("operation", operation),))]
                assert count == 1, operation
                assert s[("softswitch_ledger_write_seconds_sum", (("operation", operation),))] > 0
            inf = s[("softswitch_ledger_write_seconds_bucket", (("le", "+Inf"), ("operation", "settle")))]
            assert inf == 1
            assert s[("softswitch_cdr_queue_depth", ())] == 0

            observer = Observer(h.node, AlarmConfig(balance_low=Decimal(10)), sampler=QuietSampler())
            # the account paid for one call: 10 - fee is under the threshold of 10
            observer.funds = await asyncio.to_thread(observer.read_funds)
            assert observer.funds.keys() == {"1001"} and observer.funds["1001"] < 10
            events = observer.run_round()
            assert ("raised", "balance_low", "1001") in kinds(events)

            # the database refuses CDRs: the second call's record waits in the queue
            real = h.store.settle_calls

            def refuse(*args: object, **kwargs: object) -> int:
                raise StoreError("database is locked")

            h.store.settle_calls = refuse  # type: ignore[method-assign]
            await call(h)
            s = samples(h)
            assert s[("softswitch_cdr_queue_depth", ())] == 1
            assert s[("softswitch_cdr_queue_oldest_seconds", ())] > 0
            # the refused write is observed too (and any retry a router tick made meanwhile)
            assert s[("softswitch_ledger_write_seconds_count", (("operation", "settle"),))] >= 2
            events = observer.run_round()
            assert ("raised", "cdr_backlog", "cdr") in kinds(events)
            assert observer.snapshot()["active"][0]["kind"] == "cdr_backlog"  # major before warning

            # the database is back: the router's tick writes it, the alarm clears
            h.store.settle_calls = real  # type: ignore[method-assign]
            h.router.run_tick(h.node.now())
            assert samples(h)[("softswitch_cdr_queue_depth", ())] == 0
            assert ("cleared", "cdr_backlog", "cdr") in kinds(observer.run_round())
            assert len(h.router.records) == 2

    asyncio.run(main())
