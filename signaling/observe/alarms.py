"""Alarms, sans-IO: the reference's alarm list evaluated from plain inputs on an injected clock.

Theory of operation. A *rule* turns one kind of input (gateway health, account funds, the CDR
queue, long calls, a system sample, scanner sightings) into :class:`Condition` objects, one per
subject (a gateway, an account, a call, an IP, "cpu"...), each saying whether the subject is
*bad* (the raise threshold is crossed), *good* (the clear threshold is crossed back) or
*between* (hysteresis: neither — the current state holds). :class:`AlarmBoard` keeps the state:

* bad for ``raise_after`` seconds (per kind: "sustained CPU > 70 %" waits, a scanner does not)
  → the alarm is **raised**; while it stays bad its value and message follow the input, and a
  change of severity is recorded;
* good for ``clear_after`` seconds → **cleared**; between → neither timer runs;
* a subject a rule no longer reports (the call ended, the gateway was removed) is cleared at
  once — but only for the kinds evaluated in that round, so an input fetched less often (account
  funds, every minute) keeps its alarms between fetches.

Every raise, change and clear goes into a bounded history. :meth:`AlarmBoard.snapshot` gives the
active alarms and the recent history as plain JSON-able data for the API and the web manager.
Time is whatever clock the caller passes (the node's observer passes Unix time, so the
timestamps read as dates); nothing here reads a clock, a file or the network.

The reference's list (web manager §7.8 and §7.9, part 2 §A.2, §B.4, §D.10, F.1-11/12, F.5-50)
and what each alarm is here:

============================  ==============  ==================================================
kind                          severity        raised when
============================  ==============  ==================================================
``gateway_down``              major           a routing gateway left ``gateway_no_answer``
                                              attempts in a row without any response, failed
                                              ``gateway_options_failures`` OPTIONS probes in a
                                              row, or answered none of at least
                                              ``asr_min_calls`` attempts in the ASR window
                                              ("Vendor Unreachable")
``asr_low``                   warning         window ASR below ``asr_low`` % over at least
                                              ``asr_min_calls`` attempts ("Low ASR Detected")
``gateway_failure_rate``      major           carrier failures (5xx, 6xx but 600, 408, no
                                              response) at or above ``failure_rate_high`` % of
                                              at least ``failure_min_calls`` attempts ending in
                                              the ASR window (T78)
``destination_watch``         warning         calls routed to a watched prefix
                                              (``watch_prefixes``), one alarm per prefix while
                                              they come less than ``watch_window`` s apart (T78)
``balance_low``               warning         an account's balance + credit below
                                              ``balance_low``
``cdr_backlog``               major           ``cdr_backlog`` or more CDRs waiting to be written
``duration_too_long``         warning         a call answered longer than
                                              ``duration_too_long`` s, unless its account
                                              suppresses it (F.5-50)
``cpu_high``                  critical        CPU at or above ``cpu_high`` % for ``cpu_sustain`` s
``memory_high``               critical        memory in use at or above ``memory_high`` %
``disk_full``                 warning         a watched file system at or above ``disk_high`` %
                              (critical)      (critical from ``disk_critical`` %)
``disk_io_high``              warning         a disk busy at or above ``disk_io_high`` %
``network_high``              warning         an interface's throughput at or above
                              (critical)      ``network_high`` % of its capacity (critical above
                                              ``network_critical`` %; behaviour 65, §7.9)
``capacity_limit``            critical        the node refused calls at ``[sip] max_calls``
                                              concurrent calls (behaviour 66)
``scanner``                   major           an untrusted IP sending >= 50 OPTIONS/min or
                                              >= 100 packets/s (F.1-12), named in the alarm
``flow_table_full``           major           the kernel's conntrack table, or the defence's
                                              source table, at or above ``table_high`` %
``pdd_high``                  warning         a gateway's mean PDD above ``pdd_high`` s (T70)
                              (critical)      (critical above ``pdd_critical`` s)
``one_way_audio``             major           ended calls with one party's RTP only, per gateway
``packet_loss``               warning         ended calls losing > ``packet_loss`` %, per gateway
``jitter_high``               warning         ended calls with jitter > ``jitter_high`` ms
``failover_rate_high``        warning         the routing KPIs of §D.10 outside their healthy
``protect_route_usage``       warning         bands (critical in the critical band);
``primary_asr_low``           warning         signaling/observe/quality.py
``balance_runway``            warning         an account's funds last < 12 h (critical < 4 h)
============================  ==============  ==================================================
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

log = logging.getLogger("softswitch.alarms")

__all__ = [
    "KINDS",
    "Alarm",
    "AlarmBoard",
    "AlarmConfig",
    "AlarmEvent",
    "Condition",
    "GatewayHealth",
    "LongCall",
    "SystemSample",
    "balance_conditions",
    "capacity_conditions",
    "cdr_conditions",
    "duration_conditions",
    "gateway_conditions",
    "scanner_conditions",
    "system_conditions",
    "table_conditions",
]

State = Literal["bad", "good", "between"]

CRITICAL = "critical"
MAJOR = "major"
WARNING = "warning"

KINDS = (
    "gateway_down",
    "asr_low",
    "balance_low",
    "cdr_backlog",
    "duration_too_long",
    "cpu_high",
    "memory_high",
    "disk_full",
    "disk_io_high",
    "network_high",
    "capacity_limit",
    "gateway_failure_rate",
    "destination_watch",
    "scanner",
    "flow_table_full",
    "pdd_high",
    "one_way_audio",
    "packet_loss",
    "jitter_high",
    "failover_rate_high",
    "protect_route_usage",
    "primary_asr_low",
    "balance_runway",
)


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    """``[alarms]`` (signaling/config.py); docs/observability.md has the reasons for defaults."""

    #: seconds between two evaluations on the node's loop
    interval: float = 5.0
    #: seconds a bad condition must hold before a raise / a good one before a clear, by default
    clear_after: float = 30.0
    #: gateway down: attempts in a row with no response at all; OPTIONS probes toward every
    #: routing gateway every ``gateway_options_interval`` s (0: no probes) and failures in a row
    gateway_no_answer: int = 5
    gateway_options_interval: float = 0.0
    gateway_options_failures: int = 3
    #: ASR (percent) below which "asr_low" is raised and at or above which it clears, and the
    #: attempts the window must hold before ASR counts (also for "ASR 0 = gateway down")
    asr_low: float = 20.0
    asr_clear: float = 25.0
    asr_min_calls: int = 10
    #: carrier failure rate (T78): percent of the attempts ending in the ASR window that ended in
    #: a carrier failure (5xx, 6xx but 600 busy, 408, no response at all); raised at or above
    #: ``failure_rate_high``, cleared under ``failure_rate_clear``, judged from
    #: ``failure_min_calls`` attempts (0: off)
    failure_rate_high: float = 30.0
    failure_rate_clear: float = 20.0
    failure_min_calls: int = 10
    #: destination watch (T78): callee prefixes (premium-rate, fraud-prone ranges) whose calls
    #: raise "destination_watch"; calls less than ``watch_window`` s apart are one alarm per prefix
    watch_prefixes: tuple[str, ...] = ()
    watch_window: float = 300.0
    #: account balance + credit below which "balance_low" is raised (None: off); how often the
    #: store is read for it, seconds
    balance_low: Decimal | None = Decimal(10)
    balance_interval: float = 60.0
    #: CDRs waiting to be written (the retry queue) for "cdr_backlog"
    cdr_backlog: int = 1
    #: seconds of conversation after which a call raises "duration_too_long" (0: off)
    duration_too_long: float = 7200.0
    #: system resources, percent
    cpu_high: float = 70.0
    cpu_clear: float = 60.0
    cpu_sustain: float = 60.0
    memory_high: float = 85.0
    memory_clear: float = 80.0
    disk_high: float = 85.0
    disk_clear: float = 80.0
    #: a full disk escalates from warning to critical here (web manager §7.9: > 90 % critical)
    disk_critical: float = 90.0
    disk_paths: tuple[str, ...] = ("/",)
    disk_io_high: float = 80.0
    disk_io_clear: float = 60.0
    disk_io_sustain: float = 60.0
    #: network throughput per interface, percent of its capacity (web manager §7.9's band table:
    #: warning from 50 %, critical above 75 %; behaviour 65); the capacity is the link speed of
    #: /sys/class/net/IF/speed, or ``network_capacity_mbps`` where the kernel knows none (virtual
    #: NICs; 0: such interfaces get no band); loopback is never watched
    network_high: float = 50.0
    network_clear: float = 40.0
    network_critical: float = 75.0
    network_capacity_mbps: float = 0.0
    table_high: float = 90.0
    #: post-dial delay: a gateway's mean over the ACD window above ``pdd_high`` s (critical
    #: above ``pdd_critical``) over at least ``pdd_min_calls`` measured attempts (T70, §D.10)
    pdd_high: float = 3.0
    pdd_critical: float = 7.0
    pdd_min_calls: int = 5
    #: media quality at each call's end (signaling/observe/quality.py): one-way audio on answered
    #: calls of at least ``oneway_min_seconds``; loss (percent, over streams of at least
    #: ``media_min_packets`` expected) and jitter (ms); flagged calls less than
    #: ``media_window`` s apart make one alarm per (problem, gateway)
    oneway_min_seconds: float = 5.0
    media_min_packets: int = 50
    packet_loss: float = 1.0
    packet_loss_critical: float = 2.0
    jitter_high: float = 30.0
    jitter_critical: float = 50.0
    media_window: float = 300.0
    #: routing KPIs over ``kpi_window`` s, judged from ``kpi_min_calls`` routed calls (§D.10)
    kpi_window: float = 86400.0
    kpi_min_calls: int = 20
    failover_warning: float = 5.0
    failover_critical: float = 15.0
    protect_warning: float = 1.0
    protect_critical: float = 3.0
    primary_asr_warning: float = 45.0
    primary_asr_critical: float = 30.0
    #: balance runway: the spend over ``runway_window`` s (readings spanning at least
    #: ``runway_min_span`` s); seconds of funds left under which it warns / is critical (0: off)
    runway_window: float = 3600.0
    runway_min_span: float = 600.0
    runway_warning: float = 43200.0
    runway_critical: float = 14400.0
    #: raise/clear events kept in the history
    history: int = 1000
    #: alarm e-mail (signaling/observe/mail.py; SERVER_ALARM_ENABLE_EMAIL, SERVER_ALARM_EMAIL):
    #: the SMTP relay "host:port" and the sender ("": softswitch@ this machine's name)
    smtp: str = "127.0.0.1:25"
    mail_from: str = ""

    def __post_init__(self) -> None:
        pairs = (
            ("asr_clear", self.asr_clear, "asr_low", self.asr_low),
            ("cpu_high", self.cpu_high, "cpu_clear", self.cpu_clear),
            ("memory_high", self.memory_high, "memory_clear", self.memory_clear),
            ("disk_high", self.disk_high, "disk_clear", self.disk_clear),
            ("disk_io_high", self.disk_io_high, "disk_io_clear", self.disk_io_clear),
            ("failure_rate_high", self.failure_rate_high, "failure_rate_clear", self.failure_rate_clear),
            ("network_high", self.network_high, "network_clear", self.network_clear),
        )
        for high_name, high, low_name, low in pairs:
            if high < low:
                raise ValueError(f"{high_name} must not be below {low_name} (hysteresis)")
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        for name in ("media_window", "kpi_window", "runway_window", "watch_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        self.smtp_relay()  # checked at load: "alarms: smtp: ..."
        if self.balance_low is not None and not isinstance(self.balance_low, Decimal):
            raise TypeError("balance_low is money: a Decimal")

    def smtp_relay(self) -> tuple[str, int]:
        """``smtp`` as (host, port); ValueError naming it when it is not ``host:port``."""
        host, sep, port = self.smtp.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"smtp: {self.smtp!r} is not host:port (e.g. 127.0.0.1:25)")
        return host, int(port)

    def raise_after(self, kind: str) -> float:
        return {"cpu_high": self.cpu_sustain, "disk_io_high": self.disk_io_sustain}.get(kind, 0.0)

    def clearing_delay(self, kind: str) -> float:
        """Good this long before a clear: resources and ASR wait, the others clear at once (a
        response proves a gateway up; a sighting already lasts a quiet minute)."""
        waits = (
            "cpu_high",
            "memory_high",
            "disk_full",
            "disk_io_high",
            "asr_low",
            "flow_table_full",
            "pdd_high",
            "gateway_failure_rate",
            "network_high",
            "capacity_limit",
        )
        return self.clear_after if kind in waits else 0.0


@dataclass(frozen=True, slots=True)
class Condition:
    """One subject's state as a rule saw it."""

    kind: str
    subject: str
    state: State
    severity: str
    message: str
    value: float | str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


