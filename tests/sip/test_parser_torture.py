"""Every RFC 4475 and RFC 5118 torture message gets the verdict its README gives, on both scanner
builds; the valid ones survive parse → serialise → parse with every header's meaning intact.

Liberal-handling choices (RFC 4475 §3.1.2.5 and §3.1.2.12 allow either): **trws** (SP after the
SIP version) and **baddate** (a Date with a non-GMT zone) are both *accepted*: trailing white space
on a request line carries no meaning, and Date is never interpreted by this stack.
"""

from __future__ import annotations

import pytest

from signaling.sip.grammar import unescape
from signaling.sip.message import (
    CSeq,
    NameAddr,
    Request,
    Response,
    SipUri,
    Via,
    serialize,
    split_list,
)
from signaling.sip.parser import SipParseError, parse_message
from signaling.sip.validate import error_response
from tests.sip.torture import (
    RFC4475_DROPPED_RESPONSES,
    RFC4475_REJECTED,
    RFC4475_VALID,
    RFC5118_REJECTED,
    RFC5118_VALID,
    all_files,
    rfc4475,
    rfc5118,
    using_scanner,
)

SCANNER_KINDS = ["compiled", "python"]


def test_every_torture_file_has_a_verdict():
    named = {f"rfc4475/{n}.dat" for n in [*RFC4475_VALID, *RFC4475_REJECTED, *RFC4475_DROPPED_RESPONSES]}
    named |= {f"rfc5118/{n}" for n in [*RFC5118_VALID, *RFC5118_REJECTED]}
    on_disk = {f"{p.parent.name}/{p.name}" for p in all_files()}
    assert len(on_disk) == 61
    assert named == on_disk


def _parse(data: bytes) -> Request | Response:
    return parse_message(data)


@pytest.mark.parametrize("kind", SCANNER_KINDS)
@pytest.mark.parametrize("name", RFC4475_VALID)
def test_rfc4475_valid_messages_parse(kind, name):
    with using_scanner(kind):
        msg = _parse(rfc4475(name))
    assert isinstance(msg, Request | Response)


@pytest.mark.parametrize("kind", SCANNER_KINDS)
@pytest.mark.parametrize(("name", "status"), sorted(RFC4475_REJECTED.items()))
def test_rfc4475_invalid_requests_are_refused_with_the_right_status(kind, name, status):
    with using_scanner(kind), pytest.raises(SipParseError) as info:
        _parse(rfc4475(name))
    err = info.value
    assert err.status == status
    assert not err.is_response
    # enough was read to answer along the right Via with the right Call-ID and CSeq
    assert err.request is not None
    answer = error_response(err)
    assert answer is not None
    assert answer.status == status
    assert answer.headers.get_all("Via") == err.request.headers.get_all("Via")
    assert answer.headers.get("CSeq") == err.request.headers.get("CSeq")


@pytest.mark.parametrize("kind", SCANNER_KINDS)
@pytest.mark.parametrize("name", RFC4475_DROPPED_RESPONSES)
def test_rfc4475_bad_responses_are_dropped_not_answered(kind, name):
    with using_scanner(kind), pytest.raises(SipParseError) as info:
        _parse(rfc4475(name))
    assert info.value.is_response
    assert info.value.request is None
    assert error_response(info.value) is None


@pytest.mark.parametrize("kind", SCANNER_KINDS)
@pytest.mark.parametrize("name", RFC5118_VALID)
def test_rfc5118_ipv6_messages_parse(kind, name):
    with using_scanner(kind):
        msg = _parse(rfc5118(name))
    assert isinstance(msg, Request)
    for value in msg.headers.values("Via"):
        Via.parse(value)


@pytest.mark.parametrize("kind", SCANNER_KINDS)
@pytest.mark.parametrize("name", RFC5118_REJECTED)
def test_rfc5118_bad_ipv6_references_are_400(kind, name):
    with using_scanner(kind), pytest.raises(SipParseError) as info:
        _parse(rfc5118(name))
    assert info.value.status == 400
    assert "Request-URI" in info.value.reason


# --- round trip ---------------------------------------------------------------------------------

VALID = [rfc4475(n) for n in RFC4475_VALID] + [rfc5118(n) for n in RFC5118_VALID]
VALID_IDS = RFC4475_VALID + RFC5118_VALID


def _without_length(msg: Request | Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in msg.headers if k != "Content-Length"]


