"""Package periods and rent: the monthly turn of an account's package subscriptions.

Theory of operation (the rules and the reasons are docs/billing.md §5, "Packages"):

* A subscription's **package periods** are monthly from its ``start_time``: the same day of each
  month, the month's last day when it is shorter (a subscription of 31 January turns on 28 or 29
  February, then on 31 March). ``period_start`` is the start of the current one.
* **Rolling** a subscription at ``now`` moves ``period_start`` to the start of the period
  containing ``now`` and resets the free seconds and free credit used (the free pool is whole
  again), then charges the **rent** of every period that started since the last one rented
  (``rent_period_start``), each as a payment record of type ``rent`` (so a node down over a
  turn of the month charges the missed period once, late, never twice). A subscription that
  ended charges no period starting at or after its end.
* Rolling takes the account row's lock first, like every writer of balances: two nodes rolling
  the same account queue, and the second finds nothing left to do. It happens when a call of
  the account draws on its packages (in the reservation's transaction) and at the router's tick
  for accounts whose period turned (:meth:`signaling.store.Store.roll_packages`).
* Rent is charged in full even when it takes the balance below zero (the subscription is a
  commitment; calls are then refused until the account is paid).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from signaling.store import codec, payments
from signaling.store.codec import Kind
from signaling.store.db import Tx

#: The operator name on rent payment records.
RENT_OPERATOR = "billing"
#: Store times have microsecond resolution: the last instant before a subscription's end.
_EPSILON = timedelta(microseconds=1)


def add_months(start: datetime, months: int) -> datetime:
    """``start`` moved by whole months, on the same day or the month's last day."""
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    month += 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def period_at(start: datetime, at: datetime) -> datetime:
    """The start of the package period (monthly from ``start``) that contains ``at``."""
    if at <= start:
        return start
    months = (at.year - start.year) * 12 + at.month - start.month
    candidate = add_months(start, months)
    while candidate > at:  # the anniversary of this month is still ahead
        months -= 1
        candidate = add_months(start, months)
    return candidate


def next_period(start: datetime, period_start: datetime) -> datetime:
    """The start of the package period after the one starting at ``period_start``."""
    months = (period_start.year - start.year) * 12 + period_start.month - start.month
    candidate = add_months(start, months)
    while candidate <= period_start:
        months += 1
        candidate = add_months(start, months)
    return candidate


def periods_between(start: datetime, after: datetime | None, until: datetime) -> list[datetime]:
    """Period starts in ``(after, until]`` (all from ``start`` when ``after`` is None)."""
    out: list[datetime] = []
    months = 0
    while True:
        begin = add_months(start, months)
        if begin > until:
            return out
        if after is None or begin > after:
            out.append(begin)
        months += 1


@dataclass(frozen=True, slots=True)
class Subscription:
    """An account's subscription with its package's benefits, as the reservation reads it."""

    id: int
    package: str
    start_time: datetime
    end_time: datetime | None
    period_start: datetime
    rent_period_start: datetime | None
    free_seconds_used: int
    free_credit_used: Decimal
    rent_fee: Decimal
    free_seconds: int
    free_credit: Decimal

    def active(self, now: datetime) -> bool:
        return self.start_time <= now and (self.end_time is None or self.end_time > now)


_SUBSCRIPTION_SQL = (
    "SELECT s.id, p.name, s.start_time, s.end_time, s.period_start, s.rent_period_start, "
    "s.free_seconds_used, s.free_credit_used, p.rent_fee, p.free_seconds, p.free_credit "
    "FROM account_package s JOIN package p ON p.id = s.package_id"
)


def subscriptions(tx: Tx, account_id: int) -> list[Subscription]:
    """The account's subscriptions, by id."""
    return _read(tx.execute(_SUBSCRIPTION_SQL + " WHERE s.account_id = ? ORDER BY s.id", (account_id,)), tx)


def subscriptions_by_id(tx: Tx, ids: Iterable[int]) -> list[Subscription]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    return _read(tx.execute(f"{_SUBSCRIPTION_SQL} WHERE s.id IN ({marks}) ORDER BY s.id", wanted), tx)


def _read(rows: list[tuple[Any, ...]], tx: Tx) -> list[Subscription]:
    d = tx.dialect
    out: list[Subscription] = []
    for row in rows:
        start = codec.decode_time(d, row[2])
        period = codec.decode_time(d, row[4])
        assert start is not None and period is not None
        out.append(
            Subscription(
                id=int(row[0]),
                package=str(row[1]),
                start_time=start,
                end_time=codec.decode_time(d, row[3]),
                period_start=period,
                rent_period_start=codec.decode_time(d, row[5]),
                free_seconds_used=int(row[6]),
                free_credit_used=codec.decode_money(d, row[7]),
                rent_fee=codec.decode_money(d, row[8]),
                free_seconds=int(row[9]),
                free_credit=codec.decode_money(d, row[10]),
            )
        )
    return out


def due(sub: Subscription, now: datetime) -> bool:
    """Whether rolling ``sub`` at ``now`` would change anything."""
    until = _until(sub, now)
    if until is None:
        return False
    current = period_at(sub.start_time, until)
    if current != sub.period_start:
        return True
    return sub.rent_fee > 0 and sub.rent_period_start != current


def _until(sub: Subscription, now: datetime) -> datetime | None:
    """The instant the periods are counted to: ``now``, or just before the subscription's end."""
    if sub.start_time > now:
        return None
    if sub.end_time is not None and sub.end_time <= now:
        if sub.end_time <= sub.start_time:
            return None
        # periods starting at the end itself do not count
        return sub.end_time - _EPSILON
    return now


def roll(tx: Tx, account_id: int, now: datetime) -> list[Subscription]:
    """Roll every subscription of ``account_id`` to ``now`` (see the module doc) in the caller's
    transaction; the subscriptions as they are afterwards. Locks the account row first."""
    tx.execute(f"SELECT id FROM account WHERE id = ?{tx.for_update}", (account_id,))  # noqa: S608
    subs = subscriptions(tx, account_id)
    out: list[Subscription] = []
    changed = False
    for stored in subs:
        sub = stored
        until = _until(sub, now)
        if until is None:
            out.append(sub)
            continue
        current = period_at(sub.start_time, until)
        d = tx.dialect
        if current != sub.period_start:
            tx.execute(
                "UPDATE account_package SET period_start = ?, free_seconds_used = 0, free_credit_used = ? "
                "WHERE id = ?",
                (codec.encode(d, Kind.TIME, current), codec.encode(d, Kind.MONEY, Decimal(0)), sub.id),
            )
            sub = replace(sub, period_start=current, free_seconds_used=0, free_credit_used=Decimal(0))
            changed = True
        if sub.rent_fee > 0 and sub.rent_period_start != current:
            after = sub.rent_period_start
            unpaid = [current] if after is None else periods_between(sub.start_time, after, current)
            for begin in unpaid:
                payments.apply(
                    tx,
                    account_id,
                    "rent",
                    sub.rent_fee,
                    operator=RENT_OPERATOR,
                    memo=f"package {sub.package}: rent of the period from {begin:%Y-%m-%d %H:%M:%S} UTC",
                    now=now,
                )
            tx.execute(
                "UPDATE account_package SET rent_period_start = ? WHERE id = ?",
                (codec.encode(d, Kind.TIME, current), sub.id),
            )
            sub = replace(sub, rent_period_start=current)
            changed = True
        out.append(sub)
    if changed:  # subscriptions are configuration: nodes reload their period starts
        tx.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")
    return out
