"""Calls per second through the B2BUA: SIPp uac → node → SIPp uas on loopback.

For each offered rate, SIPp's built-in ``uac`` places calls (INVITE with SDP, ACK, a short hold,
BYE) through ``softswitch run`` to SIPp's built-in ``uas``; the media engine in the node anchors
every call's media (ports opened, SDP rewritten — no RTP is sent, this measures signalling). We
record the node's CPU time (user + system, from /proc) per completed call and whether every call
succeeded (SIPp's strict default behaviours: any unexpected message fails the call). The highest
rate with no failed call in every repetition is the clean CPS. A second mode holds many calls up
at once with the media proxy off and reports the node's resident memory per held call.

    python3 bench/cps.py --rates 50 100 200 --seconds 20 --reps 3 --out artifacts/bench-cps.json
    python3 bench/cps.py --hold 10000 --out artifacts/bench-cps-hold.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
NODE_PORT = 5460
UAS_PORT = 5470
UAC_PORT = 5480
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def write_config(directory: Path, media_proxy: str) -> Path:
    cfg = directory / "node.toml"
    cfg.write_text(
        f"""
[sip]
listen = "{LOOPBACK}:{NODE_PORT}"
[media]
interface = "{LOOPBACK}"
[parameters]
# media ports above the tests' range (tests/b2bua_harness.py: 21000-32700), so a benchmark
# never takes a port a test run beside it needs
SS_MEDIAPROXYPORT_START = 40000
SS_MEDIAPROXYPORT_END = 49999
SS_MEDIAPROXYMODE = "{media_proxy}"
[[mapping_gateway]]
name = "bench-customer"
addresses = ["{LOOPBACK}"]
[[routing_gateway]]
name = "bench-carrier"
address = "{LOOPBACK}:{UAS_PORT}"
"""
    )
    return cfg


#: this checkout (bench/..): the node runs the code beside this file, not an installed copy
REPO = Path(__file__).resolve().parent.parent


def node_command(binary: str | None, loop: str) -> list[str]:
    """How the node is started: ``binary`` when given, else this checkout's ``signaling.cli``
    under this interpreter; ``loop="asyncio"`` hides uvloop from it (the stdlib loop, for a
    comparison in the same invocation)."""
    if binary is not None:
        return [binary]
    hide = "sys.modules['uvloop'] = None; " if loop == "asyncio" else ""
    code = f"import sys; {hide}from signaling.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code]


class Node:
    def __init__(self, config: Path, command: list[str]) -> None:
        # the node's log goes to a file, not a pipe: nobody reads a pipe while SIPp runs, and a
        # node logging a burst of warnings (calls refused at an overloading rate) would block on
        # a full pipe and stop answering altogether
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            pinned([*command, "--log-level", "warning", "run", "--config", str(config)], 0),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
            cwd=REPO,
        )
        time.sleep(2.0)
        if self.proc.poll() is not None:
            self.log.seek(0)
            err = self.log.read().decode(errors="replace")
            self.log.close()
            raise RuntimeError(f"node did not start: {err}")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


#: ``--pin``: the node's CPU list and SIPp's (``taskset -c``); None runs both unpinned
PIN: tuple[str, str] | None = None


def pinned(command: list[str], which: int) -> list[str]:
    """``command`` under ``taskset`` when ``--pin`` is given (``which``: 0 node, 1 SIPp)."""
    return ["taskset", "-c", PIN[which], *command] if PIN is not None else command


def sipp(*args: str, wait: bool = True, timeout: float = 600) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        pinned(["sipp", "-i", LOOPBACK, "-nostdin", *args], 1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=tempfile.gettempdir(),
    )
    if wait:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop(proc)  # past its own -timeout: ended here, the run counts as failed
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_rate(node: Node, rate: int, seconds: int, hold_ms: int, sample_every: int = 0) -> dict[str, object]:
    """One offered rate for ``seconds``; with ``sample_every`` also the node's CPU per call and
    resident memory over each interval of that many seconds (does the cost drift as the run
    goes on?), the calls of an interval taken as the offered rate times its length."""
    calls = rate * seconds
    errors = Path(tempfile.gettempdir()) / f"cps-uac-{rate}-errors.log"
    errors.unlink(missing_ok=True)
    stat_file = Path(tempfile.gettempdir()) / f"uac-{rate}.csv"
    stat_file.unlink(missing_ok=True)
    uas = sipp("-sn", "uas", "-p", str(UAS_PORT), "-mp", "61000", "-l", "100000", wait=False)
    time.sleep(0.5)
    before = cpu_seconds(node.proc.pid)
    t0 = time.monotonic()
    uac = sipp(
        "-sn", "uac", "-p", str(UAC_PORT), "-mp", "62000", "-r", str(rate), "-m", str(calls),
        "-d", str(hold_ms), "-l", str(rate * 10), "-timeout", f"{seconds * 4 + 30}s",
        "-trace_stat", "-stf", f"uac-{rate}.csv", "-trace_err", "-error_file", str(errors),
        f"{LOOPBACK}:{NODE_PORT}", wait=not sample_every, timeout=seconds * 4 + 60,
    )  # fmt: skip
    intervals: list[dict[str, float]] = []
    if sample_every:
        last, last_at = before, t0
        while uac.poll() is None and time.monotonic() - t0 < seconds * 4 + 60:
            left = t0 + seconds - time.monotonic()
            time.sleep(min(sample_every, left) if left >= 1.0 else 0.5)
            now, cpu = time.monotonic(), cpu_seconds(node.proc.pid)
            span = min(now, t0 + seconds) - last_at
            if span >= 1.0:  # an interval while SIPp still offered calls
                intervals.append({
                    "t_s": round(now - t0, 1),
                    "node_cpu_ms_per_call": round(1000 * (cpu - last) / max(1.0, rate * span), 3),
                    "rss_mb": round(rss_bytes(node.proc.pid) / 1e6, 1),
                })  # fmt: skip
                last, last_at = cpu, now
        if uac.poll() is None:
            stop(uac)
    wall = time.monotonic() - t0
    used = cpu_seconds(node.proc.pid) - before
    stop(uas)
    clean = uac.returncode == 0
    failures = _failure_kinds(errors) if not clean else {}
    completed = _completed_calls(stat_file)
    return {
        "failures": failures,
        "rate": rate,
        "calls": calls,
        "clean": clean,
        # calls SIPp saw succeed (its own count), and those per second of offered load: what an
        # overloaded node still carries
        "completed_calls": completed,
        "goodput_cps": round(completed / seconds, 1) if completed is not None else None,
        "sipp_exit": uac.returncode if uac.returncode is not None else -1,
        "wall_s": round(wall, 2),
        "node_cpu_s": round(used, 3),
        "node_cpu_ms_per_call": round(1000 * used / calls, 3),
        "node_cpu_share_of_core": round(used / wall, 3),
        **({"intervals": intervals} if sample_every else {}),
    }


def _completed_calls(stat_file: Path) -> int | None:
    """SIPp's cumulative count of successful calls, from the last line of its statistics file
    (``-trace_stat``), or None when there is none."""
    try:
        lines = stat_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    if len(lines) < 2:
        return None
    columns = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    value = columns.get("SuccessfulCall(C)", "")
    return int(value) if value.isdigit() else None


def _failure_kinds(errors: Path) -> dict[str, int]:
    """What SIPp found unexpected, by the first line of the message it got."""
    kinds: dict[str, int] = {}
    if not errors.exists():
        return kinds
    for line in errors.read_text(errors="replace").splitlines():
        if "received '" in line:
            what = line.split("received '", 1)[1][:40]
            kinds[what] = kinds.get(what, 0) + 1
    return kinds


def current_calls(stat: Path) -> int:
    """SIPp's CurrentCall at its last statistics line (calls up at that moment)."""
    lines = stat.read_text(errors="replace").splitlines() if stat.exists() else []
    if len(lines) < 2:
        return 0
    header = lines[0].split(";")
    last = lines[-1].split(";")
    return int(last[header.index("CurrentCall")]) if "CurrentCall" in header else 0


