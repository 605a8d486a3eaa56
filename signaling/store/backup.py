"""Backup and restore of a store (reference CAP-7.8, T62): one ``.tar.gz`` archive holding

* ``manifest.json``: the archive format, the softswitch version, the time, the database kind,
  the schema version and the row count of every table;
* the database, consistent as of one instant: on SQLite ``database.sqlite3``, made with SQLite's
  online backup API (calls may go on meanwhile); on PostgreSQL ``database.pgdump``, made by
  ``pg_dump --format=custom`` (one snapshot);
* ``config/<name>``: the node's configuration file, when one is given.

Rates, rate groups, period rates, calendars, routing and mapping gateways, accounts, payments,
packages, parameters overrides and CDRs are all tables of the database, so the dump holds them:
there is no separate "rate tables" or "routing config" file to save.

A restore goes into an **empty** database of the same kind (it refuses one with tables unless
``force``: it then replaces what is there). It refuses an archive whose schema version is newer
than this code knows, and migrates one from an older version after loading it; it then checks
that every table has the row count the manifest recorded.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from signaling.store import migrate as migrate_
from signaling.store.codec import Dialect
from signaling.store.db import Database
from signaling.store.errors import StoreError
from signaling.store.store import open_store

FORMAT = "softswitch-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
CONFIG_DIR = "config"
#: How long pg_dump / pg_restore may take, seconds.
TOOL_TIMEOUT = 3600.0


class BackupError(StoreError):
    """A backup or restore that cannot be done (named reason); nothing was changed."""


@dataclass(frozen=True, slots=True)
class Manifest:
    softswitch_version: str
    created_at: datetime
    dialect: str
    schema_version: int
    tables: dict[str, int]
    database: str
    config: str | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "softswitch_version": self.softswitch_version,
                "created_at": self.created_at.isoformat(),
                "dialect": self.dialect,
                "schema_version": self.schema_version,
                "tables": self.tables,
                "database": self.database,
                "config": self.config,
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("format") != FORMAT:
                raise BackupError("not a softswitch backup (its manifest names another format)")
            if data.get("format_version") != FORMAT_VERSION:
                raise BackupError(
                    f"backup format version {data.get('format_version')} is not {FORMAT_VERSION}"
                )
            return cls(
                str(data["softswitch_version"]),
                datetime.fromisoformat(str(data["created_at"])),
                str(data["dialect"]),
                int(data["schema_version"]),
                {str(k): int(v) for k, v in dict(data["tables"]).items()},
                str(data["database"]),
                None if data.get("config") is None else str(data["config"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"the backup's manifest is damaged: {exc}") from None


def _version() -> str:
    try:
        return metadata.version("softswitch")
    except metadata.PackageNotFoundError:
        return "unknown"


def _tables(db: Database) -> list[str]:
    """The user tables of the database (PostgreSQL: not the day partitions), by name."""
    with db.transaction(write=False) as tx:
        if tx.dialect is Dialect.SQLITE:
            rows = tx.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        else:
            rows = tx.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            )
        return sorted(str(r[0]) for r in rows)


def table_counts(db: Database) -> dict[str, int]:
    """Rows per table, read in one transaction (one snapshot)."""
    names = _tables(db)
    with db.transaction(write=False) as tx:
        return {name: int(tx.scalar(f'SELECT count(*) FROM "{name}"')) for name in names}  # noqa: S608


def _sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :])


def _dialect(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    raise BackupError(f"{url!r}: not a store URL (sqlite:///FILE or postgresql://...)")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian package postgresql-client)")
    return found


def _run(args: list[str]) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{Path(args[0]).name} took longer than {TOOL_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {done.stderr.strip() or done.returncode}")


def backup(url: str, archive: Path, *, config: Path | None = None, now: datetime | None = None) -> Manifest:
    """Write the archive of the store at ``url`` (and ``config``) to ``archive``, atomically
    (a temporary file renamed into place)."""
    dialect = _dialect(url)
    if config is not None and not config.is_file():
        raise BackupError(f"{config}: no such configuration file")
    if dialect == "sqlite" and not _sqlite_path(url).is_file():
        raise BackupError(f"no such store {url} (nothing to back up)")
    store = open_store(url, migrate=False)
    try:
        with tempfile.TemporaryDirectory(prefix="softswitch-backup-") as work:
            dump = Path(work) / (SQLITE_MEMBER if dialect == "sqlite" else PG_MEMBER)
            if dialect == "sqlite":
                source = sqlite3.connect(_sqlite_path(url))
                target = sqlite3.connect(dump)
                try:
                    source.backup(target)  # one consistent copy, writers may go on
                finally:
                    target.close()
                    source.close()
                snapshot = Database(f"sqlite:///{dump}")
                try:
                    counts = table_counts(snapshot)
                    schema = migrate_.current_version(snapshot)
                finally:
                    snapshot.close()
            else:
                # the counts first, then the dump: a table can only have grown in between (the
                # restore checks "at least" for the tables nodes write to while running)
                counts = table_counts(store.db)
                schema = store.schema_version()
                _run(
                    [
                        _tool("pg_dump"),
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--file={dump}",
                        url,
                    ]
                )
            manifest = Manifest(
                _version(),
                now or datetime.now(UTC),
                dialect,
                schema,
                counts,
                dump.name,
                None if config is None else f"{CONFIG_DIR}/{config.name}",
            )
            _write_archive(archive, manifest, dump, config)
            return manifest
    finally:
        store.close()


def _write_archive(archive: Path, manifest: Manifest, dump: Path, config: Path | None) -> None:
    directory = archive.parent if str(archive.parent) else Path(".")
    if not directory.is_dir():
        raise BackupError(f"{archive}: no such directory {str(directory)!r}")
    fd, temp = tempfile.mkstemp(prefix=f".{archive.name}.", dir=directory)
    os.close(fd)
    try:
        with tarfile.open(temp, "w:gz") as tar:
            data = manifest.to_json().encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            info.mtime = int(manifest.created_at.timestamp())
            tar.addfile(info, io.BytesIO(data))
            tar.add(dump, arcname=dump.name)
            if config is not None and manifest.config is not None:
                tar.add(config, arcname=manifest.config)
        os.replace(temp, archive)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _opened(archive: Path) -> Iterator[tuple[Manifest, Path]]:
    """The archive's manifest and a directory holding its members."""
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    with tempfile.TemporaryDirectory(prefix="softswitch-restore-") as work:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(work, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(f"{archive}: not a readable backup archive ({exc})") from None
        manifest_path = Path(work) / MANIFEST
        if not manifest_path.is_file():
            raise BackupError(f"{archive}: no {MANIFEST} (not a softswitch backup)")
        manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"))
        if not (Path(work) / manifest.database).is_file():
            raise BackupError(f"{archive}: the database dump {manifest.database} is missing")
        yield manifest, Path(work)


def read_manifest(archive: Path) -> Manifest:
    with _opened(archive) as (manifest, _):
        return manifest


@dataclass(frozen=True, slots=True)
class Restored:
    manifest: Manifest
    schema_version: int
    migrated: list[int]
    config_written: Path | None


def restore(url: str, archive: Path, *, force: bool = False, config_out: Path | None = None) -> Restored:
    """Load ``archive`` into the (empty) database at ``url``; see the module doc."""
    dialect = _dialect(url)
    with _opened(archive) as (manifest, work):
        if manifest.dialect != dialect:
            raise BackupError(
                f"the backup is of a {manifest.dialect} store; restore it into a {manifest.dialect} URL"
            )
        latest = migrate_.latest_version(Dialect(dialect))
        if manifest.schema_version > latest:
            raise BackupError(
                f"the backup has schema version {manifest.schema_version}, newer than this softswitch "
                f"knows ({latest}): restore it with the version that made it ({manifest.softswitch_version})"
            )
        if config_out is not None:
            if manifest.config is None:
                raise BackupError("the backup holds no configuration file")
            if config_out.exists() and not force:
                raise BackupError(f"{config_out} exists (--force replaces it)")
        existing, holding = _existing_tables(url, dialect)
        if holding and not force:
            raise BackupError(
                f"the database is not empty ({', '.join(holding[:5])}{' …' if len(holding) > 5 else ''} "
                "have rows); restore into an empty one, or --force to replace what it holds"
            )
        dump = work / manifest.database
        if dialect == "sqlite":
            _restore_sqlite(_sqlite_path(url), dump)
        else:
            _restore_postgresql(url, dump, existing)
        store = open_store(url)  # a dump of an older version is migrated now
        migrated = list(range(manifest.schema_version + 1, store.schema_version() + 1))
        try:
            _check_counts(store.db, manifest)
            version = store.schema_version()
        finally:
            store.close()
        written = None
        if config_out is not None and manifest.config is not None:
            shutil.copyfile(work / manifest.config, config_out)
            written = config_out
    return Restored(manifest, version, migrated, written)


#: Tables a freshly initialised store (``softswitch init``) already has rows in.
_BOOKKEEPING = frozenset({"schema_version", "config_version", "cluster_secret"})


def _existing_tables(url: str, dialect: str) -> tuple[list[str], list[str]]:
    """The database's tables, and those holding rows beyond a fresh store's bookkeeping."""
    if dialect == "sqlite" and not _sqlite_path(url).exists():
        return [], []
    db = Database(url)
    try:
        counts = table_counts(db)
    finally:
        db.close()
    return sorted(counts), sorted(name for name, n in counts.items() if n and name not in _BOOKKEEPING)


def _restore_sqlite(path: Path, dump: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(dump)
    target = sqlite3.connect(path)
    try:
        source.backup(target)  # replaces the whole target database, in one step
    finally:
        target.close()
        source.close()


def _restore_postgresql(url: str, dump: Path, existing: list[str]) -> None:
    if existing:  # a fresh store's tables, or --force: empty the schema first
        db = Database(url)
        try:
            with db.transaction() as tx:
                for name in existing:
                    tx.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
                functions = tx.execute(
                    "SELECT p.oid::regprocedure::text FROM pg_proc p "
                    "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()"
                )
                for (signature,) in list(functions):
                    tx.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
        finally:
            db.close()
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
          f"--dbname={url}", str(dump)])  # fmt: skip


def _check_counts(db: Database, manifest: Manifest) -> None:
    found = table_counts(db)
    wrong = [
        f"{name}: {count} rows, {found.get(name)} restored"
        for name, count in manifest.tables.items()
        if name != "schema_version" and found.get(name, 0) < count
    ]
    if wrong:
        raise BackupError("the restored database lacks rows: " + "; ".join(wrong))
