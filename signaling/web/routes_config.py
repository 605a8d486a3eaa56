"""Customers (accounts, payments, credit, rate group, mapping gateways), vendors (vendor accounts
and routing gateways), rate groups and rates, and the Web Access Control list — every change
through the store's admin API under the user's scope."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from signaling import params
from signaling.api.context import ApiContext
from signaling.store import (
    Account,
    Admin,
    MappingGateway,
    NotFoundError,
    Rate,
    RateGroup,
    RoutingGateway,
    StoreError,
    ValidationError,
)
from signaling.store import parameters as parameters_table
from signaling.store.codec import EPOCH
from signaling.store.money import as_decimal
from signaling.web.access import AccessPolicy, parse_access_list
from signaling.web.app import Page, WebManager

MEDIA_PROXY = ("", "off", "on", "auto", "must-on")
#: The choices of a gateway's media settings, as the store names them (signaling/store/gateways.py).
CODEC_MODES = ("auto", "specified")
G729_MODES = ("auto", "g729", "g729a", "both")
DTMF_MODES = ("auto", "rfc2833", "info", "inband")
#: What the gateway pages' media fields choose from (templates/_gateway_media.html).
MEDIA_CHOICES: dict[str, Any] = {
    "media_proxy": MEDIA_PROXY,
    "codec_modes": CODEC_MODES,
    "g729_modes": G729_MODES,
    "dtmf_modes": DTMF_MODES,
}


# -- form parsing: every error names the field, as the store's own errors do -----------------------


def _text(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def _decimal(form: dict[str, str], name: str, default: str = "0") -> Decimal:
    return as_decimal(_text(form, name) or default, name)


def _int(form: dict[str, str], name: str, default: int | None = None) -> int | None:
    text = _text(form, name)
    if not text:
        return default
    if not text.lstrip("-").isdigit():
        raise ValidationError(name, f"{text!r} is not a whole number")
    return int(text)


def _kept_int(form: dict[str, str], name: str, current: int | None) -> int | None:
    """Editing: an optional whole number, kept as stored when the form does not carry the field
    (an older page, a script); submitted empty, it is cleared."""
    return _int(form, name) if name in form else current


def _required_int(form: dict[str, str], name: str, default: int) -> int:
    value = _int(form, name, default)
    return default if value is None else value


def _id(form: dict[str, str], name: str) -> int | None:
    """An optional record id from a select ("" = none)."""
    return _int(form, name)


def _list(form: dict[str, str], name: str) -> tuple[str, ...]:
    """Comma- or space-separated values."""
    return tuple(v for v in _text(form, name).replace(",", " ").split() if v)


def _media_fields(
    form: dict[str, str], current: MappingGateway | RoutingGateway | None = None
) -> dict[str, Any]:
    """A gateway's codec and DTMF settings from its form: the codec list (in order of
    preference), "auto" negotiation or "specified" by the softswitch, whether transcoding is
    allowed, the G.729 variant offered, the DTMF mode, RFC 2833 payload type and "Use peer
    RFC2833 ability". Editing (``current`` given), a form
    that does not carry the codec fields keeps the gateway's; the store checks the values."""
    fields: dict[str, Any] = {}
    if current is None or "codec_mode" in form:
        fields["codecs"] = _list(form, "codecs")
        fields["codec_mode"] = _text(form, "codec_mode") or "auto"
        fields["allow_transcoding"] = form.get("allow_transcoding") == "on"
        fields["g729_mode"] = _text(form, "g729_mode") or "auto"
    if current is None or "dtmf" in form:
        fields["dtmf"] = _text(form, "dtmf") or "auto"
        fields["rfc2833_payload"] = _int(form, "rfc2833_payload") or 101
        fields["use_peer_rfc2833"] = form.get("use_peer_rfc2833") == "on"
    return fields


