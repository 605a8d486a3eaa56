"""``softswitch rates import|export`` and ``softswitch cdrs export``: UTF-8 CSV in and out.

Rates go through :mod:`signaling.billing.ratecsv` (the format of docs/billing.md §4): every
number read from its text, never through a float, and an import is all or nothing — a file with
any bad row is reported line by line and nothing is stored. Rows the CSV reader accepts but the
store refuses (more decimal places than it keeps, a prefix and effective time the group already
has) are reported the same way, with their line, before anything is written.

Output files are written to a temporary file beside the target and renamed into place, so a
failed export never leaves half a file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signaling.billing import ratecsv
from signaling.billing.charge import Tariff
from signaling.billing.rates import Rate as BillingRate
from signaling.cli_common import EXIT_USAGE, add_store_option, day, fail, open_for_command
from signaling.progress import Progress
from signaling.store import Account, Admin, Cdr, Rate, RateGroup, Store
from signaling.store.codec import EPOCH
from signaling.store.errors import ValidationError
from signaling.store.money import MONEY_LIMIT, MONEY_SCALE, RATE_LIMIT, RATE_SCALE, check_scaled

if TYPE_CHECKING:
    from _csv import Writer as CsvWriter  # csv.writer's type lives in the private module

#: Rates stored per admin call inside the one import transaction (the progress bar's step).
IMPORT_CHUNK = 1000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rates = sub.add_parser("rates", help="import and export a rate group's rates (CSV)")
    verbs = rates.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser(
        "import",
        help="import rates from a UTF-8 CSV file (all or nothing)",
        description="Read FILE (UTF-8 CSV with a header naming the columns; docs/billing.md §4) "
        "into rate group GROUP. Any bad row is reported with its line number and nothing is "
        "imported.",
    )
    add_store_option(p)
    p.add_argument("group", help="rate group name")
    p.add_argument("file", help="the CSV file ('-' for standard input)")
    p.add_argument("--create", action="store_true", help="create the rate group if it does not exist")
    p.add_argument(
        "--replace", action="store_true", help="replace the group's rates (in the same transaction)"
    )
    p.add_argument("--tz", type=_zone, default=UTC, help="time zone of effective times (default UTC)")
    p.set_defaults(handler=cmd_rates_import)

    p = verbs.add_parser("export", help="write a rate group's rates as CSV")
    add_store_option(p)
    p.add_argument("group", help="rate group name")
    p.add_argument("file", nargs="?", default="-", help="output file (default: standard output)")
    p.add_argument("--tz", type=_zone, default=UTC, help="time zone of effective times (default UTC)")
    p.set_defaults(handler=cmd_rates_export)

    cdrs = sub.add_parser("cdrs", help="export call detail records (CSV)")
    verbs = cdrs.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "export",
        help="write the CDRs of some days as CSV",
        description="Write the CDRs of the days --from..--to (inclusive; a CDR's day is the UTC "
        "date of its end) as UTF-8 CSV, one row per call attempt.",
    )
    add_store_option(p)
    p.add_argument(
        "--from", dest="first", type=day, default=None, help="first day, YYYY-MM-DD (default today)"
    )
    p.add_argument("--to", dest="last", type=day, default=None, help="last day (default: the first)")
    p.add_argument("--account", default=None, help="only this customer account's calls (its code)")
    p.add_argument("file", nargs="?", default="-", help="output file (default: standard output)")
    p.set_defaults(handler=cmd_cdrs_export)


def _zone(text: str) -> tzinfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time zone (e.g. UTC, Asia/Dhaka)") from None


@contextlib.contextmanager
def _output(target: str) -> Iterator[IO[str]]:
    """Standard output, or a file that appears whole (temp file + rename) or not at all."""
    if target == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(target)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        fail(f"{target}: no such directory {str(directory)!r}", EXIT_USAGE)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _find_group(admin: Admin, name: str) -> RateGroup | None:
    return next((g for g in admin.list(RateGroup) if g.name == name), None)


# -- rates ------------------------------------------------------------------------------------------


def _store_rate(group_id: int, rate: BillingRate) -> Rate:
    c, r = rate.connected, rate.response
    return Rate(
        group_id,
        rate.prefix,
        destination=rate.destination,
        effective_time=rate.effective or EPOCH,
        first_time_rate=c.first_time_rate,
        first_time_duration=c.first_time_duration,
        billing_rate=c.billing_rate,
        billing_cycle=c.billing_cycle,
        connection_fee=c.connection_fee,
        call_type=rate.call_type,  # type: ignore[arg-type]  # checked by the CSV reader
        response_first_time_rate=r.first_time_rate if r else None,
        response_first_time_duration=r.first_time_duration if r else None,
        response_billing_rate=r.billing_rate if r else None,
        response_billing_cycle=r.billing_cycle if r else None,
        response_connection_fee=r.connection_fee if r else None,
    )


def _plain(value: Decimal) -> Decimal:
    """The stored value without the store's padding zeros (0.0200000000 -> 0.02): same number."""
    normal = value.normalize()
    return normal if normal.as_tuple().exponent <= 0 else normal.quantize(Decimal(1))  # type: ignore[operator]


