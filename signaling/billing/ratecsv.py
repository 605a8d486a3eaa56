"""Rate import and export as UTF-8 CSV, exactly (the reference's "accuracy lost when importing").

Every number is read from its text with :func:`parse_decimal` — never through a float — so
``0.01234567`` is stored as 0.01234567 and written back as ``0.01234567`` (trailing zeros too).
Prefixes stay text, so leading zeros survive. An import is all or nothing: :func:`import_rates`
returns either every rate of the file or none, with every problem found (line number, column,
what is wrong). The format (columns, defaults, time zone) is described in docs/billing.md.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from signaling.billing.charge import Tariff
from signaling.billing.money import parse_decimal
from signaling.billing.rates import Rate

if TYPE_CHECKING:
    from _csv import Reader as _Reader  # csv.reader's type lives in the private module

#: Columns in the order export writes them.
COLUMNS: Final = (
    "prefix",
    "destination",
    "first_time_rate",
    "first_time_duration",
    "billing_rate",
    "billing_cycle",
    "connection_fee",
    "effective_time",
    "call_type",
    "response_first_time_rate",
    "response_first_time_duration",
    "response_billing_rate",
    "response_billing_cycle",
    "response_connection_fee",
)
REQUIRED: Final = ("prefix", "billing_rate")
_RESPONSE: Final = tuple(name for name in COLUMNS if name.startswith("response_"))
CALL_TYPES: Final = ("", "local", "domestic", "international")
DEFAULT_CYCLE_S: Final = 60
MAX_DURATION_S: Final = 86_400  # a first period or cycle longer than a day is a typo
MAX_PREFIX_LENGTH: Final = 32
MAX_REPORTED_ERRORS: Final = 1000
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"  # as the reference shows it: 2024-01-01 00:00:00
_TIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_PREFIX: Final = re.compile(r"[0-9]+")
_WHOLE: Final = re.compile(r"[0-9]+")
_DELIMITERS: Final = (",", ";", "\t")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    #: The column at fault (normalised header name), None for the whole line.
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class RateImport:
    """The outcome of an import: all the rates, or none and the reasons."""

    rates: tuple[Rate, ...] = ()
    errors: tuple[RowError, ...] = ()
    #: Data rows read (blank lines excluded).
    rows: int = 0
    delimiter: str = ","
    #: The line each rate starts on (``lines[i]`` for ``rates[i]``), for messages about a rate
    #: that a later check (the store's) refuses.
    lines: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(slots=True)
class _Errors:
    items: list[RowError] = field(default_factory=list)
    dropped: int = 0

    def add(self, line: int, column: str | None, message: str) -> None:
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(RowError(line, column, message))
        else:
            self.dropped += 1

    def result(self, rows: int, delimiter: str) -> RateImport:
        items = list(self.items)
        if self.dropped:
            items.append(RowError(items[-1].line, None, f"... and {self.dropped} more errors"))
        return RateImport((), tuple(items), rows, delimiter)


def import_rates(data: bytes | str, *, tz: tzinfo = UTC) -> RateImport:
    """Parse a rate CSV (UTF-8, a header line naming the columns); effective times are in ``tz``."""
    errors = _Errors()
    text = _decode(data, errors)
    if text is None:
        return errors.result(0, ",")
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = _delimiter(header_line, errors)
    if delimiter is None:
        return errors.result(0, ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rates: list[Rate] = []
    lines: list[int] = []
    rows = 0
    try:
        rows = _read(reader, delimiter, tz, errors, rates, lines)
    except csv.Error as exc:
        errors.add(reader.line_num or 1, None, f"malformed CSV: {exc}")
    if errors.items:
        return errors.result(rows, delimiter)
    return RateImport(tuple(rates), (), rows, delimiter, tuple(lines))


def _decode(data: bytes | str, errors: _Errors) -> str | None:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        errors.add(line, None, f"not UTF-8 (byte {byte} of the line); save the file as UTF-8 CSV")
        return None


def _read(  # noqa: PLR0917 (one private helper, its state passed in)
    reader: _Reader, delimiter: str, tz: tzinfo, errors: _Errors, rates: list[Rate], lines: list[int]
) -> int:
    """Read the header and the rows into ``rates``; returns the number of data rows."""
    other = [d for d in _DELIMITERS if d != delimiter]
    columns: list[str] | None = None
    seen: dict[tuple[str, datetime | None], int] = {}
    rows = 0
    line_end = 0
    for record in reader:
        line = line_end + 1  # a record may span lines (quoted newline): report where it starts
        line_end = reader.line_num
        fields = [value.strip() for value in record]
        if not any(fields):
            continue
        if columns is None:
            columns = _header(fields, line, errors)
            if columns is None:
                return 0
            continue
        rows += 1
        if len(fields) != len(columns):
            mixed = next((d for d in other if any(d in value for value in fields)), None)
            hint = f": the line uses {mixed!r} but the file is {delimiter!r}-separated" if mixed else ""
            errors.add(line, None, f"{len(fields)} fields where the header has {len(columns)}{hint}")
            continue
        rate = _rate(dict(zip(columns, fields, strict=True)), line, tz, errors)
        if rate is None:
            continue
        key = (rate.prefix, rate.effective)
        if key in seen:
            message = f"prefix {rate.prefix} with this effective time is already on line {seen[key]}"
            errors.add(line, "prefix", message)
            continue
        seen[key] = line
        rates.append(rate)
        lines.append(line)
    if columns is None:
        errors.add(1, None, "the file is empty (a header line naming the columns is required)")
    return rows


def _delimiter(header: str, errors: _Errors) -> str | None:
    present = [d for d in _DELIMITERS if d in header]
    if len(present) > 1:
        names = " and ".join(repr(d) for d in present)
        errors.add(1, None, f"the header mixes {names}; use one separator throughout")
        return None
    return present[0] if present else ","


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _header(fields: Sequence[str], line: int, errors: _Errors) -> list[str] | None:
    names = [_normalise(value) for value in fields]
    good = True
    for name in names:
        if name not in COLUMNS:
            errors.add(line, name or None, f"unknown column {name!r} (known: {', '.join(COLUMNS)})")
            good = False
    for name in {name for name in names if names.count(name) > 1}:
        errors.add(line, name, "column named twice")
        good = False
    for name in REQUIRED:
        if name not in names:
            errors.add(line, name, "required column is missing")
            good = False
    return names if good else None


def _rate(row: dict[str, str], line: int, tz: tzinfo, errors: _Errors) -> Rate | None:
    before = len(errors.items) + errors.dropped
    prefix = row["prefix"]
    if not _PREFIX.fullmatch(prefix) or len(prefix) > MAX_PREFIX_LENGTH:
        errors.add(
            line,
            "prefix",
            f"{prefix!r} is not a prefix (1-{MAX_PREFIX_LENGTH} digits; leading zeros are kept)",
        )
    call_type = row.get("call_type", "").lower()
    if call_type not in CALL_TYPES:
        errors.add(line, "call_type", f"{call_type!r} is not one of local, domestic, international")
    effective = _time(row.get("effective_time", ""), line, tz, errors)
    connected = _tariff(row, "", line, errors, None)
    response = None
    if any(row.get(name, "") for name in _RESPONSE):
        response = _tariff(row, "response_", line, errors, connected)
    if len(errors.items) + errors.dropped != before or connected is None:
        return None
    return Rate(prefix, connected, response, effective, row.get("destination", ""), call_type)


def _tariff(
    row: dict[str, str], prefix: str, line: int, errors: _Errors, base: Tariff | None
) -> Tariff | None:
    rate = _money(row, prefix + "billing_rate", line, errors, required=True)
    cycle_default = base.billing_cycle if base else DEFAULT_CYCLE_S
    cycle = _seconds(row, prefix + "billing_cycle", line, errors, cycle_default, least=1)
    first_duration = _seconds(row, prefix + "first_time_duration", line, errors, cycle, least=0)
    first_rate = _money(row, prefix + "first_time_rate", line, errors, required=False)
    fee = _money(row, prefix + "connection_fee", line, errors, required=False)
    if rate is None or cycle is None or first_duration is None:
        return None
    return Tariff(
        rate if first_rate is None else first_rate,
        first_duration,
        rate,
        cycle,
        Decimal(0) if fee is None else fee,
    )


def _money(row: dict[str, str], column: str, line: int, errors: _Errors, *, required: bool) -> Decimal | None:
    text = row.get(column, "")
    if text == "":
        if required:
            errors.add(line, column, "a value is required")
        return None
    value = parse_decimal(text)
    if value is None or text[0] in "+-":
        errors.add(
            line,
            column,
            f"{text!r} is not an unsigned decimal number (write 0.0123, no exponent or grouping)",
        )
        return None
    return value


def _seconds(
    row: dict[str, str], column: str, line: int, errors: _Errors, default: int | None, *, least: int
) -> int | None:
    text = row.get(column, "")
    if text == "":
        return default
    if not _WHOLE.fullmatch(text) or len(text) > 6 or not least <= int(text) <= MAX_DURATION_S:
        errors.add(
            line, column, f"{text!r} is not a whole number of seconds from {least} to {MAX_DURATION_S}"
        )
        return None
    return int(text)


def _time(text: str, line: int, tz: tzinfo, errors: _Errors) -> datetime | None:
    if text == "":
        return None
    if _TIME.fullmatch(text):
        try:
            return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=tz)
        except ValueError:
            pass
    errors.add(line, "effective_time", f"{text!r} is not a time like 2024-01-01 00:00:00")
    return None


def export_rates(rates: Iterable[Rate], *, tz: tzinfo = UTC) -> str:
    """The rates as CSV text (encode as UTF-8); :func:`import_rates` reads it back identically."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rate in rates:
        writer.writerow(_row(rate, tz))
    return out.getvalue()


def _row(rate: Rate, tz: tzinfo) -> list[str]:
    row = [
        rate.prefix,
        rate.destination,
        *_tariff_fields(rate.connected),
        "" if rate.effective is None else rate.effective.astimezone(tz).strftime(TIME_FORMAT),
        rate.call_type,
    ]
    row.extend(_tariff_fields(rate.response) if rate.response else [""] * 5)
    return row


def _tariff_fields(tariff: Tariff) -> list[str]:
    return [
        format(tariff.first_time_rate, "f"),
        str(tariff.first_time_duration),
        format(tariff.billing_rate, "f"),
        str(tariff.billing_cycle),
        format(tariff.connection_fee, "f"),
    ]
