"""The node's operating side, split from node.py: the scanner defence's glue (the blacklist
file at start, the gateways it trusts, what digest authentication tells it), OPTIONS probes
toward routing gateways, and the counts the metrics read. A mixin of :class:`Node`; it uses only
the attributes declared here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from signaling.b2bua.stats import GatewayProber, NodeStats
from signaling.routing import CallRecord, Router
from signaling.sip.auth import AuthOutcome, AuthResult
from signaling.sip.defence import Defence
from signaling.sip.message import Via
from signaling.sip.transaction import RequestReceived, TransactionLayer
from signaling.sip.transport import SipTransport

log = logging.getLogger("softswitch.node")

__all__ = ["Operations", "auth_log_level"]

Addr = tuple[str, int]


def auth_log_level(result: AuthResult) -> int:
    """A challenge is the first step of every digest exchange: not worth a line per request
    (a flood of them would fill the log); a refused password is."""
    return logging.DEBUG if result.outcome in (AuthOutcome.CHALLENGE, AuthOutcome.STALE) else logging.INFO


class Operations:
    defence: Defence
    router: Router
    transport: SipTransport
    transport_open: bool
    layer: TransactionLayer
    prober: GatewayProber
    advertise: str | None
    sources: dict[str, str | None]
    _messages: int
    stats: NodeStats
    ended_records: list[CallRecord]
    calls: Mapping[str, Any]
    _lingering: Mapping[str, Any]

    def now(self) -> float:
        raise NotImplementedError

    def local_via(self, transport: str, local: str | None = None) -> Via:
        raise NotImplementedError

    def local_contact(self, transport: str, local: str | None = None) -> str:
        raise NotImplementedError

    def _pump(self) -> None:
        raise NotImplementedError

    def _reply(self, event: RequestReceived, status: int, extra: list[tuple[str, str]] | None = None) -> None:
        raise NotImplementedError

    def _refuse(
        self,
        event: RequestReceived,
        record: CallRecord,
        status: int,
        termination: str,
        reason: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        """Answer a new INVITE with a final refusal before any call state exists; its record
        goes to the router (a CDR where the router keeps them)."""
        self._reply(event, status, extra)
        record.final_status = status
        record.termination = termination
        record.end = record.start
        self.stats.refused(reason or termination)
        self.router.call_ended(record)
        self.ended_records.append(record)

    def _record_of(self, call_id: str) -> CallRecord | None:
        """The call's record so far (the destination watch names its caller and customer)."""
        state = self.calls.get(call_id)
        return state.call.record if state is not None else None

    def _attempt_probe(self, call_id: str) -> tuple[bool, float | None]:
        """For the gateway meter: did the call's current attempt hear from its gateway, and
        when did the call first ring."""
        state = self.calls.get(call_id) or self._lingering.get(call_id)
        if state is None:
            return True, None
        attempt = state.call.attempt
        return (attempt is None or attempt.heard), state.call.record.ring

    @property
    def messages_received(self) -> int:
        """Messages the transport delivered (before the defence and the overload guard)."""
        return self._messages

    def _start_defence(self) -> None:
        now = self.now()
        defence = self.defence
        defence.blacklist.wall_offset = time.time() - now
        try:
            loaded = defence.blacklist.load(now)
        except ValueError as exc:
            log.error("blacklist: %s (starting with an empty one)", exc)
            loaded = 0
        if loaded:
            log.info("blacklist: %d entries from %s", loaded, defence.blacklist.path)
        self.refresh_gateway_addresses()
        self.transport.accept_filter = lambda ip: defence.accept_connection(ip, self.now())

    def refresh_gateway_addresses(self) -> None:
        """Tell the defence which addresses are gateways (the store's change on reload)."""
        lookup = getattr(self.router, "gateway_addresses", None)
        if lookup is not None:
            self.defence.set_gateway_addresses(lookup())

    def probe_gateways(self, now: float) -> int:
        """Send an OPTIONS to every routing gateway without one in flight (the "gateway down"
        alarm's keep-alive, ``[alarms] gateway_options_interval``); how many went."""
        lookup = getattr(self.router, "gateway_targets", None)
        if lookup is None or not self.transport_open:
            return 0
        targets = lookup()
        by_source: dict[str | None, list[tuple[str, str, int, str]]] = {None: targets}
        source_of = getattr(self.router, "gateway_sources", None)
        chosen = source_of() if source_of is not None else {}
        if chosen:  # gateways with a source_ip are probed from it (never one the node lacks)
            by_source = {None: [t for t in targets if t[0] not in chosen]}
            for target in targets:
                ip = chosen.get(target[0])
                if ip is not None and ip in self.sources:
                    by_source.setdefault(self.sources[ip], []).append(target)
        count = 0
        for local, group in by_source.items():
            probes = list(
                self.prober.requests(
                    group,
                    advertise=local or self.advertise or "127.0.0.1",
                    via=partial(self.local_via, local=local),
                    contact=partial(self.local_contact, local=local),
                )
            )
            for name, request, addr, transport in probes:
                tid = self.layer.send_request(request, addr, now, transport=transport, local=local)
                self.prober.sent(tid, name)
            count += len(probes)
        self._pump()
        return count

    def _auth_seen(self, result: AuthResult, addr: Addr, now: float) -> None:
        """Tell the defence: a source that proved a password is known for a while; repeated
        wrong passwords earn a block (a brute-force guesser)."""
        if result.outcome is AuthOutcome.ACCEPTED:
            self.defence.authenticated(addr[0], now)
        elif result.outcome is AuthOutcome.REJECTED and self.defence.auth_failed(addr[0], now):
            log.warning("%s blocked after repeated failed authentications", addr[0])
