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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from signaling.store import codec
from signaling.store import lines as line_leases
from signaling.store import packages as package_list
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
    #: Package free seconds and free credit the call holds (all its subscriptions together).
    free_seconds: int = 0
    free_credit: Decimal = Decimal(0)


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
    #: Package free seconds and free credit the call holds now.
    free_seconds: int = 0
    free_credit: Decimal = Decimal(0)
    #: What the call's packages could give it in total (what it holds plus what is left of
    #: the pools after every other call's hold), for its maximum duration.
    pool_seconds: int = 0
    pool_credit: Decimal = Decimal(0)
    #: The shared line leases asked for at admission (None: none were): a refusal for lines
    #: has ``lines.ok`` false; ``lines.route`` is the route whose lines the call holds.
    lines: line_leases.LineGrant | None = None


@dataclass(frozen=True, slots=True)
class PackageRequest:
    """What a call asks of its account's package subscriptions (docs/billing.md §5).

    ``want`` and ``need`` given to :func:`hold` with a request are ignored: the prices come from
    ``price(free seconds held)`` -> ``(want, need)``, the call's price up to its horizon and the
    least it must be able to pay, both before free credit. Free seconds cover the earliest
    billed seconds, so the price falls as the call holds more of them."""

    #: The subscriptions whose packages cover the call's destination, in the order it draws on them.
    subscriptions: tuple[int, ...]
    #: Free seconds the call would like to hold: the billed seconds of its horizon.
    seconds: int
    price: Callable[[int], tuple[Decimal, Decimal]]


@dataclass(slots=True)
class _Pool:
    """One subscription as a call sees it."""

    id: int
    period_start: datetime
    #: what is left for this call to take: the pool less its use and every call's hold
    seconds: int
    credit: Decimal
    #: what this call holds of it (in the current period; None: no row yet)
    held: tuple[int, Decimal] | None
    #: this call's row is of an earlier period (the period turned during the call): it keeps
    #: what it holds and takes no more of this subscription
    stale: bool = False


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
    packages: PackageRequest | None = None,
    lines: line_leases.LineRequest | None = None,
) -> Grant:
    """Make the reservation of ``call_id`` as large as ``want`` allows, at least ``need``.

    A new reservation is created (when ``draft`` is given), an existing one only grows: it
    becomes ``min(want, free)`` when that is at least ``need`` (and at least what it holds), else
    the grant fails and the row stays as it was. Without ``draft`` and without a row (the call was
    settled elsewhere) the grant fails with nothing held. With ``packages`` the call first takes
    free seconds, then free credit, of its subscriptions (rolled to ``now`` first: rent and new
    periods), and the money it needs is what they leave of the price. With ``lines`` a new
    reservation also leases the call's limited lines, shared by every node (signaling/store/
    lines.py): the call's own and those of the first route that has free ones; when they are not
    free nothing is held. Run it in a write transaction (it locks the account row first)."""
    if packages is not None:
        package_list.roll(tx, account_id, now)  # the account row's lock is taken here
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
    terms = _Terms() if packages is None else _package_terms(tx, call_id, packages, now)
    if packages is not None:
        want, need = terms.want, terms.need
    covered = need == 0 and (terms.seconds > 0 or terms.credit > 0)
    pool_seconds, pool_credit = terms.pool_seconds, terms.pool_credit
    _money(want, "want")
    _money(need, "need")
    if need > want:
        raise ValidationError("need", "must not exceed want")
    granted = max(min(want, free), current)
    if granted < need or (current_row is None and free < need and not covered):
        return Grant(False, current, free, pool_seconds=pool_seconds, pool_credit=pool_credit)
    claim = line_leases.claim(tx, lines, now) if lines is not None and current_row is None else None
    if claim is not None and not claim.grant.ok:
        return Grant(
            False, current, free, pool_seconds=pool_seconds, pool_credit=pool_credit, lines=claim.grant
        )
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
    if terms.take_seconds or terms.take_credit:
        _take(tx, call_id, terms)
    if claim is not None:
        line_leases.write(tx, claim, call_id, node, now)
    return Grant(
        True,
        granted,
        free,
        terms.seconds,
        terms.credit,
        pool_seconds,
        pool_credit,
        None if claim is None else claim.grant,
    )


