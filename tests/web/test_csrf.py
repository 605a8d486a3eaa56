"""Every form of the web manager carries a CSRF token tied to the session: a POST without it,
or with another session's, is refused (403) and changes nothing."""

from __future__ import annotations

from signaling.store import Account
from tests.web.conftest import WebClient, WebEnv, csrf_of


def _customers(env: WebEnv) -> list[str]:
    return [a.code for a in env.store.admin().list(Account)]


def test_a_post_without_the_token_is_refused_and_changes_nothing(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    response = client.post("/manage/customers", {"code": "2001"})
    assert response.status_code == 403
    assert _customers(web_env) == []


def test_a_token_of_another_session_is_refused(web_env: WebEnv, client: WebClient) -> None:
    web_env.users.add("bob", "admin", "another long password")
    bob = WebClient(web_env.app)
    try:
        bob.login("bob", "another long password")
        bobs_token = csrf_of(bob.get("/manage/customers").text)
    finally:
        bob.close()
    client.login()
    assert client.post("/manage/customers", {"csrf": bobs_token, "code": "2001"}).status_code == 403
    assert client.post("/manage/customers", {"csrf": "0" * 40, "code": "2001"}).status_code == 403
    assert _customers(web_env) == []


def test_with_the_session_token_the_form_works(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    response = client.form("/manage/customers", "/manage/customers", {"code": "2001", "balance": "5.50"})
    assert response.status_code == 303
    assert _customers(web_env) == ["2001"]
    assert "Customer 2001 created" in client.get("/manage/customers").text


def test_the_login_form_has_its_own_token(web_env: WebEnv, client: WebClient) -> None:
    client.get("/manage/login")  # the pre-session cookie
    response = client.post("/manage/login", {"name": "alice", "password": "correct horse battery"})
    assert response.status_code == 403
    assert client.get("/manage/").status_code == 303


def test_logout_needs_the_token(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    assert client.post("/manage/logout", {}).status_code == 403
    assert client.get("/manage/").status_code == 200  # still logged in
