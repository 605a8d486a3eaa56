"""The node's per-call path in one process: SIPp-like calls fed to :class:`Node` without sockets.

bench/cps.py measures the node end to end with SIPp and the kernel's loopback in the way, on a
shared machine: a figure with a few percent of noise and no profile. This harness runs the same
call flow — SIPp's built-in ``uac`` and ``uas``: INVITE (SDP) → 180 → 200 (SDP) → ACK → BYE →
200, 12 messages through the node — inside one process: datagrams go straight into the node's
receive path (``Node._on_data``) and what the node sends is captured instead of written to a
socket; the in-process media engine anchors every call (offer, answer, delete) as in the real
run. Calls overlap as in the CPS bench (``--concurrent`` calls in flight, started in turn). What
is measured is the process's CPU time per call (the event loop, the SIP stack, the B2BUA, the
media commands), without the kernel's UDP cost (~0.3 ms per call on loopback, see
bench/README.md).

    python bench/b2bua_path.py                      # --calls 3000 --repeat 5
    python bench/b2bua_path.py --profile out.prof   # one run under cProfile
    python bench/b2bua_path.py --loop asyncio       # the stdlib loop even when uvloop is there
    python bench/b2bua_path.py --media-proxy off    # no media command: what anchoring costs
    python bench/b2bua_path.py --reference-code DIR # paired with another checkout's node
    python bench/b2bua_path.py --before 32000 --repeat 1   # measured in steady state (see --before)

``--code DIR`` measures the node of another checkout (its ``signaling`` and ``mediacore``
imported instead of this one's) with this harness; ``--reference-code DIR`` alternates run by
run between this checkout and that one, each run in a fresh process, and reports both and the
median of their per-pair ratios (the machine is shared: the ratio means more than either).

The peers' messages are built by string formatting from what the node sent (Via, From, To,
Call-ID, CSeq copied as a UAS does); that work is timed apart and subtracted ("driver"). The
cyclic collector's passes during the measured calls are reported too (count per generation,
time per call, the longest pass).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the checkout whose node is measured: ``--code DIR``, else this one (it decides the imports below)
sys.path.insert(
    0,
    sys.argv[sys.argv.index("--code") + 1]
    if "--code" in sys.argv[:-1]
    else str(Path(__file__).resolve().parent.parent),
)

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.routing import StaticRouter
from signaling.sip.limits import OverloadConfig, OverloadGuard

try:
    from signaling.run import settle_collector
except ImportError:  # a checkout before it (run against an older node): what its run.py did
    settle_collector = gc.freeze

A = ("127.0.0.1", 5480)  # the customer (SIPp uac)
B = ("127.0.0.1", 5470)  # the carrier (SIPp uas)

SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

INVITE = (
    "INVITE sip:service@127.0.0.1:5460 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5480;branch=z9hG4bK-9-{n}-0\r\n"
    "From: sipp <sip:sipp@127.0.0.1:5480>;tag=9SIPpTag00{n}\r\n"
    "To: service <sip:service@127.0.0.1:5460>\r\n"
    "Call-ID: {n}-9@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: sip:sipp@127.0.0.1:5480\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: Performance Test\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{body}"
)

IN_DIALOG = (
    "{method} sip:service@127.0.0.1:5460 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5480;branch=z9hG4bK-9-{n}-{step}\r\n"
    "From: sipp <sip:sipp@127.0.0.1:5480>;tag=9SIPpTag00{n}\r\n"
    "To: service <sip:service@127.0.0.1:5460>{to_tag}\r\n"
    "Call-ID: {n}-9@127.0.0.1\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Contact: sip:sipp@127.0.0.1:5480\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: Performance Test\r\n"
    "Content-Length: 0\r\n\r\n"
)

_COPIED = re.compile(rb"^(Via|From|To|Call-ID|CSeq):[^\r\n]*\r\n", re.MULTILINE)
_TO_TAG = re.compile(rb"^To:[^\r\n]*;tag=([^;\r\n]+)", re.MULTILINE)


def uas_response(request: bytes, status: str, tag: str, body: str = "") -> bytes:
    """What SIPp's uas answers: the request's Via/From/To/Call-ID/CSeq, our To tag, Contact."""
    copied = b"".join(m.group(0) for m in _COPIED.finditer(request))
    if b";tag=" not in copied.split(b"\r\nTo:", 1)[1].split(b"\r\n", 1)[0]:
        copied = re.sub(rb"^(To:[^\r\n]*)", rb"\1;tag=" + tag.encode(), copied, count=1, flags=re.MULTILINE)
    extra = "Content-Type: application/sdp\r\n" if body else ""
    head = f"SIP/2.0 {status}\r\n".encode() + copied
    tail = f"Contact: <sip:127.0.0.1:5470;transport=UDP>\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}"
    return head + tail.encode()


class Harness:
    """One node, its in-process media engine, and the captured output."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.driver_s = 0.0

    def send(self, data: bytes, addr: tuple[str, int], transport: str = "UDP") -> None:
        self.sent.append((data, addr))

    def take(self, addr: tuple[str, int], start: bytes, *needles: bytes) -> bytes:
        """The oldest message sent to ``addr`` that starts with ``start`` and holds ``needles``."""
        for i, (data, to) in enumerate(self.sent):
            if to == addr and data.startswith(start) and all(n in data for n in needles):
                del self.sent[i]
                return data
        raise RuntimeError(f"the node sent no {start!r} to {addr}")

    def feed(self, data: bytes, addr: tuple[str, int]) -> None:
        self.node._on_data(data, addr, "UDP")