@dataclass(slots=True)
class Alarm:
    kind: str
    subject: str
    severity: str
    message: str
    value: float | str | None
    raised_at: float
    updated_at: float
    cleared_at: float | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "raised_at": self.raised_at,
            "updated_at": self.updated_at,
            "cleared_at": self.cleared_at,
        }


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    #: "raised", "changed" (severity) or "cleared"
    action: str
    at: float
    alarm: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "at": self.at, **self.alarm}


@dataclass(slots=True)
class _Track:
    bad_since: float | None = None
    good_since: float | None = None


class AlarmBoard:
    """Active alarms, their pending timers and the history (see the module docstring)."""

    def __init__(self, config: AlarmConfig | None = None) -> None:
        self.config = config or AlarmConfig()
        self.active: dict[str, Alarm] = {}
        self.history: deque[AlarmEvent] = deque(maxlen=self.config.history)
        self._tracks: dict[str, _Track] = {}
        #: every raise ever (for the metrics)
        self.raised_total: dict[str, int] = dict.fromkeys(KINDS, 0)

    def evaluate(self, now: float, conditions: Iterable[Condition], kinds: Iterable[str]) -> list[AlarmEvent]:
        """Apply one round of ``conditions`` from the rules of ``kinds``; the events it caused."""
        events: list[AlarmEvent] = []
        evaluated = set(kinds)
        seen: set[str] = set()
        for condition in conditions:
            seen.add(condition.key)
            evaluated.add(condition.kind)
            self._apply(now, condition, events)
        for key in [k for k, t in self._tracks.items() if k not in seen and k.partition(":")[0] in evaluated]:
            del self._tracks[key]
            alarm = self.active.pop(key, None)
            if alarm is not None:
                self._clear(now, alarm, events, "gone")
        return events

    def _apply(self, now: float, c: Condition, events: list[AlarmEvent]) -> None:
        track = self._tracks.setdefault(c.key, _Track())
        alarm = self.active.get(c.key)
        if c.state == "bad":
            track.good_since = None
            if alarm is not None:
                changed = alarm.severity != c.severity
                alarm.severity, alarm.message, alarm.value, alarm.updated_at = (
                    c.severity,
                    c.message,
                    c.value,
                    now,
                )
                if changed:
                    self._record(now, "changed", alarm, events)
                return
            if track.bad_since is None:
                track.bad_since = now
            if now - track.bad_since >= self.config.raise_after(c.kind):
                alarm = Alarm(c.kind, c.subject, c.severity, c.message, c.value, now, now)
                self.active[c.key] = alarm
                self.raised_total[c.kind] = self.raised_total.get(c.kind, 0) + 1
                self._record(now, "raised", alarm, events)
                log.warning("alarm raised: %s %s: %s", alarm.severity, alarm.key, alarm.message)
            return
        track.bad_since = None
        if c.state == "between" or alarm is None:
            track.good_since = None
            if alarm is None and c.state == "good":
                del self._tracks[c.key]  # nothing pending, nothing raised: forget the subject
            return
        if track.good_since is None:
            track.good_since = now
        if now - track.good_since >= self.config.clearing_delay(c.kind):
            del self.active[c.key]
            del self._tracks[c.key]
            self._clear(now, alarm, events, c.message)

    def _clear(self, now: float, alarm: Alarm, events: list[AlarmEvent], why: str) -> None:
        alarm.cleared_at = now
        alarm.updated_at = now
        self._record(now, "cleared", alarm, events)
        log.info("alarm cleared: %s (%s)", alarm.key, why)

    def _record(self, now: float, action: str, alarm: Alarm, events: list[AlarmEvent]) -> None:
        event = AlarmEvent(action, now, alarm.to_json())
        self.history.append(event)
        events.append(event)

    def snapshot(self, history: int = 100) -> dict[str, Any]:
        """``{"active": [...], "history": [...]}``: the active alarms (most severe first, then
        oldest) and the last ``history`` events (newest first), as plain data."""
        order = {CRITICAL: 0, MAJOR: 1, WARNING: 2}
        active = sorted(self.active.values(), key=lambda a: (order.get(a.severity, 3), a.raised_at, a.key))
        recent = list(self.history)[-history:] if history > 0 else []
        return {
            "active": [a.to_json() for a in active],
            "history": [e.to_json() for e in reversed(recent)],
        }


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """What the node knows of one routing gateway (signaling.observe.gateways)."""

    name: str
    #: attempts in the ASR window and the window's ASR (percent; None without attempts)
    attempts: int
    asr: float | None
    #: attempts in a row that got no response at all (timeout, transport error)
    no_response: int
    #: OPTIONS probes in a row that failed (None: not probed)
    options_failures: int | None = None
    #: mean post-dial delay over the ACD window (None: none measured) and attempts measured
    pdd: float | None = None
    pdd_calls: int = 0
    #: carrier failures in percent of the attempts ending in the ASR window (None: none ended)
    failure_rate: float | None = None


