"""The compiled route planner gives what the reference planner gives (docs/routing.md "The
compiled planner"; the order is the documented sort key, behaviours 24-30, F.6-55/59/60/63/67/68/72).

Property, on random configurations (gateways with random prefixes, priorities, weights, protect
and extension flags, line and CPS limits, gateway groups with reserved lines, allow/deny lists,
locks, dial plans good and bad, strip/add/tech prefixes; vendor tables with rates in effect since
always, later, and in several versions; prepaid vendors with and without money; every sort
setting, the no-loss rule and the switch limit) and random node state (lines here and on other
nodes, calls today of this day or another, ASR/ACD windows with current and stale caches): for
any number, the compiled planner's plan equals ``plan_routes_python``'s (every candidate field
but the reference's own sort tuple, the order, the skipped and cut lists), its routes equal
admission's (numbers rewritten, random digits drawn in the same order), and both leave the same
traces (the vendor-funds callback asked the same accounts in the same order; the same windows'
caches; the same random state). Each side gets its own copy of the world, built twice from the
same draw, so that what one side caches or counts cannot help the other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from signaling import params
from signaling.billing import (
    DEFAULT_POLICY,
    PeriodSwitches,
    Rate,
    RateGroup,
    RateSources,
    Tariff,
    WorkCalendar,
    select_rate,
)
from signaling.billing.rates import NO_PERIOD_RATES, PeriodRate
from signaling.callproc import admission, routes
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.routes import RouteCache, RoutePlan
from signaling.callproc.snapshot import Plans, Snapshot, _plans
from signaling.routing import InboundCall, Route
from signaling.store import Account, GatewayGroup, MappingGateway, RoutingGateway

AT = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
DAY = AT.date().toordinal()
PREFIXES = ("", "1", "12", "123", "44", "447", "4478", "7")
NUMBERS = ("12345678", "1239", "4478123", "4471", "447", "44", "7000", "9999", "1")


@dataclass
class World:
    snap: Snapshot
    counters: Counters
    quality: Quality
    funds: dict[int, Decimal]
    asked: list[int]
    now: float = 1000.0

    def vendor_funds(self, account: int) -> Decimal | None:
        self.asked.append(account)
        return self.funds.get(account)


def _tariff(price: int, first: int, cycle: int) -> Tariff:
    return Tariff(Decimal(price).scaleb(-5), first, Decimal(price).scaleb(-5), cycle, Decimal(0))


def _vendor_table(name: str, spec: list[tuple[str, int, int]]) -> RateGroup:
    """(prefix, price, when): when 0 = in effect since always, 1 = an hour ago, 2 = from
    tomorrow (not yet), 3 = two versions (always, then from an hour ago)."""
    rates: list[Rate] = []
    for prefix, price, when in spec:
        tariff = _tariff(price, *((60, 60) if price % 2 else (1, 1)))
        if when == 3:
            rates.append(Rate(prefix, tariff))
            rates.append(Rate(prefix, _tariff(price + 7, 6, 6), effective=AT - timedelta(hours=1)))
        else:
            effective = {0: None, 1: AT - timedelta(hours=1), 2: AT + timedelta(days=1)}[when]
            rates.append(Rate(prefix, tariff, effective=effective))
    return RateGroup(name, rates)


def _gateway(**narrow: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            # (none: every number; mostly 44 and 1, so that several gateways compete for a number)
            "prefixes": st.lists(
                st.sampled_from(["44", "44", "44", "1", "1", "447", "12", "4478", "7"]),
                max_size=2,
                unique=True,
            ),
            "priority": st.sampled_from([1, 1, 1, 2, 0]),
            "weight": st.sampled_from([0, 1, 3, 25, 75, 100]),
            "protect": st.integers(0, 4).map(lambda n: n == 0),
            "extension_mode": st.booleans(),
            "switch_until_connect": st.integers(0, 9).map(lambda n: n != 0),
            "max_calls": st.sampled_from([None, None, None, None, 0, 1, 2, 4, 9]),
            "max_cps": st.sampled_from([None, None, None, None, 0, 1, 3]),
            "locked": st.integers(0, 14).map(lambda n: n == 0),
            "table": st.sampled_from([None, 0, 1, 2, 0, 1, 2, 99]),  # 99: a rate group the snapshot lacks
            "vendor": st.sampled_from([None, 0, 1, 2]),
            "groups": st.lists(st.sampled_from([1, 2]), max_size=2, unique=True),
            "mode": st.sampled_from(["all", "all", "allow", "deny"]),
            "strip": st.integers(0, 2),
            "add": st.sampled_from(["", "0"]),
            "tech": st.sampled_from(["", "99#"]),
            "callee_plan": st.sampled_from(["", "", "", "", "12:$", "4:?", "44:0?", "[bad"]),
            "caller_plan": st.sampled_from(["", "", "0:44"]),
        }
        | narrow
    )


def _world(
    gateway: st.SearchStrategy[dict[str, Any]], **narrow: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "gateways": st.lists(gateway, min_size=1, max_size=10),
            "tables": st.lists(
                st.lists(
                    st.tuples(
                        st.sampled_from(PREFIXES[1:]),
                        st.integers(1, 9000),
                        st.sampled_from([0, 0, 0, 1, 2, 3]),
                    ),
                    max_size=5,
                    unique_by=lambda r: r[0],
                ),
                min_size=3,
                max_size=3,
            ),
            "vendors": st.lists(
                st.tuples(
                    st.sampled_from(["prepaid", "postpaid", "postpaid"]),
                    st.sampled_from([None, "-1", "0", "5", "5"]),
                ),
                min_size=3,
                max_size=3,
            ),
            "groups": st.tuples(st.sampled_from([None, None, 0, 2, 4]), st.integers(0, 2)),
            "ingress_groups": st.sampled_from([(), (1,), (2, 1)]),
            "settings": st.fixed_dictionaries(
                {
                    "SS_GATEWAY_ASR_CALCULATE": st.booleans(),
                    "SS_GATEWAY_ACD_CALCULATE": st.booleans(),
                    "SS_GATEWAYASRROUTESORTCONFIG": st.sampled_from(
                        ["before line usage", "before gateway id"]
                    ),
                    "SS_GATEWAYFEERATEROUTESORTCONFIG": st.sampled_from(
                        ["before line usage", "before gateway id", "off"]
                    ),
                    "SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR": st.booleans(),
                    "SS_GATEWAY_ASR_MIN_CALLS": st.integers(0, 5),
                    "SS_GATEWAY_ASR_THRESHOLD": st.sampled_from([0, 25, 50, 60, 75, 100]),
                    "SS_GATEWAY_NO_LOSS_ROUTE": st.sampled_from([False, False, True]),
                    "SS_GATEWAY_SWITCH_LIMIT": st.sampled_from([None, None, None, 0, 1, 3]),
                }
            ),
            # node state: per gateway (lines here, lines elsewhere, calls today, attempts, answered)
            "state": st.lists(
                st.tuples(
                    st.sampled_from([0, 0, 1, 2]),
                    st.integers(0, 2),
                    st.integers(0, 30),
                    st.integers(0, 12),
                    st.integers(0, 12),
                ),
                min_size=10,
                max_size=10,
            ),
            "group_lines": st.tuples(st.integers(0, 3), st.integers(0, 3)),
            "today_is_today": st.booleans(),
            "warm": st.booleans(),  # the windows' caches filled at another moment first
            "now": st.just(1000.0),
        }
        | narrow
    )


_WORLD = _world(_gateway())
#: Worlds where the candidates tie on the first steps of the key, so that every later step
#: (ASR and its threshold, ACD, cost, line usage, calls today ÷ weight, gateway id) decides.
_TIES = _world(
    _gateway(
        prefixes=st.just(["44"]),
        priority=st.just(1),
        protect=st.just(False),
        locked=st.just(False),
        max_calls=st.sampled_from([None, 4, 8]),
        max_cps=st.none(),
        groups=st.just([]),
        mode=st.just("all"),
        callee_plan=st.just(""),
        switch_until_connect=st.just(True),
        vendor=st.sampled_from([None, 0]),
    ),
    vendors=st.just([("postpaid", None)] * 3),
    tables=st.lists(
        st.lists(st.tuples(st.just("44"), st.sampled_from([10, 20]), st.just(0)), max_size=1),
        min_size=3,
        max_size=3,
    ),
    # lines here 0-1, elsewhere 0-1, calls today, and attempts / answered giving ASRs of 0, 25,
    # 50, 75, 100 % (the thresholds' own values)
    state=st.lists(
        st.tuples(
            st.integers(0, 1),
            st.integers(0, 1),
            st.sampled_from([0, 1, 2, 3, 4, 6, 12]),
            st.just(4),
            st.integers(0, 4),
        ),
        min_size=10,
        max_size=10,
    ),
    today_is_today=st.just(True),
    ingress_groups=st.just(()),
)


def _build(spec: dict[str, Any]) -> World:  # noqa: PLR0912 (one straight recipe)
    p = params.resolve({})
    p.update(spec["settings"])
    accounts = {}
    funds: dict[int, Decimal] = {}
    for i, (billing, money) in enumerate(spec["vendors"]):
        accounts[100 + i] = Account(code=f"v{i}", kind="vendor", billing=billing, id=100 + i)
        if money is not None:
            funds[100 + i] = Decimal(money)
    accounts[1] = Account(code="c1", id=1)
    tables = {10 + i: _vendor_table(f"vendor-{i}", rows) for i, rows in enumerate(spec["tables"])}
    max_calls, reserved = spec["groups"]
    groups = {
        1: GatewayGroup("g1", max_calls=max_calls, reserved_lines=min(reserved, max_calls or 0), id=1),
        2: GatewayGroup("g2", max_calls=None, id=2),
    }
    ingress = MappingGateway("cust", 1, addresses=("192.0.2.1",), routing_groups=spec["ingress_groups"], id=7)
    routing: dict[int, RoutingGateway] = {}
    for i, g in enumerate(spec["gateways"]):
        gid = i + 1
        listed = (7,) if g["mode"] != "all" else ()
        routing[gid] = RoutingGateway(
            f"carrier-{gid}",
            host=f"198.51.100.{gid}",
            prefixes=tuple(g["prefixes"]),
            priority=g["priority"],
            weight=g["weight"],
            protect=g["protect"],
            extension_mode=g["extension_mode"],
            switch_until_connect=g["switch_until_connect"],
            max_calls=g["max_calls"],
            max_cps=g["max_cps"],
            locked=g["locked"],
            rate_group_id=None if g["table"] is None else 10 + g["table"],
            account_id=None if g["vendor"] is None else 100 + g["vendor"],
            groups=tuple(g["groups"]),
            mapping_gateway_mode=g["mode"],
            mapping_gateways=listed,
            strip_digits=g["strip"],
            add_prefix=g["add"],
            tech_prefix=g["tech"],
            callee_dial_plan=g["callee_plan"],
            caller_dial_plan=g["caller_plan"],
            id=gid,
        )
    snap = Snapshot(
        version=1,
        parameters=p,
        policy=DEFAULT_POLICY,
        switches=NO_PERIOD_RATES,
        accounts=accounts,
        mapping={7: ingress},
        routing=routing,
        groups=groups,
        rate_groups=tables,
        period_rates={},
        calendars={},
        packages={},
        subscriptions={},
        mapping_plans={7: Plans()},
        routing_plans={
            gid: _plans(gw.name, gw.callee_dial_plan, gw.caller_dial_plan) for gid, gw in routing.items()
        },
        by_ip={"192.0.2.1": [ingress]},
        by_ip_port={},
        by_user={},
        prefix_index={},
        longest_prefix=0,
        members={},
    )
    for gw in routing.values():
        for prefix in gw.prefixes or ("",):
            snap.prefix_index.setdefault(prefix, []).append(gw.id)
            snap.longest_prefix = max(snap.longest_prefix, len(prefix))
        for group_id in gw.groups:
            snap.members.setdefault(group_id, []).append(gw.id)
    counters = Counters()
    quality = Quality(600, 10, 300, 5)
    day = DAY if spec["today_is_today"] else DAY - 1
    for gid, (here, elsewhere, today, attempts, answered) in zip(routing, spec["state"], strict=False):
        for k in range(today):
            counters.start(("out", gid), 900.0 + k, DAY)
            counters.stop(("out", gid))
        for _ in range(here):
            counters.start(("out", gid), 999.8, day)
        if elsewhere:
            counters.shared[("out", gid)] = elsewhere
        for k in reversed(range(attempts)):  # one a minute (a segment each), oldest first
            when = 1000.0 - 60 * (k + 1)
            quality.attempt(gid, when, answered=k < answered, connected=k % 3 == 0)
            if k < answered:
                quality.call(gid, when, 10.0 * k)
        if spec["warm"]:  # caches made at another moment: stale for some "now"
            quality.asr(gid, 1000.0)
            quality.acd(gid, 1000.0)
            quality.rates(gid, 1000.0)
    for gid, lines in zip((1, 2), spec["group_lines"], strict=True):
        for _ in range(lines):
            counters.start(("group", gid), 999.0)
    return World(snap, counters, quality, funds, [], spec["now"])


#: A world whose planner serves the rate selection test (its gateways do not matter there).
_EXAMPLE: dict[str, Any] = {
    "gateways": [],
    "tables": [[], [], []],
    "vendors": [("postpaid", None)] * 3,
    "groups": (None, 0),
    "ingress_groups": (),
    "settings": {},
    "state": [],
    "group_lines": (0, 0),
    "today_is_today": True,
    "warm": False,
    "now": 1000.0,
}


def _plan(
    world: World, number: str, *, compiled: bool, price: Fraction | None, ingress: bool, at: datetime
) -> RoutePlan:
    if world.snap.routing_cache is None:
        world.snap.routing_cache = RouteCache(world.snap, compiled=compiled)
    planner: Callable[..., RoutePlan] = routes.plan_routes if compiled else routes.plan_routes_python
    if compiled:
        assert routes.route_cache(world.snap).planner is not None
    return planner(
        world.snap,
        world.snap.mapping[7] if ingress else None,
        number,
        at=at,
        now=world.now,
        day=DAY,
        counters=world.counters,
        quality=world.quality,
        customer_price=price,
        vendor_funds=world.vendor_funds,
    )


def _without_sort_tuple(plan: RoutePlan) -> RoutePlan:
    def strip(cs: list[routes.Candidate]) -> list[routes.Candidate]:
        return [replace(c, order=()) for c in cs]

    return RoutePlan(strip(plan.ordered), strip(plan.skipped), strip(plan.cut), plan.step_names)


def _traces(world: World) -> object:
    windows = {
        gid: (w._asr, w._rates, [(s.index, s.attempts, s.answered, s.connected) for s in w._segments])
        for gid, w in world.quality._asr.items()
    }
    acd = {
        gid: (w._acd, [(s.index, s.calls, s.seconds) for s in w._segments])
        for gid, w in world.quality._acd.items()
    }
    cps = {key: list(starts) for key, starts in world.counters._starts.items()}
    return world.asked, windows, acd, cps


#: Call times: the rates "from tomorrow" are in effect a day later, the version "from an hour
#: ago" not yet two hours earlier; a later ``now`` moves the windows on (stale caches).
_CALL = st.tuples(
    st.sampled_from(NUMBERS) | st.sampled_from(["4478123", "12345678"]),
    st.none() | st.sampled_from([Fraction(0), Fraction(1, 1000), Fraction(3, 100), Fraction(1)]),
    st.booleans(),
    st.sampled_from([timedelta(0), timedelta(0), timedelta(hours=-2), timedelta(days=2)]),
    st.sampled_from([0.0, 0.0, 0.5, 61.0, 3000.0]),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_WORLD, st.lists(_CALL, min_size=1, max_size=4), st.integers(0, 2**32))
def test_the_compiled_planner_gives_the_reference_plan_and_routes(
    spec: dict[str, Any], calls: list[tuple[str, Fraction | None, bool, timedelta, float]], seed: int
) -> None:
    reference, compiled = _build(spec), _build(spec)
    ingress = reference.snap.mapping[7]
    rng_reference, rng_compiled = random.Random(seed), random.Random(seed)
    for number, price, with_ingress, shift, later in calls:
        at = AT + shift
        reference.now = compiled.now = max(reference.now, 1000.0 + later)  # the node's clock: onwards
        want = _plan(reference, number, compiled=False, price=price, ingress=with_ingress, at=at)
        got = _plan(compiled, number, compiled=True, price=price, ingress=with_ingress, at=at)
        assert _without_sort_tuple(got) == _without_sort_tuple(want)
        assert all(c.order == () for c in got.ordered + got.skipped + got.cut)
        assert _traces(compiled) == _traces(reference)
        event(f"ordered {min(len(want.ordered), 3)}+, skipped {bool(want.skipped)}, cut {bool(want.cut)}")
        for c in want.skipped:
            event(f"skipped: {(c.skipped or '').split(' ')[0]}")
        # the routes admission makes of the plan, dial plans drawing random digits in the same order
        decision = admission.Decision(InboundCall("c", ("192.0.2.1", 5060), "udp", "0123", number), at)
        decision.callee_billing, decision.caller_billing = number, "0123"
        want_routes = [
            admission._route(reference.snap, ingress, c.gateway.id, decision, rng_reference)
            for c in want.ordered
        ]
        planner = routes.route_cache(compiled.snap).planner
        assert planner is not None
        got_routes = planner.routes(
            compiled.snap, got.ordered, ingress, number, "0123", rng_compiled, admission._route_settings
        )
        assert got_routes == want_routes
        assert all(type(r) is Route for r in got_routes)
        assert rng_compiled.getstate() == rng_reference.getstate()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TIES, st.sampled_from([0.0, 61.0]))
def test_the_compiled_sort_breaks_every_tie_as_the_reference(spec: dict[str, Any], later: float) -> None:
    reference, compiled = _build(spec), _build(spec)
    reference.now = compiled.now = 1000.0 + later
    want = _plan(reference, "4478123", compiled=False, price=None, ingress=True, at=AT)
    got = _plan(compiled, "4478123", compiled=True, price=None, ingress=True, at=AT)
    assert [c.gateway.id for c in got.ordered] == [c.gateway.id for c in want.ordered]
    assert _without_sort_tuple(got) == _without_sort_tuple(want)
    event(f"ordered {min(len(want.ordered), 4)}+")


def test_the_sort_follows_each_step_of_the_documented_key() -> None:
    """A worked case per step (docs/routing.md "Order"): protect last, strategy, longest
    prefix, priority, cost, line usage (ratio, then calls today ÷ weight), gateway id."""
    spec: dict[str, Any] = {
        "gateways": [
            dict(
                prefixes=["44"],
                priority=1,
                weight=100,
                protect=True,
                extension_mode=True,
                switch_until_connect=True,
                max_calls=None,
                max_cps=None,
                locked=False,
                table=None,
                vendor=None,
                groups=[],
                mode="all",
                strip=0,
                add="",
                tech="",
                callee_plan="",
                caller_plan="",
            ),
        ],
        "tables": [[], [], []],
        "vendors": [("postpaid", None)] * 3,
        "groups": (None, 0),
        "ingress_groups": (),
        "settings": {"SS_GATEWAYFEERATEROUTESORTCONFIG": "before line usage"},
        "state": [(0, 0, 0, 0, 0)] * 10,
        "group_lines": (0, 0),
        "today_is_today": True,
        "warm": False,
        "now": 1000.0,
    }
    base = spec["gateways"][0]
    spec["gateways"] = [
        base,  # 1: protect route: last
        {**base, "protect": False, "priority": 2, "prefixes": ["447"]},  # 2: longest prefix first
        # (the others serve 44 in extension mode: they join after the 447 gateway)
        {**base, "protect": False, "priority": 1},  # 3: priority 1
        {**base, "protect": False, "priority": 2, "table": 0},  # 4: cost 0.0001/min
        {**base, "protect": False, "priority": 2, "table": 1},  # 5: cost 0.0002/min
        {**base, "protect": False, "priority": 2},  # 6: no cost: after 4 and 5
        {**base, "protect": False, "priority": 2, "weight": 25},  # 7: same as 6 but weight: today 3 / 25
    ]
    spec["tables"] = [[("44", 10, 0)], [("44", 20, 0)], []]
    spec["state"] = [(0, 0, 0, 0, 0)] * 5 + [(0, 0, 1, 0, 0), (0, 0, 3, 0, 0)] + [(0, 0, 0, 0, 0)] * 3
    for compiled in (False, True):
        world = _build(spec)
        plan = _plan(world, "4478123", compiled=compiled, price=None, ingress=True, at=AT)
        # 6 has 1 call today ÷ 100 = 0.01, 7 has 3 ÷ 25 = 0.12: 6 first
        assert [c.gateway.id for c in plan.ordered] == [2, 3, 4, 5, 6, 7, 1], compiled


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PREFIXES[1:]), st.integers(1, 9000), st.sampled_from([0, 0, 1, 2, 3])),
        max_size=6,
        unique_by=lambda r: r[0],
    ),
    st.sampled_from(["none", "account", "account", "private", "phone", "period"]),
    st.lists(
        st.tuples(
            st.sampled_from(NUMBERS), st.sampled_from([timedelta(0), timedelta(hours=-2), timedelta(days=2)])
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_the_compiled_rate_selection_gives_billings(
    rows: list[tuple[str, int, int]], shape: str, calls: list[tuple[str, timedelta]]
) -> None:
    """Admission's rate (docs/billing.md §2: longest prefix in effect; T1, T4): the compiled
    selection where only the account's rate group prices the call, billing's otherwise; the
    same selection, and the same rates made in the table, either way."""
    planner = RouteCache(_build(_EXAMPLE).snap, compiled=True).planner
    assert planner is not None
    tables = [_vendor_table("retail", rows), _vendor_table("retail", rows)]
    other = _vendor_table("private", [("44", 5, 0)])
    period_rate = PeriodRate("p", WorkCalendar("c", frozenset(range(7))), Decimal(2), Decimal(2))
    switches = PeriodSwitches(True, True)

    def sources(table: RateGroup) -> RateSources:
        return {
            "none": RateSources(),
            "account": RateSources(account=table),
            "private": RateSources(account=table, account_private=other),
            "phone": RateSources(account=table, phone_private=other),
            "period": RateSources(account=table, period_rate=period_rate),
        }[shape]

    for number, shift in calls:
        want = select_rate(number, AT + shift, sources(tables[0]), switches=switches, policy=DEFAULT_POLICY)
        got = planner.select_rate(
            number, AT + shift, sources(tables[1]), switches=switches, policy=DEFAULT_POLICY
        )
        assert got == want
        assert type(got) is type(want) and all(
            type(c) is type(w) for c, w in zip(got.candidates, want.candidates, strict=True)
        )
        assert sorted(tables[1], key=lambda r: (r.prefix, str(r.effective))) == sorted(
            tables[0], key=lambda r: (r.prefix, str(r.effective))
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        planner.select_rate("44", AT.replace(tzinfo=None), RateSources(account=tables[1]), switches=switches,
                            policy=DEFAULT_POLICY)  # fmt: skip
