"""Property tests: noise and mutated torture messages never raise anything but SipParseError; every
message the parser accepts survives serialise → parse; generated valid messages round-trip, folded
or not."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.sip.message import Headers, Request, Response, serialize
from signaling.sip.parser import SipParseError, StreamFramer, parse_message
from signaling.sip.validate import error_response, validate_request
from tests.sip.torture import all_messages

CORPUS = all_messages()

#: Fragments that matter to a SIP parser, for insertion at random places.
INTERESTING = [
    b"\r\n",
    b"\r",
    b"\n",
    b"\r\n ",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b'"',
    b"\\",
    b"@",
    b"[",
    b"]",
    b"%",
    b"%00",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\xa9",
    b"0",
    b"9" * 12,
    b"-1",
    b"SIP/2.0",
    b"sip:",
    b";tag=",
    b"Content-Length: 10\r\n",
    b"l: 99999999999\r\n",
    b"v: SIP/2.0/UDP [::1]:5060;branch=z9hG4bKx\r\n",
    b"Via: SIP/2.0/TCP h;received=::1\r\n",
    b'To: "x\r\n',
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif kind == "truncate":
            del data[pos:]
        else:
            end = data.find(b"\n", pos)
            if end >= 0:
                data[pos:pos] = data[pos : end + 1]
    return bytes(data)


def _meaning(msg: Request | Response) -> tuple[object, ...]:
    head = (msg.method, msg.uri) if isinstance(msg, Request) else (msg.status, msg.reason)
    headers = [(k, v) for k, v in msg.headers if k != "Content-Length"]
    return head, headers, msg.body


def check_one(data: bytes, *, stream: bool) -> None:
    """The whole contract for one input: parse or SipParseError; what parses round-trips and
    can be validated; what fails can be answered (or not) without raising."""
    try:
        msg = parse_message(data, stream=stream)
    except SipParseError as err:
        assert 400 <= err.status <= 599
        if err.is_response:
            assert err.request is None
        answer = error_response(err, to_tag="fz")
        if answer is not None:
            serialize(answer)
        return
    # the headers the stack relies on are readable once parsing succeeded
    assert msg.top_via is not None
    assert msg.cseq.number >= 0
    assert msg.from_ is not None and msg.to is not None
    wire = serialize(msg)
    again = parse_message(wire, stream=True)
    assert _meaning(again) == _meaning(msg)
    assert serialize(again) == wire
    if isinstance(msg, Request):
        answer = validate_request(msg)
        if answer is not None:
            serialize(answer)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1500), st.booleans())
def test_random_bytes_raise_nothing_but_sip_parse_error(data, stream):
    check_one(data, stream=stream)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(CORPUS).map(lambda d: d[: len(d) // 2]) | st.binary(max_size=40), st.binary(max_size=200)
)
def test_message_like_prefixes_with_random_tails(prefix, tail):
    check_one(prefix + tail, stream=False)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_torture_messages_raise_nothing_but_sip_parse_error(data, stream):
    check_one(data, stream=stream)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=4), st.data())
def test_stream_framer_survives_mutated_streams_in_random_reads(messages, data):
    stream = b"".join(messages)
    framer = StreamFramer(max_size=4096)
    pos = 0
    while pos < len(stream):
        step = data.draw(st.integers(1, 700))
        try:
            frames = framer.feed(stream[pos : pos + step])
        except SipParseError:
            break
        for frame in frames:
            assert len(frame) <= 4096
            check_one(frame, stream=True)
        if framer.error is not None:
            break
        pos += step


# --- generated valid messages ------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TOKEN = st.text(_ALNUM + "-.!%*_+`'~", min_size=1, max_size=12)
_WORD = st.text(_ALNUM + "-.!%*_+`'~()<>:\\\"/[]?{}", min_size=1, max_size=16)
_LABEL = st.text(_ALNUM, min_size=1, max_size=10)
_HOST = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=3).map(lambda ls: ".".join(["h" + ls[0], *ls[1:]])),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["[::1]", "[2001:db8::10]", "[::ffff:192.0.2.1]"]),
)
_PORT = st.none() | st.integers(1, 65535)
_USER = st.text(_ALNUM + "-_.!~*'()&=+$,;?/", min_size=1, max_size=12)
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30).map(
    lambda s: s.strip(" \t")
)
_QUOTED = st.lists(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='"\\')
    | st.sampled_from(['\\"', "\\\\"]),
    max_size=12,
).map(lambda chars: '"' + "".join(chars) + '"')
_CALL_ID = st.tuples(_WORD, st.none() | _WORD).map(lambda t: t[0] if t[1] is None else f"{t[0]}@{t[1]}")


def _hostport(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@st.composite
def name_addr(draw: st.DrawFn, tag: bool) -> str:
    uri = f"sip:{draw(_USER)}@{_hostport(draw(_HOST), draw(_PORT))}"
    display = draw(st.none() | _QUOTED | st.lists(_TOKEN, min_size=1, max_size=3).map(" ".join))
    params = f";tag={draw(_TOKEN)}" if tag else ""
    return f"{display} <{uri}>{params}" if display is not None else f"<{uri}>{params}"


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "INFO"]) | _TOKEN)
    items = [
        (
            "Via",
            f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {_hostport(draw(_HOST), draw(_PORT))}"
            f";branch=z9hG4bK{draw(_TOKEN)}",
        ),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
        ("From", draw(name_addr(tag=True))),
        ("To", draw(name_addr(tag=False))),
        ("Call-ID", draw(_CALL_ID)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
    ]
    for _ in range(draw(st.integers(0, 4))):
        items.insert(draw(st.integers(0, len(items))), ("X-" + draw(_TOKEN), draw(_TEXT)))
    body = draw(st.binary(max_size=300))
    if body:
        items.append(("Content-Type", "application/sdp"))
    uri = f"sip:{draw(_USER)}@{_hostport(draw(_HOST), draw(_PORT))}"
    return Request(method, uri, Headers(items), body)


@settings(max_examples=400, deadline=None)
@given(requests())
def test_generated_requests_round_trip(req):
    wire = serialize(req)
    parsed = parse_message(wire)
    assert isinstance(parsed, Request)
    assert (parsed.method, parsed.uri, parsed.body) == (req.method, req.uri, req.body)
    assert list(parsed.headers)[:-1] == list(req.headers)
    assert list(parsed.headers)[-1] == ("Content-Length", str(len(req.body)))
    assert parse_message(wire, stream=True) == parsed
    assert StreamFramer().feed(wire + wire) == [wire, wire]


@settings(max_examples=300, deadline=None)
@given(requests(), st.data())
def test_folding_at_white_space_does_not_change_a_value(req, data):
    wire = serialize(req)
    head, _, body = wire.partition(b"\r\n\r\n")
    start, _, headers = head.partition(b"\r\n")
    lines = headers.split(b"\r\n")
    folded = []
    for line in lines:
        name, _, value = line.partition(b": ")
        if b" " in value and data.draw(st.booleans()):
            # LWS is worth one SP: a fold (CRLF + white space) in place of a space changes nothing
            words = value.split(b" ")
            cut = data.draw(st.integers(1, len(words) - 1))
            indent = data.draw(st.sampled_from([b" ", b"\t", b"   "]))
            value = b" ".join(words[:cut]) + b"\r\n" + indent + b" ".join(words[cut:])
        folded.append(name + b": " + value)
    refolded = start + b"\r\n" + b"\r\n".join(folded) + b"\r\n\r\n" + body
    parsed = parse_message(refolded)
    plain = parse_message(wire)
    if any(b"  " in line or line.endswith(b" ") for line in lines):
        # a run of spaces that was cut reads as one space; compare by words instead
        assert [(k, v.split()) for k, v in parsed.headers] == [(k, v.split()) for k, v in plain.headers]
    else:
        assert parsed == plain


@settings(max_examples=200, deadline=None)
@given(
    st.integers(100, 699),
    _TEXT,
    st.lists(st.tuples(_TOKEN, _TEXT), max_size=3),
)
def test_generated_responses_round_trip(status, reason, extra):
    base = [
        ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
        ("From", "<sip:a@example.com>;tag=1"),
        ("To", "<sip:b@example.com>;tag=2"),
        ("Call-ID", "c@h"),
        ("CSeq", "1 INVITE"),
    ]
    headers = Headers(base + [("X-" + n, v) for n, v in extra])
    resp = Response(status, reason, headers)
    parsed = parse_message(serialize(resp))
    assert isinstance(parsed, Response)
    assert (parsed.status, parsed.reason) == (status, reason)
    assert list(parsed.headers)[:-1] == list(resp.headers)
