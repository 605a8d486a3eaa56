"""Writing and reading CDRs, and the daily partitions they live in.

``add`` writes a batch in one transaction and, for each CDR not already stored, debits the
customer account by ``fee`` and the clearing (vendor) account by ``vendor_cost`` in that same
transaction: a call's charge and its record become durable together, and writing the same batch
again (a node retrying after a crash) neither duplicates a CDR nor charges twice. Accounts are
debited in id order, so two nodes writing batches at once cannot deadlock.

On PostgreSQL each day is a partition ``cdr_YYYYMMDD`` of ``cdr``, created before the first CDR of
that day is written (in its own short transaction, under an advisory lock so two nodes do not
race) and dropped whole by retention. On SQLite ``cdr`` is one table with an index on ``day``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from signaling.store import codec, table
from signaling.store.cdr import Cdr, partition_name
from signaling.store.codec import Dialect, Kind
from signaling.store.db import Database, Tx
from signaling.store.errors import StoreError

#: pg_advisory_xact_lock(key, day) key for partition creation ("SSWC").
PARTITION_LOCK_KEY = 0x53535743 & 0x7FFFFFFF


class CdrTables:
    """CDR access for one database; remembers which day partitions already exist."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._known_days: set[date] = set()
        self._lock = threading.Lock()

    def ensure_days(self, days: Iterable[date]) -> None:
        """Create the partitions of ``days`` that do not exist yet (PostgreSQL; SQLite: nothing)."""
        if self._db.dialect is not Dialect.POSTGRESQL:
            return
        with self._lock:
            missing = sorted(set(days) - self._known_days)
        if not missing:
            return
        for day in missing:
            try:
                with self._db.transaction() as tx:
                    _create_partition(tx, day)
            except StoreError as exc:
                if "already exists" not in str(exc):
                    raise  # a node that lost the race finds the partition made; anything else is real
        with self._lock:
            self._known_days.update(missing)

    def add(self, cdrs: Sequence[Cdr], *, charge: bool = True) -> int:
        """Store a batch (see the module doc); how many were new."""
        self.ensure_days({c.day for c in cdrs})
        cols = table.columns(Cdr)
        names = ["day", "margin", *(c.name for c in cols)]
        sql = (
            f"INSERT INTO cdr ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) "  # noqa: S608
            "ON CONFLICT (call_id, day) DO NOTHING RETURNING id"
        )
        debits: dict[int, Decimal] = {}
        inserted = 0
        with self._db.transaction() as tx:
            d = tx.dialect
            rows = []
            for cdr in cdrs:
                values = [codec.encode(d, Kind.DAY, cdr.day), codec.encode(d, Kind.MONEY, cdr.margin)]
                values.extend(codec.encode(d, c.kind, getattr(cdr, c.name)) for c in cols)
                rows.append(values)
            # one statement per CDR, sent together (pipelined on PostgreSQL); a row comes back
            # for each CDR that was new (not stored yet, nor earlier in this batch)
            for cdr, new in zip(cdrs, tx.execute_each(sql, rows), strict=True):
                if not new:
                    continue
                inserted += 1
                if charge:
                    for account_id, amount in (
                        (cdr.account_id, cdr.fee),
                        (cdr.clearing_account_id, cdr.vendor_cost),
                    ):
                        if account_id is not None and amount:
                            debits[account_id] = debits.get(account_id, Decimal(0)) + amount
            for account_id in sorted(debits):
                tx.execute(
                    "UPDATE account SET balance = balance - ? WHERE id = ?",
                    (codec.encode(d, Kind.MONEY, debits[account_id]), account_id),
                )
        return inserted

    def query(
        self,
        first: date,
        last: date,
        *,
        account_id: int | None = None,
        limit: int | None = None,
    ) -> list[Cdr]:
        """CDRs of days ``first``..``last`` (inclusive), by end time."""
        where = "day >= ? AND day <= ?"
        with self._db.transaction(write=False) as tx:
            params: list[object] = [
                codec.encode(tx.dialect, Kind.DAY, first),
                codec.encode(tx.dialect, Kind.DAY, last),
            ]
            if account_id is not None:
                where += " AND account_id = ?"
                params.append(account_id)
            return table.select(tx, Cdr, where, params, order="end_time, id", limit=limit)

    def days(self) -> list[date]:
        """Days that have CDRs (PostgreSQL: days that have a partition)."""
        with self._db.transaction(write=False) as tx:
            if tx.dialect is Dialect.POSTGRESQL:
                return sorted(_partition_days(tx))
            rows = tx.execute("SELECT DISTINCT day FROM cdr ORDER BY day")
            return [codec.decode_day(tx.dialect, r[0]) for r in rows]

    def drop_before(self, first_kept: date) -> list[date]:
        """Retention: remove every CDR of days before ``first_kept``; the days removed."""
        with self._db.transaction() as tx:
            if tx.dialect is Dialect.POSTGRESQL:
                dropped = sorted(d for d in _partition_days(tx) if d < first_kept)
                for day in dropped:
                    tx.execute(f"DROP TABLE {partition_name(day)}")
            else:
                bound = codec.encode(tx.dialect, Kind.DAY, first_kept)
                rows = tx.execute("SELECT DISTINCT day FROM cdr WHERE day < ? ORDER BY day", (bound,))
                dropped = [codec.decode_day(tx.dialect, r[0]) for r in rows]
                tx.execute("DELETE FROM cdr WHERE day < ?", (bound,))
        with self._lock:
            self._known_days.difference_update(dropped)
        return dropped


def _create_partition(tx: Tx, day: date) -> None:
    """Create ``cdr_YYYYMMDD`` unless it exists. The advisory lock comes first, before any catalog
    lookup in this transaction, so the lookup after it sees a partition another node committed
    while this one waited."""
    tx.execute("SELECT pg_advisory_xact_lock(?, ?)", (PARTITION_LOCK_KEY, day.toordinal()))
    name = partition_name(day)
    if tx.scalar("SELECT to_regclass(?)", (name,)) is not None:
        return
    following = day + timedelta(days=1)
    tx.execute(f"CREATE TABLE {name} PARTITION OF cdr FOR VALUES FROM ('{day}') TO ('{following}')")


def _partition_days(tx: Tx) -> list[date]:
    rows = tx.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'cdr'::regclass"
    )
    days: list[date] = []
    for (name,) in rows:
        digits = str(name).removeprefix("cdr_")
        if len(digits) == 8 and digits.isdigit():
            days.append(date(int(digits[:4]), int(digits[4:6]), int(digits[6:])))
    return days