def run_hold(node: Node, calls: int, rate: int) -> dict[str, float | int]:
    """Hold ``calls`` calls up at once; resident memory per held call."""
    base = rss_bytes(node.proc.pid)
    uas = sipp("-sn", "uas", "-p", str(UAS_PORT), "-mp", "61000", "-l", "100000", wait=False)
    time.sleep(0.5)
    # held long enough that the measurement falls after every transaction of the ramp has ended
    # (RFC 3261 Timers L/M/K keep a transaction 32 s past its final response): what remains is
    # the state of established calls
    hold_ms = int(1000 * (calls / rate + 60))
    stat = Path(tempfile.gettempdir()) / "cps-hold-stat.csv"
    stat.unlink(missing_ok=True)
    uac = sipp(
        "-sn", "uac", "-p", str(UAC_PORT), "-mp", "62000", "-r", str(rate), "-m", str(calls),
        "-d", str(hold_ms), "-l", str(calls), "-trace_stat", "-stf", str(stat), "-fd", "1",
        f"{LOOPBACK}:{NODE_PORT}", wait=False,
    )  # fmt: skip
    time.sleep(calls / rate + 40)
    peak = rss_bytes(node.proc.pid)
    held = current_calls(stat)
    stop(uac)
    stop(uas)
    return {
        "held_calls": held,
        "offered_calls": calls,
        "rss_base_mb": round(base / 2**20, 1),
        "rss_held_mb": round(peak / 2**20, 1),
        "bytes_per_call": int((peak - base) / max(held, 1)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--seconds", type=int, default=20, help="offered load duration per run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hold-ms", type=int, default=1000, help="call duration (SIPp -d)")
    parser.add_argument("--hold", type=int, default=0, help="instead: hold this many calls at once")
    parser.add_argument("--hold-rate", type=int, default=200)
    parser.add_argument("--media-proxy", default="on", choices=["on", "off"])
    parser.add_argument(
        "--sample-every",
        type=int,
        default=0,
        help="also record the node's CPU per call and RSS every this many seconds of each run",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--softswitch-bin", default=None, help="start this binary (default: this checkout's code)"
    )
    parser.add_argument(
        "--reference-bin",
        default=None,
        help="also run this node (e.g. an earlier version) at each rate and rep, alternating with the "
        "node under test, each started afresh per run; reports both and their CPU ratio",
    )
    parser.add_argument(
        "--loop",
        default="default",
        choices=["default", "asyncio"],
        help="asyncio: hide uvloop from the node (the stdlib loop); default: what `softswitch run` picks",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the node (every thread) on CPU 1 and SIPp on CPU 0 (taskset): the node on a core "
        "of its own, as in service, instead of sharing both with the load generator",
    )
    args = parser.parse_args()
    if args.pin:
        if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
            print("--pin needs two CPUs and taskset (util-linux)", file=sys.stderr)
            return 2
        global PIN  # noqa: PLW0603 (a run-wide setting of this script)
        PIN = ("1", "0")
    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian sip-tester)", file=sys.stderr)
        return 2
    command = node_command(args.softswitch_bin, args.loop)
    proxy = "off" if args.hold else args.media_proxy
    if args.reference_bin is not None and not args.hold:
        result = run_paired(args, command, [args.reference_bin], proxy)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            node = Node(write_config(Path(tmp), proxy), command)
            try:
                if args.hold:
                    result = {"hold": run_hold(node, args.hold, args.hold_rate)}
                else:
                    runs = [
                        run_rate(node, rate, args.seconds, args.hold_ms, args.sample_every)
                        for rate in args.rates
                        for _ in range(args.reps)
                    ]
                    result = {"runs": runs, **summarise(runs, args.rates)}
            finally:
                node.stop()
    result["media_proxy"] = proxy
    result["pinned"] = args.pin
    uvloop_here = importlib.util.find_spec("uvloop") is not None
    result["loop"] = "uvloop" if args.loop == "default" and uvloop_here else "asyncio"
    if args.softswitch_bin is not None:
        result["loop"] = "whatever --softswitch-bin picks"
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def summarise(runs: list[dict[str, object]], rates: list[int]) -> dict[str, object]:
    """Per rate: clean runs and medians; the highest rate clean in every run."""
    summary = []
    for rate in rates:
        mine = [r for r in runs if r["rate"] == rate]
        summary.append(
            {
                "rate": rate,
                "clean_runs": sum(bool(r["clean"]) for r in mine),
                "runs": len(mine),
                "median_node_cpu_ms_per_call": statistics.median(
                    float(str(r["node_cpu_ms_per_call"])) for r in mine
                ),
                "median_node_cpu_share_of_core": statistics.median(
                    float(str(r["node_cpu_share_of_core"])) for r in mine
                ),
                "median_goodput_cps": _median_or_none([r.get("goodput_cps") for r in mine]),
            }
        )
    clean = [int(str(s["rate"])) for s in summary if s["clean_runs"] == s["runs"]]
    return {"summary": summary, "highest_clean_cps": max(clean) if clean else 0}


def _median_or_none(values: list[object]) -> float | None:
    known = [float(str(v)) for v in values if v is not None]
    return statistics.median(known) if known else None


def run_paired(
    args: argparse.Namespace, command: list[str], reference: list[str], proxy: str
) -> dict[str, object]:
    """Each rep and rate on the node under test and on the reference node, one after the other
    (the order alternating per rep), each started afresh for its run: on a shared machine the
    two see the same conditions, and their ratio means more than either figure."""
    runs: dict[str, list[dict[str, object]]] = {"node": [], "reference": []}
    for rep in range(args.reps):
        for rate in args.rates:
            order = [("node", command), ("reference", reference)]
            for name, cmd in order if rep % 2 == 0 else order[::-1]:
                with tempfile.TemporaryDirectory() as tmp:
                    node = Node(write_config(Path(tmp), proxy), cmd)
                    try:
                        runs[name].append(run_rate(node, rate, args.seconds, args.hold_ms, args.sample_every))
                    finally:
                        node.stop()
    ratios = []
    for rate in args.rates:
        pairs = zip(
            (r for r in runs["node"] if r["rate"] == rate),
            (r for r in runs["reference"] if r["rate"] == rate),
            strict=True,
        )
        each = [
            float(str(a["node_cpu_ms_per_call"])) / float(str(b["node_cpu_ms_per_call"])) for a, b in pairs
        ]
        ratios.append({"rate": rate, "median_cpu_ratio_node_to_reference": round(statistics.median(each), 3)})
    return {
        "node": {"runs": runs["node"], **summarise(runs["node"], args.rates)},
        "reference": {
            "command": reference,
            "runs": runs["reference"],
            **summarise(runs["reference"], args.rates),
        },
        "ratios": ratios,
    }


if __name__ == "__main__":
    sys.exit(main())
