#!/usr/bin/env python3
"""Transcoding benchmark: PCMA (leg A) <-> G.729 (leg B), our media engine against rtpengine.

Theory of operation: the same harness as relay.py (whose options, engine start/stop and sweep it imports),
with rtpload in ``--mode transcode``: leg A offers PCMA only and the ng offer asks for
``codec: {transcode: [G729]}``; leg B answers G.729 only; both legs send real speech every
20 ms. For each repetition and each call count N, each engine is started fresh, driven by one
rtpload run, and stopped; one ``--direct --mode transcode`` run per N and repetition gives the
generator's own floor, subtracted to get "added" latency. The engine order alternates per
repetition. Before the sweep, ``rtpload --codec-floor`` measures libbcg729's own cost per
call-second (100 frames encoded + 100 decoded), the floor any G.729 transcoder pays.

A call is clean when, in a run, every call was set up, nothing was lost, the added p99 latency
is under 20 ms and there were no ordinal anomalies. An engine that cannot be started, or that
does not offer G.729 towards B, is reported with the reason; no figure is ever invented.

Our engine plays decoded audio out of a jitter buffer, by design: its output packets leave on a
playout clock that starts once the buffer holds its starting delay (``SS_JITTERBUFFER_DEFAULT``,
60 ms), and after a sender stops it sends up to 60 ms of concealment. So for it, "clean" allows
that starting delay on top of the 20 ms (``--softswitch-buffer-ms``) and up to
``TAIL_PACKETS`` packets per stream past the last input (counted as ``beyond`` by rtpload, shown
as "tail"); anything beyond those is an anomaly as for any engine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from relay import (
    DISTURBED_LATENESS_US,
    Engine,
    bench_parser,
    cell,
    machine,
    median,
    parse_bench_args,
    prepare,
    sweep,
    write_out,
)

DEFAULT_CALLS = (50, 100, 200, 300, 400, 500, 600, 800)
DEFAULT_REPETITIONS = 3
DEFAULT_DURATION_S = 10
CLEAN_P99_MS = 20.0
#: Concealment packets a buffering engine may send per stream after its sender stops.
TAIL_PACKETS = 3
FLOOR_CPU_S = 3
FLOOR_TIMEOUT_S = 60
MODE = ["--mode", "transcode"]


def codec_floor(rtpload: Path) -> dict[str, Any]:
    """libbcg729 encode + decode CPU per call-second, measured by rtpload itself."""
    argv = [str(rtpload), "--codec-floor", "--floor-seconds", str(FLOOR_CPU_S), "--json"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=FLOOR_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"codec floor did not finish within {FLOOR_TIMEOUT_S} s"}
    if done.returncode != 0:
        return {"error": done.stderr.decode(errors="replace").strip()}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def failed(run: dict[str, Any]) -> str | None:
    """Why a run produced no figures (the last line of the reason, e.g. of a traceback), or None."""
    reason = run.get("unavailable") or run.get("error")
    if reason is None:
        return None
    prefix = "not available" if "unavailable" in run else "failed"
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    return f"{prefix}: {lines[-1] if lines else 'no reason given'}"


#: Per engine: (intended buffering delay in ms, tail packets per stream) that are not anomalies.
ALLOWANCE: dict[str, tuple[float, int]] = {}


def tail(run: dict[str, Any]) -> int:
    """Packets past the last input that the engine's allowance covers (a buffer's tail)."""
    per_stream = ALLOWANCE.get(run["engine"], (0.0, 0))[1]
    beyond = int(run.get("ordinal_anomalies", {}).get("beyond", 0))
    return min(beyond, per_stream * 2 * int(run.get("calls", 0)))


def anomalies(run: dict[str, Any]) -> int:
    ordinal = run.get("ordinal_anomalies", {})
    return int(run.get("wrong_payload", 0)) + sum(int(v) for v in ordinal.values()) - tail(run)


def added_ms(run: dict[str, Any], direct: dict[str, Any] | None, q: str) -> float:
    """Engine latency minus the direct run of the same repetition (raw if there is none), ms."""
    base = 0.0 if direct is None or failed(direct) else float(direct["latency_us"][q])
    return (float(run["latency_us"][q]) - base) / 1000.0


def annotate(runs: list[dict[str, Any]]) -> None:
    """Adds added-latency figures and the clean verdict to every successful engine run."""
    direct = {(r["calls"], r["repetition"]): r for r in runs if r["engine"] == "direct"}
    for r in runs:
        if r["engine"] == "direct" or failed(r):
            continue
        base = direct.get((r["calls"], r["repetition"]))
        r["added_ms"] = {q: added_ms(r, base, q) for q in ("p50", "p99")}
        r["clean"] = (
            r["setup_failures"] == 0
            and r["lost"] == 0
            and r["added_ms"]["p99"] < limit_ms(r["engine"])
            and anomalies(r) == 0
        )


def limit_ms(engine: str) -> float:
    """Added p99 latency under which a run is clean, ms."""
    return CLEAN_P99_MS + ALLOWANCE.get(engine, (0.0, 0))[0]


def largest_clean(rows_by_n: dict[int, list[dict[str, Any]]], verdict: str) -> int | None:
    """Largest N such that it and every smaller N tried are clean by ``verdict``."""
    best = None
    for calls in sorted(rows_by_n):
        rows = rows_by_n[calls]
        ok = [r for r in rows if not failed(r)]
        if verdict == "every":
            clean = bool(rows) and len(ok) == len(rows) and all(r["clean"] for r in ok)
        else:
            loss = median([float(r["loss_pct"]) for r in ok])
            p99 = median([r["added_ms"]["p99"] for r in ok])
            setup = median([float(r["setup_failures"]) for r in ok])
            clean = loss == 0 and setup == 0 and p99 is not None and p99 < limit_ms(rows[0]["engine"])
        if not clean:
            break
        best = calls
    return best


def summarize(
    runs: list[dict[str, Any]], engines: list[Engine], calls_list: list[int], floor_ms: float | None
) -> str:
    """Markdown table of medians per (N, engine), then capacity and target lines."""
    annotate(runs)

    def of(name: str, calls: int) -> list[dict[str, Any]]:
        return [r for r in runs if r["engine"] == name and r["calls"] == calls]

    def ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if not failed(r)]

    def med(rows: list[dict[str, Any]], key: str) -> float | None:
        return median([float(r[key]) for r in ok(rows) if r.get(key) is not None])

    lines = [
        "| N | engine | runs | loss % | added p50 ms | added p99 ms | engine CPU % core "
        "| CPU ms/call-s | x floor | ours/rtpengine CPU | setup failures | anomalies | tail "
        "| disturbed runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for calls in calls_list:
        per_call = {e.name: med(of(e.name, calls), "cpu_ms_per_call_second") for e in engines}
        with_direct = any(r["engine"] == "direct" for r in runs)
        for name in [*(["direct"] if with_direct else []), *(e.name for e in engines)]:
            rows = of(name, calls)
            good = ok(rows)
            if not good:
                reasons = sorted({str(failed(r)) for r in rows} or {"no runs"})
                text = "; ".join(reasons).replace("|", "/").replace("\n", " ")[:160]
                lines.append(f"| {calls} | {name} | 0 | {text} ||||||||||||")
                continue
            cpu = per_call.get(name)
            ours, theirs = per_call.get("softswitch"), per_call.get("rtpengine")
            ratio = ours / theirs if name == "softswitch" and ours is not None and theirs else None
            is_engine = name != "direct"
            p50 = median([r["added_ms"]["p50"] for r in good]) if is_engine else None
            p99 = median([r["added_ms"]["p99"] for r in good]) if is_engine else None
            lines.append(
                f"| {calls} | {name} | {len(good)} | {cell(med(rows, 'loss_pct'), 3)} "
                f"| {cell(p50, 2)} | {cell(p99, 2)} "
                f"| {cell(med(rows, 'engine_cpu_pct_of_core'))} | {cell(cpu, 2)} "
                f"| {cell(cpu / floor_ms if cpu is not None and floor_ms else None, 2)} "
                f"| {cell(ratio, 2)} | {sum(int(r['setup_failures']) for r in good)} "
                f"| {sum(anomalies(r) for r in good)} | {sum(tail(r) for r in good)} "
                f"| {sum(r['send_lateness_us']['p99'] > DISTURBED_LATENESS_US for r in good)} |"
            )
    lines.append("")
    capacity: dict[str, int | None] = {}
    for engine in engines:
        rows_by_n = {calls: of(engine.name, calls) for calls in calls_list}
        every = largest_clean(rows_by_n, "every")
        by_median = largest_clean(rows_by_n, "median")
        capacity[engine.name] = every
        if not any(ok(rows) for rows in rows_by_n.values()):
            reasons = sorted({str(failed(r)) for rows in rows_by_n.values() for r in rows})
            lines.append(f"- {engine.name}: not measured ({'; '.join(reasons) or 'no runs'})")
            continue
        lines.append(
            f"- {engine.name}: largest clean N = {every if every is not None else 'none'} "
            f"(every repetition: all calls set up, zero loss, no anomalies, added p99 < "
            f"{limit_ms(engine.name):.0f} ms, and so at every smaller N tried); by medians: "
            f"{by_median if by_median is not None else 'none'}"
        )
    if floor_ms is not None:
        lines.append(f"- codec floor (libbcg729 encode + decode): {floor_ms:.2f} ms CPU per call-second")
    ours, theirs = capacity.get("softswitch"), capacity.get("rtpengine")
    if ours is not None and theirs:
        lines.append(f"- clean capacity ours/rtpengine: {ours}/{theirs} = {ours / theirs:.2f} (target ≥ 2)")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, DEFAULT_CALLS)
    parser.add_argument(
        "--softswitch-args",
        default="",
        help="extra arguments for our engine, e.g. '--echo-cancel off' or '--jitter-buffer-default 20'",
    )
    parser.add_argument(
        "--softswitch-buffer-ms",
        type=float,
        default=60.0,
        help="our engine's jitter-buffer starting delay, allowed on top of the clean limit (default 60)",
    )
    parser.add_argument(
        "--no-direct",
        action="store_true",
        help="skip the direct baseline runs; added latency is then the raw latency (µs larger)",
    )
    return parse_bench_args(parser)


def main() -> int:
    args = parse_args()
    prepared = prepare(args, args.softswitch_args.split(), "transcode-bench-")
    if prepared is None:
        return 2
    engines, log_dir = prepared
    ALLOWANCE["softswitch"] = (args.softswitch_buffer_ms, TAIL_PACKETS)
    info = machine()
    floor = codec_floor(args.rtpload)
    print(json.dumps({"codec_floor": floor}), file=sys.stderr, flush=True)
    floor_ms = None if "error" in floor else float(floor["cpu_ms_per_call_second"])
    calls_list = sorted(args.calls)
    runs = sweep(args, engines, calls_list, log_dir, mode=MODE, direct=not args.no_direct)
    table = summarize(runs, engines, calls_list, floor_ms)
    print(table)
    config = {
        "mode": "transcode",
        "calls": calls_list,
        "repetitions": args.repetitions,
        "duration_s": args.duration,
        "threads": args.threads,
        "direct_baseline": not args.no_direct,
    }
    document = {"machine": info, "config": config, "codec_floor": floor, "runs": runs, "table": table}
    write_out(args.out, document, log_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
