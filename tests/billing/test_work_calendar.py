"""The work calendar's classification (security-quality-timerouting-failover.md §C.2): holidays and
non-working days are non-working all day, working hours are [start, end), read on the calendar's
own wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from signaling.billing import Period, WorkCalendar

OFFICE = WorkCalendar.weekly(
    "UK_BusinessHours",
    ["Mon", "Tue", "Wed", "Thu", "Fri"],
    start="08:00",
    end="18:00",
    holidays=[date(2026, 3, 26)],
)


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ("07:59", Period.NON_WORKING),
        ("08:00", Period.WORKING),
        ("12:30", Period.WORKING),
        ("17:59", Period.WORKING),
        ("18:00", Period.NON_WORKING),
        ("18:01", Period.NON_WORKING),
        ("00:00", Period.NON_WORKING),
    ],
)
def test_working_hours_boundaries(clock: str, expected: Period) -> None:
    hours, minutes = map(int, clock.split(":"))
    assert OFFICE.period(datetime(2026, 1, 7, hours, minutes, tzinfo=UTC)) is expected


def test_weekend_and_holiday_are_non_working_all_day() -> None:
    assert OFFICE.period(datetime(2026, 1, 10, 12, tzinfo=UTC)) is Period.NON_WORKING  # Saturday
    assert OFFICE.period(datetime(2026, 1, 11, 12, tzinfo=UTC)) is Period.NON_WORKING  # Sunday
    assert OFFICE.period(datetime(2026, 3, 26, 12, tzinfo=UTC)) is Period.NON_WORKING  # holiday, a Thursday
    assert OFFICE.period(datetime(2026, 3, 25, 12, tzinfo=UTC)) is Period.WORKING


def test_non_standard_work_week() -> None:
    gulf = WorkCalendar.weekly("Sun-Thu", ["Sun", "Mon", "Tue", "Wed", "Thu"], start="09:00", end="17:00")
    assert gulf.period(datetime(2026, 1, 11, 10, tzinfo=UTC)) is Period.WORKING  # Sunday
    assert gulf.period(datetime(2026, 1, 9, 10, tzinfo=UTC)) is Period.NON_WORKING  # Friday


def test_the_whole_day_until_24_00() -> None:
    weekdays = WorkCalendar.weekly("weekdays", ["Mon", "Tue", "Wed", "Thu", "Fri"])
    assert weekdays.period(datetime(2026, 1, 9, 23, 59, 59, tzinfo=UTC)) is Period.WORKING
    assert weekdays.period(datetime(2026, 1, 10, 0, 0, tzinfo=UTC)) is Period.NON_WORKING


def test_dates_and_hours_are_read_in_the_calendar_zone() -> None:
    dhaka = WorkCalendar.weekly(
        "BD",
        ["Mon", "Tue", "Wed", "Thu", "Fri"],
        start="08:00",
        end="18:00",
        holidays=[date(2026, 12, 16)],
        tz=timezone(timedelta(hours=6)),
    )
    # 2026-12-15 20:00 UTC is already 02:00 on the 16th (Victory Day) in Dhaka.
    assert dhaka.period(datetime(2026, 12, 16, 3, 0, tzinfo=UTC)) is Period.NON_WORKING
    assert dhaka.period(datetime(2026, 12, 15, 3, 0, tzinfo=UTC)) is Period.WORKING  # 09:00 local
    assert dhaka.period(datetime(2026, 12, 15, 1, 59, tzinfo=UTC)) is Period.NON_WORKING  # 07:59 local


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.period(datetime(2026, 1, 7, 12))


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: WorkCalendar.weekly("x", ["Monday"]), "unknown weekday 'Monday'"),
        (lambda: WorkCalendar.weekly("x", ["Mon"], start="8:00"), "'8:00' is not a 24-hour HH:MM time"),
        (lambda: WorkCalendar.weekly("x", ["Mon"], start="24:00"), "'24:00' is not"),
        (lambda: WorkCalendar.weekly("x", ["Mon"], end="18:60"), "'18:60' is not"),
        (lambda: WorkCalendar.weekly("x", ["Mon"], start="18:00", end="08:00"), "must end after they start"),
        (lambda: WorkCalendar("x", frozenset({7})), "working days are 0 (Mon) to 6 (Sun)"),
        (lambda: WorkCalendar("x", frozenset({0}), time(8), time(8)), "must end after they start"),
    ],
)
def test_configuration_errors_name_the_calendar(build: object, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        build()  # type: ignore[operator]
    assert "work calendar 'x'" in str(caught.value)
    assert fragment in str(caught.value)
