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
    RateGroupBuilder,
    RateTerms,
    Tariff,
)
from signaling.billing import PeriodRate as BillingPeriodRate
from signaling.billing import RateGroup as BillingRateGroup
from signaling.billing import WorkCalendar as BillingCalendar
from signaling.callproc.whitelist import SourceWhitelist
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
from signaling.store.errors import ValidationError
from signaling.store.gateways import parse_address
from signaling.store.money import MONEY_SCALE, RATE_SCALE
from signaling.untracked import ENABLED as UNTRACK_ENABLED
from signaling.untracked import untrack_all

log = logging.getLogger("softswitch.callproc")

#: The rate columns the loader reads: the prefix, its group, then its terms.
_RATE_COLUMNS = (
    "prefix, rate_group_id, effective_time, destination, call_type, first_time_rate, "
    "first_time_duration, billing_rate, billing_cycle, connection_fee"
)
#: The rate of response (all five set or none), read only for the rates that have one.
_RESPONSE_COLUMNS = (
    "response_first_time_rate, response_first_time_duration, response_billing_rate, "
    "response_billing_cycle, response_connection_fee"
)


def _as_units(columns: str) -> str:
    """PostgreSQL: the same columns as the integers SQLite stores (money and rates in units of
    their scale, times in microseconds), so the driver hands over plain integers instead of
    making a Decimal or a datetime of each of a million rows' values (decoded the same way)."""
    scaled = {
        "effective_time": "(extract(epoch FROM effective_time) * 1000000)::bigint",
        "connection_fee": f"(connection_fee * 1{'0' * MONEY_SCALE})::bigint",
        "response_connection_fee": f"(response_connection_fee * 1{'0' * MONEY_SCALE})::bigint",
    }
    for rate in ("first_time_rate", "billing_rate", "response_first_time_rate", "response_billing_rate"):
        scaled[rate] = f"({rate} * 1{'0' * RATE_SCALE})::bigint"
    return ", ".join(scaled.get(name, name) for name in (c.strip() for c in columns.split(",")))


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
    #: account id -> its IP whitelist, for the accounts that have one (behaviour 60): where its
    #: phones may REGISTER and call from
    ip_whitelists: dict[int, SourceWhitelist] = field(default_factory=dict)
    #: What routing derives from this snapshot once (signaling.callproc.routes.RouteCache).
    routing_cache: object = None
    #: The rate tables are out of the cyclic garbage collector's walks, and the routing caches
    #: keep theirs out too (signaling/untracked.py).
    untracked: bool = False
    #: The store's parameter overrides in use, as stored text (each one checked: a stored value
    #: that does not parse is replaced by the previous snapshot's, see :func:`accept_stored`).
    stored: dict[str, str] = field(default_factory=dict)
    #: The store's SS_* overrides, parsed, under the names the code reads: what reaches the
    #: node's own settings (``StoreRouter.on_parameters``; docs/routing.md, "Parameters").
    overrides: dict[str, Any] = field(default_factory=dict)
    #: Stored values not used, (name, stored text, why), the previous value kept.
    rejected: tuple[tuple[str, str, str], ...] = ()

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


class _Decoded:
    """Driver values decoded once each: a deck repeats its prices, times and names many times."""

    __slots__ = ("d", "money", "rates", "tariffs", "texts", "times")

    def __init__(self, d: codec.Dialect) -> None:
        self.d = d
        self.rates: dict[object, Decimal] = {}
        self.money: dict[object, Decimal] = {}
        self.tariffs: dict[tuple[Any, ...], Tariff] = {}
        self.times: dict[object, datetime | None] = {}
        self.texts: dict[str, str] = {}

    def _value(self, cache: dict[object, Decimal], kind: Kind, raw: object) -> Decimal:
        value = cache.get(raw)
        if value is None:
            decoded = codec.decode(self.d, kind, raw)
            assert isinstance(decoded, Decimal)
            value = cache[raw] = decoded
        return value

    def tariff(self, row: tuple[Any, ...]) -> Tariff:
        """A tariff from ``(first_time_rate, first_time_duration, billing_rate, billing_cycle,
        connection_fee)`` driver values (one object per distinct row)."""
        tariff = self.tariffs.get(row)
        if tariff is None:
            first_rate, first_duration, rate, cycle, fee = row
            tariff = self.tariffs[row] = Tariff(
                self._value(self.rates, Kind.RATE, first_rate),
                int(first_duration),
                self._value(self.rates, Kind.RATE, rate),
                int(cycle),
                self._value(self.money, Kind.MONEY, fee),
            )
        return tariff

    def effective(self, raw: object) -> datetime | None:
        """An effective time; None for "always" (the epoch)."""
        if raw in self.times:
            return self.times[raw]
        decoded = codec.decode_time(self.d, raw)
        effective = self.times[raw] = None if decoded is None or decoded == EPOCH else decoded
        return effective

    def text(self, value: str) -> str:
        return self.texts.setdefault(value, value)

    def terms(self, row: tuple[Any, ...], response: Tariff | None = None) -> RateTerms:
        """``(effective_time, destination, call_type, <the five connected charge fields>)``."""
        return RateTerms(
            self.tariff(row[3:8]), response, self.effective(row[0]), self.text(row[1]), self.text(row[2])
        )


