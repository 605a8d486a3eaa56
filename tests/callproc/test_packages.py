"""Packages in call processing: free seconds used before money, free credit, the free pool held
by concurrent calls, monthly periods and rent (architecture-billing-payments.md CAP-5.7, CAP-3.3
step (f), §21.4 T19-T22; docs/billing.md §5 "Packages").

The customer rate is the reference's T10 structure: first 60 s at 0.02/min, then 6 s cycles at
0.01/min. Numbers worked out in each test's docstring."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from signaling.billing import Allowance, Tariff, charge
from signaling.store import (
    Account,
    AccountPackage,
    PeriodRate,
    Store,
    WorkCalendar,
    open_store,
)
from tests.callproc.world import NODE_T0, T0, FakeNode, basic_world, d, subscribe, usage

CALLEE = "12125550100"
T10 = Tariff(d("0.02"), 60, d("0.01"), 6)
ZERO = Decimal(0)


def balance(store: Store, account_id: int) -> Decimal:
    return store.admin().get(Account, account_id).balance


def talk(node: FakeNode, call_id: str, seconds: float) -> None:
    assert node.admit(call_id, CALLEE).rejection is None
    node.answer(call_id)
    node.advance(seconds)
    node.end(call_id)


def test_100_free_seconds_left_and_a_130_s_call(store: Store) -> None:
    """CAP-5.7 "free duration is consumed first": 130 s on 60/6 bills 60 + 12 x 6 = 132 s. The
    100 free seconds cover the earliest 100 billed seconds (the first period and 40 s of
    cycles); 32 s are charged at 0.01/min = 0.0053333 (half-up at 7 places)."""
    ids = basic_world(store, balance="10")
    sub = subscribe(store, ids, free_seconds=500, used=400)
    node = FakeNode.on(store, node="n1")
    talk(node, "c", 130)
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.billed_seconds, cdr.free_seconds, cdr.free_credit) == (132, 100, ZERO)
    assert cdr.fee == d("0.0053333")
    assert charge(T10, 130_000, allowance=Allowance(100)).amount == d("0.0053333")
    assert usage(store, sub.id) == (500, ZERO)
    assert balance(store, ids.customer) == d("9.9946667")
    assert store.reservations() == []


def test_t19_ten_minutes_from_500_free_minutes_cost_nothing(sqlite_store: Store) -> None:
    """T19: 500 free minutes, none used; a 10 min call -> fee 0, 490 minutes left."""
    ids = basic_world(sqlite_store, balance="10")
    sub = subscribe(sqlite_store, ids, free_seconds=500 * 60)
    node = FakeNode.on(sqlite_store, node="n1")
    talk(node, "c", 600)
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert (cdr.fee, cdr.free_seconds) == (ZERO, 600)
    used, _ = usage(sqlite_store, sub.id)
    assert (500 * 60 - used) // 60 == 490
    assert balance(sqlite_store, ids.customer) == d("10")


def test_t20_the_last_free_minute_then_the_rate(sqlite_store: Store) -> None:
    """T20: 499 of 500 minutes used; a 180 s call -> 60 s from the pool, 120 s charged at the
    rate (0.01/min x 2 min = 0.02); nothing left."""
    ids = basic_world(sqlite_store, balance="10")
    sub = subscribe(sqlite_store, ids, free_seconds=500 * 60, used=499 * 60)
    node = FakeNode.on(sqlite_store, node="n1")
    talk(node, "c", 180)
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert (cdr.billed_seconds, cdr.free_seconds, cdr.fee) == (180, 60, d("0.02"))
    assert usage(sqlite_store, sub.id) == (500 * 60, ZERO)


def test_t21_free_minutes_used_up_then_the_package_period_rate(sqlite_store: Store) -> None:
    """T21 / T9: with the pool empty the call pays the package's period rate: the "Weekend
    Special" multiplier 0.5 on a non-working day (Saturday 2025-03-15): 60 s at 0.02 x 0.5."""
    store = sqlite_store
    ids = basic_world(store, balance="10")
    admin = store.admin()
    calendar = admin.create(WorkCalendar("weekdays"))
    period = admin.create(PeriodRate("weekend special", calendar.id, non_working_multiplier=d("0.5")))
    saturday = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
    subscribe(store, ids, free_seconds=500 * 60, used=500 * 60, period_rate_id=period.id, start=saturday)
    store.set_parameter("SERVER_WORK_CALENDAR_ENABLED", True)
    store.set_parameter("SERVER_PERIOD_RATE_ENABLED", True)
    node = FakeNode.on(store, node="n1", clock_offset=lambda: saturday.timestamp() + 60 - NODE_T0)
    talk(node, "c", 60)
    (cdr,) = store.cdrs(saturday.date(), saturday.date())
    assert (cdr.rate_source, cdr.free_seconds, cdr.fee) == ("period", 0, d("0.01"))


