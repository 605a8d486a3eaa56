#!/usr/bin/env python3
"""Scanner-defence microbenchmark: µs per message the defence adds before parsing, against the
parse it saves (``parse_message`` of the same message), in one invocation on the same machine.

Cases (each a message the node receives, judged by ``Defence.inspect`` as the node calls it):

- **trusted**: a message from a configured gateway (the node's fast path: one dict lookup);
- **untrusted, accepted**: an ordinary INVITE from an unknown source under every limit (every
  rule runs: junk check, signatures, OPTIONS, connlimit, recent, hashlimit, detection);
- **untrusted, dropped (signature)**: an INVITE from a scanner tool, dropped by its User-Agent;
- **untrusted, dropped (blacklist)**: a blocked source's message;
- **untrusted, dropped (rate)**: a flooding source over the recent window;
- **reference**: ``parse_message`` of the INVITE: what a dropped message no longer costs.

Each figure is the median of ``--repeat`` batches of ``--number`` messages after a warm-up
batch. The machine is shared and noisy: read the ratios to the reference, measured side by
side. Nothing here is asserted; tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sip_parse import INVITE  # noqa: E402  (this directory is on the path when run as a script)

from signaling.sip import parser  # noqa: E402
from signaling.sip.defence import Defence, DefenceConfig  # noqa: E402

SCANNER = INVITE.replace(b"User-Agent: ExampleGateway/4.2", b"User-Agent: friendly-scanner")


def per_message_us(fn: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    timer = timeit.Timer(fn)
    timer.timeit(number)
    batches = [t / number * 1e6 for t in timer.repeat(repeat=repeat, number=number)]
    return statistics.median(batches), min(batches)


def cases() -> dict[str, Callable[[], object]]:
    clock = [0.0]

    def tick() -> float:
        clock[0] += 1e-4  # 10,000 messages per second of defence time
        return clock[0]

    trusted = Defence(DefenceConfig())
    trusted.set_gateway_addresses({"203.0.113.10"})
    # the rate rules off: an ordinary source stays under them for the whole run
    open_rules = Defence(
        DefenceConfig(recent_hitcount=0, hashlimit=0, connlimit_above=0, connlimit_subnet_above=0)
    )
    signature = Defence(DefenceConfig(block_scanners=False))
    blocked = Defence(DefenceConfig())
    blocked.blacklist.add("192.0.2.66", 0.0)
    flooded = Defence(DefenceConfig(block_after_drops=0))
    return {
        # as the node asks: inspect() only when enabled and not trusted
        "trusted": lambda: trusted.config.enabled and not trusted.is_trusted("203.0.113.10"),
        "untrusted, accepted": lambda: open_rules.inspect(INVITE, ("192.0.2.10", 5060), tick()),
        "untrusted, dropped (signature)": lambda: signature.inspect(SCANNER, ("192.0.2.11", 5060), tick()),
        "untrusted, dropped (blacklist)": lambda: blocked.inspect(INVITE, ("192.0.2.66", 5060), tick()),
        "untrusted, dropped (rate)": lambda: flooded.inspect(INVITE, ("192.0.2.12", 5060), tick()),
        "reference: parse_message(INVITE)": lambda: parser.parse_message(INVITE),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--number", type=int, default=20_000, help="messages per timed batch")
    ap.add_argument("--repeat", type=int, default=7, help="timed batches; the median is reported")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    rows = []
    for name, fn in cases().items():
        median, best = per_message_us(fn, args.number, args.repeat)
        rows.append({"case": name, "us_median": round(median, 3), "us_best": round(best, 3)})
    reference = rows[-1]["us_median"]
    print(
        f"python {platform.python_version()} on {platform.machine()}, {args.repeat} x {args.number} messages"
    )
    print("| case | µs per message (median / best) | share of a parse |")
    print("|---|---:|---:|")
    for row in rows:
        share = float(str(row["us_median"])) / float(str(reference))
        print(f"| {row['case']} | {row['us_median']} / {row['us_best']} | {share:.3f} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"python": platform.python_version(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
