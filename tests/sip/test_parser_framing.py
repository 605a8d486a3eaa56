"""Framing: Content-Length on datagrams and streams (RFC 3261 §18.3), the stream framer, size
limits and their answer codes, keep-alives, line endings, NULs and bytes that are not UTF-8."""

from __future__ import annotations

import pytest

from signaling.sip.message import Request, Response, serialize
from signaling.sip.parser import (
    ParseLimits,
    SipParseError,
    StreamFramer,
    is_keepalive,
    parse_message,
)
from signaling.sip.validate import error_response
from tests.sip.torture import rfc4475

HEAD = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 OPTIONS\r\n"
)


def options(body: bytes = b"", length: int | None = None, extra: bytes = b"") -> bytes:
    cl = b"" if length is None else b"Content-Length: %d\r\n" % length
    ctype = b"Content-Type: text/plain\r\n" if body else b""
    return HEAD + extra + ctype + cl + b"\r\n" + body


def refused(data: bytes, **kwargs: object) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data, **kwargs)  # type: ignore[arg-type]
    return info.value


# --- datagrams -----------------------------------------------------------------------------------


def test_bytes_after_the_declared_body_are_dropped_on_a_datagram():
    msg = parse_message(options(b"hello world", length=5))
    assert msg.body == b"hello"


def test_dblreq_second_request_in_the_datagram_is_ignored():
    msg = parse_message(rfc4475("dblreq"))
    assert isinstance(msg, Request)
    assert (msg.method, msg.body) == ("REGISTER", b"")


def test_body_shorter_than_content_length_is_400_with_the_request_to_answer():
    err = refused(options(b"hi", length=10))
    assert err.status == 400
    assert err.request is not None and err.request.method == "OPTIONS"
    answer = error_response(err, to_tag="t1")
    assert answer is not None
    assert answer.status == 400
    assert answer.headers.get("Call-ID") == "a84b4c76e66710@pc33.example.com"
    assert answer.to.tag == "t1"


def test_missing_content_length_on_a_datagram_means_the_rest_of_it():
    assert parse_message(options(b"whole rest")).body == b"whole rest"


def test_response_with_short_body_is_dropped():
    data = b"SIP/2.0 200 OK\r\n" + HEAD.split(b"\r\n", 1)[1] + b"Content-Length: 50\r\n\r\nshort"
    err = refused(data)
    assert err.is_response
    assert error_response(err) is None


def test_stream_frames_need_an_exact_content_length():
    assert parse_message(options(b"abc", length=3), stream=True).body == b"abc"
    assert refused(options(b"abc"), stream=True).status == 400
    assert refused(options(b"abcdef", length=3), stream=True).status == 400


@pytest.mark.parametrize("value", [b"-1", b"1e3", b"0x10", b"", b"\xd9\xa1"])
def test_bad_content_length_is_400(value):
    data = HEAD + b"Content-Length: " + value + b"\r\n\r\n"
    assert refused(data).status == 400


def test_huge_content_length_is_refused_without_big_number_work():
    assert refused(options(b"x", length=10**30)).status == 400
    data = HEAD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n"
    assert refused(data).status == 400


def test_ack_is_never_answered():
    data = options(b"hi", length=10).replace(b"OPTIONS", b"ACK")
    err = refused(data)
    assert err.request is not None and err.request.method == "ACK"
    assert error_response(err) is None


# --- limits --------------------------------------------------------------------------------------


def test_limits_have_their_own_answer_codes():
    small = ParseLimits(max_message_bytes=2000, max_header_bytes=600, max_body_bytes=100, max_uri_length=40)
    assert refused(options(b"x" * 3000, length=3000), limits=small).status == 513
    assert refused(options(extra=b"X-Pad: " + b"p" * 700 + b"\r\n"), limits=small).status == 513
    assert refused(options(b"x" * 200, length=200), limits=small).status == 413
    long_uri = options().replace(b"sip:bob@example.com SIP", b"sip:" + b"b" * 60 + b"@example.com SIP")
    err = refused(long_uri, limits=small)
    assert err.status == 414
    assert err.request is not None
    assert parse_message(options(b"x" * 100, length=100), limits=small).body == b"x" * 100


