"""Property test of the published OpenAPI document: schemathesis generates requests for every
operation from /api/openapi.json (a bounded number of examples each, at most ~60 s in all) and
sends them, logged in as the administrator, through the ASGI transport; no answer may be a 5xx
(bad input gets a clear 4xx and loses nothing)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.callproc.router import StoreRouter
from tests.api.conftest import clock
from tests.api.conftest_app import Api, FakeLive, api

__all__ = ["api", "clock"]

EXAMPLES_PER_OPERATION = 8
#: Stop generating after this many seconds (the test's bound).
BUDGET_S = 60.0
#: Operations left out: logging out would end the session the rest uses.
SKIPPED = {("POST", "/api/v1/auth/logout")}


@pytest.mark.timeout(180)
def test_generated_requests_never_get_a_server_error(api: Api) -> None:
    # As inside a node: live calls and the store router (gateway status, analysis) are there.
    api.context.live = FakeLive([])
    api.context.router = StoreRouter(api.store, node="schemathesis")
    admin = api.login("root")
    seed = admin.post("/api/v1/accounts", json={"code": "seed"}).json()["id"]
    admin.post(f"/api/v1/accounts/{seed}/payments", json={"amount": "1"})
    spec = admin.get("/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    deadline = time.monotonic() + BUDGET_S
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails here, loudly
        if (operation.method.upper(), operation.path) in SKIPPED or time.monotonic() > deadline:
            continue

        strategy = operation.as_strategy()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def check(data: st.DataObject) -> None:
            nonlocal sent
            if time.monotonic() > deadline:
                return
            case = data.draw(strategy)  # noqa: B023 (drawn within this iteration)
            query = case.query if isinstance(case.query, dict) else None
            kwargs: dict[str, Any] = {"params": query or None}
            if isinstance(case.body, dict | list | int | float | bool):
                kwargs["json"] = case.body
            elif isinstance(case.body, bytes | str):
                kwargs["content"] = case.body
                kwargs["headers"] = {"content-type": case.media_type or "application/octet-stream"}
            response = admin.request(case.method.upper(), case.formatted_path, **kwargs)
            sent += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {kwargs} -> {response.status_code}")

        check()
    assert sent >= 100, sent
    assert not failures, "\n".join(failures[:10])
