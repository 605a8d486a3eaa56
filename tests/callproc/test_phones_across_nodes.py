"""A phone registered with one node of a database is reachable through every node (docs/routing.md,
"Phones on several nodes"; timers-trace-routing-dialplan.md §2.6 and behaviour 64 "The called not
online", SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY; architecture-billing-payments.md CAP-3.1 step 1
"or a registered phone"), on SQLite and a real PostgreSQL server.

Two StoreRouters, each with its own store connection (what two `softswitch run` processes
have), on one fake wall clock; each node's registrar is a small stand-in holding bindings as
the node's registrar does. The nodes sync as their drivers do (``sync_cluster``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from signaling.callproc.analysis import Analysis, analyse, as_json, render
from signaling.callproc.cluster import HOP_STOP_CODES
from signaling.routing import NODE_HOP_HEADER, InboundCall, PhoneContact
from signaling.sip.message import NameAddr
from signaling.sip.registrar import Binding
from signaling.store import Phone, RoutingGateway, Store, open_store
from signaling.store.registrations import StoredBinding
from tests.callproc.world import T0, FakeNode, basic_world, d
from tests.store.conftest import TEST_DIGEST

ADDRESS = {"node-a": ("192.0.2.1", 5060), "node-b": ("192.0.2.2", 5062)}
PHONE_NAT = ("203.0.113.7", 40123)
PHONE_CONTACT = "sip:2001@192.168.1.20:5060"


@dataclass
class StandInRegistrar:
    """What the router reads of a node's registrar: bindings by AOR and the AORs that changed."""

    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def register(self, aor: str, now: float, *, expires: float = 300) -> None:
        self.bindings[aor] = [
            Binding(
                aor=aor,
                contact=NameAddr(PHONE_CONTACT),
                expires_at=now + expires,
                q=1.0,
                call_id="reg",
                cseq=1,
                source=PHONE_NAT,
                transport="UDP",
                registered_at=now,
                updated_at=now,
            )
        ]
        self.changed.add(aor)

    def unregister(self, aor: str) -> None:
        self.bindings.pop(aor, None)
        self.changed.add(aor)

    def pop_changed(self) -> set[str]:
        out, self.changed = self.changed, set()
        return out

    def lookup(self, aor: str, now: float) -> list[Binding]:
        return [b for b in self.bindings.get(aor, []) if b.expires_at > now]


@dataclass
class Member:
    node: FakeNode
    registrar: StandInRegistrar

    @property
    def name(self) -> str:
        return self.node.router.node

    def sync(self) -> None:
        assert self.node.router.sync_cluster(self.node.now)

    def locate(self, number: str) -> PhoneContact | None:
        bindings = self.registrar.lookup(number, self.node.now)
        if not bindings:
            return None
        b = bindings[0]
        return PhoneContact(b.uri, b.source[0], b.source[1], b.transport)


@contextmanager
def cluster(url: str, *names: str, redirect: bool = False) -> Iterator[tuple[list[Member], Store]]:
    stores = [open_store(url) for _ in names]
    try:
        ids = basic_world(
            stores[0], customer_rates=(("1", "0.02", 60, "0.01", 6), ("2", "0.01", 60, "0.01", 60))
        )
        stores[0].admin().create(
            Phone(ids.customer, number="2001", sip_user="alice", sip_password=TEST_DIGEST)
        )
        if redirect:
            stores[0].set_parameter("SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY", True)
        members: list[Member] = []
        for name, store in zip(names, stores, strict=True):
            member = Member(FakeNode.on(store, node=name, tick=5.0), StandInRegistrar())
            router = member.node.router
            router.on_locate(member.locate)
            host, port = ADDRESS.get(name, ("192.0.2.9", 5099))
            router.on_node_started(member.registrar, (host, port, "UDP"))
            router.start(member.node.now)
            member.sync()
            members.append(member)
        yield members, stores[0]
    finally:
        for s in stores:
            s.close()


def live(members: list[Member], seconds: float) -> None:
    """Every node lives through ``seconds`` and syncs (its driver every 2 s)."""
    for member in members:
        member.node.advance(seconds)
        member.sync()


