"""Digest authentication: RFC 2617 §3.5 and RFC 7616 §3.9.1 worked examples, the stateless
challenger (stale nonces, nonce-count replay, bounded memory) and the client answering carriers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from signaling.sip.auth import (
    AuthOutcome,
    DigestAlgorithm,
    DigestChallenge,
    DigestChallenger,
    DigestClient,
    DigestCredentials,
    Password,
    StoredHa1,
    compute_ha1,
    digest_response,
    parse_auth_header,
)
from signaling.sip.message import Headers, Request, Response

# RFC 2617 §3.5
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, '
    'cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

# RFC 7616 §3.9.1
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"

REALM = "softswitch.example"
SECRET = b"0123456789abcdef-node-secret"
USERS = {"1001": "s3cret", "1002": "other"}


def lookup(username: str, realm: str) -> Password | None:
    assert realm == REALM
    pw = USERS.get(username)
    return Password(pw) if pw is not None else None


def register(uri: str = "sip:softswitch.example", *, auth: Sequence[tuple[str, str]] = ()) -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds"),
            ("From", "<sip:1001@softswitch.example>;tag=1928301774"),
            ("To", "<sip:1001@softswitch.example>"),
            ("Call-ID", "a84b4c76e66710"),
            ("CSeq", "1 REGISTER"),
            ("Contact", "<sip:1001@192.168.1.20:5060>"),
            *auth,
        ]
    )
    return Request("REGISTER", uri, headers)


def invite(*, auth: Sequence[tuple[str, str]] = (), body: bytes = b"") -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8"),
            ("From", "<sip:1001@softswitch.example>;tag=9fxced76sl"),
            ("To", "<sip:4420712345@softswitch.example>"),
            ("Call-ID", "3848276298220188511"),
            ("CSeq", "2 INVITE"),
            *auth,
        ]
    )
    return Request("INVITE", "sip:4420712345@softswitch.example", headers, body)


def challenger(**kw) -> DigestChallenger:
    return DigestChallenger(REALM, SECRET, lookup, **kw)


def client_answer(
    challenge: Response, request: Request, username: str = "1001", pw: str | None = None
) -> Request:
    """The request re-sent with credentials answering ``challenge``."""
    client = DigestClient(username, USERS["1001"] if pw is None else pw)
    creds = client.answer(challenge, request.method, request.uri, request.body)
    assert creds is not None
    headers = request.headers.copy()
    for name, value in creds:
        headers.add(name, value)
    return Request(request.method, request.uri, headers, request.body)


# ------------------------------------------------------------------ RFC worked examples


def test_rfc2617_worked_example_response():
    alg = DigestAlgorithm.MD5
    ha1 = compute_ha1(alg, "Mufasa", "testrealm@host.com", "Circle Of Life")
    got = digest_response(
        alg,
        ha1,
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert got == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_authorization_header_parses_to_its_fields():
    creds = DigestCredentials.parse(RFC2617_AUTHORIZATION)
    assert creds.username == "Mufasa"
    assert creds.realm == "testrealm@host.com"
    assert creds.uri == "/dir/index.html"
    assert (creds.qop, creds.nc, creds.cnonce) == ("auth", "00000001", "0a4f113b")
    assert creds.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert creds.algorithm is DigestAlgorithm.MD5  # absent means MD5
    assert DigestCredentials.parse(str(creds)) == creds


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_client_reproduces_the_example_authorization(algorithm, expected):
    challenge = Response(
        401,
        "Unauthorized",
        Headers(
            [
                (
                    "WWW-Authenticate",
                    f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
                    f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"',
                )
            ]
        ),
    )
    client = DigestClient("Mufasa", "Circle of Life", cnonce_factory=lambda: RFC7616_CNONCE)
    headers = client.answer(challenge, "GET", "/dir/index.html")
    assert headers is not None
    [(name, value)] = headers
    assert name == "Authorization"
    creds = DigestCredentials.parse(value)
    assert creds.response == expected
    assert (creds.qop, creds.nc, creds.cnonce, creds.opaque) == (
        "auth",
        "00000001",
        RFC7616_CNONCE,
        RFC7616_OPAQUE,
    )
    assert creds.algorithm.value == algorithm


def test_auth_header_parsing_handles_escapes_and_rejects_unbalanced_quotes():
    scheme, params = parse_auth_header('Digest realm="a\\"b", nonce=xyz , qop="auth"')
    assert scheme == "Digest"
    assert params == {"realm": 'a"b', "nonce": "xyz", "qop": "auth"}
    with pytest.raises(ValueError, match="unterminated"):
        parse_auth_header('Digest realm="open')
    with pytest.raises(ValueError, match="without value"):
        parse_auth_header("Digest realm")


# ------------------------------------------------------------------ server


def test_register_without_credentials_gets_401_with_a_digest_challenge():
    result = challenger().authenticate(register(), now=1000.0)
    assert result.outcome is AuthOutcome.CHALLENGE
    resp = result.response
    assert resp is not None
    assert resp.status == 401
    chal = DigestChallenge.parse(resp.headers.get("WWW-Authenticate") or "")
    assert chal.realm == REALM
    assert chal.qop == ("auth",)
    assert chal.algorithm is DigestAlgorithm.MD5
    assert not chal.stale
    assert resp.to.tag  # a final response outside a dialog carries a To tag


def test_invite_is_challenged_with_407_proxy_authenticate():
    resp = challenger().authenticate(invite(), now=0.0).response
    assert resp is not None
    assert resp.status == 407
    assert resp.headers.get("Proxy-Authenticate") is not None
    assert resp.headers.get("WWW-Authenticate") is None


@pytest.mark.parametrize("alg", [DigestAlgorithm.MD5, DigestAlgorithm.MD5_SESS, DigestAlgorithm.SHA256])
def test_right_password_is_accepted(alg):
    server = challenger(algorithms=(alg,))
    chal = server.authenticate(register(), 1000.0).response
    assert chal is not None
    result = server.authenticate(client_answer(chal, register()), 1001.0)
    assert result.outcome is AuthOutcome.ACCEPTED
    assert result.username == "1001"
    assert result.response is None


def test_invite_with_body_answers_proxy_challenge():
    server = challenger()
    req = invite(body=b"v=0\r\n")
    chal = server.authenticate(req, 5.0).response
    assert chal is not None
    assert server.authenticate(client_answer(chal, req), 6.0).accepted


def test_wrong_password_and_unknown_user_get_the_same_403():
    server = challenger()
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    wrong = server.authenticate(client_answer(chal, register(), pw="guess"), 1.0)
    unknown = server.authenticate(client_answer(chal, register(), username="9999"), 1.0)
    for result in (wrong, unknown):
        assert result.outcome is AuthOutcome.REJECTED
        assert result.response is not None
        assert result.response.status == 403
    assert wrong.detail == unknown.detail


def test_stored_ha1_works_and_an_md5_ha1_cannot_answer_sha256():
    ha1 = compute_ha1(DigestAlgorithm.MD5, "1001", REALM, "s3cret")
    server = DigestChallenger(REALM, SECRET, lambda u, r: StoredHa1(ha1), algorithms=(DigestAlgorithm.MD5,))
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    assert server.authenticate(client_answer(chal, register()), 1.0).accepted

    sha = DigestChallenger(REALM, SECRET, lambda u, r: StoredHa1(ha1), algorithms=(DigestAlgorithm.SHA256,))
    chal = sha.authenticate(register(), 0.0).response
    assert chal is not None
    assert sha.authenticate(client_answer(chal, register()), 1.0).outcome is AuthOutcome.REJECTED


def test_expired_nonce_with_right_password_gets_stale_true():
    server = challenger(nonce_ttl=300.0)
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    req = client_answer(chal, register())
    assert server.authenticate(req, 299.0).accepted
    late = server.authenticate(client_answer(chal, register()), 301.0)
    assert late.outcome is AuthOutcome.STALE
    assert late.response is not None
    fresh = DigestChallenge.parse(late.response.headers.get("WWW-Authenticate") or "")
    assert fresh.stale
    assert fresh.nonce != DigestChallenge.parse(chal.headers.get("WWW-Authenticate") or "").nonce
    # the same expired nonce with a wrong password is a failed login, not stale
    bad = server.authenticate(client_answer(chal, register(), pw="guess"), 301.0)
    assert bad.outcome is AuthOutcome.REJECTED


def test_replayed_nonce_count_is_refused_as_stale():
    server = challenger()
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    req = client_answer(chal, register())
    assert server.authenticate(req, 1.0).accepted
    replay = server.authenticate(req, 2.0)
    assert replay.outcome is AuthOutcome.STALE
    assert replay.detail == "nonce-count replayed"


def test_client_counts_nc_upwards_and_each_count_is_accepted_once():
    server = challenger()
    client = DigestClient("1001", "s3cret")
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    first = client.answer(chal, "REGISTER", "sip:softswitch.example")
    assert first is not None
    second = client.preauthorize("REGISTER", "sip:softswitch.example")
    third = client.preauthorize("REGISTER", "sip:softswitch.example")
    ncs = [DigestCredentials.parse(h[0][1]).nc for h in (first, second, third)]
    assert ncs == ["00000001", "00000002", "00000003"]
    for creds, now in ((first, 1.0), (third, 2.0)):
        assert server.authenticate(register(auth=creds), now).accepted
    # nc=2 arrives after nc=3: not above the last count seen
    assert server.authenticate(register(auth=second), 3.0).outcome is AuthOutcome.STALE


def test_nonce_count_memory_is_bounded_and_forgotten_nonces_cannot_be_replayed():
    server = challenger(nc_capacity=4)
    requests = []
    for i in range(10):
        chal = server.authenticate(register(), float(i)).response
        assert chal is not None
        req = client_answer(chal, register())
        assert server.authenticate(req, i + 0.5).accepted
        requests.append(req)
    assert server.tracked_nonces == 4
    # the oldest were evicted; replaying them must not be taken as a first use
    assert server.authenticate(requests[0], 20.0).outcome is AuthOutcome.STALE
    assert server.authenticate(requests[9], 20.0).outcome is AuthOutcome.STALE
    server.forget_expired(1000.0)
    assert server.tracked_nonces == 0


def test_nonce_from_another_secret_or_forged_is_rechallenged_not_rejected():
    other = DigestChallenger(REALM, b"another-node-secret-0000", lookup)
    chal = other.authenticate(register(), 0.0).response
    assert chal is not None
    result = challenger().authenticate(client_answer(chal, register()), 1.0)
    assert result.outcome is AuthOutcome.CHALLENGE
    assert result.detail == "foreign nonce"


def test_nonce_is_checked_by_any_node_sharing_the_secret():
    chal = challenger().authenticate(register(), 0.0).response
    assert chal is not None
    assert challenger().authenticate(client_answer(chal, register()), 1.0).accepted


def test_digest_uri_must_match_request_uri():
    server = challenger()
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    req = client_answer(chal, register())
    moved = Request("REGISTER", "sip:elsewhere.example", req.headers, req.body)
    result = server.authenticate(moved, 1.0)
    assert result.outcome is AuthOutcome.BAD_REQUEST
    assert result.response is not None
    assert result.response.status == 400


def test_malformed_credentials_get_400():
    auth = [
        ("Authorization", f'Digest username="1001", realm="{REALM}", nonce="x", uri="sip:softswitch.example"')
    ]
    result = challenger().authenticate(register(auth=auth), 0.0)
    assert result.outcome is AuthOutcome.BAD_REQUEST
    assert "response" in result.detail


def test_unknown_scheme_rfc4475_regaut01_is_challenged():
    auth = [("Authorization", "NoOneKnowsThisScheme opaque-data=here")]
    result = challenger().authenticate(register(auth=auth), 0.0)
    assert result.outcome is AuthOutcome.CHALLENGE
    assert result.response is not None
    assert result.response.status == 401


def test_credentials_for_another_realm_are_ignored():
    server = challenger()
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    req = client_answer(chal, register())
    value = (req.headers.get("Authorization") or "").replace(REALM, "upstream.example")
    result = server.authenticate(register(auth=[("Authorization", value)]), 1.0)
    assert result.outcome is AuthOutcome.CHALLENGE


def test_legacy_no_qop_client_accepted_only_when_allowed():
    for allow in (True, False):
        server = challenger(allow_legacy=allow)
        chal = server.authenticate(register(), 0.0).response
        assert chal is not None
        nonce = DigestChallenge.parse(chal.headers.get("WWW-Authenticate") or "").nonce
        ha1 = compute_ha1(DigestAlgorithm.MD5, "1001", REALM, "s3cret")
        resp = digest_response(
            DigestAlgorithm.MD5, ha1, method="REGISTER", uri="sip:softswitch.example", nonce=nonce
        )
        creds = DigestCredentials("1001", REALM, nonce, "sip:softswitch.example", resp)
        result = server.authenticate(register(auth=[("Authorization", str(creds))]), 1.0)
        assert result.accepted is allow


def test_client_answers_a_no_qop_challenge_in_rfc2069_form():
    challenge = Response(401, "Unauthorized", Headers([("WWW-Authenticate", 'Digest realm="r", nonce="n"')]))
    headers = DigestClient("u", "p").answer(challenge, "REGISTER", "sip:r")
    assert headers is not None
    creds = DigestCredentials.parse(headers[0][1])
    assert creds.qop is None
    assert creds.nc is None
    ha1 = compute_ha1(DigestAlgorithm.MD5, "u", "r", "p")
    assert creds.response == digest_response(
        DigestAlgorithm.MD5, ha1, method="REGISTER", uri="sip:r", nonce="n"
    )


def test_sha256_offered_first_is_chosen_by_the_client_and_accepted():
    server = challenger(algorithms=(DigestAlgorithm.SHA256, DigestAlgorithm.MD5))
    chal = server.authenticate(register(), 0.0).response
    assert chal is not None
    offered = [DigestChallenge.parse(v).algorithm for v in chal.headers.get_all("WWW-Authenticate")]
    assert offered == [DigestAlgorithm.SHA256, DigestAlgorithm.MD5]
    req = client_answer(chal, register())
    assert DigestCredentials.parse(req.headers.get("Authorization") or "").algorithm is DigestAlgorithm.SHA256
    assert server.authenticate(req, 1.0).accepted


def test_client_gives_up_when_challenged_again_without_stale():
    server = challenger()
    client = DigestClient("1001", "wrong-password")
    first = server.authenticate(register(), 0.0).response
    assert first is not None
    creds = client.answer(first, "REGISTER", "sip:softswitch.example")
    assert creds is not None
    sent = register(auth=creds)
    # a fresh non-stale challenge to a request that carried our credentials: do not loop
    again = server.challenge(sent, 1.0)
    assert client.answer(again, "REGISTER", "sip:softswitch.example", previous=sent) is None
    # but a stale challenge is answered
    stale = server.challenge(sent, 1.0, stale=True)
    assert client.answer(stale, "REGISTER", "sip:softswitch.example", previous=sent) is not None


def test_client_ignores_challenges_for_other_realms_and_non_challenges():
    challenge = Response(
        407, "", Headers([("Proxy-Authenticate", 'Digest realm="carrier-b", nonce="n", qop="auth"')])
    )
    assert DigestClient("u", "p", realm="carrier-a").answer(challenge, "INVITE", "sip:x@y") is None
    headers = DigestClient("u", "p", realm="carrier-b").answer(challenge, "INVITE", "sip:x@y")
    assert headers is not None
    assert headers[0][0] == "Proxy-Authorization"
    assert DigestClient("u", "p").answer(Response(403, "Forbidden"), "INVITE", "sip:x@y") is None


def test_challenger_rejects_weak_configuration():
    with pytest.raises(ValueError, match="16 bytes"):
        DigestChallenger(REALM, b"short", lookup)
    with pytest.raises(ValueError, match="algorithm"):
        DigestAlgorithm.parse("SHA-512-256")


def test_nonce_issued_in_the_future_beyond_clock_skew_is_stale():
    issuer = challenger()
    chal = issuer.authenticate(register(), 100.0).response  # a node whose clock runs 100 s ahead
    assert chal is not None
    req = client_answer(chal, register())
    assert challenger().authenticate(req, 99.5).accepted  # within the 1-s skew allowance
    assert challenger().authenticate(req, 50.0).outcome is AuthOutcome.STALE
