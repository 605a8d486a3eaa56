"""Credit exhaustion: the router asks the node to hang up when the call's money runs out, at the
right (fake) time, and the CDR charges exactly the money the account had (issue 6 "a 'hang up
now' when credit is exhausted (within 1 s)"; reference CAP-5.9)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from signaling.callproc.router import HANGUP_LEAD
from signaling.store import Account, Store
from tests.callproc.world import NODE_T0, FakeNode, basic_world, d

PER_SECOND = (("1", "0.6", 1, "0.6", 1),)  # 0.01 a second


@pytest.mark.parametrize("tick", [5.0, 60.0])
def test_hangup_is_asked_when_the_balance_is_spent(sqlite_store: Store, tick: float) -> None:
    ids = basic_world(sqlite_store, balance="1.23", customer_rates=PER_SECOND)
    node = FakeNode.on(sqlite_store, tick=tick)
    admission = node.admit("c", "12125550100")
    assert admission.max_duration == 123  # 1.23 at 0.01 a second
    node.advance(10)  # rings for 10 s: not billed
    answered_at = node.now
    node.answer("c")
    node.advance(3600)
    assert node.hangups == [("c", "Insufficient balance")]
    record = node.records["c"]
    assert record.end is not None
    assert record.end - answered_at == pytest.approx(123 - HANGUP_LEAD)  # within 1 s of exhaustion
    (cdr,) = node.router.records
    assert (cdr.billed_seconds, cdr.fee) == (123, d("1.23"))
    assert sqlite_store.admin().get(Account, ids.customer).balance == 0


def test_the_reference_tariff_60_6_runs_out_on_a_cycle_boundary(sqlite_store: Store) -> None:
    # 0.05: 0.02 for the first 60 s, then 0.001 per 6 s: 30 cycles → 240 s
    basic_world(sqlite_store, balance="0.05")
    node = FakeNode.on(sqlite_store)
    node.admit("c", "12125550100")
    node.answer("c")
    node.advance(1000)
    assert node.records["c"].end == pytest.approx(NODE_T0 + 240 - HANGUP_LEAD)
    (cdr,) = node.router.records
    assert (cdr.hold_ms, cdr.billed_seconds, cdr.fee) == (239750, 240, d("0.05"))


def test_a_payment_during_the_call_lets_it_go_on(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, balance="0.30", customer_rates=PER_SECOND)
    node = FakeNode.on(sqlite_store)
    node.admit("c", "12125550100")
    node.answer("c")
    node.advance(20)
    sqlite_store.admin().pay(ids.customer, d("0.20"))
    node.advance(1000)
    assert node.hangups == [("c", "Insufficient balance")]
    assert node.records["c"].end == pytest.approx(NODE_T0 + 50 - HANGUP_LEAD)
    assert sqlite_store.admin().get(Account, ids.customer).balance == 0


def test_two_calls_share_the_money_and_both_stop_when_it_is_gone(store: Store) -> None:
    ids = basic_world(store, balance="1.00", customer_rates=PER_SECOND)
    node = FakeNode.on(store)
    node.admit("a", "12125550100")
    node.admit("b", "12125550100")
    node.answer("a")
    node.answer("b")
    node.advance(3600)
    assert sorted(node.hangups) == [("a", "Insufficient balance"), ("b", "Insufficient balance")]
    fees = sorted(c.fee for c in node.router.records)
    assert sum(fees) <= d("1.00")
    assert store.admin().get(Account, ids.customer).balance >= 0
    # each had what the other did not take: together at most the 100 seconds the money pays
    assert sum(c.billed_seconds for c in node.router.records) <= 100


def test_a_call_without_money_limit_gets_no_deadline(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="1", customer_rates=(("1", "0", 60, "0", 60),))
    node = FakeNode.on(sqlite_store)
    assert node.admit("c", "12125550100").max_duration is None
    node.answer("c")
    node.advance(36_000)
    assert node.hangups == []
    node.end("c")
    assert node.router.records[-1].fee == 0


def test_t40_routing_gateway_duration_limit_hangs_up(sqlite_store: Store) -> None:
    basic_world(
        sqlite_store, balance="100", gateways=({"name": "gw", "prefixes": ("1",), "max_duration": 3600},)
    )
    node = FakeNode.on(sqlite_store)
    node.admit("c", "12125550100")
    node.answer("c")
    node.advance(7200)
    assert node.hangups == [("c", "Max call duration")]
    assert node.router.records[-1].hold_ms == 3_600_000


def test_locking_the_account_hangs_up_its_calls_answered_or_not(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, balance="100")
    node = FakeNode.on(sqlite_store)
    node.admit("ringing", "12125550100")
    node.try_route("ringing")
    node.admit("talking", "12125550100")
    node.answer("talking")
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(Account, ids.customer), locked=True))
    node.router.refresh()
    assert sorted(node.hangups) == [("ringing", "Account locked"), ("talking", "Account locked")]


def test_a_tick_keeps_the_call_reservation_ahead_of_the_call(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="100", customer_rates=PER_SECOND)
    node = FakeNode.on(sqlite_store, tick=5.0)
    node.admit("c", "12125550100")
    node.answer("c")
    for _ in range(20):
        node.advance(5)
        (held,) = sqlite_store.reservations()
        elapsed = node.now - NODE_T0
        assert held.amount >= d("0.01") * int(elapsed + 5)  # always covers the next tick
        assert held.amount <= d("0.01") * int(elapsed + 2 * 5 + 2)  # and never much more
