"""The web manager on a SQLite store, inside the REST API's application, driven through an ASGI
transport from a chosen source address (no socket): ``web_env`` builds it, ``WebClient`` is a
browser-like client (cookies kept, forms posted with the CSRF token the page carries)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from signaling.api.app import create_app
from signaling.api.auth import AuthSettings, Users
from signaling.api.context import ApiContext, LiveCall
from signaling.store import Store, open_store
from signaling.web import WebManager
from signaling.web.app import AlarmFeed, NodeView
from signaling.web.sysstats import NetworkSource

PASSWORD = "correct horse battery"  # noqa: S105 (a test password)
WRONG = "not the password"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    """The wall clock the users' sessions and lockouts are stamped with, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeLive:
    """A node's live calls and counters, set by the test (implements LiveCalls and NodeView)."""

    def __init__(self) -> None:
        self.live: list[LiveCall] = []
        self.started = 0
        self.phones = 0
        self.hung_up: list[str] = []

    def calls(self) -> list[LiveCall]:
        return list(self.live)

    def hangup(self, call_id: str) -> bool:
        if any(c.call_id == call_id for c in self.live):
            self.hung_up.append(call_id)
            return True
        return False

    def concurrency(self) -> int:
        return len(self.live)

    def calls_started(self) -> int:
        return self.started

    def online_phones(self) -> int:
        return self.phones

    def trace(self, call_id: str) -> list[Any]:
        return []

    def trace_pcap(self, call_id: str) -> bytes:
        return b""


def live_call(
    call_id: str, account_id: int | None, *, ingress: str = "cust", answered: bool = True
) -> LiveCall:
    now = datetime.now(UTC)
    return LiveCall(
        call_id=call_id,
        ingress=ingress,
        account_id=account_id,
        caller="1000",
        callee="12125550100",
        source="127.0.0.1:5070",
        gateway="carrier",
        attempts=1,
        state="answered" if answered else "routing",
        start_time=now - timedelta(seconds=30),
        answer_time=now - timedelta(seconds=20) if answered else None,
        duration=20.0 if answered else 0.0,
    )


@dataclass
class WebEnv:
    store: Store
    users: Users
    clock: Clock
    app: FastAPI
    web: WebManager
    live: FakeLive


def build(
    store: Store,
    clock: Clock,
    *,
    live: FakeLive | None = None,
    alarms: AlarmFeed | None = None,
    settings: AuthSettings | None = None,
    network: NetworkSource | None = None,
) -> WebEnv:
    users = Users(store, settings or AuthSettings(), clock=clock)
    fake = live or FakeLive()
    context = ApiContext(store, users, live=fake, clock=clock)
    app = create_app(context)
    node: NodeView = fake
    web = WebManager(context, node=node, alarms=alarms, network=network)
    web.install(app)
    return WebEnv(store, users, clock, app, web, fake)


@pytest.fixture
def web_env(tmp_path: Path) -> Iterator[WebEnv]:
    store = open_store(f"sqlite:///{tmp_path / 'web.db'}")
    try:
        env = build(store, Clock())
        env.users.add("alice", "admin", PASSWORD)
        yield env
    finally:
        store.close()


class WebClient:
    """A browser stand-in: one cookie jar, requests into the app from ``source``."""

    def __init__(self, app: FastAPI, *, source: str = "127.0.0.1") -> None:
        self._loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, client=(source, 40000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self.http.get(url, **kwargs))

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self.http.post(url, data=data, **kwargs))

    def form(self, page_url: str, action: str, data: dict[str, str]) -> httpx.Response:
        """Open ``page_url``, then post ``data`` to ``action`` with the page's CSRF token."""
        page = self.get(page_url)
        assert page.status_code == 200, page.text
        return self.post(action, {"csrf": csrf_of(page.text), **data})

    def login(self, name: str = "alice", password: str = PASSWORD, **extra: str) -> httpx.Response:
        page = self.get("/manage/login")
        return self.post(
            "/manage/login", {"csrf": csrf_of(page.text), "name": name, "password": password, **extra}
        )

    def close(self) -> None:
        self._loop.run_until_complete(self.http.aclose())
        self._loop.close()


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


@pytest.fixture
def client(web_env: WebEnv) -> Iterator[WebClient]:
    c = WebClient(web_env.app)
    try:
        yield c
    finally:
        c.close()
