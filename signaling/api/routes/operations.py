"""CDR queries, live calls (list, hang up), gateway status, the routing analysis and the system
parameters."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from signaling import params
from signaling.api import cdrquery
from signaling.api.context import ApiContext
from signaling.api.deps import AdminUser, CurrentUser, StaffUser, context_of
from signaling.api.errors import ApiError
from signaling.api.models import output_model, to_output
from signaling.store import Cdr, NotFoundError
from signaling.store import parameters as parameters_table
from signaling.store.scope import subtree

router = APIRouter()

CdrOut = output_model(Cdr)


class CdrPageOut(BaseModel):
    page: int
    page_size: int
    more: bool
    cdrs: list[CdrOut]  # type: ignore[valid-type]


def _agent_accounts(ctx: ApiContext, account_id: int | None) -> set[int] | None:
    if account_id is None:
        return None
    with ctx.store.db.transaction(write=False) as tx:
        return subtree(tx, account_id)


@router.get("/cdrs", tags=["cdrs"])
def cdrs(
    *,
    request: Request,
    user: CurrentUser,
    start: AwareDatetime,
    end: AwareDatetime,
    account_id: int | None = None,
    mapping_gateway: str | None = None,
    routing_gateway: str | None = None,
    callee_prefix: str | None = Query(None, max_length=32),
    number: str | None = Query(None, max_length=32),
    termination_reason: str | None = None,
    answered: bool | None = None,
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int | None = Query(None, ge=1),
) -> CdrPageOut:
    """CDRs whose end time is in [start, end), newest first, a page at a time. At most
    ``SERVER_QUERY_CDR_MAX_DAY_INTERVAL`` days per query and ``SERVER_QUERY_ONE_PAGE_SIZE``
    records per page (422 beyond). Agents see their own accounts' CDRs."""
    ctx = context_of(request)
    found = cdrquery.query(
        ctx.store,
        cdrquery.CdrFilter(
            start, end, account_id, mapping_gateway, routing_gateway, callee_prefix, number,
            termination_reason, answered,
        ),
        page=page,
        page_size=page_size,
        accounts=_agent_accounts(ctx, ctx.users.scope_for(user).agent_id),
    )  # fmt: skip
    return CdrPageOut(
        page=found.page, page_size=found.page_size, more=found.more, cdrs=[to_output(c) for c in found.cdrs]
    )


@router.get("/cdrs/recent", tags=["cdrs"])
def recent_cdrs(
    request: Request,
    user: CurrentUser,
    limit: int = Query(cdrquery.RECENT_LIMIT, ge=1, le=cdrquery.RECENT_LIMIT),
    answered: bool | None = None,
    number: str | None = Query(None, max_length=32),
) -> CdrPageOut:
    """The newest CDRs (at most 1,000: the web manager's recent-CDR view), over the last
    ``SERVER_QUERY_CDR_MAX_DAY_INTERVAL`` days."""
    ctx = context_of(request)
    end = ctx.clock() + timedelta(seconds=1)
    max_days, _ = cdrquery.limits(ctx.store)
    found = cdrquery.query(
        ctx.store,
        cdrquery.CdrFilter(end - timedelta(days=max_days), end, number=number, answered=answered),
        page_size=limit,
        accounts=_agent_accounts(ctx, ctx.users.scope_for(user).agent_id),
    )
    return CdrPageOut(page=1, page_size=limit, more=found.more, cdrs=[to_output(c) for c in found.cdrs])


# -- live calls ----------------------------------------------------------------------------


class LiveCallOut(BaseModel):
    call_id: str
    ingress: str
    account_id: int | None
    caller: str
    callee: str
    source: str
    gateway: str
    attempts: int
    state: str
    start_time: datetime
    answer_time: datetime | None
    duration: float
    caller_dtmf: str = ""
    callee_dtmf: str = ""
    caller_codec: str = ""
    callee_codec: str = ""