def test_free_minutes_admit_a_call_with_no_money_and_end_it_when_they_run_out(store: Store) -> None:
    """CAP-3.3 (f) "balance + overdraft sufficient (after free package minutes)": balance 0 and
    100 free seconds admit the call; its longest duration is the longest hold billed within
    the free seconds: 96 s (60 + 6 x 6; 102 s would cost money), so the router asks the node
    to hang up 0.25 s before (HANGUP_LEAD) and the CDR costs nothing."""
    ids = basic_world(store, balance="0")
    sub = subscribe(store, ids, free_seconds=100)
    node = FakeNode.on(store, node="n1")
    admission = node.admit("c", CALLEE)
    assert admission.rejection is None and admission.max_duration == 96.0
    node.answer("c")
    node.advance(200)
    assert node.hangups == [("c", "Insufficient balance")]
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.hold_ms, cdr.billed_seconds, cdr.free_seconds, cdr.fee) == (95750, 96, 96, ZERO)
    assert usage(store, sub.id) == (96, ZERO)
    assert balance(store, ids.customer) == 0


def test_without_free_seconds_and_money_the_call_is_refused(sqlite_store: Store) -> None:
    """T23 still holds with a package whose pool is empty."""
    ids = basic_world(sqlite_store, balance="0")
    subscribe(sqlite_store, ids, free_seconds=100, used=100)
    node = FakeNode.on(sqlite_store, node="n1")
    rejection = node.admit("c", CALLEE).rejection
    assert rejection is not None and rejection.termination == "Insufficient balance"


def test_free_prefixes_decide_which_calls_qualify(sqlite_store: Store) -> None:
    """CAP-5.7 [inferred] "qualifies = destination prefix covered by the package": free minutes
    for 1212 only; a call to 1305 pays its 60 s (0.02), a call to 1212 is free."""
    ids = basic_world(sqlite_store, balance="10")
    sub = subscribe(sqlite_store, ids, free_seconds=500, prefixes=("1212",))
    node = FakeNode.on(sqlite_store, node="n1")
    assert node.admit("other", "13055550100").rejection is None
    node.answer("other")
    node.advance(60)
    node.end("other")
    talk(node, "covered", 60)
    fees = {c.call_id: (c.fee, c.free_seconds) for c in sqlite_store.cdrs(T0.date(), T0.date())}
    assert fees == {"other": (d("0.02"), 0), "covered": (0, 60)}
    assert usage(sqlite_store, sub.id) == (60, ZERO)


def test_the_more_specific_package_is_used_first(sqlite_store: Store) -> None:
    """Two packages cover 1212: the one listing 1212 (longer prefix) before the one for all."""
    ids = basic_world(sqlite_store, balance="10")
    general = subscribe(sqlite_store, ids, free_seconds=500, name="all")
    specific = subscribe(sqlite_store, ids, free_seconds=30, prefixes=("1212",), name="ny")
    node = FakeNode.on(sqlite_store, node="n1")
    talk(node, "c", 60)
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert (cdr.free_seconds, cdr.fee) == (60, ZERO)
    assert usage(sqlite_store, specific.id) == (30, ZERO)
    assert usage(sqlite_store, general.id) == (30, ZERO)


