"""Fixtures of the API tests: a store on SQLite and PostgreSQL (tests/store's), a settable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.store.conftest import pg_server, store, store_url

__all__ = ["Clock", "clock", "pg_server", "store", "store_url"]


class Clock:
    """A wall clock the test moves by hand (tokens expire, lockouts end, without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()