def hop_call(call_id: str, header: str, *, source: tuple[str, int] = ADDRESS["node-a"]) -> InboundCall:
    return InboundCall(call_id, source, "UDP", "5550001", "2001", hop=header)


def test_a_call_to_a_phone_registered_at_another_node_is_forwarded_there_and_billed_once(
    store_url: str,
) -> None:
    with cluster(store_url, "node-a", "node-b") as ([a, b], store):
        b.registrar.register("2001", b.node.now)
        live([b, a], 0)
        admission = a.node.admit("c1", "2001")
        assert admission.rejection is None
        (route,) = admission.routes  # redirect Off: the node holding the phone, nothing after it
        assert (route.gateway, route.host, route.port, route.transport, route.callee) == (
            "phone:2001@node-b",
            *ADDRESS["node-b"],
            "udp",
            "2001",
        )
        assert route.stop_switch_codes == HOP_STOP_CODES and route.uri is None
        ((name, header),) = route.headers
        assert name == NODE_HOP_HEADER
        # node B: authenticated, delivered to its own registration, no admission of its own
        delivered = b.node.router.admit(hop_call("b-leg", header), b.node.now)
        assert delivered.rejection is None and delivered.ingress == "node:node-a"
        (to_phone,) = delivered.routes
        assert (to_phone.gateway, to_phone.host, to_phone.port, to_phone.uri) == (
            "phone:2001",
            *PHONE_NAT,
            PHONE_CONTACT,
        )
        assert to_phone.headers == ()  # never forwarded further
        assert "b-leg" not in b.node.router.sessions
        assert [r.node for r in store.reservations()] == ["node-a"]  # node A's only
        a.node.answer("c1")
        a.node.advance(30)
        a.node.end("c1")
        (cdr,) = store.cdrs(T0.date(), T0.date())
        assert (cdr.routing_gateway, cdr.gateways_tried, cdr.callee_out) == (
            "phone:2001@node-b",
            ("phone:2001@node-b",),
            "2001",
        )
        assert (cdr.billed_seconds, cdr.fee) == (60, d("0.01"))  # 30 s in a 60 s first period at 0.01
        assert store.admin().find_account("1001").balance == d("9.99")  # one charge
        assert store.reservations() == []


def test_a_forged_node_hop_is_refused(store_url: str) -> None:
    """Never a header alone: the sending node's address in the node table, addressed to this
    node, a fresh stamp, the HMAC under the store's secret, and a nonce used once."""
    with cluster(store_url, "node-a", "node-b") as ([a, b], _):
        b.registrar.register("2001", b.node.now)
        live([b, a], 0)
        header = a.node.admit("c1", "2001").routes[0].headers[0][1]
        router_b = b.node.router

        def refused(call: InboundCall) -> bool:
            admission = router_b.admit(call, b.node.now)
            rejection = admission.rejection
            return (
                rejection is not None
                and (rejection.status, rejection.termination) == (403, "Node hop refused")
                and admission.ingress == ""
                and not admission.routes
            )

        assert refused(hop_call("x1", header, source=("198.51.100.66", 5060)))  # not node A's address
        assert refused(hop_call("x2", header, source=(ADDRESS["node-a"][0], 5999)))  # nor its SIP port
        assert refused(hop_call("x3", header.replace("sig=", "sig=0")))  # signature
        assert refused(hop_call("x4", header.replace("to=node-b", "to=node-c")))  # not for us
        assert refused(hop_call("x5", "node=node-a;to=node-b"))  # malformed
        assert refused(replace(hop_call("x6", header), callee="2002"))  # signed for another callee
        assert not refused(hop_call("ok", header))
        assert refused(hop_call("x7", header))  # replayed
        late = a.node.admit("c2", "2001").routes[0].headers[0][1]
        b.node.advance(31)  # past the window
        assert refused(hop_call("x8", late))