@dataclass(slots=True)
class _Terms:
    """What a call takes of its packages, and the money it then needs."""

    pools: list[_Pool] = field(default_factory=list)
    #: free seconds and free credit the call holds after the grant
    seconds: int = 0
    credit: Decimal = Decimal(0)
    take_seconds: dict[int, int] = field(default_factory=dict)
    take_credit: dict[int, Decimal] = field(default_factory=dict)
    pool_seconds: int = 0
    pool_credit: Decimal = Decimal(0)
    #: the money wanted and needed after the free seconds and free credit
    want: Decimal = Decimal(0)
    need: Decimal = Decimal(0)


def _package_terms(tx: Tx, call_id: str, packages: PackageRequest, now: datetime) -> _Terms:
    pools = _pools(tx, call_id, packages.subscriptions, now)
    held_seconds = sum(p.held[0] for p in pools if p.held is not None)
    credit_held = sum((p.held[1] for p in pools if p.held is not None), Decimal(0))
    pool_seconds = held_seconds + sum(p.seconds for p in pools if not p.stale)
    pool_credit = credit_held + sum((p.credit for p in pools if not p.stale), Decimal(0))
    take_seconds = _spread(pools, max(0, min(packages.seconds, pool_seconds) - held_seconds), "seconds")
    seconds = held_seconds + sum(take_seconds.values())
    want, need = packages.price(seconds)  # free seconds first: the price after them
    credit_target = max(credit_held, min(want, pool_credit))  # then free credit pays
    take_credit = _spread(pools, credit_target - credit_held, "credit")
    return _Terms(
        pools,
        seconds,
        credit_target,
        take_seconds,
        take_credit,
        pool_seconds,
        pool_credit,
        max(want - credit_target, Decimal(0)),
        max(need - credit_target, Decimal(0)),
    )


def _pools(tx: Tx, call_id: str, wanted: tuple[int, ...], now: datetime) -> list[_Pool]:
    """The call's subscriptions among ``wanted`` that are active at ``now`` (or that it holds
    benefits of), in that order."""
    d = tx.dialect
    by_id = {sub.id: sub for sub in package_list.subscriptions_by_id(tx, wanted)}
    mine: dict[int, tuple[datetime, int, Decimal]] = {}
    for sub_id, period, free_seconds, free_credit in tx.execute(
        "SELECT account_package_id, period_start, free_seconds, free_credit FROM reservation_package "
        "WHERE call_id = ?",
        (call_id,),
    ):
        started = codec.decode_time(d, period)
        assert started is not None
        mine[int(sub_id)] = (started, int(free_seconds), codec.decode_money(d, free_credit))
    pools: list[_Pool] = []
    for sub_id in wanted:
        sub = by_id.get(sub_id)
        if sub is None or not (sub.active(now) or sub.id in mine):
            continue
        held_rows = tx.one(
            "SELECT coalesce(sum(free_seconds), 0), coalesce(sum(free_credit), 0) FROM reservation_package "
            "WHERE account_package_id = ? AND period_start = ? AND call_id <> ?",
            (sub.id, codec.encode(d, Kind.TIME, sub.period_start), call_id),
        )
        assert held_rows is not None
        others_seconds = int(held_rows[0])
        others_credit = codec.decode_money(d, held_rows[1])
        pool = _Pool(
            sub.id,
            sub.period_start,
            max(0, sub.free_seconds - sub.free_seconds_used - others_seconds),
            max(Decimal(0), sub.free_credit - sub.free_credit_used - others_credit),
            None,
        )
        if sub.id in mine:
            started, held_seconds, held_credit = mine[sub.id]
            pool.held = (held_seconds, held_credit)
            # a subscription that ended, or turned to a new period, during the call
            pool.stale = started != sub.period_start or not sub.active(now)
            if not pool.stale:  # what is left to take besides what the call holds already
                pool.seconds = max(0, pool.seconds - held_seconds)
                pool.credit = max(Decimal(0), pool.credit - held_credit)
        pools.append(pool)
    return pools


def _spread(pools: list[_Pool], amount: int | Decimal, kind: str) -> dict[int, Any]:
    """Take ``amount`` (seconds or credit) from the pools in order; what each gives."""
    taken: dict[int, Any] = {}
    left = amount
    for pool in pools:
        if left <= 0:
            break
        if pool.stale:
            continue
        available = pool.seconds if kind == "seconds" else pool.credit
        give = min(available, left)
        if give > 0:
            taken[pool.id] = give
            left -= give
    return taken


