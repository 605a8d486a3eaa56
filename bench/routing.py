"""Routing and rating in memory at scale: snapshot load time, rate lookup and whole-decision latency.

The store holds a wholesale operator's configuration (bench/routing_world.py): a customer deck
of ``--rates`` prefixes (default 1,000,000), vendor decks on top (20 x 5,000), ``--gateways``
routing gateways (default 1,000) and 100 customers. We measure, in one process:

(a) **load**: ``load_snapshot(store)`` from a fresh read, wall time (the issue's target: a
    million prefixes in at most 4 s; OpenSIPS drouting loads 383k rules in about 4 s), and the
    snapshot's routing cache with its compiled planner, made after it (as the node's loading
    thread does (``admission.prepare``: candidate sets, route settings);
(b) **lookup**: the rate lookup alone, ``RateGroup.lookup(number, at)`` on the customer deck,
    and the rate selection through the billing hierarchy (``select_rate``), per number
    (target p99 at most 20 us);
(c) **decision**: the whole in-memory admission, routing and rating of a call
    (``signaling.callproc.admission.decide``: ingress, limits, lists, dial plans, number
    sections, rate, every candidate gateway's vendor rate and cost, availability, the sort,
    the routes with their number rewriting), per call (target p99 at most 50 us);
(d) **collector pauses** during (c): every cyclic garbage collection (gc.callbacks), its
    generation and duration; and after the runs one full collection timed on its own, the
    pause a full pass over the snapshot and its caches costs the node.

Two planners, in that order, each on its own fresh snapshot with the other's gone (the
collector walks every live object): ``reference`` — the pure-Python planner
(``plan_routes_python``) on a snapshot the collector tracks (``load_snapshot(untracked=False)``),
i.e. the code before the compiled planner —, then ``compiled`` — the compiled planner on a
snapshot kept out of the collector's walks, as the node runs. Both get the same calls and the
same node state (``--planners`` picks one).

Numbers: 95 % under a prefix of the deck (11-13 digits), 5 % random digit strings; half the
customers send them with 00 in front (stripped by their dial plan). Each call is timed on its
own with ``perf_counter_ns`` (the timer's own cost, measured and reported as ``timer_ns``, is
included); each run times ``--calls`` calls after a warm-up of 2,000; we report every run's
p50/p99/max and the median over ``--runs`` runs. The cyclic garbage collector stays on, as on
the node.

    python bench/routing.py --out bench/results/routing.json
    python bench/routing.py --db postgresql --runs 3          # the store on a fresh PostgreSQL
    python bench/routing.py --rates 100000 --profile load     # pyinstrument over one load
    python bench/routing.py --rates 100000 --profile decision # ... over 20,000 decisions
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import routing_world  # noqa: E402 (bench/, this script's own directory)

from signaling.billing import RateSources, select_rate  # noqa: E402
from signaling.callproc.admission import decide, prepare  # noqa: E402
from signaling.callproc.limits import Counters  # noqa: E402
from signaling.callproc.quality import Quality  # noqa: E402
from signaling.callproc.routes import RouteCache, route_cache  # noqa: E402
from signaling.callproc.snapshot import Snapshot, load_snapshot  # noqa: E402
from signaling.routing import InboundCall  # noqa: E402
from signaling.store import Store, open_store  # noqa: E402

AT = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
NOW = 1000.0
WARM_UP = 2_000
PLANNERS = ("reference", "compiled")


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def percentiles(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "p50_us": ordered[n // 2] / 1000,
        "p90_us": ordered[int(n * 0.90)] / 1000,
        "p99_us": ordered[min(n - 1, int(n * 0.99))] / 1000,
        "max_us": ordered[-1] / 1000,
        "mean_us": sum(ordered) / n / 1000,
    }


def timer_floor() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        samples.append(clock() - t0)
    return sorted(samples)[len(samples) // 2]


def time_each(
    items: list[Any], work: Callable[[Any], object], prepare: Callable[[Any], Any] | None = None
) -> list[int]:
    """``work(item)`` timed for each item, after a warm-up on the first ones; ``prepare`` makes
    the argument of each just before its timing (so the inputs are not all alive at once)."""
    clock = time.perf_counter_ns
    for item in items[:WARM_UP]:
        work(item if prepare is None else prepare(item))
    samples = []
    for raw in items:
        item = raw if prepare is None else prepare(raw)
        t0 = clock()
        work(item)
        samples.append(clock() - t0)
    return samples


class Pauses:
    """The cyclic collector's passes while it is attached: (generation, duration ns)."""

    def __init__(self) -> None:
        self.passes: list[tuple[int, int]] = []
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.passes.append((info["generation"], time.perf_counter_ns() - self._started))

    @contextmanager
    def attached(self) -> Iterator[Pauses]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for generation in (0, 1, 2):
            times = [ns for g, ns in self.passes if g == generation]
            out[f"gen{generation}"] = {
                "passes": len(times),
                "max_ms": round(max(times, default=0) / 1e6, 3),
                "median_ms": round(sorted(times)[len(times) // 2] / 1e6, 3) if times else 0,
            }
        out["max_ms"] = round(max((ns for _, ns in self.passes), default=0) / 1e6, 3)
        return out


@contextmanager
def opened(db: str, workdir: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A fresh database URL of the kind asked for, and how to stop its server."""
    if db == "sqlite":
        yield f"sqlite:///{workdir / 'routing.db'}", lambda: None
        return
    from tests.store.pg_server import start_server  # noqa: PLC0415 (PostgreSQL only)

    server = start_server(durable=True)
    if server is None:
        raise SystemExit("PostgreSQL server binaries not found (Debian package postgresql)")
    try:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        yield server.url("bench"), server.stop
    finally:
        server.stop()


def busy_state(snap: Snapshot, rng: random.Random) -> tuple[Counters, Quality]:
    """Line counters and ASR/ACD windows as on a node that has been carrying traffic: every
    routing gateway has had 20-200 attempts in the window (ASR 30-70 %), some lines in use and
    some calls today, so each candidate's facts are real work, not empty lookups."""
    p = snap.parameters
    quality = Quality(
        p["SS_GATEWAY_ASR_RESERVE_TIME"],
        p["SS_GATEWAY_ASR_RESERVE_SEPARATE"],
        p["SS_GATEWAY_ACD_RESERVE_TIME"],
        p["SS_GATEWAY_ACD_RESERVE_SEPARATE"],
    )
    counters = Counters()
    day = AT.date().toordinal()
    window = float(p["SS_GATEWAY_ASR_RESERVE_TIME"])
    for gw in snap.routing.values():
        answer_rate = rng.uniform(0.3, 0.7)
        for when in sorted(NOW - rng.uniform(0, window * 0.9) for _ in range(rng.randint(20, 200))):
            answered = rng.random() < answer_rate
            quality.attempt(gw.id, when, answered=answered)
            if answered:
                quality.call(gw.id, when, rng.uniform(5, 600))
        lines = rng.randint(0, (gw.max_calls or 100) // 2)
        for _ in range(lines):
            counters.start(("out", gw.id), NOW - rng.uniform(1, 600), day)
        for _ in range(rng.randint(0, 50)):
            counters.start(("out", gw.id), NOW - rng.uniform(600, 3600), day)
            counters.stop(("out", gw.id))
    return counters, quality


def time_decisions(
    snap: Snapshot,
    calls: list[tuple[str, str]],
    counters: Counters,
    quality: Quality,
    rng: random.Random,
) -> tuple[list[int], dict[str, int], list[int]]:
    """Each call's whole in-memory decision, timed; the outcomes and candidate counts of the
    timed calls (the warm-up's left out), in the order of the samples."""
    day = AT.date().toordinal()
    reasons: list[str] = []
    candidates: list[int] = []

    def inbound(call: tuple[str, str]) -> InboundCall:
        return InboundCall("c", (call[0], 5060), "udp", "4420794600", call[1])

    def one(call: InboundCall) -> None:
        decision = decide(
            snap, call, at=AT, now=NOW, day=day, counters=counters, quality=quality,
            vendor_funds=_no_funds_known, rng=rng,
        )  # fmt: skip
        reasons.append(decision.rejection.termination if decision.rejection else "routed")
        plan = decision.plan
        candidates.append(0 if plan is None else len(plan.ordered) + len(plan.skipped))

    samples = time_each(calls, one, inbound)
    warm = len(reasons) - len(samples)
    outcomes: dict[str, int] = {}
    for reason in reasons[warm:]:
        outcomes[reason] = outcomes.get(reason, 0) + 1
    return samples, outcomes, candidates[warm:]


def by_candidates(samples: list[int], candidates: list[int]) -> dict[str, dict[str, float]]:
    """Decision p50/p99 for calls grouped by how many candidate gateways they had."""
    groups: dict[str, list[int]] = {}
    for ns, n in zip(samples, candidates, strict=True):
        label = "0" if n == 0 else "1-4" if n <= 4 else "5-8" if n <= 8 else "9-16" if n <= 16 else "17+"
        groups.setdefault(label, []).append(ns)
    return {
        label: {
            "calls": len(v),
            **{k: round(x, 1) for k, x in percentiles(v).items() if k in ("p50_us", "p99_us")},
        }
        for label, v in sorted(groups.items())
    }


def _no_funds_known(_account: int) -> None:
    return None


def snapshot_for(store: Store, planner: str) -> Snapshot:
    """A fresh snapshot as ``planner`` runs on it (see the module doc)."""
    if planner == "reference":
        snap = load_snapshot(store, untracked=False)
        snap.routing_cache = RouteCache(snap, compiled=False)
        return snap
    snap = load_snapshot(store)
    prepare(snap)  # as the node's loading thread does
    if route_cache(snap).planner is None:
        raise SystemExit("the compiled planner is not built: python setup.py build_ext --inplace")
    return snap


def measure_loads(store: Store, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"load_s": [], "load_cpu_s": [], "prepare_s": []}
    for run in range(runs):
        snap: Snapshot | None = None
        gc.collect()
        before = rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        snap = load_snapshot(store)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        t1 = time.perf_counter()
        prepare(snap)
        cache = time.perf_counter() - t1
        out["load_s"].append(round(elapsed, 3))
        out["load_cpu_s"].append(round(cpu, 3))
        out["prepare_s"].append(round(cache, 3))
        out.setdefault("snapshot_rss_mb", round(rss_mb() - before, 1))
        print(
            f"run {run}: load {elapsed:.2f} s (CPU {cpu:.2f} s), routing prepared in {cache:.3f} s",
            file=sys.stderr,
        )
        del snap
    return out


def measure_planner(
    store: Store, world: routing_world.World, planner: str, calls_per_run: list[list[tuple[str, str]]]
) -> dict[str, Any]:
    """(b), (c) and (d) on a fresh snapshot for ``planner``."""
    out: dict[str, Any] = {"lookup": [], "select_rate": [], "decision": [], "collector": []}
    gc.collect()
    snap = snapshot_for(store, planner)
    retail = snap.rate_groups[world.retail_id]
    out["retail_prefixes"] = len(retail)
    rng = random.Random(7)  # noqa: S311 (a benchmark's reproducible mix)
    account = next(a for a in snap.accounts.values() if a.kind == "customer")
    sources = RateSources(account=retail, period_rate=snap.period_rate_for(account, AT))
    counters, quality = busy_state(snap, rng)
    all_candidates: list[int] = []
    all_samples: list[int] = []
    for run, calls in enumerate(calls_per_run):
        billing_numbers = [callee[2:] if callee.startswith("00") else callee for _, callee in calls]
        lookups = time_each(billing_numbers, partial(retail.lookup, at=AT))
        selections = time_each(
            billing_numbers,
            partial(select_rate, at=AT, sources=sources, switches=snap.switches, policy=snap.policy),
        )
        with Pauses().attached() as pauses:
            decisions, outcomes, candidates = time_decisions(snap, calls, counters, quality, rng)
        all_candidates.extend(candidates)
        all_samples.extend(decisions)
        out["lookup"].append(percentiles(lookups))
        out["select_rate"].append(percentiles(selections))
        out["decision"].append(percentiles(decisions))
        out["collector"].append(pauses.summary())
        out.setdefault("outcomes", outcomes)
        print(
            f"{planner} run {run}: lookup p99 {out['lookup'][-1]['p99_us']:.2f} us, select_rate p99 "
            f"{out['select_rate'][-1]['p99_us']:.2f} us, decision p50 {out['decision'][-1]['p50_us']:.1f} "
            f"p99 {out['decision'][-1]['p99_us']:.1f} max {out['decision'][-1]['max_us']:.0f} us, "
            f"slowest collector pass {out['collector'][-1]['max_ms']} ms",
            file=sys.stderr,
            flush=True,
        )
    out["tracked_objects"] = len(gc.get_objects())
    t0 = time.perf_counter()
    gc.collect()
    out["full_collection_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["decision_by_candidates"] = by_candidates(all_samples, all_candidates)
    ordered = sorted(n for n in all_candidates if n)
    out["candidates_per_routed_call"] = {
        "mean": round(statistics.fmean(ordered), 1),
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[int(len(ordered) * 0.99)],
        "max": ordered[-1],
    }
    out["median"] = {
        **{
            f"{kind}_{stat}": round(statistics.median(r[stat] for r in out[kind]), 2)
            for kind in ("lookup", "select_rate", "decision")
            for stat in ("p50_us", "p99_us")
        },
        "decision_max_us": round(statistics.median(r["max_us"] for r in out["decision"]), 1),
        "collector_max_ms": max(r["max_ms"] for r in out["collector"]),
        "full_collection_ms": out["full_collection_ms"],
    }
    del snap, retail, sources
    return out


def measure(store: Store, world: routing_world.World, args: argparse.Namespace) -> dict[str, Any]:
    out = measure_loads(store, args.runs)
    out["rate_rows"] = world.rate_rows
    rng = random.Random(11)  # noqa: S311 (the same calls for every planner)
    calls_per_run = [routing_world.numbers(world, rng, args.calls) for _ in range(args.runs)]
    out["planners"] = {name: measure_planner(store, world, name, calls_per_run) for name in args.planners}
    out["median"] = {
        "load_s": statistics.median(out["load_s"]),
        "load_cpu_s": statistics.median(out["load_cpu_s"]),
        "prepare_s": statistics.median(out["prepare_s"]),
        **{name: result["median"] for name, result in out["planners"].items()},
    }
    return out


def profile(store: Store, world: routing_world.World, what: str, planner: str) -> None:
    from pyinstrument import Profiler  # noqa: PLC0415 (a development tool)

    snap = snapshot_for(store, planner) if what == "decision" else None
    if snap is not None:
        rng = random.Random(7)  # noqa: S311 (a benchmark's reproducible mix)
        counters, quality = busy_state(snap, rng)
        calls = routing_world.numbers(world, rng, 20_000 + WARM_UP)
    profiler = Profiler(interval=0.0002 if snap is not None else 0.001)
    profiler.start()
    if snap is None:
        load_snapshot(store)
    else:
        time_decisions(snap, calls, counters, quality, rng)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rates", type=int, default=1_000_000, help="customer rate prefixes")
    parser.add_argument("--gateways", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50_000, help="timed calls per run")
    parser.add_argument(
        "--profile",
        choices=("load", "decision"),
        help="pyinstrument over one load or 20,000 decisions, to stderr",
    )
    parser.add_argument(
        "--planners",
        nargs="+",
        choices=PLANNERS,
        default=list(PLANNERS),
        help="planners to measure, in order",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-routing-") as tmp, opened(args.db, Path(tmp)) as (url, _):
        store = open_store(url)
        try:
            t0 = time.perf_counter()
            world = routing_world.build(store, rates=args.rates, gateways=args.gateways)
            built = time.perf_counter() - t0
            print(f"store built in {built:.1f} s ({world.rate_rows} rate rows)", file=sys.stderr, flush=True)
            if args.profile:
                profile(store, world, args.profile, args.planners[-1])
                return 0
            result = measure(store, world, args)
        finally:
            store.close()
    result["config"] = {
        "db": args.db,
        "rates": args.rates,
        "gateways": args.gateways,
        "runs": args.runs,
        "calls_per_run": args.calls,
        "timer_ns": timer_floor(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    m = result["median"]
    print(
        f"{args.db}: load {m['load_s']:.2f} s (runs {result['load_s']}), "
        f"routing prepared in {m['prepare_s']} s"
    )
    for name in args.planners:
        r = m[name]
        print(
            f"  {name}: lookup p50/p99 {r['lookup_p50_us']}/{r['lookup_p99_us']} us; select_rate "
            f"{r['select_rate_p50_us']}/{r['select_rate_p99_us']} us; decision {r['decision_p50_us']}/"
            f"{r['decision_p99_us']} us (slowest {r['decision_max_us']} us); collector: slowest pass "
            f"{r['collector_max_ms']} ms, a full collection {r['full_collection_ms']} ms"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
