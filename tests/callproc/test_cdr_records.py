"""CDRs: one per call, written durably (with the account debits) before the router's
``call_ended`` returns, with both legs' numbers, every gateway tried, the customer fee, the vendor
cost and the margin (architecture §21.3 T16/T17, §21.6 T34/T35, §21.8 T56/T58; security-quality
§F.6 51/71)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from signaling.store import Account, Rate, RateGroup, RoutingGateway, Store, open_store
from tests.callproc.world import NODE_T0, T0, FakeNode, basic_world, d


def test_the_cdr_is_in_the_database_when_call_ended_returns(store_url: str) -> None:
    with open_store(store_url) as store, open_store(store_url) as observer:
        ids = basic_world(store)
        node = FakeNode.on(store)
        node.admit("c", "12125550100")
        node.answer("c")
        node.advance(61)
        seen: list[int] = []
        original = store.settle_calls

        def settle(*args: object, **kw: object) -> int:
            added = original(*args, **kw)  # type: ignore[arg-type]
            seen.append(len(observer.cdrs(T0.date(), T0.date())))  # committed: another connection sees it
            return added

        store.settle_calls = settle  # type: ignore[method-assign]
        node.end("c")
        assert seen == [1]
        (cdr,) = observer.cdrs(T0.date(), T0.date())
        assert cdr.fee == d("0.021")  # T10: 61 s on 60/6 at 0.02 then 0.01
        assert observer.admin().get(Account, ids.customer).balance == d("9.979")
        assert observer.reservations() == []


def test_t16_fee_vendor_cost_and_margin_and_both_accounts_debited(store: Store) -> None:
    ids = basic_world(
        store,
        customer_rates=(("1", "0.01", 6, "0.01", 6, "0.01"),),
        vendor_rates=(("1", "0.005", 6, "0.005", 6),),
    )
    admin = store.admin()
    node = FakeNode.on(store)
    node.admit("c", "12125550100")
    node.answer("c")
    node.advance(30)
    node.end("c")
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.fee, cdr.vendor_cost, cdr.margin) == (d("0.015"), d("0.0025"), d("0.0125"))
    assert (cdr.connection_fee, cdr.billed_seconds, cdr.hold_ms) == (d("0.01"), 30, 30_000)
    assert admin.get(Account, ids.customer).balance == d("9.985")
    assert admin.get(Account, ids.vendor).balance == d("-0.0025")


def test_t34_51_71_failover_cdr_names_the_backup_and_uses_its_rate(sqlite_store: Store) -> None:
    basic_world(
        sqlite_store,
        gateways=(
            {"name": "gw-a", "prefixes": ("1",), "priority": 1},
            {"name": "gw-b", "prefixes": ("1",), "priority": 2},
        ),
    )
    admin = sqlite_store.admin()
    backup = admin.create(RateGroup("backup-buy"))
    admin.add_rates(
        [
            Rate(
                backup.id,
                "1",
                first_time_rate=d("0.009"),
                first_time_duration=6,
                billing_rate=d("0.009"),
                billing_cycle=6,
            )
        ]
    )
    gw_b = next(g for g in admin.list(RoutingGateway) if g.name == "gw-b")
    admin.update(replace(gw_b, rate_group_id=backup.id))
    node = FakeNode.on(sqlite_store)
    node.admit("c", "12125550100", caller="5550001")
    node.try_route("c", 0)
    node.advance(1)
    node.fail("c", 503)
    node.answer("c", 1)
    node.advance(60)
    node.end("c", ended_by="callee")
    (cdr,) = node.router.records
    assert (cdr.routing_gateway, cdr.gateways_tried, cdr.attempts) == ("gw-b", ("gw-a", "gw-b"), 2)
    assert cdr.vendor_cost == d("0.009")  # the backup's buy rate, not the primary's
    assert (cdr.caller, cdr.caller_out, cdr.callee, cdr.callee_out) == (
        "5550001",
        "5550001",
        "12125550100",
        "12125550100",
    )
    assert (cdr.sip_code, cdr.vendor_sip_code, cdr.ended_by, cdr.termination_reason) == (
        200,
        200,
        "callee",
        "Normal",
    )
    assert cdr.answer_time == T0 + timedelta(seconds=1)


def test_t35_t17_all_routes_failed_costs_nothing(sqlite_store: Store) -> None:
    basic_world(
        sqlite_store,
        gateways=(
            {"name": "gw-a", "prefixes": ("1",), "priority": 1},
            {"name": "gw-b", "prefixes": ("1",), "priority": 2},
        ),
    )
    node = FakeNode.on(sqlite_store)
    node.admit("c", "12125550100")
    for index in (0, 1):
        node.try_route("c", index)
        node.fail("c", 503)
    node.end("c", termination="AllRoutesFailed", ended_by="switch", status=503)
    (cdr,) = node.router.records
    assert (cdr.attempts, cdr.gateways_tried, cdr.routing_gateway) == (2, ("gw-a", "gw-b"), "")
    assert cdr.fee == cdr.vendor_cost == 0
    assert (cdr.sip_code, cdr.vendor_sip_code) == (503, 503)
    assert (cdr.termination_reason, cdr.ended_by, cdr.answer_time, cdr.hold_ms) == (
        "AllRoutesFailed",
        "system",
        None,
        0,
    )
    assert sqlite_store.reservations() == []


def test_t58_exactly_one_cdr_per_call_answered_failed_or_refused(store: Store) -> None:
    basic_world(store)
    node = FakeNode.on(store)
    node.admit("answered", "12125550100")
    node.answer("answered")
    node.admit("failed", "12125550100")
    node.try_route("failed")
    node.fail("failed", 486)
    node.admit("refused", "4420")  # no rate
    node.advance(5)
    node.end("answered")
    node.end("failed", termination="SIP 486", ended_by="switch", status=486)
    cdrs = store.cdrs(T0.date(), T0.date())
    assert sorted(c.call_id for c in cdrs) == ["answered", "failed", "refused"]
    # written again (a node retrying after a crash): no duplicate, no second charge
    before = store.admin().get(Account, cdrs[0].account_id or 0).balance
    assert store.settle_calls(cdrs) == 0
    assert len(store.cdrs(T0.date(), T0.date())) == 3
    assert store.admin().get(Account, cdrs[0].account_id or 0).balance == before


def test_t56_a_call_ending_after_midnight_is_filed_on_its_end_day(store: Store) -> None:
    basic_world(store, balance="100")
    late = datetime(2025, 3, 8, 23, 59, tzinfo=UTC)
    node = FakeNode.on(store, clock_offset=lambda: late.timestamp() - NODE_T0)
    node.admit("c", "12125550100")
    node.answer("c")
    node.advance(120)
    node.end("c")
    (cdr,) = store.cdrs(datetime(2025, 3, 9).date(), datetime(2025, 3, 9).date())
    assert cdr.day.isoformat() == "2025-03-09" and cdr.start_time.date().isoformat() == "2025-03-08"


def test_ring_time_gives_the_post_dial_delay(sqlite_store: Store) -> None:
    basic_world(sqlite_store)
    node = FakeNode.on(sqlite_store)
    node.admit("c", "12125550100")
    node.try_route("c")
    node.advance(2.5)
    node.records["c"].ring = node.now
    node.end("c", termination="CallerCancel", status=487)
    assert node.router.records[-1].pdd_ms == 2500
