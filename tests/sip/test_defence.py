"""The scanner defence, sans-IO, one test per testable behaviour of the reference (part 2 §F.1 and
§F.7, ids in the names) on an injected clock."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from signaling.sip.defence import Defence, DefenceConfig, DropReason

UNTRUSTED = ("192.0.2.9", 5060)
#: rules not under test are switched off so each test sees one rule at work
ONLY = DefenceConfig(
    trust_loopback=False,
    drop_options=False,
    recent_hitcount=0,
    hashlimit=0,
    connlimit_above=0,
    connlimit_subnet_above=0,
    block_after_drops=0,
)


def request(method: str = "INVITE", ua: str = "Linphone/5.2", body: str = "") -> bytes:
    return (
        f"{method} sip:100@198.51.100.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\n"
        "From: <sip:probe@192.0.2.9>;tag=1\r\nTo: <sip:100@198.51.100.1>\r\n"
        f"Call-ID: c1\r\nCSeq: 1 {method}\r\nUser-Agent: {ua}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


OPTIONS = b"OPTIONS sip:100@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9\r\n\r\n"


def test_f1_1_untrusted_options_is_dropped_and_counted() -> None:
    d = Defence(DefenceConfig(trust_loopback=False))
    assert d.inspect(OPTIONS, UNTRUSTED, 0.0) == DropReason.OPTIONS
    assert d.drops[DropReason.OPTIONS] == 1
    assert d.inspect(request("REGISTER"), UNTRUSTED, 0.1) is None  # only OPTIONS


def test_f1_2_whitelisted_ip_and_range_pass_options() -> None:
    d = Defence(DefenceConfig(trusted_sip_ips=("203.0.113.10", "198.51.100.0/24")))
    for ip in ("203.0.113.10", "198.51.100.77"):
        assert d.inspect(OPTIONS, (ip, 5060), 0.0) is None
    assert d.inspected == 0  # trusted messages are not even looked at
    assert d.inspect(OPTIONS, ("203.0.113.11", 5060), 0.0) == DropReason.OPTIONS


@pytest.mark.parametrize(
    "ua", ["friendly-scanner", "VaxSIPUserAgent", "sipvicious", "SIPScan", "sipcli", "SIPVicious 0.3.4"]
)
@pytest.mark.parametrize("method", ["INVITE", "REGISTER"])
def test_f1_3_scanner_user_agents_are_dropped_and_blocked(method: str, ua: str) -> None:
    d = Defence(replace(ONLY, block_seconds=600))
    assert d.inspect(request(method, ua=ua), UNTRUSTED, 0.0) == DropReason.SCANNER_USER_AGENT
    assert sum(d.signature_drops.values()) == 1
    # the source is now blocked for block_seconds, whatever it sends
    assert d.inspect(request("REGISTER"), UNTRUSTED, 1.0) == DropReason.BLACKLIST
    assert d.inspect(request("REGISTER"), UNTRUSTED, 601.0) is None


def test_f1_3_signatures_are_configurable() -> None:
    d = Defence(replace(ONLY, scanner_user_agents=("evil-dialer",)))
    assert d.inspect(request(ua="friendly-scanner"), UNTRUSTED, 0.0) is None
    assert d.inspect(request(ua="Evil-Dialer/2"), UNTRUSTED, 0.0) == DropReason.SCANNER_USER_AGENT


def test_f1_4_ordinary_untrusted_register_passes() -> None:
    d = Defence()
    assert d.inspect(request("REGISTER", ua="Yealink SIP-T46S"), ("192.0.2.10", 5062), 0.0) is None
    assert d.accepted_untrusted == 1


def test_f1_5_recent_window_drops_from_the_hitcount_on_until_the_source_pauses() -> None:
    d = Defence(replace(ONLY, recent_hitcount=20, recent_seconds=60))
    verdicts = [d.inspect(request(), UNTRUSTED, i * 2.0) for i in range(25)]  # 25 in 50 s
    assert verdicts[:19] == [None] * 19
    assert verdicts[19:] == [DropReason.RECENT] * 6
    # every packet counts, dropped ones too: still over the limit 10 s later
    assert d.inspect(request(), UNTRUSTED, 58.0) == DropReason.RECENT
    # 60 s of silence: accepted again
    assert d.inspect(request(), UNTRUSTED, 118.5) is None


def test_f1_6_whitelisted_source_is_never_rate_limited() -> None:
    d = Defence(DefenceConfig(trusted_sip_ips=("203.0.113.10",), trust_loopback=False))
    assert all(d.inspect(request(), ("203.0.113.10", 5060), i * 0.6) is None for i in range(100))
    # and a configured customer gateway at 100 calls per second is trusted the same way
    d.set_gateway_addresses({"198.51.100.20"})
    assert all(d.inspect(request(), ("198.51.100.20", 5060 + i % 7), i * 0.002) is None for i in range(3000))


def test_f1_7_hashlimit_lets_the_burst_and_the_rate_through_and_forgets_idle_sources() -> None:
    cfg = replace(ONLY, hashlimit=10, hashlimit_burst=20, hashlimit_htable_expire=30_000)
    d = Defence(cfg)
    accepted = sum(d.inspect(request(), UNTRUSTED, i / 15) is None for i in range(150))  # 15/s for 10 s
    assert 20 + 10 * 9 <= accepted <= 20 + 10 * 10 + 1
    assert d.drops[DropReason.HASHLIMIT] == 150 - accepted
    slow = ("192.0.2.50", 5060)
    assert all(d.inspect(request(), slow, i / 10) is None for i in range(100))  # 10/s: nothing dropped
    table = {s["ip"]: s["hashlimit"] for s in d.sources(10.0)}
    assert table.keys() == {UNTRUSTED[0], slow[0]} and all(v is not None for v in table.values())
    # the hashlimit entries go 30 s after the last packet (F.7-76), the sources once every
    # window (detection: one minute) has passed
    assert [s["hashlimit"] for s in d.sources(10.0 + 30.5)] == [None, None]
    assert list(d.sources(10.0 + 60.5)) == []


def test_f1_8_connlimit_per_source_ip() -> None:
    d = Defence(replace(ONLY, connlimit_above=5))
    verdicts = [d.inspect(request(), ("192.0.2.9", 6000 + port), 0.0) for port in range(7)]
    assert verdicts == [None] * 5 + [DropReason.CONNLIMIT_IP] * 2
    assert d.inspect(request(), ("192.0.2.9", 6000), 1.0) is None  # a known flow still passes
    assert next(d.sources(1.0))["flows"] == 5
    ten = Defence(replace(ONLY, connlimit_above=10))
    verdicts = [ten.inspect(request(), ("192.0.2.9", 6000 + port), 0.0) for port in range(11)]
    assert verdicts[10] == DropReason.CONNLIMIT_IP and verdicts[:10] == [None] * 10
    # flows end with the UDP conntrack timeout: the port is free again 30 s later
    assert d.inspect(request(), ("192.0.2.9", 7000), 31.5) is None


def test_f1_9_connlimit_per_slash_24() -> None:
    d = Defence(replace(ONLY, connlimit_subnet_above=30))
    verdicts = [d.inspect(request(), (f"192.0.2.{i}", 5060), 0.0) for i in range(1, 32)]
    assert verdicts[:30] == [None] * 30 and verdicts[30] == DropReason.CONNLIMIT_SUBNET
    assert d.inspect(request(), ("192.0.3.1", 5060), 0.0) is None  # another /24


def test_f1_12_scanner_detection_names_the_ip() -> None:
    d = Defence(DefenceConfig(trust_loopback=False, block_scanners=False))
    for i in range(50):  # 50 OPTIONS within a minute: all dropped, all counted for detection
        d.inspect(OPTIONS, ("192.0.2.66", 5060), i * 1.1)
    [sighting] = d.sightings(55.0)
    assert sighting.ip == "192.0.2.66" and sighting.options_per_minute >= 50
    assert "OPTIONS" in sighting.reason
    flood = Defence(replace(ONLY, trust_loopback=False))
    for i in range(100):  # 100 packets in one second
        flood.inspect(request(), ("192.0.2.77", 5060), 10 + i / 101)
    [burst] = flood.sightings(11.0)
    assert burst.ip == "192.0.2.77" and burst.packets_per_second >= 100
    assert flood.sightings(11.0 + 61) == []  # quiet for a minute: no longer a sighting
    # 49 per minute, 99 per second: nothing
    calm = Defence(DefenceConfig(trust_loopback=False))
    for i in range(49):
        calm.inspect(OPTIONS, ("192.0.2.88", 5060), i * 1.2)
    assert calm.sightings(60.0) == []


def test_junk_from_untrusted_sources_is_dropped_but_keepalives_are_not_junk() -> None:
    d = Defence(ONLY)
    assert d.inspect(b"\x00\x01garbage", UNTRUSTED, 0.0) == DropReason.NOT_SIP
    assert d.inspect(b"GET / HTTP/1.1\r\n\r\n", UNTRUSTED, 0.0) == DropReason.NOT_SIP
    assert d.inspect(b"\r\n\r\n", UNTRUSTED, 0.0) is None
    assert d.inspect(b"SIP/2.0 200 OK\r\n\r\n", UNTRUSTED, 0.0) is None


def test_loopback_is_trusted_unless_switched_off() -> None:
    assert Defence().inspect(OPTIONS, ("127.0.0.2", 5060), 0.0) is None
    assert (
        Defence(DefenceConfig(trust_loopback=False)).inspect(OPTIONS, ("127.0.0.2", 5060), 0.0) == "options"
    )


def test_gateway_addresses_are_trusted_only_with_trust_gateways() -> None:
    d = Defence(DefenceConfig(trust_gateways=False))
    d.set_gateway_addresses({"192.0.2.9"})
    assert d.inspect(OPTIONS, UNTRUSTED, 0.0) == DropReason.OPTIONS
    d.reconfigure(DefenceConfig())
    assert d.inspect(OPTIONS, UNTRUSTED, 0.0) is None


def test_authenticated_sources_pass_for_a_while_and_failures_earn_a_block() -> None:
    d = Defence(DefenceConfig(recent_hitcount=20, authenticated_seconds=100, auth_failures=3))
    phone = ("192.0.2.30", 40000)
    assert d.inspect(request("REGISTER"), phone, 0.0) is None
    d.authenticated(phone[0], 0.0)
    assert all(d.inspect(request(), phone, 1 + i * 0.01) is None for i in range(500))
    assert d.inspect(OPTIONS, phone, 50.0) is None  # its keep-alive OPTIONS too
    assert d.accepted_authenticated == 501
    assert d.inspect(OPTIONS, phone, 101.0) == DropReason.OPTIONS  # trust expired
    guesser = ("192.0.2.31", 5060)
    d.inspect(request("REGISTER"), guesser, 200.0)
    assert [d.auth_failed(guesser[0], 200.0 + i) for i in range(3)] == [False, False, True]
    assert d.inspect(request("REGISTER"), guesser, 204.0) == DropReason.BLACKLIST
    assert d.auto_blocks["auth"] == 1


def test_sustained_flood_earns_an_automatic_block_that_expires() -> None:
    d = Defence(DefenceConfig(trust_loopback=False, block_after_drops=50, block_seconds=300))
    for i in range(80):
        d.inspect(request(), UNTRUSTED, i * 0.01)
    assert d.auto_blocks["rate"] == 1
    [entry] = d.blacklist.entries(1.0)
    assert entry.network == UNTRUSTED[0] and entry.origin == "auto"
    assert d.inspect(request(), UNTRUSTED, 100.0) == DropReason.BLACKLIST
    assert d.blacklist.entries(302.0) == []


def test_blacklist_add_remove_list_ranges_and_expiry() -> None:
    d = Defence(ONLY)
    d.blacklist.add("198.51.100.0/24", 0.0, reason="abuse report")
    d.blacklist.add("192.0.2.9", 0.0, seconds=10)
    assert d.inspect(request(), ("198.51.100.5", 5060), 1.0) == DropReason.BLACKLIST
    assert d.inspect(request(), UNTRUSTED, 1.0) == DropReason.BLACKLIST
    assert d.inspect(request(), UNTRUSTED, 11.0) is None  # expired
    listed = [e.to_json(11.0) for e in d.blacklist.entries(11.0)]
    assert listed == [
        {"network": "198.51.100.0/24", "expires_in": None, "reason": "abuse report", "origin": "manual"}
    ]
    assert d.blacklist.remove("198.51.100.0/24") and not d.blacklist.remove("198.51.100.0/24")
    assert d.inspect(request(), ("198.51.100.5", 5060), 12.0) is None
    with pytest.raises(ValueError, match="not an IP address"):
        d.blacklist.add("not-an-ip", 0.0)


def test_manual_blacklist_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "blacklist.json"
    first = Defence(replace(ONLY, blacklist_file=str(path)), wall_offset=1000.0)
    first.blacklist.add("192.0.2.9", 0.0)
    first.blacklist.add("192.0.2.10", 0.0, seconds=60)
    first.blacklist.add("192.0.2.11", 0.0, seconds=60, origin="auto", reason="rate")  # not kept
    rows = json.loads(path.read_text())["blacklist"]
    assert {r["network"] for r in rows} == {"192.0.2.9", "192.0.2.10"}
    # the next run's clock starts elsewhere: 50 s of wall time later, 10 s of the block remain
    second = Defence(replace(ONLY, blacklist_file=str(path)), wall_offset=1000.0 + 50.0 - 7.0)
    assert second.blacklist.load(7.0) == 2
    assert second.inspect(request(), ("192.0.2.10", 1), 16.0) == DropReason.BLACKLIST
    assert second.inspect(request(), ("192.0.2.10", 1), 17.5) is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a blacklist file"):
        second.blacklist.load(0.0)


def test_full_source_table_refuses_new_sources_but_keeps_tracked_ones() -> None:
    d = Defence(replace(ONLY, max_sources=3))
    for i in range(3):
        assert d.inspect(request(), (f"192.0.2.{i}", 5060), 0.0) is None
    assert d.inspect(request(), ("192.0.2.200", 5060), 1.0) == DropReason.TABLE_FULL
    assert d.inspect(request(), ("192.0.2.1", 5060), 1.0) is None
    assert d.tracked() == 3
    assert d.inspect(request(), ("192.0.2.200", 5060), 100.0) is None  # the idle ones expired


def test_f7_75_per_rule_counters_are_plain_data() -> None:
    d = Defence(DefenceConfig(trust_loopback=False))
    d.inspect(OPTIONS, UNTRUSTED, 0.0)
    d.inspect(request(ua="friendly-scanner"), ("192.0.2.10", 5060), 0.0)
    counters = d.counters()
    assert counters["dropped"]["options"] == 1 and counters["dropped"]["scanner_user_agent"] == 1
    assert counters["signatures"] == {"friendly-scanner": 1}
    assert counters["auto_blocks"]["scanner"] == 1 and counters["blacklist_entries"] == 1
    json.dumps(counters)


def test_bad_configuration_is_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        DefenceConfig(trusted_sip_ips=("10.0.0.300",))
