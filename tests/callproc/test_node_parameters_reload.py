"""The node's own SIP parameters set in the store reach a running node at the router's next
reload (``refresh()``, what the driver runs every 2 s), as the routing parameters do: the next
call and the next transaction use the new values, a call or transaction already running keeps
those it started with. Spec timers-trace-routing-dialplan.md §1.3 and §2.6 ("changes apply
immediately to new calls, and in-progress calls keep the values they started with"), behaviour
77 ("Changing a softswitch parameter (e.g. SS_SIP_TIMEOUT_RINGING) applies to the next new call
without a restart. A call already in progress keeps its old value"); §1.2 for the NAT
keep-alive. A bad stored value never stops the node: the previous value stays, named in the log
and counted.

A real :class:`Node` on a fake clock (tests/callproc/node_clock.py) over a StoreRouter on SQLite;
the customer and the carrier are the messages the test hands it and those it records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from signaling.callproc import StoreRouter
from signaling.callproc.snapshot import load_snapshot
from signaling.observe.metrics import build_registry, exposition
from signaling.sip.message import Request
from signaling.store import Store, ValidationError, open_store
from tests.api.conftest import Clock
from tests.api.conftest_app import make_api
from tests.callproc.node_clock import CARRIER, CUSTOMER, FakeClockNode, answer, fake_clock_node, invite
from tests.callproc.world import NODE_T0, basic_world


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    basic_world(s)
    return s


def first_at(h: FakeClockNode, addr: tuple[str, int], kind: str | int) -> dict[str, float]:
    """When the first message of ``kind`` went to ``addr``, by the customer's Call-ID (the
    carrier leg's Call-IDs are the node's own: by order of the calls' INVITEs)."""
    out: dict[str, float] = {}
    for s in h.to(addr, kind):
        out.setdefault(s.message.call_id, s.at)
    return out


def carrier_invites(h: FakeClockNode) -> dict[str, list[float]]:
    """Each carrier-leg INVITE transaction (by branch): when it was sent and resent."""
    out: dict[str, list[float]] = {}
    for s in h.to(CARRIER, "INVITE"):
        assert isinstance(s.message, Request)
        out.setdefault(s.message.headers.get("Via") or "", []).append(s.at)
    return out


def write_raw(store: Store, name: str, text: str) -> None:
    """A stored value the store's own check would refuse (another version's, or by hand)."""
    with store.db.transaction() as tx:
        tx.execute(
            "INSERT INTO system_parameter (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, text, "2025-03-12 10:00:00"),
        )
        tx.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")


# -- SS_SIP_TIMEOUT_* (call-setup timers) ------------------------------------------------------


def test_a_stored_invite_timeout_reaches_the_next_call_while_the_running_call_keeps_its_own(
    store: Store,
) -> None:
    with fake_clock_node(store, {"SS_SIP_TIMEOUT_INVITE": 3}) as h:
        h.receive(invite("old"))
        h.advance(0.5)
        store.set_parameter("SS_SIP_TIMEOUT_INVITE", 7)
        assert h.node.parameters["SS_SIP_TIMEOUT_INVITE"] == 3  # not before the reload
        assert h.router.refresh()
        assert h.node.parameters["SS_SIP_TIMEOUT_INVITE"] == 7
        h.receive(invite("new"))
        h.advance(10)  # the carrier never answers: each call's attempt timer gives up (408)
        assert first_at(h, CUSTOMER, 408) == {"old": NODE_T0 + 3, "new": NODE_T0 + 0.5 + 7}


