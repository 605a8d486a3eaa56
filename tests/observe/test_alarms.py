"""The alarm evaluator on an injected clock: each alarm of the reference's list raised, kept and
cleared with its hysteresis, the history, and the plain-data snapshot the API shows."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from signaling.observe.alarms import (
    AlarmBoard,
    AlarmConfig,
    AlarmEvent,
    GatewayHealth,
    LongCall,
    SystemSample,
    balance_conditions,
    cdr_conditions,
    duration_conditions,
    gateway_conditions,
    scanner_conditions,
    system_conditions,
    table_conditions,
)
from signaling.sip.defence import Defence, DefenceConfig

CFG = AlarmConfig()


def actions(events: list[AlarmEvent]) -> list[tuple[str, str]]:
    return [(e.action, e.alarm["key"]) for e in events]


def gateways(board: AlarmBoard, now: float, *health: GatewayHealth) -> list[tuple[str, str]]:
    return actions(board.evaluate(now, gateway_conditions(board.config, health), ["gateway_down", "asr_low"]))


def test_gateway_down_after_attempts_without_any_response_and_up_at_the_first_response() -> None:
    board = AlarmBoard(AlarmConfig(gateway_no_answer=3))
    assert gateways(board, 0, GatewayHealth("gw", 2, None, no_response=2)) == []
    assert gateways(board, 5, GatewayHealth("gw", 3, None, no_response=3)) == [("raised", "gateway_down:gw")]
    assert board.active["gateway_down:gw"].severity == "major"
    assert "3 attempts in a row without a response" in board.active["gateway_down:gw"].message
    assert gateways(board, 10, GatewayHealth("gw", 4, None, no_response=4)) == []  # kept, not raised again
    assert gateways(board, 15, GatewayHealth("gw", 5, None, no_response=0)) == [
        ("cleared", "gateway_down:gw")
    ]


def test_gateway_down_when_options_probes_fail() -> None:
    board = AlarmBoard(AlarmConfig(gateway_options_failures=3))
    health = GatewayHealth("gw", 0, None, 0, options_failures=2)
    assert gateways(board, 0, health) == []
    assert gateways(board, 30, GatewayHealth("gw", 0, None, 0, 3)) == [("raised", "gateway_down:gw")]
    assert "OPTIONS" in board.active["gateway_down:gw"].message
    assert gateways(board, 60, GatewayHealth("gw", 0, None, 0, 0)) == [("cleared", "gateway_down:gw")]


def test_gateway_down_when_nothing_is_answered_over_the_window() -> None:
    board = AlarmBoard(AlarmConfig(asr_min_calls=10))
    assert gateways(board, 0, GatewayHealth("gw", 9, 0.0, 0)) == []  # too few attempts to judge
    assert gateways(board, 5, GatewayHealth("gw", 10, 0.0, 0)) == [
        ("raised", "gateway_down:gw"),
        ("raised", "asr_low:gw"),
    ]
    assert "ASR 0" in board.active["gateway_down:gw"].message


def test_asr_drop_with_hysteresis_and_a_delayed_clear() -> None:
    """T78/§7.3: ASR below 20 % raises "Low ASR" (warning); it clears at 25 % held 30 s."""
    board = AlarmBoard(AlarmConfig(asr_low=20, asr_clear=25, clear_after=30, asr_min_calls=10))
    assert gateways(board, 0, GatewayHealth("gw", 100, 15.0, 0)) == [("raised", "asr_low:gw")]
    assert board.active["asr_low:gw"].severity == "warning" and board.active["asr_low:gw"].value == 15.0
    assert gateways(board, 10, GatewayHealth("gw", 100, 22.0, 0)) == []  # between: kept
    assert gateways(board, 20, GatewayHealth("gw", 100, 26.0, 0)) == []  # good, not for long yet
    assert gateways(board, 35, GatewayHealth("gw", 100, 19.0, 0)) == []  # bad again: timer reset
    assert gateways(board, 40, GatewayHealth("gw", 100, 30.0, 0)) == []
    assert gateways(board, 69, GatewayHealth("gw", 100, 30.0, 0)) == []
    assert gateways(board, 70, GatewayHealth("gw", 100, 30.0, 0)) == [("cleared", "asr_low:gw")]


def test_asr_of_fewer_attempts_than_the_minimum_raises_nothing() -> None:
    board = AlarmBoard(AlarmConfig(asr_min_calls=10))
    assert gateways(board, 0, GatewayHealth("gw", 9, 10.0, 0)) == []


def test_balance_low_per_account_with_money_as_decimal() -> None:
    config = AlarmConfig(balance_low=Decimal("10.00"))
    board = AlarmBoard(config)
    funds = {"1001": Decimal("9.99"), "1002": Decimal("10.00")}
    events = board.evaluate(0, balance_conditions(config, funds), ["balance_low"])
    assert actions(events) == [("raised", "balance_low:1001")]
    assert board.active["balance_low:1001"].value == "9.99"  # exact, as text
    funds["1001"] = Decimal("50")
    events = board.evaluate(60, balance_conditions(config, funds), ["balance_low"])
    assert actions(events) == [("cleared", "balance_low:1001")]
    assert balance_conditions(AlarmConfig(balance_low=None), funds) == []
    with pytest.raises(TypeError, match="money"):
        AlarmConfig(balance_low=10.0)  # type: ignore[arg-type]


def test_inputs_not_read_this_round_keep_their_alarms() -> None:
    config = AlarmConfig(balance_low=Decimal(10))
    board = AlarmBoard(config)
    board.evaluate(0, balance_conditions(config, {"1001": Decimal(1)}), ["balance_low"])
    # a round that did not read the funds (they are read once a minute) leaves it alone
    assert board.evaluate(5, [], ["gateway_down", "cpu_high"]) == []
    assert "balance_low:1001" in board.active
    # a round that read them and found no such account any more clears it
    assert actions(board.evaluate(60, [], ["balance_low"])) == [("cleared", "balance_low:1001")]


def test_cdr_backlog() -> None:
    board = AlarmBoard(AlarmConfig(cdr_backlog=5))
    assert board.evaluate(0, cdr_conditions(board.config, 4), ["cdr_backlog"]) == []
    events = board.evaluate(5, cdr_conditions(board.config, 5, oldest_age=12.0), ["cdr_backlog"])
    assert actions(events) == [("raised", "cdr_backlog:cdr")]
    assert "5 CDRs waiting" in events[0].alarm["message"] and "12 s old" in events[0].alarm["message"]
    assert board.evaluate(10, cdr_conditions(board.config, 2), ["cdr_backlog"]) == []  # between
    assert actions(board.evaluate(15, cdr_conditions(board.config, 0), ["cdr_backlog"])) == [
        ("cleared", "cdr_backlog:cdr")
    ]


def test_f5_50_duration_too_long_unless_the_account_suppresses_it() -> None:
    config = AlarmConfig(duration_too_long=3600)
    board = AlarmBoard(config)
    calls = [
        LongCall("c-short", 3599, "1001", "880171", "cust", "carrier"),
        LongCall("c-long", 3600, "1001", "880172", "cust", "carrier"),
        LongCall("c-quiet", 9000, "1002", "880173", "night", "carrier", suppressed=True),
    ]
    events = board.evaluate(0, duration_conditions(config, calls), ["duration_too_long"])
    assert actions(events) == [("raised", "duration_too_long:c-long")]
    assert "1001 -> 880172" in events[0].alarm["message"]
    # the call ended: no longer reported, cleared at once
    events = board.evaluate(10, duration_conditions(config, calls[:1]), ["duration_too_long"])
    assert actions(events) == [("cleared", "duration_too_long:c-long")]
    assert duration_conditions(AlarmConfig(duration_too_long=0), calls) == []


def system(board: AlarmBoard, now: float, **sample: object) -> list[tuple[str, str]]:
    conditions = system_conditions(board.config, SystemSample(**sample))  # type: ignore[arg-type]
    return actions(board.evaluate(now, conditions, ["cpu_high", "memory_high", "disk_full", "disk_io_high"]))


def test_f1_12_cpu_above_70_percent_raises_only_when_sustained() -> None:
    board = AlarmBoard(AlarmConfig(cpu_high=70, cpu_clear=60, cpu_sustain=60, clear_after=30))
    assert system(board, 0, cpu=75.0) == []
    assert system(board, 30, cpu=95.0) == []
    assert system(board, 45, cpu=65.0) == []  # a dip under the threshold restarts the wait
    assert system(board, 50, cpu=71.0) == []
    assert system(board, 109, cpu=71.0) == []
    assert system(board, 110, cpu=71.0) == [("raised", "cpu_high:cpu")]
    assert board.active["cpu_high:cpu"].severity == "critical"
    assert system(board, 120, cpu=65.0) == []  # between the marks: kept
    assert system(board, 130, cpu=50.0) == []
    assert system(board, 160, cpu=50.0) == [("cleared", "cpu_high:cpu")]


def test_full_disk_escalates_from_warning_to_critical() -> None:
    """§7.9 bands / T65: disk 92 % is critical; the alarm stays one alarm, its severity changes."""
    board = AlarmBoard(AlarmConfig(disk_high=85, disk_critical=90, disk_clear=80))
    assert system(board, 0, disks={"/": 86.0}) == [("raised", "disk_full:/")]
    assert board.active["disk_full:/"].severity == "warning"
    assert system(board, 10, disks={"/": 92.0}) == [("changed", "disk_full:/")]
    assert board.active["disk_full:/"].severity == "critical"
    assert board.history[-1].alarm["severity"] == "critical"


def test_memory_disk_and_disk_io() -> None:
    board = AlarmBoard(AlarmConfig(clear_after=0, disk_io_sustain=0))
    raised = system(board, 0, memory=90.0, disks={"/": 87.0, "/var": 50.0}, disk_io={"sda": 85.0})
    assert raised == [
        ("raised", "memory_high:memory"),
        ("raised", "disk_full:/"),
        ("raised", "disk_io_high:sda"),
    ]
    assert board.active["disk_full:/"].severity == "warning"
    cleared = system(board, 5, memory=10.0, disks={"/": 10.0, "/var": 50.0}, disk_io={"sda": 1.0})
    assert sorted(cleared) == sorted(("cleared", key) for _, key in raised)


def test_f1_11_full_conntrack_table_and_defence_table() -> None:
    board = AlarmBoard(AlarmConfig(table_high=90))
    events = board.evaluate(
        0, system_conditions(board.config, SystemSample(conntrack=(1_048_576, 1_048_576))), ["x"]
    )
    assert actions(events) == [("raised", "flow_table_full:conntrack")]
    events = board.evaluate(0, table_conditions(board.config, "defence", 899, 1000), ["flow_table_full"])
    assert actions(events) == [("cleared", "flow_table_full:conntrack")]  # gone: not reported this round
    assert table_conditions(board.config, "defence", 900, 1000)[0].state == "bad"


def test_f1_12_scanner_alarm_names_the_ip_and_clears_after_a_quiet_minute() -> None:
    defence = Defence(DefenceConfig(trust_loopback=False, block_scanners=False))
    board = AlarmBoard()
    options = b"OPTIONS sip:100@198.51.100.1 SIP/2.0\r\n\r\n"
    for i in range(60):
        defence.inspect(options, ("192.0.2.66", 5060), i * 0.5)
    events = board.evaluate(30.0, scanner_conditions(defence.sightings(30.0)), ["scanner"])
    assert actions(events) == [("raised", "scanner:192.0.2.66")]
    assert "192.0.2.66" in events[0].alarm["message"] and "OPTIONS per minute" in events[0].alarm["message"]
    assert board.evaluate(60.0, scanner_conditions(defence.sightings(60.0)), ["scanner"]) == []  # kept
    events = board.evaluate(91.0, scanner_conditions(defence.sightings(91.0)), ["scanner"])
    assert actions(events) == [("cleared", "scanner:192.0.2.66")]


def test_snapshot_is_plain_data_most_severe_first_with_a_bounded_history() -> None:
    board = AlarmBoard(AlarmConfig(history=3))
    config = board.config
    board.evaluate(1.0, cdr_conditions(config, 3), ["cdr_backlog"])
    board.evaluate(2.0, gateway_conditions(config, [GatewayHealth("gw", 0, None, 9)]), ["gateway_down"])
    board.evaluate(3.0, system_conditions(config, SystemSample(memory=99.0)), ["memory_high"])
    snap = board.snapshot()
    json.dumps(snap)
    assert [a["kind"] for a in snap["active"]] == ["memory_high", "cdr_backlog", "gateway_down"]
    assert [e["action"] for e in snap["history"]] == ["raised", "raised", "raised"]
    assert snap["history"][0]["kind"] == "memory_high"  # newest first
    board.evaluate(4.0, cdr_conditions(config, 0), ["cdr_backlog"])
    assert len(board.snapshot()["history"]) == 3  # bounded
    assert board.snapshot()["history"][0] == {**board.history[-1].alarm, "action": "cleared", "at": 4.0}
    assert board.raised_total["memory_high"] == 1


def test_hysteresis_marks_must_not_cross() -> None:
    with pytest.raises(ValueError, match="cpu_high must not be below cpu_clear"):
        AlarmConfig(cpu_high=50, cpu_clear=60)
