"""Recent CDRs (at most 1,000, newest first, with the reference's filters), one CDR, and the
revenue report (per day, as an SVG bar chart) with the top 10 customers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from signaling.api import cdrquery
from signaling.store import Account, Cdr, StoreError
from signaling.web import charts
from signaling.web.app import WebManager

#: Days the revenue report shows unless asked otherwise.
REPORT_DAYS = 14


def _when(text: str, field: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a date and time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _recent(web: WebManager, q: Mapping[str, str], accounts: frozenset[int] | None) -> list[Cdr]:
    """The Recent CDR query: the API's CDR query (signaling.api.cdrquery), newest first, at most
    1,000 rows, over the last SERVER_QUERY_CDR_MAX_DAY_INTERVAL days unless a range is given."""
    now = datetime.now(UTC)
    max_days, _ = cdrquery.limits(web.store)
    end = _when(q.get("end", ""), "end") or now + timedelta(seconds=1)
    start = _when(q.get("start", ""), "start") or end - timedelta(days=max_days)
    account_text = q.get("account", "").strip()
    result = q.get("result", "") or None
    if result is not None and result not in cdrquery.CALL_RESULTS:
        raise ValueError(f"result: {result!r} is not one of {', '.join(cdrquery.CALL_RESULTS)}")
    f = cdrquery.CdrFilter(
        start,
        end,
        account_id=int(account_text) if account_text.isdigit() else None,
        number=q.get("number", "").strip() or None,
        result=result,
    )
    return cdrquery.query(web.store, f, page_size=cdrquery.RECENT_LIMIT, accounts=accounts).cdrs


def register(router: APIRouter, web: WebManager) -> None:
    @router.get("/cdrs")
    async def cdrs(request: Request) -> Response:
        page = await web.page(request)
        q = request.query_params
        error = ""
        rows: list[Cdr] = []
        visible = await web.db(page.admin.list, Account)
        agent = page.user.role == "agent"
        try:
            rows = await web.db(_recent, web, q, frozenset(a.id for a in visible) if agent else None)
        except (StoreError, ValueError) as exc:
            error = str(exc)
        return web.render(
            request,
            "cdrs.html",
            page,
            rows=[(c, cdrquery.call_result(c)) for c in rows],
            codes={a.id: a.code for a in visible},
            results=cdrquery.CALL_RESULTS,
            query=dict(q),
            error=error,
            customers=[a for a in visible if a.kind == "customer"],
            limit=cdrquery.RECENT_LIMIT,
        )

    @router.get("/cdrs/{cdr_id}")
    async def cdr(request: Request, cdr_id: int) -> Response:
        page = await web.page(request)
        found = await web.db(page.reports.cdr, cdr_id)
        if found is None:
            return web.render(request, "error.html", page, status=404, message=f"No CDR {cdr_id}.")
        accounts = await web.db(page.admin.list, Account)
        customer = next((a for a in accounts if a.id == found.account_id), None)
        return web.render(
            request,
            "cdr.html",
            page,
            cdr=found,
            result=cdrquery.call_result(found),
            customer=customer.code if customer is not None else "",
        )

    @router.get("/reports")
    async def reports(request: Request) -> Response:
        page = await web.page(request)
        today = datetime.now(UTC).date()
        days_text = request.query_params.get("days", "")
        days = min(366, max(1, int(days_text))) if days_text.isdigit() else REPORT_DAYS
        first = today - timedelta(days=days - 1)
        by_day = await web.db(page.reports.revenue_by_day, first, today)
        top = await web.db(page.reports.top_customers, today, today)
        series: list[tuple[str, list[Decimal]]] = [("income", [d.totals.income for d in by_day])]
        if page.user.role != "agent":
            series.append(("cost", [d.totals.cost or Decimal(0) for d in by_day]))
        chart = charts.bar_chart(
            [_short(d.day) for d in by_day], series, title=f"Revenue per day, last {days} days"
        )
        return web.render(
            request, "reports.html", page, by_day=by_day[::-1], top=top, chart=chart, days=days, today=today
        )


def _short(day: date) -> str:
    return f"{day:%m-%d}"
