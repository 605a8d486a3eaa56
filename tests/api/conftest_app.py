"""An API over a fresh SQLite store with one user of each role, and clients logged in as them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from signaling.api.app import create_app
from signaling.api.auth import AuthSettings, Users
from signaling.api.context import ApiContext, LiveCall, LiveCalls
from signaling.store import Account, Store, open_store
from tests.api.client import ApiClient
from tests.api.conftest import Clock

PASSWORD = "a password for tests"  # noqa: S105 (test users)


@dataclass
class Api:
    store: Store
    users: Users
    context: ApiContext
    clock: Clock
    agent_account: int
    clients: list[ApiClient]

    def client(self, *, source: str = "127.0.0.1", token: str | None = None) -> ApiClient:
        client = ApiClient(create_app(self.context), source=source, token=token)
        self.clients.append(client)
        return client

    def login(self, name: str, *, source: str = "127.0.0.1") -> ApiClient:
        client = self.client(source=source)
        response = client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        client.token = response.json()["token"]
        return client


def make_api(
    tmp_path: Path, clock: Clock, live: LiveCalls | None = None, **settings: object
) -> Iterator[Api]:
    store = open_store(f"sqlite:///{tmp_path / 'api.db'}", clock=clock)
    users = Users(store, AuthSettings(**settings), clock=clock)  # type: ignore[arg-type]
    agent = store.admin().create(Account(code="agent-1", rights=("account", "pay_sub")))
    users.add("root", "admin", PASSWORD)
    users.add("oper", "operator", PASSWORD)
    users.add("agent", "agent", PASSWORD, account_id=agent.id)
    api = Api(store, users, ApiContext(store, users, live=live, clock=clock), clock, agent.id, [])
    try:
        yield api
    finally:
        for client in api.clients:
            client.close()
        store.close()


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    yield from make_api(tmp_path, clock)


class FakeLive:
    """Live calls as a node would report them (the node's own adapter is tested end to end)."""

    def __init__(self, calls: list[LiveCall]) -> None:
        self.live = {c.call_id: c for c in calls}
        self.hung_up: list[str] = []

    def calls(self) -> list[LiveCall]:
        return list(self.live.values())

    def hangup(self, call_id: str) -> bool:
        if self.live.pop(call_id, None) is None:
            return False
        self.hung_up.append(call_id)
        return True
