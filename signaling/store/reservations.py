"""Balance reservations: the money a call in progress holds of its customer account.

Theory of operation. An account may spend ``balance + credit_limit`` (the overdraft the reference
calls Credit). Calls are charged when they end (their CDR debits the balance), so while they run
each one *holds* a reservation: at admission the price of its first billing period, later,
as the call goes on, the price of the hold time it may reach before the node looks again. What a
new call (or a growing one) may take is

    free = balance + credit_limit - (every other reservation of the account, on any node)

and :func:`hold` decides it inside one transaction that first locks the account row
(``BEGIN IMMEDIATE`` on SQLite, ``SELECT … FOR UPDATE`` on PostgreSQL). Two calls of one
account, on one node or on two nodes sharing a PostgreSQL database, therefore queue on that lock
and cannot both take the same money. The CDR that finally charges the call and the removal of its
reservation are written in one transaction (:meth:`Store.settle_calls`), so the balance never
counts a call twice (charged *and* still held) or not at all.

A row also says which node holds the call, when it was answered and when the node last knew it
was up (``alive_at``, the node's heartbeat), plus a JSON draft of its CDR: a node restarted after
a crash (or a peer noticing a silent node) turns those rows into CDRs billed up to ``alive_at``
and releases them (signaling/callproc, docs/billing.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from signaling.store import codec
from signaling.store.codec import Kind
from signaling.store.db import Tx
from signaling.store.errors import ValidationError
from signaling.store.money import MONEY_LIMIT, MONEY_SCALE, check_scaled


@dataclass(frozen=True, slots=True)
class Reservation:
    call_id: str
    node: str
    account_id: int
    amount: Decimal
    created_at: datetime
    answer_time: datetime | None
    alive_at: datetime
    draft: str


@dataclass(frozen=True, slots=True)
class Grant:
    """The outcome of :func:`hold`."""

    #: False: the account could not give ``need`` (or does not exist); nothing changed.
    ok: bool
    #: What the call's reservation holds now.
    amount: Decimal
    #: What the account could give this call in total: balance + credit_limit - the other
    #: reservations (may be negative when the account is already past its overdraft).
    free: Decimal


#: Reservations dropped per DELETE statement.
RELEASE_CHUNK = 500

_COLUMNS = "call_id, node, account_id, amount, created_at, answer_time, alive_at, draft"


def _money(value: Decimal, field: str) -> Decimal:
    return check_scaled(value, MONEY_SCALE, MONEY_LIMIT, field)


def hold(
    tx: Tx,
    call_id: str,
    account_id: int,
    *,
    want: Decimal,
    need: Decimal,
    node: str,
    now: datetime,
    draft: str | None = None,
) -> Grant:
    """Make the reservation of ``call_id`` as large as ``want`` allows, at least ``need``.

    A new reservation is created (when ``draft`` is given), an existing one only grows: it
    becomes ``min(want, free)`` when that is at least ``need`` (and at least what it holds), else
    the grant fails and the row stays as it was. Without ``draft`` and without a row (the call was
    settled elsewhere) the grant fails with nothing held. Run it in a write transaction (it locks
    the account row first)."""
    _money(want, "want")
    _money(need, "need")
    if need > want:
        raise ValidationError("need", "must not exceed want")
    row = tx.one(f"SELECT balance, credit_limit FROM account WHERE id = ?{tx.for_update}", (account_id,))  # noqa: S608
    if row is None:
        return Grant(False, Decimal(0), Decimal(0))
    balance = codec.decode_money(tx.dialect, row[0])
    credit = codec.decode_money(tx.dialect, row[1])
    others = codec.decode_money(
        tx.dialect,
        tx.scalar(
            "SELECT coalesce(sum(amount), 0) FROM reservation WHERE account_id = ? AND call_id <> ?",
            (account_id, call_id),
        ),
    )
    free = balance + credit - others
    current_row = tx.one("SELECT amount FROM reservation WHERE call_id = ?", (call_id,))
    if current_row is None and draft is None:
        return Grant(False, Decimal(0), free)
    current = Decimal(0) if current_row is None else codec.decode_money(tx.dialect, current_row[0])
    granted = max(min(want, free), current)
    if granted < need or (current_row is None and free < need):
        return Grant(False, current, free)
    amount = codec.encode(tx.dialect, Kind.MONEY, granted)
    stamp = codec.encode(tx.dialect, Kind.TIME, now)
    if current_row is None:
        assert draft is not None
        tx.execute(
            f"INSERT INTO reservation ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",  # noqa: S608
            (call_id, node, account_id, amount, stamp, stamp, draft),
        )
    elif granted != current:
        tx.execute("UPDATE reservation SET amount = ? WHERE call_id = ?", (amount, call_id))
    return Grant(True, granted, free)


def answered(tx: Tx, call_id: str, answer_time: datetime, draft: str) -> None:
    """Record the answer (and the CDR draft as it is now) for crash recovery."""
    tx.execute(
        "UPDATE reservation SET answer_time = ?, alive_at = ?, draft = ? WHERE call_id = ?",
        (
            codec.encode(tx.dialect, Kind.TIME, answer_time),
            codec.encode(tx.dialect, Kind.TIME, answer_time),
            draft,
            call_id,
        ),
    )


def heartbeat(tx: Tx, node: str, now: datetime) -> int:
    """Every reservation ``node`` holds is of a call up at ``now``; how many rows moved on.

    ``alive_at`` only moves forward: a heartbeat written late (a node's queued writes) leaves a
    row that an answer or a later heartbeat already put after ``now`` as it is."""
    stamp = codec.encode(tx.dialect, Kind.TIME, now)
    if tx.for_update:
        # The accounts first, in id order, as every writer of reservations takes them: a node's
        # heartbeat and its own CDR writes or admissions (other threads) cannot deadlock.
        accounts = "SELECT id FROM account WHERE id IN (SELECT account_id FROM reservation WHERE node = ?)"
        tx.execute(f"{accounts} ORDER BY id{tx.for_update}", (node,))
    rows = tx.execute(
        "UPDATE reservation SET alive_at = ? WHERE node = ? AND alive_at < ? RETURNING call_id",
        (stamp, node, stamp),
    )
    return len(rows)


def release(tx: Tx, call_ids: list[str]) -> set[str]:
    """Drop reservations (their CDRs are written in the same transaction); the calls that had one."""
    dropped: set[str] = set()
    for start in range(0, len(call_ids), RELEASE_CHUNK):
        chunk = call_ids[start : start + RELEASE_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        rows = tx.execute(f"DELETE FROM reservation WHERE call_id IN ({marks}) RETURNING call_id", chunk)  # noqa: S608
        dropped.update(str(r[0]) for r in rows)
    return dropped


def query(tx: Tx, *, node: str | None = None, silent_since: datetime | None = None) -> list[Reservation]:
    """Reservations of ``node`` (all nodes when None), or those not heard of since ``silent_since``."""
    where: list[str] = []
    params: list[object] = []
    if node is not None:
        where.append("node = ?")
        params.append(node)
    if silent_since is not None:
        where.append("alive_at < ?")
        params.append(codec.encode(tx.dialect, Kind.TIME, silent_since))
    sql = f"SELECT {_COLUMNS} FROM reservation"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    out: list[Reservation] = []
    for row in tx.execute(sql + " ORDER BY created_at, call_id", params):
        alive = codec.decode_time(tx.dialect, row[6])
        created = codec.decode_time(tx.dialect, row[4])
        assert alive is not None and created is not None
        out.append(
            Reservation(
                call_id=str(row[0]),
                node=str(row[1]),
                account_id=int(row[2]),
                amount=codec.decode_money(tx.dialect, row[3]),
                created_at=created,
                answer_time=codec.decode_time(tx.dialect, row[5]),
                alive_at=alive,
                draft=str(row[7]),
            )
        )
    return out


def held(tx: Tx, account_id: int) -> Decimal:
    """The sum of the account's reservations."""
    return codec.decode_money(
        tx.dialect,
        tx.scalar("SELECT coalesce(sum(amount), 0) FROM reservation WHERE account_id = ?", (account_id,)),
    )
