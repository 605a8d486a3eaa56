"""Charges with the numbers of architecture-billing-payments.md §21.3/§21.4 (T10-T21), behaviour
66 of timers-trace-routing-dialplan.md §16, and the decisions of docs/billing.md (rounding,
connection fee, rate of response, free minutes and free credit)."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

import pytest

from signaling.billing import (
    Allowance,
    BillingPolicy,
    CallOutcome,
    Rate,
    Tariff,
    billed_seconds,
    charge,
    hold_time_ms,
)

D = Decimal
#: T10-T12: first period 60 s at 0.02/min, then 6 s cycles at 0.01/min, no connection fee.
SIXTY_SIX = Tariff(D("0.02"), 60, D("0.01"), 6)
FOUR = BillingPolicy(fee_places=4)


def amount(tariff: Tariff | None, seconds: float, policy: BillingPolicy = FOUR, **kw: Allowance) -> Decimal:
    return charge(tariff, round(seconds * 1000), policy=policy, **kw).amount


@pytest.mark.parametrize(
    ("test_id", "seconds", "billed", "expected"),
    [
        ("T10", 61, 66, D("0.021")),  # 0.02 + 0.01 x 6/60
        ("T11", 30, 60, D("0.02")),  # first period charged in full
        ("T12", 125, 126, D("0.031")),  # remainder 65 s -> 11 cycles = 66 s
    ],
)
def test_t10_t11_t12_first_time_rate_then_billing_cycles(
    test_id: str, seconds: int, billed: int, expected: Decimal
) -> None:
    result = charge(SIXTY_SIX, seconds * 1000, policy=FOUR)
    assert result.billed_seconds == billed, test_id
    assert result.amount == expected, test_id


def test_t13_per_second_billing() -> None:
    assert amount(Tariff.flat(D("0.012"), cycle=1), 61) == D("0.0122")


def test_t14_per_minute_billing() -> None:
    assert amount(Tariff.flat(D("0.01"), cycle=60), 61) == D("0.02")


def test_t15_six_six_with_connection_fee() -> None:
    tariff = Tariff.flat(D("0.01"), cycle=6, connection_fee=D("0.01"))
    assert amount(tariff, 30) == D("0.015")
    assert amount(tariff, 31) == D("0.016")  # billed 36 s


def test_t16_vendor_cost_and_margin() -> None:
    sell = Tariff.flat(D("0.01"), cycle=6, connection_fee=D("0.01"))
    buy = Tariff.flat(D("0.005"), cycle=6)
    cost = amount(buy, 30)
    assert cost == D("0.0025")
    assert amount(sell, 30) - cost == D("0.0125")


def test_t17_unanswered_call_costs_nothing_not_even_the_connection_fee() -> None:
    rate = Rate("44", Tariff.flat(D("0.01"), 6, D("0.01")), response=Tariff.flat(D("0.5"), 60, D("0.2")))
    unanswered = charge(rate.tariff_for(CallOutcome.UNANSWERED), 0, policy=FOUR)
    assert unanswered.amount == 0
    assert unanswered.billed_seconds == 0


def test_answered_call_of_zero_billable_time_pays_the_connection_fee_only() -> None:
    tariff = Tariff.flat(D("0.01"), 6, D("0.01"))
    result = charge(tariff, 0, policy=FOUR)
    assert (result.billed_seconds, result.amount) == (0, D("0.01"))


def test_behaviour_66_hold_time_precision_6000_rounds_61_s_up_to_66_s() -> None:
    policy = BillingPolicy(hold_time_precision_ms=6000)
    assert hold_time_ms(61_000, policy) == 66_000
    assert hold_time_ms(60_000, policy) == 60_000
    assert billed_seconds(Tariff.flat(D("0.01"), cycle=1), 61_000, policy) == 66


def test_a_started_second_counts_at_the_default_precision() -> None:
    assert hold_time_ms(60_001) == 61_000
    assert billed_seconds(Tariff.flat(D("0.01"), cycle=1), 60_001) == 61
    assert billed_seconds(Tariff.flat(D("0.01"), cycle=1), 1) == 1


def test_money_is_rounded_once_on_the_total_half_up_by_default() -> None:
    per_second = Tariff.flat(D("0.01"), cycle=1)  # 7 s = 0.0011666...
    assert amount(per_second, 7) == D("0.0012")
    assert amount(per_second, 7, BillingPolicy(fee_places=4, rounding=ROUND_DOWN)) == D("0.0011")
    assert amount(per_second, 3, BillingPolicy(fee_places=4, rounding=ROUND_UP)) == D("0.0005")
    assert amount(per_second, 3, BillingPolicy(fee_places=5)) == D("0.00050")
    # the default keeps the reference's seven places
    assert charge(per_second, 7000).amount == D("0.0011667")


def test_exact_half_rounds_up() -> None:
    # 0.00015/min x 60 s ... at 4 places: 0.00015 -> 0.0002
    assert amount(Tariff.flat(D("0.00015"), cycle=60), 60) == D("0.0002")


class TestRateOfResponse:
    """CAP-5.6: answered calls that never connected pay the rate of response, if one is set."""

    rate = Rate(
        "44",
        connected=Tariff.flat(D("0.02"), cycle=6),
        response=Tariff(D("0"), 0, D("0"), 1, connection_fee=D("0.05")),
    )

    def test_connected_call_pays_the_rate_of_connected(self) -> None:
        assert amount(self.rate.tariff_for(CallOutcome.CONNECTED), 30) == D("0.01")

    def test_responded_call_pays_the_rate_of_response_even_at_zero_seconds(self) -> None:
        assert amount(self.rate.tariff_for(CallOutcome.RESPONDED), 0) == D("0.05")
        assert amount(self.rate.tariff_for(CallOutcome.RESPONDED), 3) == D("0.05")

    def test_without_a_rate_of_response_the_rate_of_connected_applies(self) -> None:
        plain = Rate("44", Tariff.flat(D("0.02"), cycle=6))
        assert plain.tariff_for(CallOutcome.RESPONDED) is plain.connected


class TestPackages:
    """§21.4: free duration is consumed first, then money; free credit before the balance."""

    def test_t19_call_inside_the_free_minutes_costs_nothing(self) -> None:
        free = Allowance(free_seconds=500 * 60)
        result = charge(Tariff.flat(D("0.02"), cycle=60), 600_000, allowance=free)
        assert result.amount == 0
        assert result.free_seconds_used == 600
        assert (free.free_seconds - result.free_seconds_used) // 60 == 490

    def test_t20_call_longer_than_the_free_time_left_pays_the_rest(self) -> None:
        # 499 of 500 minutes used: 60 s free left; a 180 s call on 60/6 at 0.02/0.01
        result = charge(SIXTY_SIX, 180_000, policy=FOUR, allowance=Allowance(free_seconds=60))
        assert result.free_seconds_used == 60
        assert result.billed_seconds == 180
        assert result.amount == D("0.02")  # 120 s at the billing rate 0.01/min

    def test_free_seconds_cover_the_earliest_seconds_first_time_rate_first(self) -> None:
        result = charge(SIXTY_SIX, 90_000, policy=FOUR, allowance=Allowance(free_seconds=30))
        # 30 free + 30 first-period s at 0.02 + 30 s at 0.01
        assert result.amount == D("0.015")

    def test_connection_fee_is_not_covered_by_free_time(self) -> None:
        tariff = Tariff.flat(D("0.02"), 60, connection_fee=D("0.01"))
        assert charge(tariff, 60_000, policy=FOUR, allowance=Allowance(free_seconds=600)).amount == D("0.01")

    def test_free_credit_pays_before_the_balance(self) -> None:
        result = charge(
            Tariff.flat(D("0.05"), 60), 60_000, policy=FOUR, allowance=Allowance(free_credit=D("0.03"))
        )
        assert result.amount == D("0.05")
        assert result.free_credit_used == D("0.03")
        assert result.debit == D("0.02")

    def test_free_credit_larger_than_the_charge(self) -> None:
        result = charge(
            Tariff.flat(D("0.05"), 60), 60_000, policy=FOUR, allowance=Allowance(free_credit=D("1"))
        )
        assert (result.free_credit_used, result.debit) == (D("0.05"), D(0))

    def test_free_seconds_are_consumed_in_billed_seconds(self) -> None:
        # a 61 s call on 60/60 uses two free minutes
        result = charge(Tariff.flat(D("0.02"), 60), 61_000, allowance=Allowance(free_seconds=600))
        assert result.free_seconds_used == 120


class TestTariffValidation:
    def test_floats_are_refused(self) -> None:
        with pytest.raises(TypeError, match="first_time_rate must be a Decimal"):
            Tariff(0.01, 60, D("0.01"), 60)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="free_credit"):
            Allowance(free_credit=0.5)  # type: ignore[arg-type]

    def test_negative_and_zero_values(self) -> None:
        with pytest.raises(ValueError, match="billing_rate must not be negative"):
            Tariff(D("0"), 60, D("-0.01"), 60)
        with pytest.raises(ValueError, match="billing_cycle must be at least 1"):
            Tariff(D("0"), 60, D("0.01"), 0)
        with pytest.raises(TypeError, match="whole seconds"):
            Tariff(D("0"), 1.5, D("0.01"), 6)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="negative"):
            hold_time_ms(-1)

    def test_policy_ranges(self) -> None:
        with pytest.raises(ValueError, match="SERVER_BILLING_HOLD_TIME_PRECISION"):
            BillingPolicy(hold_time_precision_ms=0)
        with pytest.raises(ValueError, match="SERVER_BILLING_FEE_PRECISION"):
            BillingPolicy(fee_places=13)
        with pytest.raises(ValueError, match="rounding"):
            BillingPolicy(rounding="ROUND_HALF_EVEN")

    def test_multiplier_scales_rates_not_the_connection_fee(self) -> None:
        scaled = Tariff(D("0.04"), 30, D("0.02"), 6, D("0.01")).scaled(D("0.5"))
        assert scaled == Tariff(D("0.02"), 30, D("0.01"), 6, D("0.01"))
