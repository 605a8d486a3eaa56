"""Registered phones and the nodes that hold them, shared through the store (migration 0007).

Theory of operation (docs/routing.md, "Phones on several nodes", has the rules and the reasons):

* A **node** announces itself at every sync (:func:`announce`): the SIP address the other nodes
  reach it at and ``alive_at``, its heartbeat. A node whose heartbeat is older than a few sync
  periods is dead for the others; a node that stops cleanly removes its row (:func:`leave`).
* Each node writes the **bindings** of the phones registered with it (its registrar lives in its
  memory): per address-of-record, the rows are replaced as a whole (:func:`replace_bindings`),
  so a refreshed, moved or removed contact needs no diff. Every such write bumps the node's
  ``bindings_version``, so a reader re-reads only the nodes whose bindings moved
  (:func:`bindings_of`).
* The **cluster secret** is made once, by the first node that asks (:func:`secret`): 32 random
  bytes, kept in the store; it keys the HMAC of a call forwarded between nodes.

Rows of bindings carry wall-clock times (UTC); nodes compare them with their own clocks, so the
nodes of one database need synchronised clocks (NTP), as for the line leases.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from signaling.store import codec
from signaling.store.codec import Kind
from signaling.store.db import Tx

#: Bytes of the cluster secret (HMAC-SHA256 key).
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A signalling node of the database, as it announced itself."""

    name: str
    host: str
    port: int
    transport: str
    started_at: datetime
    alive_at: datetime
    bindings_version: int


@dataclass(frozen=True, slots=True)
class StoredBinding:
    """One registered contact of a phone at one node."""

    aor: str
    node: str
    contact: str
    source_host: str
    source_port: int
    transport: str
    #: the contact's q-value as registered ("1.0": text, never a float column)
    q: str
    expires_at: datetime
    updated_at: datetime


def _time(tx: Tx, value: datetime) -> object:
    return codec.encode(tx.dialect, Kind.TIME, value)


def _decode_time(tx: Tx, value: object) -> datetime:
    out = codec.decode_time(tx.dialect, value)
    assert out is not None
    return out


def _binding(tx: Tx, row: tuple[object, ...]) -> StoredBinding:
    aor, node, contact, host, port, transport, q, expires, updated = row
    return StoredBinding(
        str(aor),
        str(node),
        str(contact),
        str(host),
        int(str(port)),
        str(transport),
        str(q),
        _decode_time(tx, expires),
        _decode_time(tx, updated),
    )


_BINDING_COLUMNS = "aor, node, contact, source_host, source_port, transport, q, expires_at, updated_at"


def announce(tx: Tx, name: str, address: tuple[str, int, str], now: datetime) -> None:
    """Create or refresh the node's row: its SIP address and heartbeat (``started_at`` is kept)."""
    stamp = _time(tx, now)
    tx.execute(
        "INSERT INTO node (name, sip_host, sip_port, transport, started_at, alive_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET sip_host = excluded.sip_host, "
        "sip_port = excluded.sip_port, transport = excluded.transport, alive_at = excluded.alive_at",
        (name, *address, stamp, stamp),
    )


def nodes(tx: Tx) -> list[NodeRecord]:
    rows = tx.execute(
        "SELECT name, sip_host, sip_port, transport, started_at, alive_at, bindings_version FROM node "
        "ORDER BY name"
    )
    return [
        NodeRecord(str(n), str(h), int(p), str(t), _decode_time(tx, s), _decode_time(tx, a), int(v))
        for n, h, p, t, s, a, v in rows
    ]


def leave(tx: Tx, name: str) -> None:
    """The node stops: its bindings and its row go (its phones are not reachable through it)."""
    tx.execute("DELETE FROM registration WHERE node = ?", (name,))
    tx.execute("DELETE FROM node WHERE name = ?", (name,))


def forget_node_bindings(tx: Tx, node: str) -> None:
    """Drop every binding the node wrote (a restarted node: its registrar starts empty)."""
    tx.execute("DELETE FROM registration WHERE node = ?", (node,))
    tx.execute("UPDATE node SET bindings_version = bindings_version + 1 WHERE name = ?", (node,))


def replace_bindings(tx: Tx, node: str, changes: Mapping[str, Sequence[StoredBinding]]) -> None:
    """The node's bindings of each address-of-record of ``changes`` become the ones given (none:
    the phone is no longer registered there); one version bump for the lot. The node's row
    must exist (:func:`announce` first, in the same transaction)."""
    if not changes:
        return
    for aor in sorted(changes):
        tx.execute("DELETE FROM registration WHERE node = ? AND aor = ?", (node, aor))
        rows = [
            (
                b.aor,
                node,
                b.contact,
                b.source_host,
                b.source_port,
                b.transport,
                b.q,
                _time(tx, b.expires_at),
                _time(tx, b.updated_at),
            )
            for b in changes[aor]
        ]
        if rows:
            tx.executemany(
                "INSERT INTO registration (aor, node, contact, source_host, source_port, transport, q, "
                "expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (node, aor, contact) DO UPDATE SET source_host = excluded.source_host, "
                "source_port = excluded.source_port, transport = excluded.transport, q = excluded.q, "
                "expires_at = excluded.expires_at, updated_at = excluded.updated_at",
                rows,
            )
    tx.execute("UPDATE node SET bindings_version = bindings_version + 1 WHERE name = ?", (node,))


def drop_expired(tx: Tx, now: datetime) -> int:
    """Remove every node's bindings expired by ``now`` (a dead node's never refreshed); how many."""
    return len(tx.execute("DELETE FROM registration WHERE expires_at <= ? RETURNING aor", (_time(tx, now),)))


def bindings_of(tx: Tx, node_names: Iterable[str], now: datetime) -> dict[str, list[StoredBinding]]:
    """The live bindings (not expired by ``now``) of each node named, by node."""
    out: dict[str, list[StoredBinding]] = {}
    stamp = _time(tx, now)
    for name in sorted(set(node_names)):
        rows = tx.execute(
            f"SELECT {_BINDING_COLUMNS} FROM registration WHERE node = ? AND expires_at > ? "  # noqa: S608
            "ORDER BY aor, contact",
            (name, stamp),
        )
        out[name] = [_binding(tx, row) for row in rows]
    return out


def bindings_for(tx: Tx, aors: Iterable[str], now: datetime) -> list[StoredBinding]:
    """Every node's live bindings of these addresses-of-record (the routing analysis)."""
    wanted = sorted(set(aors))
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    rows = tx.execute(
        f"SELECT {_BINDING_COLUMNS} FROM registration WHERE aor IN ({marks}) AND expires_at > ? "  # noqa: S608
        "ORDER BY node, aor, contact",
        (*wanted, _time(tx, now)),
    )
    return [_binding(tx, row) for row in rows]


def secret(tx: Tx, now: datetime) -> bytes:
    """The cluster secret, made here if no node made it yet (two nodes racing get the same)."""
    tx.execute(
        "INSERT INTO cluster_secret (id, secret, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING",
        (secrets.token_hex(SECRET_BYTES), _time(tx, now)),
    )
    return bytes.fromhex(str(tx.scalar("SELECT secret FROM cluster_secret WHERE id = 1")))
