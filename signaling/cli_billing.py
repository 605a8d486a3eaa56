"""``softswitch payment-records export``, ``softswitch billing monthly-min`` and
``softswitch savings``.

``payment-records export`` writes the reference's Payment record query as CSV (its nine columns,
signaling/store/paymentcsv.py), with the query's filters: account, type, time range, operator.
``billing monthly-min`` evaluates the monthly minimum consumption of a month that has ended
(signaling/store/monthly_min.py): the job every node runs at the start of a month, for a month
given by hand (a node that was down, a check). Both are safe to repeat: an export changes
nothing, and a month is charged at most once per account. ``savings`` is the off-peak savings
calculator (signaling/billing/savings.py, reference behaviour 49): arithmetic only, no store.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from decimal import Decimal

from signaling.billing.money import parse_decimal
from signaling.billing.savings import savings
from signaling.cli_common import (
    EXIT_USAGE,
    add_store_option,
    fail,
    instant,
    money_text,
    open_for_command,
    print_table,
)
from signaling.cli_csv import _output
from signaling.store import Account, paymentcsv
from signaling.store.accounts import PaymentType
from signaling.store.errors import ValidationError
from signaling.store.monthly_min import Month, charge_month

_TYPES: dict[str, PaymentType] = {
    "payment": "payment",
    "credit": "credit",
    "make-zero": "make_zero",
    "rent": "rent",
    "monthly-min": "monthly_min",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    records = sub.add_parser("payment-records", help="export payment records (CSV)")
    verbs = records.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "export",
        help="write the payment records as CSV (the reference's nine columns)",
        description="Write payment records, oldest first, as UTF-8 CSV with the columns Account "
        "ID, Account Name, Payment Type, Amount, Balance Before, Balance After, Payment Time, "
        "Operator, Memo. Without filters: every record of every account.",
    )
    add_store_option(p)
    p.add_argument("--account", default=None, help="only this account's records (its code); default all")
    p.add_argument("--type", choices=sorted(_TYPES), default=None, help="only this payment type")
    p.add_argument("--from", dest="start", type=instant, default=None, help="from this time (ISO 8601)")
    p.add_argument("--to", dest="end", type=instant, default=None, help="before this time")
    p.add_argument("--operator", default=None, help="only the records this operator (or agent) made")
    p.add_argument("--excel", action="store_true", help="UTF-8 byte-order mark and CRLF, for Excel")
    p.add_argument("file", nargs="?", default="-", help="output file (default: standard output)")
    p.set_defaults(handler=cmd_payment_records_export)

    billing = sub.add_parser("billing", help="billing jobs (monthly minimum consumption)")
    verbs = billing.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "monthly-min",
        help="charge the monthly minimum consumption of a month that ended",
        description="For every customer account with a Monthly Min whose consumption (the fees "
        "of its CDRs of the month, UTC) was below it, charge the difference, once per account "
        "and month (accounts the nodes already evaluated for the month are left alone).",
    )
    add_store_option(p)
    p.add_argument(
        "--month", default=None, help="the month, YYYY-MM (default: the month before the current one)"
    )
    p.set_defaults(handler=cmd_monthly_min)

    p = sub.add_parser(
        "savings",
        help="what moving traffic to an off-peak rate saves a day, a month and a year",
        description="Savings = minutes per day x off-peak share x rate difference per minute; "
        "a month is 30 days, a year 365 (the reference's calculator). Exact decimal arithmetic.",
    )
    p.add_argument("--minutes-per-day", type=_decimal, required=True, help="minutes of traffic a day")
    p.add_argument("--off-peak", type=_decimal, required=True, help="percent of them at the off-peak rate")
    p.add_argument(
        "--rate-difference", type=_decimal, required=True, help="peak rate minus off-peak rate, per minute"
    )
    p.set_defaults(handler=cmd_savings)


def _decimal(text: str) -> Decimal:
    value = parse_decimal(text.replace(",", "").replace("_", ""))
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain decimal number (e.g. 0.002)")
    return value


def cmd_savings(args: argparse.Namespace) -> int:
    try:
        found = savings(args.minutes_per_day, args.off_peak, args.rate_difference)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    print(f"off-peak minutes per day: {_plain(found.off_peak_minutes)}")
    print(f"savings per day:          {money_text(found.per_day)}")
    print(f"savings per month (x30):  {money_text(found.per_month)}")
    print(f"savings per year (x365):  {money_text(found.per_year)}")
    return 0


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def cmd_payment_records_export(args: argparse.Namespace) -> int:
    if args.start and args.end and args.end <= args.start:
        fail(f"--to {args.end.isoformat()} is not after --from {args.start.isoformat()}", EXIT_USAGE)
    with open_for_command(args) as store:
        admin = store.admin()
        accounts = {a.id: a for a in admin.list(Account)}
        account_id = admin.find_account(args.account).id if args.account else None
        found = admin.payments(
            account_id=account_id,
            kind=_TYPES[args.type] if args.type else None,
            start=args.start,
            end=args.end,
            operator=args.operator,
        )
    with _output(args.file) as out:
        count = paymentcsv.write(out, found, accounts, excel=args.excel)
    if args.file != "-":
        print(f"{count} payment records written to {args.file}", file=sys.stderr)
    return 0


def cmd_monthly_min(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        month = Month.parse(args.month) if args.month else Month.before(now)
    except ValidationError as exc:
        fail(str(exc), EXIT_USAGE)
    with open_for_command(args) as store:
        done = charge_month(store, month, now)
    rows = [
        [e.code, money_text(e.minimum), money_text(e.consumption), money_text(e.charged)]
        for e in done.evaluated
    ]
    if rows:
        print_table(rows, ["ACCOUNT", "MONTHLY MIN", "CONSUMPTION", "CHARGED"])
    charged = len(done.charged)
    print(f"monthly minimum {month}: {len(rows)} accounts evaluated, {charged} charged", file=sys.stderr)
    return 0