def gateway_conditions(config: AlarmConfig, gateways: Iterable[GatewayHealth]) -> list[Condition]:
    out: list[Condition] = []
    for gw in gateways:
        enough = gw.asr is not None and gw.attempts >= config.asr_min_calls
        why: list[str] = []
        if config.gateway_no_answer > 0 and gw.no_response >= config.gateway_no_answer:
            why.append(f"{gw.no_response} attempts in a row without a response")
        if (
            gw.options_failures is not None
            and config.gateway_options_failures > 0
            and gw.options_failures >= config.gateway_options_failures
        ):
            why.append(f"{gw.options_failures} OPTIONS probes in a row failed")
        if enough and gw.asr == 0:
            why.append(f"no answer in {gw.attempts} attempts (ASR 0)")
        probe_ok = not gw.options_failures
        state: State = "bad" if why else ("good" if gw.no_response == 0 and probe_ok else "between")
        message = f"gateway {gw.name} down: " + "; ".join(why) if why else f"gateway {gw.name} responding"
        out.append(Condition("gateway_down", gw.name, state, MAJOR, message, float(gw.no_response)))
        if enough and gw.asr is not None:
            asr = gw.asr
            state = "bad" if asr < config.asr_low else ("good" if asr >= config.asr_clear else "between")
            message = (
                f"gateway {gw.name}: ASR {asr:.1f} % over {gw.attempts} attempts"
                f" (threshold {config.asr_low:g} %)"
            )
            out.append(Condition("asr_low", gw.name, state, WARNING, message, round(asr, 2)))
        if (
            gw.failure_rate is not None
            and config.failure_min_calls > 0
            and gw.attempts >= config.failure_min_calls
        ):
            rate = gw.failure_rate
            state = _band(rate, config.failure_rate_high, config.failure_rate_clear)
            message = (
                f"gateway {gw.name}: carrier failures (5xx/6xx/408/no response) {rate:.1f} % of"
                f" {gw.attempts} attempts (threshold {config.failure_rate_high:g} %)"
            )
            out.append(Condition("gateway_failure_rate", gw.name, state, MAJOR, message, round(rate, 2)))
        if gw.pdd is not None and config.pdd_high > 0 and gw.pdd_calls >= max(1, config.pdd_min_calls):
            state = "bad" if gw.pdd > config.pdd_high else "good"
            severity = CRITICAL if gw.pdd > config.pdd_critical else WARNING
            message = (
                f"gateway {gw.name}: mean PDD {gw.pdd:.2f} s over {gw.pdd_calls} attempts"
                f" (target under {config.pdd_high:g} s)"
            )
            out.append(Condition("pdd_high", gw.name, state, severity, message, round(gw.pdd, 3)))
    return out


