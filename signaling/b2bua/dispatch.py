"""Dispatch of what arrives, split from node.py: bytes from the transport pass the scanner
defence and the overload guard, are parsed (a malformed request gets its error response
statelessly, a malformed response is dropped) and fed to the :class:`TransactionLayer` with the
loop's time; the layer's events are dispatched — a new INVITE to a new call, in-dialog requests
and responses to the call owning the dialog or transaction, OPTIONS and REGISTER answered here.
A mixin of :class:`Node`; it uses only the attributes declared here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from signaling.b2bua.call import Call
from signaling.b2bua.ended import EndedCalls
from signaling.b2bua.inputs import CallState
from signaling.b2bua.operations import auth_log_level
from signaling.b2bua.stats import GatewayProber, NodeStats
from signaling.routing import Router
from signaling.sip.auth import AuthOutcome, AuthResult, DigestChallenger
from signaling.sip.defence import Defence
from signaling.sip.dialog import DialogId, dialog_id_of_request, dialog_id_of_response
from signaling.sip.ids import new_tag
from signaling.sip.limits import OverloadDecision, OverloadGuard
from signaling.sip.message import Request, Response, make_response, serialize
from signaling.sip.parser import SipParseError, is_keepalive, parse_message, scan_request
from signaling.sip.registrar import Registrar
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
from signaling.sip.transport import SipTransport
from signaling.sip.validate import error_response, validate_request
from signaling.trace import Tracer

__all__ = ["ALLOW", "DTMF_INFO_TYPES", "Dispatch"]

log = logging.getLogger("softswitch.node")

Addr = tuple[str, int]
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"
DTMF_INFO_TYPES = ("application/dtmf-relay", "application/dtmf")


class Dispatch:
    _messages: int
    _pumping: int
    _raw: tuple[bytes, Addr, str] | None
    _by_transaction: dict[TransactionId, Call]
    _dialogs: dict[DialogId, tuple[Call, str]]
    _ended: EndedCalls
    calls: dict[str, CallState]
    _lingering: dict[str, CallState]
    defence: Defence
    overload: OverloadGuard
    transport: SipTransport
    layer: TransactionLayer
    stats: NodeStats
    tracer: Tracer
    prober: GatewayProber
    auth: DigestChallenger
    registrar: Registrar
    router: Router
    local: Addr

    if TYPE_CHECKING:

        def now(self) -> float: ...

        def post(self, call: Call, work: Callable[[], None]) -> None: ...

        def send_ack(self, ack: Request, addr: Addr, transport: str) -> None: ...

        def _new_call(self, event: RequestReceived) -> None: ...

        def _reschedule(self) -> None: ...

        def _acknowledged(self, call: Call, leg: str) -> None: ...

        def _auth_seen(self, result: AuthResult, addr: Addr, now: float) -> None: ...

    def _on_data(self, data: bytes, addr: Addr, transport: str, local: str | None = None) -> None:
        """What the transport delivers; ``local``: the other local IP it arrived on (None: the
        main listener), where whatever answers it leaves from."""
        self._messages += 1
        defence = self.defence
        if (
            defence.config.enabled
            and not defence.is_trusted(addr[0])
            and defence.inspect(data, addr, self.now()) is not None
        ):
            return  # dropped before parsing: no answer, no log line, a counter
        decision = self.overload.decide(data)
        if decision is not OverloadDecision.ACCEPT and self._refuse_unless_held(
            decision, data, addr, transport, local
        ):
            return
        if is_keepalive(data):
            if transport == "TCP" and data.startswith(b"\r\n\r\n"):
                self._send_raw(b"\r\n", addr, "TCP", local)
            return
        try:
            message = parse_message(data, stream=transport != "UDP")
        except SipParseError as exc:
            self.stats.parse_errors += 1
            answer = error_response(exc, to_tag=new_tag())
            if answer is not None:
                self._send_raw(serialize(answer), addr, transport, local)
            return
        self.stats.message(message, received=True)
        if self.tracer.watching:
            self._raw = (data, addr, transport)
            self.tracer.message(
                message,
                data,
                direction="recv",
                peer=addr,
                local=self.local if local is None else (local, self.local[1]),
                transport=transport,
                now=time.time(),
            )
        self.layer.receive(message, addr, self.now(), transport, local)
        self._pump()
        self._raw = None

    def _refuse_unless_held(
        self, decision: OverloadDecision, data: bytes, addr: Addr, transport: str, local: str | None
    ) -> bool:
        """Carries out the overload guard's refusal of a datagram (a stateless 503, or nothing
        past the drop mark) and returns True, unless the request belongs to a call this node
        holds: a request inside a dialog (a To tag: a re-INVITE, an in-dialog OPTIONS) or a
        retransmitted INVITE whose call is here, which the transaction layer absorbs (a second,
        stateless final answer would contradict the call's own). That one passes: False."""
        if decision is not OverloadDecision.REJECT_503:
            return True
        request = scan_request(data)
        if request is None or "Via" not in request.headers:
            return True
        call_id = request.headers.get("Call-ID")
        try:
            held = call_id in self.calls or call_id in self._lingering or request.to_tag is not None
        except ValueError:  # a To that does not parse: the full parse answers it (400)
            held = True
        if held:
            self.overload.pass_known()
            return False
        reply = self.overload.reject(request, to_tag=new_tag())
        self._send_raw(serialize(reply), addr, transport, local)
        return True

    def _send_raw(self, data: bytes, addr: Addr, transport: str, local: str | None) -> None:
        """An answer outside the transaction layer, from the socket the request reached."""
        if local is None:
            self.transport.send(data, addr, transport)
        else:
            self.transport.send_from(data, addr, transport, local)

    def _pump(self) -> None:
        """Dispatch the layer's events until it has none: what a handler sends (a response
        answered on the spot, an OPTIONS 200) goes out now, not with the next message. A call's
        input runs inside the pump that delivered it and pumps in turn; the outermost pump
        re-arms the timer once, for all of them."""
        layer = self.layer
        pending = layer.pending
        if not pending and self._pumping:
            return  # nested, with nothing to do: the outer pump re-arms the timer
        self._pumping += 1
        try:
            while pending:
                for event in layer.events():
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
            if event.local is None:
                self.transport.send(event.data, event.addr, event.transport)
            else:
                self.transport.send_from(event.data, event.addr, event.transport, event.local)
            self.stats.message(event.message, received=False)
            if self.tracer.watching:
                self.tracer.message(
                    event.message,
                    event.data,
                    direction="send",
                    peer=event.addr,
                    local=self.local if event.local is None else (event.local, self.local[1]),
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
        ip = event.addr[0]
        if result.outcome is AuthOutcome.ACCEPTED and not self._register_allowed(result.username, ip):
            # a phone outside its account's IP whitelist (behaviour 60): the same 403 as a wrong
            # password (an outsider learns nothing more), nothing bound; neither trusted nor a
            # wrong password for the scanner defence (docs/sip-auth-registrar-limits.md)
            self.stats.outside_whitelist("REGISTER")
            log.info("REGISTER from phone %s at %s: outside its account's IP whitelist", result.username, ip)
            self._reply(event, 403, to_tag=tag)
            return
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

    def _register_allowed(self, username: str | None, ip: str) -> bool:
        """Whether the authenticated ``username`` may register from ``ip`` (a store-backed
        router knows accounts' IP whitelists; the file's gateways have none)."""
        check = getattr(self.router, "source_allowed", None)
        return check is None or username is None or bool(check(username, ip))

    def _reply(
        self,
        event: RequestReceived,
        status: int,
        extra: list[tuple[str, str]] | None = None,
        to_tag: str | None = None,
    ) -> None:
        response = make_response(event.request, status, to_tag=to_tag or new_tag(), extra=extra or [])
        self.layer.send_response(response, self.now(), event.transaction)