def _billing_rate(rate: Rate) -> BillingRate:
    connected = Tariff(
        _plain(rate.first_time_rate),
        rate.first_time_duration,
        _plain(rate.billing_rate),
        rate.billing_cycle,
        _plain(rate.connection_fee),
    )
    response = None
    if rate.has_response_rate:
        assert rate.response_first_time_rate is not None and rate.response_billing_rate is not None
        assert rate.response_connection_fee is not None
        response = Tariff(
            _plain(rate.response_first_time_rate),
            rate.response_first_time_duration or 0,
            _plain(rate.response_billing_rate),
            rate.response_billing_cycle or 1,
            _plain(rate.response_connection_fee),
        )
    effective = None if rate.effective_time == EPOCH else rate.effective_time
    return BillingRate(rate.prefix, connected, response, effective, rate.destination, rate.call_type)


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        fail(f"{name}: {exc.strerror}", EXIT_USAGE)


def _problems(count: int) -> str:
    return f"{count} problem{'' if count == 1 else 's'}"


def _report(name: str, problems: Sequence[str]) -> None:
    for problem in problems:
        print(f"{name}: {problem}", file=sys.stderr)


def cmd_rates_import(args: argparse.Namespace) -> int:
    data = _read_input(args.file)
    parsed = ratecsv.import_rates(data, tz=args.tz)
    if not parsed.ok:
        _report(args.file, [str(e) for e in parsed.errors])
        fail(f"{_problems(len(parsed.errors))} in {args.file}; nothing imported")
    with open_for_command(args) as store:
        admin = store.admin()
        group = _find_group(admin, args.group)
        if group is None and not args.create:
            fail(f"no rate group {args.group!r}: add --create to create it")
        existing = admin.rates(group.id) if group is not None else []
        lined, problems = _to_store(parsed)
        rows = [rate for _, rate in lined]
        if not args.replace:
            taken = {(r.prefix, r.effective_time) for r in existing}
            for line, rate in lined:
                if (rate.prefix, rate.effective_time) in taken:
                    problems.append(
                        f"line {line}, column prefix: prefix {rate.prefix} with this effective time is "
                        f"already in rate group {args.group} (--replace replaces the group's rates)"
                    )
        if problems:
            _report(args.file, problems)
            fail(f"{_problems(len(problems))} in {args.file}; nothing imported")
        with store.db.transaction(), Progress("rates import", len(rows)) as bar:
            if group is None:
                group = admin.create(RateGroup(args.group))
            if args.replace:
                for old in existing:
                    admin.delete(Rate, old.id)
            for start in range(0, len(rows), IMPORT_CHUNK):
                chunk = [replace(r, rate_group_id=group.id) for r in rows[start : start + IMPORT_CHUNK]]
                admin.add_rates(chunk)
                bar.advance(len(chunk))
    replaced = f", {len(existing)} replaced" if args.replace and existing else ""
    print(f"rate group {args.group}: {len(rows)} rates imported from {args.file}{replaced}")
    return 0


