"""Call quality at each call's end, routing KPIs and balance runway: sans-IO, on injected clocks.

Three trackers the node and the observer feed, each O(1) per call (or per account reading), each
turning what it saw into alarm :class:`~signaling.observe.alarms.Condition` objects and metric
counters (docs/observability.md, "Call quality, routing KPIs, balance runway"):

* :class:`MediaQualityMeter` classifies an ended call from the media engine's final statistics
  (``CallRecord.media_packets`` and ``media_quality``, per party): **one-way audio** (reference
  part 2 §B.2 and behaviour 24: an answered call of at least ``oneway_min_seconds`` whose one
  party's RTP reached us while the other's count is 0), **packet loss** above ``packet_loss`` %
  (behaviour 25: the 1 % alert; critical above ``packet_loss_critical`` %, the band table's
  "> 2 %") and **jitter** above ``jitter_high`` ms (behaviour 26: 30 ms alert, critical above
  ``jitter_critical`` = 50 ms). A party's stream is blamed on its side: the caller's on the
  mapping gateway the call came in on (``mapping:<name>``), the callee's on the routing gateway
  that answered (``routing:<name>``). Alarms are aggregated per (problem, gateway): an *episode*
  lasts while flagged calls keep coming less than ``media_window`` seconds apart; the alarm names
  the episode's count, its worst figure and the last call (Call-ID, both gateways, figures) and
  clears ``media_window`` seconds after the last flagged call — one alarm per bad carrier, not one
  per call.
* :class:`RoutingKpi` counts the calls that reached a routing gateway (*routed*), those that
  tried more than one gateway (*failover*), those that tried a protect route (*protect*,
  behaviour 63) and those the first gateway tried answered (*primary answered*), in a sliding
  window of ``kpi_window`` seconds (a day: the reference's KPI frequency, §D.10) and as totals;
  the bands of behaviour 73 / §D.10 grade the window's ratios.
* :class:`BalanceRunway` keeps a few readings of each account's funds (balance + credit) over
  ``runway_window`` seconds; the drop over that span is the spend rate, funds ÷ rate the runway
  (behaviour 72: warning under ``runway_warning`` s = 12 h, critical under ``runway_critical`` s
  = 4 h). A rise (a payment) starts the account's span again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from signaling.observe.alarms import CRITICAL, MAJOR, WARNING, AlarmConfig, Condition, State
from signaling.routing import CallRecord

__all__ = [
    "BANDS",
    "BalanceRunway",
    "MediaQualityMeter",
    "RoutingKpi",
    "kpi_band",
]

ONE_WAY = "one_way_audio"
LOSS = "packet_loss"
JITTER = "jitter_high"
MEDIA_KINDS = (ONE_WAY, LOSS, JITTER)
_RANK = {WARNING: 0, MAJOR: 1, CRITICAL: 2}


@dataclass(slots=True)
class _Episode:
    first: float
    last: float
    severity: str
    worst: float
    count: int = 0
    detail: str = ""


@dataclass(slots=True)
class MediaQualityMeter:
    """Per-call media classification at the call's end (see the module docstring)."""

    config: AlarmConfig = field(default_factory=AlarmConfig)
    #: flagged calls by (problem, party, severity): one_way_audio / packet_loss / jitter_high
    flagged: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: answered calls whose media was classified (the denominator of the counters above)
    classified: int = 0
    episodes: dict[tuple[str, str], _Episode] = field(default_factory=dict)

    def call_ended(self, record: CallRecord, now: float) -> list[tuple[str, str, str, float]]:
        """Classify one ended call; its findings as (problem, party, severity, figure)."""
        c = self.config
        packets = record.media_packets
        if record.answer is None or "caller" not in packets or "callee" not in packets:
            return []  # not answered, or no media statistics (no proxy, or an engine without them)
        self.classified += 1
        findings: list[tuple[str, str, str, float]] = []
        if record.duration >= c.oneway_min_seconds and c.oneway_min_seconds > 0:
            heard, silent = ("caller", "callee") if packets["callee"] == 0 else ("callee", "caller")
            if packets[heard] > 0 and packets[silent] == 0:
                findings.append((ONE_WAY, silent, MAJOR, float(packets[heard])))
        for party, (expected, lost, jitter_ms) in record.media_quality.items():
            if expected >= c.media_min_packets and c.packet_loss > 0:
                loss = 100.0 * lost / expected
                if loss > c.packet_loss:
                    severity = CRITICAL if loss > c.packet_loss_critical else WARNING
                    findings.append((LOSS, party, severity, round(loss, 2)))
            if c.jitter_high > 0 and expected > 0 and jitter_ms > c.jitter_high:
                severity = CRITICAL if jitter_ms > c.jitter_critical else WARNING
                findings.append((JITTER, party, severity, round(jitter_ms, 1)))
        for problem, party, severity, figure in findings:
            key = (problem, party, severity)
            self.flagged[key] = self.flagged.get(key, 0) + 1
            self._episode(record, now, (problem, party, severity, figure))
        return findings

    def _episode(self, record: CallRecord, now: float, finding: tuple[str, str, str, float]) -> None:
        problem, party, severity, figure = finding
        subject = f"mapping:{record.ingress}" if party == "caller" else f"routing:{record.gateway or ''}"
        key = (problem, subject)
        episode = self.episodes.get(key)
        if episode is None or now - episode.last >= self.config.media_window:
            episode = self.episodes[key] = _Episode(now, now, severity, figure)
        episode.last = now
        episode.count += 1
        if _RANK[severity] > _RANK[episode.severity]:
            episode.severity = severity
        # loss and jitter: the higher the worse; one-way: the heard side's packet count (no order)
        episode.worst = max(episode.worst, figure) if problem != ONE_WAY else figure
        what = {
            ONE_WAY: f"{party} sent no RTP (the other party sent {figure:.0f} packets)",
            LOSS: f"{party} loss {figure:g} %",
            JITTER: f"{party} jitter {figure:g} ms",
        }[problem]
        episode.detail = (
            f"last call {record.call_id} ({record.ingress} -> {record.gateway or '-'},"
            f" {record.duration:.0f} s): {what}"
        )

    def conditions(self, now: float) -> list[Condition]:
        """One bad condition per (problem, gateway) episode still open; closed ones are dropped
        (their alarms clear as no longer reported)."""
        out = []
        window = self.config.media_window
        for key, ep in list(self.episodes.items()):
            if now - ep.last >= window:
                del self.episodes[key]
                continue
            problem, subject = key
            name = {ONE_WAY: "one-way audio", LOSS: "packet loss", JITTER: "jitter"}[problem]
            worst = (
                "" if problem == ONE_WAY else (f", worst {ep.worst:g}" + (" %" if problem == LOSS else " ms"))
            )
            message = f"{subject}: {name} on {ep.count} call(s) in the last {window:g} s{worst}; {ep.detail}"
            out.append(Condition(problem, subject, "bad", ep.severity, message, ep.count))
        return out