def _rate_groups(store: Store, *, untracked: bool) -> dict[int, BillingRateGroup]:
    """Every rate group as a billing table, read with one query streamed in chunks (a million
    rates load in seconds: no record validation, the store checked each rate when it was
    written).

    A deck has far fewer distinct terms (price, effective time, destination) than prefixes:
    every number range of a destination shares them. Each distinct row of terms becomes one
    :class:`RateTerms` (and one :class:`Tariff`, its exact-arithmetic units computed once),
    and each prefix costs one dictionary entry; its :class:`Rate` is made on first lookup.
    Rates with a rate of response (few) are read by a second query. ``untracked``: the tables,
    their terms and tariffs are taken out of the cyclic garbage collector's walks
    (signaling/untracked.py)."""
    with store.db.transaction(write=False) as tx:
        names = {int(i): str(n) for i, n in tx.execute("SELECT id, name FROM rate_group")}
        builders = {gid: RateGroupBuilder(name) for gid, name in names.items()}
        cache = _Decoded(tx.dialect)
        # (group id, effective time, destination, call type, 5 charge fields) -> where it goes
        seen: dict[tuple[Any, ...], tuple[dict[str, Any], RateTerms, RateGroupBuilder]] = {}
        pg = tx.dialect is codec.Dialect.POSTGRESQL
        columns = _as_units(_RATE_COLUMNS) if pg else _RATE_COLUMNS
        responses = _as_units(_RESPONSE_COLUMNS) if pg else _RESPONSE_COLUMNS
        for chunk in tx.stream(f"SELECT {columns} FROM rate WHERE response_billing_rate IS NULL"):  # noqa: S608
            for row in chunk:  # the loop of a million rows: one slice and two dict operations
                hit = seen.get(row[1:])
                if hit is None:
                    builder = builders[row[1]]
                    hit = seen[row[1:]] = (builder.entries, cache.terms(row[2:]), builder)
                entries, terms, builder = hit
                if entries.setdefault(row[0], terms) is not terms:
                    builder.version(row[0], terms)
        for chunk in tx.stream(
            f"SELECT {columns}, {responses} FROM rate WHERE response_billing_rate IS NOT NULL"  # noqa: S608
        ):
            for row in chunk:
                builders[row[1]].add(row[0], cache.terms(row[2:10], cache.tariff(row[10:15])))
    groups = {gid: builder.build() for gid, builder in builders.items()}
    if untracked:
        untrack_all(cache.tariffs.values())
        untrack_all(hit[1] for hit in seen.values())
        for group in groups.values():
            group.keep_untracked()
    return groups


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


def accept_stored(
    stored: Mapping[str, str], previous: Mapping[str, str] | None = None
) -> tuple[dict[str, str], tuple[tuple[str, str, str], ...]]:
    """The stored overrides to use, and those refused: (name, text, why).

    The store checks a value when it is set (``Store.set_parameter``), but a row may still not
    parse: written by another version with other ranges, or by hand in the database. Such a
    value must not stop a running node's reloads, nor a node's start: it is refused, and the
    value in use before (``previous``, the last snapshot's) stays; without one the node's file
    or the default applies. Names this version does not know are skipped, as before."""
    accepted: dict[str, str] = {}
    refused: list[tuple[str, str, str]] = []
    for name, text in stored.items():
        if name not in params.PARAMETERS and name not in server_parameters.SERVER_PARAMETERS:
            continue
        try:
            server_parameters.check(name, text)
        except ValidationError as exc:
            refused.append((name, text, exc.reason))
            kept = None if previous is None else previous.get(name)
            if kept is not None:
                accepted[name] = kept
            continue
        accepted[name] = text
    return accepted, tuple(refused)


def stored_overrides(stored: Mapping[str, str]) -> dict[str, Any]:
    """The SS_* (and IVR_*) overrides among ``stored`` (checked text), parsed, under the names
    the code reads (an alias resolved onto its target)."""
    out: dict[str, Any] = {}
    for name, text in stored.items():
        parameter = params.PARAMETERS.get(name)
        if parameter is not None:
            params.assign(out, name, parameter.parse(text))
    return out


def resolve_parameters(base: Mapping[str, Any], stored: Mapping[str, str]) -> dict[str, Any]:
    """SS_* parameters: ``base`` (defaults and the node's file) overlaid with the store's
    (``stored``: checked text, see :func:`accept_stored`)."""
    out = params.resolve({})
    out.update(base)
    out.update(stored_overrides(stored))
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


def load_snapshot(
    store: Store,
    base_parameters: Mapping[str, Any] | None = None,
    *,
    untracked: bool = True,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Read the whole configuration (one read transaction per table family). ``untracked``
    (when the compiled helper is built): the rate tables and the routing caches stay out of the
    cyclic garbage collector's walks (signaling/untracked.py; False: as before, for
    bench/routing.py's reference). ``previous``: the snapshot in use, whose parameter values
    stay where a stored one does not parse (:func:`accept_stored`)."""
    untracked = untracked and UNTRACK_ENABLED
    version = store.config_version()  # first: a change made while loading is picked up next time
    stored, rejected = accept_stored(store.parameters(), None if previous is None else previous.stored)
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
    rate_groups = _rate_groups(store, untracked=untracked)
    whitelists = {a.id: SourceWhitelist(a.ip_whitelist) for a in accounts.values() if a.ip_whitelist}
    snap = Snapshot(
        version=version,
        parameters=resolve_parameters(base_parameters or {}, stored),
        policy=policy,
        switches=switches,
        accounts=accounts,
        ip_whitelists=whitelists,
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
        untracked=untracked,
        stored=stored,
        overrides=stored_overrides(stored),
        rejected=rejected,
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
