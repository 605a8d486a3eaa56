"""The asyncio adapter of a :class:`StoreRouter`: its timers on the loop, its reloads in a thread.

The router is sans-IO about time: it says when it next needs to run (``next_deadline()``) and
does the work when told (``on_timer(now)``). This driver keeps one loop timer armed at that
deadline (re-armed when the router announces an earlier one through ``router.wakeup``), and every
``refresh_interval`` seconds asks the store, in a worker thread, whether the configuration
changed; a new snapshot is built in that thread and installed on the loop, so a reload of a large
rate table never stalls calls. When the router has a CDR writer, the driver starts its thread,
has it hand back each finished batch to the loop (``router.collect`` through
``call_soon_threadsafe``), and at the stop writes what is still queued before it returns.

With the node attached (``router.on_node_started``), each refresh also syncs the registered
phones with the other nodes of the database (signaling/callproc/cluster.py): the changed
bindings are collected on the loop, written and the others' read in the worker thread, and the
new view installed on the loop. The first sync runs at start (the node is then known to the
others before its first call); at the stop the node's registrations leave the store.

Hourly, from the first refresh on, a refresh also runs the store's retention pass in the worker
thread (signaling/store/retention.py: SERVER_CDR_RETENTION_DAYS, SERVER_PAYMENT_RETENTION_DAYS),
and then the monthly-minimum pass (signaling/store/monthly_min.py: once per account and month).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from signaling.callproc.router import StoreRouter
from signaling.store import StoreError
from signaling.store.monthly_min import run_monthly_min
from signaling.store.retention import run_retention

log = logging.getLogger("softswitch.callproc")

#: How often the store's configuration version is polled, seconds.
REFRESH_INTERVAL = 2.0
#: How long the stop waits for the CDR writer to write what is queued, seconds.
STOP_TIMEOUT = 30.0
#: How often the retention pass runs (signaling/store/retention.py), seconds; the first at start.
RETENTION_INTERVAL = 3600.0


class RouterDriver:
    def __init__(
        self,
        router: StoreRouter,
        *,
        refresh_interval: float = REFRESH_INTERVAL,
        retention_interval: float = RETENTION_INTERVAL,
    ) -> None:
        self.router = router
        self.refresh_interval = refresh_interval
        self.retention_interval = retention_interval
        self._retention_due = 0.0  # loop time of the next retention pass: the first refresh
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._refresher: asyncio.Task[None] | None = None

    def start(self) -> int:
        """Recover what a previous run left, start the timers and the reloads (and the CDR
        writer); the CDRs recovered."""
        self._loop = asyncio.get_running_loop()
        self.router.wakeup = self._wakeup
        writer = self.router.cdr_writer
        if writer is not None:
            loop = self._loop
            writer.notify = lambda: loop.call_soon_threadsafe(self.router.collect)
            writer.start()
        try:
            recovered = self.router.start(self._loop.time())
        except StoreError as exc:
            log.error("recovering reservations: %s", exc)
            recovered = 0
        try:
            self.router.sync_cluster(self._loop.time())
        except StoreError as exc:
            log.error("sharing registrations: %s (retried at the next refresh)", exc)
        self._arm()
        self._refresher = self._loop.create_task(self._refresh_forever())
        return recovered

    async def stop(self, *, leave: bool = True) -> None:
        """Stop the timers and reloads, write the queued CDRs; with ``leave`` (a clean stop)
        this node's registrations and node row leave the store (without, the others find the
        node dead when its heartbeat lapses, as after a crash)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        self.router.wakeup = None
        if leave:
            try:
                await asyncio.to_thread(self.router.leave_cluster)
            except StoreError as exc:
                log.error("removing this node's registrations: %s", exc)
        writer = self.router.cdr_writer
        if writer is not None:
            if not await asyncio.to_thread(writer.close, STOP_TIMEOUT):
                log.error("CDRs still unwritten at the stop: their calls are settled at the next start")
            writer.notify = None
            self.router.collect()
            log.info("CDR writer stopped: %s", self.router.cdr_stats())

    def _wakeup(self, when: float) -> None:
        if self._armed_at is None or when < self._armed_at:
            self._arm()

    def _arm(self) -> None:
        loop = self._loop
        if loop is None:
            return
        deadline = self.router.next_deadline()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_at = deadline
        if deadline is not None:
            self._handle = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        self._handle = None
        self._armed_at = None
        try:
            self.router.on_timer(self._loop.time())
        except Exception:
            log.exception("router timer failed")
        self._arm()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                snapshot = await asyncio.to_thread(self.router.load_if_changed)
            except Exception:
                log.exception("reloading the configuration failed (the old one stays in use)")
                continue
            if snapshot is not None:
                self.router.install(snapshot)
                log.info("configuration version %d loaded", snapshot.version)
            await self._sync_cluster()
            await self._retention()

    async def _retention(self) -> None:
        """The store's retention pass (SERVER_CDR_RETENTION_DAYS, SERVER_PAYMENT_RETENTION_DAYS)
        in a worker thread, every ``retention_interval`` seconds."""
        assert self._loop is not None
        if self._loop.time() < self._retention_due:
            return
        self._retention_due = self._loop.time() + self.retention_interval
        try:
            await asyncio.to_thread(run_retention, self.router.store, datetime.now(UTC))
        except Exception:
            log.exception("retention pass failed (retried at the next one)")
        try:
            await asyncio.to_thread(run_monthly_min, self.router.store, datetime.now(UTC))
        except Exception:
            log.exception("monthly minimum pass failed (retried at the next one)")

    async def _sync_cluster(self) -> None:
        """Share this node's registrations and learn the others' (the module doc)."""
        assert self._loop is not None
        router = self.router
        changes = router.cluster_changes(self._loop.time())
        if changes is None:
            return
        try:
            view = await asyncio.to_thread(router.cluster_sync, changes, self._loop.time())
        except Exception:
            log.exception("sharing registrations failed (retried at the next refresh)")
            return
        router.cluster_install(view, changes)
