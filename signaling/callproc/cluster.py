"""Phones on several nodes of one database: shared registrations and the authenticated node hop.

Theory of operation (docs/routing.md, "Phones on several nodes", has the rules and the reasons):

* **Publishing.** A phone registers with one node; its binding (contact, the address and
  transport its REGISTER came from, expiry) lives in that node's registrar. The registrar notes
  which addresses-of-record changed (:meth:`BindingSource.pop_changed`); at each periodic sync
  (the router driver's, every ``refresh_interval`` seconds, in a worker thread) the node writes
  those AORs' bindings to the store, with its heartbeat and SIP address
  (:meth:`signaling.store.Store.sync_registrations`). Nothing is written on a call's path.
* **Reading.** The same sync reads the node table and the bindings of the nodes whose bindings
  moved since the last read; the result, a :class:`ClusterView`, is installed on the loop and a
  call's lookup is a dictionary read (:meth:`Cluster.locate`): no database round trip per call.
* **Forwarding.** A call for a phone registered at another *live* node (heartbeat newer than
  ``node_ttl``) is sent to that node's SIP address with a :data:`NODE_HOP_HEADER` that proves
  it comes from a node of the database (:meth:`Cluster.sign`): the sending and receiving nodes'
  names, the time, a nonce and the callee, signed with HMAC-SHA256 under the cluster secret
  kept in the store. The receiving node (:meth:`Cluster.verify`) accepts it only from the
  sending node's SIP address in the node table, addressed to itself, within
  :data:`HOP_WINDOW` of its clock, with the right signature, and a nonce not seen before.
  The header alone is never trusted.

The sending node admits, routes and bills the call (one CDR, one charge); the receiving node
delivers it to its own registration without admission or billing, and never forwards it further.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote, unquote

from signaling.routing import NODE_HOP_HEADER, PhoneContact
from signaling.sip.registrar import Binding
from signaling.store import Store
from signaling.store.registrations import NodeRecord, StoredBinding

log = logging.getLogger("softswitch.callproc")

__all__ = [
    "HOP_STOP_CODES",
    "HOP_WINDOW",
    "NODE_HOP_HEADER",
    "NODE_TTL",
    "BindingSource",
    "Cluster",
    "ClusterView",
    "HopRefused",
    "Registered",
    "stored_registrations",
]

#: A node whose heartbeat is older than this is dead for the others, seconds: its phones are
#: "not online" (three of the driver's 2 s refreshes and a margin, like the line leases' TTL).
NODE_TTL = 15.0
#: A node-hop INVITE stamped further than this from the receiving node's clock is refused,
#: seconds (clock skew between nodes plus transit; also how long a nonce is remembered).
HOP_WINDOW = 30.0
#: Answers of the node a call was forwarded to after which the call does not fail over to the
#: gateways (SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY On): the phone itself answered (busy,
#: declined…). Only "not reached" answers fail over: 408 (no answer from the node), 480 (not
#: registered there any more), 503 (the node refused or could not be reached).
HOP_STOP_CODES = frozenset(range(300, 700)) - {408, 480, 503}
#: The version of the signed text (a change of what is signed changes it).
_HOP_VERSION = "v1"


class HopRefused(Exception):
    """A node-hop header that does not authenticate (the reason is for the log)."""


class BindingSource(Protocol):
    """The node's registrar, as the cluster reads it (on the loop)."""

    def pop_changed(self) -> set[str]:
        """Addresses-of-record whose bindings changed since the last call."""
        ...

    def lookup(self, aor: str, now: float) -> list[Binding]: ...


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What this node knows of the others, as of its last sync (immutable: built in the sync
    thread, installed on the loop)."""

    secret: bytes
    nodes: dict[str, NodeRecord]
    #: other nodes' bindings as last read, by node, and the version they were read at
    bindings: dict[str, list[StoredBinding]]
    versions: dict[str, int]
    #: the same bindings by address-of-record
    by_aor: dict[str, list[StoredBinding]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, secret: bytes, nodes: Sequence[NodeRecord], bindings: dict[str, list[StoredBinding]]
    ) -> ClusterView:
        by_aor: dict[str, list[StoredBinding]] = {}
        for rows in bindings.values():
            for b in rows:
                by_aor.setdefault(b.aor, []).append(b)
        return cls(
            secret,
            {n.name: n for n in nodes},
            bindings,
            {n.name: n.bindings_version for n in nodes if n.name in bindings},
            by_aor,
        )


@dataclass(frozen=True, slots=True)
class Registered:
    """Where a phone is registered (the routing analysis): which node, and the binding."""

    node: str
    contact: str
    source: tuple[str, int]
    transport: str
    expires_at: datetime
    #: the node is this one
    local: bool
    #: the node's heartbeat is recent (a dead node's bindings do not reach the phone)
    alive: bool
    #: where a call for the phone goes: the node's SIP address (host, port, transport), or for
    #: this node's own binding the address its REGISTER came from
    reach: tuple[str, int, str] = ("", 0, "")

    def contact_for_call(self) -> PhoneContact:
        """The :class:`PhoneContact` a call would be sent to (``node`` set for another node)."""
        host, port, transport = self.reach
        return PhoneContact(self.contact, host, port, transport.lower(), node="" if self.local else self.node)


def stored_registrations(
    store: Store, aors: Iterable[str], at: datetime, node_ttl: float = NODE_TTL
) -> list[Registered]:
    """Every node's bindings of ``aors`` as the store has them (the routing analysis without a
    running node: every node is "another" node)."""
    nodes, rows = store.registered(list(dict.fromkeys(aors)), at)
    by_name = {n.name: n for n in nodes}
    out: list[Registered] = []
    for b in rows:
        node = by_name.get(b.node)
        alive = node is not None and node.alive_at >= at - timedelta(seconds=node_ttl)
        reach = (node.host, node.port, node.transport) if node is not None else ("", 0, "")
        out.append(
            Registered(
                b.node,
                b.contact,
                (b.source_host, b.source_port),
                b.transport,
                b.expires_at,
                False,
                alive,
                reach,
            )
        )
    return out


class Cluster:
    """This node's share of the registrations (see the module doc)."""

    def __init__(self, name: str, *, node_ttl: float = NODE_TTL, hop_window: float = HOP_WINDOW) -> None:
        self.name = name
        self.node_ttl = node_ttl
        self.hop_window = hop_window
        #: the registrar (None until the node started: then nothing is published or forwarded)
        self.source: BindingSource | None = None
        #: (host, port, transport) the other nodes reach this node at
        self.address: tuple[str, int, str] | None = None
        self.view: ClusterView | None = None
        #: AORs whose bindings still have to be written (a failed sync keeps them)
        self._pending: set[str] = set()
        self._synced_once = False
        #: nonces of node-hop INVITEs accepted, and (wall time they may be forgotten, nonce) in
        #: the order they came
        self._nonces: set[str] = set()
        self._nonce_order: deque[tuple[float, str]] = deque()

    # -- publishing (loop) and syncing (worker thread) ------------------------------------

    def attach(self, source: BindingSource, address: tuple[str, int, str]) -> None:
        self.source = source
        self.address = address

    def collect(self, now: float, wall: Callable[[float], datetime]) -> dict[str, list[StoredBinding]]:
        """On the loop: the current bindings of every AOR that changed since the last sync
        (an empty list: no longer registered here)."""
        if self.source is None:
            return {}
        self._pending |= self.source.pop_changed()
        changes: dict[str, list[StoredBinding]] = {}
        at = wall(now)
        for aor in self._pending:
            changes[aor] = [
                StoredBinding(
                    aor=aor,
                    node=self.name,
                    contact=b.uri,
                    source_host=b.source[0],
                    source_port=b.source[1],
                    transport=b.transport,
                    q=f"{b.q:g}",
                    expires_at=at + timedelta(seconds=b.expires_at - now),
                    updated_at=at + timedelta(seconds=b.updated_at - now),
                )
                for b in self.source.lookup(aor, now)
            ]
        return changes

    def sync(self, store: Store, changes: dict[str, list[StoredBinding]], at: datetime) -> ClusterView:
        """In a worker thread: write this node's heartbeat and changed bindings, read the
        others'; the new view (install it with :meth:`install` on the loop). Raises the store's
        error (the changes stay pending: :meth:`failed`)."""
        assert self.address is not None
        previous = self.view
        known = previous.versions if previous is not None else {}
        result = store.sync_registrations(
            self.name, self.address, changes, at, dict(known), restart=not self._synced_once
        )
        names = {n.name for n in result.nodes}
        bindings = {
            name: rows
            for name, rows in (previous.bindings.items() if previous is not None else ())
            if name in names and name not in result.bindings
        }
        bindings.update(result.bindings)
        return ClusterView.build(result.secret, result.nodes, bindings)

    def install(self, view: ClusterView, written: Iterable[str]) -> None:
        """On the loop: use ``view``; the AORs in ``written`` are in the store now."""
        self.view = view
        self._synced_once = True
        self._pending.difference_update(written)

    def leave(self, store: Store) -> None:
        """The node stops: its row and bindings leave the store (its phones are unreachable)."""
        if self.address is not None:
            store.leave_cluster(self.name)

    # -- lookups (loop, per call: memory only) --------------------------------------------

    def alive(self, node: NodeRecord, at: datetime) -> bool:
        return node.alive_at >= at - timedelta(seconds=self.node_ttl)

    def locate(self, aors: Iterable[str], at: datetime) -> PhoneContact | None:
        """Where another live node holds a binding of one of ``aors`` (the most recently
        refreshed one): that node's SIP address, to forward the call to. None: nowhere."""
        view = self.view
        if view is None:
            return None
        best: tuple[StoredBinding, NodeRecord] | None = None
        for aor in aors:
            for b in view.by_aor.get(aor, ()):
                node = view.nodes.get(b.node)
                if node is None or b.node == self.name or b.expires_at <= at or not self.alive(node, at):
                    continue
                if best is None or b.updated_at > best[0].updated_at:
                    best = (b, node)
        if best is None:
            return None
        b, node = best
        return PhoneContact(b.contact, node.host, node.port, node.transport.lower(), node=node.name)

    def registered(self, aors: Iterable[str], at: datetime) -> list[Registered]:
        """Every other node's bindings of ``aors`` this node knows (the routing analysis)."""
        view = self.view
        if view is None:
            return []
        out: list[Registered] = []
        for aor in aors:
            for b in view.by_aor.get(aor, ()):
                node = view.nodes.get(b.node)
                if b.node == self.name or b.expires_at <= at:
                    continue
                out.append(
                    Registered(
                        b.node,
                        b.contact,
                        (b.source_host, b.source_port),
                        b.transport,
                        b.expires_at,
                        local=False,
                        alive=node is not None and self.alive(node, at),
                        reach=(node.host, node.port, node.transport) if node is not None else ("", 0, ""),
                    )
                )
        return out

    # -- the node hop -----------------------------------------------------------------------

    def sign(self, to_node: str, callee: str, at: datetime) -> tuple[str, str]:
        """The header proving a call forwarded to ``to_node`` for ``callee`` comes from here."""
        view = self.view
        assert view is not None  # only a node that synced forwards (locate needs the view)
        stamp = str(int(at.timestamp()))
        nonce = secrets.token_hex(8)
        signature = _signature(view.secret, (self.name, to_node, stamp, nonce, callee))
        names = f"node={quote(self.name, safe='')};to={quote(to_node, safe='')}"
        return NODE_HOP_HEADER, f"{names};at={stamp};nonce={nonce};sig={signature}"

    def verify(self, value: str, source: tuple[str, int], transport: str, callee: str, at: datetime) -> str:
        """The node a forwarded INVITE comes from, or :class:`HopRefused` (why)."""
        fields = _fields(value)
        try:
            sender, to_node, stamp, nonce, signature = (
                unquote(fields["node"]),
                unquote(fields["to"]),
                fields["at"],
                fields["nonce"],
                fields["sig"],
            )
        except KeyError:
            raise HopRefused("malformed node-hop header") from None
        view = self.view
        if view is None:
            raise HopRefused("this node has not synced with the store yet")
        if to_node != self.name:
            raise HopRefused(f"addressed to node {to_node!r}, not this one")
        node = view.nodes.get(sender)
        if sender == self.name or node is None or not self.alive(node, at):
            raise HopRefused(f"{sender!r} is not a live node of this database")
        udp = transport.upper() == "UDP"
        if source[0] != node.host or (udp and node.transport.upper() == "UDP" and source[1] != node.port):
            where = f"{node.host}:{node.port}"
            raise HopRefused(f"from {source[0]}:{source[1]}, not node {sender}'s address {where}")
        if not stamp.isdigit() or abs(int(stamp) - at.timestamp()) > self.hop_window:
            raise HopRefused("stamped outside the accepted window")
        expected = _signature(view.secret, (sender, to_node, stamp, nonce, callee))
        if not hmac.compare_digest(expected, signature):
            raise HopRefused("bad signature")
        now_s = at.timestamp()
        order = self._nonce_order
        while order and order[0][0] < now_s:
            self._nonces.discard(order.popleft()[1])
        if nonce in self._nonces:
            raise HopRefused("replayed")
        self._nonces.add(nonce)
        order.append((now_s + 2 * self.hop_window, nonce))
        return sender


def _signature(secret: bytes, signed: tuple[str, str, str, str, str]) -> str:
    """HMAC-SHA256 of (sender, receiving node, stamp, nonce, callee)."""
    text = "|".join((_HOP_VERSION, *signed)).encode()
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


def _fields(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.strip().split(";"):
        name, eq, text = part.strip().partition("=")
        if eq and name and name not in out:
            out[name] = text.strip()
    return out