def _live(ctx: ApiContext) -> Any:  # noqa: ANN401 (the LiveCalls protocol)
    if ctx.live is None:
        raise ApiError(503, "live calls need the running node; this API serves a store only")
    return ctx.live


@router.get("/calls", tags=["calls"])
async def live_calls(request: Request, user: CurrentUser) -> list[LiveCallOut]:
    """Calls in progress on this node (an agent: those of its accounts)."""
    ctx = context_of(request)
    calls = _live(ctx).calls()
    agent = ctx.users.scope_for(user).agent_id
    if agent is not None:
        mine = await run_in_threadpool(_agent_accounts, ctx, agent) or set()
        calls = [c for c in calls if c.account_id in mine]
    return [LiveCallOut.model_validate(c, from_attributes=True) for c in calls]


@router.delete("/calls/{call_id}", tags=["calls"], status_code=204)
async def hang_up(call_id: str, request: Request, user: CurrentUser) -> Response:
    """End a call in progress (BYE to both parties; CDR termination "Operator hangup")."""
    ctx = context_of(request)
    live = _live(ctx)
    agent = ctx.users.scope_for(user).agent_id
    if agent is not None:
        mine = await run_in_threadpool(_agent_accounts, ctx, agent) or set()
        if not any(c.call_id == call_id and c.account_id in mine for c in live.calls()):
            raise NotFoundError(f"no call {call_id!r} in progress")
    if not live.hangup(call_id):
        raise NotFoundError(f"no call {call_id!r} in progress")
    return Response(status_code=204)


# -- gateway status ------------------------------------------------------------------------


class GatewayStatus(BaseModel):
    id: int
    name: str
    kind: str  # "routing" or "mapping"
    locked: bool
    lines_in_use: int
    max_calls: int | None
    calls_per_second: int
    calls_today: int | None
    asr: float | None
    asr_attempts: int | None
    acd: float | None


@router.get("/gateways/status", tags=["gateways"])
async def gateway_status(request: Request, _user: StaffUser) -> list[GatewayStatus]:
    """Each gateway's lines in use and calls per second on this node, and each routing gateway's
    calls today and ASR/ACD from the router's windows (docs/routing.md)."""
    ctx = context_of(request)
    router_ = ctx.router
    if router_ is None:
        raise ApiError(503, "gateway status needs the running node with a store")
    now = time.monotonic()
    day = ctx.clock().date().toordinal()
    snap, counters, quality = router_.snapshot, router_.counters, router_.quality
    out: list[GatewayStatus] = []
    for gw in sorted(snap.routing.values(), key=lambda g: g.id):
        asr, attempts = quality.asr(gw.id, now)
        out.append(
            GatewayStatus(
                id=gw.id, name=gw.name, kind="routing", locked=gw.locked,
                lines_in_use=counters.active(("out", gw.id)), max_calls=gw.max_calls,
                calls_per_second=counters.rate(("out", gw.id), now),
                calls_today=counters.today(("out", gw.id), day),
                asr=asr, asr_attempts=attempts, acd=quality.acd(gw.id, now),
            )
        )  # fmt: skip
    for mgw in sorted(snap.mapping.values(), key=lambda g: g.id):
        out.append(
            GatewayStatus(
                id=mgw.id, name=mgw.name, kind="mapping", locked=mgw.locked,
                lines_in_use=counters.active(("in", mgw.id)), max_calls=mgw.max_calls,
                calls_per_second=counters.rate(("in", mgw.id), now),
                calls_today=None, asr=None, asr_attempts=None, acd=None,
            )
        )  # fmt: skip
    return out


# -- routing analysis ----------------------------------------------------------------------


