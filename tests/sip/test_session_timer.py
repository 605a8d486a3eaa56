"""RFC 4028 session timers with VOS3000's parameters (spec §1.1 and §16 behaviours 1-9), on a fake
clock: a two-hour call runs in microseconds."""

from __future__ import annotations

import pytest

from signaling.sip.message import Headers, Request, Response
from signaling.sip.session_timer import (
    MAX_CALL_DURATION,
    SESSION_TIMEOUT,
    Resend,
    SendRefresh,
    SessionExpires,
    SessionTimer,
    SessionTimerConfig,
    Terminate,
    TerminationCause,
)

ALLOW_ALL = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"
ALLOW_NO_UPDATE = "INVITE, ACK, CANCEL, BYE, OPTIONS"


def request(method: str = "INVITE", *headers: tuple[str, str], to_tag: str | None = None) -> Request:
    to = "<sip:4420@ss.example>" + (f";tag={to_tag}" if to_tag else "")
    items = [
        ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
        ("From", "<sip:1001@ss.example>;tag=f1"),
        ("To", to),
        ("Call-ID", "c1"),
        ("CSeq", f"1 {method}"),
        *headers,
    ]
    return Request(method, "sip:4420@ss.example", Headers(items))


def response(status: int, *headers: tuple[str, str]) -> Response:
    return Response(status, "", Headers(list(headers)))


def answered_uas(config: SessionTimerConfig, *headers: tuple[str, str], at: float = 0.0) -> SessionTimer:
    """A caller leg whose INVITE carried ``headers`` and which we answered at ``at``."""
    st = SessionTimer(config, role="uas")
    assert st.on_request(request("INVITE", *headers)) is None
    st.on_answered(at)
    return st


def run(st: SessionTimer, until: float, *, answer_refresh: bool = True):
    """Drive the timer to ``until``; refreshes of ours are answered 200 at once (when asked).
    Returns the refreshes sent (time, method) and the Terminate, if any."""
    sent: list[tuple[float, str]] = []
    while (t := st.get_timer()) is not None and t <= until:
        for action in st.handle_timer(t):
            if isinstance(action, Terminate):
                return sent, (t, action)
            assert isinstance(action, SendRefresh)
            sent.append((t, action.method))
            if answer_refresh:
                se = dict(action.headers)["Session-Expires"]
                st.on_response(response(200, ("Session-Expires", se), ("Require", "timer")), t)
    return sent, None


def headers_of(pairs) -> dict[str, str]:
    return dict(pairs)


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("segment", [1, 11])
def test_update_segment_outside_2_to_10_is_rejected(segment):
    with pytest.raises(ValueError, match="SS_SIP_SESSION_UPDATE_SEGMENT"):
        SessionTimerConfig(update_segment=segment)


def test_min_se_below_rfc_floor_and_ttl_below_min_se_are_rejected():
    with pytest.raises(ValueError, match="Min-SE"):
        SessionTimerConfig(min_se=60)
    with pytest.raises(ValueError, match="SS_SIP_SESSION_TTL"):
        SessionTimerConfig(session_ttl=60)


def test_session_expires_syntax():
    assert SessionExpires.parse("1800;refresher=UAC") == SessionExpires(1800, "uac")
    assert SessionExpires.parse(" 90 ") == SessionExpires(90)
    assert str(SessionExpires(600, "uas")) == "600;refresher=uas"
    for bad in ("", "abc", "90;refresher=both"):
        with pytest.raises(ValueError):
            SessionExpires.parse(bad)


# ------------------------------------------------------------------ refresh schedule (§16 1, 2, 4)


def test_two_hour_call_refreshed_every_300s_by_update_and_never_cut():
    st = answered_uas(
        SessionTimerConfig(session_ttl=600, update_segment=2),
        ("Supported", "timer"),
        ("Session-Expires", "1800"),
        ("Allow", ALLOW_ALL),
    )
    sent, ended = run(st, until=7200.0)
    assert ended is None
    assert sent == [(300.0 * k, "UPDATE") for k in range(1, 25)]
    assert st.refreshes == 24
    assert st.active


@pytest.mark.parametrize(("ttl", "segment", "period"), [(600, 10, 60.0), (900, 3, 300.0)])
def test_refresh_interval_is_ttl_over_segment(ttl, segment, period):
    st = answered_uas(SessionTimerConfig(session_ttl=ttl, update_segment=segment), ("Supported", "timer"))
    sent, ended = run(st, until=3 * period)
    assert ended is None
    assert [t for t, _ in sent] == [period, 2 * period, 3 * period]


def test_refresh_is_reinvite_when_peer_does_not_allow_update():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"), ("Allow", ALLOW_NO_UPDATE))
    sent, _ = run(st, until=300.0)
    assert sent == [(300.0, "INVITE")]


def test_refresh_request_names_us_as_refresher():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"), ("Session-Expires", "600;refresher=uas"))
    [action] = st.handle_timer(300.0)
    assert isinstance(action, SendRefresh)
    h = headers_of(action.headers)
    assert h["Session-Expires"] == "600;refresher=uac"  # we are the UAC of the refresh
    assert h["Supported"] == "timer"
    assert h["Min-SE"] == "90"


