"""Dashboard (with its Server-Sent Events feed), performance, alarms, live calls and the
per-call debug trace."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from signaling.api.auth import InvalidSession
from signaling.api.context import LiveCall
from signaling.store import Account, MappingGateway, RoutingGateway
from signaling.store.reports import Totals
from signaling.web import charts
from signaling.web.app import Page, WebManager, money, pct, pdd, seconds
from signaling.web.sysstats import SystemStats, band, read_system

#: Seconds between two events of the live feed; the feed re-reads today's money and ASR/ACD/PDD
#: every MONEY_EVERY events and re-checks the session every SESSION_EVERY events.
EVENT_SECONDS = 1.0
MONEY_EVERY = 5
SESSION_EVERY = 30
#: One feed connection lasts at most this long; the browser's EventSource reconnects by itself.
FEED_SECONDS = 3600.0
#: Samples in the dashboard's concurrency sparkline (one a second).
SPARK_SAMPLES = 120


@dataclass(frozen=True, slots=True)
class StoreFigures:
    today: Totals
    mapping_names: frozenset[str]
    routing_total: int
    #: Names of the enabled (not locked) routing gateways.
    routing_enabled: frozenset[str]
    #: The accounts an agent may see (None: everything).
    accounts: frozenset[int] | None
    #: Today's Consumption: what the customers were charged today (docs/web.md "Dashboard").
    consumption: Decimal = Decimal(0)


def _is_agent(page: Page) -> bool:
    return page.user.role == "agent"


def _store_figures(page: Page) -> StoreFigures:
    day = datetime.now(UTC).date()
    today = page.reports.totals(day, day)
    mapping = frozenset(g.name for g in page.admin.list(MappingGateway))
    routing_total = 0
    routing_enabled: frozenset[str] = frozenset()
    accounts = None
    if _is_agent(page):
        accounts = frozenset(a.id for a in page.admin.list(Account))
    else:
        gateways = page.admin.list(RoutingGateway)
        routing_total = len(gateways)
        routing_enabled = frozenset(g.name for g in gateways if not g.locked)
    return StoreFigures(
        today, mapping, routing_total, routing_enabled, accounts, _consumption(page, day, today)
    )


def _consumption(page: Page, day: date, today: Totals) -> Decimal:
    """Today's Consumption (web manager §4.2): the customers' spending of the UTC day — the
    call fees of its CDRs (Today's income) plus the rent and monthly-minimum charges booked
    that day (payment records, whose amounts are negative)."""
    start = datetime.combine(day, day_time(), UTC)
    end = start + timedelta(days=1)
    charges = sum(
        (
            -p.amount
            for kind in ("rent", "monthly_min")
            for p in page.admin.payments(kind=kind, start=start, end=end)
        ),
        Decimal(0),
    )
    return today.income + charges


def _agent_accounts(page: Page) -> frozenset[int] | None:
    return frozenset(a.id for a in page.admin.list(Account)) if _is_agent(page) else None


def _visible_calls(web: WebManager, accounts: frozenset[int] | None) -> list[LiveCall]:
    """The node's calls the user may see (an agent: those of its accounts)."""
    live = web.context.live
    if live is None:
        return []
    calls = live.calls()
    if accounts is not None:
        calls = [c for c in calls if c.account_id in accounts]
    return calls


def _today_fields(t: Totals, consumption: Decimal) -> dict[str, str | None]:
    """Today's money (exact: web.app.money) and ASR/ACD/PDD, as the dashboard's tiles show them."""
    profit = t.profit
    return {
        "income": money(t.income),
        "consumption": money(consumption),
        "cost": None if t.cost is None else money(t.cost),
        "profit": None if profit is None else money(profit),
        "asr": pct(t.asr),
        "today_answered": str(t.answered),
        "today_attempts": str(t.attempts),
        "acd": seconds(t.acd),
        "pdd": pdd(t.pdd),
    }


def _live_fields(
    web: WebManager, page: Page, figures: StoreFigures, system: SystemStats | None
) -> dict[str, Any]:
    calls = _visible_calls(web, figures.accounts)
    now = time.time()
    recent = web.history.last(SPARK_SAMPLES, now)
    out: dict[str, Any] = {
        "concurrency": len(calls),
        "answered": sum(1 for c in calls if c.state == "answered"),
        "online_mapping": len({c.ingress for c in calls} & figures.mapping_names),
        "at": now,
    }
    if not _is_agent(page):
        out["cps"] = recent[-1].cps if recent else 0.0
        out["online_phones"] = web.node.online_phones()
        out["spark"] = [s.concurrency for s in recent]
    if system is not None:
        out.update(cpu=system.cpu_percent, ram=system.ram_percent, disk=system.disk_percent)
        for n in system.network:
            out[f"net_{n.interface}_in"] = n.rx_mbps
            out[f"net_{n.interface}_out"] = n.tx_mbps
            out[f"net_{n.interface}_pct"] = n.percent
    return out


def _session_alive(web: WebManager, token: str) -> bool:
    try:
        web.users.resolve(token)
    except InvalidSession:
        return False
    return True


def register(router: APIRouter, web: WebManager) -> None:  # noqa: PLR0915 (one route after another)
    @router.get("")
    @router.get("/")
    async def dashboard(request: Request) -> Response:
        page = await web.page(request)
        web.sampler.start()
        figures = await web.db(_store_figures, page)
        system = None if _is_agent(page) else read_system(web.cpu, web.disk_path, web.network)
        live = _live_fields(web, page, figures, system)
        alarms = [] if _is_agent(page) else list(web.alarms.current())
        down = {a.subject for a in alarms if a.kind == "gateway_down"}
        t = figures.today
        return web.render(
            request,
            "dashboard.html",
            page,
            live=live,
            today=t,
            figures=figures,
            system=system,
            bands={k: band(k, live.get(k)) for k in ("cpu", "ram", "disk")},
            spark=charts.sparkline_points(live.get("spark", [])),
            alarms=alarms[:5],
            routing_online=len(figures.routing_enabled - down),
        )

    @router.get("/events")
    async def events(request: Request) -> Response:
        page = await web.page(request)
        web.sampler.start()

        async def feed() -> AsyncIterator[str]:
            yield "retry: 3000\n\n"
            started = time.monotonic()
            figures = await web.db(_store_figures, page)
            tick = 0
            while time.monotonic() - started < FEED_SECONDS and not web.stopping:
                if tick and tick % SESSION_EVERY == 0 and not await web.db(_session_alive, web, page.token):
                    yield "event: expired\ndata: {}\n\n"
                    return
                if tick and tick % MONEY_EVERY == 0:
                    figures = await web.db(_store_figures, page)
                system = None if _is_agent(page) else read_system(web.cpu, web.disk_path, web.network)
                data = _live_fields(web, page, figures, system)
                data.update(_today_fields(figures.today, figures.consumption))
                yield f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
                tick += 1
                await asyncio.sleep(EVENT_SECONDS)
                if await request.is_disconnected():
                    return

        return StreamingResponse(
            feed(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/performance")
    async def performance(request: Request) -> Response:
        page = await web.page(request)
        web.sampler.start()
        now = time.time()
        buckets = web.history.buckets(3600, 60, now)
        labels = ("-60 min", "now")
        day = datetime.now(UTC).date()
        today = await web.db(page.reports.totals, day, day)
        system = None if _is_agent(page) else read_system(web.cpu, web.disk_path, web.network)
        return web.render(
            request,
            "performance.html",
            page,
            today=today,
            system=system,
            bands={
                "cpu": band("cpu", system.cpu_percent if system else None),
                "ram": band("ram", system.ram_percent if system else None),
                "disk": band("disk", system.disk_percent if system else None),
            },
            concurrency_chart=charts.line_chart(
                [b.concurrency for b in buckets], title="Concurrent calls (peak per minute)", x_labels=labels
            ),
            cps_chart=charts.line_chart(
                [b.cps for b in buckets], title="Calls per second (mean per minute)", x_labels=labels
            ),
            cpu_chart=(
                None
                if _is_agent(page)
                else charts.line_chart(
                    [b.cpu for b in buckets], title="CPU %", x_labels=labels, unit_max=100.0
                )
            ),
        )

    @router.get("/alarms")
    async def alarms(request: Request) -> Response:
        page = await web.page(request)
        if _is_agent(page):
            message = "The alarm monitor is for operators."
            return web.render(request, "error.html", page, status=403, message=message)
        return web.render(
            request,
            "alarms.html",
            page,
            current=list(web.alarms.current()),
            history=list(web.alarms.history(200)),
        )

    @router.get("/calls")
    async def calls(request: Request) -> Response:
        page = await web.page(request)
        accounts = await web.db(_agent_accounts, page)
        visible = await web.db(page.admin.list, Account)
        return web.render(
            request,
            "calls.html",
            page,
            calls=_visible_calls(web, accounts),
            codes={a.id: a.code for a in visible},
            node=web.context.live is not None,
        )

    @router.post("/calls/hangup")
    async def hangup(request: Request) -> Response:
        page = await web.page(request)
        form = await web.form(request, page)
        call_id = form.get("call_id", "")
        accounts = await web.db(_agent_accounts, page)
        visible = {c.call_id for c in _visible_calls(web, accounts)}
        live = web.context.live
        if call_id in visible and live is not None and live.hangup(call_id):
            web.flash(page, "ok", f"Call {call_id} is being hung up.")
        else:
            web.flash(page, "error", f"No call {call_id} is up.")
        return web.back("/calls")

    @router.get("/trace/{call_id}")
    async def trace(request: Request, call_id: str) -> Response:
        page = await web.page(request)
        if _is_agent(page):
            return web.render(
                request, "error.html", page, status=403, message="The debug trace is for operators."
            )
        records = web.node.trace(call_id)
        return web.render(request, "trace.html", page, call_id=call_id, records=records)

    @router.get("/trace/{call_id}/pcap")
    async def trace_pcap(request: Request, call_id: str) -> Response:
        page = await web.page(request)
        if _is_agent(page):
            return Response("forbidden\n", status_code=403)
        data = web.node.trace_pcap(call_id)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in call_id)[:60]
        return Response(
            data,
            media_type="application/vnd.tcpdump.pcap",
            headers={"Content-Disposition": f'attachment; filename="call-{safe}.pcap"'},
        )