def _time(form: dict[str, str], name: str) -> datetime | None:
    text = _text(form, name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(name, f"{text!r} is not a date and time (YYYY-MM-DD HH:MM)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- the work of each form (run in a worker thread) ----------------------------------------------


def _create_customer(admin: Admin, form: dict[str, str]) -> Account:
    account = admin.create(
        Account(
            code=_text(form, "code"),
            name=_text(form, "name"),
            kind="customer",
            billing="postpaid" if form.get("billing") == "postpaid" else "prepaid",
            balance=_decimal(form, "balance"),
            credit_limit=_decimal(form, "credit_limit"),
            rate_group_id=_id(form, "rate_group_id"),
            max_calls=_int(form, "max_calls"),
        )
    )
    address = _text(form, "gateway_ip")
    if address:
        try:
            admin.create(
                MappingGateway(
                    name=_text(form, "gateway_name") or account.code,
                    account_id=account.id,
                    auth_mode="ip",
                    addresses=(address,),
                    max_calls=_int(form, "max_calls"),
                )
            )
        except StoreError as exc:
            raise ValidationError("gateway_ip", f"the account {account.code} was created; {exc}") from None
    return account


def _edit_customer(admin: Admin, account_id: int, form: dict[str, str]) -> Account:
    current = admin.get(Account, account_id)
    return admin.update(
        replace(
            current,
            name=_text(form, "name"),
            rate_group_id=_id(form, "rate_group_id"),
            max_calls=_int(form, "max_calls"),
            ip_whitelist=_list(form, "ip_whitelist") if "ip_whitelist" in form else current.ip_whitelist,
            locked=form.get("locked") == "on",
        )
    )


def _create_mapping(admin: Admin, account_id: int, form: dict[str, str]) -> MappingGateway:
    mode = _text(form, "auth_mode") or "ip"
    password_mode = mode == "password"
    return admin.create(
        MappingGateway(
            name=_text(form, "name"),
            account_id=account_id,
            auth_mode=mode,  # type: ignore[arg-type]  # checked by the record
            addresses=_list(form, "addresses"),
            username=_text(form, "username") or None if password_mode else None,
            password=form.get("password", "") if password_mode else "",
            prefixes=_list(form, "prefixes"),
            rate_group_id=_id(form, "rate_group_id"),
            max_calls=_int(form, "max_calls"),
            max_cps=_int(form, "max_cps"),
            **_media_fields(form),
        )
    )


def _mapping_of(admin: Admin, account_id: int, gateway_id: int) -> MappingGateway:
    """The customer's mapping gateway ``gateway_id``; another customer's is not found here."""
    gateway = admin.get(MappingGateway, gateway_id)
    if gateway.account_id != account_id:
        raise NotFoundError(f"mapping gateway {gateway_id} is not customer {account_id}'s")
    return gateway


def _edit_mapping(admin: Admin, account_id: int, gateway_id: int, form: dict[str, str]) -> MappingGateway:
    """A mapping gateway's addresses, prefixes, rate group, limits, lock and media settings; its
    name, authentication mode and credentials stay (a new password is a new gateway's)."""
    current = _mapping_of(admin, account_id, gateway_id)
    return admin.update(
        replace(
            current,
            addresses=_list(form, "addresses") if "addresses" in form else current.addresses,
            prefixes=_list(form, "prefixes"),
            rate_group_id=_id(form, "rate_group_id"),
            max_calls=_kept_int(form, "max_calls", current.max_calls),
            max_cps=_kept_int(form, "max_cps", current.max_cps),
            locked=form.get("locked") == "on",
            **_media_fields(form, current),
        )
    )


def _source_ip(form: dict[str, str], context: ApiContext, current: str = "") -> str:
    """The form's local IP for a routing gateway (absent: ``current``), one of the node's
    local IPs when they are known (reference behaviour 80)."""
    source_ip = form["source_ip"].strip() if "source_ip" in form else current
    context.check_source_ip(source_ip)
    return source_ip


def _create_routing(admin: Admin, form: dict[str, str], context: ApiContext) -> RoutingGateway:
    proxy = _text(form, "media_proxy")
    return admin.create(
        RoutingGateway(
            name=_text(form, "name"),
            host=_text(form, "host"),
            port=_required_int(form, "port", 5060),
            transport=_text(form, "transport") or "udp",  # type: ignore[arg-type]
            source_ip=_source_ip(form, context),
            prefixes=_list(form, "prefixes"),
            priority=_required_int(form, "priority", 1),
            weight=_required_int(form, "weight", 100),
            account_id=_id(form, "account_id"),
            rate_group_id=_id(form, "rate_group_id"),
            media_proxy=proxy or None,  # type: ignore[arg-type]
            max_calls=_int(form, "max_calls"),
            max_cps=_int(form, "max_cps"),
            **_media_fields(form),
        )
    )


def _edit_routing(admin: Admin, gateway_id: int, form: dict[str, str], context: ApiContext) -> RoutingGateway:
    current = admin.get(RoutingGateway, gateway_id)
    proxy = _text(form, "media_proxy")
    return admin.update(
        replace(
            current,
            host=_text(form, "host") or current.host,
            port=_required_int(form, "port", current.port),
            source_ip=_source_ip(form, context, current.source_ip),
            prefixes=_list(form, "prefixes"),
            priority=_required_int(form, "priority", current.priority),
            weight=_required_int(form, "weight", current.weight),
            media_proxy=proxy or None,  # type: ignore[arg-type]
            max_calls=_kept_int(form, "max_calls", current.max_calls),
            max_cps=_kept_int(form, "max_cps", current.max_cps),
            locked=form.get("locked") == "on",
            **_media_fields(form, current),
        )
    )


def _create_rate(admin: Admin, group_id: int, form: dict[str, str]) -> Rate:
    return admin.create(
        Rate(
            rate_group_id=group_id,
            prefix=_text(form, "prefix"),
            destination=_text(form, "destination"),
            effective_time=_time(form, "effective_time") or EPOCH,
            first_time_rate=_decimal(form, "first_time_rate"),
            first_time_duration=_required_int(form, "first_time_duration", 60),
            billing_rate=_decimal(form, "billing_rate"),
            billing_cycle=_required_int(form, "billing_cycle", 60),
            connection_fee=_decimal(form, "connection_fee"),
        )
    )


def _rate_groups(admin: Admin) -> list[RateGroup]:
    return admin.list(RateGroup)


def _customers_data(admin: Admin) -> dict[str, Any]:
    accounts = [a for a in admin.list(Account) if a.kind == "customer"]
    gateways = admin.list(MappingGateway)
    by_account: dict[int, list[MappingGateway]] = {}
    for g in gateways:
        by_account.setdefault(g.account_id, []).append(g)
    return {"accounts": accounts, "gateways": by_account, "groups": {g.id: g for g in _rate_groups(admin)}}


def _customer_data(admin: Admin, account_id: int) -> dict[str, Any]:
    account = admin.get(Account, account_id)
    return {
        "account": account,
        "gateways": [g for g in admin.list(MappingGateway) if g.account_id == account_id],
        "groups": _rate_groups(admin),
        "payments": admin.payments(account_id=account_id)[-20:][::-1],
        "category": admin.category(account_id),
    }


def _vendors_data(admin: Admin) -> dict[str, Any]:
    return {
        "vendors": [a for a in admin.list(Account) if a.kind == "vendor"],
        "gateways": admin.list(RoutingGateway),
        "groups": _rate_groups(admin),
    }


def _rates_data(admin: Admin) -> dict[str, Any]:
    groups = _rate_groups(admin)
    usage = {g.id: admin.rate_group_usage(g.id) for g in groups} if admin.scope.is_admin else {}
    return {"groups": groups, "usage": usage}


def _set_access(web: WebManager, enabled: bool, text: str, source: str) -> None:
    networks = parse_access_list(text)
    if enabled and not AccessPolicy(True, networks).allows(source):
        raise ValidationError(
            "SERVER_WEB_ACCESS_LIST",
            f"your own address {source} is not in the list: enabling it would lock you out",
        )
    web.store.set_parameter("SERVER_WEB_ACCESS_LIST", ", ".join(str(n) for n in networks))
    web.store.set_parameter("SERVER_WEB_ACCESS_CONTROL", enabled)
    web.policy_changed()


#: Set on the Access page, which refuses a list that would lock the administrator out.
ACCESS_PARAMETERS = frozenset({"SERVER_WEB_ACCESS_CONTROL", "SERVER_WEB_ACCESS_LIST"})


def _parameters_data(web: WebManager, q: str) -> dict[str, Any]:
    """Every parameter whose name or meaning holds ``q`` (case ignored), with its state."""
    stored = web.store.parameters()
    needle = q.strip().lower()
    rows = [
        state
        for name in parameters_table.names()
        if (state := parameters_table.describe(name, stored)) is not None
        and (needle in name.lower() or needle in state.doc.lower())
    ]
    return {"rows": rows, "q": q, "stored_count": len(stored)}


def _known(name: str) -> parameters_table.ParameterState:
    state = parameters_table.describe(name, {})
    if state is None:
        raise ValidationError(name, "no such system parameter")
    if name in ACCESS_PARAMETERS:
        raise ValidationError(name, "set it on the Access page, which keeps you from locking yourself out")
    return state


def _set_parameter(web: WebManager, name: str, value: str) -> str:
    """Store ``name = value`` (the store checks it, naming the parameter); what to tell."""
    state = _known(name)
    web.store.set_parameter(name, value)
    return f"{name} set to {value!r}: {params.EFFECT_NOTE[state.takes_effect]}."


def _reset_parameter(web: WebManager, name: str) -> str:
    state = _known(name)
    web.store.reset_parameter(name)
    return f"{name} reset to its default ({state.default!r}): {params.EFFECT_NOTE[state.takes_effect]}."


def register(router: APIRouter, web: WebManager) -> None:  # noqa: PLR0915 (one route after another)
    async def act(page: Page, where: str, work: Callable[[], object], ok: Callable[[Any], str]) -> Response:
        """Run a change; report it (or the store's refusal, field named) on the page again."""
        try:
            result = await web.db(work)
        except (StoreError, ValueError) as exc:
            web.flash(page, "error", str(exc))
        else:
            web.flash(page, "ok", ok(result))
        return web.back(where)

    async def submit(
        request: Request, where: str, work: Callable[[Page, dict[str, str]], object], ok: Callable[[Any], str]
    ) -> Response:
        """A form's POST: the signed-in page and its form, then ``work(page, form)`` through
        :func:`act`, back to ``where``."""
        page = await web.page(request)
        form = await web.form(request, page)
        return await act(page, where, lambda: work(page, form), ok)

    def forbidden(request: Request, page: Page, what: str) -> Response:
        return web.render(
            request, "error.html", page, status=403, message=f"{what} is for the administrator."
        )

    # -- customers -------------------------------------------------------------------------------

    @router.get("/customers")
    async def customers(request: Request) -> Response:
        page = await web.page(request)
        data = await web.db(_customers_data, page.admin)
        return web.render(request, "customers.html", page, **data)

    @router.post("/customers")
    async def create_customer(request: Request) -> Response:
        return await submit(
            request,
            "/customers",
            lambda page, form: _create_customer(page.admin, form),
            lambda a: f"Customer {a.code} created (balance {a.balance:.2f}, credit {a.credit_limit:.2f}).",
        )

    @router.get("/customers/{account_id}")
    async def customer(request: Request, account_id: int) -> Response:
        page = await web.page(request)
        try:
            data = await web.db(_customer_data, page.admin, account_id)
        except NotFoundError:
            return web.render(request, "error.html", page, status=404, message=f"No customer {account_id}.")
        return web.render(request, "customer.html", page, **MEDIA_CHOICES, **data)

    @router.post("/customers/{account_id}/payment")
    async def pay(request: Request, account_id: int) -> Response:
        return await submit(
            request,
            f"/customers/{account_id}",
            lambda page, form: page.admin.pay(
                account_id, _decimal(form, "amount", ""), memo=_text(form, "memo")
            ),
            lambda p: f"Payment of {p.amount:.2f} recorded; balance now {p.balance_after:.2f}.",
        )

    @router.post("/customers/{account_id}/credit")
    async def credit(request: Request, account_id: int) -> Response:
        return await submit(
            request,
            f"/customers/{account_id}",
            lambda page, form: page.admin.set_credit(
                account_id, _decimal(form, "credit_limit", ""), memo=_text(form, "memo")
            ),
            lambda p: f"Overdraft limit now {p.credit_after:.2f}.",
        )

    @router.post("/customers/{account_id}/edit")
    async def edit_customer(request: Request, account_id: int) -> Response:
        return await submit(
            request,
            f"/customers/{account_id}",
            lambda page, form: _edit_customer(page.admin, account_id, form),
            lambda a: f"Customer {a.code} saved.",
        )

    @router.post("/customers/{account_id}/mapping")
    async def create_mapping(request: Request, account_id: int) -> Response:
        return await submit(
            request,
            f"/customers/{account_id}",
            lambda page, form: _create_mapping(page.admin, account_id, form),
            lambda g: f"Mapping gateway {g.name} created.",
        )

    @router.get("/customers/{account_id}/mapping/{gateway_id}")
    async def mapping(request: Request, account_id: int, gateway_id: int) -> Response:
        page = await web.page(request)
        try:
            gateway = await web.db(_mapping_of, page.admin, account_id, gateway_id)
            groups = await web.db(_rate_groups, page.admin)
        except NotFoundError:
            return web.render(request, "error.html", page, status=404, message=f"No gateway {gateway_id}.")
        return web.render(
            request,
            "mapping_gateway.html",
            page,
            gateway=gateway,
            account_id=account_id,
            groups=groups,
            **MEDIA_CHOICES,
        )

    @router.post("/customers/{account_id}/mapping/{gateway_id}")
    async def edit_mapping(request: Request, account_id: int, gateway_id: int) -> Response:
        return await submit(
            request,
            f"/customers/{account_id}/mapping/{gateway_id}",
            lambda page, form: _edit_mapping(page.admin, account_id, gateway_id, form),
            lambda g: f"Mapping gateway {g.name} saved.",
        )

    # -- vendors ---------------------------------------------------------------------------------

    @router.get("/vendors")
    async def vendors(request: Request) -> Response:
        page = await web.page(request)
        if page.user.role == "agent":
            return forbidden(request, page, "Vendor management")
        data = await web.db(_vendors_data, page.admin)
        return web.render(request, "vendors.html", page, local_ips=local_ips(), **MEDIA_CHOICES, **data)

    def local_ips() -> list[str] | None:
        """The choices of a routing gateway's local IP: the node's, when known here."""
        known = web.context.local_ips
        return None if known is None else sorted(known)

    @router.post("/vendors")
    async def create_vendor(request: Request) -> Response:
        return await submit(
            request,
            "/vendors",
            lambda page, form: page.admin.create(
                Account(code=_text(form, "code"), name=_text(form, "name"), kind="vendor", billing="postpaid")
            ),
            lambda a: f"Vendor account {a.code} created.",
        )

    @router.post("/vendors/gateways")
    async def create_routing(request: Request) -> Response:
        return await submit(
            request,
            "/vendors",
            lambda page, form: _create_routing(page.admin, form, web.context),
            lambda g: f"Routing gateway {g.name} created; it is used for new calls at once.",
        )

    @router.get("/vendors/gateways/{gateway_id}")
    async def routing(request: Request, gateway_id: int) -> Response:
        page = await web.page(request)
        if page.user.role == "agent":
            return forbidden(request, page, "Vendor management")
        try:
            gateway = await web.db(page.admin.get, RoutingGateway, gateway_id)
        except NotFoundError:
            return web.render(request, "error.html", page, status=404, message=f"No gateway {gateway_id}.")
        return web.render(
            request, "routing_gateway.html", page, gateway=gateway, local_ips=local_ips(), **MEDIA_CHOICES
        )

    @router.post("/vendors/gateways/{gateway_id}")
    async def edit_routing(request: Request, gateway_id: int) -> Response:
        return await submit(
            request,
            f"/vendors/gateways/{gateway_id}",
            lambda page, form: _edit_routing(page.admin, gateway_id, form, web.context),
            lambda g: f"Routing gateway {g.name} saved.",
        )

    # -- rates -----------------------------------------------------------------------------------

    @router.get("/rates")
    async def rates(request: Request) -> Response:
        page = await web.page(request)
        data = await web.db(_rates_data, page.admin)
        return web.render(request, "rates.html", page, **data)

    @router.post("/rates")
    async def create_group(request: Request) -> Response:
        return await submit(
            request,
            "/rates",
            lambda page, form: page.admin.create(RateGroup(_text(form, "name"), memo=_text(form, "memo"))),
            lambda g: f"Rate group {g.name} created.",
        )

    @router.get("/rates/{group_id}")
    async def group(request: Request, group_id: int) -> Response:
        page = await web.page(request)
        try:
            found = await web.db(page.admin.get, RateGroup, group_id)
            entries = await web.db(page.admin.rates, group_id)
        except NotFoundError:
            return web.render(request, "error.html", page, status=404, message=f"No rate group {group_id}.")
        return web.render(request, "rate_group.html", page, group=found, rates=entries)

    @router.post("/rates/{group_id}")
    async def create_rate(request: Request, group_id: int) -> Response:
        return await submit(
            request,
            f"/rates/{group_id}",
            lambda page, form: _create_rate(page.admin, group_id, form),
            lambda r: f"Rate for prefix {r.prefix} created.",
        )

    # -- system parameters -----------------------------------------------------------------------

    @router.get("/parameters")
    async def parameters_page(request: Request, q: str = "") -> Response:
        page = await web.page(request)
        if not page.user.is_admin:
            return forbidden(request, page, "System parameters")
        data = await web.db(lambda: _parameters_data(web, q))
        return web.render(
            request,
            "parameters.html",
            page,
            marks=params.EFFECT_MARK,
            access_names=ACCESS_PARAMETERS,
            **data,
        )

    async def change_parameter(request: Request, work: Callable[[dict[str, str]], str]) -> Response:
        page = await web.page(request)
        form = await web.form(request, page)
        if not page.user.is_admin:
            return forbidden(request, page, "System parameters")
        q = form.get("q", "")
        where = f"/parameters?q={quote(q)}" if q else "/parameters"
        return await act(page, where, lambda: work(form), str)

    @router.post("/parameters/{name}/set")
    async def set_parameter(request: Request, name: str) -> Response:
        return await change_parameter(request, lambda form: _set_parameter(web, name, form.get("value", "")))

    @router.post("/parameters/{name}/reset")
    async def reset_parameter(request: Request, name: str) -> Response:
        return await change_parameter(request, lambda _form: _reset_parameter(web, name))

    # -- Web Access Control ----------------------------------------------------------------------

    @router.get("/access")
    async def access(request: Request) -> Response:
        page = await web.page(request)
        if not page.user.is_admin:
            return forbidden(request, page, "Web Access Control")
        policy = await web.db(web.access_policy)
        source = request.client.host if request.client else ""
        return web.render(request, "access.html", page, policy=policy, source=source)

    @router.post("/access")
    async def set_access(request: Request) -> Response:
        page = await web.page(request)
        form = await web.form(request, page)
        if not page.user.is_admin:
            return forbidden(request, page, "Web Access Control")
        source = request.client.host if request.client else ""
        enabled = form.get("enabled") == "on"
        return await act(
            page,
            "/access",
            lambda: _set_access(web, enabled, form.get("networks", ""), source),
            lambda _: (
                "Web Access Control " + ("enabled" if enabled else "disabled") + "; the list is applied."
            ),
        )