def _take(tx: Tx, call_id: str, terms: _Terms) -> None:
    d = tx.dialect
    for position, pool in enumerate(terms.pools):
        add_seconds = terms.take_seconds.get(pool.id, 0)
        add_credit = terms.take_credit.get(pool.id, Decimal(0))
        if not add_seconds and not add_credit:
            continue
        if pool.held is None:
            tx.execute(
                "INSERT INTO reservation_package (call_id, account_package_id, period_start, position, "
                "free_seconds, free_credit) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    call_id,
                    pool.id,
                    codec.encode(d, Kind.TIME, pool.period_start),
                    position,
                    add_seconds,
                    codec.encode(d, Kind.MONEY, add_credit),
                ),
            )
        else:
            held_seconds, held_credit = pool.held
            tx.execute(
                "UPDATE reservation_package SET free_seconds = ?, free_credit = ? "
                "WHERE call_id = ? AND account_package_id = ?",
                (
                    held_seconds + add_seconds,
                    codec.encode(d, Kind.MONEY, held_credit + add_credit),
                    call_id,
                    pool.id,
                ),
            )


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
    """Every reservation ``node`` holds is of a call up at ``now`` (its line leases too); how
    many rows moved on.

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
    line_leases.heartbeat(tx, node, now)
    return len(rows)


def release(tx: Tx, call_ids: list[str], used: Mapping[str, tuple[int, Decimal]]) -> set[str]:
    """Drop reservations (their CDRs are written in the same transaction); the calls that had one.

    ``used`` gives, per call, the package free seconds and free credit its CDR used (required:
    whoever writes a CDR must pass them, or the package pools would never be consumed): they are
    added to the subscriptions the call held them of, in the order it took them, as long as
    each subscription is still in the period the call took them from. The call's line leases
    and package holds go with the reservation row (foreign keys with cascade). One statement
    per :data:`RELEASE_CHUNK` calls (a batch of ended calls)."""
    holds: dict[str, list[tuple[Any, ...]]] = {}
    users = [c for c in call_ids if (u := used.get(c)) is not None and (u[0] or u[1])]
    for start in range(0, len(users), RELEASE_CHUNK):  # read before the rows go (they cascade)
        chunk = users[start : start + RELEASE_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for call_id, *hold in tx.execute(
            "SELECT call_id, account_package_id, period_start, free_seconds, free_credit "  # noqa: S608
            f"FROM reservation_package WHERE call_id IN ({marks}) ORDER BY call_id, position",
            chunk,
        ):
            holds.setdefault(str(call_id), []).append(tuple(hold))
    dropped: set[str] = set()
    for start in range(0, len(call_ids), RELEASE_CHUNK):
        chunk = call_ids[start : start + RELEASE_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        rows = tx.execute(f"DELETE FROM reservation WHERE call_id IN ({marks}) RETURNING call_id", chunk)  # noqa: S608
        dropped.update(str(r[0]) for r in rows)
    for call_id in call_ids:
        rows_held = holds.get(call_id)
        usage = used.get(call_id)
        if call_id in dropped and rows_held and usage is not None:
            _consume(tx, rows_held, *usage)
    return dropped


def _consume(tx: Tx, rows: list[tuple[Any, ...]], seconds: int, credit: Decimal) -> None:
    d = tx.dialect
    for sub_id, period, held_seconds, held_credit in rows:
        use_seconds = min(seconds, int(held_seconds))
        use_credit = min(credit, codec.decode_money(d, held_credit))
        seconds -= use_seconds
        credit -= use_credit
        if use_seconds or use_credit:
            tx.execute(
                "UPDATE account_package SET free_seconds_used = free_seconds_used + ?, "
                "free_credit_used = free_credit_used + ? WHERE id = ? AND period_start = ?",
                (use_seconds, codec.encode(d, Kind.MONEY, use_credit), int(sub_id), period),
            )


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
    sql = (
        f"SELECT {_COLUMNS}, "  # noqa: S608
        "(SELECT coalesce(sum(free_seconds), 0) FROM reservation_package p "
        "WHERE p.call_id = reservation.call_id), "
        "(SELECT coalesce(sum(free_credit), 0) FROM reservation_package p "
        "WHERE p.call_id = reservation.call_id) "
        "FROM reservation"
    )
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
                free_seconds=int(row[8]),
                free_credit=codec.decode_money(tx.dialect, row[9]),
            )
        )
    return out


def held(tx: Tx, account_id: int) -> Decimal:
    """The sum of the account's reservations."""
    return codec.decode_money(
        tx.dialect,
        tx.scalar("SELECT coalesce(sum(amount), 0) FROM reservation WHERE account_id = ?", (account_id,)),
    )