# --------------------------------------------------------------------------- routing KPIs

#: kpi -> (healthy/warning boundary, warning/critical boundary, higher is worse)
BANDS = ("failover_rate", "protect_route_usage", "primary_asr")
KPI_ALARMS = {"failover_rate": "failover_rate_high", "protect_route_usage": "protect_route_usage",
              "primary_asr": "primary_asr_low"}  # fmt: skip


def kpi_band(config: AlarmConfig, kpi: str, percent: float) -> int:
    """0 healthy, 1 warning, 2 critical (reference §D.10; behaviour 73: failover 6 % warning,
    protect usage 4 % critical, primary ASR 28 % critical)."""
    c = config
    if kpi == "failover_rate":
        return 0 if percent < c.failover_warning else (1 if percent <= c.failover_critical else 2)
    if kpi == "protect_route_usage":
        return 0 if percent < c.protect_warning else (1 if percent <= c.protect_critical else 2)
    if kpi == "primary_asr":
        return 0 if percent >= c.primary_asr_warning else (1 if percent >= c.primary_asr_critical else 2)
    raise ValueError(f"unknown KPI {kpi!r}")


@dataclass(slots=True)
class _KpiCall:
    gateway: str
    attempts: int = 1
    protect: bool = False
    primary_answered: bool = False


@dataclass(slots=True)
class _KpiSegment:
    index: int
    routed: int = 0
    failover: int = 0
    protect: int = 0
    primary_answered: int = 0


#: counters: routed, failover, protect, primary_answered
_FIELDS = ("routed", "failover", "protect", "primary_answered")


