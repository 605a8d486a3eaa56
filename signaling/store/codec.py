"""Column kinds and how each dialect stores them.

| kind  | Python               | SQLite                         | PostgreSQL        |
|-------|----------------------|--------------------------------|-------------------|
| TEXT  | str                  | TEXT                           | TEXT              |
| INT   | int                  | INTEGER                        | BIGINT / INTEGER  |
| BOOL  | bool                 | INTEGER 0/1                    | BOOLEAN           |
| MONEY | Decimal, 6 places    | INTEGER micro-units            | NUMERIC(20,6)     |
| RATE  | Decimal, 10 places   | INTEGER units of 10**-10       | NUMERIC(18,10)    |
| TIME  | datetime (UTC, aware)| INTEGER microseconds, Unix UTC | TIMESTAMPTZ       |
| DAY   | date                 | TEXT ``YYYY-MM-DD``            | DATE              |
| JSON  | tuple of str or int  | TEXT (JSON array)              | TEXT (JSON array) |

Microseconds on SQLite match PostgreSQL's resolution, so a time read back equals the time
written on both. Lists are JSON text on both databases: they are read whole into the in-memory
routing tables, never searched in SQL, and one representation keeps the two schemas alike.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from signaling.store import money

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Kind(enum.Enum):
    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    MONEY = "money"
    RATE = "rate"
    TIME = "time"
    DAY = "day"
    JSON = "json"


class Dialect(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


def time_to_micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_to_time(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def encode(dialect: Dialect, kind: Kind, value: object) -> object:  # noqa: PLR0911 (one return per kind)
    """Python value (already checked by its record) → driver parameter."""
    if value is None:
        return None
    if kind is Kind.JSON:
        assert isinstance(value, tuple | list)
        return json.dumps(list(value), separators=(",", ":"))
    if dialect is Dialect.POSTGRESQL:
        return value
    if kind in (Kind.MONEY, Kind.RATE):
        assert isinstance(value, Decimal)
        return money.to_units(value, money.MONEY_SCALE if kind is Kind.MONEY else money.RATE_SCALE)
    if kind is Kind.TIME:
        assert isinstance(value, datetime)
        return time_to_micros(value)
    if kind is Kind.DAY:
        assert isinstance(value, date)
        return value.isoformat()
    if kind is Kind.BOOL:
        return 1 if value else 0
    return value


def decode(dialect: Dialect, kind: Kind, value: object) -> object:  # noqa: PLR0911 (one return per kind)
    """Driver value → Python value."""
    if value is None:
        return None
    if kind is Kind.JSON:
        assert isinstance(value, str)
        return tuple(json.loads(value))
    if kind in (Kind.MONEY, Kind.RATE):
        scale = money.MONEY_SCALE if kind is Kind.MONEY else money.RATE_SCALE
        if isinstance(value, int):
            return money.from_units(value, scale)
        assert isinstance(value, Decimal)
        return money.quantize(value, scale)
    if kind is Kind.TIME:
        if isinstance(value, int):
            return micros_to_time(value)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    if kind is Kind.DAY:
        if isinstance(value, str):
            return date.fromisoformat(value)
        assert isinstance(value, date)
        return value
    if kind is Kind.BOOL:
        return bool(value)
    return value


def decode_money(dialect: Dialect, value: object) -> Decimal:
    out = decode(dialect, Kind.MONEY, value)
    assert isinstance(out, Decimal)
    return out


def decode_time(dialect: Dialect, value: object) -> datetime | None:
    out = decode(dialect, Kind.TIME, value)
    assert out is None or isinstance(out, datetime)
    return out


def decode_day(dialect: Dialect, value: object) -> date:
    out = decode(dialect, Kind.DAY, value)
    assert isinstance(out, date)
    return out
