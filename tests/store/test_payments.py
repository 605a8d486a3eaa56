"""Payment, credit and make-zero as the reference describes them (T42-T47, T50)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signaling.store import Account, Store, ValidationError

NOW = datetime(2025, 2, 20, 10, 0, tzinfo=UTC)


def _account(store: Store, **fields: object) -> Account:
    return store.admin().create(Account(code="1001", name="Call centre", **fields))  # type: ignore[arg-type]


def test_payment_adds_to_the_balance_and_records_before_and_after(store: Store) -> None:
    """T42."""
    admin = store.admin(operator="admin")
    account = _account(store, balance=Decimal("10.00"))
    record = admin.pay(account.id, Decimal("25.00"), memo="bank transfer", now=NOW)
    assert admin.get(Account, account.id).balance == Decimal("35.00")
    assert (record.type, record.amount, record.balance_before, record.balance_after) == (
        "payment",
        Decimal(25),
        Decimal(10),
        Decimal(35),
    )
    assert (record.payment_time, record.operator, record.memo) == (NOW, "admin", "bank transfer")


def test_payment_extends_the_expiry_from_the_current_expiry(store: Store) -> None:
    """T43: 30 days, expiry 2025-03-01, payment on 2025-02-20 → 2025-03-31."""
    store.set_parameter("SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY", 30)
    account = _account(store, expiry=datetime(2025, 3, 1, tzinfo=UTC))
    record = store.admin().pay(account.id, Decimal(5), now=NOW)
    assert record.expiry_after == datetime(2025, 3, 31, tzinfo=UTC)
    assert store.admin().get(Account, account.id).expiry == datetime(2025, 3, 31, tzinfo=UTC)


def test_an_expired_account_is_extended_from_the_payment_time(store: Store) -> None:
    store.set_parameter("SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY", 30)
    account = _account(store, expiry=datetime(2025, 1, 1, tzinfo=UTC))
    record = store.admin().pay(account.id, Decimal(5), now=NOW)
    assert record.expiry_after == datetime(2025, 3, 22, 10, 0, tzinfo=UTC)


def test_zero_days_leaves_the_expiry_and_so_do_refunds_and_vendor_accounts(store: Store) -> None:
    """T44, and the rule for negative adjustments and vendor accounts."""
    expiry = datetime(2025, 3, 1, tzinfo=UTC)
    admin = store.admin()
    customer = _account(store, expiry=expiry)
    vendor = admin.create(Account(code="V1", kind="vendor", expiry=expiry))
    assert admin.pay(customer.id, Decimal(-1), now=NOW).expiry_after == expiry
    assert admin.pay(vendor.id, Decimal(100), now=NOW).expiry_after == expiry
    store.set_parameter("SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY", 0)
    assert admin.pay(customer.id, Decimal(10), now=NOW).expiry_after == expiry


def test_the_default_extension_is_the_reference_default_of_365_days(store: Store) -> None:
    account = _account(store, expiry=datetime(2025, 3, 1, tzinfo=UTC))
    assert store.server_parameter("SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY") == 365
    assert store.admin().pay(account.id, Decimal(1), now=NOW).expiry_after == datetime(2026, 3, 1, tzinfo=UTC)


def test_credit_sets_the_overdraft_limit_and_leaves_the_balance(store: Store) -> None:
    """T45, and a second Credit sets (does not add to) the limit."""
    admin = store.admin()
    account = _account(store)
    record = admin.set_credit(account.id, Decimal(50), now=NOW)
    assert (record.type, record.amount, record.balance_before, record.balance_after) == (
        "credit",
        Decimal(50),
        Decimal(0),
        Decimal(0),
    )
    assert (record.credit_before, record.credit_after) == (Decimal(0), Decimal(50))
    admin.set_credit(account.id, Decimal(20), now=NOW)
    stored = admin.get(Account, account.id)
    assert (stored.balance, stored.credit_limit, stored.available) == (Decimal(0), Decimal(20), Decimal(20))
    with pytest.raises(ValidationError, match=r"^amount: a credit limit must not be negative$"):
        admin.set_credit(account.id, Decimal(-1))


def test_make_zero_resets_the_balance_with_a_negative_amount(store: Store) -> None:
    """T46."""
    admin = store.admin()
    account = _account(store, balance=Decimal("37.50"))
    record = admin.make_zero(account.id, now=NOW)
    assert (record.type, record.amount, record.balance_before, record.balance_after) == (
        "make_zero",
        Decimal("-37.50"),
        Decimal("37.50"),
        Decimal(0),
    )
    assert admin.get(Account, account.id).balance == 0


def test_a_mistaken_payment_is_corrected_by_a_new_record(store: Store) -> None:
    """T47: 100 instead of 10, corrected by -90; both records stay."""
    admin = store.admin()
    account = _account(store)
    wrong = admin.pay(account.id, Decimal(100), now=NOW)
    admin.pay(account.id, Decimal(-90), memo="correction of a mistyped payment", now=NOW)
    assert admin.get(Account, account.id).balance == Decimal(10)
    assert [p.amount for p in admin.payments(account_id=account.id)] == [Decimal(100), Decimal(-90)]
    with pytest.raises(Exception, match=r"cannot be deleted"):
        admin.delete_payment(wrong.id)


def test_a_zero_payment_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match=r"^amount: a payment must not be zero$"):
        store.admin().pay(_account(store).id, Decimal(0))


def test_rent_and_monthly_minimum_are_debits(store: Store) -> None:
    """T48: Monthly Min 100, consumption 60, balance 200 → 40 charged, 160 left."""
    admin = store.admin()
    account = _account(store, balance=Decimal(200), monthly_min=Decimal(100))
    record = admin.charge(account.id, "monthly_min", Decimal(40), now=NOW)
    assert (record.amount, record.balance_after) == (Decimal(-40), Decimal(160))
    rent = admin.charge(account.id, "rent", Decimal("5.00"), now=NOW)
    assert rent.balance_after == Decimal(155)
    with pytest.raises(ValidationError, match=r"^amount: a rent charge must be positive$"):
        admin.charge(account.id, "rent", Decimal(0))


def test_payment_record_query_filters_like_the_reference(store: Store) -> None:
    """T50: by type and date range, all accounts when none given, by operator."""
    alice = store.admin(operator="alice")
    bob = store.admin(operator="bob")
    one = _account(store)
    two = alice.create(Account(code="1002"))
    alice.set_credit(one.id, Decimal(50), now=datetime(2025, 2, 3, tzinfo=UTC))
    bob.set_credit(two.id, Decimal(70), now=datetime(2025, 2, 27, tzinfo=UTC))
    alice.set_credit(two.id, Decimal(80), now=datetime(2025, 3, 1, tzinfo=UTC))
    bob.pay(one.id, Decimal(10), now=datetime(2025, 2, 10, tzinfo=UTC))
    credits = alice.payments(
        kind="credit", start=datetime(2025, 2, 1, tzinfo=UTC), end=datetime(2025, 3, 1, tzinfo=UTC)
    )
    assert [(p.account_id, p.amount) for p in credits] == [(one.id, Decimal(50)), (two.id, Decimal(70))]
    assert [p.type for p in alice.payments(operator="bob")] == ["payment", "credit"]  # oldest first
    assert len(alice.payments(account_id=two.id)) == 2
