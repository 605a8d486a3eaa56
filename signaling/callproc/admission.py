"""The in-memory half of admitting a call: who calls, may they, at what rate, along which routes.

:func:`decide` runs the reference's admission order (architecture CAP-3.3) on a
:class:`~signaling.callproc.snapshot.Snapshot` and returns a :class:`Decision`, touching
neither the database nor any counter: the router then reserves the money (the one database
write of admission) and takes the lines; the routing analysis shows the same decision without
placing a call.

Order, each step refusing with a SIP status and a CDR termination reason (docs/routing.md):

1. the mapping gateway, by source IP and port, source IP, or digest user name (a password
   gateway's request without credentials is answered with a challenge first);
   locked gateway or account, expired account;
2. the mapping gateway's and the account's lines and calls per second (checked by the router,
   which owns the counters), the caller black and white lists, the callee prefixes it may send;
3. its dial plans (callee, caller): the numbers that are rated and routed; an emptied callee;
4. the account's number-section limitation, and its agents' (inherited);
5. the rate ("No Matching Rate") and whether the account may make that call type;
6. the routes (none left: "NoAvailableRouter" or "AllGatewayBusy").

The balance check (step 4 of the reference's flow) is the reservation, made by the router.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from signaling.billing import RateSelection, RateSources, Tariff, charge, select_rate
from signaling.callproc.benefits import covering
from signaling.callproc.cluster import HOP_STOP_CODES
from signaling.callproc.limits import Counters
from signaling.callproc.quality import Quality
from signaling.callproc.routes import (
    RoutePlan,
    RouteSettings,
    first_period_and_price,
    gateway_codecs,
    plan_routes,
    route_cache,
)
from signaling.callproc.snapshot import Snapshot
from signaling.routing import (
    CALLED_NOT_ONLINE,
    IP_NOT_ALLOWED,
    NO_MATCHING_RATE,
    NOT_ALLOWED,
    UNKNOWN_GATEWAY,
    InboundCall,
    PhoneContact,
    Rejection,
    Route,
)
from signaling.sip.identity import IdentityPolicy
from signaling.store import Account, MappingGateway, Phone, RoutingGateway

ACCOUNT_LOCKED = "Account locked"
ACCOUNT_EXPIRED = "Account expired"
GATEWAY_LOCKED = "Gateway locked"
PHONE_LOCKED = "Phone locked"
INSUFFICIENT_BALANCE = "Insufficient balance"
RATE_TYPE_NOT_AUTHORIZED = "Rate type not authorized"
NUMBER_SECTION_LIMITED = "Number section limited"
CALLER_NOT_ALLOWED = "Caller not allowed"
INVALID_NUMBER = "Invalid number"
CONFIGURATION_ERROR = "Configuration error"
CALL_LIMIT = "Concurrent call limit"
CPS_LIMIT = "CPS limit"

#: A caller number pool with "Multiplexes" 0 (unlimited) in the store.
UNLIMITED_MULTIPLEX = 1_000_000


@dataclass(slots=True)
class Decision:
    call: InboundCall
    at: datetime
    ingress: MappingGateway | None = None
    account: Account | None = None
    rejection: Rejection | None = None
    needs_auth: bool = False
    #: The caller as the mapping gateway's "Caller" setting reads it.
    caller: str = ""
    caller_billing: str = ""
    callee_billing: str = ""
    rate: RateSelection | None = None
    #: What the first billing period of an answered call costs (the admission reservation,
    #: before package benefits): the rate of connected's, or the rate of response's if dearer.
    need: Decimal = Decimal(0)
    #: The account's package subscriptions covering the callee, in the order the call draws on
    #: them (signaling/callproc/benefits.py).
    packages: tuple[int, ...] = ()
    #: The customer price of a reference call (for the no-loss rule and the analysis).
    price: Fraction | None = None
    plan: RoutePlan | None = None
    routes: list[Route] = field(default_factory=list)
    #: The phone whose call this is (its ingress is the phone's own), and the phone it calls.
    phone: Phone | None = None
    callee_phone: Phone | None = None
    #: The route to another node of the database holding the called phone's registration
    #: (tried before the gateways, which are routed only when SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY
    #: is On); the router adds its proof (signaling/callproc/cluster.py).
    hop: Route | None = None

    @property
    def tariff(self) -> Tariff | None:
        choice = self.rate.choice if self.rate is not None else None
        return None if choice is None else choice.connected

    @property
    def response_tariff(self) -> Tariff | None:
        """The rate of response (None: the rate has none; answered calls pay the connected one)."""
        choice = self.rate.choice if self.rate is not None else None
        return None if choice is None else choice.response

    def refuse(self, status: int, reason: str, termination: str) -> Decision:
        self.rejection = Rejection(status, reason, termination)
        return self


def prepare(snap: Snapshot) -> None:
    """Make the snapshot's routing work that would otherwise fall on its first calls: its route
    cache and compiled planner, the planner's candidate sets and route settings (the node calls
    this in its loading thread)."""
    planner = route_cache(snap).planner
    if planner is not None:
        planner.warm(snap, _route_settings)


def find_ingress(snap: Snapshot, call: InboundCall) -> MappingGateway | None:
    """The mapping gateway of ``call``: by source IP and port, else source IP, else digest user.
    Of several gateways on one address, the one whose callee prefix matches longest (a gateway
    without prefixes matches with length 0; none matching: the first, refused later)."""
    host, port = call.source
    found = snap.by_ip_port.get((host, port)) or snap.by_ip.get(host)
    if found:
        if len(found) == 1:
            return found[0]
        return max(found, key=lambda gw: _prefix_match(call.callee, gw.prefixes))
    if call.auth_user is not None:
        return snap.by_user.get(call.auth_user)
    return None


def source_allowed(snap: Snapshot, account_id: int, ip: str) -> bool:
    """Whether a phone of account ``account_id`` may REGISTER or call from ``ip`` (the account's
    IP whitelist, behaviour 60; none = anywhere)."""
    whitelist = snap.ip_whitelists.get(account_id)
    return whitelist is None or whitelist.allows(ip)


def _prefix_match(number: str, prefixes: tuple[str, ...]) -> int:
    """Length of the longest of ``prefixes`` starting ``number``; 0 for none given; -1 no match."""
    if not prefixes:
        return 0
    return max((len(p) for p in prefixes if number.startswith(p)), default=-1)


def _starts(number: str, prefixes: tuple[str, ...]) -> bool:
    return any(number.startswith(p) for p in prefixes)


def _number_sections_allow(snap: Snapshot, account: Account, number: str) -> bool:
    """The account's and every agent's above it (sub-accounts inherit the limitation, §6.3)."""
    if account.number_section_mode == "none" and account.parent_id is None:
        return True  # (the common case, without walking)
    seen: set[int] = set()
    current: Account | None = account
    while current is not None and current.id not in seen:
        seen.add(current.id)
        if current.number_section_mode == "allow" and not _starts(number, current.number_sections):
            return False
        if current.number_section_mode == "block" and _starts(number, current.number_sections):
            return False
        current = snap.accounts.get(current.parent_id) if current.parent_id is not None else None
    return True


def _caller(call: InboundCall, ingress: MappingGateway, phone: Phone | None) -> str:
    """The caller as the mapping gateway's "Caller" setting reads it; a phone calls as its own
    number."""
    if phone is not None:
        return phone.number
    sources = {"rpid": call.caller_rpid, "display": call.caller_display}
    return sources.get(ingress.caller_source, "") or call.caller


def _rate_sources(
    snap: Snapshot, ingress: MappingGateway, account: Account, phone: Phone | None, at: datetime
) -> RateSources:
    """The billing hierarchy's sources for a call of ``ingress`` (docs/billing.md §2)."""
    group_id = ingress.rate_group_id if ingress.rate_group_id is not None else account.rate_group_id
    return RateSources(
        account=snap.rate_groups.get(group_id) if group_id is not None else None,
        account_private=(
            snap.rate_groups.get(account.private_rate_group_id)
            if account.private_rate_group_id is not None
            else None
        ),
        period_rate=snap.period_rate_for(account, at),
        phone_private=(
            snap.rate_groups.get(phone.private_rate_group_id)
            if phone is not None and phone.private_rate_group_id is not None
            else None
        ),
    )


