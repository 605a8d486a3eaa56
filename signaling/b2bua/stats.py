"""What the node counts on its own path, and its OPTIONS probes toward routing gateways.

:class:`NodeStats` holds integers and small dictionaries the node bumps as messages and calls go
by (a dict increment each: nothing is computed per message); signaling.observe.metrics reads
them when Prometheus scrapes. Labels stay bounded: methods outside :data:`KNOWN_METHODS` count
as "OTHER" (a flood of invented methods cannot grow the table), responses by status class,
calls by their termination reason (the node's and the router's fixed vocabularies).

:class:`GatewayProber` keeps the OPTIONS probes in flight (``[alarms] gateway_options_interval``):
which transaction probes which gateway, and what its outcome tells the gateway meter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from signaling.observe.gateways import GatewayMeter
from signaling.observe.histogram import Histograms
from signaling.routing import CallRecord
from signaling.sip.dialog import make_request
from signaling.sip.message import Request, Response, Via
from signaling.sip.transaction import ResponseReceived, TransactionId, TransactionTimeout, TransportError

__all__ = ["JITTER_BUCKETS", "KNOWN_METHODS", "GatewayProber", "NodeStats"]

#: SIP methods counted by name; anything else counts as "OTHER"
KNOWN_METHODS = frozenset(
    (
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "INFO",
        "UPDATE",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "PUBLISH",
    )
)
#: interarrival jitter of streams at the end of their calls, seconds (metrics)
JITTER_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)


#: a response's label by status // 100 (a parsed status is 100-699)
_STATUS_CLASS = tuple(f"{n}xx" for n in range(10))


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


@dataclass(slots=True)
class NodeStats:
    """Counters the node keeps (see the module docstring)."""

    calls_started: int = 0
    calls_answered: int = 0
    calls_failed: int = 0
    calls_rejected: int = 0
    parse_errors: int = 0
    handler_errors: int = 0
    #: SIP messages by method (requests) and by status class (responses), in and out
    requests_in: dict[str, int] = field(default_factory=dict)
    requests_out: dict[str, int] = field(default_factory=dict)
    responses_in: dict[str, int] = field(default_factory=dict)
    responses_out: dict[str, int] = field(default_factory=dict)
    #: calls that never got answered (refused or failed) and answered calls, by end reason
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    completed_by_reason: dict[str, int] = field(default_factory=dict)
    #: phones' requests refused for coming from outside their account's IP whitelist, by
    #: method (REGISTER, INVITE; behaviour 60); a refused INVITE also counts in failed_by_reason
    whitelist_refused: dict[str, int] = field(default_factory=dict)
    #: DTMF digits: "received/rfc2833", "received/inband", "received/info", "played/<via>"
    dtmf: dict[str, int] = field(default_factory=dict)
    #: RTP packets expected and lost per party over ended calls, and their streams' jitter
    media_expected: dict[str, int] = field(default_factory=dict)
    media_lost: dict[str, int] = field(default_factory=dict)
    media_jitter: Histograms = field(default_factory=lambda: Histograms(JITTER_BUCKETS))

    def message(self, message: Request | Response, *, received: bool) -> None:
        """One SIP message received from, or put on, the wire."""
        # the increments inline: twelve a call
        if isinstance(message, Request):
            key = message.method if message.method in KNOWN_METHODS else "OTHER"
            counts = self.requests_in if received else self.requests_out
        else:
            key = _STATUS_CLASS[message.status // 100]
            counts = self.responses_in if received else self.responses_out
        counts[key] = counts.get(key, 0) + 1

    def outside_whitelist(self, method: str) -> None:
        _bump(self.whitelist_refused, method)

    def refused(self, reason: str) -> None:
        """A new call refused before any call state existed."""
        self.calls_rejected += 1
        _bump(self.failed_by_reason, reason)

    def ended(self, record: CallRecord, answered: bool) -> None:
        """A call is over: its end reason, and what the media engine measured of its streams."""
        if answered:
            self.calls_answered += 1
            _bump(self.completed_by_reason, record.termination)
        else:
            self.calls_failed += 1
            _bump(self.failed_by_reason, record.termination)
        for party, (expected, lost, jitter_ms) in record.media_quality.items():
            self.media_expected[party] = self.media_expected.get(party, 0) + expected
            self.media_lost[party] = self.media_lost.get(party, 0) + lost
            self.media_jitter.observe(party, jitter_ms / 1000.0)

    def dtmf_event(self, kind: str, inband: bool = False, via: str | None = None) -> None:
        """A digit the engine detected (``dtmf``), played (``dtmf_played``), or one that came
        in a SIP INFO (``info``)."""
        if kind == "dtmf":
            _bump(self.dtmf, "received/inband" if inband else "received/rfc2833")
        elif kind == "dtmf_played":
            _bump(self.dtmf, f"played/{via or 'rfc2833'}")
        elif kind == "info":
            _bump(self.dtmf, "received/info")


class GatewayProber:
    """OPTIONS probes in flight, by transaction; their outcomes go to the gateway meter."""

    def __init__(self, meter: GatewayMeter) -> None:
        self.meter = meter
        self.in_flight: dict[TransactionId, str] = {}

    def requests(
        self,
        targets: Iterable[tuple[str, str, int, str]],
        *,
        advertise: str,
        via: Callable[[str], Via],
        contact: Callable[[str], str],
    ) -> Iterator[tuple[str, Request, tuple[str, int], str]]:
        """(gateway, OPTIONS, address, transport) for each target without a probe in flight;
        the caller sends each and reports its transaction with :meth:`sent`."""
        busy = set(self.in_flight.values())
        for name, host, port, transport in targets:
            if name in busy:
                continue
            kind = transport.upper()
            target = f"sip:{host}:{port}" if ":" not in host else f"sip:[{host}]:{port}"
            request = make_request(
                "OPTIONS",
                target,
                from_addr=f"<sip:ping@{advertise}>",
                to_addr=f"<{target}>",
                via=via(kind),
                contact=contact(kind),
                extra=[("Accept", "application/sdp")],
            )
            yield name, request, (host, port), kind

    def sent(self, transaction: TransactionId, gateway: str) -> None:
        self.in_flight[transaction] = gateway

    def outcome(self, event: ResponseReceived | TransactionTimeout | TransportError) -> bool:
        """Whether ``event`` is a probe's: any final response means the gateway is up (even a
        404 or 405: it answered), a timeout or a transport error that it is not."""
        name = self.in_flight.get(event.transaction)
        if name is None:
            return False
        if isinstance(event, ResponseReceived):
            if event.response.status < 200:
                return True
            self.meter.probe(name, ok=True)
        else:
            self.meter.probe(name, ok=False)
        del self.in_flight[event.transaction]
        return True
