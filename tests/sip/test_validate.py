"""UAS request checks (RFC 3261 §8.2) against the RFC 4475 §3.3 application-layer messages."""

from __future__ import annotations

import pytest

from signaling.sip.message import NameAddr, Request, SipUri
from signaling.sip.parser import SipParseError, parse_message
from signaling.sip.registrar import Registrar
from signaling.sip.validate import UasPolicy, error_response, validate_request
from tests.sip.torture import rfc4475


def request(name: str) -> Request:
    msg = parse_message(rfc4475(name))
    assert isinstance(msg, Request)
    return msg


def refused(name: str) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(rfc4475(name))
    return info.value


@pytest.mark.parametrize("name", ["insuf", "multi01", "mcl01"])
def test_missing_or_repeated_single_headers_get_400_from_both_layers(name):
    err = refused(name)
    answer = error_response(err, to_tag="uas1")
    assert answer is not None and answer.status == 400
    assert err.request is not None
    again = validate_request(err.request)
    assert again is not None and again.status == 400


def test_insuf_400_copies_what_there_is():
    answer = error_response(refused("insuf"))
    assert answer is not None
    assert answer.headers.get("Via") == "SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf"
    assert answer.headers.get("CSeq") == "193942 INVITE"
    assert answer.headers.get("Call-ID") is None


@pytest.mark.parametrize("name", ["unkscm", "novelsc"])
def test_request_uri_scheme_we_do_not_serve_gets_416(name):
    answer = validate_request(request(name), to_tag="uas1")
    assert answer is not None and answer.status == 416
    assert answer.to.tag == "uas1"


def test_tel_request_uri_is_served():
    req = request("lwsdisp")
    req.uri = "tel:+14085551212"
    assert validate_request(req) is None


def test_unknown_require_gets_420_listing_the_tags_and_proxy_require_is_not_ours():
    answer = validate_request(request("bext01"))
    assert answer is not None and answer.status == 420
    assert answer.headers.get("Unsupported") == "nothingSupportsThis, nothingSupportsThisEither"
    supporting = UasPolicy(
        supported_extensions=frozenset({"nothingsupportsthis", "NothingSupportsThisEither"})
    )
    assert validate_request(request("bext01"), supporting) is None


def test_require_is_ignored_on_cancel():
    req = request("bext01")
    req.method = "CANCEL"
    req.headers.set("CSeq", "8 CANCEL")
    assert validate_request(req) is None


def test_unknown_content_type_gets_415_with_accept():
    answer = validate_request(request("invut"))
    assert answer is not None and answer.status == 415
    assert answer.headers.get("Accept") == "application/dtmf, application/dtmf-relay, application/sdp"
    assert answer.headers.get("Accept-Encoding") == "identity"


def test_unknown_content_encoding_gets_415():
    req = request("esc01")
    assert validate_request(req) is None
    req.headers.add("Content-Encoding", "gzip")
    answer = validate_request(req)
    assert answer is not None and answer.status == 415


def test_accept_without_sdp_gets_406():
    answer = validate_request(request("sdp01"))
    assert answer is not None and answer.status == 406


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/sdp", None),
        ("application/*", None),
        ("*/*", None),
        ("text/plain, application/sdp;q=0.5", None),
        ("application/sdp;q=0", 406),
        ("text/plain", 406),
    ],
)
def test_accept_ranges(accept, status):
    req = request("sdp01")
    req.headers.set("Accept", accept)
    answer = validate_request(req)
    assert (answer.status if answer else None) == status


def test_max_forwards_zero_gets_483_when_the_request_would_be_forwarded():
    answer = validate_request(request("zeromf"))
    assert answer is not None and answer.status == 483
    # answered by this node itself (an OPTIONS ping to us): nothing to refuse
    assert validate_request(request("zeromf"), will_forward=False) is None


@pytest.mark.parametrize("name", ["esc02", "intmeth", "mpart01"])
def test_method_we_do_not_implement_gets_405_with_allow(name):
    answer = validate_request(request(name))
    assert answer is not None and answer.status == 405
    assert answer.headers.get("Allow") == "ACK, BYE, CANCEL, INFO, INVITE, OPTIONS, PRACK, REGISTER, UPDATE"


def test_policy_can_allow_message_with_multipart_bodies():
    policy = UasPolicy(
        allowed_methods=frozenset({"MESSAGE"}),
        accepted_content_types=frozenset({"multipart/mixed"}),
    )
    assert validate_request(request("mpart01"), policy) is None


@pytest.mark.parametrize(
    "name",
    [
        "wsinv",
        "esc01",
        "lwsdisp",
        "longreq",
        "semiuri",
        "transports",
        "badbranch",
        "inv2543",
        "trws",
        "baddate",
    ],
)
def test_valid_requests_pass(name):
    req = request(name)
    assert validate_request(req, will_forward=req.method != "OPTIONS") is None


def test_ack_is_never_answered():
    req = request("invut")
    req.method = "ACK"
    req.headers.set("CSeq", "235448 ACK")
    assert validate_request(req) is None


def test_regaut01_unknown_authorization_scheme_passes_to_the_authenticator_intact():
    req = request("regaut01")
    assert validate_request(req) is None
    assert req.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"


# --- REGISTER: the generic checks pass, the registrar decides -----------------------------------


def test_unksm2_passes_uas_checks_and_the_registrar_rejects_it():
    req = request("unksm2")
    assert validate_request(req) is None
    answer = Registrar().register(req, ("192.0.2.21", 5060), 0.0)
    assert answer.status >= 400


@pytest.mark.parametrize("name", ["cparam01", "cparam02", "regescrt"])
def test_registrar_accepts_contacts_keeping_their_parameters(name):
    req = request(name)
    assert validate_request(req) is None
    answer = Registrar().register(req, ("192.0.2.1", 5060), 0.0)
    assert answer.status == 200
    listed = NameAddr.parse(answer.headers.values("Contact")[0])
    uri = SipUri.parse(listed.uri)
    if name == "cparam01":
        assert "unknownparam" in listed.params and "unknownparam" not in uri.params
    elif name == "cparam02":
        assert "unknownparam" in uri.params
    else:
        assert uri.headers == "Route=%3Csip:sip.example.com%3E"
