#!/usr/bin/env python3
"""Media-relay benchmark: our media engine against rtpengine, both driven by rtpload.

Theory of operation: for each repetition, for each call count N, run rtpload once per engine
and once in --direct mode (the generator's own loopback floor). Each engine is started fresh
for its run as a subprocess on loopback, waited for with an ng ``ping``, measured through
``--engine-pid`` (the engine and all its descendants), and stopped by PID (SIGTERM, then
SIGKILL) in a ``finally``. The engine order alternates per repetition so slow drifts in machine
load hit both engines alike. The table reports medians over repetitions; "added" latency is
the engine's figure minus the direct run of the same repetition, and the last column is our
CPU per relayed packet over rtpengine's.

An engine that cannot be started is reported as not available; no figure is ever invented.
Everything is bounded: engine start-up, every rtpload run, and engine shutdown have timeouts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
DEFAULT_CALLS = (100, 250, 500, 1000)
DEFAULT_REPETITIONS = 3
DEFAULT_DURATION_S = 10
ENGINE_START_TIMEOUT_S = 15.0  # rtpengine is up in well under a second
ENGINE_STOP_TIMEOUT_S = 5.0  # SIGTERM grace before SIGKILL
PING_INTERVAL_S = 0.2
# rtpload bounds itself (setup and teardown at most 120 s each); this only catches a hang.
RTPLOAD_SLACK_S = 300
# A run whose sender missed its own 20 ms schedule by more than this at p99 was disturbed by
# other load on the machine; its latency tail says more about the machine than the engine.
DISTURBED_LATENESS_US = 1000.0
RTPLOAD_PORT_BASE = 20000  # endpoints at 20000.., clear of both engines' port ranges
LOG_TAIL_BYTES = 2000
PROC = Path("/proc")


@dataclass(frozen=True)
class Engine:
    """How to start one engine under test and where its ng control socket listens."""

    name: str
    argv: list[str]
    ng_port: int

    @property
    def ng_addr(self) -> str:
        return f"{LOOPBACK}:{self.ng_port}"


def rtpengine(binary: str, threads: int) -> Engine:
    # Userspace only (--table=-1: no kernel forwarding), no config file, no redis; a deleted
    # call is freed at once (--delete-delay=0) so back-to-back runs never run out of ports.
    return Engine(
        name="rtpengine",
        argv=[
            binary,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--table=-1",
            f"--interface={LOOPBACK}",
            f"--listen-ng={LOOPBACK}:2224",
            "--port-min=40000",
            "--port-max=50000",
            f"--num-threads={threads}",
            "--delete-delay=0",
            "--log-level=4",
        ],
        ng_port=2224,
    )


def softswitch(binary: str, threads: int, extra: list[str] | None = None) -> Engine:
    return Engine(
        name="softswitch",
        argv=[
            binary,
            "media",
            "--listen-ng",
            f"{LOOPBACK}:2223",
            "--interface",
            LOOPBACK,
            "--port-min",
            "30000",
            "--port-max",
            "40000",
            "--num-threads",
            str(threads),
            *(extra or []),
        ],
        ng_port=2223,
    )


def ng_ping(port: int, timeout_s: float) -> bool:
    """One ng ``ping``; True if the engine answered ``pong`` with our cookie."""
    cookie = f"relaybench{os.getpid()}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.sendto(f"{cookie} d7:command4:pinge".encode(), (LOOPBACK, port))
            reply = sock.recv(65536)
        except OSError:
            return False
    return reply.startswith(cookie.encode() + b" ") and b"4:pong" in reply


def log_tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-LOG_TAIL_BYTES:].decode(errors="replace").strip()


def start_engine(engine: Engine, log_path: Path) -> subprocess.Popen[bytes] | str:
    """Starts the engine and waits for its ng pong; returns the process or why it failed."""
    if ng_ping(engine.ng_port, PING_INTERVAL_S):
        return f"ng port {engine.ng_port} already answers: another engine is running there"
    with log_path.open("ab") as log:
        try:
            proc = subprocess.Popen(engine.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        except OSError as exc:
            return f"cannot start {engine.argv[0]}: {exc}"
    deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode}: {log_tail(log_path)}"
        if ng_ping(engine.ng_port, PING_INTERVAL_S):
            return proc
        time.sleep(PING_INTERVAL_S)
    stop_engine(proc)
    return f"no ng pong within {ENGINE_START_TIMEOUT_S:.0f} s: {log_tail(log_path)}"


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL if it is still there after the grace period."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(ENGINE_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(ENGINE_STOP_TIMEOUT_S)


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (an engine may run workers in child processes)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree: list[int] = []
    todo = [root]
    while todo and len(tree) < len(children) + 1:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def load_average() -> float:
    return float((PROC / "loadavg").read_text().split()[0])


def run_rtpload(rtpload: Path, mode: list[str], calls: int, duration_s: int) -> dict[str, Any]:
    argv = [
        str(rtpload),
        *mode,
        "--calls",
        str(calls),
        "--duration",
        str(duration_s),
        "--port-base",
        str(RTPLOAD_PORT_BASE),
        "--json",
    ]
    load_before = load_average()
    try:
        done = subprocess.run(argv, capture_output=True, timeout=duration_s + RTPLOAD_SLACK_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"rtpload did not finish within {duration_s + RTPLOAD_SLACK_S} s"}
    if done.returncode != 0:
        return {"error": done.stderr.decode(errors="replace").strip()[-LOG_TAIL_BYTES:]}
    result: dict[str, Any] = json.loads(done.stdout)
    result["load_avg_1m_before"] = load_before
    return result


def run_engine(
    engine: Engine,
    rtpload: Path,
    calls: int,
    duration_s: int,
    log_dir: Path,
    *,
    extra_args: Sequence[str] = (),
) -> dict[str, Any]:
    """One rtpload run against a freshly started engine; ``extra_args`` go to rtpload."""
    started = start_engine(engine, log_dir / f"{engine.name}.log")
    if isinstance(started, str):
        return {"engine": engine.name, "calls": calls, "unavailable": started}
    try:
        pids = [arg for pid in process_tree(started.pid) for arg in ("--engine-pid", str(pid))]
        mode = [*extra_args, "--ng", engine.ng_addr, "--engine-name", engine.name, *pids]
        result = run_rtpload(rtpload, mode, calls, duration_s)
        if started.poll() is not None:
            result["error"] = f"engine exited during the run: {log_tail(log_dir / f'{engine.name}.log')}"
    finally:
        stop_engine(started)
    return {"engine": engine.name, "calls": calls, **result}


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summarize(runs: list[dict[str, Any]], engines: list[Engine], calls_list: list[int]) -> str:
    """Markdown table of medians per (N, engine)."""
    ok = [r for r in runs if "error" not in r and "unavailable" not in r]

    def of(name: str, calls: int) -> list[dict[str, Any]]:
        return [r for r in ok if r["engine"] == name and r["calls"] == calls]

    def field(rows: list[dict[str, Any]], key: str) -> list[float]:
        return [float(r[key]) for r in rows if r.get(key) is not None]

    lines = [
        "| N | engine | runs | loss % | p50 µs | p99 µs | added p50 µs | added p99 µs "
        "| engine CPU % core | CPU ns/pkt | ours/rtpengine ns/pkt | rtpload CPU % core | disturbed runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for calls in calls_list:
        direct = {r["repetition"]: r for r in of("direct", calls)}
        ns_per_packet = {e.name: median(field(of(e.name, calls), "cpu_ns_per_packet")) for e in engines}
        for name in ["direct", *(e.name for e in engines)]:
            rows = of(name, calls)
            if not rows:
                reasons = {r.get("unavailable") or r.get("error") for r in runs if r["engine"] == name}
                reason = "; ".join(sorted(str(x) for x in reasons if x))[:120] or "no runs"
                lines.append(f"| {calls} | {name} | 0 | not available: {reason} ||||||||||")
                continue
            added: dict[str, list[float]] = {"p50": [], "p99": []}
            for r in rows:
                base = direct.get(r["repetition"])
                if base is not None and name != "direct":
                    for q, diffs in added.items():
                        diffs.append(r["latency_us"][q] - base["latency_us"][q])
            ratio = None
            ours, theirs = ns_per_packet.get("softswitch"), ns_per_packet.get("rtpengine")
            if name == "softswitch" and ours is not None and theirs:
                ratio = ours / theirs
            lines.append(
                f"| {calls} | {name} | {len(rows)} | {cell(median(field(rows, 'loss_pct')), 3)} "
                f"| {cell(median([r['latency_us']['p50'] for r in rows]))} "
                f"| {cell(median([r['latency_us']['p99'] for r in rows]))} "
                f"| {cell(median(added['p50']))} | {cell(median(added['p99']))} "
                f"| {cell(median(field(rows, 'engine_cpu_pct_of_core')))} "
                f"| {cell(median(field(rows, 'cpu_ns_per_packet')), 0)} | {cell(ratio, 2)} "
                f"| {cell(median(field(rows, 'gen_cpu_pct_of_core')))} "
                f"| {sum(r['send_lateness_us']['p99'] > DISTURBED_LATENESS_US for r in rows)} |"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "load_avg_1m_at_start": load_average(),
    }
    binary = shutil.which("rtpengine")
    if binary:
        version = subprocess.run([binary, "--version"], capture_output=True, timeout=10, check=False)
        info["rtpengine_version"] = (version.stdout or version.stderr).decode(errors="replace").strip()
    return info


def raise_fd_limit() -> None:
    """Engines inherit our limit; 1000 calls need about 4000 sockets in rtpengine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bench_parser(doc: str | None, default_calls: Sequence[int]) -> argparse.ArgumentParser:
    """The options every rtpload-driven engine benchmark takes (relay.py, transcode.py); a
    script adds its own before calling :func:`parse_bench_args`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--rtpload", type=Path, default=REPO / "target" / "release" / "rtpload")
    parser.add_argument("--calls", type=int, nargs="+", default=list(default_calls))
    parser.add_argument("--repetitions", type=int, default=DEFAULT_REPETITIONS)
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION_S, help="timed seconds per run")
    parser.add_argument("--engines", nargs="+", default=["rtpengine", "softswitch"])
    parser.add_argument("--rtpengine-bin", default=shutil.which("rtpengine") or "rtpengine")
    parser.add_argument("--softswitch-bin", default=shutil.which("softswitch") or "softswitch")
    parser.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 1) // 2),
        help="media worker threads for both engines (default: half the cores, our engine's default)",
    )
    parser.add_argument("--out", type=Path, help="write every run as JSON here")
    parser.add_argument("--log-dir", type=Path, help="engine logs (default: a temporary directory)")
    return parser


def parse_bench_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, and refuse counts and durations out of range (the runs stay bounded)."""
    args = parser.parse_args()
    if not 1 <= args.repetitions <= 50 or not 1 <= args.duration <= 600:
        parser.error("--repetitions must be 1..50 and --duration 1..600")
    if any(not 1 <= n <= 10000 for n in args.calls):
        parser.error("--calls values must be 1..10000")
    return args