def test_a_dead_node_s_phones_are_not_online(store_url: str) -> None:
    """Node B stops syncing (it died): once its heartbeat is older than node_ttl (15 s) its
    phones are "The called not online" (480, behaviour 64) on node A."""
    with cluster(store_url, "node-a", "node-b") as ([a, b], _):
        b.registrar.register("2001", b.node.now, expires=3600)
        live([b, a], 0)
        assert a.node.admit("c1", "2001").routes[0].gateway == "phone:2001@node-b"
        live([a], 10)  # B silent for 10 s: still alive
        assert a.node.admit("c2", "2001").rejection is None
        live([a], 6)  # 16 s
        rejection = a.node.admit("c3", "2001").rejection
        assert rejection is not None and (rejection.status, rejection.termination) == (
            480,
            "The called not online",
        )


def test_an_unregistered_or_expired_phone_is_not_online_after_the_next_sync(store_url: str) -> None:
    with cluster(store_url, "node-a", "node-b") as ([a, b], _):
        b.registrar.register("2001", b.node.now, expires=60)
        live([b, a], 0)
        assert a.node.admit("c1", "2001").rejection is None
        b.registrar.unregister("2001")
        live([b, a], 2)
        assert a.node.admit("c2", "2001").rejection is not None
        b.registrar.register("2001", b.node.now, expires=60)
        live([b, a], 2)
        assert a.node.admit("c3", "2001").rejection is None
        live([a], 61)  # expired even though node B wrote nothing since
        assert a.node.admit("c4", "2001").rejection is not None


def test_a_node_that_does_not_take_the_forwarded_call_leaves_the_phone_not_online(store_url: str) -> None:
    """Node B is alive in the table but does not answer SIP (408 after the INVITE timeout) or
    answers 480 (the phone left it meanwhile): the call fails, and its CDR on node A says "The
    called not online"; nothing is charged."""
    with cluster(store_url, "node-a", "node-b") as ([a, b], store):
        b.registrar.register("2001", b.node.now)
        live([b, a], 0)
        for call_id, status in (("c408", 408), ("c480", 480)):
            a.node.admit(call_id, "2001")
            a.node.try_route(call_id)
            a.node.fail(call_id, status)
            a.node.end(call_id, termination="AllRoutesFailed", ended_by="switch", status=status)
        cdrs = store.cdrs(T0.date(), T0.date())
        assert sorted((c.call_id, c.termination_reason, c.fee) for c in cdrs) == [
            ("c408", "The called not online", d("0")),
            ("c480", "The called not online", d("0")),
        ]


def test_with_the_redirect_the_gateways_follow_the_node_hop_and_a_dead_node_goes_to_them(
    store_url: str,
) -> None:
    """SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY On: the node hop first, the carriers after it (a
    node that does not answer, or answers 480, fails over to them); node B dead: the carriers."""
    with cluster(store_url, "node-a", "node-b", redirect=True) as ([a, b], store):
        # the world's carrier-a serves prefix 1 only: one for prefix 2
        vendor = store.admin().find_account("v1")
        carrier = RoutingGateway(
            name="carrier-b", prefixes=("2",), host="127.0.0.1", port=5090, account_id=vendor.id
        )
        store.admin().create(carrier)
        for m in (a, b):
            m.node.router.refresh()
        b.registrar.register("2001", b.node.now, expires=3600)
        live([b, a], 0)
        routes = a.node.admit("c1", "2001").routes
        assert [r.gateway for r in routes] == ["phone:2001@node-b", "carrier-b"]
        assert 408 not in routes[0].stop_switch_codes and 486 in routes[0].stop_switch_codes
        live([a], 16)
        assert [r.gateway for r in a.node.admit("c2", "2001").routes] == ["carrier-b"]


def test_a_node_hop_is_never_forwarded_further(store_url: str) -> None:
    """Node A forwards to node B a call for 2001 (as if B held it), but 2001 is registered at
    node C only: B answers 480 rather than forwarding it again (no loops)."""
    with cluster(store_url, "node-a", "node-b", "node-c") as ([a, b, c], _):
        c.registrar.register("2001", c.node.now)
        live([c, a, b], 0)
        assert b.node.admit("direct", "2001").routes[0].gateway == "phone:2001@node-c"  # B knows where it is
        _, header = a.node.router.cluster.sign("node-b", "2001", a.node.router.wall(a.node.now))
        admission = b.node.router.admit(hop_call("hop", header), b.node.now)
        rejection = admission.rejection
        assert rejection is not None and (rejection.status, rejection.termination) == (
            480,
            "The called not online",
        )
        assert admission.routes == []


