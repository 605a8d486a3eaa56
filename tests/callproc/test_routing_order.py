"""Which routing gateways a call tries, in which order (timers-trace-routing-dialplan §3.2 and
§16 behaviours 24-30; architecture §21.6 T33-T39; security-quality §D and §F.6 behaviours 57-69).
The reference's seven steps: routing strategy, longest prefix, priority, ASR / cost, line usage,
gateway id; protect routes last; gateways at their limits skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from signaling.store import (
    Account,
    GatewayGroup,
    MappingGateway,
    Rate,
    RateGroup,
    RoutingGateway,
    Store,
)
from tests.callproc.world import FakeNode, basic_world, d


def order(node: FakeNode, callee: str = "880171234567", call_id: str | None = None) -> list[str]:
    admission = node.admit(call_id or f"call-{len(node.records)}", callee)
    if admission.rejection is not None:
        return [admission.rejection.termination]
    return [r.gateway for r in admission.routes]


def world(store: Store, *gateways: dict[str, object], **kw: object) -> FakeNode:
    basic_world(
        store,
        balance="1000",
        customer_rates=(
            ("880", "0.02", 60, "0.02", 60),
            ("1", "0.02", 60, "0.02", 60),
            ("44", "0.02", 60, "0.02", 60),
        ),
        vendor_rates=(
            ("880", "0.01", 60, "0.01", 60),
            ("1", "0.01", 60, "0.01", 60),
            ("44", "0.01", 60, "0.01", 60),
        ),
        gateways=gateways,
        **kw,  # type: ignore[arg-type]
    )
    return FakeNode.on(store)


def set_parameters(store: Store, **values: object) -> None:
    for name, value in values.items():
        store.set_parameter(name, value)  # type: ignore[arg-type]


def test_24_59_the_longest_prefix_wins_whatever_its_priority(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "broad", "prefixes": ("880",), "priority": 1},
        {"name": "specific", "prefixes": ("88017",), "priority": 5},
    )
    assert order(node) == ["specific"]  # extension mode off: the 880 gateway is not a fallback


def test_59_extension_mode_makes_a_shorter_prefix_the_fallback(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "broad", "prefixes": ("880",), "priority": 1, "extension_mode": True},
        {"name": "specific", "prefixes": ("88017",), "priority": 5},
    )
    assert order(node) == ["specific", "broad"]


def test_25_58_t33_lower_priority_number_first(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "p3", "prefixes": ("880",), "priority": 3},
        {"name": "p1", "prefixes": ("880",), "priority": 1},
        {"name": "p2", "prefixes": ("880",), "priority": 2},
    )
    assert order(node) == ["p1", "p2", "p3"]


def test_t38_only_gateways_of_the_matching_prefix(sqlite_store: Store) -> None:
    node = world(sqlite_store, {"name": "gw-us", "prefixes": ("1",)}, {"name": "gw-uk", "prefixes": ("44",)})
    assert order(node, "442071234567") == ["gw-uk"]


def test_26_23_asr_sorting_only_when_calculated(sqlite_store: Store) -> None:
    node = world(sqlite_store, {"name": "x", "prefixes": ("880",)}, {"name": "y", "prefixes": ("880",)})
    q = node.router.quality
    x, y = (node.router.snapshot.routing_by_name(n) for n in ("x", "y"))
    assert x is not None and y is not None
    for i in range(10):  # x: 40 %, y: 60 %
        q.attempt(x.id, node.now, answered=i < 4)
        q.attempt(y.id, node.now, answered=i < 6)
    assert order(node) == ["x", "y"]  # behaviour 23: ASR off, so gateway id decides
    set_parameters(sqlite_store, SS_GATEWAY_ASR_CALCULATE=True)
    node.router.refresh()
    assert order(node) == ["y", "x"]  # behaviour 26: the 60 % gateway first


def test_f6_61_asr_threshold_demotes_only_with_enough_calls(sqlite_store: Store) -> None:
    node = world(sqlite_store, {"name": "x", "prefixes": ("880",)}, {"name": "y", "prefixes": ("880",)})
    set_parameters(
        sqlite_store, SS_GATEWAY_ASR_CALCULATE=True, SS_GATEWAY_ASR_MIN_CALLS=5, SS_GATEWAY_ASR_THRESHOLD=30
    )
    node.router.refresh()
    q = node.router.quality
    x, y = (node.router.snapshot.routing_by_name(n) for n in ("x", "y"))
    assert x is not None and y is not None
    for _ in range(4):  # x: 4 attempts, 0 answered: too few to judge
        q.attempt(x.id, node.now, answered=False)
    for i in range(10):
        q.attempt(y.id, node.now, answered=i < 5)
    assert order(node) == ["x", "y"]  # x is not demoted yet (and unknown counts as good)
    q.attempt(x.id, node.now, answered=False)  # the 5th: ASR 0 % < 30 %: demoted
    assert order(node) == ["y", "x"]


def _priced(store: Store, name: str, rate: str) -> int:
    """A vendor rate group of its own for gateway ``name``."""
    admin = store.admin()
    group = admin.create(RateGroup(f"buy-{name}"))
    admin.add_rates([Rate(group.id, "880", billing_rate=d(rate), first_time_rate=d(rate))])
    gw = next(g for g in admin.list(RoutingGateway) if g.name == name)
    admin.update(replace(gw, rate_group_id=group.id))
    return group.id


def test_27_62_cost_sorting_and_its_place_against_asr(sqlite_store: Store) -> None:
    node = world(sqlite_store, {"name": "a", "prefixes": ("880",)}, {"name": "b", "prefixes": ("880",)})
    _priced(sqlite_store, "a", "0.004")  # A cheaper, lower ASR
    _priced(sqlite_store, "b", "0.006")
    node.router.refresh()
    a, b = (node.router.snapshot.routing_by_name(n) for n in ("a", "b"))
    assert a is not None and b is not None
    for i in range(10):
        node.router.quality.attempt(a.id, node.now, answered=i < 3)
        node.router.quality.attempt(b.id, node.now, answered=i < 7)
    set_parameters(sqlite_store, SS_GATEWAY_ASR_CALCULATE=True, SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR=True)
    node.router.refresh()
    assert order(node) == ["a", "b"]  # rate before ASR: the cheaper A first
    set_parameters(sqlite_store, SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR=False)
    node.router.refresh()
    assert order(node) == ["b", "a"]  # ASR first: the better B first
    set_parameters(sqlite_store, SS_GATEWAY_ASR_CALCULATE=False)
    node.router.refresh()
    assert order(node) == ["a", "b"]  # behaviour 62: cost sorting alone, cheapest first


def test_28_29_line_usage_then_gateway_id_and_where_asr_goes(sqlite_store: Store) -> None:
    node = world(sqlite_store, {"name": "a", "prefixes": ("880",)}, {"name": "b", "prefixes": ("880",)})
    a, b = (node.router.snapshot.routing_by_name(n) for n in ("a", "b"))
    assert a is not None and b is not None
    assert order(node) == ["a", "b"]  # all equal: gateway id (behaviour 28)
    day = node.router.wall(node.now).date().toordinal()
    node.router.counters.start(("out", a.id), node.now, day)  # a carried a call today
    node.router.counters.stop(("out", a.id))
    assert order(node) == ["b", "a"]  # fewer calls today first
    for i in range(10):  # but a has the better ASR
        node.router.quality.attempt(a.id, node.now, answered=i < 8)
        node.router.quality.attempt(b.id, node.now, answered=i < 2)
    set_parameters(sqlite_store, SS_GATEWAY_ASR_CALCULATE=True)
    node.router.refresh()
    assert order(node) == ["a", "b"]  # "Before line usage" (default): ASR outranks today's calls
    set_parameters(sqlite_store, SS_GATEWAYASRROUTESORTCONFIG="Before gateway ID")
    node.router.refresh()
    assert order(node) == ["b", "a"]  # behaviour 29: today's calls outrank ASR


def test_f6_60_lowest_utilisation_first(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "x", "prefixes": ("880",), "max_calls": 100},
        {"name": "y", "prefixes": ("880",), "max_calls": 100},
    )
    x, y = (node.router.snapshot.routing_by_name(n) for n in ("x", "y"))
    assert x is not None and y is not None
    for _ in range(50):
        node.router.counters.start(("out", x.id), node.now)
    for _ in range(20):
        node.router.counters.start(("out", y.id), node.now)
    node.advance(2)  # out of the CPS window
    assert order(node) == ["y", "x"]


def test_t37_weights_share_the_traffic(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "weight": 75},
        {"name": "b", "prefixes": ("880",), "weight": 25},
    )
    carried: Counter[str] = Counter()
    for i in range(1000):
        first = order(node, call_id=f"w{i}")[0]
        node.try_route(f"w{i}")
        node.fail(f"w{i}", 503)
        node.end(f"w{i}", termination="AllRoutesFailed", ended_by="switch", status=503)
        carried[first] += 1
    assert carried == {"a": 750, "b": 250}


def test_t36_57_64_a_gateway_at_its_line_limit_is_skipped(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "priority": 1, "max_calls": 1},
        {"name": "b", "prefixes": ("880",), "priority": 2},
        {"name": "c", "prefixes": ("880",), "priority": 3, "protect": True},
    )
    assert order(node, call_id="first") == ["a", "b", "c"]
    node.answer("first")  # a's only line is taken
    assert order(node) == ["b", "c"]  # skipped without an INVITE; the protect route still last


def test_max_cps_of_a_routing_gateway(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "priority": 1, "max_cps": 1},
        {"name": "b", "prefixes": ("880",), "priority": 2},
    )
    assert order(node, call_id="one") == ["a", "b"]
    node.try_route("one")
    assert order(node) == ["b"]
    node.advance(1.0)
    assert order(node) == ["a", "b"]


def test_f6_63_65_protect_routes_come_last_and_busy_is_all_gateway_busy(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "c", "prefixes": ("880",), "priority": 3, "protect": True, "max_calls": 1},
        {"name": "a", "prefixes": ("880",), "priority": 1, "max_calls": 1},
        {"name": "b", "prefixes": ("880",), "priority": 2, "max_calls": 1},
    )
    assert order(node, call_id="1") == ["a", "b", "c"]
    node.answer("1", 0)
    assert order(node, call_id="2") == ["b", "c"]
    node.answer("2", 0)
    assert order(node, call_id="3") == ["c"]
    node.answer("3", 0)
    assert order(node) == ["AllGatewayBusy"]  # every gateway at capacity


def test_e9_with_only_protect_routes_they_are_still_tried(sqlite_store: Store) -> None:
    node = world(sqlite_store, {"name": "only", "prefixes": ("880",), "protect": True})
    assert order(node) == ["only"]


def test_f6_67_group_reserved_lines_are_kept_for_protect_routes(sqlite_store: Store) -> None:
    admin = sqlite_store.admin()
    group = admin.create(GatewayGroup("BD", max_calls=2, reserved_lines=1))
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "priority": 1, "groups": (group.id,)},
        {"name": "c", "prefixes": ("880",), "priority": 3, "protect": True, "groups": (group.id,)},
        {"name": "z", "prefixes": ("880",), "priority": 9},
    )
    assert order(node, call_id="1") == ["a", "z", "c"]
    node.answer("1", 0)  # the group has 1 line in use: ordinary traffic may not take the reserved one
    assert order(node, call_id="2") == ["z", "c"]
    node.answer("2", 1)  # the protect route takes the reserved line
    assert order(node, call_id="3") == ["z"]


def test_f6_68_the_mapping_gateway_name_restriction(sqlite_store: Store) -> None:
    node = world(
        sqlite_store, {"name": "premium", "prefixes": ("880",)}, {"name": "any", "prefixes": ("880",)}
    )
    admin = sqlite_store.admin()
    other = admin.create(
        MappingGateway("m2", admin.list(MappingGateway)[0].account_id, addresses=("10.0.0.2",))
    )
    premium = next(g for g in admin.list(RoutingGateway) if g.name == "premium")
    admin.update(replace(premium, mapping_gateway_mode="allow", mapping_gateways=(other.id,)))
    node.router.refresh()
    assert order(node) == ["any"]  # the call comes from "cust", not m2
    admission = node.admit("from-m2", "880171234567", source=("10.0.0.2", 5060))
    assert [r.gateway for r in admission.routes] == ["premium", "any"]


def test_step_1_routing_strategies_of_the_mapping_gateway(sqlite_store: Store) -> None:
    admin = sqlite_store.admin()
    first = admin.create(GatewayGroup("first"))
    second = admin.create(GatewayGroup("second"))
    node = world(
        sqlite_store,
        {"name": "s2", "prefixes": ("880",), "priority": 1, "groups": (second.id,)},
        {"name": "s1", "prefixes": ("880",), "priority": 9, "groups": (first.id,)},
        {"name": "none", "prefixes": ("880",), "priority": 1},
    )
    ingress = admin.list(MappingGateway)[0]
    admin.update(replace(ingress, routing_groups=(first.id, second.id)))
    node.router.refresh()
    assert order(node) == ["s1", "s2"]  # strategy before priority; ungrouped gateways not allowed


def test_f6_69_a_locked_gateway_is_excluded(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "priority": 1, "locked": True},
        {"name": "b", "prefixes": ("880",), "priority": 2},
    )
    assert order(node) == ["b"]


def test_f6_55_a_gateway_without_failover_ends_the_chain(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "priority": 1, "switch_until_connect": False},
        {"name": "b", "prefixes": ("880",), "priority": 2},
    )
    assert order(node) == ["a"]


def test_30_the_switch_limit_caps_the_gateways_tried(sqlite_store: Store) -> None:
    node = world(sqlite_store, *({"name": f"g{i}", "prefixes": ("880",), "priority": i} for i in range(5)))
    set_parameters(sqlite_store, SS_GATEWAY_SWITCH_LIMIT=3)
    node.router.refresh()
    assert order(node) == ["g0", "g1", "g2"]


def test_no_loss_routing_skips_carriers_dearer_than_the_customer_rate(sqlite_store: Store) -> None:
    node = world(
        sqlite_store, {"name": "cheap", "prefixes": ("880",)}, {"name": "dear", "prefixes": ("880",)}
    )
    _priced(sqlite_store, "dear", "0.03")  # customer pays 0.02
    node.router.refresh()
    assert order(node) == ["cheap", "dear"]
    set_parameters(sqlite_store, SS_GATEWAY_NO_LOSS_ROUTE=True)
    node.router.refresh()
    assert order(node) == ["cheap"]


def test_f6_72_a_prepaid_vendor_without_balance_is_skipped(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "priority": 1},
        {"name": "b", "prefixes": ("880",), "priority": 2},
    )
    admin = sqlite_store.admin()
    broke = admin.create(Account(code="v-broke", kind="vendor", billing="prepaid"))
    a = next(g for g in admin.list(RoutingGateway) if g.name == "a")
    admin.update(replace(a, account_id=broke.id))
    node.router.refresh()
    node.router.start(node.now)  # learns the vendors' balances
    assert order(node) == ["b"]
    admin.pay(broke.id, d("10"))
    node.advance(node.router.tick)
    assert order(node) == ["a", "b"]


def test_t39_f6_66_number_rewriting_toward_the_carrier(sqlite_store: Store) -> None:
    node = world(
        sqlite_store,
        {"name": "a", "prefixes": ("880",), "strip_digits": 3, "add_prefix": "0", "tech_prefix": "*99"},
        {"name": "b", "prefixes": ("880",), "callee_dial_plan": "880:00880", "caller_dial_plan": "555:+1555"},
    )
    admission = node.admit("c", "880171234567", caller="5550001")
    a, b = admission.routes
    assert a.callee == "*990171234567"  # strip 880, add 0, then the gateway (tech) prefix
    assert b.callee == "00880171234567"
    assert (a.caller, b.caller) == ("5550001", "+15550001")