# --- start line, lines, bytes ------------------------------------------------------------------


def test_leading_crlf_before_the_start_line_is_ignored():
    assert isinstance(parse_message(b"\r\n\r\n" + options()), Request)


def test_lf_only_line_endings_are_accepted():
    msg = parse_message(options(b"body", length=4).replace(b"\r\n", b"\n"))
    assert isinstance(msg, Request)
    assert msg.body == b"body"
    assert msg.headers.get("Call-ID") == "a84b4c76e66710@pc33.example.com"


def test_a_cr_without_lf_in_the_headers_is_400():
    err = refused(options(extra=b"Subject: a\rb\r\n"))
    assert err.status == 400
    assert "CR" in err.reason


def test_header_line_without_colon_is_400_with_the_other_headers_kept():
    err = refused(options(extra=b"Subject no colon\r\n"))
    assert err.status == 400
    assert err.request is not None
    assert err.request.headers.get("CSeq") == "314159 OPTIONS"


def test_datagram_missing_the_final_empty_line_has_no_body():
    msg = parse_message(HEAD)
    assert isinstance(msg, Request)
    assert msg.body == b""
    assert refused(HEAD + b"Subject: cut in the mid").status == 400


def test_non_utf8_bytes_and_nuls_survive_a_round_trip():
    extra = b"Subject: caf\xe9 \xff\x00 end\r\nX-Utf8: caf\xc3\xa9\r\n"
    data = options(extra=extra, length=0)
    msg = parse_message(data)
    assert msg.headers.get("Subject") == "caf\udce9 \udcff\x00 end"
    assert msg.headers.get("X-Utf8") == "caf\u00e9"
    assert b"Subject: caf\xe9 \xff\x00 end\r\n" in serialize(msg)
    assert parse_message(serialize(msg)) == msg


def test_nul_in_a_header_name_is_400():
    assert refused(options(extra=b"Sub\x00ject: x\r\n")).status == 400


def test_folded_header_values_read_as_one_line():
    msg = parse_message(options(extra=b"Subject: one\r\n two \r\n\tthree\r\n"))
    assert msg.headers.get("Subject") == "one two three"


def test_continuation_line_before_any_header_is_400():
    data = HEAD.replace(b"\r\n", b"\r\n  folded start\r\n", 1) + b"\r\n"
    assert refused(data).status == 400


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"OPTIONS sip:bob@example.com SIP/3.0", 505),
        (b"OPTIONS sip:bob@example.com HTTP/1.1", 400),
        (b"OPTIONS  sip:bob@example.com SIP/2.0", 400),
        (b"OPTIONS\tsip:bob@example.com SIP/2.0", 400),
        (b"OPT<IONS sip:bob@example.com SIP/2.0", 400),
        (b"OPTIONS sip:bob@[::1 SIP/2.0", 400),
        (b"OPTIONS sip:bob@example.com?Subject=x SIP/2.0", 400),
    ],
)
def test_request_line_problems(line, status):
    data = line + b"\r\n" + HEAD.split(b"\r\n", 1)[1] + b"\r\n"
    assert refused(data).status == status


def test_lower_case_version_is_read_as_sip_2_0():
    msg = parse_message(options().replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1))
    assert isinstance(msg, Request)
    assert msg.version == "SIP/2.0"


def test_status_line_problems_drop_the_response():
    tail = HEAD.split(b"\r\n", 1)[1] + b"\r\n"
    for line in (b"SIP/2.0 99 Low", b"SIP/2.0 700 High", b"SIP/2.0 2OO OK", b"SIP/3.0 200 OK"):
        err = refused(line + b"\r\n" + tail)
        assert err.is_response
    ok = parse_message(b"SIP/2.0 180\r\n" + tail)
    assert isinstance(ok, Response)
    assert (ok.status, ok.reason) == (180, "")


