"""``StoreRouter``: the :class:`~signaling.routing.Router` the SIP node calls, on the store.

Theory of operation (docs/billing.md and docs/routing.md have the rules and the reasons):

* **Configuration** lives in an in-memory :class:`~signaling.callproc.snapshot.Snapshot`,
  replaced when ``Store.config_version()`` moves (:meth:`StoreRouter.refresh`; the driver loads
  the new one in a worker thread and installs it on the loop). No per-call configuration read.
* **Admission** (:meth:`admit`) decides in memory (:func:`~signaling.callproc.admission.decide`)
  and then makes the one database write of the call's start: the **reservation** of the first
  billing period's price, taken under the account row's lock so that concurrent calls of one
  account — on this node or another sharing the database — cannot spend the same money. The
  call may last as long as what the account could give it pays for
  (``billing.max_duration_ms``), capped by the mapping gateway's and the switch's limits:
  ``Admission.max_duration``.
* **Real-time rating.** At the answer the reservation grows to cover the next two ticks; every
  ``tick`` seconds the router writes a heartbeat for its calls and grows each answered call's
  reservation again (one transaction). When the account cannot cover it, the call gets a
  deadline: the instant its held money is spent (minus :data:`HANGUP_LEAD`); at the deadline
  the router tries once more (a payment may have come) and otherwise asks the node to hang up
  ("Insufficient balance") through the ``on_hangup_request`` callback. A routing gateway's
  "call duration limit" is a deadline too. Deadlines and ticks are this object's timers, driven
  from outside (:meth:`next_deadline` / :meth:`on_timer`, signaling.callproc.driver): no change
  to the node, and tests run them on a fake clock.
* **The end** (:meth:`call_ended`): the CDR with the exact charges is written, and the
  reservation dropped, in one transaction: before the method returns, or, with a
  :class:`~signaling.callproc.cdrwriter.CdrWriter`, in a batch with the calls ending at about the
  same time, on the writer's thread (:meth:`collect` takes in what it wrote). Either way the
  call is *done* — ``on_call_done`` — only once that transaction has committed.
* **Crash**: :meth:`recover` (at start) turns this node's leftover reservations into CDRs billed
  up to the last heartbeat; each tick also recovers reservations of nodes silent for
  ``stale_after`` seconds.

Node time (``now`` in the Router methods) is the loop's monotonic clock; ``clock_offset()``
turns it into Unix time for rates, calendars and CDRs.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from signaling.billing import Allowance, CallOutcome, Tariff, charge, max_duration_ms
from signaling.callproc import benefits
from signaling.callproc.admission import (
    ACCOUNT_EXPIRED,
    ACCOUNT_LOCKED,
    CALL_LIMIT,
    CPS_LIMIT,
    INSUFFICIENT_BALANCE,
    Decision,
    decide,
    prepare,
    source_allowed,
)
from signaling.callproc.cdrwriter import CdrWriter, Settlement
from signaling.callproc.cluster import NODE_TTL, BindingSource, Cluster, ClusterView, HopRefused, Registered
from signaling.callproc.draft import CdrDraft, utc
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.routes import Candidate, gateway_codecs
from signaling.callproc.snapshot import Snapshot, load_snapshot
from signaling.observe.histogram import Histograms
from signaling.routing import (
    ALL_GATEWAY_BUSY,
    CALLED_NOT_ONLINE,
    NO_CODEC_SETTINGS,
    Admission,
    CallRecord,
    InboundCall,
    PhoneContact,
    Rejection,
    Route,
)
from signaling.store import (
    AccountPackage,
    Cdr,
    Grant,
    PackageRequest,
    Phone,
    RoutingGateway,
    Store,
    StoreError,
)
from signaling.store import packages as package_periods
from signaling.store.lines import Line, LineRequest
from signaling.store.registrations import StoredBinding

log = logging.getLogger("softswitch.callproc")

#: The node is asked to hang up this long before the held money runs out, seconds: the BYE and
#: the record's end time come a moment after the request, and the charge must stay within it.
HANGUP_LEAD = 0.25
#: Termination of a call hung up at its routing gateway's call duration limit (as the node's).
MAX_DURATION = "Max call duration"
#: Termination of CDRs written for calls a node lost (its crash, or its silence).
NODE_RESTART = "NodeRestart"
NODE_LOST = "NodeLost"
#: Termination when the reservation cannot be written (the database is unreachable).
STORE_UNAVAILABLE = "Billing unavailable"
#: The node's termination of a call whose every route failed (signaling.b2bua.call).
ALL_ROUTES_FAILED = "AllRoutesFailed"
#: Termination of a node-hop INVITE that does not authenticate (signaling/callproc/cluster.py).
HOP_REFUSED = "Node hop refused"
#: Final responses of a callee who is there but busy (the billing FAQ's "UserBusy").
USER_BUSY = frozenset({486, 600})


def monotonic_to_unix() -> float:
    """What to add to the loop's clock (time.monotonic) to get Unix time."""
    return time.time() - time.monotonic()


@dataclass(slots=True)
class _Session:
    """What the router keeps of one admitted call."""

    call_id: str
    decision: Decision
    draft: CdrDraft
    account_id: int
    ingress_id: int
    tariff: Tariff | None
    #: Money the call's reservation holds (None: no reservation row, e.g. a refused call).
    held: Decimal | None
    candidates: dict[str, Candidate] = field(default_factory=dict)
    #: The routing gateway whose line the call holds now (attempt or answered call).
    line: Candidate | None = None
    answered: Candidate | None = None
    answer_now: float | None = None
    vendor_status: int | None = None
    #: Timer generation: a deadline whose generation is older is stale.
    generation: int = 0
    credit_deadline: float | None = None
    hangup_requested: bool = False
    counted: bool = False
    #: Package subscriptions the call may draw on, and the free seconds and credit it holds.
    packages: tuple[int, ...] = ()
    free_seconds: int = 0
    free_credit: Decimal = Decimal(0)
    #: The shared (store) line leases of each route's gateway, and the routes whose lines the
    #: call holds now (docs/routing.md, "Counters and quality").
    route_lines: dict[str, tuple[Line, ...]] = field(default_factory=dict)
    leased: set[str] = field(default_factory=set)
    #: The current attempt alerted (180/183): the billing FAQ's "connected" (quality.py).
    alerted: bool = False

    @property
    def allowance(self) -> Allowance:
        return Allowance(self.free_seconds, self.free_credit)

    def took(self, grant: Grant) -> bool:
        """Keep what ``grant`` says the call holds; whether it changed."""
        before = (self.held, self.free_seconds, self.free_credit)
        self.held, self.free_seconds, self.free_credit = grant.amount, grant.free_seconds, grant.free_credit
        return before != (self.held, self.free_seconds, self.free_credit)


