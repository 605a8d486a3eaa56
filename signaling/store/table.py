"""Generic reads and writes of records (see :mod:`signaling.store.record`).

A record class maps to one table: its ``id`` is the primary key, every other field is a column of
the same name, except link fields, which live in their link tables. Before a write, every ``ref``
field and every id in a link field is checked to exist, so a bad reference is reported by field
name instead of as a foreign-key failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from signaling.store import codec
from signaling.store.codec import Kind
from signaling.store.db import Tx
from signaling.store.errors import NotFoundError, ValidationError
from signaling.store.record import FieldSpec, Record, specs

R = TypeVar("R", bound=Record)

#: Above this many ids, link rows are read for the whole table instead of with ``IN (…)``.
_IN_LIMIT = 500


def columns(cls: type[Record]) -> tuple[FieldSpec, ...]:
    """The stored columns of ``cls``, ``id`` and link fields left out."""
    return tuple(s for s in specs(cls) if s.name != "id" and s.link is None)


def _links(cls: type[Record]) -> tuple[FieldSpec, ...]:
    return tuple(s for s in specs(cls) if s.link is not None)


def noun(table: str) -> str:
    return table.replace("_", " ")


def exists(tx: Tx, table: str, record_id: int) -> bool:
    return tx.one(f"SELECT 1 FROM {table} WHERE id = ?", (record_id,)) is not None  # noqa: S608


def check_references(tx: Tx, record: Record) -> None:
    """Every ``ref`` field and link id names an existing record, else ValidationError(field)."""
    for spec in specs(type(record)):
        value = getattr(record, spec.name)
        if spec.ref is not None and value is not None and not exists(tx, spec.ref, value):
            raise ValidationError(spec.name, f"no {noun(spec.ref)} with id {value}")
        if spec.link is not None:
            if len(set(value)) != len(value):
                raise ValidationError(spec.name, "lists an id twice")
            for target in value:
                if not exists(tx, spec.link.target_table, target):
                    raise ValidationError(spec.name, f"no {noun(spec.link.target_table)} with id {target}")


def check_unique(tx: Tx, record: Record) -> None:
    """No other record has the same values in any of the class's UNIQUE field sets."""
    record_id = getattr(record, "id", 0)
    kinds = {s.name: s.kind for s in specs(type(record))}
    for names in type(record).UNIQUE:
        values = [getattr(record, n) for n in names]
        if any(v is None for v in values):
            continue
        where = " AND ".join(f"{n} = ?" for n in names)
        params = [codec.encode(tx.dialect, kinds[n], v) for n, v in zip(names, values, strict=True)]
        sql = f"SELECT 1 FROM {record.TABLE} WHERE {where} AND id <> ?"  # noqa: S608
        if tx.one(sql, [*params, record_id]) is not None:
            scope = f" with the same {', '.join(n for n in names[1:])}" if len(names) > 1 else ""
            raise ValidationError(names[0], f"{values[0]!r} is already used{scope}")


def _write_links(tx: Tx, record: Record, record_id: int) -> None:
    for spec in _links(type(record)):
        link = spec.link
        assert link is not None
        tx.execute(f"DELETE FROM {link.table} WHERE {link.owner_column} = ?", (record_id,))  # noqa: S608
        for position, target in enumerate(getattr(record, spec.name)):
            if link.ordered:
                sql = (
                    f"INSERT INTO {link.table} ({link.owner_column}, {link.target_column}, position) "  # noqa: S608
                    "VALUES (?, ?, ?)"
                )
                tx.execute(sql, (record_id, target, position))
            else:
                sql = f"INSERT INTO {link.table} ({link.owner_column}, {link.target_column}) VALUES (?, ?)"  # noqa: S608
                tx.execute(sql, (record_id, target))


def insert(tx: Tx, record: Record, extra: dict[str, tuple[Kind, Any]] | None = None) -> int:
    """Store a new record (its ``id`` is ignored); the id the database gave it."""
    check_references(tx, record)
    check_unique(tx, record)
    cols = columns(type(record))
    names = [c.name for c in cols]
    values = [codec.encode(tx.dialect, c.kind, getattr(record, c.name)) for c in cols]
    for name, (kind, value) in (extra or {}).items():
        names.append(name)
        values.append(codec.encode(tx.dialect, kind, value))
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {record.TABLE} ({', '.join(names)}) VALUES ({marks}) RETURNING id"  # noqa: S608
    record_id = int(tx.scalar(sql, values))
    _write_links(tx, record, record_id)
    return record_id