def test_free_credit_pays_before_the_balance(store: Store) -> None:
    """CAP-5.7 "free credit": 0.01 of free credit; a 61 s call costs 0.021 (T10): 0.01 from
    the free credit, 0.011 from the balance (the CDR's fee), and the pool is spent."""
    ids = basic_world(store, balance="1")
    sub = subscribe(store, ids, free_credit="0.01")
    node = FakeNode.on(store, node="n1")
    talk(node, "c", 61)
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.free_credit, cdr.fee) == (d("0.01"), d("0.011"))
    assert usage(store, sub.id) == (0, d("0.01"))
    assert balance(store, ids.customer) == d("0.989")


def test_concurrent_calls_share_the_pool_without_using_a_second_twice(store: Store) -> None:
    """100 free seconds and three 70 s calls at once (each 72 s billed): the calls hold the
    pool as they hold money, so together they use exactly 100 free seconds, and each call's
    fee is its price with the free seconds its CDR shows."""
    ids = basic_world(store, balance="10")
    sub = subscribe(store, ids, free_seconds=100)
    node = FakeNode.on(store, node="n1", tick=5.0)
    for call_id in ("a", "b", "c"):
        assert node.admit(call_id, CALLEE).rejection is None
        node.answer(call_id)
    node.advance(70)
    for call_id in ("a", "b", "c"):
        node.end(call_id)
    cdrs = store.cdrs(T0.date(), T0.date())
    assert sum(c.free_seconds for c in cdrs) == 100
    for cdr in cdrs:
        assert cdr.fee == charge(T10, cdr.hold_ms, allowance=Allowance(cdr.free_seconds)).amount
    assert usage(store, sub.id) == (100, ZERO)
    assert balance(store, ids.customer) == d("10") - sum((c.fee for c in cdrs), Decimal(0))
    assert store.reservations() == []


