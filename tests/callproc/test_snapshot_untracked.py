"""The snapshot stays out of the cyclic garbage collector's walks, and is freed without it
(signaling/untracked.py: the rule; docs/routing.md "Collector pauses").

A full collection walks every tracked object: a million-prefix snapshot made it stall the loop
0.3-0.5 s (bench/routing.py). The rate tables, their terms, tariffs and the rates lookups make,
and the routing caches' entries, are untracked; they form no reference ring, so a replaced
snapshot is freed by reference counting alone (with the collector off, its memory comes back).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from signaling import untracked
from signaling.billing import RateTerms
from signaling.callproc import routes
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.snapshot import load_snapshot
from signaling.store import Rate, RateGroup, Store
from tests.callproc.world import basic_world

JAN = datetime(2025, 1, 1, tzinfo=UTC)


def test_the_compiled_helpers_are_built() -> None:
    # if this fails, run `python setup.py build_ext --inplace`
    from signaling.callproc import _planner  # noqa: PLC0415 (the extension itself)

    assert untracked.ENABLED
    assert _planner.__file__ is not None and _planner.__file__.endswith(".so")
    assert routes.COMPILED or os.environ.get("SOFTSWITCH_COMPILED_ROUTING") == "0"


@pytest.fixture
def collector_off() -> Iterator[None]:
    was = gc.isenabled()
    with warnings.catch_warnings():  # what earlier tests left to the collector is not ours
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _deck(store: Store) -> int:
    admin = store.admin()
    group_id = admin.create(RateGroup("deck")).id
    rng = random.Random(3)
    prefixes = {f"44{rng.randint(0, 10**6)}" for _ in range(400)}
    admin.add_rates(
        [Rate(group_id, p, destination=f"D{p[:4]}", billing_rate=Decimal("0.0123")) for p in sorted(prefixes)]
        + [Rate(group_id, "1", effective_time=JAN, billing_rate=Decimal("0.3"))]
        + [Rate(group_id, "1", effective_time=JAN + timedelta(days=9), billing_rate=Decimal("0.2"))]
    )
    return group_id


def test_the_rate_tables_and_the_rates_lookups_make_are_untracked(sqlite_store: Store) -> None:
    group_id = _deck(sqlite_store)
    snap = load_snapshot(sqlite_store)
    group = snap.rate_groups[group_id]
    entries, _ = group.table()
    assert snap.untracked
    assert not gc.is_tracked(entries)
    values = list(entries.values())
    assert any(type(v) is RateTerms for v in values) and any(type(v) is tuple for v in values)
    for value in values:
        assert not gc.is_tracked(value)
        if type(value) is tuple:  # the versions of prefix 1
            assert not any(gc.is_tracked(part) for part in value)
            assert not any(gc.is_tracked(rate) for rate in value[1])
        else:
            assert type(value) is RateTerms
            assert not gc.is_tracked(value.connected)
    prefix = next(p for p, v in entries.items() if type(v) is RateTerms)
    made = group.lookup(prefix + "123", JAN)
    assert made is not None and made.prefix == prefix
    assert not gc.is_tracked(made)
    assert not gc.is_tracked(entries)  # (putting the rate in re-tracked it: untracked again)


def test_without_untracking_the_tables_are_walked_as_before(sqlite_store: Store) -> None:
    group_id = _deck(sqlite_store)
    snap = load_snapshot(sqlite_store, untracked=False)
    entries, _ = snap.rate_groups[group_id].table()
    assert not snap.untracked
    assert gc.is_tracked(entries)
    assert all(gc.is_tracked(v) for v in entries.values())


def test_a_replaced_snapshot_is_freed_without_the_collector(sqlite_store: Store, collector_off: None) -> None:
    """Load, route calls (filling the rate, vendor, candidate and route caches), drop: with the
    collector off, the memory comes back. A reference ring through the snapshot would keep it
    (and through untracked objects, for ever)."""
    basic_world(sqlite_store, gateways=({"name": "carrier-a", "prefixes": ("1",)}, {"name": "b"}))
    _deck(sqlite_store)

    def use_once() -> None:
        snap = load_snapshot(sqlite_store)
        cache = snap.routing_cache = routes.RouteCache(snap, compiled=True)
        assert cache.planner is not None
        ingress = snap.mapping_by_name("cust")
        for number in ("15551234", "4412345678", "1999"):
            plan = routes.plan_routes(
                snap, ingress, number, at=JAN, now=1000.0, day=1, counters=Counters(),
                quality=Quality(600, 10, 600, 10), customer_price=None, vendor_funds=lambda _: None,
            )  # fmt: skip
            assert plan.ordered
        for group in snap.rate_groups.values():
            for prefix in list(group.table()[0])[:200]:
                group.lookup(prefix + "0", JAN)

    use_once()  # the interpreter's own one-time allocations (interned names, caches)
    before = sys.getallocatedblocks()
    for _ in range(5):
        use_once()
    grown = sys.getallocatedblocks() - before
    assert grown < 500, f"{grown} memory blocks kept: something of the snapshot outlives it"
