"""Pydantic models of the API: the store's records, generated from their dataclasses, and money.

Each stored record class (``signaling.store``) gets three models, built from its field specs so
the API never drifts from the store: ``<Name>`` (what the API returns: every field, passwords
left out), ``<Name>Create`` (what a POST takes: the record's own defaults) and ``<Name>Update``
(a PATCH: any subset of the fields). The store still checks every value when the record is
built; the models give the OpenAPI document its types and reject wrong JSON types early.

**Money is a JSON string** (``"25.0000000"``): a JSON number goes through a binary float in most
clients (and in the JSON parser), so a money or rate field given as a number is refused with a
422 that says so. Whole numbers are accepted as numbers too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    create_model,
)

from signaling.store.codec import Kind
from signaling.store.record import FieldSpec, Record, specs

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def _no_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError('money and rates are decimal strings (e.g. "0.0125"), never JSON floats')
    if isinstance(value, str) and not value.strip():
        raise ValueError("expected a decimal number")
    return value


#: A money amount or rate in the API: a decimal string in and out.
Money = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN, "examples": ["25.00"]}),
]

#: Fields the API never returns (digest passwords of phones and gateways): write-only.
WRITE_ONLY_MARK = "password"


def _hidden(name: str) -> bool:
    return WRITE_ONLY_MARK in name


def _python_type(spec: FieldSpec) -> Any:  # noqa: ANN401, PLR0911 (a type expression, one per kind)
    if spec.choices:
        return Literal[spec.choices]
    if spec.kind in (Kind.MONEY, Kind.RATE):
        return Money
    if spec.kind is Kind.TIME:
        return AwareDatetime
    if spec.kind is Kind.DAY:
        return date
    if spec.kind is Kind.JSON:
        return list[int] if spec.item is int else list[str]
    if spec.kind is Kind.BOOL:
        return bool
    if spec.kind is Kind.INT:
        return int
    return str


def _typed(spec: FieldSpec) -> Any:  # noqa: ANN401 (a type expression)
    base = _python_type(spec)
    return base | None if spec.nullable else base


def _default(field: dataclasses.Field[Any]) -> object:
    if field.default is not dataclasses.MISSING:
        value = field.default
        return list(value) if isinstance(value, tuple) else value
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_MODELS: dict[tuple[str, type[Record]], type[BaseModel]] = {}


def _cached(
    kind: str, cls: type[Record], build: Callable[[type[Record]], type[BaseModel]]
) -> type[BaseModel]:
    key = (kind, cls)
    found = _MODELS.get(key)
    if found is None:
        found = _MODELS[key] = build(cls)
    return found


def output_model(cls: type[Record]) -> type[BaseModel]:
    return _cached("out", cls, _output_model)


def create_model_of(cls: type[Record]) -> type[BaseModel]:
    return _cached("create", cls, _create_model)


def update_model_of(cls: type[Record]) -> type[BaseModel]:
    return _cached("update", cls, _update_model)


def _output_model(cls: type[Record]) -> type[BaseModel]:
    fields: dict[str, Any] = {s.name: (_typed(s), ...) for s in specs(cls) if not _hidden(s.name)}
    return create_model(cls.__name__, __base__=BaseModel, **fields)


def _create_model(cls: type[Record]) -> type[BaseModel]:
    by_name = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    skip = {"id", "created_at"}
    fields: dict[str, Any] = {
        s.name: (_typed(s), _default(by_name[s.name])) for s in specs(cls) if s.name not in skip
    }
    return create_model(f"{cls.__name__}Create", __base__=_Strict, **fields)


def _update_model(cls: type[Record]) -> type[BaseModel]:
    skip = {"id", *cls.READ_ONLY}
    fields: dict[str, Any] = {s.name: (_typed(s) | None, None) for s in specs(cls) if s.name not in skip}
    return create_model(f"{cls.__name__}Update", __base__=_Strict, **fields)


def to_output(record: Record) -> dict[str, Any]:
    """The record as the output model's data (JSON-ready through the model)."""
    model = output_model(type(record))
    data = {name: getattr(record, name) for name in model.model_fields}
    return model.model_validate(data).model_dump(mode="json")


def fields_of(body: BaseModel) -> dict[str, Any]:
    """What a create/update body sets (lists become the store's tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in body.model_dump(exclude_unset=True).items()}


def money_text(value: Decimal) -> str:
    return format(value, "f")


__all__ = [
    "Money",
    "create_model_of",
    "fields_of",
    "money_text",
    "output_model",
    "to_output",
    "update_model_of",
]
