"""Every store test runs twice: on a fresh SQLite file and on a fresh PostgreSQL database of a
real server that this session starts (tests/store/pg_server.py) and removes at the end."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from signaling.store import Store, open_store
from tests.store.pg_server import PgServer, start_server

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_server()
    if server is None:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql)")
    try:
        yield server
    finally:
        server.stop()


def new_pg_database(server: PgServer) -> str:
    name = f"store_test_{next(_names)}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def drop_pg_database(server: PgServer, name: str) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'softswitch.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = new_pg_database(server)
    try:
        yield server.url(name)
    finally:
        drop_pg_database(server, name)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on an empty database of each kind."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


#: A digest password for test records (not a secret).
TEST_DIGEST = "digest-for-tests"