# ------------------------------------------------------------------ UAS negotiation


def test_uas_answer_reduces_interval_to_ttl_and_requires_timer():
    st = SessionTimer(SessionTimerConfig(session_ttl=600), role="uas")
    assert st.on_request(request("INVITE", ("Supported", "timer"), ("Session-Expires", "1800"))) is None
    h = headers_of(st.response_headers())
    assert h["Session-Expires"] == "600;refresher=uas"
    assert h["Require"] == "timer"


def test_uas_honours_refresher_uac_then_expires_without_refresh():
    st = answered_uas(
        SessionTimerConfig(session_ttl=600), ("Supported", "timer"), ("Session-Expires", "600;refresher=uac")
    )
    assert not st.we_refresh
    assert st.get_timer() == 568.0  # 600 - min(32, 600/3)
    sent, ended = run(st, until=10_000.0)
    assert sent == []
    assert ended is not None
    t, action = ended
    assert t == 568.0
    assert action == Terminate(TerminationCause.SESSION_EXPIRED, SESSION_TIMEOUT)
    assert st.get_timer() is None  # stopped


def test_peer_refreshes_keep_the_call_up_for_two_hours():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"), ("Session-Expires", "600;refresher=uac"))
    for k in range(1, 25):
        now = 300.0 * k
        assert st.handle_timer(now - 0.001) == []
        refresh = request(
            "UPDATE", ("Supported", "timer"), ("Session-Expires", "600;refresher=uac"), to_tag="t"
        )
        assert st.on_request(refresh) is None
        assert headers_of(st.response_headers())["Session-Expires"] == "600;refresher=uac"
        st.on_answered(now)
    assert st.refreshes == 24
    assert st.expires_at == 7200.0 + 568.0


def test_small_interval_with_timer_support_gets_422_with_min_se():
    st = SessionTimer(SessionTimerConfig(min_se=120), role="uas")
    resp = st.on_request(request("INVITE", ("Supported", "timer"), ("Session-Expires", "100")), to_tag="x")
    assert resp is not None
    assert resp.status == 422
    assert resp.reason == "Session Interval Too Small"
    assert resp.headers.get("Min-SE") == "120"
    assert resp.to.tag == "x"


def test_small_interval_without_timer_support_is_raised_and_we_refresh():
    st = SessionTimer(SessionTimerConfig(min_se=120), role="uas")
    assert st.on_request(request("INVITE", ("Session-Expires", "100;refresher=uac"))) is None
    h = headers_of(st.response_headers())
    assert h["Session-Expires"] == "120;refresher=uas"
    assert "Require" not in h  # the UAC does not support the extension
    st.on_answered(0.0)
    assert st.we_refresh
    assert st.get_timer() == 60.0


def test_supported_timer_without_session_expires_gets_one_from_us():
    st = answered_uas(SessionTimerConfig(session_ttl=900), ("Supported", "timer"), ("Min-SE", "1000"))
    assert st.interval == 1000  # never below the peer's Min-SE
    assert st.we_refresh


def test_malformed_session_expires_gets_400():
    st = SessionTimer(SessionTimerConfig(), role="uas")
    resp = st.on_request(request("INVITE", ("Session-Expires", "soon")))
    assert resp is not None
    assert resp.status == 400


# ------------------------------------------------------------------ UAC negotiation


def test_uac_initial_invite_headers_and_422_retry():
    st = SessionTimer(SessionTimerConfig(session_ttl=600), role="uac")
    h = headers_of(st.request_headers())
    assert h == {"Supported": "timer", "Session-Expires": "600", "Min-SE": "90"}
    [action] = st.on_response(response(422, ("Min-SE", "1200")), 0.5)
    assert isinstance(action, Resend)
    assert headers_of(action.headers) == {"Supported": "timer", "Session-Expires": "1200", "Min-SE": "1200"}
    st.on_response(response(200, ("Session-Expires", "1200;refresher=uac"), ("Require", "timer")), 1.0)
    assert (st.interval, st.we_refresh) == (1200, True)
    assert st.get_timer() == 601.0


def test_uac_gives_up_on_a_422_that_does_not_raise_min_se():
    st = SessionTimer(SessionTimerConfig(), role="uac")
    assert st.on_response(response(422, ("Min-SE", "90")), 0.0) == []


def test_uac_peer_as_refresher():
    st = SessionTimer(SessionTimerConfig(), role="uac")
    st.on_response(response(200, ("Session-Expires", "900;refresher=uas")), 10.0)
    assert not st.we_refresh
    assert st.get_timer() == 10.0 + 868.0


# ------------------------------------------------------------------ failures (§16 5, 8, 9)


def test_unanswered_refresh_tears_the_call_down_when_the_transaction_times_out():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"))
    sent, _ = run(st, until=300.0, answer_refresh=False)
    assert sent == [(300.0, "INVITE")]
    assert st.handle_timer(320.0) == []  # no second refresh while one is in flight
    # the transaction layer reports Timer B/F (~32 s; 31.5 s with SS_SIP_RESEND_INTERVAL)
    assert st.on_timeout(331.5) == [Terminate(TerminationCause.REFRESH_FAILED, SESSION_TIMEOUT)]
    assert st.get_timer() is None