@router.get("/routing-analysis", tags=["routing"])
async def routing_analysis(
    request: Request,
    _user: StaffUser,
    number: str = Query(min_length=1, max_length=64),
    ingress: str | None = Query(None, max_length=200),
    caller: str = Query("", max_length=64),
    at: AwareDatetime | None = None,
) -> dict[str, Any]:
    """Which routing gateways a call to ``number`` from mapping gateway ``ingress`` would try, in
    which order and why, which were skipped, and its rate (reference §D.9). On a running node it
    uses the live line counts and ASR/ACD; places no call."""
    from signaling.callproc.analysis import Analysis, analyse, as_json  # noqa: PLC0415
    from signaling.callproc.cluster import stored_registrations  # noqa: PLC0415
    from signaling.callproc.snapshot import load_snapshot  # noqa: PLC0415

    ctx = context_of(request)
    when = at or ctx.clock()
    if ctx.router is not None:
        r = ctx.router
        node_now = time.monotonic()
        result = analyse(
            r.snapshot, number, at=when, ingress=ingress, caller=caller, now=node_now,
            counters=r.counters, quality=r.quality,
            registered=lambda phone: r.registered(phone, node_now),
        )  # fmt: skip
    else:
        store = ctx.store

        def offline() -> Analysis:  # the store's view: where each node registered the phone
            return analyse(
                load_snapshot(store), number, at=when, ingress=ingress, caller=caller,
                registered=lambda phone: stored_registrations(
                    store, (phone.number, phone.sip_user or phone.number), datetime.now(UTC)
                ),
            )  # fmt: skip

        result = await run_in_threadpool(offline)
    data = json.loads(as_json(result))
    assert isinstance(data, dict)
    return data


# -- system parameters ---------------------------------------------------------------------


class ParameterOut(BaseModel):
    name: str
    #: The stored override (text), None when the default applies.
    stored: str | None
    default: Any
    doc: str
    #: When a stored change takes effect (signaling/params.py ``TAKES_EFFECT``): ``reload``
    #: (running nodes, at their next reload), ``restart`` (read at start only: each node's next
    #: start), ``immediate`` (its next use: the next request, the next retention pass) or
    #: ``never`` (accepted, changes nothing).
    takes_effect: params.Effect


class ParameterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str | int | bool


def _parameter(name: str, stored: dict[str, str]) -> ParameterOut:
    state = parameters_table.describe(name, stored)
    if state is None:
        raise NotFoundError(f"no system parameter {name!r}")
    return ParameterOut(
        name=name, stored=state.stored, default=state.default, doc=state.doc, takes_effect=state.takes_effect
    )


@router.get("/parameters", tags=["parameters"])
def parameters(request: Request, _admin: AdminUser) -> list[ParameterOut]:
    """Every SS_* and SERVER_* parameter: default, stored override, meaning."""
    stored = context_of(request).store.parameters()
    return [_parameter(n, stored) for n in parameters_table.names()]


@router.get("/parameters/{name}", tags=["parameters"])
def parameter(name: str, request: Request, _admin: AdminUser) -> ParameterOut:
    return _parameter(name, context_of(request).store.parameters())


@router.put("/parameters/{name}", tags=["parameters"])
def set_parameter(name: str, body: ParameterIn, request: Request, _admin: AdminUser) -> ParameterOut:
    """Store an override, checked like the configuration file's (422 naming the parameter when
    wrong); ``takes_effect`` says when: nodes apply most at their next reload, a ``restart`` one
    at their next start."""
    store = context_of(request).store
    _parameter(name, {})  # 404 for an unknown name
    store.set_parameter(name, body.value)
    return _parameter(name, store.parameters())


@router.delete("/parameters/{name}", tags=["parameters"])
def reset_parameter(name: str, request: Request, _admin: AdminUser) -> ParameterOut:
    """Drop the override: the default (or the node's file) applies again, when ``takes_effect``
    says (a ``restart`` parameter: at each node's next start)."""
    store = context_of(request).store
    _parameter(name, {})
    store.reset_parameter(name)
    return _parameter(name, store.parameters())
