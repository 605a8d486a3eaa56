"""The observer: alarm rounds, gateway probes and defence housekeeping on the node's loop.

Every ``[alarms] interval`` seconds :meth:`Observer.run_round` gathers the inputs the rules
take — gateway health from the node's meter, the CDR queue of the router, the calls answered
longer than ``duration_too_long``, a system sample, the defence's scanner sightings and table
occupancy — and hands them to the :class:`~signaling.observe.alarms.AlarmBoard`. Reading /proc
takes microseconds and stays on the loop; the account funds of a store-backed router are read
every ``balance_interval`` seconds in a worker thread (a database query), and the last answer
is used in between. OPTIONS probes go out every ``gateway_options_interval`` seconds when set.

The board's :meth:`~signaling.observe.alarms.AlarmBoard.snapshot` (or :meth:`Observer.snapshot`,
which adds the gateways' figures) is what the API and the web manager show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from signaling.b2bua.intake import NODE_KEY
from signaling.observe.alarms import (
    AlarmBoard,
    AlarmConfig,
    AlarmEvent,
    Condition,
    LongCall,
    balance_conditions,
    capacity_conditions,
    cdr_conditions,
    duration_conditions,
    gateway_conditions,
    scanner_conditions,
    system_conditions,
    table_conditions,
)
from signaling.observe.mail import compose, default_sender, mail_settings, send
from signaling.observe.quality import BalanceRunway
from signaling.observe.system import SystemSampler
from signaling.store import StoreError

if TYPE_CHECKING:
    from signaling.b2bua.node import Node

log = logging.getLogger("softswitch.observe")

__all__ = ["Observer"]


class Observer:
    def __init__(
        self,
        node: Node,
        config: AlarmConfig | None = None,
        *,
        sampler: SystemSampler | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.config = config or node.config.alarms
        self.board = AlarmBoard(self.config)
        self.sampler = (
            sampler
            if sampler is not None
            else SystemSampler(
                self.config.disk_paths, network_capacity_mbps=self.config.network_capacity_mbps
            )
        )
        #: the node's calls refused at its capacity, as of the previous round
        self._refused_seen = 0
        self.wall = wall
        #: account code -> balance + credit, from the last read of the store (None: never read)
        self.funds: dict[str, Decimal] | None = None
        #: each watched account's spend rate from those readings (the balance runway alarm)
        self.runway = BalanceRunway(self.config)
        meter = getattr(node, "gateways", None)  # a bare node (tests of the mail) has none
        if meter is not None:
            meter.configure(self.config)
        self._tasks: list[asyncio.Task[None]] = []
        #: alarm e-mails being sent (worker threads), kept until done
        self._mailing: set[asyncio.Task[bool]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._every(self.config.interval, self._round)))
        if self.config.gateway_options_interval > 0:
            interval = self.config.gateway_options_interval
            self._tasks.append(loop.create_task(self._every(interval, self._probe)))
        wants_funds = self.config.balance_low is not None or self.config.runway_warning > 0
        if wants_funds and hasattr(self._router(), "watched_accounts"):
            self._tasks.append(loop.create_task(self._balances_forever()))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._mailing]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for task in list(self._mailing):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _every(self, interval: float, work: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                work()
            except Exception:  # one bad round must not end the observer
                log.exception("observer: %s failed", getattr(work, "__name__", work))

    def _probe(self) -> None:
        self.node.probe_gateways(self.node.now())

    def _router(self) -> object:
        return getattr(self.node.router, "inner", self.node.router)

    # -- one round ------------------------------------------------------------------------------

    def _round(self) -> None:
        """A periodic round: evaluate, then mail what it raised, changed or cleared."""
        events = self.run_round()
        if events:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.mail, events))
            self._mailing.add(task)
            task.add_done_callback(self._mailing.discard)

    def mail(self, events: list[AlarmEvent]) -> bool:
        """E-mail ``events`` when SERVER_ALARM_ENABLE_EMAIL and SERVER_ALARM_EMAIL say so
        (signaling/observe/mail.py; blocking: a worker thread's); whether a message went."""
        router: Any = self._router()
        store = getattr(router, "store", None)
        try:
            stored = store.parameters() if store is not None else {}
            settings = mail_settings(stored, self.node.config.parameters)
        except (StoreError, ValueError) as exc:
            log.warning("alarm e-mail: cannot read its parameters: %s", exc)
            return False
        if not settings.enabled or not settings.to:
            return False
        node = str(getattr(router, "node", "") or "softswitch")
        message = compose(events, settings.to, self.config.mail_from or default_sender(), node)
        try:
            send(message, self.config.smtp_relay())
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("alarm e-mail to %s through %s: %s", settings.to, self.config.smtp, exc)
            return False
        return True

    def run_round(self) -> list[AlarmEvent]:
        """Gather the inputs and evaluate every rule once (also callable directly)."""
        node, cfg = self.node, self.config
        now, wall = node.now(), self.wall()
        defence = node.defence
        defence.purge(now)
        node.refresh_gateway_addresses()
        conditions: list[Condition] = []
        kinds = ["gateway_down", "asr_low", "pdd_high", "duration_too_long", "scanner", "flow_table_full"]
        conditions += gateway_conditions(cfg, node.gateways.health(now))
        # calls' media at their ends and the routing KPIs (on the node's clock, as the calls)
        conditions += node.gateways.quality.conditions(now)
        conditions += node.gateways.kpi.conditions(now)
        kinds += ["one_way_audio", "packet_loss", "jitter_high"]
        kinds += ["failover_rate_high", "protect_route_usage", "primary_asr_low"]
        conditions += node.gateways.watch.conditions(now)
        kinds += ["gateway_failure_rate", "destination_watch"]
        refused = getattr(node, "capacity_refused", 0)
        conditions += capacity_conditions(
            getattr(node, "max_calls", None), node.admission.active(NODE_KEY), refused - self._refused_seen
        )
        self._refused_seen = refused
        kinds.append("capacity_limit")
        conditions += duration_conditions(cfg, self._long_calls(now))
        conditions += scanner_conditions(defence.sightings(now))
        conditions += table_conditions(cfg, "defence", defence.tracked(), defence.config.max_sources)
        router = self._router()
        unsettled = getattr(router, "unsettled", None)
        if unsettled is not None:
            since = getattr(router, "unsettled_since", None)
            age = time.monotonic() - since if since is not None else None
            conditions += cdr_conditions(cfg, len(unsettled), age)
            kinds.append("cdr_backlog")
        sample = self.sampler.sample(wall)
        conditions += system_conditions(cfg, sample)
        kinds += ["cpu_high", "memory_high", "disk_full", "disk_io_high", "network_high"]
        if self.funds is not None:
            conditions += balance_conditions(cfg, self.funds)
            conditions += self.runway.conditions()
            kinds += ["balance_low", "balance_runway"]
        return self.board.evaluate(wall, conditions, kinds)

    def _long_calls(self, now: float) -> list[LongCall]:
        limit = self.config.duration_too_long
        if limit <= 0:
            return []
        suppressed = getattr(self._router(), "duration_alarm_suppressed", None)
        out = []
        for call_id, state in list(self.node.calls.items()):
            record = state.call.record
            if record.answer is None or now - record.answer < limit:
                continue
            out.append(
                LongCall(
                    call_id,
                    now - record.answer,
                    record.caller,
                    record.callee,
                    record.ingress,
                    record.gateway or "",
                    suppressed=bool(suppressed(call_id)) if suppressed is not None else False,
                )
            )
        return out

    async def _balances_forever(self) -> None:
        while True:
            try:
                self.funds = await asyncio.to_thread(self.read_funds)
                self.runway.observe(self.wall(), self.funds)
            except Exception as exc:  # the store is down: keep the last figures, say so once a round
                log.warning("balance alarm: cannot read account funds: %s", exc)
            await asyncio.sleep(self.config.balance_interval)

    def read_funds(self) -> dict[str, Decimal]:
        """Balance + credit of the watched accounts, by account code (a store read: any thread)."""
        router: Any = self._router()
        accounts: dict[int, str] = router.watched_accounts()
        funds: dict[int, Decimal] = router.store.funds(list(accounts))
        return {accounts[i]: amount for i, amount in funds.items()}

    # -- reading --------------------------------------------------------------------------------

    def snapshot(self, history: int = 100) -> dict[str, Any]:
        """Active alarms, recent history and every gateway's figures, as plain data."""
        out = self.board.snapshot(history)
        out["gateways"] = self.node.gateways.view(self.node.now())
        out["defence"] = self.node.defence.counters()
        return out
