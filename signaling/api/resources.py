"""Generic create/read/update/delete routes for a stored record class, through the store's
admin API (its permission rules apply: an agent sees and writes only what its scope allows).

``record_router(Account, "/accounts", "accounts")`` gives::

    GET    /accounts            list (``filters``: equality on the named fields, as query parameters)
    POST   /accounts            create (201, the stored record)
    GET    /accounts/{id}       one
    PATCH  /accounts/{id}       change some fields (the others stay)
    DELETE /accounts/{id}       delete (409 while other records use it)
"""

# No ``from __future__ import annotations`` here: the endpoints' body types are the generated
# models, which FastAPI must see as objects, not as strings to resolve.

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, create_model

from signaling.api.deps import CurrentUser, admin_of
from signaling.api.models import create_model_of, fields_of, output_model, to_output, update_model_of
from signaling.store.admin import Admin
from signaling.store.record import Record


def record_router(
    cls: type[Record],
    path: str,
    tag: str,
    *,
    filters: Sequence[str] = (),
    noun: str | None = None,
    create: bool = True,
    check: Callable[[Request, Any], None] | None = None,
    warnings: Callable[[Admin, Any], list[str]] | None = None,
) -> APIRouter:
    """``check(request, record)``: a rule beyond the record's own, asked before each write
    (raises the store's ValidationError). ``warnings(admin, stored)``: what is worth telling
    about a record once it is written (never a refusal); create and update then answer with a
    ``warnings`` list beside the record's fields, and so does reading one record (its warnings
    as the configuration stands now)."""
    router = APIRouter(tags=[tag])
    out = output_model(cls)
    saved: Any = (
        out
        if warnings is None
        else create_model(f"{cls.__name__}Saved", __base__=out, warnings=(list[str], []))
    )

    def answer(admin: Admin, record: Record) -> dict[str, Any]:
        body = to_output(record)
        if warnings is not None:
            body["warnings"] = warnings(admin, record)
        return body

    create_body = create_model_of(cls)
    update_body = update_model_of(cls)
    what = noun or tag

    def list_records(request: Request, user: CurrentUser, **given: str | None) -> list[dict[str, Any]]:
        wanted = {name: value for name, value in given.items() if value is not None}
        records = admin_of(request, user).list(cls)
        return [to_output(r) for r in records if _matches(r, wanted)]

    list_records.__doc__ = f"Every {what} record the caller may see, by id." + (
        f" Filters (query parameters, exact match): {', '.join(filters)}." if filters else ""
    )
    _add_query_params(list_records, filters)
    many: Any = list[out]  # type: ignore[valid-type]
    router.add_api_route(path, list_records, methods=["GET"], response_model=many, summary=f"List {what}")

    def create_record(request: Request, user: CurrentUser, body: BaseModel) -> dict[str, Any]:
        record = cls(**fields_of(body))
        if check is not None:
            check(request, record)
        admin = admin_of(request, user)
        return answer(admin, admin.create(record))

    create_record.__annotations__["body"] = create_body
    if create:
        router.add_api_route(
            path,
            create_record,
            methods=["POST"],
            status_code=201,
            response_model=saved,
            summary=f"Create a {what}",
        )

    def get_record(record_id: int, request: Request, user: CurrentUser) -> dict[str, Any]:
        admin = admin_of(request, user)
        return answer(admin, admin.get(cls, record_id))

    router.add_api_route(
        f"{path}/{{record_id}}", get_record, methods=["GET"], response_model=saved, summary=f"One {what}"
    )

    def update_record(record_id: int, request: Request, user: CurrentUser, body: BaseModel) -> dict[str, Any]:
        admin = admin_of(request, user)
        current = admin.get(cls, record_id)
        changed = dataclasses.replace(current, **fields_of(body))  # type: ignore[type-var]
        if check is not None:
            check(request, changed)
        return answer(admin, admin.update(changed))

    update_record.__annotations__["body"] = update_body
    router.add_api_route(
        f"{path}/{{record_id}}",
        update_record,
        methods=["PATCH"],
        response_model=saved,
        summary=f"Change a {what}",
    )

    def delete_record(record_id: int, request: Request, user: CurrentUser) -> Response:
        admin_of(request, user).delete(cls, record_id)
        return Response(status_code=204)

    router.add_api_route(
        f"{path}/{{record_id}}",
        delete_record,
        methods=["DELETE"],
        status_code=204,
        summary=f"Delete a {what}",
    )
    return router


def _matches(record: Record, wanted: dict[str, str]) -> bool:
    for name, text in wanted.items():
        value = getattr(record, name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if str(value if value is not None else "") != text:
            return False
    return True


def _add_query_params(endpoint: Callable[..., Any], names: Sequence[str]) -> None:
    """Document the filters as optional query parameters (read from request.query_params)."""
    import inspect  # noqa: PLC0415

    signature = inspect.signature(endpoint)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=Query(None), annotation=str | None)
        for name in names
    ]
    plain = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    endpoint.__signature__ = signature.replace(parameters=[*plain, *extra])  # type: ignore[attr-defined]
