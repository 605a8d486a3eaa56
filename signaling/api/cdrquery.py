"""CDR queries with the reference's filters and limits.

Filters: a time range (on the end time, which also picks the day partitions), the account, the
mapping and routing gateways, a callee prefix, a number found in caller or callee, the
termination reason, answered-or-not and the web manager's call result (answered, busy, no
answer, failed: :func:`call_result`). Limits (timers-trace-routing-dialplan behaviour 71): a
query spans at most ``SERVER_QUERY_CDR_MAX_DAY_INTERVAL`` days (default 31; more is refused) and a
page holds at most ``SERVER_QUERY_ONE_PAGE_SIZE`` records (default 10,000). The web manager's
"recent CDRs" are the newest 1,000 at most (web manager §7.6, behaviour 61). Newest first.
An agent sees the CDRs of its own accounts only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from signaling.store import Cdr, Store, ValidationError
from signaling.store import table as table_
from signaling.store.codec import Kind, encode
from signaling.store.record import DIGITS_EXTRA

#: The web manager's recent-CDR view shows at most this many (reference §7.6).
RECENT_LIMIT = 1000

CallResult = Literal["answered", "busy", "no_answer", "failed"]
CALL_RESULTS: tuple[CallResult, ...] = ("answered", "busy", "no_answer", "failed")
#: Final codes of unanswered calls counted as "busy" and as "no answer" (web manager §7.6
#: filters); any other unanswered call "failed".
BUSY_CODES = (486, 600)
NO_ANSWER_CODES = (408, 480, 487)


def call_result(cdr: Cdr) -> CallResult:
    """The CDR's call result as the web manager's filter names it."""
    if cdr.answer_time is not None:
        return "answered"
    if cdr.sip_code in BUSY_CODES:
        return "busy"
    if cdr.sip_code in NO_ANSWER_CODES:
        return "no_answer"
    return "failed"


def _codes(codes: tuple[int, ...]) -> str:
    return ", ".join(str(int(c)) for c in codes)


_RESULT_SQL: dict[str, str] = {
    "answered": "answer_time IS NOT NULL",
    "busy": f"answer_time IS NULL AND sip_code IN ({_codes(BUSY_CODES)})",
    "no_answer": f"answer_time IS NULL AND sip_code IN ({_codes(NO_ANSWER_CODES)})",
    "failed": f"answer_time IS NULL AND sip_code NOT IN ({_codes(BUSY_CODES + NO_ANSWER_CODES)})",
}


@dataclass(frozen=True, slots=True)
class CdrFilter:
    start: datetime
    end: datetime
    account_id: int | None = None
    mapping_gateway: str | None = None
    routing_gateway: str | None = None
    callee_prefix: str | None = None
    #: Digits found anywhere in the caller or the callee (the web manager's quick search).
    number: str | None = None
    termination_reason: str | None = None
    answered: bool | None = None
    result: CallResult | None = None

    def __post_init__(self) -> None:
        if self.result is not None and self.result not in CALL_RESULTS:
            raise ValidationError("result", f"{self.result!r} is not one of {', '.join(CALL_RESULTS)}")


@dataclass(frozen=True, slots=True)
class CdrPage:
    cdrs: list[Cdr]
    page: int
    page_size: int
    #: Whether a next page exists.
    more: bool


def limits(store: Store) -> tuple[int, int]:
    """(max days per query, max records per page) from the SERVER_* parameters."""
    days = store.server_parameter("SERVER_QUERY_CDR_MAX_DAY_INTERVAL")
    size = store.server_parameter("SERVER_QUERY_ONE_PAGE_SIZE")
    assert isinstance(days, int) and isinstance(size, int)
    return days, size


def _digits(field: str, value: str) -> str:
    if not value or any(not (c.isdigit() or c in DIGITS_EXTRA) for c in value):
        raise ValidationError(field, f"{value!r} is not a number (digits, *, #, +)")
    return value


def query(
    store: Store,
    f: CdrFilter,
    *,
    page: int = 1,
    page_size: int | None = None,
    accounts: Collection[int] | None = None,
) -> CdrPage:
    """One page of the CDRs matching ``f`` (``accounts``: an agent's accounts, None = all)."""
    max_days, max_page = limits(store)
    if f.end <= f.start:
        raise ValidationError("end", "must be after start")
    span = (f.end - f.start).total_seconds() / 86400
    if span > max_days:
        raise ValidationError(
            "end", f"a CDR query spans at most {max_days} days (SERVER_QUERY_CDR_MAX_DAY_INTERVAL)"
        )
    size = max_page if page_size is None else page_size
    if not 1 <= size <= max_page:
        raise ValidationError("page_size", f"must be in 1..{max_page} (SERVER_QUERY_ONE_PAGE_SIZE)")
    if page < 1:
        raise ValidationError("page", "must be at least 1")
    with store.db.transaction(write=False) as tx:
        d = tx.dialect
        clauses = ["day >= ?", "day <= ?", "end_time >= ?", "end_time < ?"]
        params: list[Any] = [
            encode(d, Kind.DAY, f.start.date()),
            encode(d, Kind.DAY, (f.end - timedelta(microseconds=1)).date()),
            encode(d, Kind.TIME, f.start),
            encode(d, Kind.TIME, f.end),
        ]
        if accounts is not None:
            if not accounts:
                return CdrPage([], page, size, False)
            clauses.append(f"account_id IN ({', '.join('?' for _ in accounts)})")
            params.extend(sorted(accounts))
        for column, value in (
            ("account_id", f.account_id),
            ("mapping_gateway", f.mapping_gateway),
            ("routing_gateway", f.routing_gateway),
            ("termination_reason", f.termination_reason),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if f.callee_prefix is not None:
            clauses.append("substr(callee, 1, ?) = ?")
            params.extend([len(f.callee_prefix), _digits("callee_prefix", f.callee_prefix)])
        if f.number is not None:
            pattern = f"%{_digits('number', f.number)}%"
            clauses.append("(caller LIKE ? OR callee LIKE ?)")
            params.extend([pattern, pattern])
        if f.answered is not None:
            clauses.append("answer_time IS NOT NULL" if f.answered else "answer_time IS NULL")
        if f.result is not None:
            clauses.append(_RESULT_SQL[f.result])
        where = " AND ".join(clauses)
        # One more than a page tells whether a next page exists without counting them all.
        # (table.select has no OFFSET: the two whole numbers ride on the ORDER BY clause.)
        order = f"end_time DESC, id DESC LIMIT {int(size) + 1} OFFSET {(int(page) - 1) * int(size)}"
        rows = table_.select(tx, Cdr, where, params, order=order)
    return CdrPage(rows[:size], page, size, len(rows) > size)
