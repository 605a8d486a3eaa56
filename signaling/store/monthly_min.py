"""Monthly minimum consumption ("Monthly Min", reference CAP-6.4, T48, T49).

At the start of each month every customer account whose consumption in the month just ended was
below its ``monthly_min`` is charged the difference, ``max(0, monthly_min - consumption)``, as a
payment record of type ``monthly_min`` (operator ``billing``). The rules (docs/billing.md §6):

* **Months are UTC months** and a CDR counts in the month of its **day** (the UTC day of its end
  time, as the day partitions): a call across midnight on the last day counts in the new month.
* **Consumption** is the sum of the fees of the account's CDRs of the month: what its balance paid
  for calls (after package free seconds and free credit; package rent is not consumption).
* An account **created during the month** is not evaluated for it (its first whole month is);
  one that **expired before the month began** neither. A **locked** account is charged like any
  other (the minimum is a commitment; set ``monthly_min`` to 0 to waive it). The charge is taken
  in full even when it takes the balance below zero (as package rent).
* **Once per account and month**: each evaluation — a charge or nothing to charge — writes a row
  of ``monthly_min_charge`` (primary key account, month) in the transaction that locks the
  account row and writes the payment record; a second evaluation of the same month, from this or
  any other node, finds the row and does nothing.
* Each store-backed node runs :func:`run_monthly_min` with its retention pass (hourly, from its
  first refresh: signaling/callproc/driver.py); it evaluates the month just ended once
  ``SETTLE_DELAY`` has passed since the month began (the CDRs of calls ending just before midnight
  are written by then, including those a peer settles for a lost node). ``softswitch billing
  monthly-min --month YYYY-MM`` runs it for a given month.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from signaling.store import codec, payments
from signaling.store.codec import Kind
from signaling.store.db import Tx
from signaling.store.errors import ValidationError
from signaling.store.packages import RENT_OPERATOR
from signaling.store.store import Store

log = logging.getLogger("softswitch.store")

#: The operator name on monthly-minimum payment records (the billing jobs').
OPERATOR = RENT_OPERATOR
#: How long after the start of a month the node's pass waits before evaluating the month before.
SETTLE_DELAY = timedelta(minutes=15)

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` → Month; anything else is a ValidationError naming ``month``."""
        found = _MONTH.match(text.strip())
        if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1970:
            raise ValidationError("month", f"{text!r} is not a month written YYYY-MM (e.g. 2025-02)")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def before(cls, now: datetime) -> Month:
        """The month that ended before the (UTC) month of ``now``."""
        at = now.astimezone(UTC)
        return cls(at.year - 1, 12) if at.month == 1 else cls(at.year, at.month - 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next_first_day(self) -> date:
        return date(self.year + 1, 1, 1) if self.month == 12 else date(self.year, self.month + 1, 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        following = self.next_first_day
        return datetime(following.year, following.month, 1, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One account's evaluation for a month (one ``monthly_min_charge`` row)."""

    account_id: int
    code: str
    month: str
    minimum: Decimal
    consumption: Decimal
    charged: Decimal
    payment_id: int | None


@dataclass(frozen=True, slots=True)
class MonthlyMinPass:
    month: str
    #: accounts evaluated by this pass (charged or not); those evaluated before are left out
    evaluated: tuple[Evaluation, ...] = ()
    #: True when the pass did not run because the month has not ended (or settled) yet
    too_early: bool = False

    @property
    def charged(self) -> tuple[Evaluation, ...]:
        return tuple(e for e in self.evaluated if e.charged > 0)


def _candidates(tx: Tx, month: Month) -> list[int]:
    """Customer accounts with a monthly minimum, existing at the month's start, not expired
    before it and not evaluated for the month yet."""
    start = codec.encode(tx.dialect, Kind.TIME, month.start)
    zero = codec.encode(tx.dialect, Kind.MONEY, Decimal(0))
    rows = tx.execute(
        "SELECT id FROM account WHERE kind = 'customer' AND monthly_min > ? "
        "AND (created_at IS NULL OR created_at <= ?) AND (expiry IS NULL OR expiry > ?) "
        "AND NOT EXISTS (SELECT 1 FROM monthly_min_charge m WHERE m.account_id = account.id AND m.month = ?) "
        "ORDER BY id",
        (zero, start, start, str(month)),
    )
    return [int(r[0]) for r in rows]


def consumption(tx: Tx, account_id: int, month: Month) -> Decimal:
    """The sum of the fees of the account's CDRs whose day is in ``month``."""
    value = tx.scalar(
        "SELECT COALESCE(SUM(fee), 0) FROM cdr WHERE account_id = ? AND day >= ? AND day < ?",
        (
            account_id,
            codec.encode(tx.dialect, Kind.DAY, month.first_day),
            codec.encode(tx.dialect, Kind.DAY, month.next_first_day),
        ),
    )
    return codec.decode_money(tx.dialect, value)


def _evaluate(tx: Tx, account_id: int, month: Month, now: datetime) -> Evaluation | None:
    """Lock the account, and unless another pass got there first, charge its shortfall."""
    row = tx.one(
        f"SELECT code, monthly_min FROM account WHERE id = ?{tx.for_update}",  # noqa: S608
        (account_id,),
    )
    if row is None:  # deleted meanwhile
        return None
    done = tx.scalar(
        "SELECT count(*) FROM monthly_min_charge WHERE account_id = ? AND month = ?", (account_id, str(month))
    )
    if done:
        return None
    minimum = codec.decode_money(tx.dialect, row[1])
    used = consumption(tx, account_id, month)
    shortfall = max(Decimal(0), minimum - used)
    payment_id: int | None = None
    if shortfall > 0:
        record = payments.apply(
            tx,
            account_id,
            "monthly_min",
            shortfall,
            operator=OPERATOR,
            memo=f"monthly minimum {month}: consumption {used} of {minimum}",
            now=now,
        )
        payment_id = record.id
    d = tx.dialect
    tx.execute(
        "INSERT INTO monthly_min_charge (account_id, month, minimum, consumption, charged, payment_id, "
        "evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            account_id,
            str(month),
            codec.encode(d, Kind.MONEY, minimum),
            codec.encode(d, Kind.MONEY, used),
            codec.encode(d, Kind.MONEY, shortfall),
            payment_id,
            codec.encode(d, Kind.TIME, now),
        ),
    )
    return Evaluation(account_id, str(row[0]), str(month), minimum, used, shortfall, payment_id)


def charge_month(store: Store, month: Month, now: datetime) -> MonthlyMinPass:
    """Evaluate ``month`` for every account not evaluated yet (one transaction per account).
    Refused (ValidationError) before the month has ended at ``now``."""
    if now < month.end:
        raise ValidationError("month", f"{month} has not ended yet")
    with store.db.transaction(write=False) as tx:
        candidates = _candidates(tx, month)
    evaluated: list[Evaluation] = []
    for account_id in candidates:
        with store.db.transaction() as tx:
            found = _evaluate(tx, account_id, month, now)
        if found is not None:
            evaluated.append(found)
            if found.charged:
                log.info(
                    "monthly minimum %s: account %s consumed %s of %s, charged %s",
                    month,
                    found.code,
                    found.consumption,
                    found.minimum,
                    found.charged,
                )
    return MonthlyMinPass(str(month), tuple(evaluated))


def run_monthly_min(store: Store, now: datetime) -> MonthlyMinPass:
    """The node's pass: the month before ``now``'s, once ``SETTLE_DELAY`` into the new month."""
    month = Month.before(now)
    if now < month.end + SETTLE_DELAY:
        return MonthlyMinPass(str(month), too_early=True)
    return charge_month(store, month, now)


def evaluations(store: Store, month: Month | None = None) -> list[Evaluation]:
    """The recorded evaluations (of one month, or all), by month then account."""
    where = "" if month is None else " WHERE m.month = ?"
    params: tuple[object, ...] = () if month is None else (str(month),)
    with store.db.transaction(write=False) as tx:
        d = tx.dialect
        rows = tx.execute(
            "SELECT m.account_id, a.code, m.month, m.minimum, m.consumption, m.charged, m.payment_id "
            "FROM monthly_min_charge m JOIN account a ON a.id = m.account_id"
            + where
            + " ORDER BY m.month, m.account_id",
            params,
        )
        return [
            Evaluation(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                codec.decode_money(d, r[3]),
                codec.decode_money(d, r[4]),
                codec.decode_money(d, r[5]),
                None if r[6] is None else int(r[6]),
            )
            for r in rows
        ]
