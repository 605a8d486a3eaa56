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
  reservation dropped, in one transaction before the method returns.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from signaling.billing import Tariff, charge, max_duration_ms
from signaling.callproc.admission import (
    ACCOUNT_EXPIRED,
    ACCOUNT_LOCKED,
    INSUFFICIENT_BALANCE,
    Decision,
    decide,
)
from signaling.callproc.draft import CdrDraft, utc
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.routes import Candidate
from signaling.callproc.snapshot import Snapshot, load_snapshot
from signaling.observe.histogram import Histograms
from signaling.routing import Admission, CallRecord, InboundCall, Rejection, Route
from signaling.store import Cdr, Store, StoreError

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
        rng: random.Random | None = None,
        snapshot: Snapshot | None = None,
        keep_records: int = 1000,
    ) -> None:
        self.store = store
        self.node = node
        self.tick = tick
        self.stale_after = stale_after
        self._base = dict(parameters or {})
        self._offset = clock_offset
        self._rng = rng
        self.snapshot = snapshot if snapshot is not None else load_snapshot(store, self._base)
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
        self._hangup: Callable[[str, str], object] | None = None
        self._timers: list[tuple[float, int, str, str]] = []
        self._next_tick: float | None = None
        self._vendor_funds: dict[int, Decimal] = {}
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

    def password_for(self, username: str) -> str | None:
        """The digest password of a password-authenticated mapping gateway (for the node's
        challenger; see docs/routing.md)."""
        gw = self.snapshot.by_user.get(username)
        return None if gw is None else gw.password

    def gateway_addresses(self) -> set[str]:
        """The IPs of every mapping and routing gateway (the scanner defence trusts them)."""
        snap = self.snapshot
        ips = set(snap.by_ip) | {ip for ip, _ in snap.by_ip_port}
        ips.update(gw.host for gw in snap.routing.values() if gw.host)
        return ips

    def gateway_targets(self) -> list[tuple[str, str, int, str]]:
        """(name, host, port, transport) of every routing gateway with an address (OPTIONS probes)."""
        return [(g.name, g.host, g.port, g.transport) for g in self.snapshot.routing.values() if g.host]

    def duration_alarm_suppressed(self, call_id: str) -> bool:
        """The call's account has "Suppressing all duration too long alarm" (F.5-50)."""
        session = self.sessions.get(call_id)
        account = self.snapshot.accounts.get(session.account_id) if session is not None else None
        return account is not None and account.suppress_duration_alarm

    def watched_accounts(self) -> dict[int, str]:
        """Accounts whose balance the "balance low" alarm watches (id -> code): every unlocked
        one but postpaid vendors (their balance is what we owe them, not what they hold)."""
        return {
            a.id: a.code
            for a in self.snapshot.accounts.values()
            if not a.locked and not (a.kind == "vendor" and a.billing == "postpaid")
        }

    def admit(self, call: InboundCall, now: float) -> Admission:
        snap = self.snapshot
        at = self.wall(now)
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
        )
        ingress = decision.ingress
        if decision.needs_auth:
            return Admission(ingress="", needs_auth=True)
        default_proxy = str(snap.parameters["SS_MEDIAPROXYMODE"])
        admission = Admission(
            ingress="" if ingress is None else ingress.name,
            media_proxy=(ingress.media_proxy if ingress else None) or default_proxy,
            dtmf=ingress.dtmf if ingress else "auto",
            session_timer=ingress.session_timer if ingress else True,
            support_privacy=ingress.support_privacy if ingress else False,
        )
        if ingress is None or decision.account is None:
            admission.rejection = decision.rejection
            return admission  # an unknown source: no account to write a CDR for
        draft = self._draft(decision, at, admission.media_proxy)
        session = _Session(
            call.call_id, decision, draft, decision.account.id, ingress.id, decision.tariff, None
        )
        self.sessions[call.call_id] = session
        if decision.rejection is not None:
            admission.rejection = decision.rejection
            return admission
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
            )
        except StoreError as exc:
            log.error("call %s: cannot reserve: %s", call.call_id, exc)
            admission.rejection = Rejection(503, "Service Unavailable", STORE_UNAVAILABLE)
            return admission
        finally:
            self.ledger.observe("hold", time.perf_counter() - started)
        if not grant.ok:
            admission.rejection = Rejection(403, "Forbidden", INSUFFICIENT_BALANCE)
            return admission
        session.held = grant.amount
        admission.routes = decision.routes
        admission.max_duration = self._max_duration(session, grant.free)
        session.candidates = {c.gateway.name: c for c in decision.plan.ordered} if decision.plan else {}
        self.counters.start(("in", ingress.id), now)
        self.counters.start(("account", session.account_id), now)
        session.counted = True
        self._ensure_ticking(now)
        return admission

    def attempt_started(self, call_id: str, route: Route, now: float) -> None:
        session = self.sessions.get(call_id)
        if session is None:
            return
        if session.line is not None:  # the same carrier again (422 Min-SE): its line is reused
            self._free_line(session)
        candidate = session.candidates.get(route.gateway)
        if candidate is None:
            return
        day = self._day(self.wall(now))
        self.counters.start(("out", candidate.gateway.id), now, day)
        for group_id in candidate.gateway.groups:
            self.counters.start(("group", group_id), now)
        session.line = candidate
        session.draft.gateways_tried.append(route.gateway)
        session.draft.callee_out = route.callee
        session.draft.caller_out = route.caller

    def attempt_ended(self, call_id: str, route: Route, status: int, now: float) -> None:
        session = self.sessions.get(call_id)
        if session is None:
            return
        session.vendor_status = status
        line = session.line
        if line is not None and line.gateway.name == route.gateway and session.answered is None:
            self.quality.attempt(line.gateway.id, now, answered=False)
            self._free_line(session)

    def call_answered(self, call_id: str, route: Route, now: float) -> None:
        session = self.sessions.get(call_id)
        if session is None:
            return
        if session.line is None or session.line.gateway.name != route.gateway:
            self.attempt_started(call_id, route, now)  # an answer on a route never reported tried
        candidate = session.line
        if candidate is None:
            return
        session.answered = candidate
        session.answer_now = now
        session.vendor_status = 200
        self.quality.attempt(candidate.gateway.id, now, answered=True)
        draft = session.draft
        draft.routing_gateway = candidate.gateway.name
        draft.clearing_account_id = candidate.gateway.account_id
        draft.vendor(candidate.vendor)
        if candidate.gateway.max_duration is not None:
            self._add_timer(now + candidate.gateway.max_duration, call_id, "duration")
        if session.held is None or session.tariff is None:
            return
        want = self._want(session, now)
        started = time.perf_counter()
        try:
            grant = self.store.mark_answered(
                call_id, session.account_id, self.wall(now), draft.to_json(), want=want, node=self.node
            )
        except StoreError as exc:  # the money held at admission still bounds the call
            log.error("call %s: cannot record the answer: %s", call_id, exc)
            self._credit_deadline(session, session.held)
            return
        finally:
            self.ledger.observe("answer", time.perf_counter() - started)
        session.held = grant.amount
        self._credit_deadline(session, grant.amount)

    def call_ended(self, record: CallRecord) -> None:
        session = self.sessions.pop(record.call_id, None)
        if session is None:
            return
        end_now = record.end if record.end is not None else record.start
        self._release(session, end_now)
        answer = record.answer if session.answered is not None else None
        media = (
            json.dumps(record.media_packets, separators=(",", ":"), sort_keys=True)
            if record.media_packets
            else ""
        )
        cdr = session.draft.finish(
            end_time=self.wall(end_now),
            answer_time=None if answer is None else self.wall(answer),
            ring_time=None if record.ring is None else self.wall(record.ring),
            held=session.held,
            termination=record.termination,
            ended_by=record.ended_by,
            sip_code=record.final_status or 0,
            vendor_sip_code=session.vendor_status,
            media_quality=media,
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
        try:
            if self.unsettled:
                pending, self.unsettled = self.unsettled, []
                self._settle(pending)
            started = time.perf_counter()
            self.store.heartbeat(self.node, at)
            self.ledger.observe("heartbeat", time.perf_counter() - started)
            self._extend(now, at)
            self._refresh_vendor_funds()
            self.recover(now, stale=True)
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
        return load_snapshot(self.store, self._base)

    def install(self, snapshot: Snapshot) -> None:
        """Use ``snapshot`` for new calls (calls in progress keep what they were admitted with);
        calls of accounts now locked are hung up."""
        self.snapshot = snapshot
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
        if stale:
            found = self.store.reservations(silent_since=at - timedelta(seconds=self.stale_after))
            found = [r for r in found if r.node != self.node or r.call_id not in self.sessions]
        else:
            found = [r for r in self.store.reservations(node=self.node) if r.call_id not in self.sessions]
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
            )
            cdrs.append((cdr, True))
            log.warning(
                "call %s of node %s: recovered, CDR billed to %s", held.call_id, held.node, held.alive_at
            )
        self._settle(cdrs)
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
            mapping_gateway=decision.ingress.name,
            account_id=decision.ingress.account_id,
            media_mode=media_mode,
        )
        choice = decision.rate.choice if decision.rate is not None else None
        if choice is not None:
            draft.rate(choice)
        return draft

    def _max_duration(self, session: _Session, free: Decimal) -> float | None:
        limits: list[float] = []
        if session.tariff is not None:
            longest = max_duration_ms(session.tariff, free, policy=self.snapshot.policy)
            if longest is not None:
                limits.append(longest / 1000)
        ingress = session.decision.ingress
        if ingress is not None and ingress.max_duration is not None:
            limits.append(float(ingress.max_duration))
        switch_limit = int(self.snapshot.parameters["SS_MAX_CALL_DURATION"])
        if switch_limit:
            limits.append(float(switch_limit))
        return min(limits) if limits else None

    def _want(self, session: _Session, now: float) -> Decimal:
        """The money the call should hold to last to the tick after next (and a margin)."""
        assert session.tariff is not None and session.answer_now is not None
        hold_ms = round((now - session.answer_now + 2 * self.tick + 1.0) * 1000)
        return charge(session.tariff, max(hold_ms, 1), policy=self.snapshot.policy).amount

    def _credit_deadline(self, session: _Session, held: Decimal) -> None:
        """Schedule the instant ``held`` is spent (a new generation replaces the old one)."""
        assert session.tariff is not None and session.answer_now is not None
        longest = max_duration_ms(session.tariff, held, policy=session.draft.policy)
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
                self.node, [(session.call_id, session.account_id, self._want(session, now))], self.wall(now)
            )
        except StoreError as exc:
            log.error("call %s: cannot extend the reservation: %s", session.call_id, exc)
            grant = None
        finally:
            self.ledger.observe("extend", time.perf_counter() - started)
        if grant is not None and grant.amount > session.held:
            session.held = grant.amount
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
                self.node, [(s.call_id, s.account_id, self._want(s, now)) for s in due], at
            )
        finally:
            self.ledger.observe("extend", time.perf_counter() - started)
        for session, grant in zip(due, grants, strict=True):
            if session.held is None or grant.amount != session.held:
                session.held = grant.amount
                self._credit_deadline(session, grant.amount)

    def _refresh_vendor_funds(self) -> None:
        """Balance + credit of prepaid vendor accounts (for "prepaid vendor routing")."""
        vendors = [
            a.id for a in self.snapshot.accounts.values() if a.kind == "vendor" and a.billing == "prepaid"
        ]
        self._vendor_funds = self.store.funds(vendors) if vendors else {}

    def _settle(self, cdrs: list[tuple[Cdr, bool]]) -> None:
        if not cdrs:
            return
        reserved = {cdr.call_id for cdr, has_reservation in cdrs if has_reservation}
        started = time.perf_counter()
        try:
            self.store.settle_calls([cdr for cdr, _ in cdrs], reserved=reserved)
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
        self.records.extend(cdr for cdr, _ in cdrs)

    def _release(self, session: _Session, now: float) -> None:
        line = session.line
        if line is not None:
            if session.answered is None:
                self.quality.attempt(line.gateway.id, now, answered=False)  # given up (CANCEL…)
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
