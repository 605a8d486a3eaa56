"""`softswitch payment-records export` (T50: the Payment record query's filters, exported as CSV
with the reference's nine columns) and `softswitch billing monthly-min` (T48, T49)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from signaling.store import Account, Cdr, open_store
from tests.cli.conftest import Cli

COLUMNS = [
    "Account ID",
    "Account Name",
    "Payment Type",
    "Amount",
    "Balance Before",
    "Balance After",
    "Payment Time",
    "Operator",
    "Memo",
]


def _seed(data_dir: Path) -> None:
    """Two accounts, payments by two operators in January and February 2025."""
    store = open_store(f"sqlite:///{data_dir / 'softswitch.db'}")
    try:
        store.clock = lambda: datetime(2025, 1, 10, tzinfo=UTC)
        a = store.admin("admin").create(Account(code="1001", name="Call centre, Dhaka"))
        b = store.admin("admin").create(Account(code="1002", name="Ünïcode"))
        alice, bob = store.admin("alice"), store.admin("bob")
        alice.pay(a.id, Decimal("25.00"), memo="bank transfer", now=datetime(2025, 1, 20, tzinfo=UTC))
        alice.set_credit(a.id, Decimal(50), now=datetime(2025, 2, 3, 9, 30, tzinfo=UTC))
        bob.set_credit(b.id, Decimal("12.5"), now=datetime(2025, 2, 27, tzinfo=UTC))
        bob.pay(b.id, Decimal("0.0000001"), memo='say "hi"', now=datetime(2025, 2, 28, 23, 59, tzinfo=UTC))
        alice.set_credit(b.id, Decimal(1), now=datetime(2025, 3, 1, tzinfo=UTC))
    finally:
        store.close()


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_t50_export_with_the_query_filters(cli: Cli, data_dir: Path) -> None:
    assert cli("init").returncode == 0
    _seed(data_dir)
    every = cli("payment-records", "export")
    assert every.returncode == 0, every.stderr
    rows = _rows(every.stdout)
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == ["1001", "1001", "1002", "1002", "1002"], "blank account: all"
    assert rows[1] == [
        "1001",
        "Call centre, Dhaka",
        "Payment",
        "25.0000000",
        "0.0000000",
        "25.0000000",
        "2025-01-20T00:00:00+00:00",
        "alice",
        "bank transfer",
    ]
    credit_feb = cli(
        "payment-records", "export", "--type", "credit", "--from", "2025-02-01", "--to", "2025-03-01"
    )
    assert [(r[0], r[2], r[3]) for r in _rows(credit_feb.stdout)[1:]] == [
        ("1001", "Credit", "50.0000000"),
        ("1002", "Credit", "12.5000000"),
    ]
    by_bob = _rows(cli("payment-records", "export", "--operator", "bob").stdout)[1:]
    assert [(r[1], r[2], r[3], r[8]) for r in by_bob] == [
        ("Ünïcode", "Credit", "12.5000000", ""),
        ("Ünïcode", "Payment", "0.0000001", 'say "hi"'),
    ]
    one = _rows(cli("payment-records", "export", "--account", "1002", "--type", "payment").stdout)
    assert [r[3] for r in one[1:]] == ["0.0000001"]


def test_export_to_a_file_for_excel(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    assert cli("init").returncode == 0
    _seed(data_dir)
    target = tmp_path / "payments.csv"
    done = cli("payment-records", "export", "--excel", str(target))
    assert done.returncode == 0 and "5 payment records written" in done.stderr
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    assert _rows(raw.decode("utf-8-sig"))[0] == COLUMNS


def test_export_refuses_bad_filters(cli: Cli) -> None:
    assert cli("init").returncode == 0
    assert cli("payment-records", "export", "--account", "9999").returncode == 1
    assert cli("payment-records", "export", "--type", "refund").returncode == 2
    backwards = cli("payment-records", "export", "--from", "2025-03-01", "--to", "2025-02-01")
    assert backwards.returncode == 2 and "is not after" in backwards.stderr


@pytest.mark.parametrize(("consumed", "charged"), [("60.00", "40.00"), ("150.00", None)])
def test_t48_t49_monthly_min_for_a_month(
    cli: Cli, data_dir: Path, consumed: str, charged: str | None
) -> None:
    assert cli("init").returncode == 0
    store = open_store(f"sqlite:///{data_dir / 'softswitch.db'}")
    try:
        store.clock = lambda: datetime(2025, 1, 10, tzinfo=UTC)
        account = store.admin().create(Account(code="1001", balance=Decimal(400), monthly_min=Decimal(100)))
        end = datetime(2025, 2, 14, tzinfo=UTC)
        store.add_cdrs(
            [Cdr("c1", end - timedelta(seconds=60), end, account_id=account.id, fee=Decimal(consumed))]
        )
    finally:
        store.close()
    assert cli("billing", "monthly-min", "--month", "2025-13").returncode == 2
    done = cli("billing", "monthly-min", "--month", "2025-02")
    assert done.returncode == 0, done.stderr
    assert "1 accounts evaluated" in done.stderr
    records = _rows(cli("payment-records", "export", "--type", "monthly-min").stdout)[1:]
    if charged is None:
        assert records == []
    else:
        assert [(r[2], r[3]) for r in records] == [("Monthly Min", f"-{charged}00000")]
    again = cli("billing", "monthly-min", "--month", "2025-02")
    assert "0 accounts evaluated, 0 charged" in again.stderr
