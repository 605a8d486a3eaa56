"""The node's configuration file: every bad key or value is refused with a message naming it."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from signaling import params
from signaling.config import ConfigError, load, load_file
from signaling.routing import NO_MATCHING_RATE, UNKNOWN_GATEWAY, InboundCall, StaticRouter

GOOD = """
[sip]
listen = "127.0.0.1:5070"

[media]
engine = "ng"
ng = "127.0.0.1:2223"

[parameters]
SS_SIP_TIMEOUT_INVITE = 5
SS_SIP_RESEND_INTERVAL = "0.5,1,2"
SS_MEDIAPROXYMODE = 2

[[mapping_gateway]]
name = "cust"
addresses = ["127.0.0.1", "10.0.0.1:5062"]
prefixes = ["1", "44"]
max_calls = 10

[[routing_gateway]]
name = "carrier-b"
address = "127.0.0.1:5081"
prefixes = ["1"]
priority = 2

[[routing_gateway]]
name = "carrier-a"
address = "127.0.0.1"
prefixes = ["1"]
priority = 1
strip = 1
add = "00"
stop_switch_codes = [486]

[[routing_gateway]]
name = "carrier-uk"
address = "[::1]:5090"
prefixes = ["4420"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_good_file_loads_with_defaults_and_checked_values(tmp_path: Path) -> None:
    cfg = load_file(write(tmp_path, GOOD))
    assert cfg.sip_listen == ("127.0.0.1", 5070)
    assert cfg.media_engine == "ng" and cfg.media_ng == ("127.0.0.1", 2223)
    assert cfg.parameters["SS_SIP_TIMEOUT_INVITE"] == 5
    assert cfg.parameters["SS_SIP_RESEND_INTERVAL"] == (0.5, 1.0, 2.0)
    assert cfg.parameters["SS_MEDIAPROXYMODE"] == "auto"  # VOS3000's numeric mode 2
    assert cfg.parameters["SS_SIP_TIMEOUT_RINGING"] == 120  # default
    assert cfg.mapping_gateways[0].addresses == [("127.0.0.1", None), ("10.0.0.1", 5062)]
    assert cfg.routing_gateways[1].address == ("127.0.0.1", 5060)
    assert cfg.routing_gateways[2].address == ("::1", 5090)
    assert cfg.routing_gateways[1].stop_switch_codes == frozenset({486})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[sip]", "[sipp]"), "sipp: unknown key (did you mean 'sip'?)"),
        (('listen = "127.0.0.1:5070"', 'listen = "127.0.0.1:99999"'), "sip.listen: '127.0.0.1:99999'"),
        (("SS_SIP_TIMEOUT_INVITE = 5", "SS_SIP_TIMEOUT_INVIT = 5"), "did you mean SS_SIP_TIMEOUT_INVITE?"),
        (("SS_SIP_TIMEOUT_INVITE = 5", "SS_SIP_TIMEOUT_INVITE = 0"), "parameters.SS_SIP_TIMEOUT_INVITE: 0"),
        (('SS_SIP_RESEND_INTERVAL = "0.5,1,2"', 'SS_SIP_RESEND_INTERVAL = "x"'), "SS_SIP_RESEND_INTERVAL"),
        (("priority = 2", 'priority = "high"'), "routing_gateway[0].priority: expected an integer"),
        (("stop_switch_codes = [486]", "stop_switch_codes = [200]"), "routing_gateway[1].stop_switch_codes"),
        (('prefixes = ["1", "44"]', 'prefixes = ["1x"]'), "mapping_gateway[0].prefixes: '1x'"),
        (('name = "carrier-a"', 'name = "carrier-b"'), "routing_gateway[1].name: 'carrier-b' is used twice"),
        (('engine = "ng"\nng = "127.0.0.1:2223"', 'engine = "ng"'), "media.ng: required"),
        (("max_calls = 10", "max_calls = 10\nmax_call = 3"), "mapping_gateway[0].max_call: unknown key"),
        (("[parameters]", "[parameters\n"), "node.toml"),
        (("priority = 2", 'priority = 2\npai = "always"'), "routing_gateway[0].pai: expected one of"),
        (("priority = 2", "priority = 2\nextra_headers = 3"), "routing_gateway[0].extra_headers"),
        (("max_calls = 10", 'max_calls = 10\ncaller_source = "to"'), "mapping_gateway[0].caller_source"),
    ],
)
def test_bad_keys_and_values_are_named(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        load_file(write(tmp_path, GOOD.replace(old, new, 1)))
    assert message in str(info.value)


def test_overload_section_sets_the_guards_marks(tmp_path: Path) -> None:
    cfg = load_file(write(tmp_path, GOOD))
    assert cfg.overload.cpu_high == 0.90 and cfg.overload.rate_high is None  # the defaults
    extra = "\n[overload]\ncpu_high = 0.95\ncpu_low = 0.8\nretry_after = 10\n"
    extra += "rate_high = 9000\nrate_low = 7000\n"
    cfg = load_file(write(tmp_path, GOOD + extra))
    assert (cfg.overload.cpu_high, cfg.overload.cpu_low, cfg.overload.retry_after) == (0.95, 0.8, 10)
    assert (cfg.overload.rate_high, cfg.overload.rate_low) == (9000.0, 7000.0)
    assert cfg.overload.queue_high == 2000  # what the section leaves out keeps its default


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("cpu_hig = 0.95", "overload.cpu_hig: unknown key (did you mean 'cpu_high'?)"),
        ('cpu_high = "high"', "overload.cpu_high: expected a number"),
        ("retry_after = 2.5", "overload.retry_after: expected a whole number"),
        ("cpu_high = 0", "overload: cpu_high must be more than 0"),
        ("queue_high = 0", "overload: queue_high must be more than 0"),
        ("rate_high = 0\nrate_low = 0", "overload: rate_high must be more than 0"),
        ("cpu_high = 0.6", "overload: cpu_low (0.7) must not exceed cpu_high (0.6)"),
        ("queue_high = 20000", "overload: queue_low (500) <= queue_high (20000) <= drop_queue (10000)"),
        ("rate_high = 9000", "overload: rate_high and rate_low are set together"),
        ("cpu_target = 1.5", "overload: cpu_target must be within 0-1"),
    ],
)
def test_bad_overload_values_are_named(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_file(write(tmp_path, GOOD + f"\n[overload]\n{section}\n"))
    assert message in str(info.value)


STORE = '\n[store]\nurl = "sqlite:///var/softswitch.db"\n'


def test_backup_section_schedules_the_stores_archives(tmp_path: Path) -> None:
    base = GOOD.split("[[mapping_gateway]]", maxsplit=1)[0] + STORE  # the gateways come from the store
    cfg = load_file(write(tmp_path, base + '[backup]\ndirectory = "/var/backups"\n'))
    assert cfg.backup is not None
    assert (cfg.backup.directory, cfg.backup.at, cfg.backup.every_minutes, cfg.backup.keep) == (
        "/var/backups",
        time(3, 0),
        None,
        7,
    )
    cfg = load_file(write(tmp_path, base + '[backup]\ndirectory = "b"\nat = "23:45"\nkeep = 2\n'))
    assert cfg.backup is not None and (cfg.backup.at, cfg.backup.keep) == (time(23, 45), 2)
    cfg = load_file(write(tmp_path, base + '[backup]\ndirectory = "b"\nevery_minutes = 90\n'))
    assert cfg.backup is not None and cfg.backup.every_minutes == 90.0
    assert load_file(write(tmp_path, base)).backup is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('at = "03:00"', "backup.directory: required"),
        ('directory = "b"\nat = "25:00"', "backup.at: '25:00' is not a time of day HH:MM"),
        ('directory = "b"\nat = "3pm"', "backup.at: '3pm' is not a time of day"),
        ('directory = "b"\nevery_minutes = 0', "backup.every_minutes: expected a number of minutes > 0"),
        ('directory = "b"\nat = "03:00"\nevery_minutes = 60', "give either at (daily) or every_minutes"),
        ('directory = "b"\nkeep = 0', "backup.keep: expected a whole number of archives >= 1"),
        ('directory = "b"\nkeeps = 3', "backup.keeps: unknown key (did you mean 'keep'?)"),
    ],
)
def test_bad_backup_values_are_named(tmp_path: Path, section: str, message: str) -> None:
    base = GOOD.split("[[mapping_gateway]]", maxsplit=1)[0] + STORE
    with pytest.raises(ConfigError) as info:
        load_file(write(tmp_path, base + f"[backup]\n{section}\n"))
    assert message in str(info.value)


