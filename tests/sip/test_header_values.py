"""The structured header values the parser checks: hosts, SIP URIs, name-addr, Via, CSeq, escapes."""

from __future__ import annotations

import pytest

from signaling.sip.grammar import check_host, parse_header_params, unescape
from signaling.sip.message import CSeq, NameAddr, SipUri, Via, split_list_strict


@pytest.mark.parametrize(
    "host",
    ["example.com", "example.com.", "a-b.c_d.example", "192.0.2.1", "[::1]", "[2001:db8::192.0.2.1]", "h1"],
)
def test_good_hosts(host):
    assert check_host(host) == host


@pytest.mark.parametrize(
    "host",
    [
        "",
        "-a.example",
        "a-.example",
        "a..b",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "[::1",
        "[fe80::1%eth0]",
        "[2001:db8:::1]",
        "exa mple",
        "ex@mple",
    ],
)
def test_bad_hosts(host):
    with pytest.raises(ValueError):
        check_host(host)


def test_sip_uri_pieces_and_the_dial_string_liberty():
    uri = SipUri.parse("sips:*86%23#@gw.example:5061;transport=tls;lr?Subject=hi&Priority=urgent")
    assert (uri.scheme, uri.user, uri.host, uri.port) == ("sips", "*86%23#", "gw.example", 5061)
    assert uri.params == {"transport": "tls", "lr": None}
    assert uri.headers == "Subject=hi&Priority=urgent"
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@host",
        "sip:user@",
        "sip:user@host:0",
        "sip:user@host:65536",
        "sip:user@host;;lr",
        "sip:user@host;lr;LR",
        "sip:us er@host",
        "sip:user@host?",
        "sip:%zz@host",
        "http://example.com",
    ],
)
def test_bad_sip_uris(text):
    with pytest.raises(ValueError):
        SipUri.parse(text)


def test_name_addr_forms():
    quoted = NameAddr.parse('"Alice \\"A\\"" <sip:alice@example.com>;tag=1;q=0.5')
    assert (quoted.display, quoted.uri, quoted.params) == (
        '"Alice \\"A\\""',
        "sip:alice@example.com",
        {"tag": "1", "q": "0.5"},
    )
    tokens = NameAddr.parse("Alice Smith<tel:+15551234>")
    assert (tokens.display, tokens.uri) == ("Alice Smith", "tel:+15551234")
    bare = NameAddr.parse("sip:bob@example.com;tag=x")
    assert (bare.uri, bare.params, bare.bracketed) == ("sip:bob@example.com", {"tag": "x"}, False)
    quoted_angle = NameAddr.parse('"a<b>" <sip:x@h>')
    assert quoted_angle.display == '"a<b>"'


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"open <sip:a@h>',
        "<sip:a@h",
        "< sip:a@h>",
        "Bell, Alexander <sip:a@h>",
        "<sip:a@h>;;",
        "<sip:a@h>;tag=1;tag=2",
        "<sip:a@h>, <sip:b@h>",
        "sip:a@h?x=y",
        "<not a uri>",
    ],
)
def test_bad_name_addrs(text):
    with pytest.raises(ValueError):
        NameAddr.parse(text)


def test_via_white_space_ipv6_and_params():
    via = Via.parse(
        "SIP / 2.0 / tcp  [2001:db8::1] : 5070 ;branch=z9hG4bKx ;received=2001:db8::2;rport;ttl=16"
    )
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::1]", 5070)
    assert via.params == {"branch": "z9hG4bKx", "received": "2001:db8::2", "rport": None, "ttl": "16"}
    assert via.rfc3261_branch


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;ttl=256",
        "SIP/2.0/UDP host;rport=0",
        "SIP/2.0/UDP host;received=not a host",
        "SIP/2.1/UDP host",
        "SIP/2.0/UDP host:99999",
    ],
)
def test_bad_vias(text):
    with pytest.raises(ValueError):
        Via.parse(text)


@pytest.mark.parametrize(
    "text", ["1", "x INVITE", "1 IN VITE", "2147483648 INVITE", "\u0661 INVITE", "-1 BYE"]
)
def test_bad_cseq(text):
    with pytest.raises(ValueError):
        CSeq.parse(text)


def test_cseq_bounds():
    assert CSeq.parse("2147483647 INVITE") == CSeq(2**31 - 1, "INVITE")
    assert CSeq.parse("\t0007   BYE ") == CSeq(7, "BYE")


def test_strict_list_split_refuses_empty_elements_and_open_quotes():
    assert split_list_strict('"a,b" <sip:x@h>, <sip:y@h>') == ['"a,b" <sip:x@h>', "<sip:y@h>"]
    for text in ("a,,b", "a,", ",a", '"a, b'):
        with pytest.raises(ValueError):
            split_list_strict(text)


def test_header_params_allow_sws_quotes_and_ipv6():
    assert parse_header_params(' ; a = "x;y" ;b; c=[::1]') == {"a": '"x;y"', "b": None, "c": "[::1]"}
    with pytest.raises(ValueError):
        parse_header_params(";a=b c")


def test_unescape():
    assert unescape("sips%3Auser%40example.com") == "sips:user@example.com"
    assert unescape("%E2%82%AC") == "\u20ac"
    assert unescape("%FF") == "\udcff"
    assert unescape("no-escapes") == "no-escapes"
