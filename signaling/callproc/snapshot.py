"""The configuration a node routes and rates with, read from the store into memory at once.

A :class:`Snapshot` is immutable once built: the router swaps in a new one when
``Store.config_version()`` moves, and calls already admitted keep the objects they were admitted
with (routes, tariffs), so a reload never disturbs a call in progress. Nothing on the per-call
path reads the database for configuration; everything a call needs is a dictionary lookup here.

Store records are kept as they are (frozen dataclasses); what the per-call path needs in another
shape is built once: billing :class:`~signaling.billing.RateGroup` tables (longest-prefix lookup
with effective-time versions), compiled dial plans, work calendars, the mapping-gateway address
and user-name indexes and the routing-gateway prefix index.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from signaling import params
from signaling.billing import (
    BillingPolicy,
    DialPlan,
    DialPlanError,
    PeriodSwitches,
    Tariff,
)
from signaling.billing import PeriodRate as BillingPeriodRate
from signaling.billing import Rate as BillingRate
from signaling.billing import RateGroup as BillingRateGroup
from signaling.billing import WorkCalendar as BillingCalendar
from signaling.store import (
    Account,
    AccountPackage,
    GatewayGroup,
    MappingGateway,
    Package,
    PeriodRate,
    Phone,
    RoutingGateway,
    Store,
    WorkCalendar,
    codec,
    table,
)
from signaling.store import parameters as server_parameters
from signaling.store.codec import EPOCH, Kind
from signaling.store.gateways import parse_address

log = logging.getLogger("softswitch.callproc")

_RATE_COLUMNS = (
    "rate_group_id, prefix, destination, effective_time, first_time_rate, first_time_duration, "
    "billing_rate, billing_cycle, connection_fee, call_type, response_first_time_rate, "
    "response_first_time_duration, response_billing_rate, response_billing_cycle, "
    "response_connection_fee"
)


@dataclass(frozen=True, slots=True)
class Plans:
    """A gateway's compiled dial plans; ``error`` says why they could not be compiled."""

    callee: DialPlan = field(default_factory=DialPlan)
    caller: DialPlan = field(default_factory=DialPlan)
    error: str = ""


@dataclass(slots=True)
class Snapshot:
    version: int
    #: SS_* parameters (defaults, the node's file, then the store's overrides).
    parameters: dict[str, Any]
    policy: BillingPolicy
    switches: PeriodSwitches
    accounts: dict[int, Account]
    mapping: dict[int, MappingGateway]
    routing: dict[int, RoutingGateway]
    groups: dict[int, GatewayGroup]
    rate_groups: dict[int, BillingRateGroup]
    period_rates: dict[int, PeriodRate]
    calendars: dict[int, BillingCalendar]
    packages: dict[int, Package]
    #: account id -> its package subscriptions
    subscriptions: dict[int, list[AccountPackage]]
    mapping_plans: dict[int, Plans]
    routing_plans: dict[int, Plans]
    #: IP -> mapping gateways (auth_mode "ip"); (IP, port) -> mapping gateways ("ip_port");
    #: several customers may share an address and be told apart by their callee prefixes
    by_ip: dict[str, list[MappingGateway]]
    by_ip_port: dict[tuple[str, int], list[MappingGateway]]
    #: digest user name -> mapping gateway ("password")
    by_user: dict[str, MappingGateway]
    #: number prefix -> routing gateway ids serving it ("" = every destination)
    prefix_index: dict[str, list[int]]
    longest_prefix: int
    #: group id -> routing gateway ids in it
    members: dict[int, list[int]]
    #: Phones (SIP users of accounts): by number (calls to them), and the ingress each one's
    #: own calls come in by — a password mapping gateway made from the phone, id = -phone id,
    #: also listed in ``by_user`` (see :func:`phone_gateway`).
    phones_by_number: dict[str, Phone] = field(default_factory=dict)
    phone_of_ingress: dict[int, Phone] = field(default_factory=dict)

    def mapping_by_name(self, name: str) -> MappingGateway | None:
        return next((gw for gw in self.mapping.values() if gw.name == name), None)

    def routing_by_name(self, name: str) -> RoutingGateway | None:
        return next((gw for gw in self.routing.values() if gw.name == name), None)

    def period_rate_for(self, account: Account, at: datetime) -> BillingPeriodRate | None:
        """The account's period rate (its own, else its active package's), as billing wants it,
        on the account's work calendar when it has one bound (reference §C.4)."""
        period_id = account.period_rate_id
        if period_id is None:
            for sub in self.subscriptions.get(account.id, ()):
                if sub.start_time is not None and sub.start_time > at:
                    continue
                if sub.end_time is not None and sub.end_time <= at:
                    continue
                package = self.packages.get(sub.package_id)
                if package is not None and package.period_rate_id is not None:
                    period_id = package.period_rate_id
                    break
        if period_id is None:
            return None
        stored = self.period_rates.get(period_id)
        if stored is None:
            return None
        calendar_id = account.work_calendar_id or stored.work_calendar_id
        calendar = self.calendars.get(calendar_id)
        if calendar is None:
            return None
        return BillingPeriodRate(
            stored.name,
            calendar,
            self._period_side(stored.working_rate_group_id, stored.working_multiplier),
            self._period_side(stored.non_working_rate_group_id, stored.non_working_multiplier),
        )

    def _period_side(self, group_id: int | None, multiplier: Decimal) -> BillingRateGroup | Decimal:
        if group_id is not None and group_id in self.rate_groups:
            return self.rate_groups[group_id]
        return multiplier