def decide(  # noqa: PLR0911, PLR0912 (the reference's admission order, step by step)
    snap: Snapshot,
    call: InboundCall,
    *,
    at: datetime,
    now: float,
    day: int,
    counters: Counters,
    quality: Quality,
    vendor_funds: Callable[[int], Decimal | None],
    rng: random.Random | None = None,
    locate: Callable[[Phone], PhoneContact | None] | None = None,
) -> Decision:
    """The admission decision; ``locate`` finds where a phone of this node is registered (None:
    registrations are unknown here, as in the routing analysis: phones are not looked at)."""
    decision = Decision(call, at)
    ingress = find_ingress(snap, call)
    if ingress is None:
        if snap.by_user and call.auth_user is None:
            decision.needs_auth = True
            return decision
        return decision.refuse(403, "Forbidden", UNKNOWN_GATEWAY)
    decision.ingress = ingress
    decision.phone = snap.phone_of_ingress.get(ingress.id)
    account = snap.accounts.get(ingress.account_id)
    decision.account = account
    if ingress.locked:
        return decision.refuse(403, "Forbidden", GATEWAY_LOCKED if decision.phone is None else PHONE_LOCKED)
    if account is None:
        return decision.refuse(403, "Forbidden", CONFIGURATION_ERROR)
    if decision.phone is not None and not source_allowed(snap, account.id, call.source[0]):
        return decision.refuse(403, "Forbidden", IP_NOT_ALLOWED)
    if account.locked:
        return decision.refuse(403, "Forbidden", ACCOUNT_LOCKED)
    if account.expiry is not None and account.expiry <= at:
        return decision.refuse(403, "Forbidden", ACCOUNT_EXPIRED)
    full = counters.full(("in", ingress.id), now, ingress.max_calls, ingress.max_cps)
    if full is not None:
        return decision.refuse(503, "Service Unavailable", CALL_LIMIT if full == "max calls" else CPS_LIMIT)
    if counters.full(("account", account.id), now, account.max_calls, None) is not None:
        return decision.refuse(503, "Service Unavailable", CALL_LIMIT)
    caller = decision.caller = _caller(call, ingress, decision.phone)
    if ingress.caller_whitelist and not _starts(caller, ingress.caller_whitelist):
        return decision.refuse(403, "Forbidden", CALLER_NOT_ALLOWED)
    if ingress.caller_blacklist and _starts(caller, ingress.caller_blacklist):
        return decision.refuse(403, "Forbidden", CALLER_NOT_ALLOWED)
    if ingress.prefixes and not _starts(call.callee, ingress.prefixes):
        return decision.refuse(403, "Forbidden", NOT_ALLOWED)
    plans = snap.mapping_plans[ingress.id]
    if plans.error:
        return decision.refuse(503, "Service Unavailable", CONFIGURATION_ERROR)
    callee = plans.callee.rewrite(call.callee, rng)
    if not callee:
        return decision.refuse(484, "Address Incomplete", INVALID_NUMBER)
    decision.callee_billing = callee
    decision.caller_billing = plans.caller.rewrite(caller, rng)
    if not _number_sections_allow(snap, account, callee):
        return decision.refuse(403, "Forbidden", NUMBER_SECTION_LIMITED)
    rate_sources = _rate_sources(snap, ingress, account, decision.phone, at)
    planner = route_cache(snap).planner
    rating = select_rate if planner is None else planner.select_rate  # (the same selection)
    decision.rate = rating(callee, at, rate_sources, switches=snap.switches, policy=snap.policy)
    choice = decision.rate.choice
    if choice is None:
        return decision.refuse(404, "Not Found", NO_MATCHING_RATE)
    if choice.rate.call_type and choice.rate.call_type not in account.call_types:
        return decision.refuse(403, "Forbidden", RATE_TYPE_NOT_AUTHORIZED)
    decision.need, decision.price = first_period_and_price(snap, choice)
    if choice.response is not None:
        decision.need = max(decision.need, charge(choice.response, 1, policy=snap.policy).amount)
    decision.packages = covering(snap, account.id, callee, at)
    if locate is not None and _to_phone(snap, ingress, decision, locate):
        return decision
    if decision.hop is not None and not snap.parameters["SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY"]:
        return decision  # the node holding the registration, and nothing after it
    plan = plan_routes if planner is None else planner.plan  # (the same plan)
    decision.plan = plan(
        snap,
        ingress,
        callee,
        at=at,
        now=now,
        day=day,
        counters=counters,
        quality=quality,
        customer_price=decision.price,
        vendor_funds=vendor_funds,
    )
    termination = decision.plan.termination
    if termination is not None:
        if decision.hop is not None:  # the forwarded call stands alone
            decision.plan = None
            return decision
        return decision.refuse(503, "Service Unavailable", termination)
    decision.routes = _routes(snap, ingress, decision, decision.plan, rng)
    return decision


