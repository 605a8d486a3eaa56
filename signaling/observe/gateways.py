"""Per-gateway traffic the node keeps for metrics and alarms: lines, attempts, ASR, ACD, PDD.

:class:`GatewayMeter` is sans-IO (times are the node's clock). The node feeds it through
:class:`MeteredRouter`, a pass-through around whichever router it runs (the file's static
tables or the store's): every attempt toward a routing gateway, its end, the answer and the
call's end already go through the router interface, so the meter sees them without another hook
in the call's state machine. The same numbers therefore exist with or without a store.

Definitions (architecture notes CAP-11.1, T68-T70): **ASR** = answered / attempts, as the
routing sort computes it (the mean of the segment ASRs of a window of
``SS_GATEWAY_ASR_RESERVE_TIME`` seconds cut in ``SS_GATEWAY_ASR_RESERVE_SEPARATE`` segments,
signaling.callproc.quality); **ACD** = conversation seconds / answered calls over the ACD
window; **PDD** = our INVITE to that gateway → its first 18x, or to its answer when it sent none
(attempts that failed before ringing have no PDD), averaged over the ACD window. A **line** is
held from the INVITE to a gateway until that attempt fails or the answered call ends. An attempt
that ended with no response at all from the gateway (our timeout or a transport error) extends
the gateway's *no-response streak*; any response ends it (the "gateway down" alarm). A
**carrier failure** is an attempt that ended with a 5xx, a 6xx other than 600 (busy
everywhere), a 408, or no response at all: the carrier's fault, not the callee's (busy, no such
number) nor the caller's (a cancel); its rate is carrier failures / attempts that ended in the
ASR window (a plain ratio), for the "gateway_failure_rate" alarm (T78). Calls routed to a watched
destination prefix go to the :class:`~signaling.observe.watch.DestinationWatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from signaling.callproc.quality import Window
from signaling.observe.alarms import AlarmConfig, GatewayHealth
from signaling.observe.quality import MediaQualityMeter, RoutingKpi
from signaling.observe.watch import DestinationWatch
from signaling.routing import Admission, CallRecord, InboundCall, Route, Router

__all__ = [
    "PDD_TARGET",
    "AttemptProbe",
    "GatewayMeter",
    "GatewayStats",
    "MeteredRouter",
    "RecordLookup",
    "carrier_failure",
]

#: a post-dial delay above this is flagged (architecture notes N13 "PDD < 3 s", T70)
PDD_TARGET = 3.0

#: (whether the call's current attempt got any response from the gateway, the call's first
#: ring time), by Call-ID
AttemptProbe = Callable[[str], tuple[bool, float | None]]
#: the call's record so far (caller, callee, mapping gateway), by Call-ID; None: not a call
RecordLookup = Callable[[str], CallRecord | None]


def carrier_failure(status: int, responded: bool) -> bool:
    """Whether a failed attempt is the carrier's failure (see the module docstring)."""
    return not responded or status == 408 or (500 <= status < 700 and status != 600)


@dataclass(slots=True)
class GatewayStats:
    name: str
    asr: Window
    acd: Window
    pdd: Window
    #: the ASR window's attempts, "answered" meaning "ended in a carrier failure"
    fail: Window
    #: lines held now (attempts in progress and answered calls)
    active: int = 0
    attempts: int = 0
    answered: int = 0
    failed: int = 0
    #: attempts in a row without any response
    no_response: int = 0
    pdd_sum: float = 0.0
    pdd_count: int = 0
    #: attempts whose PDD was above PDD_TARGET (T70's "flagged")
    pdd_slow: int = 0
    seconds: float = 0.0
    #: OPTIONS probes in a row that failed (None: never probed)
    options_failures: int | None = None
    #: final statuses of failed attempts, by class ("4xx", "5xx", "6xx", "timeout")
    failures: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Line:
    gateway: str
    started: float
    answered: float | None = None


