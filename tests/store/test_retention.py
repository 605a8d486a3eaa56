"""Retention (signaling/store/retention.py): SERVER_CDR_RETENTION_DAYS removes whole days of
CDRs older than the kept window, SERVER_PAYMENT_RETENTION_DAYS purges older payment records
through the logged purge; 0 keeps everything; each node's router driver runs the pass hourly
from its first refresh."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from signaling.callproc import StoreRouter
from signaling.callproc.driver import RouterDriver
from signaling.config import load
from signaling.store import Account, Cdr, Store
from signaling.store.retention import run_retention

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def _cdrs(store: Store, *days: int) -> None:
    for day in days:
        end = datetime(2025, 3, day, 12, tzinfo=UTC)
        store.add_cdrs([Cdr(f"d{day}", end - timedelta(seconds=65), end)])


def _payments(store: Store) -> int:
    admin = store.admin()
    account = admin.create(Account(code="R1"))
    for when in (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 20, tzinfo=UTC)):
        admin.pay(account.id, Decimal(5), now=when)
    return account.id


def _purges(store: Store) -> list[tuple[str, int]]:
    with store.db.transaction(write=False) as tx:
        return [(str(r[0]), int(r[1])) for r in tx.execute("SELECT operator, deleted FROM payment_purge")]


def test_zero_keeps_everything(store: Store) -> None:
    _cdrs(store, 1, 2, 3)
    _payments(store)
    assert run_retention(store, NOW).cdr_days_removed == ()
    assert len(store.cdr_days()) == 3 and len(store.admin().payments()) == 2
    assert _purges(store) == []


def test_cdrs_older_than_the_window_go_by_whole_days(store: Store) -> None:
    _cdrs(store, 1, 2, 3, 4, 5)
    store.set_parameter("SERVER_CDR_RETENTION_DAYS", 2)
    done = run_retention(store, NOW)
    # today (the 5th) and the 2 days before it stay
    assert done.cdr_days_removed == ("2025-03-01", "2025-03-02")
    assert store.cdr_days() == [date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)]
    assert run_retention(store, NOW).cdr_days_removed == (), "idempotent"


def test_payments_older_than_the_window_are_purged_and_logged_once(store: Store) -> None:
    _payments(store)
    store.set_parameter("SERVER_PAYMENT_RETENTION_DAYS", 30)
    assert run_retention(store, NOW).payments_purged == 1
    assert [p.payment_time for p in store.admin().payments()] == [datetime(2025, 2, 20, tzinfo=UTC)]
    assert run_retention(store, NOW).payments_purged == 0
    assert _purges(store) == [("retention", 1)], "a pass that purges nothing logs nothing"


def test_the_router_driver_runs_the_pass_at_its_first_refresh(store: Store) -> None:
    _cdrs(store, 1, 2)
    today = datetime.now(UTC)
    end = datetime(today.year, today.month, today.day, 0, 30, tzinfo=UTC)
    store.add_cdrs([Cdr("today", end - timedelta(seconds=65), end)])
    store.set_parameter("SERVER_CDR_RETENTION_DAYS", 1)
    router = StoreRouter(store, node="retention", parameters=load({}).parameters)

    async def main() -> None:
        driver = RouterDriver(router, refresh_interval=0.05)
        driver.start()
        try:
            for _ in range(200):  # bounded: 10 s
                if store.cdr_days() == [today.date()]:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"days left: {store.cdr_days()}")
        finally:
            await driver.stop(leave=False)

    asyncio.run(main())
