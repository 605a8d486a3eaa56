"""The off-peak savings calculator of the time-based routing notes (reference behaviour 49).

Moving part of a day's traffic to a cheaper off-peak (period) rate saves, per day,
``minutes per day x off-peak share x rate difference``; a month counts 30 days and a year 365,
as the reference does (500,000 min/day, 40 % off-peak, 0.002 difference → 400 a day, 12,000 a
month, 146,000 a year). Exact Decimal arithmetic; nothing is rounded (the figures are shown as
computed, with at least two places).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from signaling.billing.money import as_money

__all__ = ["DAYS_PER_MONTH", "DAYS_PER_YEAR", "Savings", "savings"]

#: the reference's month and year (x30, x365)
DAYS_PER_MONTH = 30
DAYS_PER_YEAR = 365


@dataclass(frozen=True, slots=True)
class Savings:
    off_peak_minutes: Decimal
    per_day: Decimal
    per_month: Decimal
    per_year: Decimal


def savings(
    minutes_per_day: Decimal | int, off_peak_percent: Decimal | int, rate_difference: Decimal | int
) -> Savings:
    """The savings of moving ``off_peak_percent`` % of ``minutes_per_day`` to a rate cheaper by
    ``rate_difference`` per minute. ValueError for a negative figure or a share above 100 %."""
    minutes = as_money(minutes_per_day, "minutes per day")
    share = as_money(off_peak_percent, "off-peak share")
    difference = as_money(rate_difference, "rate difference")
    if minutes < 0:
        raise ValueError(f"minutes per day must not be negative, not {minutes}")
    if not 0 <= share <= 100:
        raise ValueError(f"the off-peak share is a percentage from 0 to 100, not {share}")
    if difference < 0:
        raise ValueError(f"the rate difference must not be negative, not {difference}")
    off_peak = minutes * share.scaleb(-2)  # a percentage: exact, no division
    day = off_peak * difference
    return Savings(off_peak, day, day * DAYS_PER_MONTH, day * DAYS_PER_YEAR)
