"""Group-committed CDR writes on a worker thread: calls ending close together share a transaction.

Theory of operation. Ending a call writes its CDR, debits the customer and the vendor, and drops
the call's reservation, all in one transaction (``Store.settle_calls``); a commit waits for the
disk (SQLite ``synchronous=FULL``, PostgreSQL ``synchronous_commit``), so one transaction per call
would put a disk flush on the event loop for every call. Instead the router hands each ended call
to this writer (:meth:`CdrWriter.submit`, a bounded queue) and goes on; one thread takes
everything queued — up to ``max_batch`` — and commits it as one ``settle_calls``: while a commit
waits for the disk, the calls ending meanwhile queue up and become the next batch (group commit,
no timer). The router learns which calls are durable from :meth:`CdrWriter.completed`, run on its
own thread when ``notify`` (the driver: ``loop.call_soon_threadsafe``) says there is news; only
then does a call count as done (``StoreRouter.on_call_done``).

Nothing is lost in a crash: until its batch commits, a call's reservation row still holds its
money, its answer time and a draft of its CDR, so the node restarted after a SIGKILL (or a peer,
after ``stale_after``) settles it as it settles every call it lost (docs/billing.md, "Crash
recovery"); and a batch that did commit removed those rows in the same transaction, so nothing is
charged twice. The node's **heartbeat** goes through the same queue, after the calls ended before
it: it never marks alive a call already ended and waiting for its batch (which a crash would then
bill past its end).

A batch that fails is retried call by call (one bad record must not hold back the others, and the
first two consecutive failures mean the database itself is failing: the rest are not tried);
what still fails is handed back as failed, and the router retries it at its next tick while the
reservation keeps holding the money. When the queue is full (the database far behind), ``submit``
refuses and the router keeps the CDR for its tick, as for a failed write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from signaling.store import Cdr, Store, StoreError

log = logging.getLogger("softswitch.callproc")

#: Most calls settled in one transaction. Large enough to carry thousands of calls per second
#: through one commit every few milliseconds; small enough that one transaction stays short.
MAX_BATCH = 500
#: Most calls waiting for their batch (the queue's bound; heartbeats do not count).
MAX_QUEUE = 20_000
#: Write latencies kept for the statistics (the most recent ones).
LATENCY_SAMPLES = 4096


@dataclass(slots=True)
class Settlement:
    """One ended call for the writer: its CDR, and whether it holds a reservation row."""

    cdr: Cdr
    reserved: bool
    #: time.monotonic() when it was queued (for the write latency).
    queued_at: float = 0.0


@dataclass(slots=True)
class _Heartbeat:
    node: str
    at: datetime


@dataclass(slots=True)
class Outcome:
    """What became of some settlements: durable (``committed``) or not (``failed``)."""

    committed: list[Settlement] = field(default_factory=list)
    failed: list[Settlement] = field(default_factory=list)
    #: Seconds the transactions took (committed or not).
    seconds: float = 0.0


_STOP = object()


class CdrWriter:
    """The writer thread, its queue and its statistics (see the module doc)."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
        notify: Callable[[], object] | None = None,
        name: str = "cdr-writer",
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self.store = store
        self.max_batch = max_batch
        self.max_queue = max_queue
        #: Called on the writer thread after each batch, so the owner collects the outcome.
        self.notify = notify
        #: Called on the writer thread inside a batch's transaction, before its commit, with
        #: the batch (tests use it to crash the process in the middle of one).
        self.before_commit: Callable[[list[Settlement]], object] | None = None
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._items: deque[object] = deque()
        self._queued = 0  # settlements in _items
        self._submitted = 0  # items ever queued, and ever processed (flush waits on these)
        self._processed = 0
        self._done: deque[Outcome] = deque()
        self._thread: threading.Thread | None = None
        self._closing = False
        # statistics
        self.batches = 0
        self.written = 0
        self.failures = 0
        self.largest_batch = 0
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._commits: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    # -- the owner's side ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, settlement: Settlement) -> bool:
        """Queue an ended call; False (nothing queued) when the queue is full or closed."""
        with self._lock:
            if self._closing or self._queued >= self.max_queue:
                return False
            settlement.queued_at = time.monotonic()
            self._items.append(settlement)
            self._queued += 1
            self._submitted += 1
            self._wake.notify()
        return True

    def heartbeat(self, node: str, at: datetime) -> None:
        """Queue the node's heartbeat behind the calls already queued (never refused)."""
        with self._lock:
            if self._closing:
                return
            self._items.append(_Heartbeat(node, at))
            self._submitted += 1
            self._wake.notify()

    def completed(self) -> list[Outcome]:
        """The outcomes of the batches finished since the last call (the owner's thread)."""
        out: list[Outcome] = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued before this call is written (or failed); whether it was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._submitted
            while self._processed < target:
                if not self.running:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._wake.wait(0.05 if left is None else min(left, 0.05))
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write what is queued, then stop the thread; whether everything was written in time."""
        flushed = self.flush(timeout) if self.running else not self._items
        with self._lock:
            self._closing = True
            self._items.append(_STOP)
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        return flushed

    @property
    def depth(self) -> int:
        """Calls queued and not yet taken into a batch."""
        return self._queued

    def oldest(self) -> float | None:
        """When (time.monotonic()) the oldest call still queued was queued; None: none is."""
        with self._lock:
            for item in self._items:
                if isinstance(item, Settlement):
                    return item.queued_at
        return None

    def stats(self) -> dict[str, float | int]:
        """``cdr_queue_depth`` and the write counters and latencies (ms, recent calls)."""
        latencies = sorted(self._latencies)
        commits = sorted(self._commits)
        return {
            "cdr_queue_depth": self._queued,
            "cdr_batches": self.batches,
            "cdr_written": self.written,
            "cdr_write_failures": self.failures,
            "cdr_largest_batch": self.largest_batch,
            "cdr_write_latency_p50_ms": _quantile(latencies, 0.50),
            "cdr_write_latency_p99_ms": _quantile(latencies, 0.99),
            "cdr_commit_p50_ms": _quantile(commits, 0.50),
            "cdr_commit_p99_ms": _quantile(commits, 0.99),
        }

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._items:
                    self._wake.wait()
                taken: list[object] = []
                settlements = 0
                while self._items and settlements < self.max_batch:
                    item = self._items.popleft()
                    taken.append(item)
                    if isinstance(item, Settlement):
                        settlements += 1
                self._queued -= settlements
            stop = False
            for group in _groups(taken):
                if group is _STOP:
                    stop = True
                elif isinstance(group, _Heartbeat):
                    self._beat(group)
                elif isinstance(group, list):
                    self._done.append(self._write(group))
            with self._lock:
                self._processed += len(taken) - (1 if stop else 0)
                self._wake.notify_all()
            if self.notify is not None:
                try:
                    self.notify()
                except Exception:  # the owner's loop may be closing: the outcomes stay queued
                    log.exception("cdr writer: notifying the router failed")
            if stop:
                return

    def _beat(self, beat: _Heartbeat) -> None:
        try:
            self.store.heartbeat(beat.node, beat.at)
        except StoreError as exc:  # the next tick sends another
            log.error("heartbeat: %s", exc)

    def _write(self, batch: list[Settlement]) -> Outcome:
        started = time.monotonic()
        try:
            return self._committed(batch, self._commit(batch))
        except StoreError as exc:
            if len(batch) == 1:
                call_id = batch[0].cdr.call_id
                log.error("cannot write the CDR of %s (retried at the next tick): %s", call_id, exc)
                failed = self._failed(batch)
                failed.seconds = time.monotonic() - started
                return failed
            log.error("cannot write a batch of %d CDRs, writing them one by one: %s", len(batch), exc)
        outcome = Outcome(seconds=time.monotonic() - started)
        streak = 0
        for i, settlement in enumerate(batch):
            if streak >= 2:  # the database is failing, not a record: the rest wait for the tick
                outcome.failed.extend(self._failed(batch[i:]).failed)
                break
            attempt = time.monotonic()
            try:
                seconds = self._commit([settlement])
            except StoreError as exc:
                outcome.seconds += time.monotonic() - attempt
                streak += 1
                log.error("cannot write the CDR of %s: %s", settlement.cdr.call_id, exc)
                outcome.failed.extend(self._failed([settlement]).failed)
                continue
            streak = 0
            outcome.committed.extend(self._committed([settlement], seconds).committed)
            outcome.seconds += seconds
        return outcome

    def _commit(self, batch: list[Settlement]) -> float:
        """Write ``batch`` in one transaction; the seconds it took."""
        cdrs = [s.cdr for s in batch]
        reserved = {s.cdr.call_id for s in batch if s.reserved}
        started = time.monotonic()
        if self.before_commit is None:
            self.store.settle_calls(cdrs, reserved=reserved)
        else:
            self.store.prepare_cdr_days({c.day for c in cdrs})  # partitions in their own transactions
            with self.store.db.transaction():
                self.store.settle_calls(cdrs, reserved=reserved)
                self.before_commit(batch)
        seconds = time.monotonic() - started
        self._commits.append(seconds * 1000)
        return seconds

    def _committed(self, batch: list[Settlement], seconds: float) -> Outcome:
        now = time.monotonic()
        self._latencies.extend((now - s.queued_at) * 1000 for s in batch)
        self.batches += 1
        self.written += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        return Outcome(committed=batch, seconds=seconds)

    def _failed(self, batch: list[Settlement]) -> Outcome:
        self.failures += len(batch)
        return Outcome(failed=batch)


def _groups(items: list[object]) -> list[object]:
    """``items`` in order, with each run of consecutive settlements made one list (one batch)."""
    out: list[object] = []
    for item in items:
        if isinstance(item, Settlement):
            if out and isinstance(out[-1], list):
                out[-1].append(item)
            else:
                out.append([item])
        else:
            out.append(item)
    return out


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3)
