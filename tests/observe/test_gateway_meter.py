"""Per-gateway figures on an injected clock: the architecture notes' T68 (ASR), T69 (ACD), T70
(PDD), lines held, the no-response streak of the gateway-down alarm."""

from __future__ import annotations

from signaling.config import load
from signaling.observe.gateways import GatewayMeter, MeteredRouter
from signaling.routing import Route, StaticRouter


def test_t68_asr_50_percent_over_100_attempts() -> None:
    meter = GatewayMeter(asr_time=600, asr_segments=10)
    for i in range(100):
        meter.attempt_started(f"c{i}", "gw", float(i))
        if i % 2:
            meter.answered(f"c{i}", "gw", i + 0.5, ring=None)
            meter.call_ended(f"c{i}", i + 0.9)
        else:
            meter.attempt_failed(f"c{i}", "gw", 486, i + 0.5, responded=True, ring=None)
    [health] = meter.health(100.0)
    assert (health.attempts, health.asr) == (100, 50.0)
    assert meter.gateways["gw"].active == 0


def test_t69_acd_120_seconds_and_t70_pdd_from_the_ring() -> None:
    meter = GatewayMeter()
    for i, talk in enumerate((60, 120, 180)):
        start = 100.0 * i
        meter.attempt_started(f"c{i}", "gw", start)
        meter.answered(f"c{i}", "gw", start + 5, ring=start + 2.5)  # 183 at 2.5 s (T70)
        meter.call_ended(f"c{i}", start + 5 + talk)
    [view] = meter.view(500.0)
    assert view["acd"] == 120.0 and view["pdd"] == 2.5 and view["answered"] == 3


def test_pdd_without_a_ring_is_the_answer_and_a_ring_of_an_earlier_attempt_is_ignored() -> None:
    meter = GatewayMeter()
    meter.attempt_started("c1", "a", 0.0)
    meter.attempt_failed("c1", "a", 503, 1.0, responded=True, ring=0.4)  # rang, then failed
    meter.attempt_started("c1", "b", 1.0)
    meter.answered("c1", "b", 1.8, ring=0.4)  # the call's ring came from a, not b
    assert meter.gateways["a"].pdd_sum == 0.4 and meter.gateways["b"].pdd_sum == 0.8


def test_lines_are_held_from_the_invite_to_the_end() -> None:
    meter = GatewayMeter()
    meter.ingress_started("cust")
    meter.attempt_started("c1", "gw", 0.0)
    assert meter.gateways["gw"].active == 1 and meter.ingress == {"cust": 1}
    meter.attempt_started("c1", "gw", 0.1)  # a 422 re-send to the same carrier: the same line
    assert (meter.gateways["gw"].active, meter.gateways["gw"].attempts) == (1, 1)
    meter.answered("c1", "gw", 1.0, ring=None)
    assert meter.gateways["gw"].active == 1
    meter.call_ended("c1", 61.0)
    meter.ingress_ended("cust")
    assert meter.gateways["gw"].active == 0 and meter.ingress == {}


def test_caller_cancel_counts_as_not_answered() -> None:
    meter = GatewayMeter()
    meter.attempt_started("c1", "gw", 0.0)
    meter.call_ended("c1", 5.0)
    stats = meter.gateways["gw"]
    assert stats.failures == {"cancelled": 1} and stats.asr.asr(5.0) == (0.0, 1) and stats.active == 0


def test_no_response_streak_ends_at_any_response_or_probe() -> None:
    meter = GatewayMeter()
    for i in range(3):
        meter.attempt_started(f"c{i}", "gw", float(i))
        meter.attempt_failed(f"c{i}", "gw", 408, i + 0.5, responded=False, ring=None)
    assert meter.gateways["gw"].no_response == 3 and meter.gateways["gw"].failures == {"timeout": 3}
    meter.attempt_started("c9", "gw", 9.0)
    meter.attempt_failed("c9", "gw", 503, 9.1, responded=True, ring=None)
    assert meter.gateways["gw"].no_response == 0
    meter.probe("gw", ok=False)
    meter.probe("gw", ok=False)
    assert meter.health(10.0)[0].options_failures == 2
    meter.probe("gw", ok=True)
    assert meter.health(10.0)[0].options_failures == 0


def test_a_route_the_inner_router_refuses_is_refused_through_the_meter_and_not_counted() -> None:
    """MeteredRouter passes the store router's "lines taken" answer (False) on to the node,
    which then skips the route (docs/b2bua.md), and meters no attempt for it."""

    class Busy(StaticRouter):
        def attempt_started(self, call_id: str, route: Route, now: float) -> bool:  # type: ignore[override]
            return route.gateway != "full"

    cfg = load({"mapping_gateway": [{"name": "c", "addresses": ["127.0.0.1"]}]})
    meter = GatewayMeter()
    router = MeteredRouter(Busy(cfg), meter, lambda call_id: (True, None))
    full = Route(gateway="full", host="127.0.0.1", port=5080, transport="udp", callee="1", caller="2")
    free = Route(gateway="free", host="127.0.0.1", port=5082, transport="udp", callee="1", caller="2")
    assert router.attempt_started("c1", full, 0.0) is False
    assert router.attempt_started("c1", free, 0.0) is True
    assert "full" not in meter.gateways and meter.gateways["free"].active == 1