def test_two_nodes_racing_for_the_last_free_minute_admit_one(store_url: str) -> None:
    """Balance 0 and 60 free seconds (one first period): two nodes admitting at the same instant
    on one account admit exactly one call, ten times over — the free pool is held under the
    account's lock like money (on PostgreSQL: two processes' worth of connections)."""
    with open_store(store_url) as setup:
        ids = basic_world(setup, balance="0")
        subscribe(setup, ids, free_seconds=60)
    stores = [open_store(store_url) for _ in range(2)]
    try:
        nodes = [FakeNode.on(s, node=f"node-{i}") for i, s in enumerate(stores)]
        for round_ in range(10):
            barrier = threading.Barrier(2)
            outcomes: list[str | None] = []
            threads = [
                threading.Thread(target=_admit, args=(node, f"r{round_}-{i}", barrier, outcomes))
                for i, node in enumerate(nodes)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert sorted(outcomes, key=lambda o: o or "") == [None, "Insufficient balance"]
            for node in nodes:  # the admitted call ends unanswered: nothing used
                for call_id in list(node.router.sessions):
                    node.end(call_id, termination="CallerCancel", status=487)
        assert balance(stores[0], ids.customer) == 0
    finally:
        for s in stores:
            s.close()


def _admit(node: FakeNode, call_id: str, barrier: threading.Barrier, outcomes: list[str | None]) -> None:
    barrier.wait()
    rejection = node.admit(call_id, CALLEE).rejection
    outcomes.append(None if rejection is None else rejection.termination)


def test_rent_is_charged_at_each_period_start_and_the_pool_resets(store: Store) -> None:
    """T22: rent 5.00 a month; the subscription started 2025-02-12 10:00:30 with its first
    period's rent unpaid and 499 of 500 minutes used. The first tick charges the first period's
    rent; at 2025-03-12 10:00:30 (T0 + 30 s) a new period starts: rent charged again, the pool
    whole again. A second node ticking later charges nothing more."""
    ids = basic_world(store, balance="20")
    start = datetime(2025, 2, 12, 10, 0, 30, tzinfo=UTC)
    sub = subscribe(store, ids, free_seconds=500 * 60, used=499 * 60, rent="5", start=start, rent_paid=False)
    node = FakeNode.on(store, node="n1", tick=5.0)
    node.router.start(node.now)
    node.advance(6)
    assert balance(store, ids.customer) == d("15")
    node.router.refresh()
    node.advance(34)  # past the boundary, and a tick after it
    node.router.refresh()
    node.advance(6)
    assert balance(store, ids.customer) == d("10")
    after = store.admin().get(AccountPackage, sub.id)
    assert (after.period_start, after.free_seconds_used, after.rent_period_start) == (
        start + timedelta(days=28),
        0,
        start + timedelta(days=28),
    )
    rents = store.admin().payments(account_id=ids.customer, kind="rent")
    assert [(p.amount, p.operator, p.memo) for p in rents] == [
        (d("-5"), "billing", "package pkg: rent of the period from 2025-02-12 10:00:30 UTC"),
        (d("-5"), "billing", "package pkg: rent of the period from 2025-03-12 10:00:30 UTC"),
    ]
    other = FakeNode.on(store, node="n2", tick=5.0)
    other.now = node.now
    other.router.start(other.now)
    other.advance(11)
    assert balance(store, ids.customer) == d("10")


def test_periods_missed_while_no_node_ran_are_each_charged_once(sqlite_store: Store) -> None:
    """Rented for its period of 2024-12-12; the node starts on 2025-03-12 10:00 (T0): the
    periods of 2025-01-12 and 2025-02-12 are due (the one of 2025-03-12 10:00:30 is not yet)."""
    ids = basic_world(sqlite_store, balance="20")
    start = datetime(2024, 12, 12, 10, 0, 30, tzinfo=UTC)
    sub = subscribe(sqlite_store, ids, free_seconds=60, used=60, rent="5", start=start)
    node = FakeNode.on(sqlite_store, node="n1", tick=5.0)
    node.router.start(node.now)
    node.advance(6)
    assert balance(sqlite_store, ids.customer) == d("10")
    assert usage(sqlite_store, sub.id) == (0, ZERO)
    assert sqlite_store.admin().get(AccountPackage, sub.id).period_start == datetime(
        2025, 2, 12, 10, 0, 30, tzinfo=UTC
    )


def test_a_call_admitted_before_the_period_turned_keeps_its_free_seconds(sqlite_store: Store) -> None:
    """The pool of the old period pays the call admitted in it; the new period's pool is whole
    afterwards (the call's use is not counted against it). Subscription of 2025-02-12
    10:00:30: the call starts at T0, the period turns 30 s into it, it ends at 50 s."""
    store = sqlite_store
    ids = basic_world(store, balance="10")
    start = datetime(2025, 2, 12, 10, 0, 30, tzinfo=UTC)
    sub = subscribe(store, ids, free_seconds=500, used=0, start=start)
    node = FakeNode.on(store, node="n1", tick=5.0)
    assert node.admit("c", CALLEE).rejection is None
    node.answer("c")
    node.advance(40)
    node.end("c")
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.free_seconds, cdr.fee) == (60, ZERO)
    after = store.admin().get(AccountPackage, sub.id)
    assert (after.period_start, after.free_seconds_used) == (start + timedelta(days=28), 0)