def _tariff(row: tuple[Any, ...], d: codec.Dialect) -> Tariff:
    """A tariff from ``(first_time_rate, first_time_duration, billing_rate, billing_cycle,
    connection_fee)`` driver values."""
    first_rate, first_duration, rate, cycle, fee = row
    return Tariff(
        _decode(d, Kind.RATE, first_rate),
        int(first_duration),
        _decode(d, Kind.RATE, rate),
        int(cycle),
        _decode(d, Kind.MONEY, fee),
    )


def _decode(d: codec.Dialect, kind: Kind, value: object) -> Decimal:
    out = codec.decode(d, kind, value)
    assert isinstance(out, Decimal)
    return out


def _rate_groups(store: Store) -> dict[int, BillingRateGroup]:
    """Every rate group as a billing table, read with one query (a million rates load in seconds:
    no record validation, the store checked each rate when it was written)."""
    by_group: dict[int, list[BillingRate]] = {}
    with store.db.transaction(write=False) as tx:
        d = tx.dialect
        names = {int(i): str(n) for i, n in tx.execute("SELECT id, name FROM rate_group")}
        for row in tx.execute(f"SELECT {_RATE_COLUMNS} FROM rate"):  # noqa: S608
            effective = codec.decode_time(d, row[3])
            response = None
            if row[12] is not None:
                response = _tariff(row[10:15], d)
            by_group.setdefault(int(row[0]), []).append(
                BillingRate(
                    prefix=str(row[1]),
                    connected=_tariff(row[4:9], d),
                    response=response,
                    effective=None if effective is None or effective == EPOCH else effective,
                    destination=str(row[2]),
                    call_type=str(row[9]),
                )
            )
    return {gid: BillingRateGroup(name, by_group.get(gid, ())) for gid, name in names.items()}


def _calendar(stored: WorkCalendar) -> BillingCalendar:
    start_h, start_m = (int(x) for x in stored.work_start.split(":"))
    end_h, end_m = (int(x) for x in stored.work_end.split(":"))
    return BillingCalendar(
        stored.name,
        frozenset(stored.working_days),
        time(start_h, start_m),
        None if (end_h, end_m) == (24, 0) else time(end_h, end_m),
        frozenset(date.fromisoformat(day) for day in stored.holidays),
        ZoneInfo(stored.timezone),
    )


def _plans(name: str, callee: str, caller: str) -> Plans:
    try:
        return Plans(DialPlan.parse(callee), DialPlan.parse(caller))
    except DialPlanError as exc:
        log.error("%s: %s", name, exc)
        return Plans(error=str(exc))


def resolve_parameters(base: Mapping[str, Any], stored: Mapping[str, str]) -> dict[str, Any]:
    """SS_* parameters: ``base`` (defaults and the node's file) overlaid with the store's."""
    out = params.resolve({})
    out.update(base)
    for name, text in stored.items():
        parameter = params.PARAMETERS.get(name)
        if parameter is not None:  # checked when it was stored; parsed the same way here
            params.assign(out, name, parameter.parse(text))
    return out


