"""Connections and transactions, the same way on SQLite and PostgreSQL.

Each thread gets its own connection (SQLite connections must not be shared between threads, and a
PostgreSQL connection runs one transaction at a time). ``Database.transaction()`` is the only way
to run SQL: it yields a :class:`Tx`, commits when the block ends and rolls back on an exception;
a transaction opened inside another on the same thread joins it.

SQL is written once with ``?`` placeholders; for PostgreSQL they become ``%s``.

SQLite is opened in WAL mode with ``synchronous=FULL`` (a commit is on disk before it returns:
"durable before reported"), foreign keys on, and a busy timeout so concurrent writers wait their
turn instead of failing. Write transactions start with ``BEGIN IMMEDIATE``, which takes the write
lock up front: a read-then-write (a payment reading the balance it updates) cannot interleave
with another writer. On PostgreSQL the same guarantee comes from ``SELECT … FOR UPDATE``
(:attr:`Tx.for_update`).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from signaling.store.codec import Dialect
from signaling.store.errors import AppendOnlyError, ConflictError, StoreError, ValidationError

#: How long a SQLite writer waits for another writer's transaction, milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000

_UNIQUE_SQLITE = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")


@dataclass(frozen=True, slots=True)
class StoreUrl:
    dialect: Dialect
    #: SQLite file; None for PostgreSQL.
    path: Path | None
    #: The connection string handed to psycopg; "" for SQLite.
    dsn: str


def parse_url(url: str) -> StoreUrl:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``postgresql://…``."""
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///") :]
        if not rest or rest == ":memory:":
            raise ValidationError("url", "SQLite needs a file path (sqlite:///var/softswitch.db)")
        return StoreUrl(Dialect.SQLITE, Path(rest), "")
    if url.startswith(("postgresql://", "postgres://")):
        return StoreUrl(Dialect.POSTGRESQL, None, url)
    raise ValidationError("url", f"{url!r}: expected sqlite:///PATH or postgresql://…")


class _Cursor(Protocol):
    @property
    def description(self) -> Any: ...  # noqa: ANN401 (driver-specific)

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int) -> list[Any]: ...


class _Connection(Protocol):
    """What both drivers' connections offer and this module uses."""

    def execute(self, query: str, params: tuple[Any, ...] = (), /) -> _Cursor: ...

    def cursor(self) -> Any: ...  # noqa: ANN401 (driver-specific)

    def close(self) -> None: ...


