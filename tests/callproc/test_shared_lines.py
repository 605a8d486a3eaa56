"""Line and call-rate limits shared by two nodes on one database (issue 6: "two signaling
processes sharing one database"; architecture-billing-payments.md CAP-2.6, T29, T30, T36;
docs/routing.md "Counters and quality"), on SQLite and on a real PostgreSQL server.

Each node is its own StoreRouter with its own store connection (what two `softswitch run`
processes have), on the same fake wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from signaling.store import MappingGateway, Store, open_store
from tests.callproc.world import FakeNode, basic_world

CALLEE = "12125550100"


@contextmanager
def two_nodes(url: str, **world: object) -> Iterator[tuple[FakeNode, FakeNode, Store]]:
    stores = [open_store(url) for _ in range(2)]
    try:
        basic_world(stores[0], **world)  # type: ignore[arg-type]
        nodes = [FakeNode.on(s, node=f"node-{i}", tick=5.0) for i, s in enumerate(stores)]
        for node in nodes:
            node.router.start(node.now)
        yield nodes[0], nodes[1], stores[0]
    finally:
        for s in stores:
            s.close()


def both(a: FakeNode, b: FakeNode, seconds: float) -> None:
    """Both nodes live through ``seconds`` (their ticks: heartbeats, shared counts)."""
    a.advance(seconds)
    b.advance(seconds)


def termination(node: FakeNode, call_id: str) -> str | None:
    rejection = node.admit(call_id, CALLEE).rejection
    return None if rejection is None else rejection.termination


def test_a_mapping_gateway_line_limit_holds_across_nodes(store_url: str) -> None:
    """T29 across nodes: `Max Concurrent Calls` 2 on the customer's gateway; one call on each
    node fills it, a third is refused on either node (503 "Concurrent call limit"); when one
    call ends the next is admitted."""
    with two_nodes(store_url, mapping={"max_calls": 2}) as (a, b, _):
        assert termination(a, "a1") is None
        assert termination(b, "b1") is None
        assert termination(a, "a2") == "Concurrent call limit"
        rejection = b.admit("b2", CALLEE).rejection
        assert rejection is not None and (rejection.status, rejection.termination) == (
            503,
            "Concurrent call limit",
        )
        a.end("a1")
        assert termination(b, "b3") is None


def test_an_account_line_limit_holds_across_nodes(store_url: str) -> None:
    with two_nodes(store_url) as (a, b, store):
        account = store.admin().find_account("1001")
        store.admin().update(replace(account, max_calls=1))
        for node in (a, b):
            node.router.refresh()
        assert termination(a, "a1") is None
        assert termination(b, "b1") == "Concurrent call limit"


def test_calls_per_second_hold_across_nodes(store_url: str) -> None:
    """T30 across nodes: `Max CPS` 2: two admissions in one second (one per node) pass, the
    third in that second is refused ("CPS limit"), one second later it passes."""
    with two_nodes(store_url, mapping={"max_cps": 2}) as (a, b, _):
        assert termination(a, "a1") is None
        assert termination(b, "b1") is None
        assert termination(a, "a2") == "CPS limit"
        both(a, b, 1.0)
        assert termination(a, "a3") is None


def test_a_carrier_full_on_another_node_is_skipped_at_admission(store_url: str) -> None:
    """T36 across nodes: carrier-a (priority 1) has one line; node A's call holds it, so node
    B's call is routed to carrier-b; with carrier-b full too, AllGatewayBusy."""
    gateways = (
        {"name": "carrier-a", "prefixes": ("1",), "priority": 1, "max_calls": 1},
        {"name": "carrier-b", "prefixes": ("1",), "priority": 2, "max_calls": 1},
    )
    with two_nodes(store_url, gateways=gateways) as (a, b, _):
        assert [r.gateway for r in a.admit("a1", CALLEE).routes] == ["carrier-a", "carrier-b"]
        a.try_route("a1")
        assert [r.gateway for r in b.admit("b1", CALLEE).routes] == ["carrier-b"]
        b.try_route("b1")
        assert termination(a, "a2") == "AllGatewayBusy"
        a.end("a1", termination="CallerCancel", status=487)  # carrier-a free again
        assert [r.gateway for r in b.admit("b2", CALLEE).routes] == ["carrier-a"]  # b1 holds carrier-b


