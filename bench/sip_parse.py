#!/usr/bin/env python3
"""SIP message parsing microbenchmark: µs per message, compiled scanner against the pure-Python
fallback (its pure-Python twin), in one invocation on the same machine.

Two messages: a typical carrier INVITE with an SDP offer (G.711, G.729, telephone-event), and the
200 OK that answers it. For each message and each scanner build the parse is timed in batches
(``--number`` parses per batch, ``--repeat`` batches, after one warm-up batch); the table reports
the median batch in µs per message, the best batch, and the ratio fallback / compiled. Two
columns: the scanner alone (start line, header lines, folding) and the whole
:func:`parse_message` (scanner plus start-line, framing and header-syntax checks).

The machine is shared and noisy: read the ratios, which are measured side by side, before the
absolute figures. Nothing here is asserted; tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from signaling.sip import _scanner_py, parser  # noqa: E402
from signaling.sip.message import Request, Response  # noqa: E402

try:
    from signaling.sip import _scanner
except ImportError:
    sys.exit("the compiled scanner is not built: run `python setup.py build_ext --inplace`")

SDP = (
    b"v=0\r\n"
    b"o=- 3911247834 3911247834 IN IP4 203.0.113.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 203.0.113.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 40000 RTP/AVP 8 0 18 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=fmtp:18 annexb=no\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:+4930123456789@gw1.carrier.example:5060;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK6a8f3c21e9d04b7a;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Customer 1001" <sip:1001@203.0.113.10;user=phone>;tag=4f2a9c17\r\n'
    b"To: <sip:+4930123456789@gw1.carrier.example;user=phone>\r\n"
    b"Call-ID: 8d3e0c5a1b7f4e29a6c0d2b9e1f3a7c5@203.0.113.10\r\n"
    b"CSeq: 102 INVITE\r\n"
    b"Contact: <sip:1001@203.0.113.10:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK\r\n"
    b"Supported: timer, 100rel, replaces\r\n"
    b"Session-Expires: 1800;refresher=uac\r\n"
    b"Min-SE: 90\r\n"
    b"User-Agent: ExampleGateway/4.2\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bKc41d7e02;received=198.51.100.20;rport=5060\r\n"
    b"Record-Route: <sip:198.51.100.1;lr>\r\n"
    b"From: <sip:1001@198.51.100.20>;tag=77ab10e2\r\n"
    b"To: <sip:+4930123456789@gw1.carrier.example>;tag=as5f0c3e11\r\n"
    b"Call-ID: 1c7d9e3a44b2@198.51.100.20\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:+4930123456789@192.0.2.50:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, INFO\r\n"
    b"Supported: timer, replaces\r\n"
    b"Session-Expires: 1800;refresher=uac\r\n"
    b"Require: timer\r\n"
    b"Server: ExampleCarrier SBC\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)

MESSAGES = {"INVITE+SDP": INVITE, "200 OK+SDP": OK_200}
BUILDS = {"compiled": _scanner.scan, "python": _scanner_py.scan}


def per_message_us(fn: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    """(median, best) µs per call over ``repeat`` batches of ``number`` calls, after a warm-up."""
    timer = timeit.Timer(fn)
    timer.timeit(number)
    batches = [t / number * 1e6 for t in timer.repeat(repeat=repeat, number=number)]
    return statistics.median(batches), min(batches)


def run(number: int, repeat: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for label, data in MESSAGES.items():
        msg = parser.parse_message(data)
        assert isinstance(msg, Request | Response)
        for build, scan in BUILDS.items():
            parser._scan = scan  # the parser's scanner for this build
            scan_med, scan_best = per_message_us(partial(scan, data, 16_384), number, repeat)
            parse_med, parse_best = per_message_us(partial(parser.parse_message, data), number, repeat)
            rows.append(
                {
                    "message": label,
                    "bytes": len(data),
                    "build": build,
                    "scan_us_median": round(scan_med, 2),
                    "scan_us_best": round(scan_best, 2),
                    "parse_us_median": round(parse_med, 2),
                    "parse_us_best": round(parse_best, 2),
                }
            )
    parser._scan = _scanner.scan
    return rows


def table(rows: list[dict[str, object]]) -> str:
    out = [
        "| message | bytes | build | scan µs (median / best) | parse_message µs (median / best) |",
        "|---|---:|---|---:|---:|",
    ]
    for row in rows:
        out.append(
            f"| {row['message']} | {row['bytes']} | {row['build']} "
            f"| {row['scan_us_median']} / {row['scan_us_best']} "
            f"| {row['parse_us_median']} / {row['parse_us_best']} |"
        )
    by = {(r["message"], r["build"]): r for r in rows}
    out.append("")
    for label in MESSAGES:
        c, p = by[(label, "compiled")], by[(label, "python")]
        scan_ratio = float(str(p["scan_us_median"])) / float(str(c["scan_us_median"]))
        parse_ratio = float(str(p["parse_us_median"])) / float(str(c["parse_us_median"]))
        out.append(f"{label}: fallback / compiled = {scan_ratio:.1f}x (scanner), {parse_ratio:.2f}x (parse)")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--number", type=int, default=2000, help="parses per timed batch")
    ap.add_argument("--repeat", type=int, default=7, help="timed batches; the median is reported")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    rows = run(args.number, args.repeat)
    print(f"python {platform.python_version()} on {platform.machine()}, {args.repeat} x {args.number} parses")
    print(table(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"python": platform.python_version(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
