"""Real-time ASR and ACD per routing gateway (timers-trace-routing-dialplan §3.3, behaviours 21
and 22; architecture §21.10 T68 and T69), fed by the router from attempts, answers and ends; and
the billing FAQ's rate of response and rate of connected (architecture CAP-5.6, [003e])."""

from __future__ import annotations

import pytest

from signaling.callproc.analysis import analyse, render
from signaling.callproc.quality import Quality, Window
from signaling.store import Store
from tests.callproc.world import T0, FakeNode, basic_world


def test_21_asr_is_the_mean_of_the_segment_asrs() -> None:
    window = Window(600, 10)  # segments of 60 s
    for segment, asr in enumerate([55, 58, 52, 60, 57, 54, 59, 56, 61, 58]):
        for i in range(100):
            window.attempt(segment * 60 + 1, answered=i < asr)
    mean, attempts = window.asr(9 * 60 + 30)
    assert mean == pytest.approx(57.0) and attempts == 1000


def test_the_asr_mean_is_unweighted_and_skips_empty_segments() -> None:
    window = Window(600, 10)
    for i in range(45):
        window.attempt(0, answered=i < 25)  # 55.6 %
    for i in range(50):
        window.attempt(60, answered=i < 30)  # 60.0 %
    for i in range(40):
        window.attempt(180, answered=i < 22)  # 55.0 % (segment 2 is empty)
    asr, attempts = window.asr(200)
    assert asr == pytest.approx((25 / 45 + 30 / 50 + 22 / 40) / 3 * 100)
    assert attempts == 135


def test_old_segments_leave_the_window() -> None:
    window = Window(300, 5)
    window.attempt(0, answered=False)
    window.attempt(299, answered=True)
    assert window.asr(299) == (50.0, 2)
    assert window.asr(300) == (100.0, 1)  # segment 0 left the 300 s window
    assert window.asr(600) == (None, 0)


def test_22_t69_acd_is_total_duration_over_answered_calls() -> None:
    window = Window(600, 10)
    for i in range(30):
        window.call(i * 10, 4500 / 30)
    assert window.acd(300) == pytest.approx(150.0)
    other = Window(600, 10)
    for seconds in (60, 120, 180):
        other.call(5, seconds)
    assert other.acd(5) == pytest.approx(120.0)


def test_t68_the_router_counts_attempts_answers_and_durations(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="100", gateways=({"name": "gw", "prefixes": ("1",)},))
    node = FakeNode.on(sqlite_store)
    quality: Quality = node.router.quality
    gw = node.router.snapshot.routing_by_name("gw")
    assert gw is not None
    for i in range(100):
        call = f"c{i}"
        node.admit(call, "12125550100")
        if i % 2:
            node.answer(call)
            node.advance(0.5)
            node.end(call)
        elif i % 4:
            node.try_route(call)
            node.fail(call, 503)
            node.end(call, termination="AllRoutesFailed", ended_by="switch", status=503)
        else:
            node.try_route(call)  # the caller cancels while it rings
            node.end(call, termination="CallerCancel", status=487)
    asr, attempts = quality.asr(gw.id, node.now)
    assert asr == pytest.approx(50.0) and attempts == 100
    assert quality.acd(gw.id, node.now) == pytest.approx(0.5)


def test_the_faq_rates_of_response_and_connected_per_window() -> None:
    """[003e] "Rate of response: responsed CDRs / all CDRs; rate of connected: connected CDRs /
    all CDRs, connected containing the responsed, the alerting and the UserBusy ones": of 10
    attempts, 4 answered, 3 alerted without an answer, 1 busy, 2 failed -> 40 % and 80 %."""
    window = Window(600, 10)
    for outcome in ["answered"] * 4 + ["alerted"] * 3 + ["busy"] + ["failed"] * 2:
        window.attempt(10, answered=outcome == "answered", connected=outcome in ("alerted", "busy"))
    assert window.rates(20) == (40.0, 80.0)
    assert Window(600, 10).rates(0) == (None, None)


def test_the_router_feeds_the_faq_rates_and_the_analysis_shows_them(sqlite_store: Store) -> None:
    """Four calls on one gateway: answered; rang then the caller cancelled; 486 busy; 503 ->
    rate of response 25 %, rate of connected 75 %, in the routing analysis too."""
    basic_world(sqlite_store, balance="100", gateways=({"name": "gw", "prefixes": ("1",)},))
    node = FakeNode.on(sqlite_store)
    node.admit("answered", "12125550100")
    node.answer("answered")
    node.end("answered")
    node.admit("rang", "12125550100")
    node.try_route("rang")
    node.alert("rang")
    node.end("rang", termination="CallerCancel", status=487)
    for call, status in (("busy", 486), ("failed", 503)):
        node.admit(call, "12125550100")
        node.try_route(call)
        node.fail(call, status)
        node.end(call, termination=f"SIP {status}", ended_by="switch", status=status)
    router = node.router
    gw = router.snapshot.routing_by_name("gw")
    assert gw is not None
    assert router.quality.rates(gw.id, node.now) == (25.0, 75.0)
    report = analyse(
        router.snapshot, "12125550100", at=T0, ingress="cust", now=node.now, quality=router.quality
    )
    assert "response/connected 25%/75%" in render(report)
