"""Opening a store: URLs, the embedded default, and the SQLite settings durability depends on."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from signaling.store import DEFAULT_URL, Store, ValidationError, open_store
from signaling.store.codec import Dialect
from signaling.store.db import parse_url
from tests.store.conftest import drop_pg_database, new_pg_database
from tests.store.pg_server import PgServer


def test_urls() -> None:
    assert parse_url("sqlite:///var/softswitch.db").path == Path("var/softswitch.db")
    assert parse_url("sqlite:////srv/ss.db").path == Path("/srv/ss.db")
    assert parse_url("postgresql://u@db.example/softswitch").dialect is Dialect.POSTGRESQL
    assert parse_url(DEFAULT_URL).dialect is Dialect.SQLITE
    with pytest.raises(ValidationError, match=r"^url: 'mysql://x': expected sqlite:///PATH or postgresql://"):
        parse_url("mysql://x")
    with pytest.raises(ValidationError, match=r"^url: SQLite needs a file path"):
        parse_url("sqlite:///:memory:")


def test_the_default_store_is_a_file_under_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store() as store:
        assert store.schema_version() >= 1
    assert (tmp_path / "var" / "softswitch.db").exists()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_full_sync(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store, store.db.transaction(write=False) as tx:
        assert tx.scalar("PRAGMA journal_mode") == "wal"
        assert tx.scalar("PRAGMA foreign_keys") == 1
        assert tx.scalar("PRAGMA synchronous") == 2  # FULL


def test_a_closed_store_refuses_work(store_url: str) -> None:
    store = open_store(store_url)
    store.close()
    with pytest.raises(Exception, match=r"closed"):
        store.config_version()


def test_a_store_is_usable_from_a_context_manager(store_url: str) -> None:
    with open_store(store_url) as store:
        assert isinstance(store, Store)


def test_a_lost_postgresql_connection_is_replaced(pg_server: PgServer) -> None:
    """The server ends the node's idle connection (restart, failover, idle timeout): the next
    operation opens a new one instead of failing."""
    name = new_pg_database(pg_server)
    try:
        with open_store(pg_server.url(name)) as store:
            with store.db.transaction(write=False) as tx:
                pid = tx.scalar("SELECT pg_backend_pid()")
            with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            assert store.config_version() == 0
            with store.db.transaction(write=False) as tx:
                assert tx.scalar("SELECT pg_backend_pid()") != pid
    finally:
        drop_pg_database(pg_server, name)