def test_the_routing_analysis_of_a_running_node_shows_where_a_phone_is_registered(store_url: str) -> None:
    with cluster(store_url, "node-a", "node-b") as ([a, b], _):
        b.registrar.register("2001", b.node.now, expires=120)
        live([b, a], 0)
        phone = a.node.router.snapshot.phones_by_number["2001"]
        (where,) = a.node.router.registered(phone, a.node.now)
        assert (where.node, where.contact, where.source, where.transport, where.local, where.alive) == (
            "node-b",
            PHONE_CONTACT,
            PHONE_NAT,
            "UDP",
            False,
            True,
        )
        assert where.expires_at == a.node.router.wall(a.node.now) + timedelta(seconds=120)
        (own,) = b.node.router.registered(phone, b.node.now)
        assert (own.node, own.local) == ("node-b", True)


def test_the_routing_analysis_shows_the_node_a_phone_is_registered_at(store_url: str) -> None:
    """The analysis (reference §D.9) of a call to a phone: on a running node, with its view of
    the other nodes; a dead node's binding is shown as such and not routed to."""
    with cluster(store_url, "node-a", "node-b") as ([a, b], _):
        b.registrar.register("2001", b.node.now, expires=120)
        live([b, a], 0)
        router = a.node.router

        def analysis() -> Analysis:
            return analyse(
                router.snapshot, "2001", at=router.wall(a.node.now), ingress="cust",
                registered=lambda phone: router.registered(phone, a.node.now),
            )  # fmt: skip

        text = render(analysis())
        assert "Phone: 2001" in text
        assert f"registered at node node-b: {PHONE_CONTACT} from 203.0.113.7:40123 udp" in text
        assert "route: phone:2001@node-b, forwarded to node node-b at 192.0.2.2:5062" in text
        assert "the gateways below are not used (SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY Off)" in text
        phone = json.loads(as_json(analysis()))["phone"]
        assert phone["route"] == {"gateway": "phone:2001@node-b", "host": "192.0.2.2", "port": 5062}
        assert [(r["node"], r["node_alive"], r["this_node"]) for r in phone["registrations"]] == [
            ("node-b", True, False)
        ]
        live([a], 16)  # node B silent: dead
        text = render(analysis())
        assert "registered at node node-b (dead: no heartbeat)" in text
        assert "Admission: refused, 480 Temporarily Unavailable (The called not online)" in text
        local = render(
            analyse(
                b.node.router.snapshot,
                "2001",
                at=b.node.router.wall(b.node.now),
                ingress="cust",
                registered=lambda phone: b.node.router.registered(phone, b.node.now),
            )
        )
        assert "registered at this node" in local and "route: phone:2001, to 203.0.113.7:40123 udp" in local


def test_the_route_analysis_command_reads_the_registrations_from_the_store(store_url: str) -> None:
    with open_store(store_url) as store:
        ids = basic_world(store, customer_rates=(("2", "0.01", 60, "0.01", 60),))
        store.admin().create(Phone(ids.customer, number="2001", sip_user="alice", sip_password=TEST_DIGEST))
        now = datetime.now(UTC)
        row = StoredBinding(
            "alice", "node-b", PHONE_CONTACT, *PHONE_NAT, "UDP", "1", now + timedelta(seconds=300), now
        )
        store.sync_registrations("node-b", (*ADDRESS["node-b"], "UDP"), {"alice": [row]}, now, {})
    command = [
        sys.executable,
        "-m",
        "signaling.cli",
        "route-analysis",
        "--store",
        store_url,
        "2001",
        "--ingress",
        "cust",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"registered at node node-b: {PHONE_CONTACT} from 203.0.113.7:40123 udp" in done.stdout
    assert "route: phone:2001@node-b, forwarded to node node-b at 192.0.2.2:5062" in done.stdout