def _check_scales(rate: BillingRate) -> None:
    """The store's decimal places, checked column by column in the order a reader looks for the
    cause: a billing rate with too many places is reported as such, not as the first-time rate
    that defaulted to it."""
    tariffs = [("", rate.connected), *([("response_", rate.response)] if rate.response else [])]
    for prefix, tariff in tariffs:
        for name, scale, limit in (
            ("billing_rate", RATE_SCALE, RATE_LIMIT),
            ("first_time_rate", RATE_SCALE, RATE_LIMIT),
            ("connection_fee", MONEY_SCALE, MONEY_LIMIT),
        ):
            check_scaled(getattr(tariff, name), scale, limit, prefix + name)


def _to_store(parsed: ratecsv.RateImport) -> tuple[list[tuple[int, Rate]], list[str]]:
    """The store's records of the parsed rates with their lines (group to be set), and the rows
    the store's checks refuse."""
    rows: list[tuple[int, Rate]] = []
    problems: list[str] = []
    for line, rate in zip(parsed.lines, parsed.rates, strict=True):
        try:
            _check_scales(rate)
            rows.append((line, _store_rate(0, rate)))
        except ValidationError as exc:
            problems.append(f"line {line}, column {exc.field}: {exc.reason}")
    return rows, problems


def cmd_rates_export(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin()
        group = _find_group(admin, args.group)
        if group is None:
            known = ", ".join(g.name for g in admin.list(RateGroup)) or "none yet"
            fail(f"no rate group {args.group!r} (known: {known})")
        stored = admin.rates(group.id)
    with Progress("rates export", len(stored)) as bar:
        text = ratecsv.export_rates(bar.iterate([_billing_rate(r) for r in stored]), tz=args.tz)
        with _output(args.file) as out:
            out.write(text)
    if args.file != "-":
        print(f"rate group {args.group}: {len(stored)} rates written to {args.file}", file=sys.stderr)
    return 0


# -- CDRs -------------------------------------------------------------------------------------------

#: CDR columns in the order they are written; account ids are written as account codes.
CDR_COLUMNS = (
    "call_id",
    "start_time",
    "ring_time",
    "answer_time",
    "end_time",
    "caller",
    "caller_billing",
    "caller_out",
    "callee",
    "callee_billing",
    "callee_out",
    "source_ip",
    "source_port",
    "mapping_gateway",
    "account",
    "phone",
    "routing_gateway",
    "clearing_account",
    "gateways_tried",
    "attempts",
    "hold_ms",
    "billed_seconds",
    "free_seconds",
    "rate_group",
    "rate_prefix",
    "rate_source",
    "first_time_rate",
    "first_time_duration",
    "billing_rate",
    "billing_cycle",
    "connection_fee",
    "fee",
    "vendor_rate_prefix",
    "vendor_cost",
    "margin",
    "termination_reason",
    "ended_by",
    "sip_code",
    "vendor_sip_code",
    "pdd_ms",
    "codec_in",
    "codec_out",
    "media_mode",
    "media_quality",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _cdr_row(cdr: Cdr, codes: dict[int, str]) -> list[str]:
    row: list[str] = []
    for name in CDR_COLUMNS:
        if name == "account":
            value: object = codes.get(cdr.account_id, "") if cdr.account_id else ""
        elif name == "clearing_account":
            value = codes.get(cdr.clearing_account_id, "") if cdr.clearing_account_id else ""
        else:
            value = getattr(cdr, name)
        row.append(_cell(value))
    return row


def cmd_cdrs_export(args: argparse.Namespace) -> int:
    first = args.first or datetime.now(UTC).date()
    last = args.last or first
    if last < first:
        fail(f"--to {last} is before --from {first}", EXIT_USAGE)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    count = 0
    with open_for_command(args) as store:
        admin = store.admin()
        codes = {a.id: a.code for a in admin.list(Account)}
        account_id = admin.find_account(args.account).id if args.account else None
        with _output(args.file) as out, Progress("cdrs export", len(days)) as bar:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CDR_COLUMNS)
            for one_day in days:
                count += _export_day(store, one_day, account_id, codes, writer)
                bar.advance()
    if args.file != "-":
        print(f"{count} CDRs of {first}..{last} written to {args.file}", file=sys.stderr)
    return 0


def _export_day(
    store: Store, one_day: date, account_id: int | None, codes: dict[int, str], writer: CsvWriter
) -> int:
    rows = store.cdrs(one_day, one_day, account_id=account_id)
    for cdr in rows:
        writer.writerow(_cdr_row(cdr, codes))
    return len(rows)
