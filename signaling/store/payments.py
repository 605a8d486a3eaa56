"""Payment operations: each changes an account and writes its payment record in one transaction.

The account row is read with the write lock held (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE``
on PostgreSQL), so concurrent payments on one account queue: every record's balance-before is
the previous record's balance-after, and no payment is lost (tests/store/test_payments_*).

Rules where the reference is silent (docs/storage.md, "Payments"):

- **Payment** adds ``amount`` (negative = the reference's negative adjustment). A positive
  payment on a customer account that has an expiry moves it to
  ``max(expiry, payment time) + SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY`` days; 0 days leaves it.
- **Credit** sets the overdraft limit (it does not add to it); the balance is unchanged and the
  record's amount is the new limit.
- **Make zero** sets the balance to 0; the record's amount is minus the old balance.
- **Rent** and **monthly minimum** charges (the billing jobs) subtract a positive sum; the record
  amount is negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from signaling.store import codec, parameters, table
from signaling.store.accounts import Payment, PaymentType
from signaling.store.codec import Kind
from signaling.store.db import Tx
from signaling.store.errors import NotFoundError, ValidationError
from signaling.store.money import MONEY_LIMIT


@dataclass(frozen=True, slots=True)
class _AccountState:
    kind: str
    balance: Decimal
    credit_limit: Decimal
    expiry: datetime | None


def _lock_account(tx: Tx, account_id: int) -> _AccountState:
    sql = f"SELECT kind, balance, credit_limit, expiry FROM account WHERE id = ?{tx.for_update}"  # noqa: S608
    row = tx.one(sql, (account_id,))
    if row is None:
        raise NotFoundError(f"no account with id {account_id}")
    return _AccountState(
        kind=str(row[0]),
        balance=codec.decode_money(tx.dialect, row[1]),
        credit_limit=codec.decode_money(tx.dialect, row[2]),
        expiry=codec.decode_time(tx.dialect, row[3]),
    )


def _expiry_days(tx: Tx) -> int:
    name = "SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY"
    stored = tx.scalar("SELECT value FROM system_parameter WHERE name = ?", (name,))
    value = parameters.server_value(name, None if stored is None else str(stored))
    assert isinstance(value, int)
    return value


def apply(
    tx: Tx,
    account_id: int,
    kind: PaymentType,
    amount: Decimal,
    *,
    operator: str,
    memo: str,
    now: datetime,
    extend_expiry: bool = True,
) -> Payment:
    """Perform one payment operation (see the module doc) and record it."""
    state = _lock_account(tx, account_id)
    balance, credit, expiry = state.balance, state.credit_limit, state.expiry
    if kind == "payment":
        if amount == 0:
            raise ValidationError("amount", "a payment must not be zero")
        balance = balance + amount
        days = _expiry_days(tx)
        if extend_expiry and amount > 0 and state.kind == "customer" and expiry is not None and days > 0:
            expiry = max(expiry, now) + timedelta(days=days)
    elif kind == "credit":
        if amount < 0:
            raise ValidationError("amount", "a credit limit must not be negative")
        credit = amount
    elif kind == "make_zero":
        amount = -balance
        balance = Decimal(0)
    else:
        if amount <= 0:
            raise ValidationError("amount", f"a {kind} charge must be positive")
        balance = balance - amount
        amount = -amount
    if abs(balance) >= MONEY_LIMIT:
        raise ValidationError("amount", "the balance would leave the storable range")
    record = Payment(
        account_id=account_id,
        type=kind,
        amount=amount,
        balance_before=state.balance,
        balance_after=balance,
        credit_before=state.credit_limit,
        credit_after=credit,
        expiry_before=state.expiry,
        expiry_after=expiry,
        payment_time=now,
        operator=operator,
        memo=memo,
    )
    tx.execute(
        "UPDATE account SET balance = ?, credit_limit = ?, expiry = ? WHERE id = ?",
        (
            codec.encode(tx.dialect, Kind.MONEY, balance),
            codec.encode(tx.dialect, Kind.MONEY, credit),
            codec.encode(tx.dialect, Kind.TIME, expiry),
            account_id,
        ),
    )
    record_id = table.insert(tx, record)
    return table.get(tx, Payment, record_id)


def query(
    tx: Tx,
    *,
    accounts: set[int] | None,
    account_id: int | None = None,
    kind: PaymentType | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    operator: str | None = None,
) -> list[Payment]:
    """Payment records, oldest first, filtered as the reference's Payment record query
    (account, [start, end), type, operator); ``accounts`` limits to an agent's subtree."""
    where: list[str] = []
    params: list[object] = []
    if accounts is not None:
        if not accounts:
            return []
        where.append(f"account_id IN ({', '.join('?' for _ in accounts)})")
        params.extend(sorted(accounts))
    if account_id is not None:
        where.append("account_id = ?")
        params.append(account_id)
    if kind is not None:
        where.append("type = ?")
        params.append(kind)
    if start is not None:
        where.append("payment_time >= ?")
        params.append(codec.encode(tx.dialect, Kind.TIME, start))
    if end is not None:
        where.append("payment_time < ?")
        params.append(codec.encode(tx.dialect, Kind.TIME, end))
    if operator is not None:
        where.append("operator = ?")
        params.append(operator)
    return table.select(tx, Payment, " AND ".join(where), params, order="payment_time, id")


def purge(tx: Tx, before: datetime, *, operator: str, now: datetime) -> int:
    """Delete records older than ``before`` (retention), logging the purge first; the count. A
    purge that finds nothing to delete changes nothing and logs nothing (the hourly retention
    pass of every node would otherwise log one a node an hour)."""
    if before > now:
        raise ValidationError("before", "cannot purge records from the future")
    cutoff = codec.encode(tx.dialect, Kind.TIME, before)
    count = int(tx.scalar("SELECT count(*) FROM payment WHERE payment_time < ?", (cutoff,)))
    if not count:
        return 0
    tx.execute(
        "INSERT INTO payment_purge (cutoff, operator, purge_time, deleted) VALUES (?, ?, ?, ?)",
        (cutoff, operator, codec.encode(tx.dialect, Kind.TIME, now), count),
    )
    tx.execute("DELETE FROM payment WHERE payment_time < ?", (cutoff,))
    return count
