"""New calls and overload, split from node.py: a new INVITE is identified (by address, or by
digest for a password gateway), admitted by the router and the per-gateway CPS and concurrency
limits, and becomes a :class:`Call`; the overload guard is fed a load sample every
SAMPLE_PERIOD. A mixin of :class:`Node`; it uses only the attributes declared here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from signaling.b2bua.call import Call
from signaling.b2bua.inputs import CallState
from signaling.b2bua.operations import auth_log_level
from signaling.b2bua.parts import CallHost
from signaling.b2bua.stats import NodeStats
from signaling.observe.gateways import GatewayMeter
from signaling.routing import (
    IP_NOT_ALLOWED,
    NODE_HOP_HEADER,
    UNKNOWN_GATEWAY,
    Admission,
    CallRecord,
    InboundCall,
    Router,
)
from signaling.sip.auth import AuthOutcome, AuthResult, DigestChallenger
from signaling.sip.identity import caller_number
from signaling.sip.ids import new_tag
from signaling.sip.limits import AdmissionControl, AdmissionTicket, OverloadGuard, RateMeter, Rejection
from signaling.sip.transaction import RequestReceived, TransactionId, TransactionLayer
from signaling.trace import Tracer

__all__ = ["CAPACITY_RETRY_AFTER", "NODE_KEY", "SAMPLE_PERIOD", "Intake"]

log = logging.getLogger("softswitch.node")

#: seconds between two load samples for the overload guard
SAMPLE_PERIOD = 0.5
#: the admission key of the node's own concurrent-call capacity (``[sip] max_calls``)
NODE_KEY = "node"
#: the Retry-After (s) of a call refused at that capacity (a call usually ends within minutes)
CAPACITY_RETRY_AFTER = 30

Addr = tuple[str, int]


class Intake:
    calls: dict[str, CallState]
    _loop: asyncio.AbstractEventLoop | None
    _messages: int
    _sample_at: tuple[float, float, int]
    _serials: itertools.count[int]
    _raw: tuple[bytes, Addr, str] | None
    _by_transaction: dict[TransactionId, Call]
    transport_open: bool
    overload: OverloadGuard
    admission: AdmissionControl
    router: Router
    auth: DigestChallenger
    layer: TransactionLayer
    tracer: Tracer
    stats: NodeStats
    cps: RateMeter
    gateways: GatewayMeter
    local: Addr
    #: new calls refused at ``[sip] max_calls`` (the observer's "capacity_limit" alarm)
    capacity_refused: int

    if TYPE_CHECKING:

        def now(self) -> float: ...

        def post(self, call: Call, work: Callable[[], None]) -> None: ...

        def _auth_seen(self, result: AuthResult, addr: Addr, now: float) -> None: ...

        def _refuse(
            self,
            event: RequestReceived,
            record: CallRecord,
            status: int,
            termination: str,
            reason: str | None = None,
            *,
            extra: list[tuple[str, str]] | None = None,
        ) -> None: ...

    def _sample(self) -> None:
        """Feed the overload guard: the event loop thread's CPU share, the inputs waiting in
        calls' queues and the message rate since the last sample."""
        wall, cpu, count = self._sample_at
        now, cpu_now = self.now(), time.thread_time()
        span = max(now - wall, 1e-3)
        depth = sum(len(state.queue) for state in self.calls.values())
        self.overload.update(
            now, queue_depth=depth, cpu=(cpu_now - cpu) / span, rate=(self._messages - count) / span
        )
        self._sample_at = (now, cpu_now, self._messages)
        if self.transport_open and self._loop is not None:
            self._loop.call_later(SAMPLE_PERIOD, self._sample)

    def _password_caller(self, event: RequestReceived, inbound: InboundCall, now: float) -> Admission | None:
        """A caller not known by its address: a password gateway (or phone) must prove itself
        (407); its admission once it has, None when answered here (the challenge, a refusal)."""
        request = event.request
        # not known by address: a password gateway must prove itself (407, RFC 3261 §22.3)
        result = self.auth.authenticate(request, now, proxy=True, to_tag=new_tag())
        if result.outcome is not AuthOutcome.ACCEPTED:
            self._auth_seen(result, event.addr, now)
            log.log(
                auth_log_level(result),
                "INVITE %s from %s: %s (%s)",
                request.call_id,
                event.addr,
                result.outcome.value,
                result.detail,
                extra={"call_id": request.call_id},
            )
            if result.response is not None:
                self.layer.send_response(result.response, now, event.transaction)
            return None
        admission = self.router.admit(replace(inbound, auth_user=result.username), now)
        rejection = admission.rejection
        if rejection is not None and rejection.termination == IP_NOT_ALLOWED:
            # the right password from outside the account's IP whitelist: refused (403
            # below, with its CDR), neither trusted by the scanner defence nor counted as
            # a wrong password (docs/sip-auth-registrar-limits.md, "IP whitelist")
            self.stats.outside_whitelist("INVITE")
            log.info(
                "INVITE %s from phone %s at %s: outside its account's IP whitelist",
                request.call_id,
                result.username,
                event.addr[0],
                extra={"call_id": request.call_id},
            )
        else:
            self._auth_seen(result, event.addr, now)
        return admission

    def _new_call(self, event: RequestReceived) -> None:
        request = event.request
        now = self.now()
        caller = _user(request.from_parsed.uri)
        callee = _user(request.uri) or _user(request.to_parsed.uri)
        inbound = InboundCall(
            request.call_id,
            event.addr,
            event.transport,
            caller,
            callee,
            caller_rpid=caller_number(request, "rpid"),
            caller_display=caller_number(request, "display"),
            hop=request.headers.get(NODE_HOP_HEADER) or "",
        )
        admission = self.router.admit(inbound, now)
        if admission.needs_auth:
            proved = self._password_caller(event, inbound, now)
            if proved is None:
                return  # answered (407 challenge, 403)
            admission = proved
        record = CallRecord(
            call_id=request.call_id,
            ingress=admission.ingress,
            caller=caller,
            callee=callee,
            source=event.addr,
            start=now,
        )
        self.stats.calls_started += 1
        self.cps.add(now)
        # a trace switched off (the usual case) answers no without the gateways' list or the
        # wall clock: Tracer.active reads ``enabled`` first
        tracer = self.tracer
        if (
            tracer.settings.enabled
            and tracer.consider_call(
                request.call_id,
                caller,
                callee,
                [admission.ingress, *(r.gateway for r in admission.routes)],
                time.time(),
            )
            and self._raw
        ):
            data, addr, transport = self._raw  # the INVITE arrived before the call was chosen
            self.tracer.message(
                request,
                data,
                direction="recv",
                peer=addr,
                local=self.local,
                transport=transport,
                now=time.time(),
                log=False,  # logged when it arrived
            )
        rejection = admission.rejection
        if rejection is not None or admission.needs_auth or not admission.ingress:
            # only a caller identified as a mapping gateway (by address, or by its password just
            # proved) is ever routed: whatever the router answered, an unidentified one is refused
            if rejection is None:
                self._refuse(event, record, 403, "AuthRequired" if admission.needs_auth else UNKNOWN_GATEWAY)
            else:
                self._refuse(event, record, rejection.status, rejection.termination)
            return
        # the node's capacity first ([sip] max_calls: a key only when set), then the customer's
        keys = [NODE_KEY, "in:" + admission.ingress]
        ticket = self.admission.admit(keys, now)
        if isinstance(ticket, Rejection):
            if ticket.key == NODE_KEY:
                self.capacity_refused += 1
                retry = [("Retry-After", str(CAPACITY_RETRY_AFTER))]
                self._refuse(
                    event, record, ticket.status, "node capacity limit", "capacity limit", extra=retry
                )
                return
            self._refuse(
                event, record, ticket.status, f"{ticket.limit} limit of {ticket.key}", f"{ticket.limit} limit"
            )
            return
        tickets: list[AdmissionTicket] = [ticket]
        call = Call(
            host=cast("CallHost", self),  # the Node this mixin is part of
            invite=request,
            transaction=event.transaction,
            source=event.addr,
            transport=event.transport,
            admission=admission,
            record=record,
        )

        if event.local is not None:  # the caller reached another local IP: answered from it
            call.local = event.local

        def release() -> None:  # the call's admission slots
            for t in tickets:
                self.admission.release(t)

        call.release = release
        self.gateways.ingress_started(admission.ingress)
        self._by_transaction[event.transaction] = call
        state = CallState(call, next(self._serials))
        self.calls[request.call_id] = state
        self.post(call, call.start)


def _user(uri: str) -> str:
    """The user part of a SIP URI (the number), or "" when there is none."""
    rest = uri.partition(":")[2]
    user, at, _ = rest.partition("@")
    if not at:
        return ""
    return user.partition(";")[0].partition(":")[0]