def test_a_ringing_timeout_changed_while_a_call_rings_applies_to_the_next_call_only(store: Store) -> None:
    """Behaviour 77's own example: the ringing call keeps its SS_SIP_TIMEOUT_RINGING even when
    its 180 comes after the reload."""
    with fake_clock_node(store, {"SS_SIP_TIMEOUT_RINGING": 60}) as h:
        h.receive(invite("old"))
        store.set_parameter("SS_SIP_TIMEOUT_RINGING", 20)
        assert h.router.refresh()
        h.advance(1)
        h.receive(invite("new"))
        for s in h.to(CARRIER, "INVITE"):  # both carriers ring at 1001
            assert isinstance(s.message, Request)
            ringing = answer(s.message).replace(b"200 OK", b"180 Ringing", 1)
            ringing = ringing.split(b"Content-Type")[0] + b"Content-Length: 0\r\n\r\n"
            h.receive(ringing, CARRIER)
        h.advance(70)
        assert first_at(h, CUSTOMER, 408) == {"old": NODE_T0 + 1 + 60, "new": NODE_T0 + 1 + 20}


# -- SS_SIP_RESEND_INTERVAL (the transaction layer) --------------------------------------------


def test_a_stored_resend_schedule_applies_to_new_transactions_only(store: Store) -> None:
    with fake_clock_node(store, {"SS_SIP_RESEND_INTERVAL": "0.5,1,2,4,4,4,4,4,4,4"}) as h:
        h.receive(invite("old"))
        h.advance(0.1)
        store.set_parameter("SS_SIP_RESEND_INTERVAL", "3,3,3,3")
        assert h.router.refresh()
        h.receive(invite("new"))
        h.advance(9.8)  # to 1009.9, before either attempt timer (SS_SIP_TIMEOUT_INVITE = 10)
        old, new = carrier_invites(h).values()
        assert old == [NODE_T0 + t for t in (0, 0.5, 1.5, 3.5, 7.5)]  # the schedule it began with
        assert new == pytest.approx([NODE_T0 + 0.1 + t for t in (0, 3, 6, 9)])


# -- RFC 4028 session timers -------------------------------------------------------------------


def test_a_stored_session_ttl_reaches_the_next_calls_session_expires(store: Store) -> None:
    with fake_clock_node(store, {"SS_SIP_SESSION_TTL": 1800}) as h:
        h.receive(invite("old", timer=True))
        store.set_parameter("SS_SIP_SESSION_TTL", 900)
        assert h.router.refresh()
        h.receive(invite("new", timer=True))
        old, new = (s.message for s in h.to(CARRIER, "INVITE"))
        assert isinstance(old, Request) and isinstance(new, Request)
        assert old.headers.get("Session-Expires") == "1800"
        assert new.headers.get("Session-Expires") == "900"
        # the old call is answered after the reload: its caller is told the interval it began
        # with, and its refresh falls due at half of it
        h.receive(answer(old, session_expires="1800;refresher=uac"), CARRIER)
        h.receive(answer(new, session_expires="900;refresher=uac"), CARRIER)
        answers = {s.message.call_id: s.message for s in h.to(CUSTOMER, 200)}
        assert (answers["old"].headers.get("Session-Expires") or "").startswith("1800")
        assert (answers["new"].headers.get("Session-Expires") or "").startswith("900")


# -- NAT keep-alive ----------------------------------------------------------------------------


PHONE = ("203.0.113.7", 40000)


def keepalives(h: FakeClockNode) -> list[tuple[float, bytes]]:
    return [(at, data) for at, addr, data in h.keepalives if addr == PHONE]


def test_a_stored_keepalive_change_takes_the_next_round_and_an_empty_message_stops_it(store: Store) -> None:
    with fake_clock_node(store, {"SS_SIP_NAT_KEEP_ALIVE_PERIOD": 30}) as h:
        h.node.keepalive.add(PHONE, h.clock)  # what the registrar does for a phone behind NAT
        h.advance(31)
        assert keepalives(h) == [(NODE_T0 + 30, b"HELLO")]
        store.set_parameter("SS_SIP_NAT_KEEP_ALIVE_PERIOD", 10)
        store.set_parameter("SS_SIP_NAT_KEEP_ALIVE_MESSAGE", "PING")
        assert h.router.refresh()
        h.advance(20)  # to 1051: the next round is one new period after the last (1030)
        assert keepalives(h)[1:] == [(NODE_T0 + 40, b"PING"), (NODE_T0 + 50, b"PING")]
        store.set_parameter("SS_SIP_NAT_KEEP_ALIVE_MESSAGE", "")
        assert h.router.refresh()
        assert h.node.keepalive.get_timer() is None  # disabled at once
        h.advance(100)
        assert len(keepalives(h)) == 3
        store.reset_parameter("SS_SIP_NAT_KEEP_ALIVE_MESSAGE")  # the file's (default) HELLO again
        assert h.router.refresh()
        h.advance(1)  # overdue since 1060: sent at once, then every 10 s
        h.advance(10)
        assert keepalives(h)[3:] == [(NODE_T0 + 151, b"HELLO"), (NODE_T0 + 161, b"HELLO")]


