"""Money and rates come back exactly as written, on both databases, and are never floats."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.store import Account, Rate, RateGroup, Store, ValidationError

_prefixes = (str(n) for n in itertools.count(100))

money_values = st.decimals(
    min_value=Decimal("-999999999999.999999"), max_value=Decimal("999999999999.999999"), places=6
)
rate_values = st.decimals(min_value=Decimal(0), max_value=Decimal("99999999.9999999999"), places=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fee=money_values.map(abs), first=rate_values, billing=rate_values)
def test_rates_and_fees_round_trip_exactly(
    store: Store, fee: Decimal, first: Decimal, billing: Decimal
) -> None:
    admin = store.admin()
    group = admin.list(RateGroup)[0] if admin.list(RateGroup) else admin.create(RateGroup("exact"))
    written = Rate(group.id, next(_prefixes), first_time_rate=first, billing_rate=billing, connection_fee=fee)
    stored = admin.create(written)
    assert (stored.first_time_rate, stored.billing_rate, stored.connection_fee) == (first, billing, fee)
    assert isinstance(stored.connection_fee, Decimal)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=money_values.filter(lambda d: d != 0))
def test_payments_round_trip_exactly(store: Store, amount: Decimal) -> None:
    admin = store.admin()
    account = admin.create(Account(code=f"m{next(_prefixes)}"))
    record = admin.pay(account.id, amount)
    assert record.amount == amount
    assert record.balance_after == amount
    assert admin.get(Account, account.id).balance == amount


def test_the_reference_rate_keeps_all_eight_decimals(store: Store) -> None:
    """Reference T18: a rate file's 0.01234567 is stored exactly."""
    admin = store.admin()
    group = admin.create(RateGroup("uk"))
    admin.add_rates(
        [Rate(group.id, "44", first_time_rate=Decimal("0.01234567"), billing_rate=Decimal("0.01234567"))]
    )
    (rate,) = admin.rates(group.id)
    assert rate.first_time_rate == Decimal("0.01234567")
    assert str(rate.billing_rate) == "0.0123456700"


def test_many_small_payments_sum_exactly(store: Store) -> None:
    """0.1 added ten times is 1 exactly (it would not be in binary floating point)."""
    admin = store.admin()
    account = admin.create(Account(code="dimes"))
    for _ in range(10):
        admin.pay(account.id, Decimal("0.1"))
    assert admin.get(Account, account.id).balance == Decimal(1)
    with store.db.transaction(write=False) as tx:
        total = tx.scalar("SELECT sum(amount) FROM payment WHERE account_id = ?", (account.id,))
    assert Decimal(total) in (Decimal(1), Decimal(1_000_000))  # NUMERIC on PostgreSQL, micro-units on SQLite


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("0.0000001"), "balance: at most 6 decimal places"),
        (Decimal("1000000000000"), "balance: must be below 1,000,000,000,000 in magnitude"),
        (0.1, "balance: floats are not accepted for money; pass a Decimal or a string"),
        (Decimal("NaN"), "balance: must be a finite number"),
        ("ten", "balance: 'ten' is not a decimal number"),
    ],
)
def test_money_that_cannot_be_stored_exactly_is_refused_by_name(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Account(code="x", balance=value)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert caught.value.field == "balance"


def test_rates_take_ten_places_and_no_more() -> None:
    assert Rate(1, "1", billing_rate=Decimal("0.0000000001")).billing_rate == Decimal("1E-10")
    with pytest.raises(ValidationError, match=r"^billing_rate: at most 10 decimal places$"):
        Rate(1, "1", billing_rate=Decimal("0.00000000001"))


def test_text_and_integers_are_accepted_as_exact_decimals() -> None:
    account = Account(code="x", balance="12.345678", credit_limit=5)  # type: ignore[arg-type]
    assert account.balance == Decimal("12.345678")
    assert account.credit_limit == Decimal(5)
