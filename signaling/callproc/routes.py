"""Which routing gateways a call may use, in which order, and why (docs/routing.md).

Theory of operation, for one call (a mapping gateway and the callee number after its dial plan):

1. **Candidates.** A routing gateway is a candidate when one of its prefixes starts the number
   (no prefix = every number), the mapping gateway may use it (its routing gateway groups —
   the first, second… routing strategy — when it lists any; the routing gateway's own "mapping
   gateway name" allow/deny list), and, per strategy, its match is the longest one, or it has
   *extension mode* on (it takes calls for more specific prefixes after their gateways).
2. **Availability.** A candidate is skipped, with the reason kept for the routing analysis,
   when it is locked, its dial plans do not compile, its prepaid vendor account has no money
   left, it would route at a loss (SS_GATEWAY_NO_LOSS_ROUTE), or it is at its line or
   calls-per-second limit or one of its gateway groups is (ordinary traffic may not take a
   group's reserved lines; protect routes may).
3. **Order**, by a key of named steps (the reference's seven, §3.2 / §D.4):
   protect route last · routing strategy · longest prefix · priority (lower first) ·
   [ASR (then ACD), cost] · line usage (lines in use ÷ line limit, then calls today ÷ weight) ·
   [ASR, cost] · gateway id. ASR and cost sorting each sit before line usage or before the
   gateway id (SS_GATEWAYASRROUTESORTCONFIG, SS_GATEWAYFEERATEROUTESORTCONFIG); at the same
   place cost comes first only with SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR.
4. **Failover chain.** The list stops after the first gateway whose "switch gateway until
   connect" is off (its failure goes back to the caller) and after SS_GATEWAY_SWITCH_LIMIT
   gateways.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from signaling.billing import BillingPolicy, RateChoice, RateSources, billed_seconds, select_rate
from signaling.billing.charge import MS_PER_SECOND, exact_price
from signaling.billing.rates import CHEAPEST_REFERENCE_SECONDS
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.snapshot import Snapshot
from signaling.store import MappingGateway, RoutingGateway

#: Why a candidate is skipped for lack of lines (these make "AllGatewayBusy" when nothing is left).
BUSY_PREFIX = "busy"


@dataclass(slots=True)
class Candidate:
    gateway: RoutingGateway
    #: Position of the mapping gateway's routing group that allows it (0 without groups).
    strategy: int
    #: The gateway prefix that matched ("" = it serves every number).
    prefix: str
    #: The vendor's rate for the number (None: no vendor rate group, or no rate matches).
    vendor: RateChoice | None = None
    #: The vendor price of a reference call (60 s), for cost sorting and the loss check.
    cost: Fraction | None = None
    asr: float | None = None
    asr_attempts: int = 0
    acd: float | None = None
    #: The billing FAQ's rate of response and rate of connected, percent (quality.py).
    response_rate: float | None = None
    connected_rate: float | None = None
    #: Lines in use ÷ line limit; calls routed to it today.
    usage: float = 0.0
    today: int = 0
    #: The sort key, step by step: (step name, value).
    steps: list[tuple[str, object]] = field(default_factory=list)
    #: Why it is not tried (None: it is).
    skipped: str | None = None

    @property
    def protect(self) -> bool:
        return self.gateway.protect

    @property
    def key(self) -> tuple[object, ...]:
        return tuple(value for _, value in self.steps)


@dataclass(slots=True)
class RoutePlan:
    #: Gateways to try, in order (after the failover-chain cuts).
    ordered: list[Candidate]
    #: Candidates skipped, with their reasons.
    skipped: list[Candidate]
    #: Ordered candidates cut off by a gateway without failover or SS_GATEWAY_SWITCH_LIMIT.
    cut: list[Candidate]
    #: The step names of the sort key, in order.
    step_names: list[str]

    @property
    def termination(self) -> str | None:
        """The reason when nothing can be tried: "AllGatewayBusy" if lines were the only
        obstacle, else "NoAvailableRouter"."""
        if self.ordered:
            return None
        if self.skipped and all((c.skipped or "").startswith(BUSY_PREFIX) for c in self.skipped):
            return "AllGatewayBusy"
        return "NoAvailableRouter"


def reference_price(choice: RateChoice | None, policy: BillingPolicy) -> Fraction | None:
    """The exact price of a connected reference call (60 s) at ``choice``'s tariff."""
    if choice is None:
        return None
    seconds = billed_seconds(choice.connected, CHEAPEST_REFERENCE_SECONDS * MS_PER_SECOND, policy)
    return exact_price(choice.connected, seconds)


