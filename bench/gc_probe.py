"""Runs the node (``softswitch`` arguments as given) with its cyclic collector watched.

For ``bench/cps.py --softswitch-bin``: a two-line shell wrapper that runs this file with the
node's arguments. ``GC_PROBE_YOUNG`` (environment) replaces the node's young-collection
threshold (``signaling.run.YOUNG_COLLECTION_THRESHOLD``) for the run, so two thresholds can
be compared on the same code; ``GC_PROBE_OUT`` names the JSON file written when the node
exits (default ``gc-probe-YOUNG-PID.json`` in the working directory): passes and seconds per
generation, the longest pass, and how many objects the passes found to free.

    printf '#!/bin/sh\\nGC_PROBE_YOUNG=50000 exec python3 %s/bench/gc_probe.py "$@"\\n' "$PWD" > /tmp/node-50k
    chmod +x /tmp/node-50k
    python3 bench/cps.py --rates 400 --seconds 70 --reps 1 --pin --sample-every 10 \\
        --softswitch-bin /tmp/node-50k
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import signaling.run
from signaling.cli import main

YOUNG = int(os.environ.get("GC_PROBE_YOUNG", signaling.run.YOUNG_COLLECTION_THRESHOLD))
signaling.run.YOUNG_COLLECTION_THRESHOLD = YOUNG

passes = [0, 0, 0]
seconds = [0.0, 0.0, 0.0]
found = [0]
longest = [0.0]
started = [0.0]


def watch(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        started[0] = time.perf_counter()
        return
    took = time.perf_counter() - started[0]
    generation = int(info["generation"])
    passes[generation] += 1
    seconds[generation] += took
    found[0] += int(info["collected"])
    longest[0] = max(longest[0], took)


def report() -> None:
    out = os.environ.get("GC_PROBE_OUT") or f"gc-probe-{YOUNG}-{os.getpid()}.json"
    summary = {
        "young_threshold": YOUNG,
        "passes_by_generation": passes,
        "seconds_by_generation": [round(s, 4) for s in seconds],
        "longest_pass_s": round(longest[0], 4),
        "objects_freed": found[0],
    }
    Path(out).write_text(json.dumps(summary, indent=2) + "\n")


gc.callbacks.append(watch)
atexit.register(report)
sys.exit(main())
