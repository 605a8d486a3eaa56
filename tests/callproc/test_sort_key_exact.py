"""The fast sort key orders gateways exactly as the documented key (docs/routing.md "Order: the
sort key, step by step"; behaviours 24-29, F.6-60, T37).

``plan_routes`` sorts on ``Candidate.order``: the steps' values flattened, with the exact
fractions (cost of a reference call, calls today ÷ weight) as integers over a common
denominator, so that comparing is done in C. The routing analysis shows ``Candidate.key``, the
exact values. Property: for any two candidates, under any sort configuration, ``order`` compares
(<, ==) exactly as ``key`` does."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from math import lcm

from hypothesis import given, settings
from hypothesis import strategies as st

from signaling import params
from signaling.billing import DEFAULT_POLICY, RateChoice, RateSource, Tariff
from signaling.billing import Rate as BillingRate
from signaling.callproc.routes import Candidate, _order_function, _step_names, cost_order, reference_price
from signaling.store import RoutingGateway

_PLACEHOLDER = RoutingGateway("g", host="192.0.2.1", id=1)


@st.composite
def _cost(draw: st.DrawFn) -> Fraction | None:
    if draw(st.booleans()):
        return None
    places = draw(st.integers(0, 10))
    rate = Decimal(draw(st.integers(0, 10**6))).scaleb(-places)
    first, cycle = draw(st.sampled_from([(1, 1), (6, 6), (60, 60), (30, 6), (0, 1)]))
    fee = Decimal(draw(st.integers(0, 100))).scaleb(-3)
    tariff = Tariff(rate, first, rate, cycle, fee)
    choice = RateChoice(RateSource.ACCOUNT, "v", BillingRate("1", tariff), tariff, None)
    return reference_price(choice, DEFAULT_POLICY)


@st.composite
def _candidate(draw: st.DrawFn) -> Candidate:
    gw = replace(
        _PLACEHOLDER,
        id=draw(st.integers(1, 5)),
        protect=draw(st.booleans()),
        priority=draw(st.integers(1, 3)),
        weight=draw(st.sampled_from([0, 1, 3, 25, 75, 100, 7919])),
    )
    c = Candidate(gw, draw(st.integers(0, 2)), draw(st.sampled_from(["", "1", "12", "44"])))
    c.cost = draw(_cost())
    c.asr = draw(st.none() | st.sampled_from([0.0, 33.3, 50.0, 57.1, 100.0]))
    c.asr_attempts = draw(st.integers(0, 30))
    c.acd = draw(st.none() | st.sampled_from([0.0, 12.5, 150.0]))
    c.usage = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    c.today = draw(st.integers(0, 2000))
    return c


_SETTINGS = st.fixed_dictionaries(
    {
        "SS_GATEWAY_ASR_CALCULATE": st.booleans(),
        "SS_GATEWAY_ACD_CALCULATE": st.booleans(),
        "SS_GATEWAYASRROUTESORTCONFIG": st.sampled_from(["before line usage", "before gateway id"]),
        "SS_GATEWAYFEERATEROUTESORTCONFIG": st.sampled_from(
            ["before line usage", "before gateway id", "off"]
        ),
        "SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR": st.booleans(),
        "SS_GATEWAY_ASR_MIN_CALLS": st.integers(0, 20),
        "SS_GATEWAY_ASR_THRESHOLD": st.integers(0, 100),
    }
)


@settings(max_examples=300, deadline=None)
@given(_SETTINGS, st.lists(_candidate(), min_size=2, max_size=8))
def test_the_fast_order_compares_exactly_as_the_key(
    chosen: dict[str, object], found: list[Candidate]
) -> None:
    p = params.resolve({})
    p.update(chosen)
    names = tuple(_step_names(p))
    weights = 1
    for c in found:
        if c.gateway.weight:
            weights = lcm(weights, c.gateway.weight)
    order_of = _order_function(names, p, weights)
    for c in found:
        c.names, c.parameters = names, p
        c.order = order_of(c, cost_order(c.cost))
    for a in found:
        for b in found:
            assert (a.key < b.key) == (a.order < b.order), (a.steps, b.steps)
            assert (a.key == b.key) == (a.order == b.order), (a.steps, b.steps)