def candidates(snap: Snapshot, ingress: MappingGateway | None, number: str) -> list[Candidate]:
    """Step 1: the routing gateways matching ``number`` that ``ingress`` may use (None: any
    customer, for the routing analysis)."""
    strategy_of: dict[int, int] | None = None
    if ingress is not None and ingress.routing_groups:
        strategy_of = {}
        for position, group_id in enumerate(ingress.routing_groups):
            for gateway_id in snap.members.get(group_id, ()):
                strategy_of.setdefault(gateway_id, position)
    matches: dict[int, str] = {}
    for length in range(min(len(number), snap.longest_prefix), -1, -1):
        for gateway_id in snap.prefix_index.get(number[:length], ()):
            matches.setdefault(gateway_id, number[:length])
    found: list[Candidate] = []
    for gateway_id, prefix in matches.items():
        gw = snap.routing[gateway_id]
        if ingress is not None:
            if gw.mapping_gateway_mode == "allow" and ingress.id not in gw.mapping_gateways:
                continue
            if gw.mapping_gateway_mode == "deny" and ingress.id in gw.mapping_gateways:
                continue
        if strategy_of is not None and gateway_id not in strategy_of:
            continue
        found.append(Candidate(gw, 0 if strategy_of is None else strategy_of[gateway_id], prefix))
    longest: dict[int, int] = {}
    for c in found:
        longest[c.strategy] = max(longest.get(c.strategy, -1), len(c.prefix))
    return [c for c in found if len(c.prefix) == longest[c.strategy] or c.gateway.extension_mode]


def _step_names(p: Mapping[str, object]) -> list[str]:
    quality: list[str] = []
    if p["SS_GATEWAY_ASR_CALCULATE"]:
        quality.append("asr")
    if p["SS_GATEWAY_ACD_CALCULATE"]:
        quality.append("acd")
    before_usage: list[str] = []
    before_id: list[str] = []
    asr_place = before_id if p["SS_GATEWAYASRROUTESORTCONFIG"] == "before gateway id" else before_usage
    fee_setting = p["SS_GATEWAYFEERATEROUTESORTCONFIG"]
    fee_place = (
        None if fee_setting == "off" else before_id if fee_setting == "before gateway id" else before_usage
    )
    if fee_place is asr_place:
        if p["SS_GATEWAY_FEE_RATE_ROUTE_BEFORE_ASR"]:
            asr_place.extend(["cost", *quality])
        else:
            asr_place.extend([*quality, "cost"])
    else:
        asr_place.extend(quality)
        if fee_place is not None:
            fee_place.append("cost")
    return [
        "protect",
        "strategy",
        "prefix",
        "priority",
        *before_usage,
        "line usage",
        *before_id,
        "gateway id",
    ]


def _value(step: str, c: Candidate, p: Mapping[str, object]) -> object:  # noqa: PLR0911 (one per step)
    if step == "protect":
        return int(c.protect)
    if step == "strategy":
        return c.strategy
    if step == "prefix":
        return -len(c.prefix)
    if step == "priority":
        return c.gateway.priority
    if step == "asr":
        min_calls = int(str(p["SS_GATEWAY_ASR_MIN_CALLS"]))
        if c.asr is None or c.asr_attempts < min_calls:
            return (0, -100.0)  # not enough calls to judge: never demoted
        return (int(c.asr < int(str(p["SS_GATEWAY_ASR_THRESHOLD"]))), -c.asr)
    if step == "acd":
        return float("-inf") if c.acd is None else -c.acd
    if step == "cost":
        return (1, Fraction(0)) if c.cost is None else (0, c.cost)
    if step == "line usage":
        weight = c.gateway.weight
        return (c.usage, Fraction(c.today, weight) if weight else float("inf"))
    return c.gateway.id


