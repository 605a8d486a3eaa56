"""Durable CDR throughput: the batched writer against one transaction per call, same invocation.

Ending a call writes its CDR, debits the customer and the vendor and drops the call's balance
reservation, in one transaction (``Store.settle_calls``) that is on disk when it returns (SQLite
WAL with ``synchronous=FULL``; PostgreSQL with ``fsync=on`` and ``synchronous_commit=on``: this
script starts its own server with both). Three ways, each on a fresh database holding a
reservation for every call to settle (100 customer accounts, 10 vendors, CDRs with every field
filled as a real call's):

* ``per-call`` (the reference): one ``settle_calls`` transaction per call, back to back;
* ``batched``: every call handed to a ``CdrWriter`` at once, which commits up to ``--max-batch``
  per transaction; throughput = calls / time until the last is durable;
* ``paced``: calls handed to the writer at ``--rate`` per second (as a node ending calls would),
  for ``--seconds``; we report whether it kept up, the write latency (queued to committed,
  p50/p99) and the deepest queue seen.

After each run the database is checked: one CDR per call, no reservation left, and every
account's balance equal to its opening balance minus its CDR fees (customers) and vendor costs
(vendors).

    python bench/cdr.py --out bench/results/cdr-sqlite.json
    python bench/cdr.py --db postgresql --out bench/results/cdr-postgresql.json
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from signaling.callproc.cdrwriter import CdrWriter, Settlement  # noqa: E402
from signaling.store import Account, Cdr, Store, codec, open_store  # noqa: E402
from signaling.store.codec import Dialect, Kind  # noqa: E402

START = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
CUSTOMERS = 100
VENDORS = 10
OPENING = Decimal(1_000_000)


@dataclass(slots=True)
class Batch:
    cdrs: list[Cdr]
    customers: list[int]
    vendors: list[int]


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[Callable[[str], str]]:
    """A factory of fresh database URLs (one per run) of ``kind``."""
    if kind == "sqlite":
        yield lambda name: f"sqlite:///{workdir / (name + '.db')}"
        return
    import psycopg  # noqa: PLC0415 (PostgreSQL only)

    from tests.store.pg_server import start_server  # noqa: PLC0415

    server = start_server(durable=True)
    if server is None:
        raise SystemExit("PostgreSQL server binaries not found (Debian package postgresql)")
    try:

        def fresh(name: str) -> str:
            with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return server.url(name)

        yield fresh
    finally:
        server.stop()


def prepare(store: Store, calls: int, rng: random.Random) -> Batch:
    """Accounts, one reservation per call (bulk-inserted: set-up, not measured), and the CDRs."""
    admin = store.admin(operator="bench")
    customers = [admin.create(Account(code=f"c{i}", balance=OPENING)).id for i in range(CUSTOMERS)]
    vendors = [
        admin.create(Account(code=f"v{i}", kind="vendor", billing="postpaid", balance=OPENING)).id
        for i in range(VENDORS)
    ]
    cdrs: list[Cdr] = []
    rows: list[tuple[object, ...]] = []
    d = store.dialect
    for n in range(calls):
        start = START + timedelta(milliseconds=n * 7)
        answer = start + timedelta(seconds=rng.uniform(2, 9))
        end = answer + timedelta(seconds=rng.randint(5, 600))
        hold_ms = round((end - answer) / timedelta(milliseconds=1))
        billed = -(-hold_ms // 6000) * 6
        fee = (Decimal("0.0123") * billed / 60).quantize(Decimal("0.0000001"))
        cost = (Decimal("0.0071") * billed / 60).quantize(Decimal("0.0000001"))
        customer, vendor = rng.choice(customers), rng.choice(vendors)
        call_id = f"{n:08d}-bench@198.51.100.7"
        cdrs.append(
            Cdr(
                call_id=call_id, start_time=start, end_time=end, ring_time=start + timedelta(seconds=1),
                answer_time=answer, caller="4420794600" + str(n % 10), caller_billing="4420794600",
                caller_out="4420794600", callee="0044" + str(7700900000 + n), callee_billing="44" +
                str(7700900000 + n), callee_out="*99#44" + str(7700900000 + n), source_ip="203.0.113.10",
                source_port=5060, mapping_gateway="customer-1", account_id=customer,
                routing_gateway="carrier-7", clearing_account_id=vendor,
                gateways_tried=("carrier-3", "carrier-7"), attempts=2, hold_ms=hold_ms,
                billed_seconds=billed, rate_prefix="447700", rate_source="account", rate_group="retail",
                first_time_rate=Decimal("0.0123"), first_time_duration=6, billing_rate=Decimal("0.0123"),
                billing_cycle=6, fee=fee, vendor_rate_prefix="4477", vendor_cost=cost,
                termination_reason="Normal", ended_by="caller", sip_code=200, vendor_sip_code=200,
                pdd_ms=1000, codec_in="PCMA", codec_out="G729", media_mode="on",
                media_quality='{"caller":{"rtp":{"received":1500,"lost":2}},"callee":{"rtp":{"received":1499,"lost":0}}}',
            )
        )  # fmt: skip
        stamp = codec.encode(d, Kind.TIME, start)
        held = codec.encode(d, Kind.MONEY, fee + Decimal(1))
        rows.append((call_id, "bench", customer, held, stamp, stamp, stamp, "{}"))
    with store.db.transaction() as tx:
        tx.executemany(
            "INSERT INTO reservation (call_id, node, account_id, amount, created_at, answer_time, "
            "alive_at, draft) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    store.prepare_cdr_days({c.day for c in cdrs})  # PostgreSQL partitions, as a node does ahead of time
    return Batch(cdrs, customers, vendors)


def check(store: Store, batch: Batch) -> None:
    """One CDR per call, no reservation left, balances = opening - fees (- vendor costs)."""
    first, last = batch.cdrs[0].day, max(c.day for c in batch.cdrs)
    stored = store.cdrs(first, last)
    assert len(stored) == len(batch.cdrs) == len({c.call_id for c in stored}), "a CDR missing or twice"
    assert store.reservations() == [], "reservations left"
    fees: dict[int, Decimal] = {}
    for c in batch.cdrs:
        assert c.account_id is not None and c.clearing_account_id is not None
        fees[c.account_id] = fees.get(c.account_id, Decimal(0)) + c.fee
        fees[c.clearing_account_id] = fees.get(c.clearing_account_id, Decimal(0)) + c.vendor_cost
    admin = store.admin()
    for account_id in batch.customers + batch.vendors:
        assert admin.get(Account, account_id).balance == OPENING - fees.get(account_id, Decimal(0))


def stored_size(store: Store, rows: int) -> dict[str, Any]:
    """Bytes per stored CDR (reference T58: table data length / row count, 100-200 bytes
    there): the table's data (SQLite: its b-tree pages, ``dbstat``; PostgreSQL: the day
    partitions' heaps) and, apart, its indexes; pages as allocated, free space included."""
    with store.db.transaction() as tx:
        if store.dialect is Dialect.SQLITE:
            data = tx.scalar("SELECT SUM(pgsize) FROM dbstat WHERE name = 'cdr'")
            index = tx.scalar(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
                "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cdr')"
            )
        else:
            data = tx.scalar(
                "SELECT SUM(pg_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'cdr'::regclass"
            )
            index = tx.scalar(
                "SELECT SUM(pg_indexes_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'cdr'::regclass"
            )
    return {
        "rows": rows,
        "data_bytes_per_cdr": round(int(data or 0) / rows),
        "index_bytes_per_cdr": round(int(index or 0) / rows),
    }


