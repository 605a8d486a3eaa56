"""The in-process media commands of one call, and what a relayed session keeps, without SIP.

Every call the node anchors costs an ``offer``, an ``answer`` and a ``delete`` through the
in-process ng layer (``NgControl``), and the deleted call's final statistics are collected a
moment later. This times each of the four on the calling thread (CPU time, ``time.thread_time``:
what the node's loop thread pays; the media worker's share is not in it) over ``--calls`` calls
with SIPp's one-codec SDP, and measures the resident memory each relayed session adds while it is
up (``--hold`` sessions held at once, then deleted).

    python bench/media_control.py                       # --calls 4000 --hold 4000 --repeat 3
    python bench/media_control.py --code DIR            # another checkout's mediacore
    python bench/media_control.py --brief-stats off     # deletes without the node's brief-stats flag

A tight loop keeps the engine's code and data in cache, so these figures are the floor of what
the same commands cost inside the node, where they run between Python's work (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# the checkout whose engine is measured: ``--code DIR``, else this one
sys.path.insert(
    0,
    sys.argv[sys.argv.index("--code") + 1]
    if "--code" in sys.argv[:-1]
    else str(Path(__file__).resolve().parent.parent),
)

from mediacore import MediaEngine
from mediacore._core import NgControl

SDP = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
PAGE = 4096


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def commands(ng: NgControl, calls: int, brief: bool) -> dict[str, float]:
    """Microseconds of this thread's CPU per call for each command; deletes collected every
    third call, as the node's collector finds a few at each pass."""
    spent = {"offer": 0.0, "answer": 0.0, "delete": 0.0, "collect": 0.0}
    delete_extra: dict[str, Any] = {"flags": ["brief-stats"]} if brief else {}
    collected = 0
    for n in range(calls):
        call_id = f"bench-{n}"
        t0 = time.thread_time()
        ng.request({"command": "offer", "call-id": call_id, "from-tag": "a", "sdp": SDP})
        t1 = time.thread_time()
        ng.request({"command": "answer", "call-id": call_id, "from-tag": "a", "to-tag": "b", "sdp": SDP})
        t2 = time.thread_time()
        ng.delete_deferred({"command": "delete", "call-id": call_id, "from-tag": "a", **delete_extra})
        t3 = time.thread_time()
        spent["offer"] += t1 - t0
        spent["answer"] += t2 - t1
        spent["delete"] += t3 - t2
        if n % 3 == 2:
            time.sleep(0.0005)  # the worker deletes meanwhile
            t4 = time.thread_time()
            replies = ng.collect_deletes()
            collected += len(replies)
            del replies
            spent["collect"] += time.thread_time() - t4
    for _ in range(200):
        if ng.pending_deletes == 0:
            break
        time.sleep(0.005)
        collected += len(ng.collect_deletes())
    if collected != calls:
        raise RuntimeError(f"{collected} of {calls} deletes came back")
    return {k: round(1e6 * v / calls, 2) for k, v in spent.items()}


def held_bytes(ng: NgControl, hold: int) -> int:
    """Resident bytes per relayed session while ``hold`` are up."""
    time.sleep(0.2)
    base = rss()
    for n in range(hold):
        call_id = f"held-{n}"
        ng.request({"command": "offer", "call-id": call_id, "from-tag": "a", "sdp": SDP})
        ng.request({"command": "answer", "call-id": call_id, "from-tag": "a", "to-tag": "b", "sdp": SDP})
    time.sleep(0.5)  # the workers have taken every session in
    per_session = (rss() - base) // hold
    ng.delete_all()
    return per_session


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--hold", type=int, default=4000, help="relayed sessions held at once")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--brief-stats", default="on", choices=["on", "off"])
    parser.add_argument("--code", type=Path, default=None, help="measure this checkout's mediacore")
    args = parser.parse_args()
    # four ports a session: the held sessions and the calls in flight fit, above the tests'
    # range (tests/b2bua_harness.py: 21000-32700), as the other benchmarks
    engine = MediaEngine(interface="127.0.0.1", port_min=40000, port_max=40000 + 4 * args.hold + 400)
    try:
        ng = engine.ng_control()
        runs = [commands(ng, args.calls, args.brief_stats == "on") for _ in range(args.repeat)]
        held = held_bytes(ng, args.hold)
    finally:
        engine.close()
    result = {
        "calls": args.calls,
        "brief_stats": args.brief_stats,
        "runs_us_per_call": runs,
        "median_us_per_call": {k: statistics.median(r[k] for r in runs) for k in runs[0]},
        "held_sessions": args.hold,
        "resident_bytes_per_relayed_session": held,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