async def settle(node: Node) -> None:
    """One turn of the loop per datagram, as a real one takes; more while tasks started by
    the node (a call's inputs run in one where the node uses them) are still running."""
    for _ in range(10):
        await asyncio.sleep(0)
        if len(asyncio.all_tasks()) <= 1:
            return


class Calls:
    """SIPp's uac and uas around the node: one method per step of a call."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.invites: dict[int, bytes] = {}
        self.tags: dict[int, str] = {}

    def _feed(self, build: Callable[[], bytes], addr: tuple[str, int]) -> None:
        t = time.perf_counter()
        data = build()
        self.h.driver_s += time.perf_counter() - t
        self.h.feed(data, addr)

    def invite(self, n: int) -> None:
        body = SDP.format(port=6000 + 2 * (n % 1000))
        self._feed(lambda: INVITE.format(n=n, length=len(body), body=body).encode(), A)

    def ring(self, n: int) -> None:
        request = self.h.take(B, b"INVITE ")
        self.invites[n] = request
        self._feed(lambda: uas_response(request, "180 Ringing", f"{n}SIPpTag01"), B)

    def answer(self, n: int) -> None:
        request = self.invites.pop(n)
        body = SDP.format(port=7000 + 2 * (n % 1000))
        self._feed(lambda: uas_response(request, "200 OK", f"{n}SIPpTag01", body), B)

    def ack(self, n: int) -> None:
        call_id = f"Call-ID: {n}-9@".encode()
        self.h.take(A, b"SIP/2.0 180", call_id)
        ok = self.h.take(A, b"SIP/2.0 200", call_id, b"INVITE")
        self.h.take(B, b"ACK ")
        match = _TO_TAG.search(ok)
        if match is None:
            raise RuntimeError("the node's 200 OK has no To tag")
        self.tags[n] = ";tag=" + match.group(1).decode()
        tag = self.tags[n]
        self._feed(lambda: IN_DIALOG.format(method="ACK", n=n, step=5, to_tag=tag, cseq=1).encode(), A)

    def bye(self, n: int) -> None:
        tag = self.tags.pop(n)
        self._feed(lambda: IN_DIALOG.format(method="BYE", n=n, step=7, to_tag=tag, cseq=2).encode(), A)

    def bye_ok(self, n: int) -> None:
        request = self.h.take(B, b"BYE ")
        self.h.take(A, b"SIP/2.0 200", f"Call-ID: {n}-9@".encode(), b"BYE")
        self._feed(lambda: uas_response(request, "200 OK", ""), B)


async def run_calls(h: Harness, first: int, calls: int, concurrent: int) -> None:
    """Calls ``first`` to ``first + calls - 1``, ``concurrent`` in flight: each step of each
    call in turn."""
    peers = Calls(h)
    steps = [peers.invite, peers.ring, peers.answer, peers.ack, peers.bye, peers.bye_ok]
    # call n does step k at tick n + k * spacing: `concurrent` calls overlap
    spacing = max(1, concurrent // len(steps))
    last = calls - 1 + spacing * (len(steps) - 1)
    for tick in range(last + 1):
        for k, step in enumerate(steps):
            n = tick - k * spacing
            if 0 <= n < calls:
                step(first + n)
                await settle(h.node)


def free_port() -> int:
    """A port free now for UDP and TCP (the node binds its SIP sockets, though nothing uses them)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


class CollectorWatch:
    """The cyclic collector's passes while armed: how many per generation, their total and the
    longest (a pass stops the loop: a long one delays every call's messages)."""

    def __init__(self) -> None:
        self.armed = False
        self.started = 0.0
        self.passes = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.armed:
            return
        if phase == "start":
            self.started = time.perf_counter()
            return
        took = time.perf_counter() - self.started
        generation = info["generation"]
        self.passes[generation] += 1
        self.seconds[generation] += took
        self.longest = max(self.longest, took)


