"""Authentication and roles over HTTP: login and lockout (429 while locked), token expiry with the
injected clock, the cookie, logout, secrets absent from the logs, Web Access Control (security
A.12, F.2-13), and who may do what: admin everything, operator all but users and parameters,
agent within its Scope (agents §6, CAP-6.6)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest

from signaling.api.app import create_app
from signaling.api.auth import SESSION_COOKIE
from signaling.api.context import LiveCall
from tests.api.client import ApiClient
from tests.api.conftest import Clock, clock
from tests.api.conftest_app import PASSWORD, Api, FakeLive, api, make_api

__all__ = ["api", "clock"]

V1 = "/api/v1"


def test_login_gives_a_token_and_a_cookie_and_logout_ends_it(api: Api) -> None:
    client = api.client()
    response = client.post(f"{V1}/auth/login", json={"name": "oper", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["role"] == "operator"
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    with_cookie = api.client()
    cookie_only = with_cookie.get(f"{V1}/auth/me", headers={"Cookie": f"{SESSION_COOKIE}={body['token']}"})
    assert cookie_only.json()["name"] == "oper"
    client.token = body["token"]
    assert client.post(f"{V1}/auth/logout").status_code == 204
    assert client.get(f"{V1}/auth/me").status_code == 401


def test_a_session_expires_after_its_ttl(tmp_path: Path, clock: Clock) -> None:
    for api_ in make_api(tmp_path, clock, session_ttl=timedelta(minutes=10)):
        client = api_.login("root")
        assert client.get(f"{V1}/auth/me").status_code == 200
        clock.advance(minutes=9, seconds=59)
        assert client.get(f"{V1}/auth/me").status_code == 200
        clock.advance(seconds=1)
        expired = client.get(f"{V1}/auth/me")
        assert expired.status_code == 401 and "expired" in expired.json()["error"]


def test_failed_logins_ask_for_a_challenge_then_lock_out_temporarily(tmp_path: Path, clock: Clock) -> None:
    for api_ in make_api(tmp_path, clock, max_failures_user=3, challenge_after=2):
        client = api_.client(source="192.0.2.50")
        wrong = {"name": "root", "password": "not the password"}
        first = client.post(f"{V1}/auth/login", json=wrong)
        assert first.status_code == 401 and first.json()["challenge_required"] is False
        assert client.post(f"{V1}/auth/login", json=wrong).json()["challenge_required"] is True
        locked = client.post(f"{V1}/auth/login", json=wrong)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) == 15 * 60
        right = {"name": "root", "password": PASSWORD}
        assert client.post(f"{V1}/auth/login", json=right).status_code == 429, "locked even with the password"
        clock.advance(minutes=16)
        assert client.post(f"{V1}/auth/login", json=right).status_code == 200


def test_passwords_tokens_and_authorization_headers_are_never_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = api.client()
    client.post(f"{V1}/auth/login", json={"name": "root", "password": "guess-" + PASSWORD})
    token = client.post(f"{V1}/auth/login", json={"name": "root", "password": PASSWORD}).json()["token"]
    client.token = token
    client.get(f"{V1}/accounts")
    client.post(f"{V1}/users", json={"name": "new", "role": "operator", "password": "another secret pw"})
    client.get(f"{V1}/auth/me", headers={"Authorization": "Bearer forged-token-value"})
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (PASSWORD, token, "another secret pw", "forged-token-value", "Bearer"):
        assert secret not in text


def test_web_access_control_admits_only_the_listed_networks(api: Api) -> None:
    api.context.allow = (ip_network("10.0.0.0/24"),)
    inside = api.client(source="10.0.0.5")
    assert inside.post(f"{V1}/auth/login", json={"name": "root", "password": PASSWORD}).status_code == 200
    outside = api.client(source="192.0.2.9")
    refused = outside.post(f"{V1}/auth/login", json={"name": "root", "password": PASSWORD})
    assert refused.status_code == 403 and "may not use" in refused.json()["error"]
    assert outside.get("/api/openapi.json").status_code == 403


def test_users_and_parameters_are_for_administrators_only(api: Api) -> None:
    operator = api.login("oper")
    admin = api.login("root")
    for method, path, body in (
        ("GET", "/users", None),
        ("POST", "/users", {"name": "x", "role": "operator", "password": PASSWORD}),
        ("GET", "/parameters", None),
        ("PUT", "/parameters/SS_SIP_TIMEOUT_INVITE", {"value": 20}),
    ):
        refused = operator.request(method, f"{V1}{path}", json=body)
        assert refused.status_code == 403, path
        assert "needs the role admin" in refused.json()["error"]
    assert operator.post(f"{V1}/accounts", json={"code": "op-made"}).status_code == 201
    assert operator.get(f"{V1}/routing-analysis", params={"number": "1"}).status_code == 200
    made = admin.post(f"{V1}/users", json={"name": "carol", "role": "operator", "password": PASSWORD})
    assert made.status_code == 201
    assert admin.patch(f"{V1}/users/carol", json={"disabled": True}).json()["disabled"] is True
    assert admin.delete(f"{V1}/users/carol").status_code == 204
    assert admin.get(f"{V1}/users/carol").status_code == 404


def _agent_world(api: Api) -> tuple[int, int]:
    """A sub-account under the agent and an account outside it."""
    admin = api.login("root")
    sub = admin.post(f"{V1}/accounts", json={"code": "sub-1", "parent_id": api.agent_account}).json()["id"]
    other = admin.post(f"{V1}/accounts", json={"code": "other"}).json()["id"]
    return sub, other


def test_an_agent_sees_and_pays_only_within_its_scope(api: Api) -> None:
    sub, other = _agent_world(api)
    agent = api.login("agent")
    codes = {a["code"] for a in agent.get(f"{V1}/accounts").json()}
    assert codes == {"agent-1", "sub-1"}
    assert agent.get(f"{V1}/accounts/{other}").status_code == 404, "outside the scope is not found"
    made = agent.post(f"{V1}/accounts", json={"code": "sub-2"})
    assert made.status_code == 201 and made.json()["parent_id"] == api.agent_account
    assert agent.post(f"{V1}/accounts/{sub}/payments", json={"amount": "5"}).status_code == 201
    own = agent.post(f"{V1}/accounts/{api.agent_account}/payments", json={"amount": "5"})
    assert own.status_code == 403 and "pay_self" in own.json()["error"]
    assert agent.post(f"{V1}/accounts/{other}/payments", json={"amount": "5"}).status_code == 404
    assert [p["operator"] for p in agent.get(f"{V1}/payments").json()] == ["agent"]
    for path in ("/routing-gateways", "/gateway-groups", "/gateways/status", "/users", "/parameters"):
        assert agent.get(f"{V1}{path}").status_code == 403, path
    assert agent.get(f"{V1}/routing-analysis", params={"number": "1"}).status_code == 403
    rate_group = api.login("root").post(f"{V1}/rate-groups", json={"name": "private"}).json()["id"]
    assert agent.get(f"{V1}/rate-groups/{rate_group}").status_code == 404, "not authorised for it"


def _live_call(call_id: str, account_id: int | None) -> LiveCall:
    start = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    return LiveCall(
        call_id, "cust", account_id, "1001", "12125550100", "192.0.2.10:5060", "carrier", 1, "answered",
        start, start + timedelta(seconds=2), 30.0,
    )  # fmt: skip


@pytest.fixture
def live_api(tmp_path: Path, clock: Clock) -> Iterator[tuple[Api, FakeLive]]:
    live = FakeLive([])
    for api_ in make_api(tmp_path, clock, live=live):
        yield api_, live


def test_live_calls_are_listed_and_hung_up_within_the_scope(live_api: tuple[Api, FakeLive]) -> None:
    api_, live = live_api
    sub, other = _agent_world(api_)
    live.live = {c.call_id: c for c in (_live_call("mine", sub), _live_call("theirs", other))}
    operator = api_.login("oper")
    assert {c["call_id"] for c in operator.get(f"{V1}/calls").json()} == {"mine", "theirs"}
    agent = api_.login("agent")
    listed = agent.get(f"{V1}/calls").json()
    assert [c["call_id"] for c in listed] == ["mine"] and listed[0]["duration"] == 30.0
    assert agent.delete(f"{V1}/calls/theirs").status_code == 404
    assert agent.delete(f"{V1}/calls/mine").status_code == 204
    assert operator.delete(f"{V1}/calls/theirs").status_code == 204
    assert live.hung_up == ["mine", "theirs"]
    assert operator.delete(f"{V1}/calls/theirs").status_code == 404


def test_live_calls_need_the_node(api: Api) -> None:
    response = api.login("root").get(f"{V1}/calls")
    assert response.status_code == 503 and "running node" in response.json()["error"]


def test_the_openapi_document_is_published(api: Api) -> None:
    client = ApiClient(create_app(api.context))
    try:
        spec = client.get("/api/openapi.json").json()
        assert spec["info"]["title"] == "softswitch"
        for path in ("/api/v1/accounts", "/api/v1/cdrs", "/api/v1/calls/{call_id}", "/api/v1/auth/login"):
            assert path in spec["paths"], path
        docs = client.get("/api/docs")
        assert docs.status_code == 200 and "openapi.json" in docs.text
    finally:
        client.close()
