"""The node: SIP transport, transaction layer, calls, media control and timers on one loop.

This is the adapter around the sans-IO pieces: bytes from :mod:`signaling.sip.transport` are
parsed (a malformed request gets its error response statelessly, a malformed response is
dropped), fed to the :class:`TransactionLayer` with the loop's time, and the layer's events are
dispatched — a new INVITE to a new :class:`Call`, in-dialog requests and responses to the call
owning the dialog or transaction, OPTIONS and REGISTER answered here. One timer handle follows
the layer's and the dialogs' next deadlines.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from signaling.b2bua.call import Call, Continuation, MediaPort, parse_dtmf_info
from signaling.b2bua.carrier_limits import CarrierLimits, carrier_key
from signaling.b2bua.deadlines import Deadlines
from signaling.b2bua.ended import LINGER_S, EndedCalls
from signaling.b2bua.ended import settled as is_settled
from signaling.b2bua.operations import Operations, auth_log_level
from signaling.b2bua.stats import GatewayProber, NodeStats
from signaling.config import Config
from signaling.media.control import MediaControlError, MediaNotice
from signaling.observe.gateways import GatewayMeter, MeteredRouter
from signaling.observe.logs import call_context
from signaling.routing import (
    NODE_HOP_HEADER,
    UNKNOWN_GATEWAY,
    CallRecord,
    InboundCall,
    PhoneContact,
    Route,
    Router,
)
from signaling.sip.auth import AuthOutcome, DigestChallenger, Password
from signaling.sip.defence import Defence
from signaling.sip.dialog import (
    AckTimeout,
    Dialog,
    DialogId,
    Retransmit2xx,
    dialog_id_of_request,
    dialog_id_of_response,
)
from signaling.sip.identity import CallerPool, caller_number
from signaling.sip.ids import new_branch, new_tag
from signaling.sip.keepalive import KeepAliveConfig, NatKeepAlive
from signaling.sip.limits import (
    AdmissionControl,
    AdmissionTicket,
    KeyLimits,
    OverloadDecision,
    OverloadGuard,
    RateMeter,
    Rejection,
)
from signaling.sip.message import Request, Response, SipUri, Via, make_response, serialize
from signaling.sip.parser import SipParseError, is_keepalive, parse_message, scan_request
from signaling.sip.registrar import Registrar
from signaling.sip.timers import TimerConfig
from signaling.sip.transaction import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionId,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    TransportError,
)
from signaling.sip.transport import SipTransport, client_context, server_context
from signaling.sip.validate import error_response, validate_request
from signaling.trace import Tracer, TraceSettings

log = logging.getLogger("softswitch.node")

Addr = tuple[str, int]
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"
DTMF_INFO_TYPES = ("application/dtmf-relay", "application/dtmf")
#: seconds between two load samples for the overload guard
SAMPLE_PERIOD = 0.5
#: calls per second are measured over this window, seconds
CPS_WINDOW = 10.0
#: timers (SIP retransmissions and timeouts, call timers) run up to this late, seconds: the
#: SIP timers are hundreds of milliseconds and more, and those due within this slack of each
#: other run together
TIMER_SLACK = 0.01


@dataclass(slots=True)
class _CallState:
    call: Call
    #: this call's own number: its timers' key (a Call-ID may come back while the call lingers)
    serial: int
    #: inputs waiting while another of the call's inputs runs (or awaits a remote media reply)
    queue: list[Callable[[], object]] = field(default_factory=list)
    #: an input of this call is running: new ones queue behind it
    running: bool = False
    #: only while a media command on a media node (ng over UDP) is awaited
    task: asyncio.Task[None] | None = None
    #: names of the timers this call has armed (cancelled when it ends)
    timer_names: list[str] = field(default_factory=list)
    #: what the node indexed for this call, to forget it without scanning every call's
    dialog_ids: list[DialogId] = field(default_factory=list)
    transactions: list[TransactionId] = field(default_factory=list)


class Node(Operations):
    """A running B2BUA node."""

    def __init__(self, config: Config, media: MediaPort, router: Router) -> None:
        self.config = config
        self.parameters: dict[str, Any] = dict(config.parameters)
        self.media_port = media
        #: per-gateway lines, ASR, ACD, PDD (metrics, alarms), fed through the router interface
        self.gateways = GatewayMeter.from_parameters(self.parameters)
        #: CPS and concurrency per mapping gateway ("in:") and routing gateway ("out:")
        self.admission = AdmissionControl()
        # a carrier's slot is taken per attempt (CarrierLimits), before the router is asked
        self.router: Router = MeteredRouter(
            CarrierLimits(router, self.admission), self.gateways, self._attempt_probe
        )
        self.stats = NodeStats()
        self.cps = RateMeter(window_s=CPS_WINDOW, slots=10)
        #: the scanner defence, consulted before anything is parsed
        self.defence = Defence(config.defence)
        self.layer = TransactionLayer(TimerConfig.from_parameters(self.parameters))
        self.transport = SipTransport(self._on_data, dscp=int(self.parameters["SS_QOS_SIGNAL"]))
        for gw in config.mapping_gateways:
            self.admission.configure(
                "in:" + gw.name,
                KeyLimits(
                    max_cps=int(gw.max_cps) if gw.max_cps is not None else None,
                    max_concurrent=gw.max_calls,
                ),
            )
        for rgw in config.routing_gateways:
            self.admission.configure(
                carrier_key(rgw.name),
                KeyLimits(
                    max_cps=int(rgw.max_cps) if rgw.max_cps is not None else None,
                    max_concurrent=rgw.max_calls,
                ),
            )
        p = self.parameters
        self.keepalive = NatKeepAlive(
            KeepAliveConfig(
                message=str(p["SS_SIP_NAT_KEEP_ALIVE_MESSAGE"]),
                period=float(p["SS_SIP_NAT_KEEP_ALIVE_PERIOD"]),
                send_interval_ms=int(p["SS_SIP_NAT_KEEP_ALIVE_SEND_INTERVAL"]),
                send_one_time=int(p["SS_SIP_NAT_KEEP_ALIVE_SEND_ONE_TIME"]),
            )
        )
        # bindings are keyed by the To URI's user alone: phones are found by number
        self.registrar = Registrar(keepalive=self.keepalive, aor_key=_aor_user, authorize=self._may_register)
        self._passwords = {gw.username: gw.password for gw in config.mapping_gateways if gw.username}
        self.auth = DigestChallenger(
            realm=config.sip_advertise or "softswitch",
            secret=secrets.token_bytes(32),
            lookup=self._credentials,
        )
        #: answers new requests with a stateless 503 + Retry-After while the loop is overloaded
        self.overload = OverloadGuard()
        self._sample_at = (0.0, 0.0, 0)  # (wall, thread CPU, messages) at the last sample
        self._messages = 0
        self._pools: dict[str, CallerPool] = {}
        self._contacts: dict[str, str] = {}
        tc = config.trace
        self.tracer = Tracer(
            TraceSettings(
                enabled=tc.enabled,
                all_calls=tc.all_calls,
                numbers=tuple(tc.numbers),
                gateways=tuple(tc.gateways),
                registrations=tc.registrations,
                length_minutes=tc.length_minutes,
                directory=Path(tc.directory),
                call_file_bytes=int(p["SS_TRACE_CALL_FILE_SIZE"]) * 1024 * 1024,
                register_file_bytes=int(p["SS_TRACE_REGISTER_FILE_SIZE"]) * 1024 * 1024,
            ),
            started_at=time.time(),
        )
        self._raw: tuple[bytes, Addr, str] | None = None
        self.calls: dict[str, _CallState] = {}
        #: ended calls that may still have work (an attempt given up on that may yet answer,
        #: a relayed request or a refresh awaiting its response, a 2xx awaiting its ACK, a
        #: dialog still up): kept whole for LINGER_S
        self._lingering: dict[str, _CallState] = {}
        #: every other ended call is forgotten at once, leaving its Call-ID and its carrier
        #: dialog's last ACK for LINGER_S, as plain tuples (signaling/b2bua/ended.py)
        self._ended = EndedCalls()
        self._by_transaction: dict[TransactionId, Call] = {}
        self._dialogs: dict[DialogId, tuple[Call, str]] = {}
        #: dialogs retransmitting a 2xx until the ACK comes: the only ones with a dialog timer
        self._awaiting_ack: dict[DialogId, Dialog] = {}
        #: OPTIONS probes toward routing gateways in flight
        self.prober = GatewayProber(self.gateways)
        #: the calls' timers, 2xx retransmissions and forgetting ended calls, in one heap
        self.deadlines = Deadlines()
        self._serials = itertools.count(1)
        #: the one loop timer (at the earliest deadline of the layer, the registrar, the
        #: keep-alives and ``deadlines``) and when it is due
        self._timer: asyncio.Handle | None = None
        self._timer_at = 0.0
        #: pumps running (nested when a call's input runs inside the pump that delivered it)
        self._pumping = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.local: Addr = ("127.0.0.1", 0)
        self.transport_open = False
        self.advertise: str | None = config.sip_advertise
        self.ended_records: list[CallRecord] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def hangup(self, call_id: str, termination: str) -> bool:
        """End a call from outside (the router when credit runs out, an operator): BYE both
        legs (or a final response before answer) with this termination reason. False when no
        such call is up."""
        state = self.calls.get(call_id)
        if state is None:
            return False
        self.post(state.call, partial(state.call.hangup, termination))
        return True

    async def start(self) -> Addr:
        self._loop = asyncio.get_running_loop()
        host, port = self.config.sip_listen
        self.router.on_hangup_request(self.hangup)
        self.router.on_locate(self._locate)
        self._start_defence()
        self.local = await self.transport.start(host, port)
        cfg = self.config
        if cfg.sip_tls_listen is not None and cfg.sip_tls_cert and cfg.sip_tls_key:
            await self.transport.start_tls(
                cfg.sip_tls_listen[0],
                cfg.sip_tls_listen[1],
                server_context(cfg.sip_tls_cert, cfg.sip_tls_key),
                client_context(cfg.sip_tls_verify, cfg.sip_tls_ca),
            )
        elif cfg.sip_tls_verify:
            self.transport.tls_client = client_context(True, cfg.sip_tls_ca)
        self.transport_open = True
        if self.advertise is None:
            self.advertise = self.local[0] if self.local[0] not in ("0.0.0.0", "::") else "127.0.0.1"
        started = getattr(self.router, "on_node_started", None)  # a router shared by nodes
        if started is not None:  # publishes this registrar's phones and where to reach them
            started(self.registrar, (self.advertise, self.local[1], "UDP"))
        self._sample_at = (self.now(), time.thread_time(), 0)
        self._loop.call_later(SAMPLE_PERIOD, self._sample)
        watch = getattr(self.media_port, "watch", None)
        if watch is not None:
            watch(self._on_media_notice)
        return self.local

    async def stop(self) -> None:
        """End every call (BYE / final responses), let the messages go out, close the sockets."""
        for state in list(self.calls.values()):
            self.post(state.call, partial(state.call.hangup, "Shutdown"))
        for _ in range(50):
            if not self.calls:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport_open = False
        await self.transport.close()

    def now(self) -> float:
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def _may_register(self, username: str, aor: str) -> bool:
        return self.router.may_register(username, aor, self.now())

    def _locate(self, number: str) -> PhoneContact | None:
        """Where the phone registered as ``number`` is (its best binding), for calls to it."""
        bindings = self.registrar.lookup(number, self.now())
        if not bindings:
            return None
        best = bindings[0]
        return PhoneContact(best.uri, best.source[0], best.source[1], best.transport)

    def _credentials(self, username: str, realm: str) -> Password | None:
        password = self._passwords.get(username)
        if password is None:  # a store-backed router knows its gateways' passwords
            lookup = getattr(self.router, "password_for", None)
            password = lookup(username) if lookup is not None else None
        return Password(password) if password is not None else None

    # -- receiving ----------------------------------------------------------------------------------

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

    def _on_data(self, data: bytes, addr: Addr, transport: str) -> None:
        self._messages += 1
        defence = self.defence
        if (
            defence.config.enabled
            and not defence.is_trusted(addr[0])
            and defence.inspect(data, addr, self.now()) is not None
        ):
            return  # dropped before parsing: no answer, no log line, a counter
        decision = self.overload.decide(data)
        if decision is not OverloadDecision.ACCEPT:
            if decision is OverloadDecision.REJECT_503:
                request = scan_request(data)
                if request is not None and "Via" in request.headers:
                    reply = self.overload.reject(request, to_tag=new_tag())
                    self.transport.send(serialize(reply), addr, transport)
            return
        if is_keepalive(data):
            if transport == "TCP" and data.startswith(b"\r\n\r\n"):
                self.transport.send(b"\r\n", addr, "TCP")
            return
        try:
            message = parse_message(data, stream=transport != "UDP")
        except SipParseError as exc:
            self.stats.parse_errors += 1
            answer = error_response(exc, to_tag=new_tag())
            if answer is not None:
                self.transport.send(serialize(answer), addr, transport)
            return
        self.stats.message(message, received=True)
        if self.tracer.settings.enabled:
            self._raw = (data, addr, transport)
            self.tracer.message(
                message,
                data,
                direction="recv",
                peer=addr,
                local=self.local,
                transport=transport,
                now=time.time(),
            )
        self.layer.receive(message, addr, self.now(), transport)
        self._pump()
        self._raw = None

    def _trace_recv(self, message: Request | Response, data: bytes, addr: Addr, transport: str) -> None:
        self.tracer.message(
            message, data, direction="recv", peer=addr, local=self.local, transport=transport, now=time.time()
        )

    def _pump(self) -> None:
        """Dispatch the layer's events until it has none: what a handler sends (a response
        answered on the spot, an OPTIONS 200) goes out now, not with the next message. A call's
        input runs inside the pump that delivered it and pumps in turn; the outermost pump
        re-arms the timer once, for all of them."""
        self._pumping += 1
        try:
            while events := self.layer.events():
                for event in events:
                    try:
                        self._dispatch(event)
                    except Exception:
                        self.stats.handler_errors += 1
                        log.exception("error handling %s", type(event).__name__)
        finally:
            self._pumping -= 1
        if not self._pumping:
            self._reschedule()

    def _dispatch(self, event: object) -> None:
        if isinstance(event, Transmit):
            self.transport.send(event.data, event.addr, event.transport)
            self.stats.message(event.message, received=False)
            if self.tracer.settings.enabled:
                self.tracer.message(
                    event.message,
                    event.data,
                    direction="send",
                    peer=event.addr,
                    local=self.local,
                    transport=event.transport,
                    now=time.time(),
                )
        elif isinstance(event, RequestReceived):
            self._on_request(event)
        elif isinstance(event, AckReceived):
            found = self._dialog_owner(event.request)
            if found is not None:
                call, leg = found
                self.post(call, partial(call.on_request, leg, TransactionId(-1), event.request))
                self._acknowledged(call, leg)
        elif self.prober.in_flight and isinstance(
            event, ResponseReceived | TransactionTimeout | TransportError
        ):
            if not self.prober.outcome(event):
                self._dispatch_call_event(event)
        else:
            self._dispatch_call_event(event)

    def _dispatch_call_event(self, event: object) -> None:
        if isinstance(event, ResponseReceived):
            owner = self._by_transaction.get(event.transaction)
            if owner is not None:
                self.post(owner, partial(owner.on_b_response, event.transaction, event.response))
                if event.response.status >= 200:
                    self._by_transaction.pop(event.transaction, None)
            elif 200 <= event.response.status < 300 and event.response.cseq.method == "INVITE":
                # a 2xx repeated while its INVITE transaction is in Accepted (the first went to
                # the call): the dialog's ACK again, as after the transaction (StrayResponse)
                self._on_stray(event.response)
        elif isinstance(event, CancelReceived):
            cancelled = self._by_transaction.get(event.transaction)
            if cancelled is not None:
                self.post(cancelled, cancelled.on_cancel)
        elif isinstance(event, TransactionTimeout | TransportError):
            failed = self._by_transaction.pop(event.transaction, None)
            if failed is not None and event.method != "ACK":
                status = 408 if isinstance(event, TransactionTimeout) else 503
                if isinstance(event, TransactionTimeout) and event.timer in ("H", "cancel", "unanswered"):
                    return
                self.post(failed, partial(failed.on_transaction_failed, event.transaction, status))
        elif isinstance(event, StrayResponse):
            self._on_stray(event.response)

    def _dialog_owner(self, request: Request) -> tuple[Call, str] | None:
        dialog_id = dialog_id_of_request(request)
        return self._dialogs.get(dialog_id) if dialog_id is not None else None

    def _on_stray(self, response: Response) -> None:
        """A 2xx retransmitted after its transaction ended: re-send our ACK through the dialog."""
        dialog_id = dialog_id_of_response(response)
        if dialog_id is None:
            return
        found = self._dialogs.get(dialog_id)
        if found is None:
            self._ack_ended(dialog_id, response)
            return
        call, leg = found
        owner = call.leg(leg)
        if owner is None or owner.dialog is None or owner.dialog.id != dialog_id:
            return
        ack = owner.dialog.receive_response(response)
        if ack is not None:
            self.send_ack(ack, owner.addr, owner.transport)

    def _ack_ended(self, dialog_id: DialogId, response: Response) -> None:
        """A 2xx repeated in the dialog of a call forgotten less than LINGER_S ago: our ACK
        again (RFC 3261 §13.2.2.4), as the dialog would have sent it."""
        kept = self._ended.ack_for(dialog_id, response)
        if kept is None:
            return
        _, data, addr, transport = kept
        ack = parse_message(data)
        if isinstance(ack, Request):
            self.send_ack(ack, addr, transport)

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        tag = request.to_tag if "To" in request.headers else None
        # parsed by _on_data (check_message passed there); the layer changed no more than the
        # top Via's received/rport, which the check already saw parse
        problem = validate_request(
            request, will_forward=request.method == "INVITE", to_tag=tag or new_tag(), parsed=True
        )
        if problem is not None:
            self.layer.send_response(problem, self.now(), event.transaction)
            return
        if tag:
            found = self._dialog_owner(request)
            if found is None:
                self._reply(event, 481)
                return
            call, leg = found
            if request.method == "INFO" and request.content_type in DTMF_INFO_TYPES:
                self.stats.dtmf_event("info")
            self.post(call, partial(call.on_request, leg, event.transaction, request))
            return
        method = request.method
        if method == "INVITE":
            self._new_call(event)
        elif method == "OPTIONS":
            self._reply(event, 200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        elif method in ("BYE", "INFO", "UPDATE"):
            self._reply(event, 481)
        elif method == "REGISTER":
            self._register(event)
        else:
            self._reply(event, 405, extra=[("Allow", ALLOW)])

    def _register(self, event: RequestReceived) -> None:
        """REGISTER from a password-authenticated gateway or phone: digest (401), then bind."""
        now = self.now()
        tag = new_tag()
        result = self.auth.authenticate(event.request, now, proxy=False, to_tag=tag)
        self._auth_seen(result, event.addr, now)
        if result.outcome is not AuthOutcome.ACCEPTED:
            log.log(
                auth_log_level(result),
                "REGISTER from %s: %s (%s)",
                event.addr,
                result.outcome.value,
                result.detail,
            )
            if result.response is not None:
                self.layer.send_response(result.response, now, event.transaction)
            return
        response = self.registrar.register(
            event.request,
            event.addr,
            now,
            transport=event.transport,
            local=self.local,
            authenticated_user=result.username,
            to_tag=tag,
        )
        self.layer.send_response(response, now, event.transaction)

    def _reply(self, event: RequestReceived, status: int, extra: list[tuple[str, str]] | None = None) -> None:
        response = make_response(event.request, status, to_tag=new_tag(), extra=extra or [])
        self.layer.send_response(response, self.now(), event.transaction)

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
            # not known by address: a password gateway must prove itself (407, RFC 3261 §22.3)
            result = self.auth.authenticate(request, now, proxy=True, to_tag=new_tag())
            self._auth_seen(result, event.addr, now)
            if result.outcome is not AuthOutcome.ACCEPTED:
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
                return
            inbound = InboundCall(
                request.call_id,
                event.addr,
                event.transport,
                caller,
                callee,
                auth_user=result.username,
                caller_rpid=inbound.caller_rpid,
                caller_display=inbound.caller_display,
                hop=inbound.hop,
            )
            admission = self.router.admit(inbound, now)
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
        gateways = [admission.ingress, *(r.gateway for r in admission.routes)]
        if self.tracer.consider_call(request.call_id, caller, callee, gateways, time.time()) and self._raw:
            data, addr, transport = self._raw  # the INVITE arrived before the call was chosen
            self.tracer.message(
                request,
                data,
                direction="recv",
                peer=addr,
                local=self.local,
                transport=transport,
                now=time.time(),
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
        keys = ["in:" + admission.ingress]
        ticket = self.admission.admit(keys, now)
        if isinstance(ticket, Rejection):
            self._refuse(
                event, record, ticket.status, f"{ticket.limit} limit of {ticket.key}", f"{ticket.limit} limit"
            )
            return
        tickets: list[AdmissionTicket] = [ticket]
        call = Call(
            host=self,
            invite=request,
            transaction=event.transaction,
            source=event.addr,
            transport=event.transport,
            admission=admission,
            record=record,
        )

        def release() -> None:  # the call's admission slots
            for t in tickets:
                self.admission.release(t)

        call.release = release
        self.gateways.ingress_started(admission.ingress)
        self._by_transaction[event.transaction] = call
        state = _CallState(call, next(self._serials))
        self.calls[request.call_id] = state
        self.post(call, call.start)

    # -- CallHost -----------------------------------------------------------------------------------

    def post(self, call: Call, work: Callable[[], None]) -> None:
        """Run an input of ``call``: now when none of its inputs is running, else after them
        (a call's inputs run one at a time, in order)."""
        self._enqueue(call, work)

    def media(self, call: Call, command: str, args: tuple[Any, ...], then: Continuation) -> None:
        """Run a media command for ``call``; its later inputs wait until ``then`` has run. The
        in-process engine answers at once (``run_now``: no task, no await); a media node's
        reply is awaited, the call's later inputs queued meanwhile."""
        port = self.media_port
        run_now = getattr(port, "run_now", None)
        if run_now is not None:
            self._enqueue(call, partial(_media_now, run_now, command, args, then))
            return

        async def run() -> None:
            try:
                result = await getattr(port, command)(*args)
            except MediaControlError as exc:
                result = exc
            then(result)

        self._enqueue(call, run)

    def _enqueue(self, call: Call, work: Callable[[], object]) -> None:
        state = self.calls.get(call.call_id) or self._lingering.get(call.call_id)
        if state is None or state.call is not call:
            return
        state.queue.append(work)
        if not state.running:
            self._drain(state)

    def _drain(self, state: _CallState) -> None:
        """Run the call's queued inputs in order, inline: no task per input. An input that
        returns an awaitable (a command to a media node) hands the rest to a task, and the
        call's inputs queue until that task has run them all."""
        state.running = True
        handed_over = False
        token = call_context.set(state.call.call_id)  # log records name the call
        try:
            queue = state.queue
            while queue:
                pending = self._run_input(state, queue.pop(0))
                if pending is not None:
                    loop = self._loop or asyncio.get_running_loop()
                    state.task = loop.create_task(self._drain_awaiting(state, pending))
                    handed_over = True
                    return
        finally:
            call_context.reset(token)
            if not handed_over:
                state.running = False

    def _run_input(self, state: _CallState, work: Callable[[], object]) -> Awaitable[object] | None:
        """One input of a call; what it returns when that is an awaitable, else None (the
        input is done and what it sent has gone out)."""
        try:
            result = work()
            if result is not None and inspect.isawaitable(result):
                return result
        except Exception:
            self._input_failed(state)
        self._pump()
        return None

    def _input_failed(self, state: _CallState) -> None:
        self.stats.handler_errors += 1
        log.exception("call %s: handler failed", state.call.call_id)
        if state.call.active:
            try:
                state.call.hangup("InternalError", status=500)
            except Exception:
                log.exception("call %s: hangup failed", state.call.call_id)

    async def _drain_awaiting(self, state: _CallState, pending: Awaitable[object]) -> None:
        call_context.set(state.call.call_id)  # this task's log records name the call
        try:
            while True:
                try:
                    await pending
                except Exception:
                    self._input_failed(state)
                self._pump()
                next_pending = None
                while state.queue and next_pending is None:
                    next_pending = self._run_input(state, state.queue.pop(0))
                if next_pending is None:
                    return
                pending = next_pending
        finally:
            state.task = None  # a finished task per held call is memory for nothing
            state.running = False

    def send_response(self, response: Response, transaction: TransactionId) -> None:
        self.layer.send_response(response, self.now(), transaction)
        if 200 <= response.status < 300 and (response.headers.get("CSeq") or "").endswith("INVITE"):
            self._note_awaiting_ack(response)
        self._pump()

    def _note_awaiting_ack(self, response: Response) -> None:
        try:
            dialog_id = DialogId(response.call_id, response.to_tag or "", response.from_tag or "")
        except ValueError:
            return
        found = self._dialogs.get(dialog_id)
        if found is not None:
            call, leg = found
            owner = call.leg(leg)
            if owner is not None and owner.dialog is not None and owner.dialog.awaiting_ack:
                self._await_ack(dialog_id, owner.dialog)

    def _await_ack(self, dialog_id: DialogId, dialog: Dialog) -> None:
        """Follow ``dialog``'s 2xx retransmissions and ACK timeout until its ACK comes."""
        at = dialog.poll_timeout()
        if at is None:
            self._awaiting_ack.pop(dialog_id, None)
            return
        self._awaiting_ack[dialog_id] = dialog
        self.deadlines.set(("ack", dialog_id), at, partial(self._ack_due, dialog_id))

    def _acknowledged(self, call: Call, leg: str) -> None:
        """An ACK reached the dialog: its 2xx retransmission stops, and so does its timer."""
        owner = call.leg(leg)
        dialog = owner.dialog if owner is not None else None
        if dialog is not None and not dialog.awaiting_ack and dialog.id in self._awaiting_ack:
            del self._awaiting_ack[dialog.id]
            self.deadlines.cancel(("ack", dialog.id))

    def _ack_due(self, dialog_id: DialogId) -> None:
        """A 2xx not acknowledged yet: send it again, or end the call when the ACK is late."""
        dialog = self._awaiting_ack.pop(dialog_id, None)
        found = self._dialogs.get(dialog_id)
        if dialog is None or found is None:
            return
        call, leg = found
        now = self.now()
        for action in dialog.handle_timeout(now):
            if isinstance(action, Retransmit2xx):
                tid = call.transaction if leg == "a" else None
                self.layer.send_response(action.response, now, tid)
            elif isinstance(action, AckTimeout):
                self.post(call, call.on_ack_timeout)
        self._await_ack(dialog_id, dialog)

    def send_request(self, call: Call, request: Request, addr: Addr, transport: str) -> TransactionId:
        self.tracer.link(request.call_id, call.call_id)
        tid = self.layer.send_request(request, addr, self.now(), transport=transport)
        self._by_transaction[tid] = call
        state = self.calls.get(call.call_id) or self._lingering.get(call.call_id)
        if state is not None:
            state.transactions.append(tid)
        self._pump()
        return tid

    def send_ack(self, ack: Request, addr: Addr, transport: str) -> None:
        self.layer.send_stateless(ack, addr, transport)
        self._pump()

    def cancel(self, transaction: TransactionId) -> None:
        self.layer.cancel(transaction, self.now())
        self._pump()

    def _port_for(self, transport: str) -> int:
        tls = self.transport.tls_local
        return tls[1] if transport.upper() == "TLS" and tls is not None else self.local[1]

    def local_via(self, transport: str) -> Via:
        return Via(
            transport=transport.upper(),
            host=self.advertise or "127.0.0.1",
            port=self._port_for(transport),
            params={"branch": new_branch(), "rport": None},
        )

    def local_contact(self, transport: str) -> str:
        contact = self._contacts.get(transport)
        if contact is None:  # one shared string per transport, not one per dialog
            kind = transport.upper()
            suffix = f";transport={kind.lower()}" if kind in ("TCP", "TLS") else ""
            contact = f"<sip:{self.advertise or '127.0.0.1'}:{self._port_for(kind)}{suffix}>"
            self._contacts[transport] = contact
        return contact

    def caller_pool(self, route: Route) -> CallerPool | None:
        if not route.caller_pool:
            return None
        pool = self._pools.get(route.gateway)
        sequence = route.caller_pool_sequence  # the store's (refreshed), else the node's file
        sequence = int(self.parameters["FORWARD_SIGNAL_REWRITE_SEQUENCE"]) if sequence is None else sequence
        if pool is None or pool.numbers != route.caller_pool:
            pool = CallerPool(route.caller_pool, sequence=sequence, multiplex=route.caller_pool_multiplex)
            self._pools[route.gateway] = pool
        pool.sequence = sequence  # numbers in use stay counted
        return pool

    def register_dialog(self, dialog: Dialog, call: Call, leg: str) -> None:
        self._dialogs[dialog.id] = (call, leg)
        state = self.calls.get(call.call_id)
        if state is not None:
            state.dialog_ids.append(dialog.id)
        if not self._pumping:
            self._reschedule()

    def set_timer(self, call: Call, name: str, delay: float, action: Callable[[], None]) -> None:
        state = self.calls.get(call.call_id)
        if state is None or state.call is not call:
            return
        if name not in state.timer_names:
            state.timer_names.append(name)
        self.deadlines.set((state.serial, name), self.now() + delay, partial(self.post, call, action))
        if not self._pumping:
            self._reschedule()

    def cancel_timer(self, call: Call, name: str) -> None:
        state = self.calls.get(call.call_id)
        if state is not None and state.call is call and name in state.timer_names:
            self.deadlines.cancel((state.serial, name))

    def call_ended(self, call: Call) -> None:
        state = self.calls.get(call.call_id)
        settled = False
        if state is not None and state.call is call:
            for name in state.timer_names:
                self.deadlines.cancel((state.serial, name))
            state.timer_names.clear()
            del self.calls[call.call_id]
            settled = is_settled(call)
            if settled:
                self._forget_settled(state)
            else:
                # still reachable for late inputs (a 2xx on a cancelled attempt is ACKed and
                # hung up, a relayed request's answer is passed back)
                self._lingering[call.call_id] = state
        self.stats.ended(call.record, call.answered)
        self.gateways.ingress_ended(call.record.ingress)
        self.ended_records.append(call.record)
        if len(self.ended_records) > 10_000:
            del self.ended_records[:1000]
        if not settled:
            # dialogs stay registered briefly so late retransmissions (BYE 200, 2xx) still match
            self.deadlines.set(("forget", call), self.now() + LINGER_S, partial(self._forget_dialogs, call))
        if not self._pumping:
            self._reschedule()

    def _forget_settled(self, state: _CallState) -> None:
        """Forget an ended call with nothing left to do (``ended.settled``) at once: a late
        request in one of its dialogs finds none and is answered 481, as its terminated dialog
        would have; what is kept for LINGER_S is its Call-ID (the trace follows late messages)
        and the carrier dialog's last ACK, sent again if the carrier repeats its 2xx."""
        call = state.call
        for dialog_id in state.dialog_ids:
            if self._dialogs.get(dialog_id, (None, ""))[0] is call:
                del self._dialogs[dialog_id]
        for tid in [call.transaction, *state.transactions]:
            if self._by_transaction.get(tid) is call:
                del self._by_transaction[tid]
        b = call.b
        dialog = b.dialog if b is not None else None
        last_ack = dialog.last_ack if dialog is not None else None
        if b is None or dialog is None or last_ack is None:
            self._ended.add(self.now(), call.call_id, None, None)
        else:
            kept = (last_ack[0], last_ack[1], b.addr, b.transport)
            self._ended.add(self.now(), call.call_id, dialog.id, kept)

    def _expire_ended(self, now: float) -> None:
        for call_id in self._ended.expire(now):
            self.tracer.forget(call_id)

    def _forget_dialogs(self, call: Call) -> None:
        self.tracer.forget(call.call_id)
        state = self._lingering.get(call.call_id)
        if state is None or state.call is not call:
            return
        del self._lingering[call.call_id]
        for dialog_id in state.dialog_ids:
            if self._dialogs.get(dialog_id, (None, ""))[0] is call:
                del self._dialogs[dialog_id]
            if self._awaiting_ack.pop(dialog_id, None) is not None:
                self.deadlines.cancel(("ack", dialog_id))
        for tid in [call.transaction, *state.transactions]:
            if self._by_transaction.get(tid) is call:
                del self._by_transaction[tid]

    # -- media events ---------------------------------------------------------------------------------

    def _on_media_notice(self, notice: MediaNotice) -> None:
        if notice.kind in ("dtmf", "dtmf_played"):
            event = notice.event
            self.stats.dtmf_event(notice.kind, bool(event.get("inband")), event.get("via"))
        state = self.calls.get(notice.call_id)
        if state is not None:
            self.post(state.call, partial(state.call.on_media_notice, notice))

    # -- timers -------------------------------------------------------------------------------------

    def _reschedule(self) -> None:
        """Arm the one timer handle at the earliest deadline of the transaction layer, the
        registrar, keep-alives and :attr:`deadlines` (calls' timers, 2xx retransmissions):
        four heap tops, whatever the number of calls. A later deadline keeps the earlier handle
        (it fires, finds nothing due, and re-arms)."""
        loop = self._loop
        if loop is None:
            return
        due = self.deadlines.next_deadline()
        ended = self._ended.next_deadline()
        for t in (self.layer.poll_timeout(), self.registrar.get_timer(), self.keepalive.get_timer(), ended):
            if t is not None and (due is None or t < due):
                due = t
        if due is None:
            return
        # a little late, so that deadlines close together (at hundreds of calls per second,
        # several a millisecond) are handled in one turn of the loop rather than one each
        due += TIMER_SLACK
        if self._timer is not None:
            if self._timer_at <= due:
                return
            self._timer.cancel()
        # the deadline is kept apart: a handle for a time already past is a plain Handle under
        # uvloop, without when()
        self._timer_at = due
        self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        now = self.now()
        self._timer = None
        self.layer.handle_timeout(now)
        self.registrar.handle_timer(now)
        self._expire_ended(now)
        for ping in self.keepalive.handle_timer(now):
            self.transport.send(ping.payload, ping.addr, "UDP")
        self._pump()
        for action in self.deadlines.pop_due(now):
            try:
                action()
            except Exception:
                self.stats.handler_errors += 1
                log.exception("timer failed")
        self._pump()


def _media_now(
    run_now: Callable[[str, tuple[Any, ...]], object], command: str, args: tuple[Any, ...], then: Continuation
) -> None:
    """One in-process media command of a call, its reply (or refusal) handed on."""
    try:
        result = run_now(command, args)
    except MediaControlError as exc:
        result = exc
    then(result)


def _aor_user(uri: SipUri) -> str:
    """The registrar's key of an address-of-record: its user part (a number or a user name)."""
    if not uri.user:
        raise ValueError("an address-of-record needs a user part")
    return unquote(uri.user)


def _user(uri: str) -> str:
    """The user part of a SIP URI (the number), or "" when there is none."""
    rest = uri.partition(":")[2]
    user, at, _ = rest.partition("@")
    if not at:
        return ""
    return user.partition(";")[0].partition(":")[0]


__all__ = ["Node", "NodeStats", "parse_dtmf_info"]
