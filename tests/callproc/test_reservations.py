"""Concurrent calls of one account cannot spend the same money (issue 6 "reserve money so
concurrent calls of one account can never spend the same balance twice"; architecture §21.5
T23/T24), on SQLite and on PostgreSQL, from one node and from two nodes sharing the database."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

from signaling.store import Account, Store, open_store
from tests.callproc.world import T0, FakeNode, basic_world, d


def balance(store: Store, account_id: int) -> Decimal:
    return store.admin().get(Account, account_id).balance


def test_two_admissions_at_once_on_one_first_period_admit_exactly_one(store_url: str) -> None:
    """Two nodes (each its own store connection and router), one account with money for one
    first period (0.02 of 0.03), admitting at the same instant, many times over."""
    with open_store(store_url) as setup:
        ids = basic_world(setup, balance="0.03")
    stores = [open_store(store_url) for _ in range(2)]
    try:
        nodes = [FakeNode.on(s, node=f"node-{i}") for i, s in enumerate(stores)]
        for round_ in range(10):
            barrier = threading.Barrier(2)
            outcomes: list[str | None] = []

            threads = [
                threading.Thread(target=_admit, args=(node, f"r{round_}-{n}", barrier, outcomes))
                for n, node in enumerate(nodes)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert sorted(outcomes, key=lambda o: o or "") == [None, "Insufficient balance"]
            assert stores[0].held(ids.customer) == d("0.02")
            for node in nodes:  # release: the admitted call ends unanswered (nothing charged)
                for call_id in list(node.router.sessions):
                    node.end(call_id, termination="CallerCancel", status=487)
            assert stores[0].held(ids.customer) == 0
        assert balance(stores[0], ids.customer) == d("0.03")
    finally:
        for s in stores:
            s.close()


def _admit(node: FakeNode, call_id: str, barrier: threading.Barrier, outcomes: list[str | None]) -> None:
    barrier.wait()
    admission = node.admit(call_id, "12125550100")
    outcomes.append(None if admission.rejection is None else admission.rejection.termination)


def test_a_reservation_shows_in_the_store_and_leaves_with_the_cdr(store: Store) -> None:
    ids = basic_world(store, balance="1")
    node = FakeNode.on(store, node="n1")
    node.admit("c", "12125550100")
    (held,) = store.reservations()
    assert (held.call_id, held.node, held.account_id, held.amount, held.answer_time) == (
        "c",
        "n1",
        ids.customer,
        d("0.02"),
        None,
    )
    node.answer("c")
    (held,) = store.reservations()
    assert held.answer_time == T0 and held.amount > d("0.02") - d("0.0000001")
    node.advance(61)
    node.end("c")
    assert store.reservations() == []
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert cdr.fee == d("0.021")
    assert balance(store, ids.customer) == d("0.979")


def test_100_concurrent_calls_never_pass_the_overdraft_and_ledger_equals_cdrs(store: Store) -> None:
    """The issue's property test: 100 calls of one account with random durations and hang-ups
    never leave the balance below -overdraft, and the debits equal the CDR charges exactly."""
    ids = basic_world(
        store,
        balance="1.5",
        credit="0.5",
        customer_rates=(("1", "0.012", 1, "0.012", 1),),
    )
    rng = random.Random(6)
    node = FakeNode.on(store, node="prop", tick=5.0)
    ends: dict[str, float] = {}
    for i in range(100):
        call_id = f"p{i}"
        node.advance(rng.uniform(0, 2))
        if node.admit(call_id, "12125550100").rejection is None:
            if rng.random() < 0.8:
                node.answer(call_id)
            ends[call_id] = node.now + rng.uniform(1, 900)
    while ends:
        call_id, at = min(ends.items(), key=lambda item: item[1])
        del ends[call_id]
        if at > node.now:
            node.advance(at - node.now)
        if call_id not in node.ended:
            node.end(call_id)
        assert balance(store, ids.customer) >= d("-0.5")
        assert store.held(ids.customer) + balance(store, ids.customer) >= d("-0.5")
    node.advance(60)
    final = balance(store, ids.customer)
    assert final >= d("-0.5")
    cdrs = store.cdrs(T0.date(), T0.date())
    assert len(cdrs) == 100
    assert sum((c.fee for c in cdrs), Decimal(0)) == d("1.5") - final
    assert store.reservations() == []
    exhausted = [h for h in node.hangups if h[1] == "Insufficient balance"]
    assert exhausted  # the money did run out for some calls