def _structured(msg: Request | Response) -> dict[str, object]:
    """The meaning of the headers the stack interprets."""
    out: dict[str, object] = {
        "via": [Via.parse(v) for v in msg.headers.values("Via")],
        "from": NameAddr.parse(msg.headers.get("From") or ""),
        "to": NameAddr.parse(msg.headers.get("To") or ""),
        "cseq": msg.cseq,
        "call_id": msg.call_id,
        "contact": [NameAddr.parse(v) for v in msg.headers.values("Contact")],
        "route": [NameAddr.parse(v) for v in msg.headers.values("Route")],
    }
    return out


@pytest.mark.parametrize("data", VALID, ids=VALID_IDS)
def test_parse_serialise_parse_is_a_fixed_point_keeping_meaning(data):
    first = parse_message(data)
    wire = serialize(first)
    second = parse_message(wire)
    assert serialize(second) == wire
    assert parse_message(serialize(second)) == second
    assert type(second) is type(first)
    assert second.start_line() == first.start_line() or first.start_line().rstrip() == second.start_line()
    assert _without_length(second) == _without_length(first)
    assert second.headers.get("Content-Length") == str(len(first.body))
    assert second.body == first.body
    assert _structured(second) == _structured(first)


@pytest.mark.parametrize("data", VALID, ids=VALID_IDS)
def test_structured_values_rewritten_canonically_keep_their_meaning(data):
    msg = parse_message(data)
    for value in msg.headers.values("Via"):
        via = Via.parse(value)
        assert Via.parse(str(via)) == via
    for name in ("From", "To", "Contact", "Route", "Record-Route"):
        for value in msg.headers.values(name):
            if value == "*":
                continue
            addr = NameAddr.parse(value)
            again = NameAddr.parse(str(addr))
            assert (again.uri, again.display, again.params) == (addr.uri, addr.display, addr.params)
            if addr.uri.lower().startswith(("sip:", "sips:")):
                uri = SipUri.parse(addr.uri)
                assert SipUri.parse(str(uri)) == uri
    assert CSeq.parse(str(msg.cseq)) == msg.cseq


# --- what the valid messages mean ---------------------------------------------------------------


