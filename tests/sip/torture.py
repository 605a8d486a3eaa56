"""The RFC 4475 and RFC 5118 torture messages, read as bytes from ../shared/testdata (never copied
into the project), and the verdicts its README gives for each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from signaling.sip import _scanner, _scanner_py, parser

#: /work/shared beside the repository root: tests/sip/torture.py → parents[2] is the root.
TORTURE = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "sip-torture"

#: RFC 4475 §3.1.1 (valid, round trip), §3.2, §3.3 and §3.4 messages that parse, and the two
#: "liberal handling allowed" cases, which we accept (see test_parser_torture).
RFC4475_VALID = [
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    "badbranch",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
    "trws",
    "baddate",
]

#: Requests rejected by the parser, with the status a UAS answers. ncl (3.1.2.6, negative
#: Content-Length) is not in the README table; RFC 4475 says 400, as for clerr.
RFC4475_REJECTED = {
    "badinv01": 400,
    "clerr": 400,
    "scalar02": 400,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "escruri": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "mismatch01": 400,
    "ncl": 400,
    "badvers": 505,
    "mismatch02": 501,
    # §3.3 application-layer verdicts that the parser already enforces (validate agrees)
    "insuf": 400,
    "multi01": 400,
    "mcl01": 400,
}

#: Responses that are dropped, never answered.
RFC4475_DROPPED_RESPONSES = ["bigcode", "scalarlg"]

RFC5118_VALID = [
    "ipv6-good",
    "ipv6-correct-abnf-2-colons",
    "port-unambiguous",
    "port-ambiguous",
    "via-received-param-with-delim",
    "via-received-param-no-delim",
    "mult-ip-in-header",
    "mult-ip-in-sdp",
    "ipv6-in-sdp",
    "ipv4-mapped-ipv6",
]
RFC5118_REJECTED = ["ipv6-bad", "ipv6-bug-abnf-3-colons"]


def rfc4475(name: str) -> bytes:
    return (TORTURE / "rfc4475" / f"{name}.dat").read_bytes()


def rfc5118(name: str) -> bytes:
    return (TORTURE / "rfc5118" / name).read_bytes()


def all_files() -> list[Path]:
    """Every message file of both sets (the README and licence excluded)."""
    return sorted(p for p in TORTURE.glob("rfc*/*") if p.is_file())


def all_messages() -> list[bytes]:
    return [p.read_bytes() for p in all_files()]


SCANNERS = {"compiled": _scanner.scan, "python": _scanner_py.scan}


@contextmanager
def using_scanner(kind: str) -> Iterator[None]:
    """Run the parser on one scanner build (both must behave the same)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parser, "_scan", SCANNERS[kind])
        yield
