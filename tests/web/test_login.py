"""Logging in to the web manager: the API's accounts (T76, reference web manager test 58), the
verification challenge after failed attempts (T75), logout, session expiry, two sessions."""

from __future__ import annotations

import re

from tests.web.conftest import PASSWORD, WRONG, WebClient, WebEnv, csrf_of

_QUESTION = re.compile(r'id="challenge-question">What is (\w+) (plus|minus) (\w+)\?<')
_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _number(text: str) -> int:
    return _WORDS.index(text) if text in _WORDS else int(text)


def _answer(html: str) -> tuple[str, str]:
    """(challenge id, the right answer) of the challenge on a login page."""
    found = _QUESTION.search(html)
    assert found is not None, "no verification question on the page"
    a, op, b = _number(found.group(1)), found.group(2), _number(found.group(3))
    challenge_id = re.search(r'name="challenge_id" value="([^"]+)"', html)
    assert challenge_id is not None
    return challenge_id.group(1), str(a + b if op == "plus" else a - b)


def test_the_api_account_logs_in_and_one_login_serves_the_api_too(web_env: WebEnv, client: WebClient) -> None:
    assert client.get("/manage/").status_code == 303  # not logged in: to the login page
    response = client.login()
    assert response.status_code == 303 and response.headers["location"] == "/manage/"
    dashboard = client.get("/manage/")
    assert dashboard.status_code == 200 and "Dashboard" in dashboard.text
    assert "alice · admin" in dashboard.text
    me = client.get("/api/v1/auth/me")  # the same session cookie
    assert me.status_code == 200 and me.json()["name"] == "alice"


def test_a_wrong_password_is_refused(web_env: WebEnv, client: WebClient) -> None:
    response = client.login(password=WRONG)
    assert response.status_code == 401
    assert "wrong user name or password" in response.text
    assert client.get("/manage/").status_code == 303


def test_after_failed_logins_a_correct_password_needs_the_challenge(
    web_env: WebEnv, client: WebClient
) -> None:
    """T75: beyond the threshold (3) the form asks a question; the right password without the
    right answer is refused, with it the login succeeds; a challenge is used once."""
    for _ in range(3):
        assert client.login(password=WRONG).status_code == 401
    page = client.get("/manage/login")
    assert _QUESTION.search(page.text), "the login form now asks the verification question"
    # the right password, no answer: refused
    refused = client.post(
        "/manage/login", {"csrf": csrf_of(page.text), "name": "alice", "password": PASSWORD}
    )
    assert refused.status_code == 401 and client.get("/manage/").status_code == 303
    assert _QUESTION.search(refused.text)
    # the right password, a wrong answer: refused
    challenge_id, right = _answer(refused.text)
    wrong = client.post(
        "/manage/login",
        {
            "csrf": csrf_of(refused.text),
            "name": "alice",
            "password": PASSWORD,
            "challenge_id": challenge_id,
            "answer": str(int(right) + 1),
        },
    )
    assert wrong.status_code == 401 and "wrong" in wrong.text
    # that challenge is gone: its right answer no longer works either
    replay = client.post(
        "/manage/login",
        {
            "csrf": csrf_of(wrong.text),
            "name": "alice",
            "password": PASSWORD,
            "challenge_id": challenge_id,
            "answer": right,
        },
    )
    assert replay.status_code == 401
    # a fresh challenge answered right, with the right password: in
    challenge_id, right = _answer(replay.text)
    ok = client.post(
        "/manage/login",
        {
            "csrf": csrf_of(replay.text),
            "name": "alice",
            "password": PASSWORD,
            "challenge_id": challenge_id,
            "answer": right,
        },
    )
    assert ok.status_code == 303, ok.text
    assert client.get("/manage/").status_code == 200


def test_logout_ends_the_session(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    page = client.get("/manage/")
    cookie = client.http.cookies.get("softswitch_session")
    assert cookie
    assert client.post("/manage/logout", {"csrf": csrf_of(page.text)}).status_code == 303
    assert client.get("/manage/").status_code == 303
    # the token itself is revoked, not only the cookie dropped
    other = WebClient(web_env.app)
    try:
        other.http.cookies.set("softswitch_session", cookie)
        assert other.get("/manage/").status_code == 303
    finally:
        other.close()


def test_an_expired_session_goes_back_to_the_login_page(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    assert client.get("/manage/customers").status_code == 200
    web_env.clock.advance(hours=8, seconds=1)  # the users' session_ttl (8 h)
    response = client.get("/manage/customers")
    assert response.status_code == 303
    assert response.headers["location"] == "/manage/login?expired=1&next=/manage/customers"
    assert "session has expired" in client.get(response.headers["location"]).text


def test_two_users_have_independent_sessions(web_env: WebEnv, client: WebClient) -> None:
    """Reference web manager test 59."""
    web_env.users.add("bob", "operator", PASSWORD)
    bob = WebClient(web_env.app)
    try:
        client.login()
        bob.login("bob")
        assert "bob · operator" in bob.get("/manage/").text
        assert "alice · admin" in client.get("/manage/").text
        bob.post("/manage/logout", {"csrf": csrf_of(bob.get("/manage/").text)})
        assert bob.get("/manage/").status_code == 303
        assert client.get("/manage/").status_code == 200
    finally:
        bob.close()


def test_after_login_the_page_asked_for_is_shown_but_never_another_site(
    web_env: WebEnv, client: WebClient
) -> None:
    page = client.get("/manage/login?next=/manage/rates")
    response = client.post(
        "/manage/login",
        {"csrf": csrf_of(page.text), "name": "alice", "password": PASSWORD, "next": "/manage/rates"},
    )
    assert response.headers["location"] == "/manage/rates"
    client.post("/manage/logout", {"csrf": csrf_of(client.get("/manage/").text)})
    page = client.get("/manage/login")
    response = client.post(
        "/manage/login",
        {"csrf": csrf_of(page.text), "name": "alice", "password": PASSWORD, "next": "//evil.example/x"},
    )
    assert response.headers["location"] == "/manage/"
