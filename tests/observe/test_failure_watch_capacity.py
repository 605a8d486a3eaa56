"""The T78 alerts (a gateway's carrier failure rate over a threshold; calls to a watched
destination prefix), the network band of behaviour 65 and the node's capacity limit of
behaviour 66 (``[sip] max_calls``: 503 + Retry-After and the "capacity_limit" alarm), on injected
clocks and on a real node with SIPp peers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from signaling.config import load
from signaling.observe.alarms import (
    AlarmBoard,
    AlarmConfig,
    SystemSample,
    capacity_conditions,
    gateway_conditions,
    system_conditions,
)
from signaling.observe.driver import Observer
from signaling.observe.gateways import GatewayMeter, carrier_failure
from signaling.observe.system import NetworkMeter, SystemSampler, link_speed_mbps, net_bytes
from signaling.observe.watch import DestinationWatch
from tests.b2bua_harness import node_with, peers_listening
from tests.observe.test_observer_node import QuietSampler, history
from tests.sipp_calls import carrier, customer, ended_records, ok, run, start


def _attempts(meter: GatewayMeter, outcomes: list[int | str], t0: float = 0.0) -> None:
    """One attempt per outcome on gateway "gw": a status, "answer", "timeout" or "cancel"."""
    for i, outcome in enumerate(outcomes):
        call_id, now = f"c{t0}-{i}", t0 + i * 0.1
        meter.attempt_started(call_id, "gw", now)
        if outcome == "answer":
            meter.answered(call_id, "gw", now + 0.05, ring=None)
            meter.call_ended(call_id, now + 0.06)
        elif outcome == "cancel":
            meter.call_ended(call_id, now + 0.05)
        elif outcome == "timeout":
            meter.attempt_failed(call_id, "gw", 408, now + 0.05, responded=False, ring=None)
        else:
            assert isinstance(outcome, int)
            meter.attempt_failed(call_id, "gw", outcome, now + 0.05, responded=True, ring=None)


def test_carrier_failures_are_5xx_6xx_but_busy_408_and_no_response() -> None:
    assert carrier_failure(503, True) and carrier_failure(500, True) and carrier_failure(604, True)
    assert carrier_failure(408, True) and carrier_failure(487, False)  # no response at all
    assert not carrier_failure(486, True) and not carrier_failure(600, True)  # busy
    assert not carrier_failure(404, True) and not carrier_failure(487, True)


def test_t78_failure_rate_over_the_threshold_raises_and_clears_below() -> None:
    config = AlarmConfig(failure_rate_high=30, failure_rate_clear=20, failure_min_calls=10, clear_after=0)
    meter = GatewayMeter(asr_time=600, asr_segments=10)
    # 10 attempts: 3 carrier failures (503, 408 timeout, 502) = 30 %; busy, 404 and cancels are not
    _attempts(meter, [503, "timeout", 502, 486, 404, "cancel", "answer", "answer", "answer", 600])
    [health] = meter.health(5.0)
    assert (health.attempts, health.failure_rate) == (10, 30.0)
    board = AlarmBoard(config)
    board.evaluate(5.0, gateway_conditions(config, meter.health(5.0)), ["gateway_failure_rate"])
    alarm = board.active["gateway_failure_rate:gw"]
    assert alarm.severity == "major" and alarm.value == 30.0
    assert "30.0 % of 10 attempts (threshold 30 %)" in alarm.message
    # 10 more answered: 3 of 20 = 15 % < 20 %: cleared
    _attempts(meter, ["answer"] * 10, t0=10.0)
    events = board.evaluate(12.0, gateway_conditions(config, meter.health(12.0)), ["gateway_failure_rate"])
    assert [(e.action, e.alarm["key"]) for e in events] == [("cleared", "gateway_failure_rate:gw")]
    assert meter.view(12.0)[0]["failure_rate"] == 15.0


def test_failure_rate_needs_the_minimum_sample_and_leaves_the_window() -> None:
    config = AlarmConfig(failure_min_calls=10)
    meter = GatewayMeter(asr_time=600, asr_segments=10)
    _attempts(meter, [503] * 9)  # 100 % but only 9 attempts
    assert [c.kind for c in gateway_conditions(config, meter.health(1.0))] == ["gateway_down"]
    _attempts(meter, [503], t0=2.0)
    kinds = [c.kind for c in gateway_conditions(config, meter.health(3.0))]
    assert "gateway_failure_rate" in kinds
    # 10 minutes later the window holds none of them
    assert meter.health(700.0)[0].failure_rate is None
    assert AlarmConfig(failure_min_calls=0) and not [
        c
        for c in gateway_conditions(AlarmConfig(failure_min_calls=0), meter.health(3.0))
        if c.kind == "gateway_failure_rate"
    ]


def test_t78_destination_watch_one_alarm_per_prefix_with_a_count() -> None:
    config = AlarmConfig(watch_prefixes=("882", "8816", ""), watch_window=300)
    watch = DestinationWatch(config)
    assert watch.prefixes == ("8816", "882")  # longest first; an empty prefix is no prefix
    common = {"account": "1001", "caller": "4420", "ingress": "cust"}
    for i in range(50):  # a fraud burst: 50 calls in 50 s
        assert (
            watch.routed(float(i), f"f{i}", ("881612345", "00881612345"), gateway="sat", **common) == "8816"
        )
        watch.call_ended(f"f{i}")
    # a failover of one call to another carrier is still one call
    watch.routed(60.0, "g1", ("88212",), gateway="a", **common)
    watch.routed(61.0, "g1", ("88212",), gateway="b", **common)
    assert watch.routed(62.0, "n1", ("12125550100",), gateway="a", **common) is None
    conditions = {c.subject: c for c in watch.conditions(100.0)}
    assert conditions.keys() == {"8816", "882"}
    burst = conditions["8816"]
    assert (burst.kind, burst.severity, burst.value) == ("destination_watch", "warning", 50)
    assert "50 call(s) to watched prefix 8816" in burst.message
    assert "account 1001, 4420 -> 881612345 / 00881612345, cust -> sat" in burst.message
    assert conditions["882"].value == 1 and "cust -> b" in conditions["882"].message
    # quiet for the window: no longer reported, so the board clears it
    board = AlarmBoard(config)
    board.evaluate(100.0, watch.conditions(100.0), ["destination_watch"])
    assert len(board.active) == 2
    events = board.evaluate(400.0, watch.conditions(400.0), ["destination_watch"])
    assert {e.action for e in events} == {"cleared"} and not board.active
    assert watch.totals == {"8816": 50, "882": 1}


def test_an_empty_watch_list_looks_nothing_up() -> None:
    watch = DestinationWatch(AlarmConfig())
    assert watch.prefixes == ()
    assert watch.routed(0.0, "c", ("881",), account="", caller="", ingress="", gateway="g") is None
    assert watch.conditions(0.0) == []


NETDEV_1 = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
    "    lo: 999999 10 0 0 0 0 0 0 999999 10 0 0 0 0 0 0\n"
    "  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
    " veth1: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
)
# 10 s later: eth0 received 100 MB (80 Mb/s of a 100 Mb/s link) and sent 10 MB (8 Mb/s); veth1
# sent 50 MB (40 Mb/s). Also the web dashboard's fixture (tests/web/test_network_dashboard.py).
NETDEV_2 = (
    NETDEV_1.replace("1000 10", str(1000 + 100_000_000) + " 10")
    .replace("2000 20", str(2000 + 10_000_000) + " 20")
    .replace("veth1: 0 0 0 0 0 0 0 0 0 0", "veth1: 0 0 0 0 0 0 0 0 50000000 0")
)


def test_behaviour_65_network_80_percent_of_capacity_is_critical(tmp_path: Path) -> None:
    assert net_bytes(NETDEV_1) == {"eth0": (1000, 2000), "veth1": (0, 0)}
    (tmp_path / "eth0").mkdir()
    (tmp_path / "eth0" / "speed").write_text("100\n")
    (tmp_path / "veth1").mkdir()
    (tmp_path / "veth1" / "speed").write_text("-1\n")  # a virtual NIC: no link speed
    assert link_speed_mbps("eth0", tmp_path) == 100.0 and link_speed_mbps("veth1", tmp_path) is None
    assert link_speed_mbps("none", tmp_path) is None
    speed = lambda name: link_speed_mbps(name, tmp_path)  # noqa: E731
    meter = NetworkMeter(0.0, speed)
    assert meter.update(NETDEV_1, 0.0) == {}
    found = meter.update(NETDEV_2, 10.0)
    assert found["eth0"].rx_bps == 80e6 and found["eth0"].percent == 80.0
    assert found["veth1"].percent is None  # no speed, no configured capacity: no band
    configured = NetworkMeter(100.0, speed)
    configured.update(NETDEV_1, 0.0)
    assert configured.update(NETDEV_2, 10.0)["veth1"].percent == 40.0
    config = AlarmConfig()
    bands = {
        c.subject: (c.state, c.severity)
        for c in system_conditions(config, SystemSample(network={"eth0": 80.0, "veth1": 60.0, "x": 30.0}))
    }
    # the band table of §7.9: 0-50 normal, 50-75 warning, > 75 critical
    assert bands == {"eth0": ("bad", "critical"), "veth1": ("bad", "warning"), "x": ("good", "warning")}


def test_the_sampler_reads_proc_net_dev_and_sys_class_net(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "dev").write_text(NETDEV_1)
    sys_net = tmp_path / "sys"
    (sys_net / "eth0").mkdir(parents=True)
    (sys_net / "eth0" / "speed").write_text("100")
    sampler = SystemSampler(disk_paths=(), proc=tmp_path, sys_net=sys_net, network_capacity_mbps=1000)
    assert sampler.sample(0.0).network == {}
    (tmp_path / "net" / "dev").write_text(NETDEV_2)
    assert sampler.sample(10.0).network == {"eth0": 80.0, "veth1": 4.0}
    assert sampler.throughput["eth0"].capacity_mbps == 100.0


def test_max_calls_is_checked_in_the_file() -> None:
    assert load({"sip": {"max_calls": 2}}).sip_max_calls == 2
    assert load({}).sip_max_calls is None
    for bad in (0, -1, "10", True):
        try:
            load({"sip": {"max_calls": bad}})
        except ValueError as exc:
            assert "sip.max_calls" in str(exc)
        else:
            raise AssertionError(f"max_calls = {bad!r} was accepted")


def test_capacity_condition_is_bad_on_refusals_and_good_below_the_limit() -> None:
    assert capacity_conditions(None, 5, 3) == []
    [c] = capacity_conditions(2, 2, 1)
    assert (c.kind, c.state, c.severity) == ("capacity_limit", "bad", "critical")
    assert capacity_conditions(2, 2, 0)[0].state == "between"  # full, nobody refused yet
    assert capacity_conditions(2, 1, 0)[0].state == "good"


def test_behaviour_66_capacity_limit_refuses_with_503_retry_after_and_raises_the_alarm() -> None:
    async def main() -> None:
        sections = {"sip": {"max_calls": 1}}
        async with node_with(sections=sections) as h:
            config = AlarmConfig(interval=60, clear_after=0, watch_prefixes=("1212",))
            observer = Observer(h.node, config, sampler=QuietSampler())  # rounds run by hand
            answering = start(carrier(h, "uas_answer.xml", trace=False))
            await peers_listening()
            first = start(customer(h, "uac_basic.xml", trace=False))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not h.node.calls and loop.time() < deadline:
                await asyncio.sleep(0.05)
            second = await customer(h, "uac_expect_failure.xml", 1, fill={"CODE": "503"})
            [refusal] = second.received(503)
            assert ("Retry-After", "30") in refusal.headers, refusal.headers
            observer.run_round()
            alarm = observer.board.active["capacity_limit:node"]
            assert (
                alarm.severity == "critical"
                and "1 of 1 concurrent calls, 1 new call(s) refused" in alarm.message
            )
            # T78's destination watch saw the first call, routed to 12125550100
            watched = observer.board.active["destination_watch:1212"]
            assert (
                "1 call(s) to watched prefix 1212" in watched.message
                and "customer -> carrier-0" in watched.message
            )
            ok(second_caller=second, first_caller=await first, carrier=await answering)
            records = await ended_records(h, 2)
            refused = [r for r in records if r.final_status == 503]
            assert (
                len(refused) == 1
                and refused[0].attempts == 0
                and refused[0].termination == "node capacity limit"
            )
            deadline = loop.time() + 5
            while h.node.admission.active("node") and loop.time() < deadline:
                await asyncio.sleep(0.05)
            observer.run_round()  # below the limit, no refusal since: cleared
            assert "capacity_limit:node" not in observer.board.active
            assert ("cleared", "capacity_limit:node") in history(observer)

    run(main())