def update(tx: Tx, record: Record) -> None:
    """Write every column of a stored record except its class's READ_ONLY ones."""
    record_id = record_id_of(record)
    check_references(tx, record)
    check_unique(tx, record)
    cols = [c for c in columns(type(record)) if c.name not in type(record).READ_ONLY]
    assignments = ", ".join(f"{c.name} = ?" for c in cols)
    values = [codec.encode(tx.dialect, c.kind, getattr(record, c.name)) for c in cols]
    sql = f"UPDATE {record.TABLE} SET {assignments} WHERE id = ? RETURNING id"  # noqa: S608
    if not tx.execute(sql, [*values, record_id]):
        raise NotFoundError(f"no {noun(record.TABLE)} with id {record_id}")
    _write_links(tx, record, record_id)


def record_id_of(record: Record) -> int:
    record_id = getattr(record, "id", 0)
    if not record_id:
        raise ValidationError("id", f"the {noun(record.TABLE)} is not stored yet")
    return int(record_id)


def select(
    tx: Tx,
    cls: type[R],
    where: str = "",
    params: Sequence[Any] = (),
    *,
    order: str = "id",
    limit: int | None = None,
) -> list[R]:
    """Records of ``cls`` matching ``where`` (SQL over its columns, ``?`` parameters)."""
    cols = columns(cls)
    names = ", ".join(["id", *(c.name for c in cols)])
    sql = f"SELECT {names} FROM {cls.TABLE}"  # noqa: S608
    if where:
        sql += f" WHERE {where}"
    sql += f" ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = tx.execute(sql, params)
    links = _read_links(tx, cls, [int(r[0]) for r in rows])
    out: list[R] = []
    for row in rows:
        values: dict[str, Any] = {"id": int(row[0])}
        for spec, raw in zip(cols, row[1:], strict=True):
            values[spec.name] = codec.decode(tx.dialect, spec.kind, raw)
        for name, by_owner in links.items():
            values[name] = tuple(by_owner.get(values["id"], ()))
        out.append(cls(**values))
    return out


def _read_links(tx: Tx, cls: type[Record], ids: list[int]) -> dict[str, dict[int, list[int]]]:
    out: dict[str, dict[int, list[int]]] = {}
    if not ids:
        return out
    for spec in _links(cls):
        link = spec.link
        assert link is not None
        order = "position" if link.ordered else link.target_column
        sql = f"SELECT {link.owner_column}, {link.target_column} FROM {link.table}"  # noqa: S608
        params: list[int] = []
        if len(ids) <= _IN_LIMIT:
            sql += f" WHERE {link.owner_column} IN ({', '.join('?' for _ in ids)})"
            params = ids
        by_owner: dict[int, list[int]] = {}
        for owner, target in tx.execute(f"{sql} ORDER BY {link.owner_column}, {order}", params):
            by_owner.setdefault(int(owner), []).append(int(target))
        out[spec.name] = by_owner
    return out


def get(tx: Tx, cls: type[R], record_id: int) -> R:
    found = select(tx, cls, "id = ?", (record_id,))
    if not found:
        raise NotFoundError(f"no {noun(cls.TABLE)} with id {record_id}")
    return found[0]


def delete(tx: Tx, cls: type[Record], record_id: int, blockers: Sequence[Blocker] = ()) -> None:
    """Delete one record, first refusing (ValidationError) while any ``blocker`` still uses it."""
    for blocker in blockers:
        count = int(tx.scalar(blocker.sql, (record_id,)))
        if count:
            raise ValidationError("id", blocker.message(count))
    if not tx.execute(f"DELETE FROM {cls.TABLE} WHERE id = ? RETURNING id", (record_id,)):  # noqa: S608
        raise NotFoundError(f"no {noun(cls.TABLE)} with id {record_id}")


class Blocker:
    """``SELECT count(*) … WHERE <column> = ?``: records that keep another from being deleted."""

    def __init__(self, table: str, column: str, what: str) -> None:
        self.sql = f"SELECT count(*) FROM {table} WHERE {column} = ?"  # noqa: S608
        self.message: Callable[[int], str] = lambda n: f"still used by {n} {what}"
