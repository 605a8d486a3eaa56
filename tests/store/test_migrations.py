"""Migrations: from empty to the newest version, idempotent, and refusing a newer schema."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from signaling.store import SchemaError, SchemaTooNewError, Store, open_store
from signaling.store.codec import Dialect
from signaling.store.migrate import latest_version, migrations
from tests.store.conftest import drop_pg_database, new_pg_database
from tests.store.pg_server import PgServer

EXPECTED_TABLES = {
    "account",
    "account_package",
    "cdr",
    "cluster_secret",
    "config_version",
    "gateway_group",
    "gateway_group_member",
    "line_key",
    "line_lease",
    "login_failure",
    "monthly_min_charge",
    "mapping_gateway",
    "mapping_gateway_routing_group",
    "node",
    "operator_session",
    "operator_user",
    "package",
    "payment",
    "payment_purge",
    "period_rate",
    "phone",
    "rate",
    "rate_group",
    "rate_group_agent",
    "registration",
    "reservation",
    "reservation_package",
    "routing_gateway",
    "routing_gateway_mapping_gateway",
    "schema_version",
    "system_parameter",
    "work_calendar",
}


def _tables(store: Store) -> set[str]:
    with store.db.transaction(write=False) as tx:
        if store.dialect is Dialect.SQLITE:
            rows = tx.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = tx.execute(
                "SELECT tablename FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename NOT LIKE 'cdr\\_2%'"
            )
    return {str(r[0]) for r in rows}


def test_migrate_from_empty_creates_every_table_and_records_the_version(store_url: str) -> None:
    store = Store(store_url)
    try:
        assert store.schema_version() == 0
        assert store.migrate() == list(range(1, latest_version(store.dialect) + 1))
        assert store.schema_version() == latest_version(store.dialect)
        assert _tables(store) == EXPECTED_TABLES
        with store.db.transaction(write=False) as tx:
            name, checksum = tx.one("SELECT name, checksum FROM schema_version WHERE version = 1") or ()
        assert name == "initial"
        assert checksum == migrations(store.dialect)[0].checksum
    finally:
        store.close()


def test_migrate_again_does_nothing(store: Store) -> None:
    before = store.config_version()
    assert store.migrate() == []
    assert store.migrate() == []
    assert store.schema_version() == latest_version(store.dialect)
    assert store.config_version() == before


def test_a_newer_schema_is_refused_with_a_clear_error(store_url: str) -> None:
    with open_store(store_url) as store:
        newer = latest_version(store.dialect) + 1
        with store.db.transaction() as tx:
            tx.execute(
                "INSERT INTO schema_version (version, name, checksum, applied_at) "
                "VALUES (?, 'future', '', '')",
                (newer,),
            )
        with pytest.raises(SchemaTooNewError, match=rf"version {newer}, newer than this softswitch"):
            store.migrate()
    with pytest.raises(SchemaTooNewError):
        open_store(store_url)
    with pytest.raises(SchemaTooNewError):
        open_store(store_url, migrate=False)


def test_a_changed_released_migration_is_refused(store: Store) -> None:
    with store.db.transaction() as tx:
        tx.execute("UPDATE schema_version SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(SchemaError, match=r"migration 1 .* must never change"):
        store.migrate()


def test_opening_without_migrating_needs_a_current_schema(store_url: str) -> None:
    with pytest.raises(SchemaError, match=r"run the migrations"):
        open_store(store_url, migrate=False)
    open_store(store_url).close()
    open_store(store_url, migrate=False).close()


def test_a_failed_migration_leaves_nothing_behind(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(store_url)
    try:
        good = migrations(store.dialect)[0]
        broken = type(good)(good.version, good.name, good.sql + "\nCREATE TABLE broken (;\n", good.checksum)
        monkeypatch.setattr("signaling.store.migrate.migrations", lambda dialect: (broken,))
        with pytest.raises(Exception, match=r"(?i)syntax"):
            store.migrate()
        assert store.schema_version() == 0
        with store.db.transaction(write=False) as tx:
            if store.dialect is Dialect.SQLITE:
                assert tx.one("SELECT 1 FROM sqlite_master WHERE name = 'account'") is None
            else:
                assert tx.scalar("SELECT to_regclass('account')") is None
    finally:
        store.close()


def test_both_dialects_ship_the_same_versions() -> None:
    sqlite_versions = [(m.version, m.name) for m in migrations(Dialect.SQLITE)]
    pg_versions = [(m.version, m.name) for m in migrations(Dialect.POSTGRESQL)]
    assert sqlite_versions == pg_versions
    assert sqlite_versions[0] == (1, "initial")


def _columns_sqlite(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def _indexes_sqlite(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
        )
        return {r[0] for r in rows}
    finally:
        conn.close()


def test_both_dialects_have_the_same_tables_columns_and_indexes(tmp_path: Path, pg_server: PgServer) -> None:
    path = tmp_path / "parity.db"
    open_store(f"sqlite:///{path}").close()
    name = new_pg_database(pg_server)
    try:
        open_store(pg_server.url(name)).close()
        with psycopg.connect(pg_server.url(name)) as conn:
            rows = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
            ).fetchall()
            indexes = {
                r[0]
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                    "AND indexname NOT LIKE '%pkey' AND indexname NOT LIKE '%key'"
                )
            }
    finally:
        drop_pg_database(pg_server, name)
    pg_columns: dict[str, list[str]] = {}
    for table, column in rows:
        pg_columns.setdefault(table, []).append(column)
    assert pg_columns == _columns_sqlite(path)
    assert indexes == _indexes_sqlite(path)


def test_nodes_starting_together_migrate_once(store_url: str) -> None:
    """Several nodes opening an empty database at the same moment: one migrates, none fails."""
    stores = [Store(store_url) for _ in range(4)]
    try:
        for store in stores:
            assert store.schema_version() == 0  # each connection has looked for the table already
        start = threading.Barrier(len(stores))
        results: list[list[int]] = []
        errors: list[BaseException] = []

        def run(store: Store) -> None:
            start.wait()
            try:
                results.append(store.migrate())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        latest = latest_version(stores[0].dialect)
        assert sorted(results) == [[], [], [], list(range(1, latest + 1))]
        assert stores[0].schema_version() == latest
    finally:
        for store in stores:
            store.close()