def test_a_backup_without_a_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"backup: a scheduled backup is of the store: set \[store\] url"):
        load_file(write(tmp_path, GOOD + '\n[backup]\ndirectory = "b"\n'))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_file(tmp_path / "absent.toml")


def test_parameter_defaults_match_the_reference() -> None:
    p = params.resolve({})
    assert p["SS_SIP_RESEND_INTERVAL"] == (0.5, 1, 2, 4, 4, 4, 4, 4, 4, 4)
    assert sum(p["SS_SIP_RESEND_INTERVAL"]) == 31.5
    assert p["SS_SIP_SESSION_TTL"] == 600 and p["SS_SIP_SESSION_UPDATE_SEGMENT"] == 2
    assert p["SS_SIP_NAT_KEEP_ALIVE_MESSAGE"] == "HELLO"
    assert p["SS_GATEWAY_SWITCH_LIMIT"] is None


def test_static_router_orders_by_longest_prefix_then_priority(tmp_path: Path) -> None:
    router = StaticRouter(load_file(write(tmp_path, GOOD)))
    adm = router.admit(InboundCall("c1", ("127.0.0.1", 5999), "udp", "1001", "12125550100"), 0.0)
    assert adm.rejection is None and adm.ingress == "cust"
    assert [r.gateway for r in adm.routes] == ["carrier-a", "carrier-b"]
    assert adm.routes[0].callee == "002125550100"  # strip 1, add 00
    assert adm.routes[1].callee == "12125550100"
    assert adm.routes[0].stop_switch_codes == frozenset({486})
    assert adm.media_proxy == ""  # no setting of the gateway's: the call follows SS_MEDIAPROXYMODE (auto)
    assert router.config.parameters["SS_MEDIAPROXYMODE"] == "auto"

    uk = router.admit(InboundCall("c2", ("127.0.0.1", 5999), "udp", "1001", "442071234567"), 0.0)
    assert [r.gateway for r in uk.routes] == ["carrier-uk"]

    none = router.admit(InboundCall("c3", ("127.0.0.1", 5999), "udp", "1001", "4411"), 0.0)
    assert none.rejection is not None and none.rejection.termination == NO_MATCHING_RATE

    stranger = router.admit(InboundCall("c4", ("10.9.9.9", 5060), "udp", "1001", "1212"), 0.0)
    assert stranger.rejection is not None and stranger.rejection.termination == UNKNOWN_GATEWAY
    wrong_port = router.admit(InboundCall("c5", ("10.0.0.1", 5060), "udp", "1001", "1212"), 0.0)
    assert wrong_port.rejection is not None
    right_port = router.admit(InboundCall("c6", ("10.0.0.1", 5062), "udp", "1001", "1212"), 0.0)
    assert right_port.rejection is None


def test_switch_limit_caps_the_routes(tmp_path: Path) -> None:
    cfg = load(
        {
            "parameters": {"SS_GATEWAY_SWITCH_LIMIT": 1},
            "mapping_gateway": [{"name": "c", "addresses": ["127.0.0.1"]}],
            "routing_gateway": [
                {"name": "a", "address": "127.0.0.1:5080"},
                {"name": "b", "address": "127.0.0.1:5081"},
            ],
        }
    )
    adm = StaticRouter(cfg).admit(InboundCall("c", ("127.0.0.1", 1), "udp", "1", "2"), 0.0)
    assert [r.gateway for r in adm.routes] == ["a"]
