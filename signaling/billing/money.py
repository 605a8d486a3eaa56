"""Exact money arithmetic: Decimal in and out, integers in between, one rounding at the end.

A rate is a price per minute and a duration is in seconds, so a charge is ``rate * seconds / 60``,
which Decimal cannot always hold exactly (0.01 * 7 / 60 = 0.001166…). The charge code therefore
scales every amount of a tariff to an integer number of ``10**-k`` units (:func:`to_units`),
computes ``60 *`` the price in those units with integer arithmetic, and rounds the ratio once to
the configured number of decimal places (``SERVER_BILLING_FEE_PRECISION``) with
:func:`round_ratio`: on the call's total, never per cycle, so a periodic debit (the difference of
two cumulative charges) sums to exactly the final charge.

Floats never enter: :func:`as_money` refuses them, and text is parsed by :func:`parse_decimal`,
which accepts plain decimal notation only. Nothing here depends on the Decimal context.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Final

#: The rounding modes an operator can choose for money; see docs/billing.md.
MONEY_ROUNDINGS: Final = (ROUND_HALF_UP, ROUND_UP, ROUND_DOWN)

_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
#: Digits we accept in a decimal read from text (a rate, a fee, a balance).
MAX_DECIMAL_DIGITS: Final = 30


def as_money(value: Decimal | int, what: str) -> Decimal:
    """``value`` as a finite Decimal; a float (or anything else) is a programming error."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal or an int, not {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{what} must be a finite number, not {number}")
    return number


def parse_decimal(text: str) -> Decimal | None:
    """Plain decimal notation (``0.01234567``, ``-3``, ``+1.50``) as an exact Decimal, else None.

    No exponent, no thousands separator, no leading or trailing point, no ``NaN``/``Infinity``:
    what a rate sheet shows is what is stored, digit for digit (trailing zeros kept).
    """
    if not _PLAIN_DECIMAL.fullmatch(text):
        return None
    if sum(ch.isdigit() for ch in text) > MAX_DECIMAL_DIGITS:
        return None
    return Decimal(text)


def to_units(value: Decimal) -> tuple[int, int]:
    """A finite Decimal as ``(units, places)`` with ``value == units * 10**-places``, exactly.

    ``places`` is the fewest that hold the value (0.0100 gives (1, 2)); nothing is rounded.
    """
    numerator, denominator = value.as_integer_ratio()  # the denominator is 2**a * 5**b
    twos = (denominator & -denominator).bit_length() - 1
    fives = 0
    rest = denominator >> twos
    while rest > 1:
        rest //= 5
        fives += 1
    places = max(twos, fives)
    return numerator * (10**places // denominator), places


def round_ratio(numerator: int, denominator: int, places: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``numerator / denominator`` rounded to ``places`` decimals with ``rounding``, exactly."""
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    whole, rest = divmod(numerator * 10**places, denominator)  # floor division, 0 <= rest < denominator
    if rest:
        if rounding == ROUND_HALF_UP:  # half away from zero, as an operator's calculator does
            twice = 2 * rest
            whole += 1 if (twice >= denominator if whole >= 0 else twice > denominator) else 0
        elif rounding == ROUND_UP:  # away from zero
            whole += 1 if whole >= 0 else 0
        elif rounding == ROUND_DOWN:  # toward zero
            whole += 0 if whole >= 0 else 1
        else:
            raise ValueError(f"unsupported money rounding {rounding!r}")
    return scaled_decimal(whole, places)


def scaled_decimal(whole: int, places: int) -> Decimal:
    """``whole * 10**-places`` as a Decimal with exactly ``places`` decimals."""
    # Built from text, so no Decimal context (and its 28-digit precision) can round it.
    return Decimal(f"{whole}E-{places}") if places else Decimal(whole)
