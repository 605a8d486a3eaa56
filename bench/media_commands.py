"""A call's three media commands, in-process, without SIP: what the media engine costs a call.

The node's in-process media port (``InProcessMedia``) runs, for every anchored call, an ``offer``
and an ``answer`` through ``NgControl.request`` and a deferred ``delete`` (``delete_deferred``,
its outcome — the parties' counters, ``counters=True``, where the engine has it — picked up by
``collect_deletes``). This harness runs that sequence ``--calls`` times on an engine of its own
(the engine's default workers, as the node and bench/b2bua_path.py use) and reports the
process's CPU time per call: the calling thread's and the media worker's, the system calls of
both included. No RTP flows, as in bench/cps.py. Collecting every tenth call stands in for the
node's collection every 10 ms at 1,000 calls a second.

    python bench/media_commands.py                          # --calls 3000 --repeat 5
    python bench/media_commands.py --reference-code DIR     # paired with another checkout

``--reference-code DIR`` alternates run by run between this checkout's ``mediacore`` and that
checkout's (each run a fresh process, ``PYTHONPATH`` set to the checkout), and reports the
median of the per-pair ratios: the machine is shared, the ratio means more than either.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mediacore import MediaEngine
from mediacore._core import NgControl

SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def one_run(calls: int) -> dict[str, float]:
    engine = MediaEngine(interface="127.0.0.1", port_min=40000, port_max=49999)
    ng = engine.ng_control()
    try:
        for n in range(200):  # warm-up: first allocations, the worker's tables
            _call(ng, f"warm-{n}", n)
        _drain(ng)
        started = time.process_time()
        for n in range(calls):
            _call(ng, f"call-{n}", n)
        _drain(ng)
        cpu = time.process_time() - started
    finally:
        engine.close()
    return {"calls": calls, "cpu_us_per_call": round(1e6 * cpu / calls, 1)}


#: what the node asks of a deferred delete, where the engine takes it: the parties' counters
#: instead of the reply (an older checkout's engine, run with --reference-code, has no counters)
_SIGNATURE = getattr(NgControl.delete_deferred, "__text_signature__", "") or ""
DELETE_KEYWORDS: dict[str, bool] = {"counters": True} if "counters" in _SIGNATURE else {}


def _call(ng: NgControl, call_id: str, n: int) -> None:
    offer = SDP.format(port=6000 + 2 * (n % 1000)).encode()
    answer = SDP.format(port=7000 + 2 * (n % 1000)).encode()
    ng.request({"command": "offer", "call-id": call_id, "from-tag": "a", "sdp": offer})
    ng.request({"command": "answer", "call-id": call_id, "from-tag": "a", "to-tag": "b", "sdp": answer})
    ng.delete_deferred(
        {"command": "delete", "call-id": call_id, "flags": [b"brief-stats"]}, **DELETE_KEYWORDS
    )
    if n % 10 == 0:
        ng.collect_deletes()


def _drain(ng: NgControl) -> None:
    """Until every deferred delete has answered (bounded: 2 s)."""
    deadline = time.monotonic() + 2.0
    while ng.pending_deletes and time.monotonic() < deadline:
        ng.collect_deletes()
        time.sleep(0.001)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reference-code", type=Path)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child run
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.calls)))
        return 0
    here = Path(__file__).resolve().parent.parent
    sides = {"node": here} | ({"reference": args.reference_code.resolve()} if args.reference_code else {})
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeat):
        for name, code in sides.items():
            env = dict(os.environ, PYTHONPATH=str(code))
            out = subprocess.run(
                [sys.executable, __file__, "--one", "--calls", str(args.calls)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
            runs[name].append(json.loads(out.stdout)["cpu_us_per_call"])
    result: dict[str, object] = {
        name: {"cpu_us_per_call": values, "median": statistics.median(values)}
        for name, values in runs.items()
    }
    if args.reference_code:
        ratios = [a / b for a, b in zip(runs["node"], runs["reference"], strict=True)]
        result["median_ratio_node_to_reference"] = round(statistics.median(ratios), 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