class GatewayMeter:
    def __init__(
        self,
        asr_time: float = 600.0,
        asr_segments: int = 10,
        acd_time: float = 600.0,
        acd_segments: int = 10,
    ) -> None:
        self._sizes = (asr_time, asr_segments, acd_time, acd_segments)
        self.gateways: dict[str, GatewayStats] = {}
        #: customers' (mapping gateways') calls in progress
        self.ingress: dict[str, int] = {}
        self._lines: dict[str, _Line] = {}
        #: media quality of ended calls and the routing KPIs (signaling/observe/quality.py)
        self.quality = MediaQualityMeter()
        self.kpi = RoutingKpi()
        self.watch = DestinationWatch()

    def configure(self, config: AlarmConfig) -> None:
        """The thresholds of the call-end classification and the KPI bands (the observer's)."""
        self.quality.config = config
        self.kpi.config = config
        self.watch.configure(config)

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> GatewayMeter:
        return cls(*cls.sizes(p))

    @staticmethod
    def sizes(p: Mapping[str, Any]) -> tuple[float, int, float, int]:
        """The ASR and ACD windows' sizes from the SS_GATEWAY_*_RESERVE_* parameters, as
        :meth:`resize` takes them."""
        return (
            float(p["SS_GATEWAY_ASR_RESERVE_TIME"]),
            int(p["SS_GATEWAY_ASR_RESERVE_SEPARATE"]),
            float(p["SS_GATEWAY_ACD_RESERVE_TIME"]),
            int(p["SS_GATEWAY_ACD_RESERVE_SEPARATE"]),
        )

    def resize(self, asr_time: float, asr_segments: int, acd_time: float, acd_segments: int) -> None:
        """New window sizes (a parameter change): the ASR, ACD and PDD windows start again, as
        the router's do (signaling/callproc/quality.py); the counters and lines held stay."""
        sizes = (asr_time, asr_segments, acd_time, acd_segments)
        if sizes == self._sizes:
            return
        self._sizes = sizes
        for stats in self.gateways.values():
            stats.asr = Window(asr_time, asr_segments)
            stats.acd = Window(acd_time, acd_segments)
            stats.pdd = Window(acd_time, acd_segments)
            stats.fail = Window(asr_time, asr_segments)

    def gateway(self, name: str) -> GatewayStats:
        stats = self.gateways.get(name)
        if stats is None:
            asr_time, asr_n, acd_time, acd_n = self._sizes
            stats = GatewayStats(
                name,
                Window(asr_time, asr_n),
                Window(acd_time, acd_n),
                Window(acd_time, acd_n),
                Window(asr_time, asr_n),
            )
            self.gateways[name] = stats
        return stats

    # -- the call's events ----------------------------------------------------------------------

    def attempt_started(self, call_id: str, gateway: str, now: float) -> None:
        line = self._lines.get(call_id)
        if line is not None:
            if line.gateway == gateway and line.answered is None:
                return  # the same carrier again (a 422 re-send): one attempt, one line
            self._free(call_id)
        stats = self.gateway(gateway)
        stats.active += 1
        stats.attempts += 1
        self._lines[call_id] = _Line(gateway, now)

    def attempt_failed(
        self, call_id: str, gateway: str, status: int, now: float, *, responded: bool, ring: float | None
    ) -> None:
        line = self._lines.get(call_id)
        if line is None or line.gateway != gateway or line.answered is not None:
            return
        stats = self.gateway(gateway)
        stats.failed += 1
        stats.asr.attempt(now, answered=False)
        stats.fail.attempt(now, answered=carrier_failure(status, responded))
        if responded:
            stats.no_response = 0
            key = f"{status // 100}xx"
        else:
            stats.no_response += 1
            key = "timeout"
        stats.failures[key] = stats.failures.get(key, 0) + 1
        if ring is not None and ring >= line.started:
            self._pdd(stats, now, ring - line.started)
        self._free(call_id)

    def answered(self, call_id: str, gateway: str, now: float, ring: float | None) -> None:
        line = self._lines.get(call_id)
        if line is None or line.gateway != gateway:
            self.attempt_started(call_id, gateway, now)
            line = self._lines[call_id]
        stats = self.gateway(gateway)
        stats.answered += 1
        stats.no_response = 0
        stats.asr.attempt(now, answered=True)
        stats.fail.attempt(now, answered=False)
        line.answered = now
        rang = ring if ring is not None and ring >= line.started else now
        self._pdd(stats, now, rang - line.started)

    def call_ended(self, call_id: str, now: float) -> None:
        """The call is over: an answered call's conversation counts toward ACD; an attempt still
        open (the caller gave up) counts as not answered, with a response seen."""
        line = self._lines.get(call_id)
        if line is None:
            return
        stats = self.gateway(line.gateway)
        if line.answered is not None:
            seconds = max(0.0, now - line.answered)
            stats.acd.call(now, seconds)
            stats.seconds += seconds
        else:
            stats.failed += 1
            stats.asr.attempt(now, answered=False)
            stats.fail.attempt(now, answered=False)
            stats.failures["cancelled"] = stats.failures.get("cancelled", 0) + 1
        self._free(call_id)

    def ingress_started(self, name: str) -> None:
        if name:
            self.ingress[name] = self.ingress.get(name, 0) + 1

    def ingress_ended(self, name: str) -> None:
        count = self.ingress.get(name, 0) - 1
        if count > 0:
            self.ingress[name] = count
        else:
            self.ingress.pop(name, None)

    def probe(self, gateway: str, ok: bool) -> None:
        """An OPTIONS probe toward ``gateway`` got a response (``ok``) or none."""
        stats = self.gateway(gateway)
        stats.options_failures = 0 if ok else (stats.options_failures or 0) + 1
        if ok:
            stats.no_response = 0

    def _pdd(self, stats: GatewayStats, now: float, pdd: float) -> None:
        stats.pdd.call(now, pdd)
        stats.pdd_sum += pdd
        stats.pdd_count += 1
        if pdd > PDD_TARGET:
            stats.pdd_slow += 1

    def _free(self, call_id: str) -> None:
        line = self._lines.pop(call_id, None)
        if line is not None:
            stats = self.gateways.get(line.gateway)
            if stats is not None and stats.active > 0:
                stats.active -= 1

    # -- reading ----------------------------------------------------------------------------------

    def health(self, now: float) -> list[GatewayHealth]:
        out = []
        for stats in self.gateways.values():
            asr, attempts = stats.asr.asr(now)
            out.append(
                GatewayHealth(
                    stats.name,
                    attempts,
                    asr,
                    stats.no_response,
                    stats.options_failures,
                    stats.pdd.acd(now),
                    stats.pdd.calls(now),
                    stats.fail.rates(now)[0],
                )
            )
        return out

    def view(self, now: float) -> list[dict[str, Any]]:
        """Every gateway's figures as plain data (API, dashboard)."""
        out = []
        for s in self.gateways.values():
            asr, attempts = s.asr.asr(now)
            out.append(
                {
                    "gateway": s.name,
                    "active": s.active,
                    "attempts": s.attempts,
                    "answered": s.answered,
                    "failed": s.failed,
                    "failures": dict(s.failures),
                    "asr": None if asr is None else round(asr, 2),
                    "asr_attempts": attempts,
                    "acd": s.acd.acd(now),
                    "pdd": s.pdd.acd(now),
                    "pdd_slow": s.pdd_slow,
                    "failure_rate": None if (rate := s.fail.rates(now)[0]) is None else round(rate, 2),
                    "no_response": s.no_response,
                    "options_failures": s.options_failures,
                }
            )
        return out