def test_wsinv_folding_compact_forms_and_white_space():
    msg = parse_message(rfc4475("wsinv"))
    assert isinstance(msg, Request)
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.headers.get("Subject") == ""
    assert msg.cseq == CSeq(9, "INVITE")
    assert msg.headers.get("Max-Forwards") == "0068"
    vias = [Via.parse(v) for v in msg.headers.values("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display == '"J Rosenberg \\\\\\""'
    assert msg.to.tag == "1918181833n"
    contact = NameAddr.parse(msg.headers.get("Contact") or "")
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.body.startswith(b"v=0\r\n") and len(msg.body) == 150


def test_intmeth_unusual_tokens_nul_in_quoted_pair_and_utf8():
    msg = parse_message(rfc4475("intmeth"))
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = SipUri.parse(msg.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"  # noqa: S105 (from the RFC)
    assert uri.host == "example.com"
    assert msg.to.display == '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"'
    assert (
        msg.from_.params["fromparam''~+*_!.-%"]
        == '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'
    )
    assert msg.headers.get("ExtensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_escapes_are_kept_as_written_and_unescape_on_demand():
    esc01 = parse_message(rfc4475("esc01"))
    assert isinstance(esc01, Request)
    user = SipUri.parse(esc01.uri).user
    assert user == "sips%3Auser%40example.com"
    assert unescape(user or "") == "sips:user@example.com"
    assert unescape(SipUri.parse(esc01.to.uri).user or "") == "user"
    esc02 = parse_message(rfc4475("esc02"))
    assert isinstance(esc02, Request)
    # an escaped method or header name is not the method or header it spells
    assert esc02.method == "RE%47IST%45R"
    assert len(esc02.headers.get_all("Contact")) == 2
    assert esc02.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    escnull = parse_message(rfc4475("escnull"))
    assert unescape(SipUri.parse(escnull.to.uri).user or "") == "null-\x00-null"
    assert [
        unescape(SipUri.parse(NameAddr.parse(c).uri).user or "") for c in escnull.headers.values("Contact")
    ] == [
        "\x00",
        "\x00\x00",
    ]


def test_utf8_and_empty_reason_phrases():
    unreason = parse_message(rfc4475("unreason"))
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 \u043d\u043e")
    noreason = parse_message(rfc4475("noreason"))
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


def test_longreq_keeps_every_via_in_order():
    msg = parse_message(rfc4475("longreq"))
    hosts = [Via.parse(v).host for v in msg.headers.values("Via")]
    assert hosts[:3] == ["sip33.example.com", "sip32.example.com", "sip31.example.com"]
    assert hosts[-1] == "host.example.com"
    assert len(hosts) == 34


def test_semiuri_user_part_with_semicolon_and_list_folded_accept():
    msg = parse_message(rfc4475("semiuri"))
    assert isinstance(msg, Request)
    uri = SipUri.parse(msg.uri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", {})
    assert msg.headers.values("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_trws_trailing_white_space_on_the_request_line_is_accepted():
    msg = parse_message(rfc4475("trws"))
    assert isinstance(msg, Request)
    assert msg.start_line() == "OPTIONS sip:remote-target@example.com SIP/2.0"


def test_baddate_is_accepted_and_the_date_kept_as_written():
    msg = parse_message(rfc4475("baddate"))
    assert msg.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def test_badbranch_parses_and_is_marked_for_rfc2543_matching():
    msg = parse_message(rfc4475("badbranch"))
    via = msg.top_via
    assert via.branch == "z9hG4bK"
    assert not via.rfc3261_branch
    assert parse_message(rfc4475("transports")).top_via.rfc3261_branch


def test_inv2543_without_max_forwards_content_length_or_branch():
    msg = parse_message(rfc4475("inv2543"))
    assert isinstance(msg, Request)
    assert msg.headers.get("Max-Forwards") is None
    assert msg.top_via.branch is None
    assert msg.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")


def test_unknown_schemes_parse_with_their_uris_kept():
    unkscm = parse_message(rfc4475("unkscm"))
    assert isinstance(unkscm, Request)
    assert unkscm.uri == "nobodyKnowsThisScheme:totallyopaquecontent"
    novelsc = parse_message(rfc4475("novelsc"))
    assert isinstance(novelsc, Request)
    assert novelsc.uri == "soap.beep://192.0.2.103:3002"
    unksm2 = parse_message(rfc4475("unksm2"))
    assert unksm2.to.uri == "isbn:2983792873"
    assert not unksm2.to.bracketed
    assert unksm2.from_.uri == "http://www.example.com"
    assert NameAddr.parse(unksm2.headers.get("Contact") or "").uri == "name:John_Smith"


def test_ipv6_references_hosts_and_ports():
    good = parse_message(rfc5118("ipv6-good"))
    assert isinstance(good, Request)
    assert SipUri.parse(good.uri).host == "[2001:db8::10]"
    ambiguous = parse_message(rfc5118("port-ambiguous"))
    assert isinstance(ambiguous, Request)
    assert (SipUri.parse(ambiguous.uri).host, SipUri.parse(ambiguous.uri).port) == (
        "[2001:db8::10:5070]",
        None,
    )
    unambiguous = parse_message(rfc5118("port-unambiguous"))
    assert isinstance(unambiguous, Request)
    assert (SipUri.parse(unambiguous.uri).host, SipUri.parse(unambiguous.uri).port) == (
        "[2001:db8::10]",
        5070,
    )
    mapped = parse_message(rfc5118("ipv4-mapped-ipv6"))
    assert [(v.host, v.port) for v in map(Via.parse, mapped.headers.values("Via"))] == [
        ("[::ffff:192.0.2.10]", 19823),
        ("[::ffff:192.0.2.2]", None),
    ]
    multi = parse_message(rfc5118("mult-ip-in-header"))
    vias = [Via.parse(v) for v in multi.headers.values("Via")]
    assert [v.host for v in vias] == ["[2001:db8::9:1]", "192.0.2.1", "[2001:db8::9:255]"]
    assert vias[2].params["received"] == "192.0.2.200"
    for name, received in (
        ("via-received-param-no-delim", "2001:db8::9:255"),
        ("via-received-param-with-delim", "[2001:db8::9:255]"),
    ):
        assert parse_message(rfc5118(name)).top_via.params["received"] == received


def test_rfc5118_bodies_longer_than_content_length_are_cut_on_a_datagram():
    # these files carry more bytes after the body than Content-Length declares (RFC 3261 §18.3)
    msg = parse_message(rfc5118("ipv6-in-sdp"))
    assert len(msg.body) == 241
    assert msg.body.startswith(b"v=0\r\n")


def test_contact_list_values_split_at_top_level_commas_only():
    assert split_list('"a, b" <sip:x@h>, <sip:y@h;p=1,2>') == ['"a, b" <sip:x@h>', "<sip:y@h;p=1,2>"]
