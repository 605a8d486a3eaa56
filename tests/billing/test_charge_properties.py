"""Properties of the charge function and its inverse, checked against an independent
second-by-second reference computation:

* charge(max_duration(funds)) <= funds < charge(max_duration(funds) + 1 ms) (and + 1 cycle);
* the charge never decreases with the duration, so periodic debits are never negative and sum
  to exactly the final charge;
* the worked examples of max_duration for admission and credit-exhaustion hang-up.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, localcontext
from fractions import Fraction

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from signaling.billing import Allowance, BillingPolicy, Tariff, charge, max_duration_ms

D = Decimal
MONEY = st.decimals(min_value=0, max_value=D("0.5"), places=4, allow_nan=False, allow_infinity=False)
TARIFFS = st.builds(
    Tariff,
    first_time_rate=MONEY,
    first_time_duration=st.sampled_from([0, 1, 6, 30, 60]),
    billing_rate=MONEY,
    billing_cycle=st.sampled_from([1, 6, 30, 60]),
    connection_fee=st.decimals(min_value=0, max_value=D("0.05"), places=3),
)
POLICIES = st.builds(
    BillingPolicy,
    fee_places=st.integers(0, 7),
    hold_time_precision_ms=st.sampled_from([1, 50, 1000, 6000]),
    rounding=st.sampled_from([ROUND_HALF_UP, ROUND_UP, ROUND_DOWN]),
)
ALLOWANCES = st.builds(
    Allowance,
    free_seconds=st.sampled_from([0, 0, 10, 60, 90]),
    free_credit=st.sampled_from([D(0), D(0), D("0.01"), D("0.123")]),
)
FUNDS = st.decimals(min_value=D("-0.1"), max_value=D("3"), places=5)


def reference_amount(
    tariff: Tariff, duration_ms: int, policy: BillingPolicy, allowance: Allowance
) -> Decimal:
    """Second by second, written independently of signaling.billing.charge."""
    held = -(-duration_ms // policy.hold_time_precision_ms) * policy.hold_time_precision_ms
    seconds = 0
    if held > 0:
        seconds = tariff.first_time_duration
        while seconds * 1000 < held:
            seconds += tariff.billing_cycle
    total = Fraction(tariff.connection_fee)
    for second in range(allowance.free_seconds, seconds):
        per_minute = tariff.first_time_rate if second < tariff.first_time_duration else tariff.billing_rate
        total += Fraction(per_minute) / 60
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(total.numerator) / Decimal(total.denominator)
        return exact.quantize(Decimal(1).scaleb(-policy.fee_places), rounding=policy.rounding)


@given(TARIFFS, st.integers(0, 400_000), POLICIES, ALLOWANCES)
@settings(max_examples=400)
def test_charge_matches_the_second_by_second_reference(
    tariff: Tariff, duration_ms: int, policy: BillingPolicy, allowance: Allowance
) -> None:
    assert charge(tariff, duration_ms, policy=policy, allowance=allowance).amount == reference_amount(
        tariff, duration_ms, policy, allowance
    )


@given(TARIFFS, st.lists(st.integers(0, 3_600_000), min_size=2, max_size=8), POLICIES, ALLOWANCES)
def test_periodic_debits_are_never_negative_and_sum_to_the_final_charge(
    tariff: Tariff, instants: list[int], policy: BillingPolicy, allowance: Allowance
) -> None:
    instants.sort()
    amounts = [charge(tariff, t, policy=policy, allowance=allowance).amount for t in instants]
    debits = [later - earlier for earlier, later in itertools.pairwise(amounts)]
    assert all(debit >= 0 for debit in debits)
    assert amounts[0] + sum(debits) == amounts[-1]


@given(TARIFFS, FUNDS, POLICIES, ALLOWANCES)
@settings(max_examples=600)
def test_max_duration_is_the_exact_inverse_of_charge(
    tariff: Tariff, funds: Decimal, policy: BillingPolicy, allowance: Allowance
) -> None:
    budget = max(funds, D(0)) + allowance.free_credit
    longest = max_duration_ms(tariff, funds, policy=policy, allowance=allowance)

    def cost(ms: int) -> Decimal:
        return charge(tariff, ms, policy=policy, allowance=allowance).amount

    if longest is None:  # free after some point: a day-long call is still affordable
        assert cost(86_400_000) <= budget
        assert cost(0) <= budget
        return
    if longest == 0 and cost(0) > budget:
        return  # not even the connection fee: refused
    assert cost(longest) <= budget
    assert cost(longest + 1) > budget
    assert cost(longest + tariff.billing_cycle * 1000) > budget


@given(TARIFFS, FUNDS, POLICIES, ALLOWANCES)
def test_max_duration_is_zero_exactly_when_the_first_period_is_unaffordable(
    tariff: Tariff, funds: Decimal, policy: BillingPolicy, allowance: Allowance
) -> None:
    longest = max_duration_ms(tariff, funds, policy=policy, allowance=allowance)
    first_period = charge(tariff, 1, policy=policy, allowance=allowance).amount
    assume(policy.hold_time_precision_ms <= 1000)  # else the 1 ms call already bills a bigger step
    affordable = first_period <= max(funds, D(0)) + allowance.free_credit
    assert (longest != 0) == affordable


SIXTY_SIX = Tariff(D("0.02"), 60, D("0.01"), 6)


def test_admission_examples_on_sixty_six() -> None:
    assert max_duration_ms(SIXTY_SIX, D("0.021")) == 66_000  # first period + one cycle
    assert max_duration_ms(SIXTY_SIX, D("0.0209")) == 60_000
    assert max_duration_ms(SIXTY_SIX, D("0.02")) == 60_000
    assert max_duration_ms(SIXTY_SIX, D("0.0199")) == 0  # refuse: first period unaffordable
    assert max_duration_ms(SIXTY_SIX, D("-5")) == 0
    # an exceeded overdraft pays nothing, but package free credit still does
    assert max_duration_ms(SIXTY_SIX, D("-5"), allowance=Allowance(free_credit=D("0.021"))) == 66_000


def test_t23_t24_balance_plus_overdraft() -> None:
    tariff = Tariff.flat(D("0.01"), 60)
    assert max_duration_ms(tariff, D("0") + D("0")) == 0  # T23: balance 0, no overdraft
    assert max_duration_ms(tariff, D("0") + D("50")) == 5000 * 60_000  # T24: Credit 50


def test_free_time_extends_the_limit_and_free_rates_are_unlimited() -> None:
    tariff = Tariff.flat(D("0.01"), 60)
    assert max_duration_ms(tariff, D("0"), allowance=Allowance(free_seconds=600)) == 600_000
    assert max_duration_ms(tariff, D("0.01"), allowance=Allowance(free_seconds=600)) == 660_000
    assert max_duration_ms(tariff, D("0"), allowance=Allowance(free_credit=D("0.02"))) == 120_000
    assert max_duration_ms(Tariff(D("0.05"), 60, D("0"), 60), D("0.05")) is None
    assert max_duration_ms(Tariff(D("0.05"), 60, D("0"), 60), D("0.04")) == 0


def test_hold_time_precision_shortens_the_limit_to_its_grid() -> None:
    per_second = Tariff.flat(D("0.06"), 1)  # 0.001 per second
    policy = BillingPolicy(hold_time_precision_ms=6000)
    assert max_duration_ms(per_second, D("0.065"), policy=policy) == 60_000  # 65 s affordable, 66 s not
    assert max_duration_ms(per_second, D("0.065")) == 65_000


def test_connection_fee_counts_against_the_funds() -> None:
    tariff = Tariff.flat(D("0.01"), 60, connection_fee=D("0.01"))
    assert max_duration_ms(tariff, D("0.0199")) == 0
    assert max_duration_ms(tariff, D("0.02")) == 60_000