def _policy(stored: Mapping[str, str], base: Mapping[str, Any]) -> tuple[BillingPolicy, PeriodSwitches]:
    """SERVER_* billing parameters: the store's override, else the node file's, else the default."""

    def value(name: str) -> object:
        if name not in stored and name in base:
            return base[name]
        return server_parameters.server_value(name, stored.get(name))

    places = value("SERVER_BILLING_FEE_PRECISION")
    precision = value("SERVER_BILLING_HOLD_TIME_PRECISION")
    assert isinstance(places, int) and isinstance(precision, int)
    switches = PeriodSwitches(
        bool(value("SERVER_WORK_CALENDAR_ENABLED")), bool(value("SERVER_PERIOD_RATE_ENABLED"))
    )
    return BillingPolicy(fee_places=places, hold_time_precision_ms=precision), switches


def load_snapshot(store: Store, base_parameters: Mapping[str, Any] | None = None) -> Snapshot:
    """Read the whole configuration (one read transaction per table family)."""
    version = store.config_version()  # first: a change made while loading is picked up next time
    stored = store.parameters()
    policy, switches = _policy(stored, base_parameters or {})
    with store.db.transaction(write=False) as tx:
        accounts = {a.id: a for a in table.select(tx, Account)}
        mapping = {g.id: g for g in table.select(tx, MappingGateway)}
        routing = {g.id: g for g in table.select(tx, RoutingGateway)}
        groups = {g.id: g for g in table.select(tx, GatewayGroup)}
        period_rates = {p.id: p for p in table.select(tx, PeriodRate)}
        calendars = {c.id: _calendar(c) for c in table.select(tx, WorkCalendar)}
        packages = {p.id: p for p in table.select(tx, Package)}
        subscriptions: dict[int, list[AccountPackage]] = {}
        for sub in table.select(tx, AccountPackage):
            subscriptions.setdefault(sub.account_id, []).append(sub)
    rate_groups = _rate_groups(store)
    snap = Snapshot(
        version=version,
        parameters=resolve_parameters(base_parameters or {}, stored),
        policy=policy,
        switches=switches,
        accounts=accounts,
        mapping=mapping,
        routing=routing,
        groups=groups,
        rate_groups=rate_groups,
        period_rates=period_rates,
        calendars=calendars,
        packages=packages,
        subscriptions=subscriptions,
        mapping_plans={},
        routing_plans={},
        by_ip={},
        by_ip_port={},
        by_user={},
        prefix_index={},
        longest_prefix=0,
        members={},
    )
    for gw in mapping.values():
        snap.mapping_plans[gw.id] = _plans(
            f"mapping gateway {gw.name}", gw.callee_dial_plan, gw.caller_dial_plan
        )
        if gw.auth_mode == "password" and gw.username:
            snap.by_user[gw.username] = gw
            continue
        for text in gw.addresses:
            ip, port = parse_address(text)
            if port is not None:  # ip_port mode, or an ip-mode address given with its port
                snap.by_ip_port.setdefault((ip, port), []).append(gw)
            else:
                snap.by_ip.setdefault(ip, []).append(gw)
    for rgw in routing.values():
        snap.routing_plans[rgw.id] = _plans(
            f"routing gateway {rgw.name}", rgw.callee_dial_plan, rgw.caller_dial_plan
        )
        for prefix in rgw.prefixes or ("",):
            snap.prefix_index.setdefault(prefix, []).append(rgw.id)
            snap.longest_prefix = max(snap.longest_prefix, len(prefix))
        for group_id in rgw.groups:
            snap.members.setdefault(group_id, []).append(rgw.id)
    _add_phones(store, snap)
    return snap


def phone_gateway(phone: Phone) -> MappingGateway:
    """The ingress of a phone's calls: digest-authenticated by the phone's SIP user and password,
    its account, its line limit and lock, and its callee dial plan (applied before routing, like
    a mapping gateway's: reference §4 "Phone dial plan")."""
    return MappingGateway(
        name=f"phone:{phone.number}",
        account_id=phone.account_id,
        auth_mode="password",
        username=phone.sip_user or phone.number,
        password=phone.sip_password,
        callee_dial_plan=phone.callee_dial_plan,
        max_calls=phone.max_calls,
        locked=phone.locked,
        id=-phone.id,
    )


def _add_phones(store: Store, snap: Snapshot) -> None:
    with store.db.transaction(write=False) as tx:
        phones = table.select(tx, Phone)
    for phone in phones:
        snap.phones_by_number[phone.number] = phone
        gateway = phone_gateway(phone)
        snap.phone_of_ingress[gateway.id] = phone
        snap.mapping_plans[gateway.id] = _plans(f"phone {phone.number}", gateway.callee_dial_plan, "")
        if gateway.username is not None:
            snap.by_user[gateway.username] = gateway