async def until_ended(node: Node) -> None:
    """Until the calls' media deletes have come back (the node ends a call's media without
    waiting for the media worker: its final statistics come on the loop a moment later)."""
    for _ in range(2000):
        if not node.calls:
            return
        await asyncio.sleep(0.001)


class TimerPath:
    """Wall time of the node's timer path while armed: the loop timer's handler
    (``Schedule._on_timer``, with the re-checks it makes) and the re-check of the loop timer
    after each input (``Schedule._reschedule`` outside the handler), wrapped on the node; and
    the media port's collection of deferred deletes (``InProcessMedia._collect``, a loop timer
    of its own), with the part of it that hands each call its outcome (``_hand_on``: the
    calls' ends) apart — the rest is the engine's: the outcomes built and converted."""

    def __init__(self, node: Node, media: InProcessMedia) -> None:
        self.armed = False
        self.seconds = {"on_timer": 0.0, "reschedule": 0.0, "media_collect": 0.0, "media_hand_on": 0.0}
        self._inside = False
        on_timer, reschedule = node._on_timer, node._reschedule
        collect, hand_on = media._collect, media._hand_on

        def timed(name: str, step: Callable[..., None]) -> Callable[..., None]:
            def run(*args: object) -> None:
                started = time.perf_counter()
                try:
                    step(*args)
                finally:
                    if self.armed:
                        self.seconds[name] += time.perf_counter() - started

            return run

        media._collect = timed("media_collect", collect)  # type: ignore[method-assign]
        media._hand_on = timed("media_hand_on", hand_on)  # type: ignore[method-assign]

        def timed_on_timer() -> None:
            started = time.perf_counter()
            self._inside = True
            try:
                on_timer()
            finally:
                self._inside = False
                if self.armed:
                    self.seconds["on_timer"] += time.perf_counter() - started

        def timed_reschedule() -> None:
            if self._inside or not self.armed:
                reschedule()
                return
            started = time.perf_counter()
            try:
                reschedule()
            finally:
                self.seconds["reschedule"] += time.perf_counter() - started

        node._on_timer = timed_on_timer  # type: ignore[method-assign]
        node._reschedule = timed_reschedule  # type: ignore[method-assign]


