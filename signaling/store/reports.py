"""Reports over the CDRs for the web manager and the API: the totals of a period (income,
cost, profit, ASR/ACD/PDD), revenue per day and the top customers (the CDR listing itself is
signaling.api.cdrquery's).

Everything is computed in SQL over exact money columns (SQLite integer units, PostgreSQL
NUMERIC) and returned as ``Decimal``. Under an agent's :class:`~signaling.store.scope.Scope` only
the CDRs of the agent's subtree count, and vendor costs are left out (``None``): they are the
operator's business, not the agent's. Days are UTC days, as a CDR's ``day`` is (docs/storage.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from signaling.store import codec, table
from signaling.store.cdr import Cdr
from signaling.store.codec import Kind
from signaling.store.db import Database, Tx
from signaling.store.errors import ValidationError
from signaling.store.scope import SUBTREE_SQL, Scope

#: How many customers the top list names (T73).
TOP_CUSTOMERS = 10


@dataclass(frozen=True, slots=True)
class Totals:
    """A period's figures. ``cost`` and ``profit`` are None under an agent's scope."""

    attempts: int
    answered: int
    income: Decimal
    cost: Decimal | None
    #: Answered talk time, milliseconds.
    hold_ms: int
    #: Sum and count of the calls that have a PDD.
    pdd_ms_total: int
    pdd_calls: int

    @property
    def profit(self) -> Decimal | None:
        return None if self.cost is None else self.income - self.cost

    @property
    def asr(self) -> float | None:
        """Answered / attempts, percent (None without attempts)."""
        return 100.0 * self.answered / self.attempts if self.attempts else None

    @property
    def acd(self) -> float | None:
        """Average talk time of the answered calls, seconds."""
        return self.hold_ms / 1000.0 / self.answered if self.answered else None

    @property
    def pdd(self) -> float | None:
        """Average post-dial delay, seconds."""
        return self.pdd_ms_total / 1000.0 / self.pdd_calls if self.pdd_calls else None

    @property
    def minutes(self) -> Decimal:
        return (Decimal(self.hold_ms) / 60000).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class DayRevenue:
    day: date
    totals: Totals


@dataclass(frozen=True, slots=True)
class CustomerUsage:
    account_id: int
    code: str
    name: str
    totals: Totals

    @property
    def margin(self) -> Decimal | None:
        """Profit as a percentage of revenue (None without revenue or under an agent)."""
        profit = self.totals.profit
        if profit is None or not self.totals.income:
            return None
        return (profit * 100 / self.totals.income).quantize(Decimal("0.1"))


_TOTALS_SQL = (
    "count(*), "
    "sum(CASE WHEN answer_time IS NOT NULL THEN 1 ELSE 0 END), "
    "sum(fee), sum(vendor_cost), "
    "sum(CASE WHEN answer_time IS NOT NULL THEN hold_ms ELSE 0 END), "
    "sum(CASE WHEN pdd_ms IS NOT NULL THEN pdd_ms ELSE 0 END), "
    "sum(CASE WHEN pdd_ms IS NOT NULL THEN 1 ELSE 0 END)"
)


class Reports:
    """Report queries under one scope (``Reports(store.db, admin.scope)``)."""

    def __init__(self, db: Database, scope: Scope) -> None:
        self._db = db
        self.scope = scope

    def cdr(self, cdr_id: int) -> Cdr | None:
        """One CDR by id, if the scope may see it."""
        where, params = self._scope_where()
        clause = "id = ?" + (f" AND {where}" if where else "")
        with self._db.transaction(write=False) as tx:
            found = table.select(tx, Cdr, clause, [cdr_id, *params])
        return found[0] if found else None

    # -- totals ---------------------------------------------------------------------------

    def totals(self, first: date, last: date) -> Totals:
        """Figures of the days ``first``..``last`` inclusive (e.g. today: ``totals(d, d)``)."""
        with self._db.transaction(write=False) as tx:
            where, params = self._where(tx, first, last)
            row = tx.one(f"SELECT {_TOTALS_SQL} FROM cdr WHERE {where}", params)  # noqa: S608
            return self._totals(tx, row or (0,) * 7)

    def revenue_by_day(self, first: date, last: date) -> list[DayRevenue]:
        """One entry per day of ``first``..``last`` (days without calls give zeros), oldest first."""
        if last < first:
            raise ValidationError("last", "is before first")
        if (last - first).days > 366:
            raise ValidationError("first", "a revenue report spans at most 366 days")
        found: dict[date, Totals] = {}
        with self._db.transaction(write=False) as tx:
            where, params = self._where(tx, first, last)
            rows = tx.execute(
                f"SELECT day, {_TOTALS_SQL} FROM cdr WHERE {where} GROUP BY day",  # noqa: S608
                params,
            )
            for row in rows:
                found[codec.decode_day(tx.dialect, row[0])] = self._totals(tx, row[1:])
            empty = self._totals(tx, (0,) * 7)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return [DayRevenue(d, found.get(d, empty)) for d in days]

    def top_customers(self, first: date, last: date, *, count: int = TOP_CUSTOMERS) -> list[CustomerUsage]:
        """The ``count`` customer accounts with the most revenue in the period (then most talk
        time, then account id), with their figures."""
        with self._db.transaction(write=False) as tx:
            where, params = self._where(tx, first, last)
            rows = tx.execute(
                f"SELECT account_id, {_TOTALS_SQL} FROM cdr "  # noqa: S608
                f"WHERE {where} AND account_id IS NOT NULL GROUP BY account_id",
                params,
            )
            accounts = tx.execute("SELECT id, code, name FROM account")
            names = {int(r[0]): (str(r[1]), str(r[2])) for r in accounts}
            usage = [
                CustomerUsage(int(r[0]), *names.get(int(r[0]), (f"#{r[0]}", "")), self._totals(tx, r[1:]))
                for r in rows
            ]
        usage.sort(key=lambda u: (-u.totals.income, -u.totals.hold_ms, u.account_id))
        return usage[: max(0, count)]

    # -- internals ------------------------------------------------------------------------

    def _scope_where(self) -> tuple[str, list[Any]]:
        if self.scope.agent_id is None:
            return "", []
        return f"account_id IN ({SUBTREE_SQL})", [self.scope.agent_id]

    def _where(self, tx: Tx, first: date, last: date) -> tuple[str, list[Any]]:
        d = tx.dialect
        clauses = ["day >= ?", "day <= ?"]
        params: list[Any] = [codec.encode(d, Kind.DAY, first), codec.encode(d, Kind.DAY, last)]
        if self.scope.agent_id is not None:
            clauses.append(f"account_id IN ({SUBTREE_SQL})")
            params.append(self.scope.agent_id)
        return " AND ".join(clauses), params

    def _totals(self, tx: Tx, row: tuple[Any, ...]) -> Totals:
        attempts, answered, income, cost, hold, pdd_total, pdd_calls = row
        return Totals(
            attempts=int(attempts or 0),
            answered=int(answered or 0),
            income=codec.decode_money(tx.dialect, income or 0),
            cost=codec.decode_money(tx.dialect, cost or 0) if self.scope.is_admin else None,
            hold_ms=int(hold or 0),
            pdd_ms_total=int(pdd_total or 0),
            pdd_calls=int(pdd_calls or 0),
        )
