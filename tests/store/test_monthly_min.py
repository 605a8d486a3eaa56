"""Monthly minimum consumption (signaling/store/monthly_min.py; reference CAP-6.4, T48, T49):
the month's shortfall of the CDR fees below ``monthly_min`` is charged once per account and
month, by any number of nodes, by the router driver's pass and by the CLI."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from signaling.callproc import StoreRouter
from signaling.callproc.driver import RouterDriver
from signaling.config import load
from signaling.store import Account, Cdr, Store, ValidationError, open_store
from signaling.store.monthly_min import Month, charge_month, evaluations, run_monthly_min

FEB = Month(2025, 2)
BEFORE = datetime(2025, 1, 15, tzinfo=UTC)  # accounts exist before February
AFTER = datetime(2025, 3, 1, 0, 20, tzinfo=UTC)  # the node's pass on the 1st


def _account(store: Store, code: str, *, balance: str = "0", **fields: object) -> Account:
    store.clock = lambda: BEFORE
    return store.admin().create(Account(code=code, balance=Decimal(balance), **fields))  # type: ignore[arg-type]


def _call(store: Store, account: Account, fee: str, end: datetime, name: str = "") -> None:
    call_id = name or f"{account.code}-{end.isoformat()}-{fee}"
    store.add_cdrs(
        [
            Cdr(
                call_id,
                end - timedelta(seconds=90),
                end,
                answer_time=end - timedelta(seconds=60),
                account_id=account.id,
                fee=Decimal(fee),
            )
        ]
    )


def _balance(store: Store, account: Account) -> Decimal:
    return store.admin().get(Account, account.id).balance


def test_t48_the_shortfall_is_charged_once(store: Store) -> None:
    """T48: Monthly Min 100.00, consumption 60.00, balance 200.00 → 40.00 charged, 160.00 left."""
    account = _account(store, "1001", balance="260", monthly_min=Decimal("100.00"))
    _call(store, account, "25.00", datetime(2025, 2, 1, 0, 0, 30, tzinfo=UTC))
    _call(store, account, "35.00", datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC))
    assert _balance(store, account) == Decimal("200.00")
    done = run_monthly_min(store, AFTER)
    assert [(e.code, e.consumption, e.charged) for e in done.charged] == [("1001", Decimal(60), Decimal(40))]
    assert _balance(store, account) == Decimal("160.00")
    [record] = store.admin().payments(kind="monthly_min")
    assert (record.amount, record.balance_before, record.balance_after) == (
        Decimal(-40),
        Decimal(200),
        Decimal(160),
    )
    assert (record.operator, record.payment_time) == ("billing", AFTER)
    assert "2025-02" in record.memo
    # the next hourly pass, a restart, the CLI for the same month: nothing more
    assert run_monthly_min(store, AFTER + timedelta(hours=1)).evaluated == ()
    assert charge_month(store, FEB, AFTER + timedelta(days=3)).evaluated == ()
    assert _balance(store, account) == Decimal("160.00")
    assert [e.payment_id for e in evaluations(store, FEB)] == [record.id]


@pytest.mark.parametrize("consumed", ["100.00", "150.00"])
def test_t49_consumption_at_or_above_the_minimum_charges_nothing(store: Store, consumed: str) -> None:
    """T49."""
    account = _account(store, "1001", balance="500", monthly_min=Decimal("100.00"))
    _call(store, account, consumed, datetime(2025, 2, 10, tzinfo=UTC))
    done = charge_month(store, FEB, AFTER)
    assert [(e.consumption, e.charged, e.payment_id) for e in done.evaluated] == [
        (Decimal(consumed), Decimal(0), None)
    ]
    assert store.admin().payments(kind="monthly_min") == []
    assert charge_month(store, FEB, AFTER).evaluated == (), "evaluated once"


def test_only_the_months_cdrs_of_the_account_count(store: Store) -> None:
    account = _account(store, "1001", monthly_min=Decimal(100))
    other = _account(store, "1002")
    _call(store, account, "30", datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC))  # January
    _call(store, account, "40", datetime(2025, 3, 1, 0, 0, 1, tzinfo=UTC))  # ended in March (UTC)
    _call(store, account, "0.0000001", datetime(2025, 2, 14, tzinfo=UTC))
    _call(store, other, "99", datetime(2025, 2, 14, tzinfo=UTC))
    [found] = charge_month(store, FEB, AFTER).evaluated
    assert (found.consumption, found.charged) == (Decimal("0.0000001"), Decimal("99.9999999"))


def test_which_accounts_are_evaluated(store: Store) -> None:
    locked = _account(store, "locked", balance="10", monthly_min=Decimal(50), locked=True)
    _account(store, "vendor", kind="vendor", monthly_min=Decimal(50))
    _account(store, "nominimum")
    _account(store, "expired", monthly_min=Decimal(50), expiry=datetime(2025, 2, 1, tzinfo=UTC))
    _account(store, "expires-in-feb", monthly_min=Decimal(50), expiry=datetime(2025, 2, 10, tzinfo=UTC))
    store.clock = lambda: datetime(2025, 2, 10, tzinfo=UTC)
    store.admin().create(Account(code="new-in-feb", monthly_min=Decimal(50)))
    done = charge_month(store, FEB, AFTER)
    assert sorted((e.code, e.charged) for e in done.evaluated) == [
        ("expires-in-feb", Decimal(50)),
        ("locked", Decimal(50)),
    ]
    assert _balance(store, locked) == Decimal(-40), "charged in full, below zero"


def test_a_month_is_evaluated_only_once_it_has_ended_and_settled(store: Store) -> None:
    _account(store, "1001", monthly_min=Decimal(10))
    assert run_monthly_min(store, datetime(2025, 3, 1, 0, 5, tzinfo=UTC)).too_early
    with pytest.raises(ValidationError, match="has not ended"):
        charge_month(store, Month(2025, 3), AFTER)
    assert store.admin().payments(kind="monthly_min") == []
    assert run_monthly_min(store, AFTER).month == "2025-02"
    assert len(store.admin().payments(kind="monthly_min")) == 1
    assert Month.before(datetime(2026, 1, 1, 3, tzinfo=UTC)) == Month(2025, 12)


def test_month_text(store: Store) -> None:
    assert Month.parse("2025-02") == FEB and str(FEB) == "2025-02"
    for bad in ("2025-13", "2025-2", "feb", "1969-12"):
        with pytest.raises(ValidationError, match="YYYY-MM"):
            Month.parse(bad)


def test_nodes_racing_on_one_database_charge_once(store_url: str) -> None:
    """Four nodes (stores) run the pass at the same instant, three times: one charge each."""
    stores = [open_store(store_url) for _ in range(4)]
    try:
        accounts = [_account(stores[0], f"A{i}", balance="100", monthly_min=Decimal(30)) for i in range(5)]
        barrier = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def node(store: Store) -> None:
            try:
                for hour in range(3):
                    barrier.wait(timeout=30)
                    run_monthly_min(store, AFTER + timedelta(hours=hour))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=node, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert len(stores[0].admin().payments(kind="monthly_min")) == len(accounts)
        assert {_balance(stores[0], a) for a in accounts} == {Decimal(70)}
    finally:
        for opened in stores:
            opened.close()


def test_the_router_driver_runs_the_pass(store: Store) -> None:
    """The node's periodic driver evaluates the month that ended before the current one."""
    now = datetime.now(UTC)
    if now < Month.before(now).end + timedelta(minutes=16):
        pytest.skip("within the settle delay of a new month")
    store.clock = lambda: datetime(2000, 1, 1, tzinfo=UTC)
    account = store.admin().create(Account(code="1001", balance=Decimal(5), monthly_min=Decimal("2.5")))
    router = StoreRouter(store, node="monthly", parameters=load({}).parameters)

    async def main() -> None:
        driver = RouterDriver(router, refresh_interval=0.05)
        driver.start()
        try:
            for _ in range(200):  # bounded: 10 s
                if store.admin().payments(kind="monthly_min"):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("no monthly minimum charged")
        finally:
            await driver.stop(leave=False)

    asyncio.run(main())
    assert store.admin().get(Account, account.id).balance == Decimal("2.5")
    assert [e.month for e in evaluations(store)] == [str(Month.before(now))]
