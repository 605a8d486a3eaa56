"""Rate groups and rates, work calendars, period rates and packages.

- A **rate group** (the reference's rate table) holds **rates**: a destination prefix and the
  charge structure of the reference (first-time rate for the first ``first_time_duration``
  seconds, then ``billing_rate`` per ``billing_cycle`` seconds, plus a connection fee), from its
  ``effective_time`` on. Rates are per minute. Several versions of one prefix may exist with
  different effective times.
- A **work calendar** says when it is working time: working weekdays, working hours
  ``[work_start, work_end)`` in the calendar's time zone, and holidays (non-working all day).
  The classification itself is signaling.billing.workcalendar's.
- A **period rate** (the reference's Package Period Rate) binds a calendar to what applies in
  working and in non-working time: a rate group, or (without one) a multiplier of the account's
  own rates. The reference's two forms both fit: day/night rate tables (§C.3) and a "Weekend
  Special" package (the account's rates times 1.0 on working days, 0.5 otherwise).
- A **package** adds a monthly rent, free seconds and free credit (for ``free_prefixes``, all
  destinations when empty) and optionally a period rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signaling.store.codec import EPOCH
from signaling.store.errors import ValidationError
from signaling.store.record import (
    Link,
    Money,
    RateValue,
    Record,
    Ref,
    at_least,
    digit_prefixes,
    non_negative,
    not_blank,
)

CallType = Literal["", "local", "domestic", "international"]


@dataclass(frozen=True, slots=True)
class RateGroup(Record):
    TABLE: ClassVar[str] = "rate_group"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("name",),)

    name: str
    #: "Equivalent time to 60 seconds" (calling-card display only).
    equivalent_seconds: int = 60
    memo: str = ""
    #: Agents authorised to see and use the group (reference CAP-5.1 "Authorization").
    agents: Annotated[
        tuple[int, ...], Link("rate_group_agent", "rate_group_id", "account_id", "account")
    ] = ()
    id: int = 0

    def check(self) -> None:
        not_blank("name", self.name)
        at_least("equivalent_seconds", self.equivalent_seconds, 1)


@dataclass(frozen=True, slots=True)
class Rate(Record):
    """One rate entry. The first five charge fields are the **rate of connected**; the
    ``response_*`` fields, all set or all None, are the optional **rate of response**, charged
    when the callee answered (200 OK) but the call never connected (reference CAP-5.6; the rule
    is docs/billing.md's)."""

    TABLE: ClassVar[str] = "rate"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("prefix", "rate_group_id", "effective_time"),)

    rate_group_id: Annotated[int, Ref("rate_group")]
    prefix: str = ""
    #: Destination name ("UK Mobile").
    destination: str = ""
    #: In effect from this time; 1970-01-01 (the default) = always.
    effective_time: datetime = EPOCH
    first_time_rate: RateValue = Decimal(0)
    first_time_duration: int = 60
    billing_rate: RateValue = Decimal(0)
    billing_cycle: int = 60
    connection_fee: Money = Decimal(0)
    #: "" = any call type.
    call_type: CallType = ""
    response_first_time_rate: RateValue | None = None
    response_first_time_duration: int | None = None
    response_billing_rate: RateValue | None = None
    response_billing_cycle: int | None = None
    response_connection_fee: Money | None = None
    id: int = 0

    def check(self) -> None:
        digit_prefixes("prefix", (self.prefix,))
        for name in ("first_time_rate", "billing_rate", "connection_fee", *_RESPONSE_MONEY):
            value = getattr(self, name)
            if value is not None:
                non_negative(name, value)
        at_least("first_time_duration", self.first_time_duration, 0)
        at_least("billing_cycle", self.billing_cycle, 1)
        at_least("response_first_time_duration", self.response_first_time_duration, 0)
        at_least("response_billing_cycle", self.response_billing_cycle, 1)
        given = [name for name in _RESPONSE_FIELDS if getattr(self, name) is not None]
        if given and len(given) != len(_RESPONSE_FIELDS):
            missing = next(name for name in _RESPONSE_FIELDS if getattr(self, name) is None)
            raise ValidationError(missing, "a rate of response needs all five response_* fields")

    @property
    def has_response_rate(self) -> bool:
        return self.response_billing_rate is not None


