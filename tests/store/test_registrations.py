"""Registered phones shared by the nodes of one database (migration 0007, docs/routing.md
"Phones on several nodes"), on SQLite and a real PostgreSQL server: each node announces itself
and writes its bindings; the others read them, only when they moved; expired bindings and the
bindings of a node that left go; one cluster secret for every node."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signaling.store import Store, open_store
from signaling.store.registrations import StoredBinding

T0 = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)
ADDRESS_A = ("10.0.0.1", 5060, "UDP")
ADDRESS_B = ("10.0.0.2", 5062, "UDP")


def binding(
    aor: str, node: str, *, contact: str = "", expires: float = 300, at: datetime = T0
) -> StoredBinding:
    return StoredBinding(
        aor=aor,
        node=node,
        contact=contact or f"sip:{aor}@192.168.1.20:5060",
        source_host="203.0.113.7",
        source_port=40123,
        transport="UDP",
        q="1",
        expires_at=at + timedelta(seconds=expires),
        updated_at=at,
    )


def test_a_node_reads_the_bindings_another_node_wrote(store: Store) -> None:
    b = store.sync_registrations("node-b", ADDRESS_B, {"2001": [binding("2001", "node-b")]}, T0, {})
    a = store.sync_registrations("node-a", ADDRESS_A, {}, T0, {})
    assert b.secret == a.secret and len(a.secret) == 32
    assert {n.name: (n.host, n.port, n.transport) for n in a.nodes} == {
        "node-a": ADDRESS_A,
        "node-b": ADDRESS_B,
    }
    (row,) = a.bindings["node-b"]
    assert (row.aor, row.node, row.contact, row.source_host, row.source_port, row.transport) == (
        "2001",
        "node-b",
        "sip:2001@192.168.1.20:5060",
        "203.0.113.7",
        40123,
        "UDP",
    )
    assert row.expires_at == T0 + timedelta(seconds=300) and row.updated_at == T0
    assert "node-a" not in a.bindings  # a node does not read its own back


def test_only_nodes_whose_bindings_moved_are_read_again(store: Store) -> None:
    store.sync_registrations("node-b", ADDRESS_B, {"2001": [binding("2001", "node-b")]}, T0, {})
    first = store.sync_registrations("node-a", ADDRESS_A, {}, T0, {})
    known = {n.name: n.bindings_version for n in first.nodes}
    again = store.sync_registrations("node-a", ADDRESS_A, {}, T0 + timedelta(seconds=2), known)
    assert again.bindings == {}  # nothing moved: nothing read
    store.sync_registrations(
        "node-b", ADDRESS_B, {"2002": [binding("2002", "node-b")]}, T0 + timedelta(seconds=3), {}
    )
    moved = store.sync_registrations("node-a", ADDRESS_A, {}, T0 + timedelta(seconds=4), known)
    assert sorted(b.aor for b in moved.bindings["node-b"]) == ["2001", "2002"]


def test_a_refresh_replaces_and_an_unregister_removes_the_bindings_of_an_aor(store: Store) -> None:
    store.sync_registrations(
        "node-b", ADDRESS_B, {"2001": [binding("2001", "node-b", contact="sip:old@x")]}, T0, {}
    )
    later = T0 + timedelta(seconds=60)
    store.sync_registrations(
        "node-b", ADDRESS_B, {"2001": [binding("2001", "node-b", contact="sip:new@y", at=later)]}, later, {}
    )
    (row,) = store.sync_registrations("node-a", ADDRESS_A, {}, later, {}).bindings["node-b"]
    assert (row.contact, row.expires_at) == ("sip:new@y", later + timedelta(seconds=300))
    store.sync_registrations("node-b", ADDRESS_B, {"2001": []}, later, {})
    assert store.sync_registrations("node-a", ADDRESS_A, {}, later, {}).bindings["node-b"] == []


def test_expired_bindings_are_neither_read_nor_kept(store: Store) -> None:
    store.sync_registrations("node-b", ADDRESS_B, {"2001": [binding("2001", "node-b", expires=60)]}, T0, {})
    after = T0 + timedelta(seconds=61)
    assert store.sync_registrations("node-a", ADDRESS_A, {}, after, {}).bindings["node-b"] == []
    _, rows = store.registered(["2001"], T0)
    assert rows == []  # removed by the sync, not only filtered


def test_a_restarted_node_forgets_what_its_previous_run_wrote(store: Store) -> None:
    store.sync_registrations("node-b", ADDRESS_B, {"2001": [binding("2001", "node-b")]}, T0, {})
    store.sync_registrations("node-b", ADDRESS_B, {}, T0 + timedelta(seconds=5), {}, restart=True)
    assert store.registered(["2001"], T0)[1] == []


def test_a_node_that_leaves_takes_its_row_and_bindings(store: Store) -> None:
    store.sync_registrations("node-b", ADDRESS_B, {"2001": [binding("2001", "node-b")]}, T0, {})
    store.leave_cluster("node-b")
    nodes, rows = store.registered(["2001"], T0)
    assert nodes == [] and rows == []


def test_the_heartbeat_moves_and_the_start_time_stays(store: Store) -> None:
    store.sync_registrations("node-b", ADDRESS_B, {}, T0, {})
    (node,) = store.sync_registrations(
        "node-b", ("10.0.0.9", 5070, "UDP"), {}, T0 + timedelta(seconds=7), {}
    ).nodes
    assert (node.host, node.port, node.started_at, node.alive_at) == (
        "10.0.0.9",
        5070,
        T0,
        T0 + timedelta(seconds=7),
    )


def test_two_connections_racing_get_one_secret(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(2)]
    try:
        secrets = {
            s.sync_registrations(f"node-{i}", ADDRESS_A, {}, T0, {}).secret for i, s in enumerate(stores)
        }
        assert len(secrets) == 1
    finally:
        for s in stores:
            s.close()


def test_the_routing_analysis_reads_every_nodes_bindings_of_a_phone(store: Store) -> None:
    store.sync_registrations("node-a", ADDRESS_A, {"alice": [binding("alice", "node-a")]}, T0, {})
    store.sync_registrations("node-b", ADDRESS_B, {"2001": [binding("2001", "node-b")]}, T0, {})
    nodes, rows = store.registered(["2001", "alice"], T0)
    assert [n.name for n in nodes] == ["node-a", "node-b"]
    assert [(r.node, r.aor) for r in rows] == [("node-a", "alice"), ("node-b", "2001")]
