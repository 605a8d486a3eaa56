"""Call-processing tests run on a fresh SQLite file (``sqlite_store``: what happens in memory)
and, where the store matters (reservations, CDRs, recovery), on both databases with the real
PostgreSQL server of tests/store (the same fixtures: ``store_url``, ``store``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signaling.store import Store, open_store
from tests.store.conftest import pg_server, store, store_url

__all__ = ["pg_server", "sqlite_store", "store", "store_url"]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'callproc.db'}")
    try:
        yield opened
    finally:
        opened.close()
