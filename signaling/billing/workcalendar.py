"""The work calendar: is an instant WORKING or NON_WORKING time for a calendar?

VOS3000's calendar (System management > Work calendar) has working days, one pair of working
hours and a list of holidays. Its classification, for an instant ``t`` seen in the calendar's
own time zone (the destination's or the customer's, not the server's):

    holiday                      -> NON_WORKING (all day, whatever the weekday)
    not a working day            -> NON_WORKING (all day)
    start <= time of day < end   -> WORKING
    otherwise                    -> NON_WORKING

The start is inclusive and the end exclusive (08:00 is working, 18:00 is not). Working hours
cannot wrap past midnight; an end of ``None`` means midnight at the end of the day (24:00).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from enum import Enum

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Period(Enum):
    WORKING = "working"
    NON_WORKING = "non-working"


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    name: str
    #: Working days as ``datetime.weekday()`` numbers, 0 = Monday … 6 = Sunday.
    working_days: frozenset[int]
    work_start: time = time(0, 0)
    #: End of working hours, exclusive; None = 24:00.
    work_end: time | None = None
    holidays: frozenset[date] = field(default_factory=frozenset)
    #: The zone whose wall clock the hours and dates are read in.
    tz: tzinfo = UTC

    def __post_init__(self) -> None:
        object.__setattr__(self, "working_days", frozenset(self.working_days))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        bad = sorted(day for day in self.working_days if not 0 <= day <= 6)
        if bad:
            raise ValueError(f"work calendar {self.name!r}: working days are 0 (Mon) to 6 (Sun), not {bad}")
        if self.work_start.tzinfo is not None or (self.work_end is not None and self.work_end.tzinfo):
            raise ValueError(
                f"work calendar {self.name!r}: working hours are wall-clock times without a zone"
            )
        if self.work_end is not None and self.work_end <= self.work_start:
            raise ValueError(
                f"work calendar {self.name!r}: working hours {self.work_start:%H:%M}-{self.work_end:%H:%M} "
                "must end after they start (use two calendars for a shift across midnight)"
            )

    @classmethod
    def weekly(
        cls,
        name: str,
        days: Iterable[str],
        *,
        start: str = "00:00",
        end: str = "24:00",
        holidays: Iterable[date] = (),
        tz: tzinfo = UTC,
    ) -> WorkCalendar:
        """Build from the UI's words: ``days`` like ``["Mon", "Tue"]``, hours as ``HH:MM``."""
        numbers = set()
        for day in days:
            if day not in WEEKDAYS:
                raise ValueError(
                    f"work calendar {name!r}: unknown weekday {day!r} (use {', '.join(WEEKDAYS)})"
                )
            numbers.add(WEEKDAYS.index(day))
        opening = _parse_hhmm(name, start, allow_24=False)
        assert opening is not None  # only 24:00 parses to None
        return cls(
            name,
            frozenset(numbers),
            opening,
            _parse_hhmm(name, end, allow_24=True),
            frozenset(holidays),
            tz,
        )

    def period(self, at: datetime) -> Period:
        """The period of the aware instant ``at`` on this calendar's wall clock."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("the call time must be timezone-aware")
        local = at.astimezone(self.tz)
        if local.date() in self.holidays or local.weekday() not in self.working_days:
            return Period.NON_WORKING
        clock = local.time().replace(tzinfo=None)
        if clock >= self.work_start and (self.work_end is None or clock < self.work_end):
            return Period.WORKING
        return Period.NON_WORKING


def _parse_hhmm(name: str, text: str, *, allow_24: bool) -> time | None:
    """``HH:MM`` (24 h); ``24:00`` (when allowed) is None, the end of the day."""
    parts = text.split(":")
    if len(parts) == 2 and all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        hours, minutes = int(parts[0]), int(parts[1])
        if allow_24 and (hours, minutes) == (24, 0):
            return None
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise ValueError(f"work calendar {name!r}: {text!r} is not a 24-hour HH:MM time")