def balance_conditions(
    config: AlarmConfig, funds: Mapping[str, Decimal], clear: Decimal | None = None
) -> list[Condition]:
    """``funds``: account code -> balance + credit (what it may spend)."""
    low = config.balance_low
    if low is None:
        return []
    clear_at = clear if clear is not None else low
    out = []
    for account, amount in funds.items():
        state: State = "bad" if amount < low else ("good" if amount >= clear_at else "between")
        message = f"account {account}: balance + credit {amount} below {low}"
        out.append(Condition("balance_low", account, state, WARNING, message, str(amount)))
    return out


def cdr_conditions(config: AlarmConfig, depth: int, oldest_age: float | None = None) -> list[Condition]:
    if config.cdr_backlog <= 0:
        return []
    state: State = "bad" if depth >= config.cdr_backlog else ("good" if depth == 0 else "between")
    age = f", the oldest {oldest_age:.0f} s old" if oldest_age is not None else ""
    message = f"{depth} CDRs waiting to be written{age}"
    return [Condition("cdr_backlog", "cdr", state, MAJOR, message, float(depth))]


@dataclass(frozen=True, slots=True)
class LongCall:
    call_id: str
    #: seconds since the answer
    duration: float
    caller: str = ""
    callee: str = ""
    ingress: str = ""
    gateway: str = ""
    #: the account's "Suppressing all duration too long alarm"
    suppressed: bool = False