def plan_routes(
    snap: Snapshot,
    ingress: MappingGateway | None,
    number: str,
    *,
    at: datetime,
    now: float,
    day: int,
    counters: Counters,
    quality: Quality,
    customer_price: Fraction | None,
    vendor_funds: Callable[[int], Decimal | None],
) -> RoutePlan:
    """Steps 1-4 of the module doc for ``number`` (the billing callee) called at ``at``."""
    p = snap.parameters
    names = _step_names(p)
    usable: list[Candidate] = []
    skipped: list[Candidate] = []
    no_loss = bool(p["SS_GATEWAY_NO_LOSS_ROUTE"])
    for c in candidates(snap, ingress, number):
        gw = c.gateway
        c.vendor = _vendor_rate(snap, gw, number, at)
        c.cost = reference_price(c.vendor, snap.policy)
        c.asr, c.asr_attempts = quality.asr(gw.id, now)
        c.acd = quality.acd(gw.id, now)
        c.response_rate, c.connected_rate = quality.rates(gw.id, now)
        active = counters.usage(("out", gw.id))  # every node's lines, for the order
        c.usage = active / gw.max_calls if gw.max_calls else 0.0
        c.today = counters.today(("out", gw.id), day)
        c.steps = [(name, _value(name, c, p)) for name in names]
        c.skipped = _skip_reason(
            snap,
            c,
            now=now,
            counters=counters,
            customer_price=customer_price,
            vendor_funds=vendor_funds,
            no_loss=no_loss,
        )
        (skipped if c.skipped else usable).append(c)
    usable.sort(key=lambda c: c.key)
    ordered: list[Candidate] = []
    cut: list[Candidate] = []
    limit = p["SS_GATEWAY_SWITCH_LIMIT"]
    for c in usable:
        stopped = ordered and not ordered[-1].gateway.switch_until_connect
        if stopped or (limit is not None and len(ordered) >= int(str(limit))):
            cut.append(c)
        else:
            ordered.append(c)
    return RoutePlan(ordered, skipped, cut, names)


def _vendor_rate(snap: Snapshot, gw: RoutingGateway, number: str, at: datetime) -> RateChoice | None:
    group = snap.rate_groups.get(gw.rate_group_id) if gw.rate_group_id is not None else None
    if group is None:
        return None
    vendor = snap.accounts.get(gw.account_id) if gw.account_id is not None else None
    period = snap.period_rate_for(vendor, at) if vendor is not None else None
    sources = RateSources(account=group, period_rate=period)
    return select_rate(number, at, sources, switches=snap.switches, policy=snap.policy).choice


def _skip_reason(  # noqa: PLR0911 (one return per rule)
    snap: Snapshot,
    c: Candidate,
    *,
    now: float,
    counters: Counters,
    customer_price: Fraction | None,
    vendor_funds: Callable[[int], Decimal | None],
    no_loss: bool,
) -> str | None:
    gw = c.gateway
    if gw.locked:
        return "locked"
    plans = snap.routing_plans.get(gw.id)
    if plans is not None and plans.error:
        return f"dial plan error: {plans.error}"
    vendor = snap.accounts.get(gw.account_id) if gw.account_id is not None else None
    if vendor is not None and vendor.billing == "prepaid":
        funds = vendor_funds(vendor.id)
        if funds is not None and funds <= 0:
            return f"vendor account {vendor.code} has no balance left"
    if no_loss and customer_price is not None:
        if gw.rate_group_id is not None and c.cost is None:
            return "no vendor rate for the number (cost unknown)"
        if c.cost is not None and c.cost > customer_price:
            return (
                f"loss: vendor {float(c.cost):.7f} > customer {float(customer_price):.7f} per reference call"
            )
    full = counters.full(("out", gw.id), now, gw.max_calls, gw.max_cps)
    if full is not None:
        return f"{BUSY_PREFIX} ({full})"
    for group_id in gw.groups:
        group = snap.groups.get(group_id)
        if group is None or group.max_calls is None:
            continue
        lines = group.max_calls if gw.protect else group.max_calls - group.reserved_lines
        if counters.active(("group", group_id)) >= lines:
            reserved = "" if gw.protect else f", {group.reserved_lines} reserved"
            return f"{BUSY_PREFIX} (group {group.name}: {group.max_calls} lines{reserved})"
    return None