def per_call(store: Store, batch: Batch) -> dict[str, Any]:
    latencies: list[float] = []
    t0 = time.perf_counter()
    for cdr in batch.cdrs:
        started = time.perf_counter()
        store.settle_calls([cdr], reserved={cdr.call_id})
        latencies.append((time.perf_counter() - started) * 1000)
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "calls": len(batch.cdrs),
        "seconds": round(elapsed, 3),
        "cdrs_per_s": round(len(batch.cdrs) / elapsed),
        "commit_p50_ms": round(latencies[len(latencies) // 2], 3),
        "commit_p99_ms": round(latencies[int(len(latencies) * 0.99)], 3),
    }


def batched(store: Store, batch: Batch, max_batch: int) -> dict[str, Any]:
    writer = CdrWriter(store, max_batch=max_batch, max_queue=len(batch.cdrs))
    writer.start()
    try:
        t0 = time.perf_counter()
        for cdr in batch.cdrs:
            assert writer.submit(Settlement(cdr, reserved=True))
        assert writer.flush(timeout=600), "the writer did not finish"
        elapsed = time.perf_counter() - t0
    finally:
        writer.close()
    failed = sum(len(o.failed) for o in writer.completed())
    assert failed == 0, f"{failed} CDRs failed"
    stats = writer.stats()
    return {
        "calls": len(batch.cdrs),
        "seconds": round(elapsed, 3),
        "cdrs_per_s": round(len(batch.cdrs) / elapsed),
        "batches": stats["cdr_batches"],
        "largest_batch": stats["cdr_largest_batch"],
        "commit_p50_ms": stats["cdr_commit_p50_ms"],
        "commit_p99_ms": stats["cdr_commit_p99_ms"],
    }


def paced(store: Store, batch: Batch, rate: float, max_batch: int) -> dict[str, Any]:
    """Calls handed over at ``rate`` per second; latency is queued-to-committed, every call."""
    writer = CdrWriter(store, max_batch=max_batch)
    latencies: list[float] = []
    deepest = 0
    writer.start()
    try:
        t0 = time.perf_counter()
        for n, cdr in enumerate(batch.cdrs):
            due = t0 + n / rate
            while (wait := due - time.perf_counter()) > 0:
                time.sleep(min(wait, 0.002))
            if not writer.submit(Settlement(cdr, reserved=True)):
                raise SystemExit("the writer's queue filled up")
            deepest = max(deepest, writer.depth)
            for outcome in writer.completed():
                latencies.extend(_latency(s) for s in outcome.committed)
        offered = time.perf_counter() - t0
        assert writer.flush(timeout=600)
        drained = time.perf_counter() - t0
        for outcome in writer.completed():
            latencies.extend(_latency(s) for s in outcome.committed)
    finally:
        writer.close()
    latencies.sort()
    stats = writer.stats()
    return {
        "offered_per_s": rate,
        "calls": len(batch.cdrs),
        "achieved_per_s": round(len(batch.cdrs) / drained),
        "drained_s_after_last": round(drained - offered, 3),
        "latency_p50_ms": round(latencies[len(latencies) // 2], 2),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
        "deepest_queue": deepest,
        "batches": stats["cdr_batches"],
        "largest_batch": stats["cdr_largest_batch"],
    }


def _latency(settlement: Settlement) -> float:
    # committed: measured when the outcome is collected, an upper bound of the commit instant
    return (time.monotonic() - settlement.queued_at) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per batched run")
    parser.add_argument("--reference-calls", type=int, default=2_000, help="calls per per-call run")
    parser.add_argument("--rate", type=float, default=5_000, help="offered calls per second (paced)")
    parser.add_argument("--seconds", type=float, default=4, help="paced run length")
    parser.add_argument("--max-batch", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = random.Random(6)  # noqa: S311 (a benchmark's reproducible calls)
    result: dict[str, Any] = {"per_call": [], "batched": [], "paced": []}
    with tempfile.TemporaryDirectory(prefix="bench-cdr-") as tmp, database(args.db, Path(tmp)) as fresh:
        for run in range(args.runs):
            for mode in ("per_call", "batched", "paced"):  # the reference first, every run
                calls = {
                    "per_call": args.reference_calls,
                    "batched": args.calls,
                    "paced": int(args.rate * args.seconds),
                }[mode]
                store = open_store(fresh(f"cdr_{mode}_{run}"))
                try:
                    batch = prepare(store, calls, rng)
                    if mode == "per_call":
                        figures = per_call(store, batch)
                    elif mode == "batched":
                        figures = batched(store, batch, args.max_batch)
                    else:
                        figures = paced(store, batch, args.rate, args.max_batch)
                    check(store, batch)
                    if mode == "batched":
                        figures["stored"] = stored_size(store, len(batch.cdrs))
                finally:
                    store.close()
                result[mode].append(figures)
                print(f"run {run} {mode}: {figures}", file=sys.stderr, flush=True)
    per_s = [r["cdrs_per_s"] for r in result["per_call"]]
    batch_s = [r["cdrs_per_s"] for r in result["batched"]]
    result["median"] = {
        "per_call_cdrs_per_s": statistics.median(per_s),
        "batched_cdrs_per_s": statistics.median(batch_s),
        "speed_up": round(statistics.median(batch_s) / statistics.median(per_s), 1),
        "paced_achieved_per_s": statistics.median(r["achieved_per_s"] for r in result["paced"]),
        "paced_latency_p50_ms": statistics.median(r["latency_p50_ms"] for r in result["paced"]),
        "paced_latency_p99_ms": statistics.median(r["latency_p99_ms"] for r in result["paced"]),
        "stored_data_bytes_per_cdr": statistics.median(
            r["stored"]["data_bytes_per_cdr"] for r in result["batched"]
        ),
        "stored_index_bytes_per_cdr": statistics.median(
            r["stored"]["index_bytes_per_cdr"] for r in result["batched"]
        ),
    }
    result["config"] = {
        "db": args.db,
        "runs": args.runs,
        "calls": args.calls,
        "reference_calls": args.reference_calls,
        "rate": args.rate,
        "max_batch": args.max_batch,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    m = result["median"]
    print(
        f"{args.db}: per-call {m['per_call_cdrs_per_s']}/s (runs {per_s}); "
        f"batched {m['batched_cdrs_per_s']}/s (runs {batch_s}), x{m['speed_up']}; "
        f"paced at {args.rate:g}/s: achieved {m['paced_achieved_per_s']}/s, "
        f"latency p50 {m['paced_latency_p50_ms']} ms p99 {m['paced_latency_p99_ms']} ms; "
        f"stored {m['stored_data_bytes_per_cdr']} B per CDR (+{m['stored_index_bytes_per_cdr']} B of indexes)"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
