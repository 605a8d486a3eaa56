"""Applying the schema migrations, in order, once.

Each version is a pair of plain SQL files (``migrations/NNNN_name.{sqlite,postgresql}.sql``).
``migrate()`` runs, inside one transaction, every version above the one recorded in
``schema_version``, and records each with its file's SHA-256 and the time; run again, it does
nothing. It refuses to touch a database whose recorded version is above the newest this code
knows (a newer softswitch migrated it: running old code on it could corrupt it), and a database
whose applied files no longer match the shipped ones.

Two nodes starting at once on one PostgreSQL database are serialised by a transaction-scoped
advisory lock; on SQLite ``BEGIN IMMEDIATE`` does the same.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from signaling.store.codec import Dialect
from signaling.store.db import Database, Tx
from signaling.store.errors import SchemaError, SchemaTooNewError, StoreError

#: pg_advisory_xact_lock key for migrations ("SSWM" in ASCII).
MIGRATION_LOCK_KEY = 0x5353574D

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sqlite|postgresql)\.sql$")

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str


@cache
def migrations(dialect: Dialect) -> tuple[Migration, ...]:
    """The shipped migrations for ``dialect``, by version; versions must run 1, 2, 3… with no gap."""
    found: dict[int, Migration] = {}
    for entry in importlib.resources.files("signaling.store.migrations").iterdir():
        match = _FILE.match(entry.name)
        if not match or match.group(3) != dialect.value:
            continue
        sql = entry.read_text(encoding="utf-8")
        version = int(match.group(1))
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        found[version] = Migration(version, match.group(2), sql, checksum)
    ordered = tuple(found[v] for v in sorted(found))
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise SchemaError(f"migration {expected} is missing for {dialect.value}")
    return ordered


def latest_version(dialect: Dialect) -> int:
    shipped = migrations(dialect)
    return shipped[-1].version if shipped else 0


def _has_version_table(tx: Tx) -> bool:
    if tx.dialect is Dialect.SQLITE:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        return tx.one(sql) is not None
    return tx.scalar("SELECT to_regclass('schema_version') IS NOT NULL") is True


def current_version(db: Database) -> int:
    """The version recorded in the database; 0 for an empty one."""
    with db.transaction(write=False) as tx:
        if not _has_version_table(tx):
            return 0
        return int(tx.scalar("SELECT coalesce(max(version), 0) FROM schema_version"))


@dataclass(frozen=True, slots=True)
class Applied:
    version: int
    name: str
    applied_at: str


def applied(db: Database) -> list[Applied]:
    """The migrations recorded in the database, by version (empty for an empty database)."""
    with db.transaction(write=False) as tx:
        if not _has_version_table(tx):
            return []
        rows = tx.execute("SELECT version, name, applied_at FROM schema_version ORDER BY version")
        return [Applied(int(v), str(n), str(t)) for v, n, t in rows]


def pending(db: Database) -> list[Migration]:
    """The shipped migrations the database lacks, in the order they would run."""
    current = current_version(db)
    return [m for m in migrations(db.dialect) if m.version > current]


def migrate(
    db: Database,
    *,
    now: datetime | None = None,
    progress: Callable[[Migration], None] | None = None,
) -> list[int]:
    """Bring the schema up to date; the versions applied now (empty when it already was).
    ``progress`` is called after each migration's SQL ran (before the one commit)."""
    try:
        return _migrate(db, now, progress)
    except StoreError as exc:
        # PostgreSQL: a node that waited for another's migration may still see the catalog as it
        # was when its transaction began; a new transaction sees it whole.
        if "already exists" not in str(exc):
            raise
        return _migrate(db, now, progress)


def _migrate(db: Database, now: datetime | None, progress: Callable[[Migration], None] | None) -> list[int]:
    shipped = migrations(db.dialect)
    latest = shipped[-1].version if shipped else 0
    applied_now: list[int] = []
    stamp = (now or datetime.now(UTC)).isoformat()
    with db.transaction() as tx:
        if db.dialect is Dialect.POSTGRESQL:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))
        tx.execute(_VERSION_TABLE)
        recorded = {int(v): str(c) for v, c in tx.execute("SELECT version, checksum FROM schema_version")}
        current = max(recorded, default=0)
        if current > latest:
            raise SchemaTooNewError(
                f"the database schema is version {current}, newer than this softswitch knows "
                f"(up to {latest}): upgrade the softswitch, or point it at another database"
            )
        for migration in shipped:
            checksum = recorded.get(migration.version)
            if checksum is not None and checksum != migration.checksum:
                raise SchemaError(
                    f"migration {migration.version} ({migration.name}) differs from the one applied "
                    "to this database; released migrations must never change"
                )
        for migration in shipped:
            if migration.version <= current:
                continue
            tx.script(migration.sql)
            tx.execute(
                "INSERT INTO schema_version (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                (migration.version, migration.name, migration.checksum, stamp),
            )
            applied_now.append(migration.version)
            if progress is not None:
                progress(migration)
    return applied_now