def duration_conditions(config: AlarmConfig, calls: Iterable[LongCall]) -> list[Condition]:
    """Answered calls past ``duration_too_long``; pass every answered call or only the long ones
    (shorter calls give nothing, so a call that ends clears its alarm)."""
    limit = config.duration_too_long
    if limit <= 0:
        return []
    out = []
    for call in calls:
        if call.duration < limit or call.suppressed:
            continue
        message = (
            f"call {call.call_id} ({call.caller} -> {call.callee}, {call.ingress} -> {call.gateway}) "
            f"answered {call.duration:.0f} s ago, over {limit:.0f} s"
        )
        out.append(
            Condition("duration_too_long", call.call_id, "bad", WARNING, message, round(call.duration))
        )
    return out


@dataclass(frozen=True, slots=True)
class SystemSample:
    """Percentages (0-100) of one sampling period; None where unknown."""

    cpu: float | None = None
    memory: float | None = None
    #: file system path -> used percent
    disks: Mapping[str, float] = field(default_factory=dict)
    #: block device -> busy percent
    disk_io: Mapping[str, float] = field(default_factory=dict)
    #: the kernel's connection tracking table: (entries, maximum)
    conntrack: tuple[int, int] | None = None
    #: interface -> throughput in percent of its capacity (the busier direction); interfaces
    #: without a known capacity are left out
    network: Mapping[str, float] = field(default_factory=dict)