class Tx:
    """One transaction on one connection."""

    def __init__(self, conn: _Connection, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect
        #: Appended to a SELECT that reads rows it is about to update (row lock on PostgreSQL;
        #: SQLite already holds the database write lock).
        self.for_update = " FOR UPDATE" if dialect is Dialect.POSTGRESQL else ""

    def sql(self, text: str) -> str:
        if self.dialect is Dialect.POSTGRESQL:
            return text.replace("%", "%%").replace("?", "%s")
        return text

    def execute(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self._conn.execute(self.sql(text), tuple(params))
            if cursor.description is None:
                return []
            return [tuple(row) for row in cursor.fetchall()]
        except StoreError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def executemany(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        """One statement for many parameter rows (bulk loads: no per-row round trip on
        PostgreSQL, whose driver pipelines them; no result rows)."""
        try:
            cursor = self._conn.cursor()
            try:
                cursor.executemany(self.sql(text), rows)
            finally:
                cursor.close()
        except StoreError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def execute_each(self, text: str, rows: Sequence[Sequence[Any]]) -> list[list[tuple[Any, ...]]]:
        """One statement for each parameter row, and each one's result rows (a batch of
        ``INSERT … RETURNING``): on PostgreSQL pipelined, one round trip for all; on SQLite one
        call each, in-process."""
        try:
            if self.dialect is Dialect.SQLITE:
                return [self.execute(text, row) for row in rows]
            cursor = self._conn.cursor()
            try:
                cursor.executemany(self.sql(text), rows, returning=True)
                results: list[list[tuple[Any, ...]]] = []
                while True:
                    results.append([tuple(r) for r in cursor.fetchall()] if cursor.description else [])
                    if not cursor.nextset():
                        return results
            finally:
                cursor.close()
        except StoreError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def stream(self, text: str, params: Sequence[Any] = (), *, size: int = 10_000) -> Iterator[list[Any]]:
        """The result rows in chunks of about ``size``, as the driver gives them (tuples on both
        drivers), without first copying the whole result into one list: a table of a million
        rows is read and turned into objects chunk by chunk."""
        try:
            cursor = self._conn.execute(self.sql(text), tuple(params))
            while True:
                chunk = cursor.fetchmany(size)
                if not chunk:
                    return
                yield chunk
        except StoreError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def one(self, text: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.execute(text, params)
        return rows[0] if rows else None

    def scalar(self, text: str, params: Sequence[Any] = ()) -> Any:  # noqa: ANN401 (a driver value)
        row = self.one(text, params)
        return None if row is None else row[0]

    def script(self, text: str) -> None:
        """Several statements, no parameters (a migration file)."""
        try:
            if self.dialect is Dialect.SQLITE:
                # executescript() would commit first; run the statements one by one instead.
                for statement in split_sqlite_script(text):
                    self._conn.execute(statement)
            else:
                self._conn.execute(text)
        except Exception as exc:
            raise _translate(exc) from exc


def split_sqlite_script(text: str) -> Iterator[str]:
    """Statements of a SQLite script, cut where ``sqlite3.complete_statement`` says one ends
    (so a ``;`` inside a trigger body or a string does not cut it)."""
    buffer = ""
    for line in text.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip() and not all(
        not ln.strip() or ln.strip().startswith("--") for ln in buffer.splitlines()
    ):
        raise ValidationError("migration", f"unterminated statement: {buffer.strip()[:60]!r}")


def _translate(exc: Exception) -> StoreError:  # noqa: PLR0911 (one return per error class)
    """A driver error → the store's own error, naming the field where the database says which."""
    message = str(exc).strip()
    if "append-only" in message:
        return AppendOnlyError(message.split("\n")[0])
    if isinstance(exc, OverflowError):  # sqlite3: a Python int beyond 64 bits
        return ValidationError("value", "a whole number too large to store (at most 2^63 - 1)")
    if isinstance(exc, sqlite3.IntegrityError):
        found = _UNIQUE_SQLITE.search(message)
        if found:
            column = found.group(1).split(", ")[-1].split(".")[-1]
            return ValidationError(column, "already used")
        return ConflictError(message)
    try:
        import psycopg  # noqa: PLC0415 - PostgreSQL support is optional
    except ImportError:  # pragma: no cover - without psycopg there is no PostgreSQL error
        return ConflictError(message)
    if isinstance(exc, psycopg.errors.UniqueViolation):
        column = exc.diag.column_name or _column_of_key(exc.diag.constraint_name, exc.diag.table_name)
        return ValidationError(column, "already used")
    if isinstance(exc, psycopg.errors.DataError):  # a value out of its column's range
        return ValidationError("value", message.split("\n")[0])
    if isinstance(exc, psycopg.errors.IntegrityError):
        return ConflictError(message.split("\n")[0])
    if isinstance(exc, sqlite3.Error | psycopg.Error):
        return StoreError(message.split("\n")[0])
    raise exc


def _column_of_key(constraint: str | None, table: str | None) -> str:
    """PostgreSQL names a UNIQUE constraint ``<table>_<column>_key``."""
    name = constraint or "value"
    if table and name.startswith(table + "_"):
        name = name[len(table) + 1 :]
    return name.removesuffix("_key")


class Database:
    """A SQLite file or a PostgreSQL database, one connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = parse_url(url)
        self.dialect = self.url.dialect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._closed = False

    def _connect(self) -> _Connection:
        if self.dialect is Dialect.SQLITE:
            assert self.url.path is not None
            self.url.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.url.path,
                isolation_level=None,
                timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            return conn
        import psycopg  # noqa: PLC0415 - only PostgreSQL stores need the driver

        pg = psycopg.connect(self.url.dsn, autocommit=True)
        pg.execute("SET TIME ZONE 'UTC'")
        return pg

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(conn, "broken", False):
            # PostgreSQL went away (restart, failover): drop the dead connection, open a new one.
            self._forget(conn)
            conn = None
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        self._local.conn = None
        with contextlib.suppress(Exception):
            conn.close()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        """A transaction on this thread's connection; inside another one, that one.

        ``write`` matters on SQLite only: a write transaction takes the database write lock at
        its start (``BEGIN IMMEDIATE``), a read transaction reads one consistent snapshot."""
        outer: Tx | None = getattr(self._local, "tx", None)
        if outer is not None:
            yield outer
            return
        conn = self._begin(write)
        tx = Tx(conn, self.dialect)
        self._local.tx = tx
        try:
            yield tx
        except BaseException:
            self._local.tx = None
            self._rollback(conn)
            raise
        self._local.tx = None
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollback(conn)
            raise _translate(exc) from exc

    def _begin(self, write: bool) -> _Connection:
        begin = "BEGIN IMMEDIATE" if write and self.dialect is Dialect.SQLITE else "BEGIN"
        conn = self._connection()
        try:
            conn.execute(begin)
        except Exception as exc:
            if not getattr(conn, "broken", False):
                raise _translate(exc) from exc
            # The server closed this connection while it was idle: nothing was sent in this
            # transaction yet, so starting it again on a new connection is safe.
            conn = self._connection()
            try:
                conn.execute(begin)
            except Exception as again:
                raise _translate(again) from again
        return conn

    def _rollback(self, conn: _Connection) -> None:
        """Roll back, or, when even that fails (a lost connection), drop the connection."""
        try:
            conn.execute("ROLLBACK")
        except Exception:
            self._forget(conn)

    def close(self) -> None:
        """Close every connection this database opened (on any thread)."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
