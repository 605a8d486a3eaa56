"""The cached header-value parsers give what the full parsers give.

From/To and Via values the node sees for the first time are parsed as a cached beginning plus
their last ``;tag=`` / ``;branch=`` parameter (signaling/sip/message.py). Whatever the text —
the values of real traffic, the RFC 4475 torture messages' values, generated text built around
those parameters — the result equals ``NameAddr.parse`` / ``Via.parse`` of the same text, and a
value the full parser refuses is refused with the same message.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.sip.message import NameAddr, Via, cached_name_addr, cached_via
from tests.sip.torture import all_messages


def outcome(parse: Callable[[str], object], text: str) -> tuple[str, object]:
    try:
        return "ok", parse(text)
    except ValueError as exc:
        return "error", str(exc)


def same(cached: Callable[[str], object], full: Callable[[str], object], text: str) -> None:
    assert outcome(cached, text) == outcome(full, text), text


REAL = [
    "sipp <sip:sipp@127.0.0.1:5480>;tag=9SIPpTag001",
    "<sip:1001@127.0.0.1>;tag=80ba034746aa1146",
    "sip:a@b;tag=x",
    "<sip:a@b>;foo;tag=x",
    '"a;tag=b" <sip:x@y>',
    '"Bob" <sips:bob@biloxi.example.com>;tag=a6c85cf',
    "<sip:a@b>;tag=x;tag=y",
    "<sip:a@b>;tag=",
    "<sip:a@b>;;tag=x",
    ";tag=x",
    "<sip:a@b> ;tag=x",
    "<sip:a@b;tag=x>",
    "sip:a@b ;tag=x",
    "<sip:a@b>;tag=x y",
    '<sip:a@b>;tag="x"',
]

VIAS = [
    "SIP/2.0/UDP 127.0.0.1:5480;branch=z9hG4bK-9-1-0",
    "SIP/2.0/UDP 127.0.0.1:55235;rport;branch=z9hG4bK949eb40c5d467b94ecc0",
    "SIP/2.0/UDP h;branch=a;branch=b",
    "SIP/2.0/UDP h;received=1.2.3.4;branch=z9",
    "SIP/2.0/UDP h;received=bad host;branch=z9",
    "SIP/2.0/UDP h;branch=",
    "SIP/2.0/UDP h:99999;branch=z9hG4bKx",
    "SIP/2.0/UDP [::1]:5060;branch=z9hG4bKx",
    "SIP/2.0/UDP h;ttl=300;branch=z9hG4bKx",
    ";branch=z9hG4bKx",
    "SIP/2.0/UDP h ;branch=z9hG4bKx",
]


@pytest.mark.parametrize("text", REAL)
def test_name_addr_values_parse_as_the_full_parser_says(text: str) -> None:
    same(cached_name_addr, NameAddr.parse, text)


@pytest.mark.parametrize("text", VIAS)
def test_via_values_parse_as_the_full_parser_says(text: str) -> None:
    same(cached_via, Via.parse, text)


def test_torture_messages_values_parse_as_the_full_parser_says() -> None:
    """Every From, To, Contact and Via value of the RFC 4475 corpus (RFC 5118 included)."""
    checked = 0
    for data in all_messages():
        text = data.decode("utf-8", "surrogateescape")
        for line in text.split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon:
                continue
            name = name.strip().lower()
            if name in ("from", "f", "to", "t", "contact", "m"):
                same(cached_name_addr, NameAddr.parse, value.strip())
                checked += 1
            elif name in ("via", "v"):
                for item in value.split(","):
                    same(cached_via, Via.parse, item.strip())
                    checked += 1
    assert checked > 100


PIECES = st.sampled_from(
    [
        "<sip:a@b>",
        "sip:a@b",
        '"x;tag=y"',
        " ",
        ";",
        ";tag=",
        ";branch=",
        "SIP/2.0/UDP h",
        ":5060",
        "z9hG4bK",
        "abc",
        "=",
        '"',
        "<",
        ">",
        ";lr",
        ";rport",
        ";received=1.2.3.4",
        "\t",
        "%41",
        ",",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=8))
def test_generated_values_parse_as_the_full_parser_says(pieces: list[str]) -> None:
    text = "".join(pieces)
    same(cached_name_addr, NameAddr.parse, text)
    same(cached_via, Via.parse, text)