class RoutingKpi:
    """Failover rate, protect-route usage and primary ASR (see the module docstring)."""

    SEGMENTS = 24

    def __init__(self, config: AlarmConfig | None = None) -> None:
        self.config = config or AlarmConfig()
        self._calls: dict[str, _KpiCall] = {}
        self._segments: deque[_KpiSegment] = deque()
        self.totals: dict[str, int] = dict.fromkeys(_FIELDS, 0)

    def attempt_started(self, call_id: str, gateway: str, protect: bool) -> None:
        call = self._calls.get(call_id)
        if call is None:
            self._calls[call_id] = _KpiCall(gateway, protect=protect)
            return
        if call.gateway != gateway:  # the same carrier again (a 422 re-send) is one attempt
            call.gateway = gateway
            call.attempts += 1
        call.protect = call.protect or protect

    def answered(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None and call.attempts == 1:
            call.primary_answered = True

    def call_ended(self, call_id: str, now: float) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return  # never routed (refused at admission)
        length = self.config.kpi_window / self.SEGMENTS
        index = int(now // length)
        if not self._segments or self._segments[-1].index != index:
            self._segments.append(_KpiSegment(index))
        segment = self._segments[-1]  # each counter by name: this runs once per call
        totals = self.totals
        segment.routed += 1
        totals["routed"] += 1
        if call.attempts > 1:
            segment.failover += 1
            totals["failover"] += 1
        if call.protect:
            segment.protect += 1
            totals["protect"] += 1
        if call.primary_answered:
            segment.primary_answered += 1
            totals["primary_answered"] += 1

    def window(self, now: float) -> dict[str, int]:
        length = self.config.kpi_window / self.SEGMENTS
        first = int(now // length) - self.SEGMENTS
        while self._segments and self._segments[0].index <= first:
            self._segments.popleft()
        return {name: sum(getattr(s, name) for s in self._segments) for name in _FIELDS}

    def ratios(self, now: float) -> dict[str, float]:
        """The window's KPIs in percent (empty without routed calls)."""
        w = self.window(now)
        if not w["routed"]:
            return {}
        routed = w["routed"]
        return {
            "failover_rate": 100.0 * w["failover"] / routed,
            "protect_route_usage": 100.0 * w["protect"] / routed,
            "primary_asr": 100.0 * w["primary_answered"] / routed,
        }

    def conditions(self, now: float) -> list[Condition]:
        """Each KPI outside its healthy band over at least ``kpi_min_calls`` routed calls of the
        window: warning or critical by band; fewer calls say nothing (an alarm clears)."""
        routed = self.window(now)["routed"]
        if routed < max(1, self.config.kpi_min_calls):
            return []
        out = []
        for kpi, percent in self.ratios(now).items():
            band = kpi_band(self.config, kpi, percent)
            state: State = "good" if band == 0 else "bad"
            severity = CRITICAL if band == 2 else WARNING
            label = kpi.replace("_", " ")
            grade = ("healthy", "warning", "critical")[band]
            message = f"{label} {percent:.1f} % over {routed} routed calls ({grade})"
            out.append(Condition(KPI_ALARMS[kpi], "node", state, severity, message, round(percent, 2)))
        return out


# --------------------------------------------------------------------------- balance runway


@dataclass(slots=True)
class _Readings:
    samples: deque[tuple[float, Decimal]]
    current: Decimal
    at: float


class BalanceRunway:
    """Hours of funds left at the recent spend rate, per account (see the module docstring)."""

    #: readings kept per account over the window (one every window / KEEP at most)
    KEEP = 12

    def __init__(self, config: AlarmConfig | None = None) -> None:
        self.config = config or AlarmConfig()
        self.accounts: dict[str, _Readings] = {}

    def observe(self, now: float, funds: Mapping[str, Decimal]) -> None:
        """One reading of every watched account's funds (balance + credit)."""
        window = self.config.runway_window
        for account, amount in funds.items():
            r = self.accounts.get(account)
            if r is None or amount > r.current:  # new, or paid in: the span starts again
                self.accounts[account] = _Readings(deque([(now, amount)]), amount, now)
                continue
            r.current, r.at = amount, now
            if now - r.samples[-1][0] >= window / self.KEEP:
                r.samples.append((now, amount))
            while len(r.samples) > 1 and r.samples[1][0] <= now - window:
                r.samples.popleft()
        for gone in [a for a in self.accounts if a not in funds]:
            del self.accounts[gone]

    def runway(self, account: str) -> tuple[float, Decimal] | None:
        """(seconds of funds left, spend per hour), or None while the account spends nothing or
        its readings span less than ``runway_min_span``."""
        r = self.accounts.get(account)
        if r is None:
            return None
        start, amount = r.samples[0]
        span = r.at - start
        spent = amount - r.current
        if span < self.config.runway_min_span or spent <= 0:
            return None
        per_second = spent / Decimal(repr(span))
        left = float(max(Decimal(0), r.current) / per_second)
        return left, (per_second * 3600).quantize(Decimal("0.01"))

    def conditions(self) -> list[Condition]:
        c = self.config
        if c.runway_warning <= 0:
            return []
        out = []
        for account, r in self.accounts.items():
            found = self.runway(account)
            if found is None:
                out.append(
                    Condition("balance_runway", account, "good", WARNING, f"account {account}: not spending")
                )
                continue
            left, rate = found
            hours = left / 3600.0
            state: State = "bad" if left < c.runway_warning else "good"
            severity = CRITICAL if left < c.runway_critical else WARNING
            message = (
                f"account {account}: funds {r.current} last {hours:.1f} h at {rate}/h"
                f" (warning under {c.runway_warning / 3600:g} h,"
                f" critical under {c.runway_critical / 3600:g} h)"
            )
            out.append(Condition("balance_runway", account, state, severity, message, round(hours, 2)))
        return out
