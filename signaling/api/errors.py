"""Errors as JSON: ``{"error": message, "field": name or null, ...}`` with the right status.

| raised | status |
|---|---|
| malformed request (bad JSON, wrong parameter types) | 400 / 422 |
| no or bad session | 401 |
| the role or the agent's authorisations do not allow it | 403 |
| no such record (or not one an agent may see) | 404 |
| a record in use, a duplicate, an append-only record | 409 |
| a value the store refuses (names the field) | 422 |
| the node is not running here (live calls) | 503 |
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from signaling.store import (
    AppendOnlyError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    ValidationError,
)


class ApiError(Exception):
    """An error the API answers with ``status`` and a message (plus extra JSON fields)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:  # noqa: ANN401 (JSON values)
        super().__init__(message)
        self.status = status
        self.extra = extra
        self.headers: dict[str, str] = {}


def error_body(message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:  # noqa: ANN401
    return {"error": message, "field": field, **extra}


def _store_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ValidationError):
        conflict = "already used" in exc.reason or exc.reason.startswith("still used by")
        status = 409 if conflict else 422
        return JSONResponse(error_body(str(exc), exc.field), status_code=status)
    status = 500
    if isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, PermissionDeniedError):
        status = 403
    elif isinstance(exc, AppendOnlyError | ConflictError):
        status = 409
    elif isinstance(exc, StoreError):
        status = 503  # the database is unreachable or refused in a way no input could fix
    return JSONResponse(error_body(str(exc)), status_code=status)


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(str(exc), **exc.extra), status_code=exc.status, headers=exc.headers)


def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        problems.append({"field": where, "message": str(item.get("msg", ""))})
    first = problems[0] if problems else {"field": None, "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    return JSONResponse(error_body(message, first["field"], problems=problems), status_code=422)


def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
