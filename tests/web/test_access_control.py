"""Web Access Control (security A.12, F.2-13): with the whitelist enabled, the web manager and
the REST API answer only listed addresses (single IPs and CIDR ranges), everything else gets
403; disabled, everyone is served. SIP is outside the HTTP application and never sees the list
(the node test in tests/web/test_browser.py places its call with the list enabled)."""

from __future__ import annotations

import pytest

from signaling.store import ValidationError
from signaling.web.access import AccessPolicy, parse_access_list
from tests.web.conftest import WebClient, WebEnv


def _enable(env: WebEnv, networks: str) -> None:
    env.store.set_parameter("SERVER_WEB_ACCESS_LIST", networks)
    env.store.set_parameter("SERVER_WEB_ACCESS_CONTROL", True)


@pytest.mark.parametrize(
    ("source", "allowed"), [("10.0.0.5", True), ("192.0.2.9", False), ("192.0.2.7", True)]
)
def test_the_whitelist_decides_for_the_web_manager_and_the_api(
    web_env: WebEnv, source: str, allowed: bool
) -> None:
    _enable(web_env, "10.0.0.0/24, 192.0.2.7")
    client = WebClient(web_env.app, source=source)
    try:
        for url in ("/manage/login", "/api/v1/auth/me", "/api/openapi.json"):
            status = client.get(url).status_code
            assert (status != 403) is allowed, (url, status)
        if not allowed:
            assert "not on the whitelist" in client.get("/manage/login").text
    finally:
        client.close()


def test_disabled_the_list_refuses_nobody(web_env: WebEnv) -> None:
    web_env.store.set_parameter("SERVER_WEB_ACCESS_LIST", "10.0.0.0/24")
    client = WebClient(web_env.app, source="192.0.2.9")
    try:
        assert client.get("/manage/login").status_code == 200
    finally:
        client.close()


def test_a_change_applies_without_a_restart(web_env: WebEnv) -> None:
    client = WebClient(web_env.app, source="192.0.2.9")
    try:
        assert client.get("/manage/login").status_code == 200
        web_env.web.access_refresh = 0.0  # another node changed it: re-read at the next request
        _enable(web_env, "10.0.0.0/24")
        assert client.get("/manage/login").status_code == 403
    finally:
        client.close()


def test_the_administrator_applies_the_list_from_the_page_but_cannot_lock_himself_out(
    web_env: WebEnv,
) -> None:
    client = WebClient(web_env.app, source="10.0.0.5")
    try:
        client.login()
        refused = client.form(
            "/manage/access", "/manage/access", {"networks": "192.0.2.0/24", "enabled": "on"}
        )
        assert refused.status_code == 303
        assert "would lock you out" in client.get("/manage/access").text
        assert web_env.store.server_parameter("SERVER_WEB_ACCESS_CONTROL") is False
        client.form(
            "/manage/access", "/manage/access", {"networks": "10.0.0.0/24 192.0.2.7", "enabled": "on"}
        )
        assert web_env.store.server_parameter("SERVER_WEB_ACCESS_CONTROL") is True
        assert web_env.store.parameters()["SERVER_WEB_ACCESS_LIST"] == "10.0.0.0/24, 192.0.2.7/32"
        assert client.get("/manage/access").status_code == 200
    finally:
        client.close()


def test_an_operator_may_not_change_the_list(web_env: WebEnv) -> None:
    web_env.users.add("olga", "operator", "operator password")
    client = WebClient(web_env.app)
    try:
        client.login("olga", "operator password")
        assert client.get("/manage/access").status_code == 403
    finally:
        client.close()


def test_entries_are_addresses_or_cidr_ranges() -> None:
    policy = AccessPolicy(True, parse_access_list("10.0.0.0/24,2001:db8::/32 192.0.2.7"))
    assert policy.allows("10.0.0.255") and policy.allows("2001:db8::5") and policy.allows("192.0.2.7")
    assert policy.allows("::ffff:10.0.0.9")  # an IPv4 client on a dual-stack socket
    assert not policy.allows("10.0.1.1") and not policy.allows("") and not policy.allows("testclient")
    assert not AccessPolicy(True, ()).allows("10.0.0.1")  # enabled and empty: default deny
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300' is not an IP address or CIDR range"):
        parse_access_list("10.0.0.0/24, 10.0.0.300")


def test_the_store_refuses_a_bad_list_by_name(web_env: WebEnv) -> None:
    with pytest.raises(ValidationError, match="SERVER_WEB_ACCESS_LIST: 'nonsense' is not an IP address"):
        web_env.store.set_parameter("SERVER_WEB_ACCESS_LIST", "nonsense")
