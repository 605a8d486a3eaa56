"""What a call costs: first-time rate and duration, billing rate and cycle, connection fee.

Theory of operation (the full rules, with worked numbers, are in docs/billing.md):

1. The hold time (answer to end, milliseconds) is rounded **up** to
   ``SERVER_BILLING_HOLD_TIME_PRECISION`` (1000 ms by default: a started second counts).
2. The rounded hold time becomes *billed seconds*: 0 stays 0; otherwise the first period
   (``first_time_duration``) is charged in full, and what is left is rounded up to whole
   ``billing_cycle`` units. A 61 s call on 60/6 is billed 66 s.
3. The price is ``connection_fee + first_time_rate/60 * first seconds + billing_rate/60 * later
   seconds``, computed exactly. Free seconds of a package cover the *earliest* billed seconds
   (so they save first-time-rate seconds first); the connection fee is per call and is not
   covered by free time.
4. The total is rounded once to ``SERVER_BILLING_FEE_PRECISION`` places (half-up by default).
   Free credit of a package then pays as much of it as it can; the rest is the balance debit.

An unanswered call costs nothing (no connection fee either). Which tariff applies to an answered
call — the rate of connected or the rate of response — is :meth:`Rate.tariff_for`'s business.

:func:`max_duration_ms` inverts :func:`charge`: the longest hold time whose charge the funds
cover, exactly consistent with it (``charge(max) <= funds < charge(max + 1 ms)``), for admission
and for the credit-exhaustion hang-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import Enum
from fractions import Fraction
from typing import Final

from signaling.billing.money import (
    MONEY_ROUNDINGS,
    as_money,
    round_ratio,
    scaled_decimal,
    to_units,
)

SECONDS_PER_MINUTE: Final = 60  # rates are quoted per minute
MS_PER_SECOND: Final = 1000


class CallOutcome(Enum):
    """How far a call got, which decides the tariff (docs/billing.md, "Rate of response")."""

    #: No 200 OK: nothing is charged.
    UNANSWERED = "unanswered"
    #: 200 OK received, but the call never became a conversation (see docs/billing.md).
    RESPONDED = "responded"
    #: Answered and established end to end.
    CONNECTED = "connected"


_MONEY_FIELDS: Final = ("first_time_rate", "billing_rate", "connection_fee")
_DURATION_FIELDS: Final = (("first_time_duration", 0), ("billing_cycle", 1))


@dataclass(frozen=True, slots=True)
class Tariff:
    """One rate set of a rate entry. Rates are money per minute, durations whole seconds."""

    first_time_rate: Decimal
    first_time_duration: int
    billing_rate: Decimal
    billing_cycle: int
    connection_fee: Decimal = Decimal(0)
    #: (places, first, billing, fee): the amounts as integers of 10**-places, for exact integer
    #: arithmetic; computed on first use (loading a million rates need not pay for it).
    _units: tuple[int, int, int, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first, billing, fee = self.first_time_rate, self.billing_rate, self.connection_fee
        duration, cycle = self.first_time_duration, self.billing_cycle
        if (  # the common case in one expression (a loader builds a hundred thousand of these)
            type(first) is Decimal
            and type(billing) is Decimal
            and type(fee) is Decimal
            and type(duration) is int
            and type(cycle) is int
            and first.is_finite()
            and billing.is_finite()
            and fee.is_finite()
            and first >= 0
            and billing >= 0
            and fee >= 0
            and duration >= 0
            and cycle >= 1
        ):
            return
        # Otherwise field by field, converting what may be converted and naming what is wrong.
        for name in _MONEY_FIELDS:
            value = getattr(self, name)
            if type(value) is not Decimal:
                object.__setattr__(self, name, as_money(value, name))
                value = getattr(self, name)
            if not value.is_finite():
                raise ValueError(f"{name} must be a finite number, not {value}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {value}")
        for name, least in _DURATION_FIELDS:
            value = getattr(self, name)
            if type(value) is not int:
                raise TypeError(f"{name} must be whole seconds (int), not {type(value).__name__}")
            if value < least:
                raise ValueError(f"{name} must be at least {least} s, not {value}")

    def units(self) -> tuple[int, int, int, int]:
        """``(places, first_time_rate, billing_rate, connection_fee)`` in units of 10**-places."""
        cached = self._units
        if cached is None:
            exact = [to_units(getattr(self, name)) for name in _MONEY_FIELDS]
            places = max(digits for _, digits in exact)
            first, billing, fee = (units * 10 ** (places - digits) for units, digits in exact)
            cached = (places, first, billing, fee)
            object.__setattr__(self, "_units", cached)
        return cached

    @classmethod
    def flat(cls, rate: Decimal, cycle: int = 60, connection_fee: Decimal = Decimal(0)) -> Tariff:
        """One rate throughout, billed in ``cycle``-second units from the first second (6/6, 60/60…)."""
        return cls(rate, cycle, rate, cycle, connection_fee)

    def scaled(self, multiplier: Decimal) -> Tariff:
        """Both per-minute rates times a package period multiplier; the connection fee unchanged."""
        factor = as_money(multiplier, "multiplier")
        if factor < 0:
            raise ValueError(f"multiplier must not be negative, not {factor}")
        times, times_places = to_units(factor)
        places, first, billing, _ = self.units()
        # Integer products, so no Decimal context can round a long rate.
        return Tariff(
            scaled_decimal(first * times, places + times_places),
            self.first_time_duration,
            scaled_decimal(billing * times, places + times_places),
            self.billing_cycle,
            self.connection_fee,
        )


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    """The switch-wide rounding parameters."""

    #: SERVER_BILLING_FEE_PRECISION: decimal places of a charge (the reference prints 0.0000000).
    fee_places: int = 7
    #: SERVER_BILLING_HOLD_TIME_PRECISION, ms: the hold time is rounded up to a multiple of it.
    hold_time_precision_ms: int = 1000
    #: How the charge is rounded to ``fee_places``: ROUND_HALF_UP, ROUND_UP or ROUND_DOWN.
    rounding: str = ROUND_HALF_UP

    def __post_init__(self) -> None:
        if not 0 <= self.fee_places <= 12:
            raise ValueError(f"SERVER_BILLING_FEE_PRECISION must be 0-12 places, not {self.fee_places}")
        if not 1 <= self.hold_time_precision_ms <= 3_600_000:
            raise ValueError(
                f"SERVER_BILLING_HOLD_TIME_PRECISION must be 1-3600000 ms, not {self.hold_time_precision_ms}"
            )
        if self.rounding not in MONEY_ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(MONEY_ROUNDINGS)}, not {self.rounding}")


DEFAULT_POLICY: Final = BillingPolicy()


@dataclass(frozen=True, slots=True)
class Allowance:
    """What the account's active packages still give for this call."""

    #: Free duration left, seconds (package "Free Duration").
    free_seconds: int = 0
    #: Free credit left (money), spent before the balance.
    free_credit: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if isinstance(self.free_seconds, bool) or not isinstance(self.free_seconds, int):
            raise TypeError("free_seconds must be an int")
        if self.free_seconds < 0:
            raise ValueError(f"free_seconds must not be negative, not {self.free_seconds}")
        credit = as_money(self.free_credit, "free_credit")
        if credit < 0:
            raise ValueError(f"free_credit must not be negative, not {credit}")
        object.__setattr__(self, "free_credit", credit)


