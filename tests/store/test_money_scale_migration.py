"""Migration 0002: money moves from 6 to 7 decimal places (the reference's billing precision,
SERVER_BILLING_FEE_PRECISION = 7), every stored amount converted exactly, on both databases; an
amount the new scale cannot hold stops the migration and leaves the database as it was."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signaling.store import (
    Account,
    AccountPackage,
    Cdr,
    Package,
    Rate,
    RateGroup,
    Store,
    StoreError,
    money,
    table,
)
from signaling.store.codec import Dialect
from signaling.store.migrate import migrations
from signaling.store.record import FieldSpec, Record

WHEN = datetime(2025, 3, 9, 14, 0, tzinfo=UTC)


def _at_version_1(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Migrate to version 1 only, with the code's money scale set back to version 1's (6)."""
    first = migrations(store.dialect)[0]
    monkeypatch.setattr("signaling.store.migrate.migrations", lambda dialect: (first,))
    monkeypatch.setattr(money, "MONEY_SCALE", 6)
    monkeypatch.setattr(money, "MONEY_LIMIT", Decimal(10) ** 12)
    monkeypatch.setattr("signaling.store.payments.MONEY_LIMIT", Decimal(10) ** 12)
    assert store.migrate() == [1]
    _only_stored_columns(store, monkeypatch)


def _only_stored_columns(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records read and write only the columns the database has (fields added by later
    versions, such as AccountPackage.rent_period_start and Cdr.free_credit, keep defaults)."""
    real = table.columns

    def present(name: str) -> set[str]:
        with store.db.transaction(write=False) as tx:
            if store.dialect is Dialect.SQLITE:
                return {str(r[1]) for r in tx.execute(f"PRAGMA table_info({name})")}
            rows = tx.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (name,)
            )
            return {str(r[0]) for r in rows}

    def columns(cls: type[Record]) -> tuple[FieldSpec, ...]:
        names = present(cls.TABLE)
        return tuple(c for c in real(cls) if c.name in names)

    monkeypatch.setattr(table, "columns", columns)


def _every_amount(store: Store, account_id: int) -> dict[str, Decimal | None]:
    admin = store.admin()
    account = admin.get(Account, account_id)
    (payment,) = [p for p in admin.payments(account_id=account_id) if p.memo == "top-up"]
    (rate,) = admin.list(Rate)
    (package,) = admin.list(Package)
    (subscription,) = admin.list(AccountPackage)
    (cdr,) = store.cdrs(WHEN.date(), WHEN.date())
    return {
        "balance": account.balance,
        "credit_limit": account.credit_limit,
        "monthly_min": account.monthly_min,
        "payment.amount": payment.amount,
        "payment.balance_before": payment.balance_before,
        "payment.balance_after": payment.balance_after,
        "payment.credit_after": payment.credit_after,
        "rate.connection_fee": rate.connection_fee,
        "rate.response_connection_fee": rate.response_connection_fee,
        "package.rent_fee": package.rent_fee,
        "package.free_credit": package.free_credit,
        "subscription.free_credit_used": subscription.free_credit_used,
        "cdr.fee": cdr.fee,
        "cdr.vendor_cost": cdr.vendor_cost,
        "cdr.margin": cdr.margin,
        "cdr.connection_fee": cdr.connection_fee,
    }


def test_every_amount_keeps_its_value_from_6_to_7_places(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(store_url)
    try:
        _at_version_1(store, monkeypatch)
        admin = store.admin()
        account = admin.create(
            Account(
                code="old",
                balance=Decimal("-123456.789012"),
                credit_limit=Decimal("500.5"),
                monthly_min=Decimal("0.000001"),
            )
        )
        admin.pay(account.id, Decimal("99999999999.999999") - Decimal("99999999000"), memo="top-up", now=WHEN)
        group = admin.create(RateGroup("g"))
        admin.add_rates(
            [
                Rate(
                    group.id, "44", billing_rate=Decimal("0.0123456789"), connection_fee=Decimal("0.010001"),
                    response_first_time_rate=Decimal(0), response_first_time_duration=0,
                    response_billing_rate=Decimal(0), response_billing_cycle=1,
                    response_connection_fee=Decimal("7.654321"),
                )
            ]
        )  # fmt: skip
        package = admin.create(Package("p", rent_fee=Decimal("5"), free_credit=Decimal("1.234567")))
        admin.create(AccountPackage(account.id, package.id, free_credit_used=Decimal("0.5")))
        store.add_cdrs(
            [
                Cdr(
                    "c1", WHEN, WHEN, account_id=account.id, fee=Decimal("0.021"),
                    vendor_cost=Decimal("0.0055"), connection_fee=Decimal("0.000001"),
                )
            ],
            charge=False,
        )  # fmt: skip
        before = _every_amount(store, account.id)
        monkeypatch.undo()
        assert store.migrate() == list(range(2, len(migrations(store.dialect)) + 1))
        after = _every_amount(store, account.id)
        assert after == before
        assert after["balance"] == Decimal("-123456.789012") + Decimal("999.999999")
        assert all(v is None or v.as_tuple().exponent == -7 for v in after.values())
        if store.dialect is Dialect.SQLITE:  # integer units of 10**-7 now
            with store.db.transaction(write=False) as tx:
                assert tx.scalar("SELECT monthly_min FROM account") == 10
        # and the new scale takes a seventh place
        assert admin.pay(account.id, Decimal("0.0000001"), now=WHEN).amount == Decimal("0.0000001")
        # payment records are still append-only after the conversion
        (record, *_) = admin.payments(account_id=account.id)
        with pytest.raises(StoreError, match="append-only"), store.db.transaction() as tx:
            tx.execute("UPDATE payment SET memo = 'x' WHERE id = ?", (record.id,))
    finally:
        store.close()


def test_an_amount_too_large_for_7_places_stops_the_migration(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(store_url)
    try:
        _at_version_1(store, monkeypatch)
        admin = store.admin()
        admin.create(Account(code="rich", balance=Decimal("100000000000")))  # 10**11: fits 6 places, not 7
        monkeypatch.undo()
        with pytest.raises(StoreError, match=r"(?i)100 billion|100_billion"):
            store.migrate()
        assert store.schema_version() == 1
        monkeypatch.setattr(money, "MONEY_SCALE", 6)
        monkeypatch.setattr(money, "MONEY_LIMIT", Decimal(10) ** 12)
        _only_stored_columns(store, monkeypatch)  # (account.ip_whitelist came with version 10)
        assert admin.list(Account)[0].balance == Decimal("100000000000")
        assert admin.payments()[0].amount == Decimal("100000000000")
    finally:
        store.close()