class StoreRouter:
    """The store-backed router (see the module doc)."""

    def __init__(
        self,
        store: Store,
        *,
        node: str = "node",
        parameters: Mapping[str, Any] | None = None,
        clock_offset: Callable[[], float] = monotonic_to_unix,
        tick: float = 5.0,
        stale_after: float = 120.0,
        line_ttl: float | None = None,
        node_ttl: float = NODE_TTL,
        rng: random.Random | None = None,
        snapshot: Snapshot | None = None,
        keep_records: int = 1000,
        cdr_writer: CdrWriter | None = None,
    ) -> None:
        self.store = store
        self.node = node
        self.tick = tick
        self.stale_after = stale_after
        #: A line lease not refreshed for this long no longer counts (its node is gone), s.
        self.line_ttl = 3 * tick if line_ttl is None else line_ttl
        self._base = dict(parameters or {})
        self._offset = clock_offset
        self._rng = rng
        self.snapshot = snapshot if snapshot is not None else load_snapshot(store, self._base)
        prepare(self.snapshot)
        #: Stored parameter values refused at a load (they do not parse), by name: how many
        #: loads found each one bad (the previous value stayed; logged each time).
        self.parameter_errors: dict[str, int] = {}
        self._note_rejected(self.snapshot)
        #: Told the store's SS_* overrides at once and at each reload that changes them
        #: (:meth:`on_parameters`): the node's own SIP settings.
        self._parameter_watchers: list[Callable[[Mapping[str, Any]], object]] = []
        self.counters = Counters()
        p = self.snapshot.parameters
        self.quality = Quality(
            p["SS_GATEWAY_ASR_RESERVE_TIME"],
            p["SS_GATEWAY_ASR_RESERVE_SEPARATE"],
            p["SS_GATEWAY_ACD_RESERVE_TIME"],
            p["SS_GATEWAY_ACD_RESERVE_SEPARATE"],
        )
        self.sessions: dict[str, _Session] = {}
        #: The last CDRs written (newest last), for inspection.
        self.records: deque[Cdr] = deque(maxlen=keep_records)
        #: CDRs whose write failed, retried at each tick (their reservations keep the money).
        self.unsettled: list[tuple[Cdr, bool]] = []
        #: Writes CDRs in batches on its own thread (None: each call's CDR before call_ended returns).
        self.cdr_writer = cdr_writer
        #: Calls whose CDR is with the writer, not yet committed.
        self._pending: set[str] = set()
        self._done: Callable[[str, Cdr], object] | None = None
        self._hangup: Callable[[str, str], object] | None = None
        #: The node's registrar (where a phone of this node is registered), once it says.
        self._locate: Callable[[str], PhoneContact | None] | None = None
        #: The registrations of the other nodes of the database, and this node's share of its own
        #: (docs/routing.md, "Phones on several nodes").
        self.cluster = Cluster(node, node_ttl=node_ttl)
        self._timers: list[tuple[float, int, str, str]] = []
        self._next_tick: float | None = None
        self._vendor_funds: dict[int, Decimal] = {}
        #: (snapshot version, whether its due package periods were rolled) and the next period
        #: boundary it knows: the tick looks at the subscriptions only when one may be due.
        self._rolled: tuple[int, bool] | None = None
        self._next_roll: datetime | None = None
        #: Called with the new earliest deadline when one is added before the known earliest.
        self.wakeup: Callable[[float], None] | None = None
        #: Seconds each ledger write took, by operation (hold, answer, extend, settle,
        #: heartbeat): the one database round trip on the call path (metrics).
        self.ledger = Histograms()
        #: When the oldest CDR still in ``unsettled`` first failed (time.monotonic), or None.
        self.unsettled_since: float | None = None

    # -- time ------------------------------------------------------------------------------

    def wall(self, now: float) -> datetime:
        return utc(now + self._offset())

    @staticmethod
    def _day(at: datetime) -> int:
        return at.date().toordinal()

    # -- Router ------------------------------------------------------------------------------

    def on_hangup_request(self, callback: Callable[[str, str], object]) -> None:
        self._hangup = callback

    def on_call_done(self, callback: Callable[[str, Cdr], object]) -> None:
        """``callback(call_id, cdr)`` once a call's CDR and charges are durable (committed)."""
        self._done = callback

    def password_for(self, username: str) -> str | None:
        """The digest password of a password-authenticated mapping gateway or of a phone (for
        the node's challenger; see docs/routing.md)."""
        gw = self.snapshot.by_user.get(username)
        return None if gw is None else gw.password

    def on_locate(self, lookup: Callable[[str], PhoneContact | None]) -> None:
        self._locate = lookup

    def on_parameters(self, callback: Callable[[Mapping[str, Any]], object]) -> None:
        """``callback(overrides)`` with the store's SS_* overrides (parsed, by the names the
        code reads) now and at every reload that changes them, on the loop: how the node's own
        settings (SIP timers, session timers, NAT keep-alive, SS_QOS_SIGNAL, gateway windows)
        follow the store as routing does (docs/routing.md, "Parameters")."""
        self._parameter_watchers.append(callback)
        callback(self.snapshot.overrides)

    def may_register(self, username: str, aor: str, now: float) -> bool:
        """A phone registers its number (or its SIP user), a password gateway its user name;
        never while the phone, gateway or account is locked or the account expired (behaviour
        59: 403)."""
        snap = self.snapshot
        gw = snap.by_user.get(username)
        account = None if gw is None else snap.accounts.get(gw.account_id)
        if gw is None or account is None or gw.locked or account.locked:
            return False
        if account.expiry is not None and account.expiry <= self.wall(now):
            return False
        phone = snap.phone_of_ingress.get(gw.id)
        if phone is not None:
            return aor in (phone.number, phone.sip_user)
        return aor == username

    def source_allowed(self, username: str, ip: str) -> bool:
        """Whether the digest user ``username``, once authenticated, may register from source
        address ``ip``: a phone only from its account's IP whitelist (behaviour 60), anything
        else (a password gateway, an unknown user) is not restricted here."""
        snap = self.snapshot
        gw = snap.by_user.get(username)
        if gw is None or gw.id not in snap.phone_of_ingress:
            return True
        return source_allowed(snap, gw.account_id, ip)

    def _locate_phone(self, at: datetime, phone: Phone) -> PhoneContact | None:
        """Where ``phone`` is registered: this node's registrar first, then the other live nodes
        of the database as last synced (``PhoneContact.node`` names that node)."""
        lookup = self._locate
        if lookup is None:
            return None
        found = lookup(phone.number)
        if found is None and phone.sip_user and phone.sip_user != phone.number:
            found = lookup(phone.sip_user)
        if found is None:
            found = self.cluster.locate((phone.number, phone.sip_user or phone.number), at)
        return found

    # -- phones on several nodes (signaling/callproc/cluster.py) ----------------------------

    def on_node_started(self, registrar: BindingSource, address: tuple[str, int, str]) -> None:
        """The node runs: its registrar (whose bindings this router shares through the store)
        and the SIP address the other nodes reach it at."""
        self.cluster.attach(registrar, address)

    def cluster_changes(self, now: float) -> dict[str, list[StoredBinding]] | None:
        """On the loop: the bindings to write at the next sync (None: the node is not attached)."""
        if self.cluster.address is None:
            return None
        return self.cluster.collect(now, self.wall)

    def cluster_sync(self, changes: dict[str, list[StoredBinding]], now: float) -> ClusterView:
        """In a worker thread: the store exchange (signaling.callproc.cluster)."""
        return self.cluster.sync(self.store, changes, self.wall(now))

    def cluster_install(self, view: ClusterView, changes: dict[str, list[StoredBinding]]) -> None:
        self.cluster.install(view, changes)

    def sync_cluster(self, now: float) -> bool:
        """Collect, sync and install on this thread (start-up and tests); whether it ran."""
        changes = self.cluster_changes(now)
        if changes is None:
            return False
        self.cluster_install(self.cluster_sync(changes, now), changes)
        return True

    def leave_cluster(self) -> None:
        """At the stop: this node's registrations and node row leave the store."""
        self.cluster.leave(self.store)

    def registered(self, phone: Phone, now: float) -> list[Registered]:
        """Where ``phone`` is registered, this node's registrar and the others' as last synced
        (the routing analysis)."""
        aors = (phone.number, phone.sip_user or phone.number)
        at = self.wall(now)
        out: list[Registered] = []
        source = self.cluster.source
        if source is not None:
            for aor in dict.fromkeys(aors):
                for b in source.lookup(aor, now):
                    expires = at + timedelta(seconds=b.expires_at - now)
                    reach = (*b.source, b.transport)
                    out.append(
                        Registered(self.node, b.uri, b.source, b.transport, expires, True, True, reach)
                    )
        out.extend(self.cluster.registered(dict.fromkeys(aors), at))
        return out

    def _signed(self, route: Route, at: datetime) -> Route:
        """``route`` to another node, with the header proving it comes from this one."""
        to_node = route.gateway.rpartition("@")[2]
        return replace(route, headers=(self.cluster.sign(to_node, route.callee, at),))

    def _admit_hop(self, call: InboundCall, at: datetime) -> Admission:
        """A call another node of the database forwarded for a phone registered here: delivered
        to this node's registration without admission, reservation or CDR (the sending node
        bills it), and never forwarded further. A hop that does not authenticate is refused
        (403, no CDR: whoever sent it is not a node)."""
        snap = self.snapshot
        proxy = str(snap.parameters["SS_MEDIAPROXYMODE"])
        try:
            sender = self.cluster.verify(call.hop, call.source, call.transport, call.callee, at)
        except HopRefused as exc:
            log.warning("call %s from %s:%d: node hop refused: %s", call.call_id, *call.source, exc)
            refused = Rejection(403, "Forbidden", HOP_REFUSED)
            return Admission(ingress="", rejection=refused, media_proxy=proxy)
        admission = Admission(ingress=f"node:{sender}", media_proxy=proxy)
        phone = snap.phones_by_number.get(call.callee)
        lookup = self._locate
        contact = None
        if phone is not None and not phone.locked and lookup is not None:
            contact = lookup(phone.number) or (lookup(phone.sip_user) if phone.sip_user else None)
        if phone is None or contact is None:
            admission.rejection = Rejection(480, "Temporarily Unavailable", CALLED_NOT_ONLINE)
            return admission
        admission.routes = [
            Route(
                gateway=f"phone:{phone.number}",
                host=contact.host,
                port=contact.port,
                transport=contact.transport.lower(),
                callee=phone.number,
                caller=call.caller,
                media_proxy=proxy,
                uri=contact.uri,
            )
        ]
        return admission

    def gateway_addresses(self) -> set[str]:
        """The IPs of every mapping and routing gateway, and of the other nodes of the database
        (the scanner defence trusts them)."""
        snap = self.snapshot
        ips = set(snap.by_ip) | {ip for ip, _ in snap.by_ip_port}
        ips.update(gw.host for gw in snap.routing.values() if gw.host)
        view = self.cluster.view
        if view is not None:
            ips.update(n.host for n in view.nodes.values() if n.name != self.node)
        return ips

    def gateway_targets(self) -> list[tuple[str, str, int, str]]:
        """(name, host, port, transport) of every routing gateway with an address (OPTIONS probes)."""
        return [(g.name, g.host, g.port, g.transport) for g in self.snapshot.routing.values() if g.host]

    def gateway_sources(self) -> dict[str, str]:
        """The ``source_ip`` of each routing gateway that has one (OPTIONS probes leave from it)."""
        return {g.name: g.source_ip for g in self.snapshot.routing.values() if g.source_ip}

    def duration_alarm_suppressed(self, call_id: str) -> bool:
        """The call's account has "Suppressing all duration too long alarm" (F.5-50)."""
        session = self.sessions.get(call_id)
        account = self.snapshot.accounts.get(session.account_id) if session is not None else None
        return account is not None and account.suppress_duration_alarm

    def account_code(self, call_id: str) -> str:
        """The "Account ID" of the call's account ("" when unknown): the destination watch's
        alarm names it (signaling/observe/watch.py)."""
        session = self.sessions.get(call_id)
        account = self.snapshot.accounts.get(session.account_id) if session is not None else None
        return account.code if account is not None else ""

    def watched_accounts(self) -> dict[int, str]:
        """Accounts whose balance the "balance low" alarm watches (id -> code): every unlocked
        one but postpaid vendors (their balance is what we owe them, not what they hold)."""
        return {
            a.id: a.code
            for a in self.snapshot.accounts.values()
            if not a.locked and not (a.kind == "vendor" and a.billing == "postpaid")
        }

    def admit(self, call: InboundCall, now: float) -> Admission:  # noqa: PLR0911 (one per refusal)
        snap = self.snapshot
        at = self.wall(now)
        if call.hop:
            return self._admit_hop(call, at)
        decision = decide(
            snap,
            call,
            at=at,
            now=now,
            day=self._day(at),
            counters=self.counters,
            quality=self.quality,
            vendor_funds=self._vendor_funds.get,
            rng=self._rng,
            locate=partial(self._locate_phone, at) if self._locate is not None else None,
        )
        ingress = decision.ingress
        if decision.needs_auth:
            return Admission(ingress="", needs_auth=True)
        default_proxy = str(snap.parameters["SS_MEDIAPROXYMODE"])
        admission = Admission(
            ingress="" if ingress is None else ingress.name,
            media_proxy=(ingress.media_proxy if ingress else None) or "",
            dtmf=ingress.dtmf if ingress else "auto",
            session_timer=ingress.session_timer if ingress else True,
            support_privacy=ingress.support_privacy if ingress else False,
            codecs=gateway_codecs(snap, ingress) if ingress else NO_CODEC_SETTINGS,
        )
        if ingress is None or decision.account is None:
            admission.rejection = decision.rejection
            return admission  # an unknown source: no account to write a CDR for
        draft = self._draft(decision, at, admission.media_proxy or default_proxy)
        session = _Session(
            call.call_id, decision, draft, decision.account.id, ingress.id, decision.tariff, None
        )
        self.sessions[call.call_id] = session
        if decision.rejection is not None:
            admission.rejection = decision.rejection
            return admission
        if decision.packages and session.tariff is not None:
            session.packages = decision.packages
        lines = self._line_request(session, at)
        started = time.perf_counter()
        try:
            grant = self.store.hold(
                call.call_id,
                session.account_id,
                want=decision.need,
                need=decision.need,
                node=self.node,
                now=at,
                draft=draft.to_json(),
                packages=self._package_request(session, benefits.FIRST_PERIOD_MS, minimum=True),
                lines=lines,
            )
        except StoreError as exc:
            log.error("call %s: cannot reserve: %s", call.call_id, exc)
            admission.rejection = Rejection(503, "Service Unavailable", STORE_UNAVAILABLE)
            return admission
        finally:
            self.ledger.observe("hold", time.perf_counter() - started)
        if not grant.ok:
            if grant.lines is not None and not grant.lines.ok:
                admission.rejection = _lines_busy(grant.lines.full)
            else:
                admission.rejection = Rejection(403, "Forbidden", INSUFFICIENT_BALANCE)
            return admission
        session.took(grant)
        first = grant.lines.route if grant.lines is not None and grant.lines.route is not None else 0
        admission.routes = decision.routes[first:]
        if lines is not None and lines.routes and admission.routes:
            session.leased.add(admission.routes[0].gateway)
        if decision.hop is not None:  # forwarded to the node holding the phone's registration
            admission.routes.insert(0, self._signed(decision.hop, at))
        admission.max_duration = self._max_duration(
            session, grant.free, Allowance(grant.pool_seconds, grant.pool_credit)
        )
        session.candidates = {c.gateway.name: c for c in decision.plan.ordered} if decision.plan else {}
        self.counters.start(("in", ingress.id), now)
        self.counters.start(("account", session.account_id), now)
        session.counted = True
        self._ensure_ticking(now)
        return admission

    def attempt_started(self, call_id: str, route: Route, now: float) -> bool:
        """The node is about to try ``route``; False: its gateway's lines are all taken (by any
        node sharing the store) and the node skips it."""
        session = self.sessions.get(call_id)
        if session is None:
            return True
        if session.line is not None:  # the same carrier again (422 Min-SE): its line is reused
            self._free_line(session)
        candidate = session.candidates.get(route.gateway)
        if candidate is None:  # not a carrier: a registered phone of this node
            session.draft.gateways_tried.append(route.gateway)
            session.draft.callee_out = route.callee
            session.draft.caller_out = route.caller
            return True
        if not self._lease_route(session, route.gateway, now):
            return False
        session.alerted = False
        day = self._day(self.wall(now))
        self.counters.start(("out", candidate.gateway.id), now, day)
        for group_id in candidate.gateway.groups:
            self.counters.start(("group", group_id), now)
        session.line = candidate
        session.draft.gateways_tried.append(route.gateway)
        session.draft.callee_out = route.callee
        session.draft.caller_out = route.caller
        return True

    def attempt_progress(self, call_id: str, route: Route, status: int, now: float) -> None:
        session = self.sessions.get(call_id)
        if session is not None and session.line is not None and session.line.gateway.name == route.gateway:
            session.alerted = True

    def attempt_ended(self, call_id: str, route: Route, status: int, now: float) -> None:
        session = self.sessions.get(call_id)
        if session is None:
            return
        session.vendor_status = status
        line = session.line
        if line is not None and line.gateway.name == route.gateway and session.answered is None:
            connected = session.alerted or status in USER_BUSY
            self.quality.attempt(line.gateway.id, now, answered=False, connected=connected)
            self._free_line(session)
        if session.answered is None and route.gateway in session.leased:
            session.leased.discard(route.gateway)
            keys = [line.key for line in session.route_lines.get(route.gateway, ())]
            try:
                self.store.release_lines(call_id, keys)
            except StoreError as exc:  # the lease lapses with the call's reservation
                log.error("call %s: cannot give back the lines of %s: %s", call_id, route.gateway, exc)

    def call_answered(self, call_id: str, route: Route, now: float) -> None:
        session = self.sessions.get(call_id)
        if session is None:
            return
        draft = session.draft
        if route.gateway in session.candidates:  # a carrier: its line is the call's
            reported = session.line is not None and session.line.gateway.name == route.gateway
        else:  # a registered phone of this node
            reported = draft.gateways_tried[-1:] == [route.gateway]
        if not reported:
            self.attempt_started(call_id, route, now)  # an answer on a route never reported tried
        candidate = session.line
        session.answer_now = now
        session.vendor_status = 200
        if candidate is None:  # a registered phone of this node answered: no carrier
            draft.routing_gateway = route.gateway
        else:
            session.answered = candidate
            self.quality.attempt(candidate.gateway.id, now, answered=True)
            draft.routing_gateway = candidate.gateway.name
            draft.clearing_account_id = candidate.gateway.account_id
            draft.vendor(candidate.vendor)
            if candidate.gateway.max_duration is not None:
                self._add_timer(now + candidate.gateway.max_duration, call_id, "duration")
        if session.held is None or session.tariff is None:
            return
        want, packages = self._wants(session, now)
        started = time.perf_counter()
        try:
            grant = self.store.mark_answered(
                call_id,
                session.account_id,
                self.wall(now),
                draft.to_json(),
                want=want,
                node=self.node,
                packages=packages,
            )
        except StoreError as exc:  # the money held at admission still bounds the call
            log.error("call %s: cannot record the answer: %s", call_id, exc)
            self._credit_deadline(session, session.held)
            return
        finally:
            self.ledger.observe("answer", time.perf_counter() - started)
        session.took(grant)
        self._credit_deadline(session, grant.amount)

    def call_ended(self, record: CallRecord) -> None:
        session = self.sessions.pop(record.call_id, None)
        if session is None:
            return
        end_now = record.end if record.end is not None else record.start
        self._release(session, end_now)
        answer = record.answer if session.answer_now is not None else None
        media = (
            json.dumps(record.media_packets, separators=(",", ":"), sort_keys=True)
            if record.media_packets
            else ""
        )
        termination = record.termination
        if answer is None and termination == ALL_ROUTES_FAILED and _hop_unreached(session):
            termination = CALLED_NOT_ONLINE  # the phone's node did not take the forwarded call
        cdr = session.draft.finish(
            end_time=self.wall(end_now),
            answer_time=None if answer is None else self.wall(answer),
            ring_time=None if record.ring is None else self.wall(record.ring),
            held=session.held,
            termination=termination,
            ended_by=record.ended_by,
            sip_code=record.final_status or 0,
            vendor_sip_code=session.vendor_status,
            media_quality=media,
            codecs=(record.codec_in, record.codec_out),
            allowance=session.allowance,
            outcome=CallOutcome.CONNECTED if record.established else CallOutcome.RESPONDED,
        )
        self._settle([(cdr, session.held is not None)])

    # -- timers --------------------------------------------------------------------------------

    def start(self, now: float) -> int:
        """At the node's start: settle what a previous run of this node left (see
        :meth:`recover`), learn the vendors' balances and start ticking; the CDRs recovered."""
        recovered = self.recover(now)
        self._refresh_vendor_funds()
        self._ensure_ticking(now)
        return recovered

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` should run next (node time), or None when nothing is pending."""
        self._drop_stale_timers()
        first = self._timers[0][0] if self._timers else None
        if self._next_tick is None:
            return first
        return self._next_tick if first is None else min(first, self._next_tick)

    def on_timer(self, now: float) -> None:
        """Run what is due at ``now``: the tick, credit deadlines, duration limits."""
        if self._next_tick is not None and now >= self._next_tick:
            self._next_tick = now + self.tick
            self.run_tick(now)
        while self._timers and self._timers[0][0] <= now:
            _, generation, call_id, kind = heapq.heappop(self._timers)
            session = self.sessions.get(call_id)
            if session is None or session.hangup_requested:
                continue
            if kind == "duration":
                self._request_hangup(session, MAX_DURATION)
            elif generation == session.generation:
                self._credit_due(session, now)

    def run_tick(self, now: float) -> None:
        """The periodic work: heartbeat, reservations grown, expiries, retries, lost nodes."""
        at = self.wall(now)
        self.collect()
        try:
            if self.unsettled:
                pending, self.unsettled = self.unsettled, []
                self._settle(pending)
            started = time.perf_counter()
            if self.cdr_writer is not None:
                # behind the calls already ended: never marks one of them alive (module doc)
                self.cdr_writer.heartbeat(self.node, at)
            else:
                self.store.heartbeat(self.node, at)
                self.ledger.observe("heartbeat", time.perf_counter() - started)
            self._share_line_counts(at)
            self._extend(now, at)
            self._refresh_vendor_funds()
            self.recover(now, stale=True)
            self._roll_packages(at)
        except StoreError as exc:
            log.error("billing tick: %s", exc)
        for session in list(self.sessions.values()):
            account = self.snapshot.accounts.get(session.account_id)
            if account is not None and account.expiry is not None and account.expiry <= at:
                self._request_hangup(session, ACCOUNT_EXPIRED)

    # -- configuration -------------------------------------------------------------------------

    def load_if_changed(self) -> Snapshot | None:
        """A new snapshot when the store's configuration moved on (reads only: any thread)."""
        if self.store.config_version() == self.snapshot.version:
            return None
        snapshot = load_snapshot(self.store, self._base, previous=self.snapshot)
        prepare(snapshot)  # its per-snapshot routing work here, in the loading thread
        return snapshot

    def install(self, snapshot: Snapshot) -> None:
        """Use ``snapshot`` for new calls (calls in progress keep what they were admitted with);
        calls of accounts now locked are hung up; the node is told changed SS_* overrides."""
        before = self.snapshot.overrides
        self.snapshot = snapshot
        self._note_rejected(snapshot)
        if snapshot.overrides != before:
            for watcher in self._parameter_watchers:
                try:
                    watcher(snapshot.overrides)
                except Exception:  # a node's settings must not stop the router's reload
                    log.exception("applying the stored parameters failed")
        p = snapshot.parameters
        self.quality.resize(
            p["SS_GATEWAY_ASR_RESERVE_TIME"],
            p["SS_GATEWAY_ASR_RESERVE_SEPARATE"],
            p["SS_GATEWAY_ACD_RESERVE_TIME"],
            p["SS_GATEWAY_ACD_RESERVE_SEPARATE"],
        )
        for session in list(self.sessions.values()):
            account = snapshot.accounts.get(session.account_id)
            if account is not None and account.locked and session.held is not None:
                self._request_hangup(session, ACCOUNT_LOCKED)

    def _note_rejected(self, snapshot: Snapshot) -> None:
        for name, text, why in snapshot.rejected:
            self.parameter_errors[name] = self.parameter_errors.get(name, 0) + 1
            kept = snapshot.stored.get(name)
            log.error(
                "stored parameter %s = %r refused: %s; %s",
                name,
                text,
                why,
                f"keeping {kept!r}" if kept is not None else "the node's file (or the default) applies",
            )

    def refresh(self) -> bool:
        """Reload the configuration if it changed (on this thread); whether it did."""
        snapshot = self.load_if_changed()
        if snapshot is None:
            return False
        self.install(snapshot)
        return True

    # -- crash recovery ------------------------------------------------------------------------

    def recover(self, now: float, *, stale: bool = False) -> int:
        """Settle reservations left by a crash: this node's own (at start), or with ``stale``
        those of any node not heard of for ``stale_after`` seconds. Answered calls are billed
        up to their last heartbeat. The CDRs written."""
        at = self.wall(now)
        ours = self.sessions.keys() | self._pending  # calls up, and calls whose CDR is being written
        if stale:
            found = self.store.reservations(silent_since=at - timedelta(seconds=self.stale_after))
            found = [r for r in found if r.node != self.node or r.call_id not in ours]
        else:
            found = [r for r in self.store.reservations(node=self.node) if r.call_id not in ours]
        cdrs: list[tuple[Cdr, bool]] = []
        for held in found:
            draft = CdrDraft.from_json(held.draft)
            cdr = draft.finish(
                end_time=held.alive_at,
                answer_time=held.answer_time,
                held=held.amount,
                termination=NODE_LOST if held.node != self.node else NODE_RESTART,
                ended_by="system",
                sip_code=200 if held.answer_time is not None else 0,
                allowance=Allowance(held.free_seconds, held.free_credit),
            )
            cdrs.append((cdr, True))
            log.warning(
                "call %s of node %s: recovered, CDR billed to %s", held.call_id, held.node, held.alive_at
            )
        self._settle(cdrs, wait=True)
        return len(cdrs)

    # -- internals -----------------------------------------------------------------------------

    def _draft(self, decision: Decision, at: datetime, media_mode: str) -> CdrDraft:
        call = decision.call
        assert decision.ingress is not None
        draft = CdrDraft(
            call_id=call.call_id,
            start_time=at,
            policy=self.snapshot.policy,
            caller=decision.caller or call.caller,
            caller_billing=decision.caller_billing,
            callee=call.callee,
            callee_billing=decision.callee_billing,
            source_ip=call.source[0],
            source_port=call.source[1],
            mapping_gateway="" if decision.phone is not None else decision.ingress.name,
            phone="" if decision.phone is None else decision.phone.number,
            account_id=decision.ingress.account_id,
            media_mode=media_mode,
        )
        choice = decision.rate.choice if decision.rate is not None else None
        if choice is not None:
            draft.rate(choice)
        return draft

    def _max_duration(self, session: _Session, free: Decimal, allowance: Allowance) -> float | None:
        limits: list[float] = []
        if session.tariff is not None:
            longest = max_duration_ms(session.tariff, free, policy=self.snapshot.policy, allowance=allowance)
            if longest is not None:
                limits.append(longest / 1000)
        ingress = session.decision.ingress
        if ingress is not None and ingress.max_duration is not None:
            limits.append(float(ingress.max_duration))
        switch_limit = int(self.snapshot.parameters["SS_MAX_CALL_DURATION"])
        if switch_limit:
            limits.append(float(switch_limit))
        return min(limits) if limits else None

    def _wants(self, session: _Session, now: float) -> tuple[Decimal, PackageRequest | None]:
        """What the call should hold to last to the tick after next (and a margin): the money
        without package benefits, and what it asks of its packages (None: it has none)."""
        assert session.tariff is not None and session.answer_now is not None
        hold_ms = max(round((now - session.answer_now + 2 * self.tick + 1.0) * 1000), 1)
        want = charge(session.tariff, hold_ms, policy=session.draft.policy).amount
        return want, self._package_request(session, hold_ms)

    def _line_request(self, session: _Session, at: datetime) -> LineRequest | None:
        """The limited lines the call asks the store for at admission (None: nothing limited)."""
        decision = session.decision
        ingress, account = decision.ingress, decision.account
        assert ingress is not None and account is not None
        own: list[Line] = []
        if ingress.max_calls is not None or ingress.max_cps is not None:
            own.append(Line(f"in:{ingress.id}", ingress.max_calls, ingress.max_cps))
        if account.max_calls is not None:
            own.append(Line(f"account:{account.id}", account.max_calls))
        candidates = decision.plan.ordered if decision.plan is not None else []
        session.route_lines = {c.gateway.name: self._gateway_lines(c.gateway) for c in candidates}
        # behind a node hop the gateways are a fallback: their lines are leased when tried
        by_gateway = session.route_lines
        routes = tuple(by_gateway[c.gateway.name] for c in candidates) if decision.hop is None else ()
        if not own and not any(routes):
            return None
        live = at - timedelta(seconds=self.line_ttl)
        return LineRequest(tuple(own), routes if any(routes) else (), live)

    def _gateway_lines(self, gw: RoutingGateway) -> tuple[Line, ...]:
        lines: list[Line] = []
        if gw.max_calls is not None or gw.max_cps is not None:
            lines.append(Line(f"out:{gw.id}", gw.max_calls, gw.max_cps))
        for group_id in gw.groups:
            group = self.snapshot.groups.get(group_id)
            if group is not None and group.max_calls is not None:
                # ordinary traffic leaves the reserved lines to protect routes (F.6-67)
                limit = group.max_calls if gw.protect else group.max_calls - group.reserved_lines
                lines.append(Line(f"group:{group_id}", limit))
        return tuple(lines)

    def _lease_route(self, session: _Session, gateway: str, now: float) -> bool:
        """Lease the lines of a route the call is about to try (unless it holds them)."""
        lines = session.route_lines.get(gateway, ())
        if not lines or gateway in session.leased:
            return True
        at = self.wall(now)
        try:
            busy = self.store.take_lines(
                session.call_id, self.node, lines, at, at - timedelta(seconds=self.line_ttl)
            )
        except StoreError as exc:  # the store is away: this node's own counts still limit it
            log.error("call %s: cannot lease the lines of %s: %s", session.call_id, gateway, exc)
            return True
        if busy:
            log.info("call %s: %s skipped: %s", session.call_id, gateway, busy)
            return False
        session.leased.add(gateway)
        return True

    def _package_request(
        self, session: _Session, hold_ms: int, *, minimum: bool = False
    ) -> PackageRequest | None:
        if not session.packages or session.tariff is None:
            return None
        return benefits.request(
            session.packages,
            session.tariff,
            session.draft.policy,
            hold_ms,
            response=session.decision.response_tariff,
            minimum=minimum,
        )

    def _credit_deadline(self, session: _Session, held: Decimal) -> None:
        """Schedule the instant ``held`` is spent (a new generation replaces the old one)."""
        assert session.tariff is not None and session.answer_now is not None
        longest = max_duration_ms(
            session.tariff, held, policy=session.draft.policy, allowance=session.allowance
        )
        session.generation += 1
        if longest is None:
            session.credit_deadline = None
            return
        session.credit_deadline = session.answer_now + longest / 1000 - HANGUP_LEAD
        self._add_timer(session.credit_deadline, session.call_id, "credit", session.generation)

    def _credit_due(self, session: _Session, now: float) -> None:
        """The held money is about to run out: take more if the account has it, else hang up."""
        if session.held is None or session.tariff is None or session.answer_now is None:
            return
        started = time.perf_counter()
        try:
            (grant,) = self.store.extend_holds(
                self.node, [(session.call_id, session.account_id, *self._wants(session, now))], self.wall(now)
            )
        except StoreError as exc:
            log.error("call %s: cannot extend the reservation: %s", session.call_id, exc)
            grant = None
        finally:
            self.ledger.observe("extend", time.perf_counter() - started)
        if grant is not None and session.took(grant):
            self._credit_deadline(session, grant.amount)
            if session.credit_deadline is None or session.credit_deadline > now:
                return
        self._request_hangup(session, INSUFFICIENT_BALANCE)

    def _extend(self, now: float, at: datetime) -> None:
        """Grow the reservations of answered calls whose money would not last two more ticks."""
        due = [
            s
            for s in self.sessions.values()
            if s.answer_now is not None
            and s.held is not None
            and s.tariff is not None
            and not s.hangup_requested
            and s.credit_deadline is not None
            and s.credit_deadline < now + 2 * self.tick
        ]
        if not due:
            return
        started = time.perf_counter()
        try:
            grants = self.store.extend_holds(
                self.node, [(s.call_id, s.account_id, *self._wants(s, now)) for s in due], at
            )
        finally:
            self.ledger.observe("extend", time.perf_counter() - started)
        for session, grant in zip(due, grants, strict=True):
            if session.took(grant):
                self._credit_deadline(session, grant.amount)

    def _refresh_vendor_funds(self) -> None:
        """Balance + credit of prepaid vendor accounts (for "prepaid vendor routing")."""
        vendors = [
            a.id for a in self.snapshot.accounts.values() if a.kind == "vendor" and a.billing == "prepaid"
        ]
        self._vendor_funds = self.store.funds(vendors) if vendors else {}

    def _share_line_counts(self, at: datetime) -> None:
        """Learn the lines the other nodes hold (for the routing order's line usage)."""
        shared: dict[Hashable, int] = {}
        for (key, node), count in self.store.line_counts(at - timedelta(seconds=self.line_ttl)).items():
            kind, _, number = key.partition(":")
            if node != self.node and number.isdigit():
                shared[(kind, int(number))] = shared.get((kind, int(number)), 0) + count
        self.counters.shared = shared

    def _roll_packages(self, at: datetime) -> None:
        """Turn the package periods that ended (new free pools, rent: docs/billing.md §5) of
        accounts whose calls did not already do it. The store bumps the configuration, so the
        next snapshot has the new periods; until then nothing is looked at again before the
        next period boundary the snapshot knows."""
        snap = self.snapshot
        if self._rolled == (snap.version, True) or (
            self._rolled == (snap.version, False) and (self._next_roll is None or at < self._next_roll)
        ):
            return
        due: set[int] = set()
        upcoming: list[datetime] = []
        for account_id, subs in snap.subscriptions.items():
            for sub in subs:
                if self._package_due(sub, at):
                    due.add(account_id)
                elif sub.start_time is not None and sub.period_start is not None:
                    upcoming.append(package_periods.next_period(sub.start_time, sub.period_start))
        self._next_roll = min(upcoming, default=None)
        if due:
            self.store.roll_packages(due, at)
        self._rolled = (snap.version, bool(due))

    def _package_due(self, sub: AccountPackage, at: datetime) -> bool:
        package = self.snapshot.packages.get(sub.package_id)
        if package is None or sub.start_time is None or sub.period_start is None:
            return False
        return package_periods.due(
            package_periods.Subscription(
                id=sub.id,
                package=package.name,
                start_time=sub.start_time,
                end_time=sub.end_time,
                period_start=sub.period_start,
                rent_period_start=sub.rent_period_start,
                free_seconds_used=sub.free_seconds_used,
                free_credit_used=sub.free_credit_used,
                rent_fee=package.rent_fee,
                free_seconds=package.free_seconds,
                free_credit=package.free_credit,
            ),
            at,
        )

    # -- the CDR path ----------------------------------------------------------------------------

    def collect(self) -> int:
        """Take in what the CDR writer finished (on the router's thread): the calls of committed
        batches are done, those of failed ones wait for the next tick. How many are done."""
        writer = self.cdr_writer
        if writer is None:
            return 0
        done = 0
        for outcome in writer.completed():
            self.ledger.observe("settle", outcome.seconds)  # one batch's transaction(s)
            for settlement in outcome.committed:
                self._pending.discard(settlement.cdr.call_id)
                self._finished(settlement.cdr)
                done += 1
            for settlement in outcome.failed:
                self._pending.discard(settlement.cdr.call_id)
                self._keep(settlement.cdr, settlement.reserved)
        if not self.unsettled:
            self.unsettled_since = None
        return done

    def _keep(self, cdr: Cdr, reserved: bool) -> None:
        """A CDR not written: retried at the next tick (its reservation holds the money)."""
        self.unsettled.append((cdr, reserved))
        if self.unsettled_since is None:
            self.unsettled_since = time.monotonic()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the CDRs queued so far to be written, and take them in; whether all were."""
        flushed = self.cdr_writer.flush(timeout) if self.cdr_writer is not None else True
        self.collect()
        return flushed

    def cdr_stats(self) -> dict[str, float | int]:
        """``cdr_queue_depth`` (calls waiting for their batch), the writer's counters and write
        latencies, and the CDRs waiting for a retry (``cdr_unsettled``)."""
        stats: dict[str, float | int] = {"cdr_queue_depth": 0}
        if self.cdr_writer is not None:
            stats.update(self.cdr_writer.stats())
        stats["cdr_unsettled"] = len(self.unsettled)
        return stats

    def _settle(self, cdrs: list[tuple[Cdr, bool]], *, wait: bool = False) -> None:
        """Write ended calls' CDRs: to the writer, or (no writer, or ``wait``) here and now."""
        if not cdrs:
            return
        writer = self.cdr_writer
        if writer is not None and not wait:
            for cdr, reserved in cdrs:
                if writer.submit(Settlement(cdr, reserved)):
                    self._pending.add(cdr.call_id)
                else:  # the queue is full: kept for the tick, its reservation holds the money
                    log.warning("call %s: the CDR queue is full (retrying at the next tick)", cdr.call_id)
                    self._keep(cdr, reserved)
            return
        held = {cdr.call_id for cdr, has_reservation in cdrs if has_reservation}
        started = time.perf_counter()
        try:
            self.store.settle_calls([cdr for cdr, _ in cdrs], reserved=held)
        except StoreError as exc:
            log.error("cannot write %d CDRs (retrying at the next tick): %s", len(cdrs), exc)
            self.unsettled.extend(cdrs)
            if self.unsettled_since is None:
                self.unsettled_since = time.monotonic()
            return
        finally:
            self.ledger.observe("settle", time.perf_counter() - started)
        if not self.unsettled:
            self.unsettled_since = None
        for cdr, _ in cdrs:
            self._finished(cdr)

    def _finished(self, cdr: Cdr) -> None:
        self.records.append(cdr)
        if self._done is not None:
            self._done(cdr.call_id, cdr)

    def _release(self, session: _Session, now: float) -> None:
        line = session.line
        if line is not None:
            if session.answered is None:  # given up (CANCEL…)
                self.quality.attempt(line.gateway.id, now, answered=False, connected=session.alerted)
            elif session.answer_now is not None:
                self.quality.call(line.gateway.id, now, now - session.answer_now)
            self._free_line(session)
        if session.counted:
            self.counters.stop(("in", session.ingress_id))
            self.counters.stop(("account", session.account_id))
            session.counted = False
        session.generation += 1  # its deadlines are void

    def _free_line(self, session: _Session) -> None:
        line = session.line
        if line is None:
            return
        self.counters.stop(("out", line.gateway.id))
        for group_id in line.gateway.groups:
            self.counters.stop(("group", group_id))
        session.line = None

    def _request_hangup(self, session: _Session, termination: str) -> None:
        if session.hangup_requested:
            return
        session.hangup_requested = True
        if self._hangup is None:
            log.warning("call %s: %s, but no node asked to be told", session.call_id, termination)
            return
        self._hangup(session.call_id, termination)

    def _add_timer(self, when: float, call_id: str, kind: str, generation: int = 0) -> None:
        earliest = self.next_deadline()
        heapq.heappush(self._timers, (when, generation, call_id, kind))
        if self.wakeup is not None and (earliest is None or when < earliest):
            self.wakeup(when)

    def _drop_stale_timers(self) -> None:
        while self._timers:
            _, generation, call_id, kind = self._timers[0]
            session = self.sessions.get(call_id)
            alive = session is not None and not session.hangup_requested
            if alive and session is not None and (kind == "duration" or generation == session.generation):
                return
            heapq.heappop(self._timers)

    def _ensure_ticking(self, now: float) -> None:
        if self._next_tick is None:
            self._next_tick = now + self.tick
            if self.wakeup is not None:
                self.wakeup(self._next_tick)


def _hop_unreached(session: _Session) -> bool:
    """The call's last attempt was forwarded to the node holding the phone's registration, and
    that node did not answer (408), could not be reached or refused (503), or no longer has the
    phone (480): for the CDR the phone was not online."""
    tried = session.draft.gateways_tried
    last = tried[-1] if tried else ""
    return last.startswith("phone:") and "@" in last and session.vendor_status in {408, 480, 503}


def _lines_busy(full: str) -> Rejection:
    """The refusal of a call whose limited lines are taken (by any node): its own lines (the
    mapping gateway's, the account's) as the limit says, every route's as AllGatewayBusy."""
    if full.startswith(("in:", "account:")):
        return Rejection(503, "Service Unavailable", CPS_LIMIT if full.endswith("CPS") else CALL_LIMIT)
    return Rejection(503, "Service Unavailable", ALL_GATEWAY_BUSY)