# -- bad stored values ---------------------------------------------------------------------------


def test_a_bad_stored_value_keeps_the_previous_one_names_it_and_counts_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_clock_node(store, {"SS_SIP_TIMEOUT_INVITE": 3}) as h:
        store.set_parameter("SS_SIP_TIMEOUT_INVITE", 5)
        assert h.router.refresh()
        write_raw(store, "SS_SIP_TIMEOUT_INVITE", "five")
        write_raw(store, "SS_QOS_SIGNAL", "99")
        store.set_parameter("SS_SIP_SESSION_TTL", 900)  # a good change in the same reload
        with caplog.at_level(logging.ERROR, logger="softswitch.callproc"):
            assert h.router.refresh()  # does not raise
        assert h.node.parameters["SS_SIP_TIMEOUT_INVITE"] == 5  # the previous (stored) value
        assert h.node.parameters["SS_QOS_SIGNAL"] == 24  # nothing stored before: the file's
        assert h.node.parameters["SS_SIP_SESSION_TTL"] == 900
        assert h.router.parameter_errors == {"SS_SIP_TIMEOUT_INVITE": 1, "SS_QOS_SIGNAL": 1}
        text = caplog.text
        assert "SS_SIP_TIMEOUT_INVITE = 'five' refused" in text and "keeping '5'" in text
        assert "SS_QOS_SIGNAL = '99' refused" in text and "99 is outside 0..63" in text
        metrics = exposition(build_registry(h.node, process=False))[0].decode()
        assert 'softswitch_parameter_errors_total{parameter="SS_SIP_TIMEOUT_INVITE"} 1.0' in metrics
        h.receive(invite("next"))
        h.advance(6)
        assert first_at(h, CUSTOMER, 408) == {"next": NODE_T0 + 5}


def test_a_node_starts_on_a_store_holding_a_bad_value(store: Store) -> None:
    write_raw(store, "SS_SIP_TIMEOUT_INVITE", "")
    router = StoreRouter(store)  # no exception: the file's (here the default) value
    assert router.snapshot.parameters["SS_SIP_TIMEOUT_INVITE"] == 10
    assert router.parameter_errors == {"SS_SIP_TIMEOUT_INVITE": 1}
    assert load_snapshot(store).rejected[0][0] == "SS_SIP_TIMEOUT_INVITE"


def test_the_store_and_the_api_refuse_a_bad_value_naming_the_parameter(tmp_path: Path) -> None:
    for api in make_api(tmp_path, Clock()):
        with pytest.raises(ValidationError, match="SS_SIP_TIMEOUT_INVITE: expected an integer"):
            api.store.set_parameter("SS_SIP_TIMEOUT_INVITE", "ten")
        with pytest.raises(ValidationError, match="SS_SIP_RESEND_INTERVAL"):
            api.store.set_parameter("SS_SIP_RESEND_INTERVAL", "0.5,x")
        admin = api.login("root")
        for name, value in (("SS_SIP_TIMEOUT_INVITE", "ten"), ("SS_QOS_SIGNAL", 64)):
            put = admin.put(f"/api/v1/parameters/{name}", json={"value": value})
            assert put.status_code == 422 and name in put.text, put.text
        assert api.store.parameters() == {}