class MeteredRouter:
    """The node's router, seen through a :class:`GatewayMeter`: every call passes through to
    ``inner`` unchanged; any other attribute is the inner router's (``password_for``,
    ``records``...)."""

    def __init__(
        self, inner: Router, meter: GatewayMeter, probe: AttemptProbe, lookup: RecordLookup | None = None
    ) -> None:
        self.inner = inner
        self.meter = meter
        self._probe = probe
        self._lookup = lookup
        #: the protect routes' names of the inner router's snapshot (rebuilt when it changes)
        self._protect_of: object = None
        self._protect: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 (whatever the inner router has)
        return getattr(self.inner, name)

    def admit(self, call: InboundCall, now: float) -> Admission:
        return self.inner.admit(call, now)

    def attempt_started(self, call_id: str, route: Route, now: float) -> bool | None:
        # the inner router's answer is the node's: False (its lines are taken, by this node or
        # another of the database) skips the route, and then no attempt is metered
        allowed = self.inner.attempt_started(call_id, route, now)
        if allowed is not False:
            self.meter.attempt_started(call_id, route.gateway, now)
            self.meter.kpi.attempt_started(call_id, route.gateway, self.is_protect(route.gateway))
            if self.meter.watch.prefixes:  # no list, no lookup
                self._watch(call_id, route, now)
        return allowed

    def _watch(self, call_id: str, route: Route, now: float) -> None:
        record = self._lookup(call_id) if self._lookup is not None else None
        dialed = record.callee if record is not None else route.callee
        account_of = getattr(self.inner, "account_code", None)
        account = account_of(call_id) if account_of is not None else ""
        self.meter.watch.routed(
            now,
            call_id,
            (dialed, route.callee),
            account=account or "",
            caller=record.caller if record is not None else route.caller,
            ingress=record.ingress if record is not None else "",
            gateway=route.gateway,
        )

    def is_protect(self, gateway: str) -> bool:
        """Whether ``gateway`` is a protect route of the inner router's tables (the store's
        snapshot; the file's static tables have none). A set lookup: the set is rebuilt only
        when the router loads a new snapshot."""
        snapshot = getattr(self.inner, "snapshot", None)
        if snapshot is None:
            return False
        if snapshot is not self._protect_of:
            routing = getattr(snapshot, "routing", {})
            self._protect = frozenset(g.name for g in routing.values() if getattr(g, "protect", False))
            self._protect_of = snapshot
        return gateway in self._protect

    def attempt_ended(self, call_id: str, route: Route, status: int, now: float) -> None:
        heard, ring = self._probe(call_id)
        self.meter.attempt_failed(call_id, route.gateway, status, now, responded=heard, ring=ring)
        self.inner.attempt_ended(call_id, route, status, now)

    def call_answered(self, call_id: str, route: Route, now: float) -> None:
        self.meter.answered(call_id, route.gateway, now, self._probe(call_id)[1])
        self.meter.kpi.answered(call_id)
        self.inner.call_answered(call_id, route, now)

    def call_ended(self, record: CallRecord) -> None:
        end = record.end if record.end is not None else record.start
        self.meter.call_ended(record.call_id, end)
        self.meter.kpi.call_ended(record.call_id, end)
        self.meter.quality.call_ended(record, end)
        self.meter.watch.call_ended(record.call_id)
        self.inner.call_ended(record)

    def on_hangup_request(self, callback: Callable[[str, str], object]) -> None:
        self.inner.on_hangup_request(callback)
