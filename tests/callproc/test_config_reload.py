"""Configuration is cached in memory and refreshed on change without dropping calls (architecture
CAP-7.6, §21.8 T60): the per-call path reads no configuration from the database; a rate changed
in management prices the next call, while a call in progress keeps the rate it was admitted with."""

from __future__ import annotations

from dataclasses import replace

from signaling.store import Rate, RoutingGateway, Store
from tests.callproc.world import T0, FakeNode, basic_world, d


def test_t60_a_changed_rate_prices_the_next_call_and_not_the_running_one(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, balance="100", customer_rates=(("1", "0.6", 1, "0.6", 1),))
    node = FakeNode.on(sqlite_store)
    node.admit("before", "12125550100")
    node.answer("before")
    admin = sqlite_store.admin()
    (rate,) = admin.rates(ids.retail, "1")
    admin.update(replace(rate, first_time_rate=d("1.2"), billing_rate=d("1.2")))
    assert node.router.refresh()  # the version moved: a new snapshot
    assert not node.router.refresh()  # and only once
    node.admit("after", "12125550100")
    node.answer("after")
    node.advance(10)
    node.end("before")
    node.end("after")
    fees = {c.call_id: c.fee for c in sqlite_store.cdrs(T0.date(), T0.date())}
    assert fees == {"before": d("0.10"), "after": d("0.20")}


def test_the_per_call_path_reads_no_configuration(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="100")
    node = FakeNode.on(sqlite_store)
    statements: list[str] = []
    conn = sqlite_store.db._connection()
    conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    try:
        node.admit("c", "12125550100")
        node.answer("c")
        node.advance(3)
        node.end("c")
    finally:
        conn.set_trace_callback(None)  # type: ignore[attr-defined]
    touched = " ".join(statements).lower()
    for table in (
        "rate ",
        "rate_group",
        "mapping_gateway",
        "routing_gateway",
        "system_parameter",
        "config_version",
    ):
        assert f"from {table}" not in touched, table
    assert "reservation" in touched and "insert into cdr" in touched


def test_a_new_rate_group_and_gateway_are_used_without_restart(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, balance="100")
    node = FakeNode.on(sqlite_store)
    assert node.admit("a", "442071234567").rejection is not None  # no UK rate yet
    admin = sqlite_store.admin()
    admin.add_rates([Rate(ids.retail, "44", billing_rate=d("0.03"))])
    admin.create(RoutingGateway("uk", host="127.0.0.1", prefixes=("44",)))
    node.router.refresh()
    admission = node.admit("b", "442071234567")
    assert admission.rejection is None and [r.gateway for r in admission.routes] == ["uk"]
