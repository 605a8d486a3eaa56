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
    python3 bench/cps.py --rates 600 --seconds 60 --reps 3 --pin --kamailio   # with the anchor

The issue's anchors were measured on a box whose speed varies from day to day (the same node has
measured 0.84 and 1.45 ms per call in different sessions). ``--kamailio`` runs Kamailio (Debian
``kamailio``) as a stateful proxy between the same two SIPp instances, at each rate and rep,
alternating with the node: the anchor (≈0.45 ms per call in the issue) measured in the same
invocation, on the same core, with the same load generator.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable
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


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (Kamailio's main process and its children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == pgid:  # pgrp
            pids.append(int(entry.name))
    return pids


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
        self._start([*command, "--log-level", "warning", "run", "--config", str(config)], REPO, "node")

    def _start(self, argv: list[str], cwd: Path, what: str) -> None:
        """Starts ``argv`` on the node's core, in a process group of its own, and gives it 2 s."""
        # the log goes to a file, not a pipe: nobody reads a pipe while SIPp runs, and a node
        # logging a burst of warnings (calls refused at an overloading rate) would block on a
        # full pipe and stop answering altogether
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            pinned(argv, 0),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
            cwd=cwd,
        )
        time.sleep(2.0)
        if self.proc.poll() is not None:
            self.log.seek(0)
            err = self.log.read().decode(errors="replace")
            self.log.close()
            raise RuntimeError(f"{what} did not start: {err}")

    def cpu(self) -> float:
        """CPU seconds (user + system) the node has used."""
        return cpu_seconds(self.proc.pid)

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


#: Kamailio as a stateful proxy (``tm``): every request relayed to the UAS through a
#: transaction, a 2xx's ACK (no transaction of its own) forwarded statelessly. One UDP worker
#: (``children=1``), as the node has one loop thread. No record-route: SIPp's ``uac`` sends its
#: ACK and BYE to the proxy's address anyway, and the node it is compared with does not insert
#: one either.
KAMAILIO_CFG = """#!KAMAILIO
debug=0
log_stderror=yes
children=1
listen=udp:{listen}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    $du = "sip:{uas}";
    if (is_method("ACK")) {{
        if (t_check_trans()) {{ t_relay(); exit; }}
        forward();
        exit;
    }}
    if (!t_relay()) {{ sl_reply_error(); }}
}}
"""

KAMAILIO_MODULES = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules")


class Kamailio(Node):
    """Kamailio in the node's place (same address, same core): the anchor. Its CPU is the sum
    over its processes (the main one and the children it forks, all in one process group)."""

    def __init__(self, directory: Path) -> None:
        modules = next((m for m in KAMAILIO_MODULES if Path(m, "tm.so").exists()), None)
        if modules is None:
            raise RuntimeError(f"Kamailio's modules are not in {' or '.join(KAMAILIO_MODULES)}")
        cfg = directory / "kamailio.cfg"
        cfg.write_text(
            KAMAILIO_CFG.format(
                listen=f"{LOOPBACK}:{NODE_PORT}", modules=modules, uas=f"{LOOPBACK}:{UAS_PORT}"
            )
        )
        # -D: stay in the foreground (the children are still forked); -E: log to stderr;
        # shared memory for the transactions of a few thousand calls in flight
        argv = ["kamailio", "-f", str(cfg), "-D", "-E", "-m", "256", "-M", "32"]
        self._start(argv, directory, "kamailio")

    def cpu(self) -> float:
        total = 0.0
        for pid in group_pids(self.proc.pid):
            with contextlib.suppress(OSError):  # ended meanwhile
                total += cpu_seconds(pid)
        return total

    def rss(self) -> int:
        total = 0
        for pid in group_pids(self.proc.pid):
            with contextlib.suppress(OSError):
                total += rss_bytes(pid)
        return total


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
    before = node.cpu()
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
            now, cpu = time.monotonic(), node.cpu()
            span = min(now, t0 + seconds) - last_at
            if span >= 1.0:  # an interval while SIPp still offered calls
                intervals.append({
                    "t_s": round(now - t0, 1),
                    "node_cpu_ms_per_call": round(1000 * (cpu - last) / max(1.0, rate * span), 3),
                    "rss_mb": round(node.rss() / 1e6, 1),
                })  # fmt: skip
                last, last_at = cpu, now
        if uac.poll() is None:
            stop(uac)
    wall = time.monotonic() - t0
    used = node.cpu() - before
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


def parse_args() -> argparse.Namespace:
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
        "--kamailio",
        action="store_true",
        help="also run Kamailio as a stateful proxy in the node's place at each rate and rep (the "
        "issue's anchor, measured in the same invocation); reports its CPU per call and the ratio",
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
    return parser.parse_args()


def main() -> int:
    args = parse_args()
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
    others = compared(args)
    if others is None:
        print("--kamailio needs kamailio (Debian kamailio)", file=sys.stderr)
        return 2
    if others and not args.hold:
        result = run_paired(args, command, others, proxy)
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


def compared(args: argparse.Namespace) -> dict[str, list[str] | None] | None:
    """What the node is run beside: ``reference`` (an earlier node's command) and ``kamailio``
    (None: the anchor); None when Kamailio is asked for and not installed."""
    others: dict[str, list[str] | None] = {}
    if args.reference_bin is not None:
        others["reference"] = [args.reference_bin]
    if args.kamailio:
        if shutil.which("kamailio") is None:
            return None
        others["kamailio"] = None
    return others


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
    args: argparse.Namespace, command: list[str], others: dict[str, list[str] | None], proxy: str
) -> dict[str, object]:
    """Each rep and rate on the node under test and on each of ``others`` (``reference``: an
    earlier node's command; ``kamailio``: None, the anchor), one after the other (the order
    rotating per rep), each started afresh for its run: on a shared machine they see the same
    conditions, and their ratios mean more than any one figure."""

    def starter(cmd: list[str] | None) -> Callable[[Path], Node]:
        if cmd is None:
            return Kamailio
        return lambda tmp: Node(write_config(tmp, proxy), cmd)

    starters = {"node": starter(command)} | {name: starter(cmd) for name, cmd in others.items()}
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in starters}
    names = list(starters)
    for rep in range(args.reps):
        for rate in args.rates:
            shift = rep % len(names)
            for name in names[shift:] + names[:shift]:
                with tempfile.TemporaryDirectory() as tmp:
                    node = starters[name](Path(tmp))
                    try:
                        runs[name].append(run_rate(node, rate, args.seconds, args.hold_ms, args.sample_every))
                    finally:
                        node.stop()
    result: dict[str, object] = {"node": {"runs": runs["node"], **summarise(runs["node"], args.rates)}}
    for name, cmd in others.items():
        ratios = []
        for rate in args.rates:
            pairs = zip(
                (r for r in runs["node"] if r["rate"] == rate),
                (r for r in runs[name] if r["rate"] == rate),
                strict=True,
            )
            each = [
                float(str(a["node_cpu_ms_per_call"])) / float(str(b["node_cpu_ms_per_call"]))
                for a, b in pairs
            ]
            ratio = round(statistics.median(each), 3)
            ratios.append({"rate": rate, f"median_cpu_ratio_node_to_{name}": ratio})
        result[name] = {
            "command": cmd if cmd is not None else ["kamailio", "(bench/cps.py's KAMAILIO_CFG)"],
            "runs": runs[name],
            **summarise(runs[name], args.rates),
        }
        result["ratios" if name == "reference" else f"ratios_to_{name}"] = ratios
    return result


if __name__ == "__main__":
    sys.exit(main())
