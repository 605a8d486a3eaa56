"""Rate of connected vs rate of response in call processing (architecture-billing-payments.md
CAP-5.6, open question 5; docs/billing.md §3 and §5).

A rate may carry a rate of response, billed when the callee answered (200 OK) but the call never
connected end to end: here, the caller never acknowledged the answer (the B2BUA's
``CallRecord.established``). The customer rate: connected = T10 (first 60 s at 0.02/min, then
6 s cycles at 0.01/min); response = a 0.05 connection fee and nothing per minute."""

from __future__ import annotations

from decimal import Decimal

from signaling.store import Account, Rate, Store
from tests.callproc.world import T0, FakeNode, basic_world, d

CALLEE = "12125550100"


def _with_response_rate(store: Store, balance: str = "1") -> int:
    ids = basic_world(store, balance=balance, customer_rates=())
    store.admin().add_rates(
        [
            Rate(
                ids.retail,
                "1",
                first_time_rate=d("0.02"),
                first_time_duration=60,
                billing_rate=d("0.01"),
                billing_cycle=6,
                response_first_time_rate=Decimal(0),
                response_first_time_duration=0,
                response_billing_rate=Decimal(0),
                response_billing_cycle=1,
                response_connection_fee=d("0.05"),
            )
        ]
    )
    return ids.customer


def _balance(store: Store, account_id: int) -> Decimal:
    return store.admin().get(Account, account_id).balance


def test_a_connected_call_pays_the_rate_of_connected(sqlite_store: Store) -> None:
    """61 s, acknowledged: T10 -> 0.021."""
    account = _with_response_rate(sqlite_store)
    node = FakeNode.on(sqlite_store, node="n1")
    assert node.admit("c", CALLEE).rejection is None
    node.answer("c", acked=True)
    node.advance(61)
    node.end("c")
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert (cdr.fee, cdr.connection_fee, cdr.billing_cycle) == (d("0.021"), Decimal(0), 6)
    assert _balance(sqlite_store, account) == d("0.979")


def test_an_answer_the_caller_never_acknowledged_pays_the_rate_of_response(store: Store) -> None:
    """The 200 OK came, the caller's ACK never did (the node ends the call at its ACK timeout,
    32 s): the rate of response's connection fee, 0.05, not 32 s of the connected rate (0.02).
    The admission reserved 0.05 (the dearer first period of the two), so the fee is not capped."""
    account = _with_response_rate(store)
    node = FakeNode.on(store, node="n1")
    assert node.admit("c", CALLEE).rejection is None
    assert store.held(account) == d("0.05")
    node.answer("c", acked=False)
    node.advance(32)
    node.end("c", termination="ACK timeout", ended_by="switch")
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.fee, cdr.connection_fee, cdr.billed_seconds) == (d("0.05"), d("0.05"), 32)
    assert _balance(store, account) == d("0.95")


def test_without_a_rate_of_response_an_unconnected_answer_pays_the_connected_rate(
    sqlite_store: Store,
) -> None:
    """A rate without response fields: the unacknowledged 32 s pay T10's first period, 0.02."""
    ids = basic_world(sqlite_store, balance="1")
    node = FakeNode.on(sqlite_store, node="n1")
    assert node.admit("c", CALLEE).rejection is None
    node.answer("c", acked=False)
    node.advance(32)
    node.end("c", termination="ACK timeout", ended_by="switch")
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert cdr.fee == d("0.02")
    assert _balance(sqlite_store, ids.customer) == d("0.98")


def test_an_unanswered_call_pays_neither(sqlite_store: Store) -> None:
    """T17: no 200 OK, no charge, whatever the rate of response."""
    account = _with_response_rate(sqlite_store)
    node = FakeNode.on(sqlite_store, node="n1")
    assert node.admit("c", CALLEE).rejection is None
    node.try_route("c")
    node.advance(10)
    node.fail("c", 486)
    node.end("c", termination="SIP 486", ended_by="callee", status=486)
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert cdr.fee == 0
    assert _balance(sqlite_store, account) == d("1")