_RESPONSE_MONEY = ("response_first_time_rate", "response_billing_rate", "response_connection_fee")
_RESPONSE_FIELDS = (
    "response_first_time_rate",
    "response_first_time_duration",
    "response_billing_rate",
    "response_billing_cycle",
    "response_connection_fee",
)


def _hhmm(name: str, text: str, *, allow_24: bool = False) -> time | None:
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValidationError(name, f"{text!r} is not HH:MM")
    h, m = int(hours), int(minutes)
    if allow_24 and (h, m) == (24, 0):
        return None
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValidationError(name, f"{text!r} is not a time of day")
    return time(h, m)


@dataclass(frozen=True, slots=True)
class WorkCalendar(Record):
    TABLE: ClassVar[str] = "work_calendar"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("name",),)

    name: str
    #: IANA zone the hours are in (the destination's or customer's, not the server's).
    timezone: str = "UTC"
    #: Working weekdays as ``datetime.weekday()`` numbers, Monday = 0 … Sunday = 6 (as
    #: signaling.billing.workcalendar counts them).
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    #: Working time is [work_start, work_end); "24:00" ends at midnight.
    work_start: str = "08:00"
    work_end: str = "18:00"
    #: Dates (YYYY-MM-DD) that are non-working all day whatever their weekday.
    holidays: tuple[str, ...] = ()
    memo: str = ""
    id: int = 0

    def check(self) -> None:
        not_blank("name", self.name)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("timezone", f"{self.timezone!r} is not a known time zone") from None
        for day in self.working_days:
            if not 0 <= day <= 6:
                raise ValidationError(
                    "working_days", f"{day} is not a weekday number (0 = Monday … 6 = Sunday)"
                )
        start = _hhmm("work_start", self.work_start)
        end = _hhmm("work_end", self.work_end, allow_24=True)
        if start is not None and end is not None and end <= start:
            raise ValidationError("work_end", "must be after work_start")
        for day_text in self.holidays:
            try:
                date.fromisoformat(day_text)
            except ValueError:
                raise ValidationError("holidays", f"{day_text!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True, slots=True)
class PeriodRate(Record):
    TABLE: ClassVar[str] = "period_rate"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("name",),)

    name: str
    work_calendar_id: Annotated[int, Ref("work_calendar")]
    #: Rate group in working time; None = the account's own rates times working_multiplier.
    working_rate_group_id: Annotated[int | None, Ref("rate_group")] = None
    non_working_rate_group_id: Annotated[int | None, Ref("rate_group")] = None
    working_multiplier: RateValue = Decimal(1)
    non_working_multiplier: RateValue = Decimal(1)
    memo: str = ""
    id: int = 0

    def check(self) -> None:
        not_blank("name", self.name)
        for side in ("working", "non_working"):
            multiplier = getattr(self, f"{side}_multiplier")
            non_negative(f"{side}_multiplier", multiplier)
            if getattr(self, f"{side}_rate_group_id") is not None and multiplier != 1:
                raise ValidationError(
                    f"{side}_multiplier",
                    "must be 1 with a rate group (a period uses a rate table or a multiplier)",
                )


@dataclass(frozen=True, slots=True)
class Package(Record):
    TABLE: ClassVar[str] = "package"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("name",),)

    name: str
    #: Charged at the start of each monthly package period.
    rent_fee: Money = Decimal(0)
    #: Free seconds per package period, consumed before any rate applies.
    free_seconds: int = 0
    free_credit: Money = Decimal(0)
    #: Destinations the free seconds and credit apply to; empty = all.
    free_prefixes: tuple[str, ...] = ()
    period_rate_id: Annotated[int | None, Ref("period_rate")] = None
    memo: str = ""
    id: int = 0

    def check(self) -> None:
        not_blank("name", self.name)
        non_negative("rent_fee", self.rent_fee)
        non_negative("free_credit", self.free_credit)
        at_least("free_seconds", self.free_seconds, 0)
        digit_prefixes("free_prefixes", self.free_prefixes)
