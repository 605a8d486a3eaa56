"""Money and rates: ``Decimal`` in Python, exact in both databases, never a float.

Two scales, because amounts and per-minute prices need different precision:

- **money** (balances, payments, fees, charges): 6 decimal places, below 10**12 in magnitude.
  PostgreSQL ``NUMERIC(20,6)``; SQLite ``INTEGER`` micro-units (1.5 → 1500000).
- **rate** (per-minute prices, period multipliers): 10 decimal places, below 10**8. PostgreSQL
  ``NUMERIC(18,10)``; SQLite ``INTEGER`` units of 10**-10. A rate file's ``0.01234567`` is kept
  exactly (reference T18).

The bounds are the same on both databases (SQLite's 64-bit integers set them), so a value one
database accepts the other accepts too. A value with more decimal places than its scale is
refused, never rounded: rounding is a billing decision (``SERVER_BILLING_FEE_PRECISION``) that
the rating code makes before it stores a charge.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Final

from signaling.store.errors import ValidationError

MONEY_SCALE: Final = 6
RATE_SCALE: Final = 10
MONEY_LIMIT: Final = Decimal(10) ** 12  # exclusive; 10**18 micro-units still fit an int64
RATE_LIMIT: Final = Decimal(10) ** 8  # exclusive; 10**18 units of 10**-10 still fit an int64

_CONTEXT: Final = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.Overflow])


def as_decimal(value: object, field: str) -> Decimal:
    """``Decimal``, ``int`` or a decimal string → ``Decimal``; a float is refused by name."""
    if isinstance(value, bool):
        raise ValidationError(field, "expected a decimal amount, not a boolean")
    if isinstance(value, float):
        raise ValidationError(field, "floats are not accepted for money; pass a Decimal or a string")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise ValidationError(field, f"{value!r} is not a decimal number") from None
    else:
        raise ValidationError(field, f"expected a decimal amount, not {type(value).__name__}")
    if not number.is_finite():
        raise ValidationError(field, "must be a finite number")
    return number


def check_scaled(value: Decimal, scale: int, limit: Decimal, field: str) -> Decimal:
    """``value`` itself if it fits ``scale`` decimal places and ``|value| < limit``."""
    if abs(value) >= limit:
        raise ValidationError(field, f"must be below {limit:,.0f} in magnitude")
    units = _CONTEXT.scaleb(value, scale)
    if units != units.to_integral_value():
        raise ValidationError(field, f"at most {scale} decimal places")
    return value


def to_units(value: Decimal, scale: int) -> int:
    """Exact integer units of 10**-scale (the SQLite representation); ``value`` already checked."""
    return int(_CONTEXT.scaleb(value, scale))


def from_units(units: int, scale: int) -> Decimal:
    """Integer units back to a ``Decimal`` written with exactly ``scale`` places."""
    return _CONTEXT.scaleb(Decimal(units), -scale)


def quantize(value: Decimal, scale: int) -> Decimal:
    """Written with exactly ``scale`` places (how both databases hand values back)."""
    return value.quantize(Decimal(1).scaleb(-scale), context=_CONTEXT)
