"""`softswitch init`, `migrate` and `seed-demo`: the store is created in the data directory
(SQLite, WAL), migrated once, reported, and seeded with the demo configuration."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from signaling.store.codec import Dialect
from signaling.store.migrate import migrations
from tests.cli.conftest import Cli

#: The newest schema version this code ships, and the versions a new store applies.
NEWEST = len(migrations(Dialect.SQLITE))
ALL = ", ".join(str(v) for v in range(1, NEWEST + 1))


def test_init_creates_the_store_in_the_data_directory(cli: Cli, data_dir: Path) -> None:
    done = cli("init")
    assert done.returncode == 0, done.stderr
    db = data_dir / "softswitch.db"
    assert db.is_file()
    assert "created sqlite:///" in done.stdout and f"schema version {NEWEST} (applied {ALL})" in done.stdout
    assert "softswitch seed-demo" in done.stdout  # what to do next
    # not a terminal: the progress is plain lines on stderr, stdout stays clean
    assert f"migrate: done, {NEWEST}/{NEWEST} 100%" in done.stderr and "\r" not in done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = cli("init")
    assert again.returncode == 0 and f"already at schema version {NEWEST}; nothing to do" in again.stdout


def test_migrate_lists_applied_and_pending_and_applies(cli: Cli, data_dir: Path) -> None:
    missing = cli("migrate")
    assert missing.returncode == 2
    assert "no store at sqlite:///" in missing.stderr and "softswitch init" in missing.stderr
    # a store a previous softswitch left at version 1: the rest pending
    first = migrations(Dialect.SQLITE)[0]
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "softswitch.db") as conn:
        conn.executescript(first.sql)
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO schema_version VALUES (1, ?, ?, '2025-01-01T00:00:00+00:00')",
            (first.name, first.checksum),
        )
    status = cli("migrate", "--status")
    assert status.returncode == 0, status.stderr
    assert "applied  0001 initial  (2025-01-01T00:00:00+00:00)" in status.stdout
    assert "pending  0002 money_scale_7" in status.stdout and "pending  0003 reservations" in status.stdout
    assert cli("accounts", "list").returncode == 2  # not usable before it is migrated
    done = cli("migrate")
    assert done.returncode == 0, done.stderr
    rest = NEWEST - 1
    assert f"applied {ALL[3:]}: schema version {NEWEST}" in done.stdout
    assert f"migrate: started ({rest})" in done.stderr
    assert f"migrate: done, {rest}/{rest} 100%" in done.stderr
    assert "up to date" in cli("migrate").stdout
    assert cli("accounts", "list").returncode == 0


def test_migrate_refuses_a_store_from_a_newer_softswitch(cli: Cli, data_dir: Path) -> None:
    assert cli("init").returncode == 0
    with sqlite3.connect(data_dir / "softswitch.db") as conn:
        conn.execute(
            "INSERT INTO schema_version (version, name, checksum, applied_at) "
            "VALUES (99, 'future', 'x', 'now')"
        )
    for command in (["migrate"], ["init"], ["accounts", "list"]):
        done = cli(*command)
        assert done.returncode == 2, (command, done.stderr)
        assert "newer than this softswitch" in done.stderr, done.stderr


def test_seed_demo_then_again_is_refused(cli: Cli) -> None:
    assert cli("init").returncode == 0
    seeded = cli("seed-demo", "--carrier-ports", "26001,26002")
    assert seeded.returncode == 0, seeded.stderr
    assert (
        "carrier-a at 127.0.0.1:26001 (priority 1), carrier-b at 127.0.0.1:26002 (priority 2)"
        in seeded.stdout
    )
    listed = cli("accounts", "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["ACCOUNT", "NAME", "KIND"]
    assert any(line.startswith("1001 ") and "10.00" in line and "demo-retail" in line for line in lines)
    assert sum(" vendor " in line for line in lines) == 2
    analysis = cli("route-analysis", "12125550100", "--ingress", "demo-customer")
    assert analysis.returncode == 0, analysis.stderr
    assert "Rate: account rate 'demo-retail' prefix 1" in analysis.stdout
    assert re.search(r"1\. carrier-a .*\n(.*\n)*\s+2\. carrier-b ", analysis.stdout)
    assert "First choice: carrier-a" in analysis.stdout
    again = cli("seed-demo")
    assert again.returncode == 1 and "already there" in again.stderr
    bad = cli("seed-demo", "--carrier-ports", "5081")
    assert bad.returncode == 2 and "two ports" in bad.stderr


def test_the_same_commands_on_sqlite_and_postgresql(cli: Cli, store_url: str, tmp_path: Path) -> None:
    """--store names any store, PostgreSQL included (a real server: tests/store/pg_server.py)."""
    at = ("--store", store_url)
    created = cli("init", *at)
    assert created.returncode == 0, created.stderr
    assert f"schema version {NEWEST} (applied {ALL})" in created.stdout
    assert cli("seed-demo", *at).returncode == 0
    paid = cli("pay", *at, "1001", "1.2345678")
    assert paid.returncode == 0 and "balance 10.00 -> 11.2345678" in paid.stdout, paid.stderr
    sheet = tmp_path / "rates.csv"
    sheet.write_text("prefix,billing_rate\n880,0.0123456789\n", encoding="utf-8")
    assert cli("rates", "import", *at, "extra", str(sheet), "--create").returncode == 0
    exported = cli("rates", "export", *at, "extra")
    assert exported.returncode == 0 and ",0.0123456789," in exported.stdout
    assert f"already at schema version {NEWEST}" in cli("init", *at).stdout
    assert not (tmp_path / "data").exists()  # the default store was never created on the side
