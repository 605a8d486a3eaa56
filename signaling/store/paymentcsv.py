"""Payment records as CSV: the reference's "Payment record" export (CAP-6.5, T50).

The nine columns, in the reference's order and with its names: ``Account ID | Account Name |
Payment Type | Amount | Balance Before | Balance After | Payment Time | Operator | Memo``.
Amounts are written exactly as stored (7 places, plain decimal notation, never through a
float); the payment time is ISO 8601 in UTC; the payment type is the reference's word
(``Payment``, ``Credit``, ``Make Zero``, and ours ``Rent`` and ``Monthly Min``). Used by
``softswitch payment-records export`` and ``GET /api/v1/payments.csv``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import IO

from signaling.store.accounts import Account, Payment

COLUMNS = (
    "Account ID",
    "Account Name",
    "Payment Type",
    "Amount",
    "Balance Before",
    "Balance After",
    "Payment Time",
    "Operator",
    "Memo",
)

TYPE_NAMES = {
    "payment": "Payment",
    "credit": "Credit",
    "make_zero": "Make Zero",
    "rent": "Rent",
    "monthly_min": "Monthly Min",
}

#: What Excel needs to read a CSV file as UTF-8 (``excel=True``).
BOM = "\ufeff"


def row(payment: Payment, account: Account | None) -> list[str]:
    when = payment.payment_time
    return [
        account.code if account else str(payment.account_id),
        account.name if account else "",
        TYPE_NAMES.get(payment.type, payment.type),
        format(payment.amount, "f"),
        format(payment.balance_before, "f"),
        format(payment.balance_after, "f"),
        when.astimezone(UTC).isoformat(timespec="seconds") if when else "",
        payment.operator,
        payment.memo,
    ]


def write(
    out: IO[str], payments: Iterable[Payment], accounts: Mapping[int, Account], *, excel: bool = False
) -> int:
    """Write the header and one row per record to ``out``; how many records. ``excel``: a
    UTF-8 byte-order mark first and CRLF line ends (what Excel expects of a CSV file)."""
    if excel:
        out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n" if excel else "\n")
    writer.writerow(COLUMNS)
    count = 0
    for payment in payments:
        writer.writerow(row(payment, accounts.get(payment.account_id)))
        count += 1
    return count


def export(payments: Iterable[Payment], accounts: Mapping[int, Account], *, excel: bool = False) -> str:
    """The CSV text of ``payments``."""
    out = io.StringIO()
    write(out, payments, accounts, excel=excel)
    return out.getvalue()