def prepare(
    args: argparse.Namespace, softswitch_args: Sequence[str], log_prefix: str
) -> tuple[list[Engine], Path] | None:
    """The engines named by ``--engines`` and the log directory, the file limit raised; None
    (after saying why on stderr) when rtpload is missing or an engine name is unknown."""
    if not args.rtpload.is_file():
        print(
            f"{args.rtpload} not found: run `make bench` or build with cargo build --release -p rtpload",
            file=sys.stderr,
        )
        return None
    makers = {
        "rtpengine": lambda: rtpengine(args.rtpengine_bin, args.threads),
        "softswitch": lambda: softswitch(args.softswitch_bin, args.threads, list(softswitch_args)),
    }
    unknown = [name for name in args.engines if name not in makers]
    if unknown:
        print(f"unknown engines {unknown}; choose from {sorted(makers)}", file=sys.stderr)
        return None
    engines = [makers[name]() for name in args.engines]
    raise_fd_limit()
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix=log_prefix))
    log_dir.mkdir(parents=True, exist_ok=True)
    return engines, log_dir


def sweep(
    args: argparse.Namespace,
    engines: list[Engine],
    calls_list: Sequence[int],
    log_dir: Path,
    *,
    mode: Sequence[str] = (),
    direct: bool = True,
) -> list[dict[str, Any]]:
    """Every repetition, every N: each engine once, freshly started, with rtpload in ``mode``;
    the engine order alternates per repetition and the direct baseline (unless ``direct`` is
    false) sits between the engines. Each run is printed to stderr as it ends."""
    runs: list[dict[str, Any]] = []
    for repetition in range(args.repetitions):
        order = engines if repetition % 2 == 0 else engines[::-1]
        for calls in calls_list:
            slots: list[Engine | None] = [order[0], *([None] if direct else []), *order[1:]]
            for engine in slots:
                if engine is None:
                    result: dict[str, Any] = {"engine": "direct", "calls": calls}
                    result |= run_rtpload(args.rtpload, [*mode, "--direct"], calls, args.duration)
                else:
                    result = run_engine(engine, args.rtpload, calls, args.duration, log_dir, extra_args=mode)
                result["repetition"] = repetition
                runs.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
    return runs


def write_out(path: Path | None, document: dict[str, Any], log_dir: Path) -> None:
    """The whole document as JSON at ``path`` (if given); then where the engine logs are."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"engine logs in {log_dir}", file=sys.stderr)


def main() -> int:
    args = parse_bench_args(bench_parser(__doc__, DEFAULT_CALLS))
    prepared = prepare(args, (), "relay-bench-")
    if prepared is None:
        return 2
    engines, log_dir = prepared
    info = machine()
    runs = sweep(args, engines, args.calls, log_dir)
    table = summarize(runs, engines, args.calls)
    print(table)
    config = {"calls": args.calls, "repetitions": args.repetitions, "duration_s": args.duration}
    write_out(args.out, {"machine": info, "config": config, "runs": runs, "table": table}, log_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
