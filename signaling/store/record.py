"""Typed records: frozen dataclasses whose fields say how they are checked and stored.

A record's annotations are the schema in Python: ``str``, ``int``, ``bool``, ``datetime`` (aware,
kept in UTC), ``date``, ``Decimal`` (with :func:`money` or :func:`rate` saying which scale),
``tuple[str, ...]`` / ``tuple[int, ...]`` (stored as JSON lists), ``Literal[...]`` (one of the
listed words) and ``X | None`` (nullable). Constructing a record checks every field and raises
:class:`~signaling.store.errors.ValidationError` naming the first bad one, so an invalid record
never exists; each record class adds its own rules in ``check()``.

``Annotated`` extras the store reads: :data:`Money` / :data:`RateValue` (which decimal scale),
:class:`Ref` (the table an ``*_id`` field points to, checked to exist before a write) and
:class:`Link` (a tuple of ids kept in a link table rather than a column).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from signaling.store import money as money_
from signaling.store.codec import Kind
from signaling.store.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Link:
    """Annotation of a tuple-of-ids field stored as rows ``(owner_column, target_column[,
    position])`` of a link table rather than in a column."""

    table: str
    owner_column: str
    target_column: str
    target_table: str
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class Ref:
    """Annotation of an id field pointing at ``table``; the store checks the record exists."""

    table: str


#: A money amount: 6 decimal places.
Money = Annotated[Decimal, Kind.MONEY]
#: A per-minute rate or a multiplier: 10 decimal places.
RateValue = Annotated[Decimal, Kind.RATE]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    base: type
    nullable: bool
    choices: tuple[str, ...] = ()
    item: type | None = None
    ref: str | None = None
    link: Link | None = None


def _spec_of(name: str, hint: object) -> FieldSpec:  # noqa: PLR0912 (one branch per type form)
    kind: Kind | None = None
    ref: str | None = None
    link: Link | None = None
    nullable = False
    while True:  # peel Annotated[...] and X | None, in either order
        origin = typing.get_origin(hint)
        if origin is Annotated:
            hint, *extras = typing.get_args(hint)
            for extra in extras:
                if isinstance(extra, Kind):
                    kind = extra
                elif isinstance(extra, Ref):
                    ref = extra.table
                elif isinstance(extra, Link):
                    link = extra
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            nullable = nullable or len(args) < len(typing.get_args(hint))
            hint = args[0]
        else:
            break
    if origin is Literal:
        choices = tuple(str(a) for a in typing.get_args(hint))
        return FieldSpec(name, Kind.TEXT, str, nullable, choices=choices)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return FieldSpec(name, Kind.JSON, tuple, nullable, item=item, link=link)
    if hint is Decimal:
        if kind not in (Kind.MONEY, Kind.RATE):
            raise TypeError(f"{name}: a Decimal field must be Money or RateValue")
        return FieldSpec(name, kind, Decimal, nullable)
    kinds: dict[object, Kind] = {
        str: Kind.TEXT,
        bool: Kind.BOOL,
        int: Kind.INT,
        datetime: Kind.TIME,
        date: Kind.DAY,
    }
    if hint not in kinds:
        raise TypeError(f"{name}: unsupported field type {hint!r}")
    assert isinstance(hint, type)
    return FieldSpec(name, kinds[hint], hint, nullable, ref=ref)


_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


def specs(cls: type) -> tuple[FieldSpec, ...]:
    """Every field of record class ``cls`` with how it is checked and stored."""
    found = _SPECS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = tuple(_spec_of(f.name, hints[f.name]) for f in dataclasses.fields(cls))
        _SPECS[cls] = found
    return found


def _check_value(spec: FieldSpec, value: object) -> object:  # noqa: PLR0911, PLR0912 (one branch per kind)
    name = spec.name
    if value is None:
        if spec.nullable:
            return None
        raise ValidationError(name, "required")
    if spec.choices:
        if value not in spec.choices:
            raise ValidationError(name, f"expected one of {', '.join(spec.choices)}, not {value!r}")
        return value
    if spec.kind in (Kind.MONEY, Kind.RATE):
        number = money_.as_decimal(value, name)
        if spec.kind is Kind.MONEY:
            return money_.check_scaled(number, money_.MONEY_SCALE, money_.MONEY_LIMIT, name)
        return money_.check_scaled(number, money_.RATE_SCALE, money_.RATE_LIMIT, name)
    if spec.kind is Kind.TIME:
        if not isinstance(value, datetime):
            raise ValidationError(name, "expected a date and time")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(name, "needs a time zone (times are stored in UTC)")
        return value.astimezone(UTC)
    if spec.kind is Kind.DAY:
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValidationError(name, "expected a date")
        return value
    if spec.kind is Kind.JSON:
        if isinstance(value, str | bytes) or not isinstance(value, tuple | list | frozenset | set):
            raise ValidationError(name, "expected a list")
        items = tuple(sorted(value)) if isinstance(value, frozenset | set) else tuple(value)
        for item in items:
            if spec.item is int and (isinstance(item, bool) or not isinstance(item, int)):
                raise ValidationError(name, f"expected whole numbers, got {item!r}")
            if spec.item is str and not isinstance(item, str):
                raise ValidationError(name, f"expected text items, got {item!r}")
        return items
    if spec.kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise ValidationError(name, "expected true or false")
        return value
    if spec.kind is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(name, "expected a whole number")
        return value
    if not isinstance(value, str):
        raise ValidationError(name, "expected text")
    return value


class Record:
    """Base of the stored dataclasses: checks every field on construction."""

    __slots__ = ()
    #: The table the record is stored in.
    TABLE: ClassVar[str] = ""
    #: Fields a plain update never writes (changed by their own operation, e.g. a payment).
    READ_ONLY: ClassVar[tuple[str, ...]] = ()
    #: Field sets unique in the table; a clash is reported on the first field of the set.
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def __post_init__(self) -> None:
        for spec in specs(type(self)):
            value = getattr(self, spec.name)
            checked = _check_value(spec, value)
            if checked is not value:
                object.__setattr__(self, spec.name, checked)
        self.check()

    def check(self) -> None:
        """Rules of this record beyond its field types; raise ValidationError naming the field."""


# Small shared rules -------------------------------------------------------------------------


def at_least(name: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise ValidationError(name, f"must be at least {low}")


def between(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ValidationError(name, f"must be in {low}..{high}")


def not_blank(name: str, value: str) -> None:
    if not value.strip():
        raise ValidationError(name, "required")


def non_negative(name: str, value: Decimal) -> None:
    if value < 0:
        raise ValidationError(name, "must not be negative")


DIGITS_EXTRA = "*#+"


def digit_prefixes(name: str, values: tuple[str, ...]) -> None:
    """Number prefixes: digits, with ``*``, ``#`` and a leading ``+`` as carriers use them."""
    for value in values:
        if not value or any(not (c.isdigit() or c in DIGITS_EXTRA) for c in value):
            raise ValidationError(name, f"{value!r} is not a number prefix (digits, *, #, +)")
