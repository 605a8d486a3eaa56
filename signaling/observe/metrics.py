"""Prometheus metrics of a node, read at scrape time.

Nothing here runs on the per-call path: the node, its router and the media engine keep plain
integer counters and small histograms anyway (signaling.b2bua.node.NodeStats,
signaling.observe.gateways, the router's ledger histogram, the engine's totals), and
:class:`NodeCollector` turns them into metric families when Prometheus asks. The collector is
synchronous and only reads (it copies the dictionaries it iterates), so the HTTP side may call it
from the event loop or from a thread.

To serve it (the API app mounts this)::

    registry = build_registry(node, alarms=observer.board)
    body, content_type = exposition(registry, accept=request.headers.get("accept"))

Every metric is named ``softswitch_*``; docs/observability.md lists them with their labels.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, choose_encoder, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from signaling.observe.alarms import KINDS, AlarmBoard
from signaling.observe.histogram import Histograms
from signaling.observe.quality import BANDS, kpi_band

if TYPE_CHECKING:
    from signaling.b2bua.node import Node

__all__ = ["NodeCollector", "build_registry", "exposition"]

P = "softswitch_"


def _counter(
    name: str, doc: str, labels: Iterable[str] = (), values: Mapping[Any, float] | None = None
) -> Metric:
    """A counter family; ``values`` maps a label value (or a tuple of them) to the count."""
    family = CounterMetricFamily(P + name, doc, labels=list(labels))
    for key, value in (values or {}).items():
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _gauge(
    name: str, doc: str, labels: Iterable[str] = (), values: Mapping[Any, float] | None = None
) -> Metric:
    family = GaugeMetricFamily(P + name, doc, labels=list(labels))
    for key, value in (values or {}).items():
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _histograms(name: str, doc: str, label: str, source: Histograms) -> Metric:
    family = HistogramMetricFamily(P + name, doc, labels=[label])
    for value, histogram in list(source.by.items()):
        family.add_metric([value], histogram.cumulative(), histogram.sum)
    return family


def _split(counts: Mapping[str, int]) -> dict[tuple[str, str], int]:
    """``{"played/info": 3}`` -> ``{("played", "info"): 3}``."""
    out: dict[tuple[str, str], int] = {}
    for key, value in list(counts.items()):
        first, _, second = key.partition("/")
        out[(first, second)] = value
    return out


class NodeCollector(Collector):
    """Everything the node knows, as metric families (see the module docstring)."""

    def __init__(self, node: Node, *, alarms: AlarmBoard | None = None) -> None:
        self.node = node
        self.alarms = alarms

    def _now(self) -> float:
        try:
            return self.node.now()
        except RuntimeError:  # no loop in this thread and none started: the loop's clock anyway
            return time.monotonic()

    def collect(self) -> Iterator[Metric]:
        yield from self._calls()
        yield from self._sip()
        yield from self._gateways()
        yield from self._media()
        yield from self._quality()
        yield from self._billing()
        yield from self._defence()
        yield from self._alarms()

    def _calls(self) -> Iterator[Metric]:
        node, s = self.node, self.node.stats
        yield _gauge("calls_active", "Calls in progress (set up or answered).", values={(): len(node.calls)})
        yield _counter(
            "calls_attempted",
            "INVITEs that started a call (refused ones included).",
            values={(): s.calls_started},
        )
        yield _counter("calls_answered", "Calls answered.", values={(): s.calls_answered})
        yield _counter(
            "calls_failed",
            "Calls that ended without an answer (refused at admission or failed), by termination reason.",
            ["reason"],
            dict(s.failed_by_reason),
        )
        yield _counter(
            "calls_completed",
            "Answered calls that ended, by termination reason.",
            ["reason"],
            dict(s.completed_by_reason),
        )
        yield _gauge(
            "calls_per_second",
            "Call attempts per second over the last 10 seconds.",
            values={(): node.cps.rate(self._now())},
        )
        yield _gauge(
            "registered_phones",
            "Addresses-of-record with registrar bindings.",
            values={(): len(node.registrar)},
        )

    def _sip(self) -> Iterator[Metric]:
        node, s = self.node, self.node.stats
        requests = {("in", m): v for m, v in list(s.requests_in.items())}
        requests.update({("out", m): v for m, v in list(s.requests_out.items())})
        yield _counter(
            "sip_requests", "SIP requests by direction and method.", ["direction", "method"], requests
        )
        responses = {("in", c): v for c, v in list(s.responses_in.items())}
        responses.update({("out", c): v for c, v in list(s.responses_out.items())})
        yield _counter(
            "sip_responses", "SIP responses by direction and status class.", ["direction", "class"], responses
        )
        yield _counter(
            "sip_parse_errors", "Received messages the parser refused.", values={(): s.parse_errors}
        )
        yield _counter(
            "handler_errors",
            "Errors raised while handling a message or a call's input.",
            values={(): s.handler_errors},
        )
        yield _counter(
            "whitelist_refused",
            "Phone REGISTERs and INVITEs refused 403 by the account's IP whitelist, by method.",
            ["method"],
            dict(s.whitelist_refused),
        )
        decisions = {d.value: n for d, n in list(node.overload.counts.items())}
        yield _counter(
            "overload_decisions", "Overload guard decisions on received messages.", ["decision"], decisions
        )
        yield _gauge(
            "overloaded",
            "1 while the overload guard refuses new requests beyond its admitted share.",
            values={(): int(node.overload.overloaded)},
        )
        yield _gauge(
            "overload_admit_share",
            "Share of new requests the overload guard admits (1 when not overloaded).",
            values={(): round(node.overload.admit_share, 4)},
        )
        t = node.transport.stats
        yield _counter(
            "sip_datagrams",
            "SIP messages moved by the transport.",
            ["direction", "transport"],
            {
                ("in", "udp"): t.udp_in,
                ("out", "udp"): t.udp_out,
                ("in", "tcp"): t.tcp_in,
                ("out", "tcp"): t.tcp_out,
            },
        )
        yield _counter(
            "sip_send_errors", "Messages the transport could not send.", values={(): t.send_errors}
        )
        yield _gauge(
            "sip_connections",
            "Open TCP and TLS connections.",
            values={(): len(node.transport.tcp) + len(node.transport.tls)},
        )

    def _gateways(self) -> Iterator[Metric]:
        meter, now = self.node.gateways, self._now()
        active = {(name, "in"): n for name, n in list(meter.ingress.items())}
        attempts, answered, failed, asr, acd, pdd, pdd_sum, pdd_count, up, slow = ({} for _ in range(10))
        failures: dict[tuple[str, str], int] = {}
        for g in list(meter.gateways.values()):
            active[(g.name, "out")] = g.active
            attempts[g.name], answered[g.name], failed[g.name] = g.attempts, g.answered, g.failed
            for kind, n in list(g.failures.items()):
                failures[(g.name, kind)] = n
            ratio, _ = g.asr.asr(now)
            if ratio is not None:
                asr[g.name] = ratio / 100.0
            if (seconds := g.acd.acd(now)) is not None:
                acd[g.name] = seconds
            if (delay := g.pdd.acd(now)) is not None:
                pdd[g.name] = delay
            pdd_sum[g.name], pdd_count[g.name], slow[g.name] = g.pdd_sum, g.pdd_count, g.pdd_slow
            up[g.name] = int(g.no_response == 0 and not g.options_failures)
        yield _gauge(
            "gateway_calls_active",
            "Lines held per gateway: customer calls in progress (in), carrier attempts and calls (out).",
            ["gateway", "direction"],
            active,
        )
        yield _counter("gateway_attempts", "INVITEs sent to each routing gateway.", ["gateway"], attempts)
        yield _counter("gateway_answered", "Attempts each routing gateway answered.", ["gateway"], answered)
        yield _counter(
            "gateway_failures",
            "Failed attempts per routing gateway, by status class (timeout: no response; cancelled).",
            ["gateway", "kind"],
            failures,
        )
        yield _gauge("gateway_asr_ratio", "Answer-seizure ratio over the ASR window (0-1).", ["gateway"], asr)
        yield _gauge("gateway_acd_seconds", "Average call duration over the ACD window.", ["gateway"], acd)
        yield _gauge("gateway_pdd_seconds", "Average post-dial delay over the ACD window.", ["gateway"], pdd)
        yield _counter(
            "gateway_post_dial_delay_seconds",
            "Post-dial delays summed (over gateway_pdd_measured: a rate-able mean).",
            ["gateway"],
            pdd_sum,
        )
        yield _counter(
            "gateway_pdd_measured", "Attempts whose post-dial delay was measured.", ["gateway"], pdd_count
        )
        yield _counter(
            "gateway_pdd_slow",
            "Attempts whose post-dial delay was above the 3 s target (T70's flagged attempts).",
            ["gateway"],
            slow,
        )
        yield _gauge(
            "gateway_up",
            "0 while a routing gateway leaves attempts or OPTIONS probes unanswered.",
            ["gateway"],
            up,
        )

    def _media(self) -> Iterator[Metric]:
        s = self.node.stats
        yield _counter(
            "dtmf_events",
            "DTMF digits received and played, by how they travelled.",
            ["direction", "via"],
            _split(s.dtmf),
        )
        yield _counter(
            "media_packets_expected",
            "RTP packets expected from each party over ended calls.",
            ["party"],
            dict(s.media_expected),
        )
        yield _counter(
            "media_packets_lost",
            "RTP packets lost from each party over ended calls.",
            ["party"],
            dict(s.media_lost),
        )
        yield _histograms(
            "media_jitter_seconds",
            "Interarrival jitter of each party's stream at the end of its call.",
            "party",
            s.media_jitter,
        )
        engine = getattr(self.node.media_port, "engine", None)
        if engine is None or getattr(engine, "closed", True):
            return
        t = engine.totals()
        yield _gauge(
            "media_sessions", "Media sessions (two streams each) in the engine.", values={(): t["sessions"]}
        )
        yield _counter(
            "media_datagrams_received", "Datagrams the media engine received.", values={(): t["datagrams_in"]}
        )
        yield _counter(
            "media_packets_forwarded", "Packets the media engine forwarded.", values={(): t["forwarded"]}
        )
        yield _counter(
            "media_packets_dropped", "Packets the media engine dropped.", values={(): t["dropped"]}
        )
        yield _counter(
            "media_send_errors", "Packets the media engine could not send.", values={(): t["send_errors"]}
        )
        yield _counter(
            "media_setup_failures",
            "One-way media commands (a session's creation or update) a worker could not apply.",
            values={(): t["setup_failures"]},
        )
        yield _gauge("media_ports_in_use", "Media ports held.", values={(): t["ports_in_use"]})
        yield _gauge("media_port_capacity", "Media ports available in all.", values={(): t["port_capacity"]})
        yield _gauge(
            "media_transcoding_sessions", "Sessions transcoding now.", values={(): t["transcoding_sessions"]}
        )
        yield _gauge(
            "media_transcoding_slots",
            "Transcoding sessions admitted at most.",
            values={(): t["transcode_slots"]},
        )
        yield _gauge(
            "media_worker_busy_ratio",
            "Busiest media worker's share of a core (0-1).",
            values={(): t["busy_permille"] / 1000.0},
        )

    def _quality(self) -> Iterator[Metric]:
        meter, now = self.node.gateways, self._now()
        q = meter.quality
        yield _counter(
            "media_calls_classified",
            "Answered calls whose media the engine reported at their end (classified for quality).",
            values={(): q.classified},
        )
        yield _counter(
            "media_calls_flagged",
            "Ended calls flagged for one-way audio, packet loss or jitter, by party and severity.",
            ["problem", "party", "severity"],
            dict(q.flagged),
        )
        kpi = meter.kpi
        names = {"routed": "routed_calls", "failover": "failover_calls", "protect": "protect_route_calls",
                 "primary_answered": "primary_answered_calls"}  # fmt: skip
        docs = {
            "routed": "Calls that reached at least one routing gateway (the routing KPIs' base).",
            "failover": "Routed calls that tried more than one routing gateway.",
            "protect": "Routed calls that tried a protect route (behaviour 63).",
            "primary_answered": "Routed calls the first routing gateway tried answered.",
        }
        for key, total in dict(kpi.totals).items():
            yield _counter(names[key], docs[key], values={(): total})
        ratios = kpi.ratios(now)
        yield _gauge(
            "routing_kpi_ratio",
            "Failover rate, protect-route usage and primary ASR over the KPI window (0-1).",
            ["kpi"],
            {k: v / 100.0 for k, v in ratios.items()},
        )
        yield _gauge(
            "routing_kpi_band",
            "The KPI's band (reference §D.10): 0 healthy, 1 warning, 2 critical.",
            ["kpi"],
            {k: kpi_band(kpi.config, k, ratios[k]) for k in BANDS if k in ratios},
        )

    def _billing(self) -> Iterator[Metric]:
        router = getattr(self.node.router, "inner", self.node.router)
        unsettled = getattr(router, "unsettled", None)
        if unsettled is not None:
            writer = getattr(router, "cdr_writer", None)
            waiting = len(unsettled) + (writer.depth if writer is not None else 0)
            yield _gauge(
                "cdr_queue_depth",
                "CDRs waiting to be written (queued for the CDR writer's next batch, or failed "
                "writes retried each tick).",
                values={(): waiting},
            )
            since = getattr(router, "unsettled_since", None)
            queued = writer.oldest() if writer is not None else None
            oldest = min((t for t in (since, queued) if t is not None), default=None)
            age = time.monotonic() - oldest if oldest is not None else 0.0
            yield _gauge(
                "cdr_queue_oldest_seconds", "Age of the oldest CDR waiting to be written.", values={(): age}
            )
        refused = dict(self.node.parameter_errors)
        for name, count in dict(getattr(router, "parameter_errors", None) or {}).items():
            refused[name] = refused.get(name, 0) + count
        yield _counter(
            "parameter_errors",
            "Stored parameter values refused (they did not parse; the previous value stayed), by parameter.",
            ["parameter"],
            refused,
        )
        ledger = getattr(router, "ledger", None)
        if isinstance(ledger, Histograms):
            yield _histograms(
                "ledger_write_seconds",
                "Time of each ledger write on the call path, by operation.",
                "operation",
                ledger,
            )

    def _defence(self) -> Iterator[Metric]:
        d = self.node.defence
        yield _counter(
            "defence_dropped",
            "Messages the scanner defence dropped before parsing, by rule.",
            ["reason"],
            dict(d.drops),
        )
        yield _counter(
            "defence_signature_drops",
            "Scanner User-Agent drops by signature.",
            ["signature"],
            dict(d.signature_drops),
        )
        trusted = max(0, self.node.messages_received - d.inspected)
        yield _counter(
            "defence_accepted",
            "Messages the defence let through, by trust (trusted ones are not inspected).",
            ["trust"],
            {
                "trusted": trusted,
                "authenticated": d.accepted_authenticated,
                "untrusted": d.accepted_untrusted,
            },
        )
        yield _counter(
            "defence_auto_blocks", "Automatic temporary blocks, by trigger.", ["trigger"], dict(d.auto_blocks)
        )
        yield _gauge(
            "defence_blacklist_entries",
            "Blacklist entries (manual and automatic).",
            values={(): len(d.blacklist)},
        )
        yield _gauge(
            "defence_sources_tracked", "Untrusted sources the defence tracks.", values={(): d.tracked()}
        )
        yield _counter(
            "sip_connections_refused",
            "TCP/TLS connections closed at once (blocked source).",
            values={(): self.node.transport.stats.refused_connections},
        )

    def _alarms(self) -> Iterator[Metric]:
        if self.alarms is None:
            return
        active: dict[tuple[str, str], int] = {}
        for alarm in list(self.alarms.active.values()):
            active[(alarm.kind, alarm.severity)] = active.get((alarm.kind, alarm.severity), 0) + 1
        yield _gauge("alarms_active", "Active alarms by kind and severity.", ["kind", "severity"], active)
        yield _counter(
            "alarms_raised",
            "Alarms raised, by kind.",
            ["kind"],
            {k: self.alarms.raised_total.get(k, 0) for k in KINDS},
        )


def build_registry(
    node: Node, *, alarms: AlarmBoard | None = None, process: bool = True
) -> CollectorRegistry:
    """A registry of its own for ``node`` (several nodes in one test process do not collide),
    with the process's CPU and memory (``process_*``) unless ``process`` is False."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node, alarms=alarms))
    if process:
        ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """(body, content type) of a scrape: the Prometheus text format, or OpenMetrics when the
    ``Accept`` header asks for it."""
    if accept:
        encoder, content_type = choose_encoder(accept)
        return encoder(registry), content_type
    return generate_latest(registry), CONTENT_TYPE_LATEST
