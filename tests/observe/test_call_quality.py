"""Call quality at call end, PDD flags, routing KPIs and balance runway, on injected clocks:
reference part 2 behaviours 24 (one-way audio), 25 (loss > 1 %), 26 (jitter 30/50 ms), 63
(protect-route usage), 72 (balance runway 12 h / 4 h), 73 (KPI bands) and the architecture
notes' T70 (PDD over 3 s flagged)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from signaling.config import load
from signaling.observe.alarms import AlarmBoard, AlarmConfig, gateway_conditions
from signaling.observe.gateways import GatewayMeter, MeteredRouter
from signaling.observe.metrics import NodeCollector
from signaling.observe.quality import BalanceRunway, MediaQualityMeter, RoutingKpi, kpi_band
from signaling.routing import CallRecord, Route, StaticRouter


def record(
    call_id: str = "c1",
    *,
    packets: dict[str, int] | None = None,
    quality: dict[str, tuple[int, int, float]] | None = None,
    talk: float = 30.0,
    answered: bool = True,
) -> CallRecord:
    r = CallRecord(call_id, "cust", "1001", "4420", ("127.0.0.1", 5060), start=0.0)
    r.gateway = "carrier"
    r.answer = 1.0 if answered else None
    r.end = 1.0 + talk
    r.media_packets = packets if packets is not None else {"caller": 1500, "callee": 1500}
    r.media_quality = quality or {}
    return r


def test_24_one_way_audio_when_one_party_sent_nothing() -> None:
    meter = MediaQualityMeter()
    findings = meter.call_ended(record(packets={"caller": 1500, "callee": 0}), 100.0)
    assert findings == [("one_way_audio", "callee", "major", 1500.0)]
    assert meter.flagged == {("one_way_audio", "callee", "major"): 1}
    [cond] = meter.conditions(101.0)
    assert cond.kind == "one_way_audio" and cond.subject == "routing:carrier" and cond.state == "bad"
    assert "c1" in cond.message and "cust -> carrier" in cond.message


def test_24_not_one_way_short_unanswered_or_both_flowing() -> None:
    meter = MediaQualityMeter()
    assert meter.call_ended(record(packets={"caller": 100, "callee": 0}, talk=3.0), 10.0) == []  # < 5 s
    assert meter.call_ended(record(packets={"caller": 100, "callee": 0}, answered=False), 10.0) == []
    assert meter.call_ended(record(packets={"caller": 0, "callee": 0}), 10.0) == []  # no audio at all
    assert meter.call_ended(record(packets={"caller": 900, "callee": 1000}), 10.0) == []
    assert meter.call_ended(record(packets={}), 10.0) == []  # no statistics (no media proxy)
    assert meter.conditions(11.0) == []
    # the caller's silence is blamed on the side the caller came in on
    [(_, party, _, _)] = meter.call_ended(record(packets={"caller": 0, "callee": 700}), 12.0)
    assert party == "caller" and meter.conditions(12.0)[0].subject == "mapping:cust"


def test_25_loss_of_1_5_percent_is_an_alert_and_1_percent_is_not() -> None:
    meter = MediaQualityMeter()
    assert meter.call_ended(record(quality={"callee": (1000, 10, 5.0)}), 1.0) == []  # 1 %: not above
    findings = meter.call_ended(record(quality={"callee": (1000, 15, 5.0)}), 2.0)
    assert findings == [("packet_loss", "callee", "warning", 1.5)]
    findings = meter.call_ended(record(quality={"caller": (1000, 25, 5.0)}), 3.0)
    assert findings == [("packet_loss", "caller", "critical", 2.5)]  # the band's "> 2 %"
    # too few packets to judge a percentage
    assert meter.call_ended(record(quality={"callee": (20, 5, 5.0)}), 4.0) == []


def test_26_jitter_35_ms_alerts_and_55_ms_is_critical() -> None:
    meter = MediaQualityMeter()
    assert meter.call_ended(record(quality={"callee": (1000, 0, 30.0)}), 1.0) == []
    assert meter.call_ended(record(quality={"callee": (1000, 0, 35.0)}), 2.0) == [
        ("jitter_high", "callee", "warning", 35.0)
    ]
    assert meter.call_ended(record("c3", quality={"callee": (1000, 0, 55.0)}), 3.0) == [
        ("jitter_high", "callee", "critical", 55.0)
    ]
    [cond] = meter.conditions(4.0)  # one alarm for the carrier, at the episode's worst
    assert cond.severity == "critical" and cond.value == 2 and "worst 55 ms" in cond.message
    assert "c3" in cond.message


def test_a_bad_carrier_makes_one_alarm_that_clears_after_the_window() -> None:
    config = AlarmConfig(media_window=300.0)
    meter = MediaQualityMeter(config)
    board = AlarmBoard(config)
    kinds = ["one_way_audio", "packet_loss", "jitter_high"]
    events = []
    for i in range(50):  # a call every 10 s, each losing 5 %
        meter.call_ended(record(f"c{i}", quality={"callee": (1000, 50, 5.0)}), 10.0 * i)
        events += board.evaluate(10.0 * i + 1, meter.conditions(10.0 * i + 1), kinds)
    assert [e.action for e in events] == ["raised"]
    assert (
        board.raised_total["packet_loss"] == 1 and meter.flagged[("packet_loss", "callee", "critical")] == 50
    )
    [alarm] = board.active.values()
    assert alarm.value == 50 and "c49" in alarm.message
    assert board.evaluate(490.0 + 299, meter.conditions(490.0 + 299), kinds) == []
    [cleared] = board.evaluate(490.0 + 300, meter.conditions(490.0 + 300), kinds)
    assert cleared.action == "cleared" and not board.active


def test_t70_pdd_over_3_s_is_flagged_per_attempt_and_alarmed_per_gateway() -> None:
    meter = GatewayMeter()
    meter.attempt_started("ok", "gw", 0.0)
    meter.answered("ok", "gw", 5.0, ring=2.5)  # 183 at 2.5 s: meets the target
    assert meter.gateways["gw"].pdd_slow == 0
    meter.attempt_started("slow", "gw", 10.0)
    meter.answered("slow", "gw", 15.0, ring=13.5)  # 3.5 s: flagged
    assert meter.gateways["gw"].pdd_slow == 1
    config = AlarmConfig(pdd_min_calls=2)
    [health] = meter.health(20.0)
    assert (health.pdd, health.pdd_calls) == (3.0, 2)
    assert next(c for c in gateway_conditions(config, [health]) if c.kind == "pdd_high").state == "good"
    for i in range(4):
        meter.attempt_started(f"s{i}", "gw", 20.0 + i)
        meter.attempt_failed(f"s{i}", "gw", 486, 30.0 + i, responded=True, ring=28.0 + i)  # 8 s
    [health] = meter.health(40.0)
    [cond] = [c for c in gateway_conditions(config, [health]) if c.kind == "pdd_high"]
    assert health.pdd is not None and round(health.pdd, 2) == 6.33  # (2.5 + 3.5 + 4 x 8) / 6
    assert cond.state == "bad" and cond.severity == "warning" and "gw" in cond.message  # 3-7 s band
    # fewer measured attempts than the minimum: nothing said
    assert not [
        c for c in gateway_conditions(AlarmConfig(pdd_min_calls=99), [health]) if c.kind == "pdd_high"
    ]


def test_73_kpi_bands() -> None:
    c = AlarmConfig()
    assert kpi_band(c, "failover_rate", 6.0) == 1 and kpi_band(c, "failover_rate", 4.9) == 0
    assert kpi_band(c, "failover_rate", 16.0) == 2
    assert kpi_band(c, "protect_route_usage", 4.0) == 2 and kpi_band(c, "protect_route_usage", 2.0) == 1
    assert kpi_band(c, "protect_route_usage", 0.0) == 0
    assert kpi_band(c, "primary_asr", 28.0) == 2 and kpi_band(c, "primary_asr", 40.0) == 1
    assert kpi_band(c, "primary_asr", 50.0) == 0


def routed(
    kpi: RoutingKpi, call_id: str, gateways: list[tuple[str, bool]], answered: bool, now: float
) -> None:
    for gateway, protect in gateways:
        kpi.attempt_started(call_id, gateway, protect)
    if answered:
        kpi.answered(call_id)
    kpi.call_ended(call_id, now)


def test_73_a_day_of_6_percent_failover_4_percent_protect_28_percent_primary_asr() -> None:
    kpi = RoutingKpi(AlarmConfig(kpi_min_calls=20))
    for i in range(100):
        if i < 4:  # A and B failed, protect C connected (behaviour 63)
            routed(kpi, f"c{i}", [("A", False), ("B", False), ("C", True)], True, 60.0 * i)
        elif i < 6:
            routed(kpi, f"c{i}", [("A", False), ("B", False)], True, 60.0 * i)
        else:
            routed(kpi, f"c{i}", [("A", False), ("A", False)], i < 34, 60.0 * i)  # a 422 re-send
    now = 6000.0
    assert kpi.ratios(now) == {"failover_rate": 6.0, "protect_route_usage": 4.0, "primary_asr": 28.0}
    assert kpi.totals == {"routed": 100, "failover": 6, "protect": 4, "primary_answered": 28}
    found = {c.kind: (c.state, c.severity) for c in kpi.conditions(now)}
    assert found == {
        "failover_rate_high": ("bad", "warning"),
        "protect_route_usage": ("bad", "critical"),
        "primary_asr_low": ("bad", "critical"),
    }
    assert kpi.ratios(now + 86400.0 + 3600.0) == {}  # out of the day's window
    assert kpi.conditions(now + 86400.0 + 3600.0) == []


def test_63_protect_usage_counts_through_the_metered_router() -> None:
    """The store router's snapshot marks C a protect route; the node's MeteredRouter counts the
    call that reached C (and no other)."""
    cfg = load({"mapping_gateway": [{"name": "c", "addresses": ["127.0.0.1"]}]})
    inner = StaticRouter(cfg)
    gateways = {1: SimpleNamespace(name="A", protect=False), 3: SimpleNamespace(name="C", protect=True)}
    inner.snapshot = SimpleNamespace(routing=gateways)  # type: ignore[attr-defined]
    meter = GatewayMeter()
    router = MeteredRouter(inner, meter, lambda call_id: (True, None))

    def route(name: str) -> Route:
        return Route(gateway=name, host="127.0.0.1", port=5080, transport="udp", callee="1", caller="2")

    for call_id, names in (("x", ["A", "C"]), ("y", ["A"])):
        for name in names:
            router.attempt_started(call_id, route(name), 0.0)
        router.call_answered(call_id, route(names[-1]), 1.0)
        r = CallRecord(call_id, "c", "1", "2", ("127.0.0.1", 5060), start=0.0, answer=1.0, end=9.0)
        router.call_ended(r)
    assert meter.kpi.totals == {"routed": 2, "failover": 1, "protect": 1, "primary_answered": 1}


def test_72_balance_runway_warning_under_12_h_critical_under_4_h() -> None:
    runway = BalanceRunway(AlarmConfig(runway_window=3600.0, runway_min_span=600.0))
    runway.observe(0.0, {"slow": Decimal("100.00"), "fast": Decimal("100.00"), "idle": Decimal("5")})
    assert [c.state for c in runway.conditions()] == ["good"] * 3  # no spend measured yet
    # over an hour: slow spends 5/h (runway 19 h), fast 10/h then 30/h
    runway.observe(1800.0, {"slow": Decimal("97.50"), "fast": Decimal("95.00"), "idle": Decimal("5")})
    runway.observe(3600.0, {"slow": Decimal("95.00"), "fast": Decimal("90.00"), "idle": Decimal("5")})
    found = {c.subject: c for c in runway.conditions()}
    assert found["slow"].state == "good" and found["idle"].state == "good"
    assert found["fast"].state == "bad" and found["fast"].severity == "warning"  # 90 at 10/h: 9 h
    assert found["fast"].value == 9.0
    board = AlarmBoard()
    [raised] = board.evaluate(3600.0, runway.conditions(), ["balance_runway"])
    assert raised.action == "raised" and raised.alarm["subject"] == "fast"
    runway.observe(5400.0, {"slow": Decimal("92.50"), "fast": Decimal("30.00"), "idle": Decimal("5")})
    fast = {c.subject: c for c in runway.conditions()}["fast"]
    assert fast.severity == "critical" and fast.value is not None and float(fast.value) < 4
    assert board.evaluate(5400.0, runway.conditions(), ["balance_runway"])[0].action == "changed"
    # a payment starts the span again: no rate, the alarm clears
    runway.observe(5500.0, {"slow": Decimal("92.50"), "fast": Decimal("500.00"), "idle": Decimal("5")})
    assert [e.action for e in board.evaluate(5500.0, runway.conditions(), ["balance_runway"])] == ["cleared"]


def test_runway_readings_stay_few_per_account() -> None:
    runway = BalanceRunway(AlarmConfig(runway_window=3600.0))
    amount = Decimal(10000)
    for minute in range(600):  # ten hours of one reading a minute
        amount -= 1
        runway.observe(60.0 * minute, {"a": amount})
    assert len(runway.accounts["a"].samples) <= BalanceRunway.KEEP + 1
    left, rate = runway.runway("a") or (0.0, Decimal(0))
    assert rate == Decimal("60.00") and round(left / 3600.0, 1) == round(float(amount) / 60, 1)


def test_the_scrape_carries_the_flags_and_the_kpis_with_their_bands() -> None:
    meter = GatewayMeter()
    for i in range(10):  # one call in ten fails over to a protect route: 10 % each
        gateways = [("A", False), ("C", True)] if i == 0 else [("A", False)]
        routed(meter.kpi, f"k{i}", gateways, True, 1.0)
    meter.quality.call_ended(record(packets={"caller": 10, "callee": 0}), 20.0)
    collector = NodeCollector(SimpleNamespace(gateways=meter, now=lambda: 30.0))  # type: ignore[arg-type]
    samples = {
        (s.name, tuple(sorted(s.labels.values()))): s.value for f in collector._quality() for s in f.samples
    }
    assert samples[("softswitch_media_calls_flagged_total", ("callee", "major", "one_way_audio"))] == 1
    assert samples[("softswitch_protect_route_calls_total", ())] == 1
    assert samples[("softswitch_routing_kpi_ratio", ("protect_route_usage",))] == 0.1
    assert samples[("softswitch_routing_kpi_band", ("protect_route_usage",))] == 2  # > 3 %
    assert samples[("softswitch_routing_kpi_band", ("failover_rate",))] == 1  # 5-15 %
    assert samples[("softswitch_routing_kpi_band", ("primary_asr",))] == 0  # 90 %