def test_a_recovered_call_uses_the_free_seconds_it_held(sqlite_store: Store) -> None:
    """A node dies during a call on free minutes; its restart bills the call to the last
    heartbeat (20 s: within the first period, 60 free seconds) and counts them used."""
    store = sqlite_store
    ids = basic_world(store, balance="10")
    sub = subscribe(store, ids, free_seconds=500)
    node = FakeNode.on(store, node="n1", tick=5.0)
    assert node.admit("c", CALLEE).rejection is None
    node.answer("c")
    node.advance(22)  # heartbeats at 5, 10, 15, 20 s
    restarted = FakeNode.on(store, node="n1", tick=5.0)
    restarted.now = node.now
    assert restarted.router.start(restarted.now) == 1
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.termination_reason, cdr.hold_ms) == ("NodeRestart", 20000)
    assert (cdr.free_seconds, cdr.fee) == (60, ZERO)
    assert usage(store, sub.id) == (60, ZERO)
    assert balance(store, ids.customer) == d("10")


def test_the_reservation_counts_the_free_seconds_other_calls_hold(sqlite_store: Store) -> None:
    """Balance 0 and 100 free seconds: one call may last 96 s; while it is up (holding the
    first period, 60 s, of the pool) a second call finds 40 free seconds, less than a first
    period, and is refused."""
    ids = basic_world(sqlite_store, balance="0")
    subscribe(sqlite_store, ids, free_seconds=100)
    node = FakeNode.on(sqlite_store, node="n1")
    first = node.admit("first", CALLEE)
    assert first.rejection is None and first.max_duration == 96.0
    second = node.admit("second", CALLEE).rejection
    assert second is not None and second.termination == "Insufficient balance"
    node.end("first", termination="CallerCancel", status=487)
    assert node.admit("third", CALLEE).rejection is None


def test_a_subscription_ended_during_a_call_still_pays_what_the_call_held(sqlite_store: Store) -> None:
    """The call took its first period (60 s) of the pool at admission; the operator ends the
    subscription before the answer: the 50 s call still uses those 60 free seconds (fee 0) and
    takes no more."""
    store = sqlite_store
    ids = basic_world(store, balance="10")
    sub = subscribe(store, ids, free_seconds=500)
    node = FakeNode.on(store, node="n1", tick=5.0)
    assert node.admit("c", CALLEE).rejection is None
    store.admin().unsubscribe(sub.id, now=T0)
    node.answer("c")
    node.advance(50)
    node.end("c")
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.free_seconds, cdr.fee) == (60, ZERO)
    assert usage(store, sub.id) == (60, ZERO)


def test_random_concurrent_calls_never_overuse_the_pool_or_the_money(store: Store) -> None:
    """The issue's property, with a package: 60 calls of one account (balance 1, overdraft 0.5,
    1000 free seconds) with random answers and lengths, ticking as they go: the free seconds
    used are exactly the subscription's count and never above the pool, the balance never goes
    below -overdraft, and the debits equal the CDR fees exactly."""
    ids = basic_world(store, balance="1", credit="0.5")
    sub = subscribe(store, ids, free_seconds=1000)
    rng = random.Random(66)
    node = FakeNode.on(store, node="prop", tick=5.0)
    ends: dict[str, float] = {}
    for i in range(60):
        call_id = f"p{i}"
        node.advance(rng.uniform(0, 3))
        if node.admit(call_id, CALLEE).rejection is None:
            if rng.random() < 0.8:
                node.answer(call_id)
            ends[call_id] = node.now + rng.uniform(1, 600)
    while ends:
        call_id, at = min(ends.items(), key=lambda item: item[1])
        del ends[call_id]
        if at > node.now:
            node.advance(at - node.now)
        if call_id not in node.ended:
            node.end(call_id)
        assert balance(store, ids.customer) >= d("-0.5")
    node.advance(30)
    cdrs = store.cdrs(T0.date(), T0.date())
    used, _ = usage(store, sub.id)
    assert sum(c.free_seconds for c in cdrs) == used <= 1000
    assert used > 900  # the pool was drawn on, not merely left alone
    assert sum((c.fee for c in cdrs), Decimal(0)) == d("1") - balance(store, ids.customer)
    assert store.reservations() == []