def _routes(
    snap: Snapshot, ingress: MappingGateway, decision: Decision, plan: RoutePlan, rng: random.Random | None
) -> list[Route]:
    """The routes toward the plan's gateways, in order: by the compiled planner (the same
    routes, signaling/callproc/_planner.pyx) or by :func:`_route`."""
    planner = route_cache(snap).planner
    if planner is not None:
        return planner.routes(
            snap,
            plan.ordered,
            ingress,
            decision.callee_billing,
            decision.caller_billing,
            rng,
            _route_settings,
        )
    return [_route(snap, ingress, c.gateway.id, decision, rng) for c in plan.ordered]


def _to_phone(
    snap: Snapshot,
    ingress: MappingGateway,
    decision: Decision,
    locate: Callable[[Phone], PhoneContact | None],
) -> bool:
    """A callee that is a phone: routed to where it is registered — on this node, or forwarded
    to the node of the database holding its registration (``decision.hop``, then the gateways
    only with SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY) — or refused as "The called not online"
    (unless SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY sends it to the gateways). True when that
    decided the call."""
    phone = snap.phones_by_number.get(decision.callee_billing)
    if phone is None:
        return False
    decision.callee_phone = phone
    contact = None if phone.locked else locate(phone)
    if contact is not None and contact.node:
        decision.hop = _hop_route(snap, ingress, phone, contact, decision)
        return False
    if contact is not None:
        decision.routes = [_phone_route(snap, ingress, phone, contact, decision)]
        return True
    if snap.parameters["SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY"]:
        return False
    decision.refuse(480, "Temporarily Unavailable", CALLED_NOT_ONLINE)
    return True


