"""The registrar (RFC 3261 §10.3) and NAT keep-alive (VOS3000 SS_SIP_NAT_KEEP_ALIVE_*), on a fake clock."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from signaling.sip.keepalive import KeepAliveConfig, NatKeepAlive, Transmit
from signaling.sip.message import Headers, NameAddr, Request, Response, SipUri
from signaling.sip.registrar import (
    PhoneOffline,
    PhoneOnline,
    Registrar,
    RegistrarConfig,
    canonical_aor,
    uri_equal,
)

TORTURE = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "sip-torture" / "rfc4475"
PHONE = ("203.0.113.7", 40123)  # the phone's NAT outside address
AOR = "sip:1001@softswitch.example"


def torture_request(name: str) -> Request:
    """An RFC 4475 REGISTER as a Request; these files have no folding, so a line split suffices
    (the project's parser is tested separately against the whole set)."""
    head = (TORTURE / f"{name}.dat").read_bytes().split(b"\r\n\r\n", 1)[0].decode()
    start, *lines = head.split("\r\n")
    method, uri, _ = start.split(" ")
    return Request(method, uri, Headers(tuple(line.split(":", 1)) for line in lines))  # type: ignore[misc]


def reg(
    *contacts: str,
    expires: int | None = None,
    call_id: str = "call-1@phone",
    cseq: int = 1,
    to: str = "<sip:1001@softswitch.example>",
    extra: tuple[tuple[str, str], ...] = (),
) -> Request:
    items = [
        ("Via", "SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK" + str(cseq)),
        ("From", to + ";tag=ab12"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
        ("User-Agent", "TestPhone/1.0"),
    ]
    items += [("Contact", c) for c in contacts]
    if expires is not None:
        items.append(("Expires", str(expires)))
    items += list(extra)
    return Request("REGISTER", "sip:softswitch.example", Headers(items))


def listed(resp: Response) -> dict[str, NameAddr]:
    out = {}
    for value in resp.headers.values("Contact"):
        na = NameAddr.parse(value)
        out[na.uri] = na
    return out


# ------------------------------------------------------------------ bindings and expiry


def test_register_binds_and_200_lists_the_contact_with_its_expiry():
    r = Registrar()
    resp = r.register(reg("<sip:1001@192.168.1.20:5060>", expires=300), PHONE, now=100.0)
    assert resp.status == 200
    assert resp.to.tag
    [contact] = listed(resp).values()
    assert contact.uri == "sip:1001@192.168.1.20:5060"
    assert contact.params["expires"] == "300"
    [b] = r.lookup(AOR, 100.0)
    assert b.source == PHONE  # where the call must go, not the private Contact address
    assert b.transport == "UDP"
    assert b.user_agent == "TestPhone/1.0"
    assert b.expires_at == 400.0


def test_changed_aors_are_noted_for_a_node_sharing_its_registrations():
    """Every change of an AOR's bindings (new, refreshed, unregistered, expired) is noted once
    until popped; a query and a refused REGISTER change nothing."""
    r = Registrar()
    assert r.pop_changed() == set()
    r.register(reg("<sip:1001@192.168.1.20:5060>", expires=300), PHONE, now=100.0)
    assert r.pop_changed() == {AOR} and r.pop_changed() == set()
    r.register(reg(cseq=2), PHONE, now=101.0)  # a query
    r.register(reg("<sip:1001@192.168.1.20:5060>", expires=30, cseq=3), PHONE, now=102.0)  # 423
    assert r.pop_changed() == set()
    r.register(reg("<sip:1001@192.168.1.20:5060>", expires=300, cseq=4), PHONE, now=200.0)  # refresh
    assert r.pop_changed() == {AOR}
    r.handle_timer(501.0)  # expired
    assert r.pop_changed() == {AOR} and r.lookup(AOR, 501.0) == []


def test_lifetime_comes_from_contact_param_then_expires_header_then_default():
    r = Registrar(RegistrarConfig(default_expires=3600, max_expires=7200))
    resp = r.register(reg("<sip:a@10.0.0.1>;expires=120", "<sip:b@10.0.0.2>", expires=600), PHONE, 0.0)
    got = {u: na.params["expires"] for u, na in listed(resp).items()}
    assert got == {"sip:a@10.0.0.1": "120", "sip:b@10.0.0.2": "600"}
    resp = r.register(reg("<sip:c@10.0.0.3>", call_id="other"), PHONE, 0.0)
    assert listed(resp)["sip:c@10.0.0.3"].params["expires"] == "3600"


def test_too_brief_gets_423_with_min_expires_and_changes_nothing():
    r = Registrar(RegistrarConfig(min_expires=60))
    resp = r.register(reg("<sip:1001@10.0.0.1>", expires=30), PHONE, 0.0)
    assert resp.status == 423
    assert resp.headers.get("Min-Expires") == "60"
    assert r.lookup(AOR, 0.0) == []
    # expires 0 is never "too brief"
    assert r.register(reg("<sip:1001@10.0.0.1>", expires=0, cseq=2), PHONE, 0.0).status == 200


def test_too_long_is_clamped_to_max_expires():
    r = Registrar(RegistrarConfig(max_expires=3600))
    resp = r.register(reg("<sip:1001@10.0.0.1>", expires=86400), PHONE, 0.0)
    assert listed(resp)["sip:1001@10.0.0.1"].params["expires"] == "3600"


def test_bindings_expire_on_the_injected_clock_with_offline_event():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>", expires=120), PHONE, 0.0)
    assert r.pop_events() == [PhoneOnline(AOR, r.lookup(AOR, 0.0)[0], 0.0)]
    assert r.get_timer() == 120.0
    r.handle_timer(119.9)
    assert r.is_online(AOR, 119.9)
    assert r.pop_events() == []
    assert r.lookup(AOR, 120.0) == []  # lookups never return an expired binding, even before the sweep
    r.handle_timer(120.0)
    assert r.pop_events() == [PhoneOffline(AOR, "expired", 120.0)]
    assert r.get_timer() is None
    assert len(r) == 0


def test_refresh_moves_the_expiry_and_raises_no_new_online_event():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>", expires=120), PHONE, 0.0)
    r.pop_events()
    for i, t in enumerate((100.0, 200.0, 300.0), start=2):
        assert r.register(reg("<sip:1001@10.0.0.1>", expires=120, cseq=i), PHONE, t).status == 200
    r.handle_timer(400.0)
    assert r.pop_events() == []
    [b] = r.lookup(AOR, 400.0)
    assert b.expires_at == 420.0
    assert b.registered_at == 0.0
    r.handle_timer(420.0)
    assert [type(e) for e in r.pop_events()] == [PhoneOffline]


def test_one_of_two_bindings_expiring_keeps_the_phone_online():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>", expires=100), PHONE, 0.0)
    r.register(reg("<sip:1001@10.0.0.2>", expires=300, call_id="desk"), ("198.51.100.2", 5060), 0.0)
    r.pop_events()
    r.handle_timer(100.0)
    assert r.pop_events() == []
    assert [b.uri for b in r.lookup(AOR, 100.0)] == ["sip:1001@10.0.0.2"]
    assert r.get_timer() == 300.0


def test_multiple_contacts_are_ordered_by_q_then_freshness():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>;q=0.5", "<sip:1001@10.0.0.2>;q=0.9"), PHONE, 0.0)
    r.register(reg("<sip:1001@10.0.0.3>;q=0.5", call_id="second"), PHONE, 5.0)
    assert [b.uri for b in r.lookup(AOR, 6.0)] == [
        "sip:1001@10.0.0.2",
        "sip:1001@10.0.0.3",
        "sip:1001@10.0.0.1",
    ]
    assert r.lookup(AOR, 6.0)[0].q == 0.9


@pytest.mark.parametrize("q", ["1.5", "-0.1", "high"])
def test_bad_q_value_gets_400(q):
    assert Registrar().register(reg(f"<sip:1001@10.0.0.1>;q={q}"), PHONE, 0.0).status == 400


def test_query_without_contact_lists_bindings_and_changes_nothing():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>", expires=600), PHONE, 0.0)
    resp = r.register(reg(cseq=2), PHONE, 100.0)
    assert resp.status == 200
    assert listed(resp)["sip:1001@10.0.0.1"].params["expires"] == "500"


def test_expires_zero_removes_one_binding():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>", "<sip:1001@10.0.0.2>"), PHONE, 0.0)
    r.pop_events()
    resp = r.register(reg("<sip:1001@10.0.0.1>;expires=0", cseq=2), PHONE, 1.0)
    assert set(listed(resp)) == {"sip:1001@10.0.0.2"}
    assert r.pop_events() == []


def test_wildcard_with_expires_zero_removes_all_and_reports_offline():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>", "<sip:1001@10.0.0.2>"), PHONE, 0.0)
    r.pop_events()
    resp = r.register(reg("*", expires=0, cseq=2), PHONE, 1.0)
    assert resp.status == 200
    assert resp.headers.get("Contact") is None
    assert r.pop_events() == [PhoneOffline(AOR, "unregistered", 1.0)]


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [(("*",), None), (("*",), 60), (("*", "<sip:1001@10.0.0.1>"), 0)],
)
def test_wildcard_needs_expires_zero_and_to_stand_alone(contacts, expires):
    assert Registrar().register(reg(*contacts, expires=expires), PHONE, 0.0).status == 400


def test_same_call_id_needs_a_higher_cseq_and_a_failed_request_changes_nothing():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>", expires=600, cseq=5), PHONE, 0.0)
    # a delayed older REGISTER (same Call-ID, lower CSeq) trying to remove and to add
    old = reg("<sip:1001@10.0.0.1>;expires=0", "<sip:1001@10.0.0.9>", cseq=4)
    resp = r.register(old, PHONE, 1.0)
    assert resp.status == 500
    assert [b.uri for b in r.lookup(AOR, 1.0)] == ["sip:1001@10.0.0.1"]  # all or nothing
    assert r.register(reg("*", expires=0, cseq=5), PHONE, 1.0).status == 500  # equal CSeq fails too
    # another Call-ID (the phone rebooted) may replace it whatever its CSeq
    resp = r.register(reg("<sip:1001@10.0.0.1>", expires=60, cseq=1, call_id="rebooted"), PHONE, 2.0)
    assert resp.status == 200
    [b] = r.lookup(AOR, 2.0)
    assert (b.call_id, b.cseq, b.expires_at) == ("rebooted", 1, 62.0)


def test_contacts_are_matched_by_uri_equivalence():
    r = Registrar()
    r.register(reg("<sip:1001@PHONE.example:5060;transport=udp>"), PHONE, 0.0)
    r.register(reg("<sip:1001@phone.example:5060;transport=UDP;lr>", cseq=2), PHONE, 1.0)
    assert len(r.lookup(AOR, 1.0)) == 1
    r.register(reg("<sip:1001@phone.example;transport=udp>", cseq=3), PHONE, 2.0)  # no port ≠ 5060
    assert len(r.lookup(AOR, 2.0)) == 2


def test_uri_equal_follows_rfc3261_19_1_4_examples():
    eq = [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
    ]
    ne = [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
        ("sip:carol@chicago.com", "sips:carol@chicago.com"),
    ]
    for a, b in eq:
        assert uri_equal(SipUri.parse(a), SipUri.parse(b)), (a, b)
    for a, b in ne:
        assert not uri_equal(SipUri.parse(a), SipUri.parse(b)), (a, b)


def test_too_many_contacts_drop_the_stalest():
    r = Registrar(RegistrarConfig(max_contacts=2))
    for i in range(4):
        r.register(reg(f"<sip:1001@10.0.0.{i}>", call_id=f"boot-{i}"), PHONE, float(i))
    assert {b.uri for b in r.lookup(AOR, 4.0)} == {"sip:1001@10.0.0.2", "sip:1001@10.0.0.3"}


# ------------------------------------------------------------------ rejections


def test_unknown_to_scheme_rfc4475_unksm2_gets_416():
    resp = Registrar().register(torture_request("unksm2"), ("192.0.2.21", 5060), 0.0)
    assert resp.status == 416


def test_non_sip_contact_gets_416():
    assert Registrar().register(reg("<tel:+441234567>"), PHONE, 0.0).status == 416


def test_addr_spec_contact_with_uri_headers_rfc4475_regbadct_gets_400():
    resp = Registrar().register(torture_request("regbadct"), ("135.180.130.133", 5060), 0.0)
    assert resp.status == 400


def test_require_of_unknown_extension_gets_420_with_unsupported():
    resp = Registrar().register(reg("<sip:1001@10.0.0.1>", extra=(("Require", "gruu, path"),)), PHONE, 0.0)
    assert resp.status == 420
    assert resp.headers.get("Unsupported") == "gruu, path"
    ok = Registrar(RegistrarConfig(supported=frozenset({"path"})))
    assert ok.register(reg("<sip:1001@10.0.0.1>", extra=(("Require", "path"),)), PHONE, 0.0).status == 200


def test_authenticated_user_may_register_only_its_own_aor():
    r = Registrar()
    assert r.register(reg("<sip:1001@10.0.0.1>"), PHONE, 0.0, authenticated_user="1002").status == 403
    assert r.lookup(AOR, 0.0) == []
    assert r.register(reg("<sip:1001@10.0.0.1>"), PHONE, 0.0, authenticated_user="1001").status == 200


def test_domain_not_served_gets_404():
    r = Registrar(RegistrarConfig(domains=frozenset({"softswitch.example"})))
    req = reg("<sip:1001@10.0.0.1>")
    other = Request("REGISTER", "sip:elsewhere.example", req.headers)
    assert r.register(other, PHONE, 0.0).status == 404
    assert r.register(req, PHONE, 0.0).status == 200


def test_non_register_is_a_programming_error():
    with pytest.raises(ValueError, match="not a REGISTER"):
        Registrar().register(Request("INVITE", "sip:x@y", Headers()), PHONE, 0.0)


# ------------------------------------------------------------------ RFC 4475 contact parameters


@pytest.mark.parametrize(
    ("name", "uri", "uri_param"),
    [
        ("cparam01", "sip:+19725552222@gw1.example.net", False),
        ("cparam02", "sip:+19725552222@gw1.example.net;unknownparam", True),
    ],
)
def test_unknown_contact_parameters_are_kept_rfc4475_cparam(name, uri, uri_param):
    r = Registrar()
    resp = r.register(torture_request(name), ("192.0.2.9", 5060), 0.0)
    assert resp.status == 200
    [value] = resp.headers.values("Contact")
    contact = NameAddr.parse(value)
    assert contact.uri == uri
    # cparam01: a contact (header) parameter; cparam02: a URI parameter inside the brackets
    assert ("unknownparam" in contact.params) is not uri_param
    assert ("unknownparam" in SipUri.parse(contact.uri).params) is uri_param
    assert value.startswith("<")  # with parameters, only the name-addr form is unambiguous
    assert r.lookup("sip:watson@example.com", 0.0)[0].uri == uri


def test_escaped_headers_in_contact_are_kept_rfc4475_regescrt():
    r = Registrar()
    resp = r.register(torture_request("regescrt"), ("192.0.2.1", 5060), 0.0)
    assert resp.status == 200
    [value] = resp.headers.values("Contact")
    assert NameAddr.parse(value).uri == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


# ------------------------------------------------------------------ lookups for routing


def test_lookup_by_request_uri_and_a_custom_aor_key_by_number():
    r = Registrar(aor_key=lambda uri: uri.user or "")
    r.register(reg("<sip:1001@10.0.0.1>"), PHONE, 0.0)
    [b] = r.lookup_uri("sip:1001@203.0.113.1:5060;user=phone", 1.0)
    assert b.source == PHONE
    assert r.lookup_uri("sip:1002@softswitch.example", 1.0) == []
    assert r.lookup_uri("tel:1001", 1.0) == []


def test_canonical_aor_drops_params_port_and_case_of_host():
    assert canonical_aor(SipUri.parse("sip:%31001@SoftSwitch.Example:5060;user=phone")) == AOR


def test_online_list_and_operator_removal():
    r = Registrar()
    r.register(reg("<sip:1001@10.0.0.1>"), PHONE, 0.0)
    r.register(reg("<sip:1002@10.0.0.2>", to="<sip:1002@softswitch.example>", call_id="x"), PHONE, 0.0)
    assert sorted(aor for aor, _ in r.online(1.0)) == [AOR, "sip:1002@softswitch.example"]
    r.pop_events()
    r.unregister(AOR, 2.0)
    assert r.pop_events() == [PhoneOffline(AOR, "removed", 2.0)]
    assert [aor for aor, _ in r.online(3.0)] == ["sip:1002@softswitch.example"]


# ------------------------------------------------------------------ NAT keep-alive


def test_keepalive_sends_hello_to_the_observed_address_every_period():
    ka = NatKeepAlive(KeepAliveConfig(message="HELLO", period=30))
    r = Registrar(keepalive=ka)
    r.register(reg("<sip:1001@192.168.1.20:5060>", expires=3600), PHONE, 0.0)
    sent: list[tuple[float, tuple[str, int], bytes]] = []
    now = 0.0
    while (t := ka.get_timer()) is not None and t <= 150.0:
        now = t
        sent += [(now, tx.addr, tx.payload) for tx in ka.handle_timer(now)]
    assert sent == [(float(t), PHONE, b"HELLO") for t in (30, 60, 90, 120, 150)]


def test_keepalive_stops_when_the_binding_goes_and_tcp_gets_none():
    ka = NatKeepAlive()
    r = Registrar(keepalive=ka)
    r.register(reg("<sip:1001@10.0.0.1>", expires=100), PHONE, 0.0)
    r.register(
        reg("<sip:1002@10.0.0.2;transport=tcp>", to="<sip:1002@softswitch.example>", call_id="t"),
        ("198.51.100.5", 50000),
        0.0,
        transport="tcp",
    )
    assert len(ka) == 1
    r.handle_timer(100.0)
    assert len(ka) == 0
    assert ka.get_timer() is None


def test_two_phones_behind_one_nat_port_share_one_keepalive():
    ka = NatKeepAlive()
    r = Registrar(keepalive=ka)
    r.register(reg("<sip:1001@10.0.0.1>"), PHONE, 0.0)
    r.register(reg("<sip:1002@10.0.0.1>", to="<sip:1002@softswitch.example>", call_id="y"), PHONE, 0.0)
    assert len(ka.handle_timer(30.0)) == 1
    r.unregister(AOR, 31.0)
    assert PHONE in ka  # 1002 is still registered there
    r.unregister("sip:1002@softswitch.example", 32.0)
    assert PHONE not in ka


def test_empty_keepalive_message_disables_keepalive():
    ka = NatKeepAlive(KeepAliveConfig(message=""))
    r = Registrar(keepalive=ka)
    r.register(reg("<sip:1001@10.0.0.1>"), PHONE, 0.0)
    assert ka.get_timer() is None
    assert ka.handle_timer(1e6) == []
    assert ka.sent == 0


def test_a_new_keepalive_configuration_applies_from_each_devices_next_round():
    """A stored SS_SIP_NAT_KEEP_ALIVE_* change reaching a running node (reference §1.2): the
    next keep-alive comes one new period after the last, with the new message; an empty message
    stops them at once; set again, the devices registered meanwhile get theirs."""
    ka = NatKeepAlive(KeepAliveConfig(message="HELLO", period=30))
    ka.add(PHONE, 0.0)
    assert ka.handle_timer(30.0) == [Transmit(PHONE, b"HELLO")]
    ka.configure(KeepAliveConfig(message="PING", period=60), 35.0)
    assert ka.get_timer() == 90.0  # 30 + the new period
    ka.configure(KeepAliveConfig(message="PING", period=10), 36.0)
    assert ka.get_timer() == 40.0
    assert ka.handle_timer(40.0) == [Transmit(PHONE, b"PING")]
    ka.configure(KeepAliveConfig(message=""), 41.0)
    assert ka.get_timer() is None and ka.handle_timer(1000.0) == []
    ka.add(("198.51.100.9", 5060), 42.0)  # registers while keep-alives are off
    ka.configure(KeepAliveConfig(message="HELLO", period=30), 100.0)
    assert sorted(t.addr for t in ka.handle_timer(100.0)) == [("198.51.100.9", 5060), PHONE]
    assert ka.get_timer() == 130.0


def test_a_device_a_whole_period_behind_gets_one_keepalive_not_a_burst():
    ka = NatKeepAlive(KeepAliveConfig(period=10))
    ka.add(PHONE, 0.0)
    assert len(ka.handle_timer(35.0)) == 1  # due at 10, the loop stalled until 35
    assert ka.get_timer() == 45.0


@pytest.mark.parametrize("period", [9, 86401])
def test_keepalive_period_outside_10_to_86400_is_rejected(period):
    with pytest.raises(ValueError, match="SS_SIP_NAT_KEEP_ALIVE_PERIOD"):
        KeepAliveConfig(period=period)


def test_ten_thousand_devices_are_paced_3000_per_500ms():
    ka = NatKeepAlive(KeepAliveConfig(period=30, send_interval_ms=500, send_one_time=3000))
    for i in range(10_000):
        ka.add((f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}", 5060), 0.0)
    batches: list[tuple[float, int]] = []
    while (t := ka.get_timer()) is not None and t < 40.0:
        out = ka.handle_timer(t)
        if out:
            batches.append((t, len(out)))
    assert batches == [(30.0, 3000), (30.5, 3000), (31.0, 3000), (31.5, 1000)]
    # any 500-ms window holds at most one batch
    times = [t for t, _ in batches]
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(times))
    # each device's next keep-alive stays one period after its previous one
    nxt = []
    while (t := ka.get_timer()) is not None and t < 70.0:
        out = ka.handle_timer(t)
        if out:
            nxt.append((t, len(out)))
    assert nxt == [(60.0, 3000), (60.5, 3000), (61.0, 3000), (61.5, 1000)]


def test_a_late_timer_keeps_the_devices_rhythm():
    ka = NatKeepAlive(KeepAliveConfig(period=30))
    ka.add(PHONE, 0.0)
    assert ka.handle_timer(29.0) == []  # not due yet
    assert len(ka.handle_timer(35.0)) == 1  # the loop was busy: 5 s late
    assert ka.get_timer() == 60.0  # not 65: the NAT binding's clock does not wait for us