@pytest.mark.parametrize("status", [408, 481])
def test_refresh_answered_408_or_481_ends_the_call(status):
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"))
    st.handle_timer(300.0)
    assert st.on_response(response(status), 301.0) == [
        Terminate(TerminationCause.REFRESH_FAILED, SESSION_TIMEOUT)
    ]


@pytest.mark.parametrize(("early", "deadline"), [(0, 568.0), (60, 508.0), (500, 400.0)])
def test_early_hangup_releases_a_dead_session_that_much_sooner(early, deadline):
    st = answered_uas(
        SessionTimerConfig(timeout_early_hangup=early),
        ("Supported", "timer"),
        ("Session-Expires", "600;refresher=uac"),
    )
    _, ended = run(st, until=10_000.0)
    assert ended is not None
    assert ended[0] == deadline  # never earlier than 2/3 of the interval (400 s)


def test_reinvite_refused_with_501_switches_to_update_when_allowed():
    st = answered_uas(SessionTimerConfig(prefer_update=False), ("Supported", "timer"), ("Allow", ALLOW_ALL))
    [first] = st.handle_timer(300.0)
    assert isinstance(first, SendRefresh)
    assert first.method == "INVITE"
    [retry] = st.on_response(response(501, ("Allow", ALLOW_ALL)), 300.2)
    assert isinstance(retry, SendRefresh)
    assert retry.method == "UPDATE"
    st.on_response(response(200, ("Session-Expires", "600;refresher=uac")), 300.3)
    sent, ended = run(st, until=1000.0)
    assert ended is None
    assert {m for _, m in sent} == {"UPDATE"}


def test_peer_refusing_both_methods_falls_back_to_the_no_timer_cap():
    st = answered_uas(SessionTimerConfig(no_timer_max_duration=7200), ("Supported", "timer"))
    st.handle_timer(300.0)
    [retry] = st.on_response(response(405), 300.1)
    assert isinstance(retry, SendRefresh)
    assert retry.method == "UPDATE"
    assert st.on_response(response(501), 300.2) == []
    assert not st.active
    assert st.get_timer() == 7200.0


def test_glare_491_retries_after_backoff():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"))
    st.handle_timer(300.0)
    assert st.on_response(response(491), 300.1) == []
    assert st.get_timer() == pytest.approx(301.1)  # 1.0 s: we do not own this leg's Call-ID
    [again] = st.handle_timer(301.1)
    assert isinstance(again, SendRefresh)


def test_other_refresh_failure_retries_halfway_to_the_deadline_then_expires():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"))
    st.handle_timer(300.0)
    assert st.on_response(response(500), 300.0) == []
    assert st.get_timer() == 434.0  # halfway from 300 to 568
    st.handle_timer(434.0)
    assert st.on_response(response(500), 434.0) == []
    assert st.get_timer() == 501.0
    st.handle_timer(501.0)
    assert st.on_response(response(500), 501.0) == []  # 67 s left: one more try
    assert st.get_timer() == 534.5
    st.handle_timer(534.5)
    assert st.on_response(response(500), 534.5) == []  # 33.5 s left: no more retries
    assert st.handle_timer(568.0) == [Terminate(TerminationCause.SESSION_EXPIRED, SESSION_TIMEOUT)]


def test_refresh_422_raises_the_interval_and_retries():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"))
    st.handle_timer(300.0)
    [retry] = st.on_response(response(422, ("Min-SE", "1800")), 300.1)
    assert isinstance(retry, SendRefresh)
    assert headers_of(retry.headers)["Session-Expires"] == "1800;refresher=uac"


# ------------------------------------------------------------------ non-timer endpoints (§16 6, 7)


def test_non_timer_caller_is_released_at_no_timer_max_duration():
    st = answered_uas(SessionTimerConfig(no_timer_max_duration=7200))
    assert not st.active
    assert headers_of(st.response_headers()) == {"Supported": "timer"}
    assert st.handle_timer(7199.999) == []
    assert st.handle_timer(7200.0) == [Terminate(TerminationCause.NO_TIMER_LIMIT, MAX_CALL_DURATION)]


def test_non_timer_callee_200_without_session_expires_is_capped():
    st = SessionTimer(SessionTimerConfig(no_timer_max_duration=3600), role="uac")
    st.on_response(response(200, ("Allow", ALLOW_ALL)), 5.0)
    assert st.get_timer() == 3605.0


def test_no_timer_max_duration_zero_lets_a_non_timer_call_run_past_two_hours():
    st = answered_uas(SessionTimerConfig(no_timer_max_duration=0))
    assert st.get_timer() is None
    assert st.handle_timer(7200.0 * 10) == []


def test_stop_silences_everything():
    st = answered_uas(SessionTimerConfig(), ("Supported", "timer"))
    st.stop()
    assert st.get_timer() is None
    assert st.handle_timer(10_000.0) == []
    assert st.on_timeout(10_000.0) == []