def _phone_route(
    snap: Snapshot, ingress: MappingGateway, phone: Phone, contact: PhoneContact, decision: Decision
) -> Route:
    """The route to a registered phone of this node: its contact, where its REGISTER came from."""
    return Route(
        gateway=f"phone:{phone.number}",
        host=contact.host,
        port=contact.port,
        transport=contact.transport.lower(),
        callee=phone.number,
        caller=decision.caller_billing,
        uri=contact.uri,
    )


def _hop_route(
    snap: Snapshot, ingress: MappingGateway, phone: Phone, contact: PhoneContact, decision: Decision
) -> Route:
    """The route to the node holding a phone's registration: its SIP address, the phone's
    number as the Request-URI's user; only "not reached" answers fail over (HOP_STOP_CODES)."""
    return Route(
        gateway=f"phone:{phone.number}@{contact.node}",
        host=contact.host,
        port=contact.port,
        transport=contact.transport.lower(),
        callee=phone.number,
        caller=decision.caller_billing,
        stop_switch_codes=HOP_STOP_CODES,
    )


def _route(
    snap: Snapshot, ingress: MappingGateway, gateway_id: int, decision: Decision, rng: random.Random | None
) -> Route:
    """The route toward one routing gateway: its number rewriting and its SIP settings."""
    gw = snap.routing[gateway_id]
    plans = snap.routing_plans[gateway_id]
    callee = gw.add_prefix + decision.callee_billing[gw.strip_digits :]
    callee = gw.tech_prefix + plans.callee.rewrite(callee, rng)
    caller = plans.caller.rewrite(decision.caller_billing, rng)
    settings = route_cache(snap).route_settings
    known = settings.get((gateway_id, ingress.media_proxy))
    if known is None:
        known = settings[(gateway_id, ingress.media_proxy)] = _route_settings(snap, ingress, gw)
    (
        (name, host, port, transport),
        (codes, proxy, dtmf, timer, user, password, identity, pool, uses, order),
    ) = known
    return Route(name, host, port, transport, callee, caller, codes, proxy, dtmf, timer, user, password,
                 identity, pool, uses, order, codecs=gateway_codecs(snap, gw),
                 source_ip=gw.source_ip)  # fmt: skip


def _route_settings(snap: Snapshot, ingress: MappingGateway, gw: RoutingGateway) -> RouteSettings:
    """A route's fields but the numbers (the same for every call of ``ingress`` to ``gw``)."""
    extra: str | tuple[str, ...] = "all" if gw.forward_all_headers else (gw.forward_headers or "none")
    return (gw.name, gw.host, gw.port, gw.transport), (
        frozenset(gw.stop_switch_codes),
        gw.media_proxy or "",  # the gateway's own (signaling/media/proxy_mode.py)
        gw.dtmf,
        gw.session_timer,
        gw.register_username or None,
        gw.register_password or None,
        IdentityPolicy(pai=gw.pai, privacy=gw.privacy, ppi=gw.ppi, extra_headers=extra),
        gw.caller_pool,
        gw.caller_pool_multiplex or UNLIMITED_MULTIPLEX,
        # the store's FORWARD_SIGNAL_REWRITE_SEQUENCE reaches the node's pool with the route
        int(snap.parameters["FORWARD_SIGNAL_REWRITE_SEQUENCE"]) if gw.caller_pool else None,
    )