async def one_run(
    calls: int,
    concurrent: int,
    profile: cProfile.Profile | None,
    media_proxy: str = "on",
    before: int = 50,
    *,
    timer_path: bool = False,
) -> dict[str, Any]:
    config = load(
        {
            "sip": {"listen": f"127.0.0.1:{free_port()}"},
            "media": {"interface": "127.0.0.1"},
            "parameters": {
                "SS_MEDIAPROXYPORT_START": 40000,
                "SS_MEDIAPROXYPORT_END": 49999,
                # off: the SDP passes untouched, no media command runs (what anchoring costs)
                "SS_MEDIAPROXYMODE": media_proxy,
            },
            "mapping_gateway": [{"name": "bench-customer", "addresses": ["127.0.0.1"]}],
            "routing_gateway": [{"name": "bench-carrier", "address": "127.0.0.1:5470"}],
        }
    )
    engine = MediaEngine(interface="127.0.0.1", port_min=40000, port_max=49999)
    media = InProcessMedia(engine)
    node = Node(config, media, StaticRouter(config))
    # the loop runs flat out here, which the overload guard would (rightly) take for overload
    node.overload = OverloadGuard(OverloadConfig(cpu_high=2.0, cpu_low=2.0))
    h = Harness(node)
    timed = TimerPath(node, media) if timer_path else None
    await node.start()
    settle_collector()  # the collector's policy of a running node (signaling/run.py)
    node.transport.send = h.send  # type: ignore[method-assign]
    try:
        await run_calls(h, 0, before, concurrent)  # warm-up: caches, first allocations
        await until_ended(node)
        h.driver_s = 0.0
        started = node.stats.calls_answered
        watch = CollectorWatch()
        gc.callbacks.append(watch)
        if profile is not None:
            profile.enable()
        watch.armed = True
        if timed is not None:
            timed.armed = True
        cpu, wall = time.process_time(), time.perf_counter()
        await run_calls(h, before, calls, concurrent)
        await until_ended(node)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        watch.armed = False
        if timed is not None:
            timed.armed = False
        if profile is not None:
            profile.disable()
        gc.callbacks.remove(watch)
        answered = node.stats.calls_answered - started
        if answered != calls or node.calls:
            raise RuntimeError(f"{answered} of {calls} calls answered, {len(node.calls)} left up")
    finally:
        node.transport_open = False
        await node.transport.close()
        media.close()
        engine.close()
    result: dict[str, Any] = {
        "calls": calls,
        "cpu_ms_per_call": round(1000 * (cpu - h.driver_s) / calls, 4),
        "driver_ms_per_call": round(1000 * h.driver_s / calls, 4),
        "wall_ms_per_call": round(1000 * wall / calls, 4),
        # the collector during the run (every call ended within it is still held: < 32 s)
        "gc_passes_by_generation": watch.passes,
        "gc_ms_per_call": round(1000 * sum(watch.seconds) / calls, 4),
        "gc_longest_pass_ms": round(1000 * watch.longest, 2),
    }
    if timed is not None:
        result["timer_path_us_per_call"] = {k: round(1e6 * v / calls, 1) for k, v in timed.seconds.items()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrent", type=int, default=100, help="calls in flight")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loop", default="default", choices=["default", "asyncio"])
    parser.add_argument(
        "--media-proxy", default="on", choices=["on", "off"], help="off: no media command (SS_MEDIAPROXYMODE)"
    )
    parser.add_argument(
        "--before",
        type=int,
        default=50,
        help="calls run (unmeasured) before the measured ones; they stay held 32 s, so about 30 s of "
        "them puts the measured calls in the node's steady state",
    )
    parser.add_argument(
        "--timer-path",
        action="store_true",
        help="also time the node's timer path (the loop timer's handler, the re-check after each input) "
        "and the media port's collection of deferred deletes",
    )
    parser.add_argument("--profile", type=Path, default=None, help="one run under cProfile, stats here")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--code", type=Path, default=None, help="measure this checkout's node")
    parser.add_argument(
        "--reference-code", type=Path, default=None, help="alternate with this checkout's node, paired"
    )
    args = parser.parse_args()
    if args.reference_code is not None:
        return paired(args)
    runner: Callable[[Any], Any] = asyncio.run
    loop_name = "asyncio"
    if args.loop == "default":
        try:
            import uvloop  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

            runner, loop_name = uvloop.run, "uvloop"
        except ImportError:
            pass
    if args.profile is not None:
        prof = cProfile.Profile()
        result = runner(
            one_run(
                args.calls, args.concurrent, prof, args.media_proxy, args.before, timer_path=args.timer_path
            )
        )
        prof.dump_stats(str(args.profile))
        print(json.dumps(result))
        return 0
    runs = [
        runner(
            one_run(
                args.calls, args.concurrent, None, args.media_proxy, args.before, timer_path=args.timer_path
            )
        )
        for _ in range(args.repeat)
    ]
    summary = {
        "loop": loop_name,
        "runs": runs,
        "median_cpu_ms_per_call": statistics.median(r["cpu_ms_per_call"] for r in runs),
        "best_cpu_ms_per_call": min(r["cpu_ms_per_call"] for r in runs),
        "median_gc_ms_per_call": statistics.median(r["gc_ms_per_call"] for r in runs),
        "longest_gc_pass_ms": max(r["gc_longest_pass_ms"] for r in runs),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


def paired(args: argparse.Namespace) -> int:
    """``--repeat`` runs of this checkout's node and of ``--reference-code``'s, alternating
    (the order swapped every repetition), each in a process of its own."""
    trees = {"node": Path(__file__).resolve().parent.parent, "reference": args.reference_code.resolve()}
    runs: dict[str, list[dict[str, Any]]] = {"node": [], "reference": []}
    for rep in range(args.repeat):
        order = list(trees.items()) if rep % 2 == 0 else list(trees.items())[::-1]
        for name, tree in order:
            command = [sys.executable, __file__, "--code", str(tree), "--repeat", "1"]
            command += ["--calls", str(args.calls), "--concurrent", str(args.concurrent), "--loop", args.loop]
            command += ["--media-proxy", args.media_proxy, "--before", str(args.before)]
            command += ["--timer-path"] if args.timer_path else []
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[name].extend(json.loads(done.stdout)["runs"])
    pairs = zip(runs["node"], runs["reference"], strict=True)
    ratios = [a["cpu_ms_per_call"] / b["cpu_ms_per_call"] for a, b in pairs]
    summary: dict[str, Any] = {"reference_code": str(trees["reference"])}
    for name, mine in runs.items():
        summary[name] = {
            "runs": mine,
            "median_cpu_ms_per_call": statistics.median(r["cpu_ms_per_call"] for r in mine),
            "median_gc_ms_per_call": statistics.median(r["gc_ms_per_call"] for r in mine),
            "longest_gc_pass_ms": max(r["gc_longest_pass_ms"] for r in mine),
        }
    summary["median_cpu_ratio_node_to_reference"] = round(statistics.median(ratios), 3)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
