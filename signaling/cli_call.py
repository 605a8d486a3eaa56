"""``softswitch call NUMBER``: place a real test call to a node and report what happened.

The call is made with our own SIP stack (signaling/testcall.py: transactions, dialog, digest
when challenged) from the local address that routes to the node; once answered it sends
``--duration`` seconds of G.711 RTP to the answer's media address, counts what comes back,
and hangs up. It prints each response as it came (time since the INVITE), the outcome and the
call's Call-ID — the key of its CDR (``softswitch cdrs export``). Exit 0 when the call was
answered and ended cleanly, 1 when it was not (refused, unanswered, no response), 2 on a usage
error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from signaling import demo
from signaling.cli_common import EXIT_REFUSED, EXIT_USAGE


def _node(text: str) -> tuple[str, int]:
    from signaling.config import parse_host_port  # noqa: PLC0415

    try:
        return parse_host_port(text, 5060)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {exc} (expected HOST:PORT, e.g. 127.0.0.1:5060)"
        ) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 < seconds <= 3600")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "call",
        help="place a test call to a node (SIP + G.711 RTP) and report the outcome",
        description="Call NUMBER through a softswitch node, send a few seconds of G.711 audio, "
        "hang up, and print the responses, the answer time and the Call-ID.",
    )
    p.add_argument(
        "number", nargs="?", default=demo.DEMO_NUMBER, help=f"the number to call (default {demo.DEMO_NUMBER})"
    )
    p.add_argument(
        "--from", dest="caller", default=demo.DEMO_CUSTOMER, help="the calling number (default 1001)"
    )
    p.add_argument(
        "--node",
        type=_node,
        default=("127.0.0.1", 5060),
        help="the node's SIP address (default 127.0.0.1:5060)",
    )
    p.add_argument(
        "--duration", type=_seconds, default=3.0, help="seconds of audio after the answer (default 3)"
    )
    p.add_argument(
        "--answer-timeout",
        type=_seconds,
        default=30.0,
        help="cancel when not answered by then (default 30 s)",
    )
    p.add_argument("--user", default=None, help="digest user name, when the node challenges")
    p.add_argument("--password", default=None, help="digest password")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(handler=cmd_call)


def cmd_call(args: argparse.Namespace) -> int:
    from signaling.testcall_io import CallOptions, place_call  # noqa: PLC0415 (asyncio, SIP)

    if args.password is not None and args.user is None:
        print("softswitch call: --password needs --user", file=sys.stderr)
        return EXIT_USAGE
    options = CallOptions(
        node=args.node,
        callee=args.number,
        caller=args.caller,
        duration=args.duration,
        answer_timeout=args.answer_timeout,
        username=args.user,
        password=args.password,
    )
    host, port = args.node
    if not args.json:
        print(f"calling {args.number} from {args.caller} through {host}:{port}", flush=True)
    try:
        outcome, media = asyncio.run(place_call(options))
    except OSError as exc:
        print(f"softswitch call: cannot reach {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    clean = outcome.answered and (outcome.ended_by == "node" or outcome.bye_status == 200)
    if args.json:
        print(
            json.dumps(
                {
                    "call_id": outcome.call_id,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "answered": outcome.answered,
                    "ring_at": outcome.ring_at,
                    "answer_at": outcome.answer_at,
                    "end_at": outcome.end_at,
                    "ended_by": outcome.ended_by,
                    "bye_status": outcome.bye_status,
                    "rtp_sent": media.sent,
                    "rtp_received": media.received,
                    "events": [{"at": e.at, "what": e.what} for e in outcome.events],
                }
            )
        )
        return 0 if clean else EXIT_REFUSED
    for event in outcome.events:
        print(f"  +{event.at:7.3f} s  {event.what}")
    if outcome.answered:
        talk = (outcome.end_at or 0) - (outcome.answer_at or 0)
        print(f"answered after {outcome.answer_at:.3f} s, talked {talk:.2f} s, ended by {outcome.ended_by}")
        print(f"RTP: sent {media.sent} packets, received {media.received}")
    elif outcome.status is None:
        print("no final response (gave up)")
    else:
        print(f"not answered: {outcome.status} {outcome.reason}")
    print(f"Call-ID: {outcome.call_id}")
    return 0 if clean else EXIT_REFUSED
