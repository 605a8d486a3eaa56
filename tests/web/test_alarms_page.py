"""The alarm monitor shows the node's alarm board as it reports it (plain data: the active
alarms and the history), with the reference's names and severities (web manager §7.8); a routing
gateway the alarms report down is not counted online on the dashboard."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signaling.store import RoutingGateway, open_store
from signaling.web.alarms import SnapshotAlarms
from tests.web.conftest import PASSWORD, Clock, WebClient, WebEnv, build

NOW = time.time()
BOARD: dict[str, Any] = {
    "active": [
        {
            "key": "gateway_down:carrier-b",
            "kind": "gateway_down",
            "subject": "carrier-b",
            "severity": "major",
            "message": "5 attempts without a response",
            "value": 5,
            "raised_at": NOW - 60,
            "updated_at": NOW,
            "cleared_at": None,
        },
        {
            "key": "cpu_high:cpu",
            "kind": "cpu_high",
            "subject": "cpu",
            "severity": "critical",
            "message": "CPU 85 % for 60 s",
            "value": 85.0,
            "raised_at": NOW - 30,
            "updated_at": NOW,
            "cleared_at": None,
        },
    ],
    "history": [
        {
            "action": "cleared",
            "at": NOW - 5,
            "key": "asr_low:carrier-a",
            "kind": "asr_low",
            "subject": "carrier-a",
            "severity": "warning",
            "message": "ASR 30 %",
            "value": 30.0,
            "raised_at": NOW - 600,
            "updated_at": NOW - 5,
            "cleared_at": NOW - 5,
        },
    ],
}


@pytest.fixture
def env_with_alarms(tmp_path: Path) -> Iterator[WebEnv]:
    store = open_store(f"sqlite:///{tmp_path / 'alarms.db'}")
    try:
        env = build(store, Clock(), alarms=SnapshotAlarms(lambda history: BOARD))
        env.users.add("alice", "admin", PASSWORD)
        yield env
    finally:
        store.close()


def test_the_alarm_page_shows_the_board(env_with_alarms: WebEnv) -> None:
    client = WebClient(env_with_alarms.app)
    try:
        client.login()
        page = client.get("/manage/alarms").text
        current = page.split('id="current-alarms"')[1].split("</table>")[0]
        assert "Vendor Unreachable" in current and "carrier-b" in current and "major" in current
        assert "High CPU Usage" in current and "critical" in current
        history = page.split('id="alarm-history"')[1].split("</table>")[0]
        assert "cleared" in history and "Low ASR Detected" in history and "carrier-a" in history
    finally:
        client.close()


def test_a_gateway_reported_down_is_not_online(env_with_alarms: WebEnv) -> None:
    admin = env_with_alarms.store.admin()
    for name in ("carrier-a", "carrier-b", "carrier-c"):
        admin.create(RoutingGateway(name, host="192.0.2.1", locked=name == "carrier-c"))
    client = WebClient(env_with_alarms.app)
    try:
        client.login()
        dashboard = client.get("/manage/").text
        assert 'id="routing-online">1<' in dashboard  # a: enabled and up; b: down; c: locked
        assert "Vendor Unreachable" in dashboard  # the current alarms on the dashboard too
    finally:
        client.close()


def test_without_an_alarm_board_the_page_says_none_is_active(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    assert "No alarm is active." in client.get("/manage/alarms").text