NO_ALLOWANCE: Final = Allowance()


@dataclass(frozen=True, slots=True)
class Charge:
    """The rating of one call (or of a call so far, for periodic debits)."""

    #: Hold time after rounding to the hold-time precision, ms.
    hold_ms: int
    #: Seconds the tariff bills (first period in full, then whole cycles).
    billed_seconds: int
    #: Of those, seconds paid by the package's free duration.
    free_seconds_used: int
    #: The price of the call after free seconds, rounded to the fee precision.
    amount: Decimal
    #: Of ``amount``, the part paid by package free credit.
    free_credit_used: Decimal

    @property
    def debit(self) -> Decimal:
        """What the account balance pays."""
        return self.amount - self.free_credit_used


def hold_time_ms(duration_ms: int, policy: BillingPolicy = DEFAULT_POLICY) -> int:
    """``duration_ms`` rounded up to the hold-time precision."""
    if duration_ms < 0:
        raise ValueError(f"a duration cannot be negative ({duration_ms} ms)")
    step = policy.hold_time_precision_ms
    return -(-duration_ms // step) * step


def billed_seconds(tariff: Tariff, duration_ms: int, policy: BillingPolicy = DEFAULT_POLICY) -> int:
    """Seconds billed for a hold time: the first period in full, then whole billing cycles."""
    held = hold_time_ms(duration_ms, policy)
    if held == 0:
        return 0
    first_ms = tariff.first_time_duration * MS_PER_SECOND
    if held <= first_ms:
        return tariff.first_time_duration
    cycle_ms = tariff.billing_cycle * MS_PER_SECOND
    cycles = -(-(held - first_ms) // cycle_ms)
    return tariff.first_time_duration + cycles * tariff.billing_cycle


def _time_units(tariff: Tariff, seconds: int) -> int:
    """60 x the price of the first ``seconds`` billed seconds, in the tariff's units."""
    _, first_units, billing_units, _ = tariff.units()
    first = min(seconds, tariff.first_time_duration)
    later = max(0, seconds - tariff.first_time_duration)
    return first_units * first + billing_units * later


def _price_units(tariff: Tariff, seconds: int, free_seconds: int) -> int:
    """60 x the price of an answered call of ``seconds`` billed seconds, ``free_seconds`` free."""
    covered = min(seconds, free_seconds)
    fee = tariff.units()[3] * SECONDS_PER_MINUTE
    return fee + _time_units(tariff, seconds) - _time_units(tariff, covered)


def exact_price(tariff: Tariff, seconds: int, free_seconds: int = 0) -> Fraction:
    """Unrounded price of ``seconds`` billed seconds of an answered call, ``free_seconds`` free."""
    return Fraction(_price_units(tariff, seconds, free_seconds), SECONDS_PER_MINUTE * 10 ** tariff.units()[0])


def charge(
    tariff: Tariff | None,
    duration_ms: int,
    *,
    policy: BillingPolicy = DEFAULT_POLICY,
    allowance: Allowance = NO_ALLOWANCE,
) -> Charge:
    """Rate an answered call of ``duration_ms`` hold time; ``tariff`` None = nothing to charge."""
    if tariff is None:
        zero = scaled_decimal(0, policy.fee_places)
        return Charge(hold_time_ms(duration_ms, policy), 0, 0, zero, zero)
    seconds = billed_seconds(tariff, duration_ms, policy)
    amount = round_ratio(
        _price_units(tariff, seconds, allowance.free_seconds),
        SECONDS_PER_MINUTE * 10 ** tariff.units()[0],
        policy.fee_places,
        policy.rounding,
    )
    return Charge(
        hold_ms=hold_time_ms(duration_ms, policy),
        billed_seconds=seconds,
        free_seconds_used=min(seconds, allowance.free_seconds),
        amount=amount,
        free_credit_used=min(amount, allowance.free_credit),
    )


def max_duration_ms(
    tariff: Tariff,
    funds: Decimal,
    *,
    policy: BillingPolicy = DEFAULT_POLICY,
    allowance: Allowance = NO_ALLOWANCE,
) -> int | None:
    """The longest hold time (ms) whose :func:`charge` ``funds`` plus free credit can pay.

    ``funds`` is what the balance may still spend (balance + overdraft limit - reservations);
    below zero it counts as zero. None: no limit (the rates after the free time are zero).
    0: not even the first billing period (or the connection fee) is covered — refuse the call.
    """
    places = policy.fee_places
    # Funds below zero (an overdraft already exceeded) pay nothing; free credit still can.
    funds_exact = max(Fraction(as_money(funds, "funds")), Fraction(0)) + Fraction(allowance.free_credit)
    money = (funds_exact.numerator * 10**places) // funds_exact.denominator  # floored, in 10**-places
    # In units of 1 / (60 * 10**tariff places * 2 * 10**places) of money everything is an integer:
    # round(price) <= money  <=>  price < money + ulp/2 (half-up) | < money + ulp (down) | <= money (up)
    half_ulps = {ROUND_HALF_UP: 1, ROUND_DOWN: 2, ROUND_UP: 0}[policy.rounding]
    strict = policy.rounding != ROUND_UP
    grain = 2 * 10**places
    tariff_places, _, _, fee_units = tariff.units()
    budget = (2 * money + half_ulps) * SECONDS_PER_MINUTE * 10**tariff_places
    budget -= grain * fee_units * SECONDS_PER_MINUTE
    if budget < 0 or (strict and budget == 0):
        return 0
    limit = _seconds_limit(tariff, allowance.free_seconds, budget, grain, strict)
    if limit is None:
        return None
    numerator, denominator = limit
    first, cycle = tariff.first_time_duration, tariff.billing_cycle
    # The largest billable value (0, or first + k cycles) inside the limit.
    past_first = numerator - first * denominator
    if past_first > 0 or (not strict and past_first == 0):
        cycles, rest = divmod(past_first, cycle * denominator)
        if strict and rest == 0:
            cycles -= 1
        longest = first + cycles * cycle
    else:
        longest = 0
    # A hold time is billed at most `longest` iff, rounded up, it is at most longest seconds.
    step = policy.hold_time_precision_ms
    return (longest * MS_PER_SECOND) // step * step


def _seconds_limit(
    tariff: Tariff, free_seconds: int, budget: int, grain: int, strict: bool
) -> tuple[int, int] | None:
    """Where the (continuous) price of billed seconds reaches ``budget``, as a ratio; None if never.

    The price is 0 up to the free seconds, then rises at the first-time rate until the end of
    the first period, then at the billing rate (``grain`` units per tariff unit and second). With
    ``strict`` the affordable seconds are those below the limit, else those up to it too.
    """
    _, first_units, billing_units, _ = tariff.units()
    first_rate = grain * first_units
    later_rate = grain * billing_units
    first_end = max(free_seconds, tariff.first_time_duration)
    price_at_first_end = first_rate * (first_end - free_seconds)
    beyond_first = budget > price_at_first_end if strict else budget >= price_at_first_end
    if beyond_first:
        if later_rate == 0:
            return None
        return first_end * later_rate + budget - price_at_first_end, later_rate
    # first_rate > 0 here: the budget is at most a positive price
    return free_seconds * first_rate + budget, first_rate