def _band(value: float, high: float, low: float) -> State:
    return "bad" if value >= high else ("good" if value < low else "between")


def system_conditions(config: AlarmConfig, sample: SystemSample) -> list[Condition]:
    c = config
    out = []
    if sample.cpu is not None:
        message = f"CPU {sample.cpu:.0f} % (threshold {c.cpu_high:g} % sustained {c.cpu_sustain:g} s)"
        out.append(
            Condition(
                "cpu_high", "cpu", _band(sample.cpu, c.cpu_high, c.cpu_clear), CRITICAL, message, sample.cpu
            )
        )
    if sample.memory is not None:
        message = f"memory {sample.memory:.0f} % in use (threshold {c.memory_high:g} %)"
        state = _band(sample.memory, c.memory_high, c.memory_clear)
        out.append(Condition("memory_high", "memory", state, CRITICAL, message, sample.memory))
    for path, used in sample.disks.items():
        message = f"file system {path} {used:.0f} % full (threshold {c.disk_high:g} %)"
        state = _band(used, c.disk_high, c.disk_clear)
        severity = CRITICAL if used >= c.disk_critical else WARNING
        out.append(Condition("disk_full", path, state, severity, message, used))
    for device, busy in sample.disk_io.items():
        message = f"disk {device} busy {busy:.0f} % (threshold {c.disk_io_high:g} %)"
        state = _band(busy, c.disk_io_high, c.disk_io_clear)
        out.append(Condition("disk_io_high", device, state, WARNING, message, busy))
    for interface, used in sample.network.items():
        message = (
            f"network {interface} at {used:.0f} % of its capacity (warning from {c.network_high:g} %,"
            f" critical above {c.network_critical:g} %)"
        )
        state = _band(used, c.network_high, c.network_clear)
        severity = CRITICAL if used > c.network_critical else WARNING
        out.append(Condition("network_high", interface, state, severity, message, round(used, 1)))
    if sample.conntrack is not None:
        out.extend(table_conditions(config, "conntrack", *sample.conntrack))
    return out


