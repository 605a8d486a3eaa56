"""Caller identity toward carriers: the reference's behaviours 47-57 (PAI, PPI, Privacy, extra
headers, caller source, caller number pool)."""

from __future__ import annotations

import random

import pytest

from signaling.sip.identity import CallerPool, IdentityPolicy, caller_number, identity_headers
from signaling.sip.message import Headers, Request


def invite(*extra: tuple[str, str], from_value: str = "<sip:111@10.0.0.1>;tag=1") -> Request:
    h = Headers([("From", from_value), ("To", "<sip:222@x>"), ("Call-ID", "c"), ("CSeq", "1 INVITE")])
    for name, value in extra:
        h.add(name, value)
    return Request("INVITE", "sip:222@x", h)


def names(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n, v in headers:
        out.setdefault(n, []).append(v)
    return out


def test_47_pai_none_sends_no_pai() -> None:
    h = names(identity_headers(invite(), "1712345678", "sw", IdentityPolicy(pai="none")))
    assert "P-Asserted-Identity" not in h


def test_48_pai_caller_carries_the_rewritten_caller() -> None:
    h = names(identity_headers(invite(), "+8801712345678", "sw", IdentityPolicy(pai="caller")))
    assert h["P-Asserted-Identity"] == ["<sip:+8801712345678@sw>"]


def test_49_50_pai_pass_through_copies_or_omits() -> None:
    policy = IdentityPolicy(pai="passthrough")
    with_pai = invite(("P-Asserted-Identity", "<sip:123@x>"))
    assert names(identity_headers(with_pai, "9", "sw", policy))["P-Asserted-Identity"] == ["<sip:123@x>"]
    assert "P-Asserted-Identity" not in names(identity_headers(invite(), "9", "sw", policy))


def test_51_privacy_id_keeps_pai() -> None:
    h = names(identity_headers(invite(), "9", "sw", IdentityPolicy(pai="caller", privacy="id")))
    assert h["Privacy"] == ["id"] and "P-Asserted-Identity" in h


@pytest.mark.parametrize(
    ("mode", "support", "expected"),
    [("passthrough", True, ["id"]), ("passthrough", False, None), ("none", True, None)],
)
def test_52_privacy_passthrough_needs_support_privacy(
    mode: str, support: bool, expected: list[str] | None
) -> None:
    policy = IdentityPolicy(privacy=mode)
    h = names(identity_headers(invite(("Privacy", "id")), "9", "sw", policy, support_privacy=support))
    assert h.get("Privacy") == expected


def test_53_ppi_caller_or_none() -> None:
    assert names(identity_headers(invite(), "9", "sw", IdentityPolicy(ppi="caller")))["P-Preferred-Identity"]
    assert "P-Preferred-Identity" not in names(identity_headers(invite(), "9", "sw", IdentityPolicy()))


def test_54_extra_headers_all_specified_or_none() -> None:
    req = invite(("X-Custom", "abc"), ("X-A", "1"), ("X-B", "2"))
    assert names(identity_headers(req, "9", "sw", IdentityPolicy(extra_headers="all")))["X-Custom"] == ["abc"]
    assert "X-Custom" not in names(identity_headers(req, "9", "sw", IdentityPolicy()))
    only = names(identity_headers(req, "9", "sw", IdentityPolicy(extra_headers=("X-A",))))
    assert "X-A" in only and "X-B" not in only
    # headers the B2BUA builds are never copied, whatever the list says
    assert "Call-ID" not in names(identity_headers(req, "9", "sw", IdentityPolicy(extra_headers="all")))


def test_55_caller_source() -> None:
    req = invite(
        ("Remote-Party-ID", "<sip:222@h>;party=calling"), from_value='"333" <sip:111@10.0.0.1>;tag=1'
    )
    assert caller_number(req, "from") == "111"
    assert caller_number(req, "rpid") == "222"
    assert caller_number(req, "display") == "333"
    assert caller_number(invite(), "rpid") == "111"  # absent → From


def test_56_pool_poll_and_random() -> None:
    poll = CallerPool(("A", "B"), sequence=1, multiplex=10)
    assert [poll.acquire() for _ in range(4)] == ["A", "B", "A", "B"]
    rnd = CallerPool(("A", "B"), sequence=0, multiplex=100, rng=random.Random(7))
    picks = {rnd.acquire() for _ in range(40)}
    assert picks == {"A", "B"}


def test_57_pool_multiplex_one() -> None:
    pool = CallerPool(("A",), multiplex=1)
    assert pool.acquire() == "A"
    assert pool.acquire() is None  # busy: the call keeps its own number (documented choice)
    pool.release("A")
    assert pool.acquire() == "A"
