"""The system parameters page: every SS_* and SERVER_* parameter with its stored value, default
and when a stored change takes effect (signaling/params.py ``TAKES_EFFECT``); set and reset
through the store, which checks a value as the configuration file's and names the parameter
when it refuses it; the administrator's only."""

from __future__ import annotations

import html
import re

from signaling import params
from signaling.store import parameters as parameters_table
from tests.web.conftest import WebClient, WebEnv

PAGE = "/manage/parameters"
AT_RESTART = "it takes effect at each node's next restart: read at start only"


def _flash(client: WebClient, url: str = PAGE) -> list[tuple[str, str]]:
    """The messages the next page shows (each is shown once)."""
    return _flashes(client.get(url).text)


def _flashes(text: str) -> list[tuple[str, str]]:
    found = re.findall(r'<div class="flash (\w+)" role="status">([^<]*)</div>', text)
    return [(kind, html.unescape(message)) for kind, message in found]


def _row(text: str, name: str) -> str:
    return text.split(f'id="param-{name}"', 1)[1].split("</tr>", 1)[0]


def _rows(text: str) -> list[str]:
    return re.findall(r'<tr id="param-([A-Z0-9_]+)"', text)


def test_every_parameter_is_listed_with_its_default_and_when_a_change_takes_effect(
    web_env: WebEnv, client: WebClient
) -> None:
    client.login()
    page = client.get(PAGE)
    assert page.status_code == 200
    assert f'href="{PAGE}"' in page.text, "in the administrator's menu"
    assert _rows(page.text) == parameters_table.names()
    row = _row(page.text, "SS_RTP_TIMEOUT")
    assert params.EFFECT_MARK[params.TAKES_EFFECT["SS_RTP_TIMEOUT"]] == "restart required"
    assert "<td>restart required</td>" in row and "<td>30</td>" in row  # its default, 30 s
    assert "seconds of no RTP" in row, "its meaning"
    assert "<td>next reload</td>" in _row(page.text, "SS_SIP_TIMEOUT_INVITE")


def test_set_then_reset_says_when_it_takes_effect(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    done = client.form(PAGE, f"{PAGE}/SS_RTP_TIMEOUT/set", {"value": "45"})
    assert done.status_code == 303 and done.headers["location"] == PAGE
    assert web_env.store.parameters()["SS_RTP_TIMEOUT"] == "45"
    shown = client.get(PAGE).text
    assert _flashes(shown) == [("ok", f"SS_RTP_TIMEOUT set to '45': {AT_RESTART}.")]
    row = _row(shown, "SS_RTP_TIMEOUT")
    assert ' class="stored">' in row and 'value="45"' in row and "/SS_RTP_TIMEOUT/reset" in row
    client.form(PAGE, f"{PAGE}/SS_RTP_TIMEOUT/reset", {})
    assert "SS_RTP_TIMEOUT" not in web_env.store.parameters()
    assert _flash(client) == [("ok", f"SS_RTP_TIMEOUT reset to its default (30): {AT_RESTART}.")]


def test_a_refused_value_names_the_parameter_and_stores_nothing(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    client.form(PAGE, f"{PAGE}/SS_RTP_TIMEOUT/set", {"value": "forty"})
    [(kind, text)] = _flash(client)
    assert kind == "error" and text.startswith("SS_RTP_TIMEOUT"), text
    assert "SS_RTP_TIMEOUT" not in web_env.store.parameters()
    client.form(PAGE, f"{PAGE}/SS_NO_SUCH_THING/set", {"value": "1"})
    [(kind, text)] = _flash(client)
    assert kind == "error" and "SS_NO_SUCH_THING" in text and "no such system parameter" in text


def test_the_access_list_is_left_to_its_own_page(web_env: WebEnv, client: WebClient) -> None:
    """Setting SERVER_WEB_ACCESS_* here would skip the Access page's lock-out check."""
    client.login()
    client.form(PAGE, f"{PAGE}/SERVER_WEB_ACCESS_CONTROL/set", {"value": "1"})
    [(kind, text)] = _flash(client)
    assert kind == "error" and "Access page" in text
    assert "SERVER_WEB_ACCESS_CONTROL" not in web_env.store.parameters()
    row = _row(client.get(PAGE).text, "SERVER_WEB_ACCESS_LIST")
    assert "/manage/access" in row and "<form" not in row


def test_the_filter_keeps_its_place_after_a_change(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    found = client.get(f"{PAGE}?q=jitter").text
    names = _rows(found)
    docs = {n: state.doc for n in names if (state := parameters_table.describe(n, {})) is not None}
    assert names and all("JITTER" in n or "jitter" in docs[n].lower() for n in names), names
    assert "SS_RTP_TIMEOUT" not in names
    done = client.form(f"{PAGE}?q=jitter", f"{PAGE}/SS_JITTERBUFFER_MAX/set", {"value": "300", "q": "jitter"})
    assert done.headers["location"] == f"{PAGE}?q=jitter"
    assert web_env.store.parameters()["SS_JITTERBUFFER_MAX"] == "300"
    assert 'id="no-parameters"' in client.get(f"{PAGE}?q=nothing-like-this").text


def test_only_the_administrator_sees_or_changes_them(web_env: WebEnv) -> None:
    web_env.users.add("olga", "operator", "operator password")
    client = WebClient(web_env.app)
    try:
        client.login("olga", "operator password")
        home = client.get("/manage/").text
        assert f'href="{PAGE}"' not in home
        assert client.get(PAGE).status_code == 403
        refused = client.form("/manage/", f"{PAGE}/SS_RTP_TIMEOUT/set", {"value": "45"})
        assert refused.status_code == 403
        assert "SS_RTP_TIMEOUT" not in web_env.store.parameters()
    finally:
        client.close()