def table_conditions(config: AlarmConfig, table: str, entries: int, capacity: int) -> list[Condition]:
    """A flow table near full: the kernel's conntrack (F.1-11) or the defence's source table."""
    if capacity <= 0:
        return []
    used = 100.0 * entries / capacity
    state = _band(used, config.table_high, config.table_high * 0.9)
    message = f"{table} table {entries} of {capacity} entries ({used:.0f} %)"
    return [Condition("flow_table_full", table, state, MAJOR, message, round(used, 1))]


def capacity_conditions(limit: int | None, active: int, refused: int) -> list[Condition]:
    """The node's concurrent-call capacity (``[sip] max_calls``, behaviour 66's "limit reached"):
    bad while it refused calls since the previous round (``refused`` of them), good once it holds
    fewer calls than the limit, between while it is full and refused none. No limit: nothing."""
    if limit is None:
        return []
    state: State = "bad" if refused > 0 else ("good" if active < limit else "between")
    message = (
        f"capacity limit reached: {active} of {limit} concurrent calls, {refused} new call(s) refused"
        " since the last round"
        if refused
        else f"{active} of {limit} concurrent calls"
    )
    return [Condition("capacity_limit", "node", state, CRITICAL, message, float(active))]


def scanner_conditions(sightings: Sequence[Any]) -> list[Condition]:
    """One alarm per sighted IP (signaling.sip.defence.Sighting: ``ip``, ``reason``); an IP
    quiet for the sightings' window is no longer reported and its alarm clears."""
    return [
        Condition("scanner", s.ip, "bad", MAJOR, f"SIP scanner at {s.ip}: {s.reason}", str(s.reason))
        for s in sightings
    ]
