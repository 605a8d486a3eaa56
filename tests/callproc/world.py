"""A small operator's configuration in a store, and a fake node driving a StoreRouter.

The fake node does what signaling/b2bua does with a router, on a fake clock: admit, report each
attempt, the answer and the end, and honour "hang up now" at once. Time is node time (seconds);
node time 1000.0 is :data:`T0` (a Wednesday, 10:00 UTC, working time for the test calendars).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from signaling.callproc import StoreRouter
from signaling.routing import Admission, CallRecord, InboundCall, Route
from signaling.store import (
    Account,
    AccountPackage,
    MappingGateway,
    Package,
    Rate,
    RateGroup,
    RoutingGateway,
    Store,
)

T0 = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)
NODE_T0 = 1000.0
CUSTOMER_IP = "10.0.0.1"


def d(text: str) -> Decimal:
    return Decimal(text)


@dataclass
class Ids:
    customer: int = 0
    vendor: int = 0
    retail: int = 0
    wholesale: int = 0
    ingress: int = 0


def basic_world(
    store: Store,
    *,
    balance: str = "10",
    credit: str = "0",
    customer_rates: tuple[tuple[object, ...], ...] = (("1", "0.02", 60, "0.01", 6),),
    vendor_rates: tuple[tuple[object, ...], ...] = (("1", "0.005", 6, "0.005", 6),),
    gateways: tuple[dict[str, object], ...] = ({"name": "carrier-a", "prefixes": ("1",)},),
    mapping: dict[str, object] | None = None,
) -> Ids:
    """One customer (account 1001 behind mapping gateway "cust" at 10.0.0.1), one vendor
    account, a customer rate group and a vendor rate group, and the routing gateways given
    (each ``RoutingGateway`` keyword arguments; host 127.0.0.1, the vendor's rates and account).
    Rates are ``(prefix, first_time_rate, first_time_duration, billing_rate, billing_cycle[,
    connection_fee])``."""
    admin = store.admin(operator="test")
    ids = Ids()
    ids.retail = admin.create(RateGroup("retail")).id
    ids.wholesale = admin.create(RateGroup("wholesale")).id
    admin.add_rates(
        [rate(ids.retail, spec) for spec in customer_rates]
        + [rate(ids.wholesale, spec) for spec in vendor_rates]
    )
    ids.customer = admin.create(
        Account(code="1001", rate_group_id=ids.retail, balance=d(balance), credit_limit=d(credit))
    ).id
    ids.vendor = admin.create(Account(code="v1", kind="vendor", billing="postpaid")).id
    ingress: dict[str, object] = {"addresses": (CUSTOMER_IP,)}
    ingress.update(mapping or {})
    ids.ingress = admin.create(MappingGateway("cust", ids.customer, **ingress)).id  # type: ignore[arg-type]
    for i, spec in enumerate(gateways):
        options: dict[str, object] = {
            "host": "127.0.0.1",
            "port": 5080 + i,
            "account_id": ids.vendor,
            "rate_group_id": ids.wholesale,
        }
        options.update(spec)
        admin.create(RoutingGateway(**options))  # type: ignore[arg-type]
    return ids


def rate(group: int, spec: tuple[object, ...]) -> Rate:
    """``spec`` = (prefix, first_time_rate, first_time_duration, billing_rate, billing_cycle[,
    connection_fee])."""
    prefix, first, first_duration, billing, cycle, fee = (*spec, "0") if len(spec) == 5 else spec
    return Rate(
        group,
        str(prefix),
        first_time_rate=d(str(first)),
        first_time_duration=int(str(first_duration)),
        billing_rate=d(str(billing)),
        billing_cycle=int(str(cycle)),
        connection_fee=d(str(fee)),
    )


@dataclass
class FakeNode:
    """Drives a router the way the B2BUA does, on a fake clock."""

    router: StoreRouter
    now: float = NODE_T0
    hangups: list[tuple[str, str]] = field(default_factory=list)
    records: dict[str, CallRecord] = field(default_factory=dict)
    admissions: dict[str, Admission] = field(default_factory=dict)
    current: dict[str, Route] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.router.on_hangup_request(self._hangup)

    @classmethod
    def on(cls, store: Store, **options: object) -> FakeNode:
        options.setdefault("clock_offset", lambda: T0.timestamp() - NODE_T0)
        router = StoreRouter(store, **options)  # type: ignore[arg-type]
        return cls(router)

    def _hangup(self, call_id: str, termination: str) -> bool:
        self.hangups.append((call_id, termination))
        if call_id in self.records and call_id not in self.ended:
            self.end(call_id, termination=termination, ended_by="switch")
            return True
        return False

    def admit(
        self,
        call_id: str,
        callee: str,
        *,
        caller: str = "5550001",
        source: tuple[str, int] = (CUSTOMER_IP, 5060),
    ) -> Admission:
        admission = self.router.admit(InboundCall(call_id, source, "udp", caller, callee), self.now)
        self.admissions[call_id] = admission
        record = CallRecord(call_id, admission.ingress, caller, callee, source, start=self.now)
        self.records[call_id] = record
        if admission.rejection is not None:
            record.final_status = admission.rejection.status
            record.termination = admission.rejection.termination
            record.end = self.now
            self.ended.append(call_id)
            self.router.call_ended(record)
        return admission

    def try_route(self, call_id: str, index: int = 0) -> Route:
        route = self.admissions[call_id].routes[index]
        self.current[call_id] = route
        self.records[call_id].attempts += 1
        self.records[call_id].gateway = route.gateway
        self.router.attempt_started(call_id, route, self.now)
        return route

    def alert(self, call_id: str, status: int = 180) -> None:
        """The current attempt rings (180) or sends early media (183)."""
        self.router.attempt_progress(call_id, self.current[call_id], status, self.now)

    def fail(self, call_id: str, status: int) -> None:
        self.router.attempt_ended(call_id, self.current[call_id], status, self.now)

    def answer(self, call_id: str, index: int = 0, *, acked: bool = True) -> Route:
        """The route answers; ``acked``: the caller acknowledges the answer (the call connects)."""
        route = self.try_route(call_id, index)
        record = self.records[call_id]
        record.answer = self.now
        record.final_status = 200
        record.established = acked
        self.router.call_answered(call_id, route, self.now)
        return route

    def end(
        self,
        call_id: str,
        *,
        termination: str = "Normal",
        ended_by: str = "caller",
        status: int | None = None,
    ) -> CallRecord:
        record = self.records[call_id]
        record.end = self.now
        record.termination = termination
        record.ended_by = ended_by
        if status is not None:
            record.final_status = status
        self.ended.append(call_id)
        self.router.call_ended(record)
        return record

    def advance(self, seconds: float) -> None:
        """Move the clock, running the router's timers at their exact times."""
        target = self.now + seconds
        while True:
            due = self.router.next_deadline()
            if due is None or due > target:
                break
            self.now = max(self.now, due)
            self.router.on_timer(self.now)
        self.now = target


def subscribe(
    store: Store,
    ids: Ids,
    *,
    free_seconds: int = 0,
    free_credit: str = "0",
    rent: str = "0",
    prefixes: tuple[str, ...] = (),
    used: int = 0,
    start: datetime = T0 - timedelta(days=1),
    rent_paid: bool = True,
    period_rate_id: int | None = None,
    name: str = "pkg",
) -> AccountPackage:
    """A package and the customer's subscription to it, ``used`` free seconds already used in
    the current period (which started at ``start``); its rent paid for that period unless told."""
    admin = store.admin()
    package = admin.create(
        Package(
            name,
            rent_fee=d(rent),
            free_seconds=free_seconds,
            free_credit=d(free_credit),
            free_prefixes=prefixes,
            period_rate_id=period_rate_id,
        )
    )
    return admin.create(
        AccountPackage(
            ids.customer,
            package.id,
            start_time=start,
            period_start=start,
            free_seconds_used=used,
            rent_period_start=start if rent_paid else None,
        )
    )


def usage(store: Store, sub_id: int) -> tuple[int, Decimal]:
    sub = store.admin().get(AccountPackage, sub_id)
    return sub.free_seconds_used, sub.free_credit_used
