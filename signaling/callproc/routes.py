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

Two implementations of steps 2-4: :func:`plan_routes_python`, the reference, and the compiled
planner (``_planner.pyx``, made per snapshot by :class:`RouteCache`), which gives the same plan
(and admission's routes) in a fraction of the time; :func:`plan_routes` uses the compiled one
when it is built, unless ``SOFTSWITCH_COMPILED_ROUTING=0`` (docs/routing.md "The compiled
planner").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from math import lcm

from signaling.billing import (
    BillingPolicy,
    RateChoice,
    RateSource,
    RateSources,
    billed_seconds,
    charge,
    select_rate,
)
from signaling.billing.charge import MS_PER_SECOND, exact_price
from signaling.billing.rates import CHEAPEST_REFERENCE_SECONDS, Rate, RateGroup
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.snapshot import Snapshot
from signaling.media.codec_policy import GatewayCodecPolicy, policy_from_settings
from signaling.routing import NO_CODEC_SETTINGS
from signaling.sip.identity import IdentityPolicy
from signaling.store import MappingGateway, RoutingGateway
from signaling.untracked import untrack

try:  # the compiled planner (_planner.pyx); it imports this module only when it makes one
    from signaling.callproc import _planner
    from signaling.callproc._planner import Planner
except ImportError:  # the extension is not built: the reference plans
    _planner = None  # type: ignore[assignment]

log = logging.getLogger("softswitch.callproc")

#: Whether snapshots get the compiled planner: it is built, and SOFTSWITCH_COMPILED_ROUTING is
#: not "0" (a switch to rule the compiled code out when investigating; the reference is slower).
COMPILED = _planner is not None and os.environ.get("SOFTSWITCH_COMPILED_ROUTING", "1") != "0"

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
    #: Why it is not tried (None: it is).
    skipped: str | None = None
    #: The plan's step names and the switch's parameters (what :attr:`steps` shows).
    names: tuple[str, ...] = ()
    parameters: Mapping[str, object] | None = None
    #: The sort key in a form that compares fast and orders exactly as :attr:`key`: the steps'
    #: values flattened, exact fractions as integers over a common denominator (what
    #: :func:`plan_routes_python` sorts on; the compiled planner sorts on a C struct of the same
    #: key and leaves it empty).
    order: tuple[object, ...] = ()

    @property
    def protect(self) -> bool:
        return self.gateway.protect

    @property
    def steps(self) -> list[tuple[str, object]]:
        """The sort key, step by step: (step name, value)."""
        p = self.parameters or {}
        return [(name, _value(name, self, p)) for name in self.names]

    @property
    def key(self) -> tuple[object, ...]:
        return tuple(value for _, value in self.steps)


#: The fields of :class:`Candidate` and of :class:`signaling.routing.Route`, in order: the
#: compiled planner sets them slot by slot and refuses to start if a class has changed.
CANDIDATE_FIELDS = (
    "gateway", "strategy", "prefix", "vendor", "cost", "asr", "asr_attempts", "acd", "response_rate",
    "connected_rate", "usage", "today", "skipped", "names", "parameters", "order",
)  # fmt: skip
ROUTE_FIELDS = (
    "gateway", "host", "port", "transport", "callee", "caller", "stop_switch_codes", "media_proxy", "dtmf",
    "session_timer", "username", "password", "identity", "caller_pool", "caller_pool_multiplex",
    "caller_pool_sequence", "caller_strip", "caller_add", "uri", "codecs", "headers",
    "source_ip",
)  # fmt: skip


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


def vendor_choice(snap: Snapshot, group: RateGroup, rate: Rate) -> tuple[RateChoice, Fraction | None, object]:
    """A vendor rate as routing remembers it per snapshot: its :class:`RateChoice`, reference
    price and that price as the sort compares it (out of the collector's walks when the
    snapshot is: signaling/untracked.py)."""
    choice = RateChoice(RateSource.ACCOUNT, group.name, rate, rate.connected, rate.response)
    price = reference_price(choice, snap.policy)
    found = (choice, price, cost_order(price))
    if snap.untracked:
        for part in (choice, price, found[2], found):
            untrack(part)
    return found


#: Candidate sets remembered per (mapping gateway, number prefix) before the memory starts over.
CANDIDATE_SETS = 100_000
#: A route's fields but its numbers: (gateway, host, port, transport) and the rest, in the
#: order of signaling.routing.Route (signaling.callproc.admission makes them).
RouteSettings = tuple[
    tuple[str, str, int, str],
    tuple[
        frozenset[int],
        str,
        str,
        bool,
        str | None,
        str | None,
        IdentityPolicy,
        tuple[str, ...],
        int,
        int | None,
    ],
]


class RouteCache:
    """What routing derives from one snapshot once instead of on every call (the snapshot never
    changes; a reload brings a new snapshot and so a new cache):

    * the sort's step names and the function making a candidate's key (parameters parsed once);
    * step 1's candidates per (mapping gateway, the number's first ``longest_prefix`` digits):
      the gateways, their strategy and matched prefix depend on nothing else;
    * per routing gateway, the skip reasons that never change (locked, dial plan error) and
      whether its vendor rate is a plain lookup in its rate group (no period rate can apply);
    * per customer tariff, the first period's price and the reference price;
    * per vendor rate, its :class:`RateChoice` and reference price (a ``Fraction``, and the
      same as an integer over a common denominator, for the sort);
    * per routing gateway (and the customer's media-proxy setting) a route's fields but its
      numbers;
    * the compiled planner (``planner``; None: :func:`plan_routes_python` plans), when
      ``compiled`` (default :data:`COMPILED`) and the snapshot's numbers fit its integers.
    """

    __slots__ = (
        "candidate_sets",
        "codec_policies",
        "customer_terms",
        "order_of",
        "plain_vendor",
        "planner",
        "route_settings",
        "static_skip",
        "step_names",
        "switch_limit",
        "vendor_choices",
    )

    def __init__(self, snap: Snapshot, *, compiled: bool | None = None) -> None:
        p = snap.parameters
        self.step_names = tuple(_step_names(p))
        self.order_of = _order_function(self.step_names, p, self._weights(snap))
        limit = p["SS_GATEWAY_SWITCH_LIMIT"]
        self.switch_limit = None if limit is None else int(str(limit))
        self.candidate_sets: dict[tuple[int | None, str], list[tuple[RoutingGateway, int, str]]] = {}
        self.vendor_choices: dict[int, tuple[RateChoice, Fraction | None, object]] = {}
        #: id(tariff) -> (first period's price, reference price), for the snapshot's own tariffs
        self.customer_terms: dict[int, tuple[Decimal, Fraction | None]] = {}
        self.static_skip: dict[int, str | None] = {}
        self.plain_vendor: dict[int, bool] = {}
        #: (routing gateway id, the mapping gateway's media proxy) -> the route's other fields
        self.route_settings: dict[tuple[int, str | None], RouteSettings] = {}
        #: ("mapping" | "routing", gateway id) -> its codec policy (signaling.callproc.admission)
        self.codec_policies: dict[tuple[str, int], GatewayCodecPolicy] = {}
        for gw in snap.routing.values():
            plans = snap.routing_plans.get(gw.id)
            if gw.locked:
                self.static_skip[gw.id] = "locked"
            elif plans is not None and plans.error:
                self.static_skip[gw.id] = f"dial plan error: {plans.error}"
            else:
                self.static_skip[gw.id] = None
            vendor = snap.accounts.get(gw.account_id) if gw.account_id is not None else None
            self.plain_vendor[gw.id] = (
                not snap.switches.active
                or vendor is None
                or (vendor.period_rate_id is None and not snap.subscriptions.get(vendor.id))
            )
        self.planner: Planner | None = None
        if COMPILED if compiled is None else compiled:
            self.planner = _compiled_planner(snap, self)

    @staticmethod
    def _weights(snap: Snapshot) -> int:
        """A common multiple of the routing gateways' weights: ``today * (common // weight)``
        orders gateways exactly as ``Fraction(today, weight)`` does, in integers."""
        common = 1
        for gw in snap.routing.values():
            if gw.weight:
                common = lcm(common, gw.weight)
        return common


def _compiled_planner(snap: Snapshot, cache: RouteCache) -> Planner | None:
    """The compiled planner of ``snap``; None when it is not built, or when a gateway's
    priority, weight, line limits or id do not fit its 64-bit integers (then the reference
    plans: it has no such limit)."""
    if _planner is None:
        return None
    try:
        return _planner.Planner(snap, cache)
    except OverflowError as exc:
        log.warning("routing: the reference planner plans (a value does not fit the compiled one: %s)", exc)
        return None


def first_period_and_price(snap: Snapshot, choice: RateChoice) -> tuple[Decimal, Fraction | None]:
    """What admission reserves for a call at ``choice`` (its first billing period's price,
    ``charge(tariff, 1 ms)``) and the reference price of ``choice``; remembered per tariff of the
    snapshot (a period multiplier's tariff is made per call, and is not remembered)."""
    tariff = choice.connected
    owned = tariff is choice.rate.connected
    cache = route_cache(snap)
    if owned:
        found = cache.customer_terms.get(id(tariff))
        if found is not None:
            return found
    found = (charge(tariff, 1, policy=snap.policy).amount, reference_price(choice, snap.policy))
    if owned:
        if snap.untracked:
            untrack(found[1])
            untrack(found)
        cache.customer_terms[id(tariff)] = found
    return found


def gateway_codecs(snap: Snapshot, gw: MappingGateway | RoutingGateway) -> GatewayCodecPolicy:
    """The codec policy of a mapping or routing gateway of the snapshot (made once per snapshot).
    Settings the store accepted but the policy cannot use (rows older than the store's check)
    are logged and read as none, rather than failing every call of the gateway."""
    kind = "mapping" if isinstance(gw, MappingGateway) else "routing"
    cache = route_cache(snap).codec_policies
    policy = cache.get((kind, gw.id))
    if policy is None:
        try:
            policy = policy_from_settings(
                gw.codecs,
                gw.codec_mode,
                gw.allow_transcoding,
                gw.g729_mode,
                rfc2833_payload=gw.rfc2833_payload,
                use_peer_rfc2833=gw.use_peer_rfc2833,
            )
        except ValueError as exc:
            log.warning("%s gateway %s: codec settings ignored: %s", kind, gw.name, exc)
            policy = NO_CODEC_SETTINGS
        cache[(kind, gw.id)] = policy
    return policy


def route_cache(snap: Snapshot) -> RouteCache:
    """The snapshot's :class:`RouteCache`, made on first use."""
    cache = snap.routing_cache
    if not isinstance(cache, RouteCache):
        cache = snap.routing_cache = RouteCache(snap)
    return cache


def candidates(snap: Snapshot, ingress: MappingGateway | None, number: str) -> list[Candidate]:
    """Step 1: the routing gateways matching ``number`` that ``ingress`` may use (None: any
    customer, for the routing analysis)."""
    cache = route_cache(snap)
    key = (None if ingress is None else ingress.id, number[: snap.longest_prefix])
    found = cache.candidate_sets.get(key)
    if found is None:
        if len(cache.candidate_sets) >= CANDIDATE_SETS:
            cache.candidate_sets.clear()
        found = cache.candidate_sets[key] = _candidate_set(snap, ingress, key[1])
    return [Candidate(gw, strategy, prefix) for gw, strategy, prefix in found]


def _candidate_set(
    snap: Snapshot, ingress: MappingGateway | None, number: str
) -> list[tuple[RoutingGateway, int, str]]:
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
    found: list[tuple[RoutingGateway, int, str]] = []
    for gateway_id, prefix in matches.items():
        gw = snap.routing[gateway_id]
        if ingress is not None:
            if gw.mapping_gateway_mode == "allow" and ingress.id not in gw.mapping_gateways:
                continue
            if gw.mapping_gateway_mode == "deny" and ingress.id in gw.mapping_gateways:
                continue
        if strategy_of is not None and gateway_id not in strategy_of:
            continue
        found.append((gw, 0 if strategy_of is None else strategy_of[gateway_id], prefix))
    longest: dict[int, int] = {}
    for _, strategy, prefix in found:
        longest[strategy] = max(longest.get(strategy, -1), len(prefix))
    return [c for c in found if len(c[2]) == longest[c[1]] or c[0].extension_mode]


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
    """The exact value of one step of ``c``'s sort key (what the routing analysis shows)."""
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


#: Costs are compared as integers over this denominator (a reference price is an integer over
#: 60 x 10**places; any tariff of up to 20 places fits): exact, and compared in C.
COST_DENOMINATOR = 60 * 10**20


def cost_order(cost: Fraction | None) -> object:
    """``cost`` as the sort compares it: an integer over :data:`COST_DENOMINATOR` when it is one
    (always, for prices of up to 20 places), else the fraction itself (ints and fractions compare
    exactly)."""
    if cost is None:
        return 0
    scale, rest = divmod(COST_DENOMINATOR, cost.denominator)
    return cost.numerator * scale if rest == 0 else cost


def _order_function(
    names: tuple[str, ...], p: Mapping[str, object], weights: int
) -> Callable[[Candidate, object], tuple[object, ...]]:
    """``order(candidate, cost order)``: the sort key of :func:`_value` flattened (a tuple inside a
    tuple compares as its items in place), with exact fractions as integers. The first four steps
    are always protect, strategy, prefix, priority; the last two line usage (and whatever sits
    before the gateway id) and the gateway id."""
    min_calls = int(str(p["SS_GATEWAY_ASR_MIN_CALLS"]))
    threshold = int(str(p["SS_GATEWAY_ASR_THRESHOLD"]))
    inf = float("inf")
    middle = names[4:-1]  # [asr, acd, cost]… "line usage" …[asr, acd, cost]

    def order(c: Candidate, cost: object) -> tuple[object, ...]:
        gw = c.gateway
        out: list[object] = [int(gw.protect), c.strategy, -len(c.prefix), gw.priority]
        for step in middle:
            if step == "line usage":
                weight = gw.weight
                out += (c.usage, c.today * (weights // weight) if weight else inf)
            elif step == "cost":
                out += (1, 0) if c.cost is None else (0, cost)
            elif step == "asr":
                if c.asr is None or c.asr_attempts < min_calls:
                    out += (0, -100.0)
                else:
                    out += (int(c.asr < threshold), -c.asr)
            else:  # acd
                out.append(-inf if c.acd is None else -c.acd)
        out.append(gw.id)
        return tuple(out)

    return order


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
    """Steps 1-4 of the module doc for ``number`` (the billing callee) called at ``at``: by the
    snapshot's compiled planner, else by :func:`plan_routes_python`."""
    planner = route_cache(snap).planner
    if planner is not None:
        return planner.plan(
            snap, ingress, number, at=at, now=now, day=day, counters=counters, quality=quality,
            customer_price=customer_price, vendor_funds=vendor_funds,
        )  # fmt: skip
    return plan_routes_python(
        snap, ingress, number, at=at, now=now, day=day, counters=counters, quality=quality,
        customer_price=customer_price, vendor_funds=vendor_funds,
    )  # fmt: skip


def plan_routes_python(
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
    """Steps 1-4, the reference implementation (what the compiled planner must equal)."""
    cache = route_cache(snap)
    names = cache.step_names
    order_of = cache.order_of
    parameters = snap.parameters
    usable: list[Candidate] = []
    skipped: list[Candidate] = []
    no_loss = bool(snap.parameters["SS_GATEWAY_NO_LOSS_ROUTE"])
    vendors: dict[int | None, tuple[RateChoice | None, Fraction | None, object]] = {}  # by rate group
    for c in candidates(snap, ingress, number):
        gw = c.gateway
        c.vendor, c.cost, cost = _vendor_rate(snap, cache, gw, number, at, seen=vendors)
        c.asr, c.asr_attempts = quality.asr(gw.id, now)
        c.acd = quality.acd(gw.id, now)
        c.response_rate, c.connected_rate = quality.rates(gw.id, now)
        out = ("out", gw.id)
        c.usage = counters.usage(out) / gw.max_calls if gw.max_calls else 0.0  # every node's lines
        c.today = counters.today(out, day)
        c.names = names
        c.parameters = parameters
        c.order = order_of(c, cost)
        c.skipped = cache.static_skip.get(gw.id) or _skip_reason(
            snap,
            c,
            now=now,
            counters=counters,
            customer_price=customer_price,
            vendor_funds=vendor_funds,
            no_loss=no_loss,
        )
        (skipped if c.skipped else usable).append(c)
    usable.sort(key=_by_key)
    ordered: list[Candidate] = []
    cut: list[Candidate] = []
    limit = cache.switch_limit
    for c in usable:
        stopped = ordered and not ordered[-1].gateway.switch_until_connect
        if stopped or (limit is not None and len(ordered) >= limit):
            cut.append(c)
        else:
            ordered.append(c)
    return RoutePlan(ordered, skipped, cut, list(names))


def _by_key(c: Candidate) -> tuple[object, ...]:
    return c.order


def _vendor_rate(
    snap: Snapshot,
    cache: RouteCache,
    gw: RoutingGateway,
    number: str,
    at: datetime,
    *,
    seen: dict[int | None, tuple[RateChoice | None, Fraction | None, object]],
) -> tuple[RateChoice | None, Fraction | None, object]:
    """The vendor's rate for ``number``, its reference price and that price as the sort compares
    it (:func:`cost_order`). Without a period rate that can apply it is the plain longest-prefix
    rate of the gateway's group (what ``select_rate`` gives for one source), remembered per rate;
    gateways of one vendor group share it per call."""
    group = snap.rate_groups.get(gw.rate_group_id) if gw.rate_group_id is not None else None
    if group is None:
        return None, None, 0
    if not cache.plain_vendor.get(gw.id, False):
        vendor = snap.accounts.get(gw.account_id) if gw.account_id is not None else None
        period = snap.period_rate_for(vendor, at) if vendor is not None else None
        sources = RateSources(account=group, period_rate=period)
        choice = select_rate(number, at, sources, switches=snap.switches, policy=snap.policy).choice
        price = reference_price(choice, snap.policy)
        return choice, price, cost_order(price)
    found = seen.get(gw.rate_group_id)
    if found is not None:
        return found
    rate = group.lookup(number, at)
    if rate is None:
        found = (None, None, 0)
    else:
        found = cache.vendor_choices.get(id(rate))
        if found is None:
            found = cache.vendor_choices[id(rate)] = vendor_choice(snap, group, rate)
    seen[gw.rate_group_id] = found
    return found


def _skip_reason(
    snap: Snapshot,
    c: Candidate,
    *,
    now: float,
    counters: Counters,
    customer_price: Fraction | None,
    vendor_funds: Callable[[int], Decimal | None],
    no_loss: bool,
) -> str | None:
    """Why ``c`` cannot be tried now (after the static reasons of :class:`RouteCache`)."""
    gw = c.gateway
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