def test_empty_and_keepalive_datagrams():
    assert is_keepalive(b"\r\n\r\n")
    assert is_keepalive(b"\r\n")
    assert not is_keepalive(b"")
    assert not is_keepalive(options())
    err = refused(b"\r\n\r\n")
    assert err.request is None
    assert refused(b"").status == 400


def test_junk_datagram_is_not_answered():
    err = refused(b"HELLO")
    assert error_response(err) is None


def test_max_forwards_above_255_is_400():
    assert refused(options().replace(b"Max-Forwards: 70", b"Max-Forwards: 256")).status == 400


# --- the stream framer ---------------------------------------------------------------------------


def test_framer_cuts_both_requests_of_dblreq_then_fails_on_the_junk_after_them():
    # the file was made for UDP: its INVITE body is 5 bytes longer than Content-Length says, and
    # on a stream those 5 bytes ("C" CRLF CRLF) are the start of a third, unframeable message
    framer = StreamFramer()
    frames = framer.feed(rfc4475("dblreq"))
    assert len(frames) == 2
    first, second = (parse_message(f, stream=True) for f in frames)
    assert isinstance(first, Request) and isinstance(second, Request)
    assert (first.method, second.method, len(second.body)) == ("REGISTER", "INVITE", 150)
    assert framer.error is not None and framer.error.status == 400
    with pytest.raises(SipParseError):
        framer.feed(b"")


def test_framer_gives_the_same_messages_whatever_the_reads():
    stream = b"".join(options(b"%d" % i * i, length=len(b"%d" % i * i)) for i in range(1, 6))
    whole = StreamFramer().feed(stream)
    assert len(whole) == 5
    framer = StreamFramer()
    pieces: list[bytes] = []
    for i in range(len(stream)):
        pieces += framer.feed(stream[i : i + 1])
    assert pieces == whole
    assert [parse_message(p, stream=True).body for p in pieces] == [b"1", b"22", b"333", b"4444", b"55555"]


def test_framer_counts_crlf_keepalive_pings_even_split_across_reads():
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == []
    assert framer.keepalives == 1
    framer.feed(b"\r\n")
    framer.feed(b"\r\n")
    assert framer.keepalives == 2
    frames = framer.feed(options(length=0))
    assert len(frames) == 1
    assert framer.keepalives == 2


def test_framer_without_content_length_fails_for_good():
    framer = StreamFramer()
    with pytest.raises(SipParseError) as info:
        framer.feed(options(b"abc"))
    assert info.value.status == 400
    assert info.value.request is not None
    assert framer.error is info.value
    with pytest.raises(SipParseError):
        framer.feed(options(length=0))


def test_framer_refuses_two_content_lengths():
    with pytest.raises(SipParseError) as info:
        StreamFramer().feed(rfc4475("mcl01"))
    assert info.value.status == 400


def test_framer_enforces_its_size_limit():
    framer = StreamFramer(max_size=1000)
    with pytest.raises(SipParseError) as info:
        framer.feed(HEAD + b"X-Pad: " + b"p" * 2000)
    assert info.value.status == 513
    with pytest.raises(SipParseError) as info:
        StreamFramer(max_size=1000).feed(options(length=5000))
    assert info.value.status == 513
    # a message right at the limit passes
    exact = options(b"x", length=1)
    assert StreamFramer(max_size=len(exact)).feed(exact) == [exact]


def test_framer_waits_for_the_body():
    framer = StreamFramer()
    data = options(b"0123456789", length=10)
    assert framer.feed(data[:-4]) == []
    assert framer.buffered == len(data) - 4
    assert framer.feed(data[-4:]) == [data]
