"""Routing analysis (reference §D.9): for a number, a time and a customer, which gateways would
be tried in which order and why, and which rate would price the call — without placing a call.

:func:`analyse` runs the same admission decision as a real call (signaling.callproc.admission)
on a snapshot, with the node's live line counts and ASR/ACD when given (a running router's),
or with none (the ``softswitch route-analysis`` command: the configuration's view). Routing is
shown even when admission would refuse the call, so an operator sees both answers. When the
number is a phone's, it shows where the phone is registered — on which node of the database,
its contact, and whether that node is alive — and the route a call takes to it (given
``registered``: a running router's view, or the store's). :func:`render` writes the result as
text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from signaling.billing import RateChoice, Tariff
from signaling.callproc.admission import Decision, decide
from signaling.callproc.cluster import Registered
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.routes import Candidate, RoutePlan, plan_routes
from signaling.callproc.snapshot import Snapshot
from signaling.routing import InboundCall, PhoneContact
from signaling.store import MappingGateway, Phone
from signaling.store.gateways import parse_address


@dataclass(slots=True)
class Analysis:
    number: str
    at: datetime
    ingress: MappingGateway | None
    decision: Decision | None
    plan: RoutePlan
    #: Why the analysis could not simulate a customer (unknown name…), else "".
    note: str = ""
    #: The called phone's registrations, on every node known (None: not looked at).
    registrations: list[Registered] | None = None
    #: SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY: an unreachable phone's number goes to the gateways.
    redirect_offline: bool = False


def _probe(snap: Snapshot, ingress: MappingGateway, number: str, caller: str) -> InboundCall:
    """A call as the mapping gateway would send it (its first address, or its user name)."""
    if ingress.addresses:
        ip, port = parse_address(ingress.addresses[0])
        return InboundCall("route-analysis", (ip, port or 5060), "udp", caller, number)
    return InboundCall("route-analysis", ("0.0.0.0", 0), "udp", caller, number, auth_user=ingress.username)


def analyse(
    snap: Snapshot,
    number: str,
    *,
    at: datetime,
    ingress: str | None = None,
    caller: str = "",
    now: float = 0.0,
    counters: Counters | None = None,
    quality: Quality | None = None,
    vendor_funds: Callable[[int], Decimal | None] | None = None,
    registered: Callable[[Phone], list[Registered]] | None = None,
) -> Analysis:
    """Analyse a call to ``number`` at ``at`` from the mapping gateway named ``ingress`` (when
    None and there is exactly one mapping gateway, that one; else every routing gateway is a
    candidate and no customer rate applies). ``registered(phone)`` says where a phone is
    registered (without it, registrations are unknown and a phone's number is routed as a
    number)."""
    counters = counters or Counters()
    p = snap.parameters
    quality = quality or Quality(
        p["SS_GATEWAY_ASR_RESERVE_TIME"],
        p["SS_GATEWAY_ASR_RESERVE_SEPARATE"],
        p["SS_GATEWAY_ACD_RESERVE_TIME"],
        p["SS_GATEWAY_ACD_RESERVE_SEPARATE"],
    )
    funds = vendor_funds or (lambda _account: None)
    day = at.date().toordinal()
    gateway: MappingGateway | None = None
    note = ""
    if ingress is not None:
        gateway = snap.mapping_by_name(ingress)
        if gateway is None:
            note = f"no mapping gateway named {ingress!r}: routing shown for any customer"
    elif len(snap.mapping) == 1:
        gateway = next(iter(snap.mapping.values()))
    else:
        note = "no mapping gateway given: routing shown for any customer, no customer rate"
    if gateway is None:
        plan = plan_routes(
            snap, None, number, at=at, now=now, day=day, counters=counters, quality=quality,
            customer_price=None, vendor_funds=funds,
        )  # fmt: skip
        return Analysis(number, at, None, None, plan, note)
    seen: dict[int, list[Registered]] = {}

    def locate(phone: Phone) -> PhoneContact | None:
        found = seen.setdefault(phone.id, registered(phone) if registered is not None else [])
        usable = [r for r in found if r.alive and r.expires_at > at]
        usable.sort(key=lambda r: not r.local)  # this node's own binding first, as a call does
        return usable[0].contact_for_call() if usable else None

    decision = decide(
        snap,
        _probe(snap, gateway, number, caller or "0"),
        at=at,
        now=now,
        day=day,
        counters=counters,
        quality=quality,
        vendor_funds=funds,
        locate=locate if registered is not None else None,
    )
    phone = decision.callee_phone
    found = decision.plan
    plan = found if found is not None else plan_routes(
            snap, gateway, decision.callee_billing or number, at=at, now=now, day=day,
        counters=counters, quality=quality, customer_price=decision.price, vendor_funds=funds,
    )  # fmt: skip
    registrations = seen.get(phone.id) if phone is not None and registered is not None else None
    redirect = bool(snap.parameters["SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY"])
    return Analysis(number, at, gateway, decision, plan, note, registrations, redirect)


def _money(value: Fraction | Decimal | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return f"{value.normalize():f}" if value else "0"


def _tariff(t: Tariff) -> str:
    text = (
        f"first {t.first_time_duration} s at {_money(t.first_time_rate)}/min, "
        f"then {t.billing_cycle} s cycles at {_money(t.billing_rate)}/min"
    )
    if t.connection_fee:
        text += f", connection fee {_money(t.connection_fee)}"
    return text


def _choice(choice: RateChoice) -> str:
    extra = ""
    if choice.period is not None:
        extra = f", {choice.period.value} time"
    if choice.multiplier is not None:
        extra += f" x{_money(choice.multiplier)}"
    return (
        f"{choice.source.label} {choice.group!r} prefix {choice.prefix}{extra}: {_tariff(choice.connected)}"
    )


def _step(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_step(v) for v in value) + ")"
    if isinstance(value, Fraction):
        return _money(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _line(c: Candidate) -> str:
    gw = c.gateway
    facts = [
        f"prefix {c.prefix or '(any)'}",
        f"priority {gw.priority}",
        f"weight {gw.weight}",
        f"cost {_money(c.cost)}",
        f"ASR {'-' if c.asr is None else f'{c.asr:.1f}%'} ({c.asr_attempts} attempts)",
        f"ACD {'-' if c.acd is None else f'{c.acd:.0f} s'}",
        f"response/connected {_percent(c.response_rate)}/{_percent(c.connected_rate)}",
        f"lines {c.usage:.0%} used, {c.today} today",
    ]
    if c.protect:
        facts.append("PROTECT ROUTE")
    if c.strategy:
        facts.append(f"strategy {c.strategy + 1}")
    key = "; ".join(f"{name}={_step(value)}" for name, value in c.steps)
    vendor = f"\n      vendor rate: {_choice(c.vendor)}" if c.vendor is not None else ""
    return f"{gw.name} [{', '.join(facts)}]\n      key: {key}{vendor}"


def _admission(a: Analysis, d: Decision) -> list[str]:
    out: list[str] = []
    if d.account is not None:
        out.append(f"Account: {d.account.code}")
    if d.callee_billing:
        out.append(f"Callee: {a.number} -> {d.callee_billing} (after the mapping gateway's dial plan)")
    if d.rate is not None and d.rate.choice is None:
        out.append("Rate: none (No Matching Rate)")
    elif d.rate is not None and d.rate.choice is not None:
        out.append(f"Rate: {_choice(d.rate.choice)}")
        out.extend(f"  also matched: {_choice(o)}" for o in d.rate.candidates if o is not d.rate.choice)
        out.append(f"  first period costs {_money(d.need)} (reserved at admission)")
    out.extend(_phone(a, d))
    if d.needs_auth:
        out.append("Admission: needs digest authentication")
    elif d.rejection is not None:
        r = d.rejection
        out.append(f"Admission: refused, {r.status} {r.reason} ({r.termination})")
    else:
        out.append("Admission: accepted (if the balance covers the first period)")
    return out


def _phone(a: Analysis, d: Decision) -> list[str]:
    """Where the called phone is registered and the route a call takes to it."""
    phone = d.callee_phone
    if phone is None:
        return []
    out = [f"Phone: {phone.number}" + (" (locked)" if phone.locked else "")]
    if a.registrations is None:
        out.append("  registrations not known here: routed as a number")
        return out
    if not a.registrations:
        out.append("  not registered on any node")
    for r in a.registrations:
        where = "this node" if r.local else f"node {r.node}" + ("" if r.alive else " (dead: no heartbeat)")
        out.append(
            f"  registered at {where}: {r.contact} from {r.source[0]}:{r.source[1]} {r.transport.lower()}, "
            f"expires {r.expires_at.isoformat(timespec='seconds')}"
        )
    local = d.routes[0] if d.routes and d.routes[0].gateway == f"phone:{phone.number}" else None
    if d.hop is not None:
        node = d.hop.gateway.rpartition("@")[2]
        out.append(
            f"  route: {d.hop.gateway}, forwarded to node {node} at {d.hop.host}:{d.hop.port} "
            "(it delivers the call; the node the call entered bills it)"
        )
    elif local is not None:
        out.append(f"  route: {local.gateway}, to {local.host}:{local.port} {local.transport}")
    if local is not None or (d.rejection is not None and d.plan is None):
        out.append("  the gateways below are not used")
    elif d.hop is not None:
        out.append(
            "  the gateways below follow when the phone's node cannot be reached"
            if a.redirect_offline
            else "  the gateways below are not used (SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY Off)"
        )
    else:
        out.append("  not reachable: its number is routed through the gateways below")
    return out


def _routing(plan: RoutePlan) -> list[str]:
    out = ["Sort steps: " + ", ".join(plan.step_names)]
    if plan.ordered:
        out.append("Gateways tried, in order:")
        out.extend(f"  {i}. {_line(c)}" for i, c in enumerate(plan.ordered, 1))
        out.append(f"First choice: {plan.ordered[0].gateway.name}")
        protect = [c.gateway.name for c in plan.ordered if c.protect]
        out.append("Protect routes in the chain: " + (", ".join(protect) if protect else "none"))
    else:
        out.append(f"No gateway to try: {plan.termination}")
    if plan.cut:
        out.append("Not reached (a gateway before them does not fail over, or SS_GATEWAY_SWITCH_LIMIT):")
        out.extend(f"  - {c.gateway.name}" for c in plan.cut)
    if plan.skipped:
        out.append("Skipped:")
        out.extend(f"  - {c.gateway.name}: {c.skipped}" for c in plan.skipped)
    return out


def render(a: Analysis) -> str:
    out = [f"Routing analysis for {a.number} at {a.at.isoformat()}"]
    if a.note:
        out.append(f"Note: {a.note}")
    if a.ingress is not None:
        out.append(f"Mapping gateway: {a.ingress.name}")
    if a.decision is not None:
        out.extend(_admission(a, a.decision))
    out.extend(_routing(a.plan))
    return "\n".join(out)


def as_json(a: Analysis) -> str:
    """The analysis as JSON (for the web manager and scripts)."""

    def candidate(c: Candidate) -> dict[str, object]:
        return {
            "gateway": c.gateway.name,
            "prefix": c.prefix,
            "protect": c.protect,
            "priority": c.gateway.priority,
            "cost": _money(c.cost),
            "asr": c.asr,
            "acd": c.acd,
            "rate_of_response": c.response_rate,
            "rate_of_connected": c.connected_rate,
            "key": {name: _step(value) for name, value in c.steps},
            "skipped": c.skipped,
        }

    d = a.decision
    choice = d.rate.choice if d is not None and d.rate is not None else None
    return json.dumps(
        {
            "number": a.number,
            "at": a.at.isoformat(),
            "mapping_gateway": a.ingress.name if a.ingress else None,
            "rate": None
            if choice is None
            else {"source": choice.source.label, "group": choice.group, "prefix": choice.prefix},
            "rejection": None if d is None or d.rejection is None else d.rejection.termination,
            "steps": a.plan.step_names,
            "order": [candidate(c) for c in a.plan.ordered],
            "cut": [c.gateway.name for c in a.plan.cut],
            "skipped": [candidate(c) for c in a.plan.skipped],
            "phone": _phone_json(a),
            "note": a.note,
        },
        indent=2,
    )


def _phone_json(a: Analysis) -> dict[str, object] | None:
    d = a.decision
    phone = d.callee_phone if d is not None else None
    if d is None or phone is None:
        return None
    route = d.hop or next((r for r in d.routes if r.gateway == f"phone:{phone.number}"), None)
    return {
        "number": phone.number,
        "registrations": None
        if a.registrations is None
        else [
            {
                "node": r.node,
                "this_node": r.local,
                "node_alive": r.alive,
                "contact": r.contact,
                "source": f"{r.source[0]}:{r.source[1]}",
                "transport": r.transport,
                "expires": r.expires_at.isoformat(),
            }
            for r in a.registrations
        ],
        "route": None
        if route is None
        else {"gateway": route.gateway, "host": route.host, "port": route.port},
    }
