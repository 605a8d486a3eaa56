"""Payment records are append-only: the API refuses, and the database itself refuses, any change
or deletion, except the logged retention purge of records older than a cutoff."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signaling.store import Account, AppendOnlyError, PermissionDeniedError, Store


def _paid_account(store: Store) -> tuple[int, int]:
    admin = store.admin()
    account = admin.create(Account(code="1001"))
    record = admin.pay(account.id, Decimal(10), now=datetime(2025, 1, 5, tzinfo=UTC))
    return account.id, record.id


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE payment SET amount = 1000 WHERE id = ?",
        "UPDATE payment SET memo = 'edited' WHERE id = ?",
        "DELETE FROM payment WHERE id = ?",
    ],
)
def test_the_database_refuses_to_change_or_delete_a_payment_record(store: Store, sql: str) -> None:
    _, record_id = _paid_account(store)
    with pytest.raises(AppendOnlyError, match=r"append-only"), store.db.transaction() as tx:
        tx.execute(sql, (record_id,))
    assert store.admin().payments()[0].amount == Decimal(10)


def test_the_api_refuses_to_delete_a_payment_record(store: Store) -> None:
    _, record_id = _paid_account(store)
    with pytest.raises(AppendOnlyError, match=r"add a correcting payment"):
        store.admin().delete_payment(record_id)


def test_retention_purges_only_older_records_and_logs_the_purge(store: Store) -> None:
    account_id, _ = _paid_account(store)
    admin = store.admin(operator="auditor")
    admin.pay(account_id, Decimal(5), now=datetime(2025, 6, 1, tzinfo=UTC))
    cutoff = datetime(2025, 3, 1, tzinfo=UTC)
    assert admin.purge_payments(cutoff, now=datetime(2025, 9, 1, tzinfo=UTC)) == 1
    assert [p.amount for p in admin.payments()] == [Decimal(5)]
    with store.db.transaction(write=False) as tx:
        assert tx.one("SELECT operator, deleted FROM payment_purge") == ("auditor", 1)
    # the newer record is still protected, and so is the purge log
    with pytest.raises(AppendOnlyError), store.db.transaction() as tx:
        tx.execute("DELETE FROM payment")
    with pytest.raises(AppendOnlyError), store.db.transaction() as tx:
        tx.execute("DELETE FROM payment_purge")


def test_only_the_administrator_purges(store: Store) -> None:
    account_id, _ = _paid_account(store)
    admin = store.admin()
    child = admin.create(Account(code="sub", parent_id=account_id))
    assert child.parent_id == account_id
    with pytest.raises(PermissionDeniedError):
        store.agent(account_id, "agent").purge_payments(datetime(2025, 3, 1, tzinfo=UTC))


def test_a_purge_cannot_reach_into_the_future(store: Store) -> None:
    with pytest.raises(Exception, match=r"^before: cannot purge records from the future$"):
        store.admin().purge_payments(datetime(2030, 1, 1, tzinfo=UTC), now=datetime(2025, 1, 1, tzinfo=UTC))
