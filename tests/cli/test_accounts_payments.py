"""`softswitch accounts` and the payment commands, through the admin API: amounts read as
Decimal from their text, refusals with a message and exit code 1, usage errors with 2
(reference payments T43-T52 for the operations themselves, tested in tests/store)."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli


@pytest.fixture
def demo(cli: Cli) -> Cli:
    assert cli("init").returncode == 0
    assert cli("seed-demo").returncode == 0
    return cli


def _field(cli: Cli, account: str, name: str) -> str:
    shown = cli("accounts", "show", account)
    assert shown.returncode == 0, shown.stderr
    for line in shown.stdout.splitlines():
        key, _, value = line.partition("  ")
        if key.strip() == name:
            return value.strip()
    raise AssertionError(f"no {name!r} in:\n{shown.stdout}")


def test_payments_are_exact_and_recorded(demo: Cli) -> None:
    for _ in range(10):  # ten payments of 0.1 are exactly 1 (floats would not be)
        done = demo("pay", "1001", "0.1", "--memo", "top-up")
        assert done.returncode == 0, done.stderr
    assert _field(demo, "1001", "balance") == "11.00"
    paid = demo("pay", "1001", "-0.0000001", "--operator", "alice")  # 7 places: kept
    assert paid.returncode == 0 and "balance 11.00 -> 10.9999999" in paid.stdout
    too_fine = demo("pay", "1001", "0.00000001")  # 8 places: refused, not rounded
    assert too_fine.returncode == 1 and "at most 7 decimal places" in too_fine.stderr
    assert _field(demo, "1001", "balance") == "10.9999999"
    records = demo("payments", "1001")
    assert records.returncode == 0
    rows = [line for line in records.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 12  # the opening balance, ten payments, the adjustment
    assert "opening balance" in rows[0] and "top-up" in rows[1] and "alice" in rows[-1]


def test_credit_and_make_zero(demo: Cli) -> None:
    credit = demo("credit", "1001", "50")
    assert credit.returncode == 0 and "credit limit 0.00 -> 50.00" in credit.stdout
    assert _field(demo, "1001", "available") == "60.00"
    negative = demo("credit", "1001", "-5")
    assert negative.returncode == 1 and "must not be negative" in negative.stderr
    zero = demo("make-zero", "1001", "--memo", "closing")
    assert zero.returncode == 0 and "balance 10.00 -> 0.00" in zero.stdout
    assert _field(demo, "1001", "balance") == "0.00"
    kinds = [line.split()[1] for line in demo("payments", "1001").stdout.splitlines()[1:]]
    assert kinds == ["payment", "credit", "make_zero"]


def test_bad_amounts_and_unknown_accounts(demo: Cli) -> None:
    for text in ("1e3", "1,000", "ten", "0.1.2", "nan"):
        done = demo("pay", "1001", text)
        assert done.returncode == 2, text
        assert "is not an amount" in done.stderr and "plain decimal notation" in done.stderr
    missing = demo("pay", "9999", "1")
    assert missing.returncode == 1 and "no account '9999'" in missing.stderr
    assert demo("payments", "9999").returncode == 1
    zero = demo("pay", "1001", "0")
    assert zero.returncode == 1 and "must not be zero" in zero.stderr


def test_add_set_lock_unlock(demo: Cli) -> None:
    added = demo(
        "accounts", "add", "2001", "--name", "Call centre", "--rate-group", "demo-retail",
        "--balance", "5.50", "--credit", "2", "--billing", "postpaid",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "balance 5.50, credit limit 2.00" in added.stdout
    assert _field(demo, "2001", "rate group") == "demo-retail"
    duplicate = demo("accounts", "add", "2001")
    assert duplicate.returncode == 1 and "refused" in duplicate.stderr
    spaced = demo("accounts", "add", "20 01")
    assert spaced.returncode == 1 and "code: must not contain spaces" in spaced.stderr
    unknown_group = demo("accounts", "set", "2001", "--rate-group", "nope")
    assert unknown_group.returncode == 1
    assert "no rate group 'nope' (known: demo-retail, demo-carrier-a, demo-carrier-b)" in unknown_group.stderr
    changed = demo(
        "accounts", "set", "2001", "--name", "Renamed", "--max-calls", "30", "--expiry", "2030-01-01"
    )
    assert changed.returncode == 0, changed.stderr
    assert _field(demo, "2001", "name") == "Renamed" and _field(demo, "2001", "max calls") == "30"
    assert _field(demo, "2001", "expiry").startswith("2030-01-01T00:00:00")
    extended = demo("pay", "2001", "1")  # SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY: 365 days (T43)
    assert extended.returncode == 0 and "expiry now 2031-01-01T00:00:00" in extended.stdout, extended.stdout
    nothing = demo("accounts", "set", "2001")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    assert demo("accounts", "lock", "2001").returncode == 0
    assert _field(demo, "2001", "state") == "locked"
    assert "locked" in next(
        line for line in demo("accounts", "list").stdout.splitlines() if line.startswith("2001")
    )
    assert demo("accounts", "unlock", "2001").returncode == 0
    assert _field(demo, "2001", "state") == "active"
    vendors = demo("accounts", "list", "--kind", "vendor").stdout.splitlines()[1:]
    assert [line.split()[0] for line in vendors] == ["carrier-a", "carrier-b"]


def test_commands_on_a_missing_store_say_how_to_create_it(cli: Cli) -> None:
    done = cli("accounts", "list")
    assert done.returncode == 2
    assert "no store at sqlite:///" in done.stderr and "softswitch init" in done.stderr
    usage = cli("accounts")
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_the_ip_whitelist_is_set_shown_refused_and_cleared(demo: Cli) -> None:
    """Behaviour 60's setting: IPs and CIDR networks, a bad entry refused naming itself."""
    assert _field(demo, "1001", "ip whitelist") == "any address"
    done = demo("accounts", "set", "1001", "--ip-whitelist", "203.0.113.10, 198.51.100.0/24 2001:db8::/32")
    assert done.returncode == 0, done.stderr
    assert _field(demo, "1001", "ip whitelist") == "203.0.113.10 198.51.100.0/24 2001:db8::/32"
    bad = demo("accounts", "set", "1001", "--ip-whitelist", "10.0.0.5/24")
    assert bad.returncode == 1 and "ip_whitelist: '10.0.0.5/24' is not an IP address" in bad.stderr
    assert _field(demo, "1001", "ip whitelist") == "203.0.113.10 198.51.100.0/24 2001:db8::/32"
    assert demo("accounts", "set", "1001", "--ip-whitelist", "none").returncode == 0
    assert _field(demo, "1001", "ip whitelist") == "any address"
    added = demo("accounts", "add", "2002", "--ip-whitelist", "192.0.2.7")
    assert added.returncode == 0, added.stderr
    assert _field(demo, "2002", "ip whitelist") == "192.0.2.7"