def test_a_failover_attempt_onto_a_carrier_another_node_filled_is_skipped(store_url: str) -> None:
    """carrier-a (no limit) fails on both nodes' calls; node B fails over first and takes
    carrier-b's only line: node A's failover to carrier-b is refused by the router (the node
    then tries its next route, or fails the call), until node B's call gives the line back."""
    gateways = (
        {"name": "carrier-a", "prefixes": ("1",), "priority": 1},
        {"name": "carrier-b", "prefixes": ("1",), "priority": 2, "max_calls": 1},
    )
    with two_nodes(store_url, gateways=gateways) as (a, b, _):
        a_routes = a.admit("a1", CALLEE).routes
        b_routes = b.admit("b1", CALLEE).routes
        assert [r.gateway for r in a_routes] == [r.gateway for r in b_routes] == ["carrier-a", "carrier-b"]
        for node, call_id in ((a, "a1"), (b, "b1")):
            node.try_route(call_id)
            node.fail(call_id, 503)
        assert b.router.attempt_started("b1", b_routes[1], b.now) is True
        assert a.router.attempt_started("a1", a_routes[1], a.now) is False
        b.current["b1"] = b_routes[1]
        b.fail("b1", 486)  # the attempt's line is given back at its failure
        assert a.router.attempt_started("a1", a_routes[1], a.now) is True


def test_the_lines_of_a_dead_node_are_free_again_after_its_leases_lapse(store_url: str) -> None:
    """Node A takes the gateway's only line and dies (no more heartbeats). Node B is refused
    while A's lease is live (line_ttl: three ticks, 15 s), admitted once it lapsed; A's calls,
    recovered by B after `stale_after`, take their leases with them. A node that is alive keeps
    its lines however long its call lasts."""
    with two_nodes(store_url, mapping={"max_calls": 1}) as (a, b, store):
        assert termination(a, "a1") is None
        both(a, b, 30)  # A alive and ticking: its lease stays live
        assert termination(b, "b1") == "Concurrent call limit"
        a.end("a1")
        assert termination(a, "a2") is None  # A takes the line again, then dies
        b.advance(10)
        assert termination(b, "b2") == "Concurrent call limit"
        b.advance(6)  # 16 s without A's heartbeat
        assert termination(b, "b3") is None
        b.advance(130)  # A silent past stale_after: B recovers its call and its leases go
        with store.db.transaction(write=False) as tx:
            assert [r[0] for r in tx.execute("SELECT call_id FROM line_lease")] == ["b3"]


def test_other_nodes_lines_count_in_the_line_usage_order(store_url: str) -> None:
    """Line usage (step 6, F.6-60) counts every node's lines: with 5 of carrier-a's 10 lines
    held on node A, node B (after a tick) orders the idle carrier-b first, same priority."""
    gateways = (
        {"name": "carrier-a", "prefixes": ("1",), "max_calls": 10},
        {"name": "carrier-b", "prefixes": ("1",), "max_calls": 10},
    )
    with two_nodes(store_url, gateways=gateways) as (a, b, _):
        for i in range(5):  # node A's calls all on carrier-a (say carrier-b failed them)
            routes = a.admit(f"a{i}", CALLEE).routes
            a.try_route(f"a{i}", [r.gateway for r in routes].index("carrier-a"))
        assert b.admit("before", CALLEE).routes[0].gateway == "carrier-a"  # B does not know yet
        b.end("before", termination="CallerCancel", status=487)
        both(a, b, 5.0)
        assert b.admit("after", CALLEE).routes[0].gateway == "carrier-b"


def test_calls_without_limits_lease_nothing(sqlite_store: Store) -> None:
    """Nothing limited, nothing shared: no lease rows, no extra work in the reservation."""
    basic_world(sqlite_store)
    node = FakeNode.on(sqlite_store, node="n1")
    assert node.admit("c", CALLEE).rejection is None
    node.try_route("c")
    with sqlite_store.db.transaction(write=False) as tx:
        assert tx.scalar("SELECT count(*) FROM line_lease") == 0
    assert sqlite_store.admin().list(MappingGateway)[0].max_calls is None
