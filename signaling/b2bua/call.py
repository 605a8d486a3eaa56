"""One call through the B2BUA, sans-IO: the customer's leg (A, we are its UAS) and the carrier's
leg (B, we are its UAC), kept in step with each other and with the media engine.

A :class:`Call` is a plain state machine. Its inputs are method calls — the A INVITE
(:meth:`start`), responses on the current B attempt, in-dialog requests from either side,
CANCEL, timer expiries, media events, and the *results* of the media commands it asked for.
Its outputs go through the :class:`CallHost`: SIP messages (through the sans-IO transaction
layer), media commands (the host runs them and feeds the result back to the continuation the
call gave), timers (the host calls back when they are due) and the end of the call. The call
never reads a clock (``host.now()`` is injected) and never blocks, so a whole call — a 2-hour
one with refreshes included — runs faster than real time against a fake host
(tests/test_b2bua_core.py). The node serialises the inputs of one call, so they are handled in
the order they arrived, media results included.

The rules it keeps (docs/b2bua.md has them with the reasons):

* A provisional response never follows a final one on a leg; every call ends with both legs
  torn down, the media deleted, the admission slots released and one :class:`CallRecord`.
* Failover: a failure on a route tries the next, except on that route's stop-switching codes,
  on busy (SS_GATEWAY_SWITCH_STOP_AFTER_USER_BUSY), after SDP was received
  (SS_SIP_STOP_SWITCH_AFTER_SDP), after the carrier's early RTP reached the media engine
  (SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START: the engine is asked before the next route is tried)
  or after ringing unless SS_GATEWAY_SWITCH_UNTIL_CONNECT; an attempt with no answer in time
  (SS_SIP_TIMEOUT_*) is cancelled and counts as a 408.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from signaling.b2bua import reoffer
from signaling.b2bua.codecs import CodecStep, plan_attempt
from signaling.b2bua.parts import (
    CODEC_MISMATCH,
    MEDIA_FAILURE,
    SDP,
    Addr,
    Attempt,
    CallHost,
    Continuation,
    Exchange,
    Leg,
    MediaPort,
    MediaResult,
    Pending,
    media_report_by_party,
    parse_dtmf_info,
    rtp_packets_by_party,
    slim_request,
)
from signaling.b2bua.timers import LegTimers
from signaling.media.codec_policy import CodecMismatch
from signaling.media.control import MediaControlError, MediaNotice, OfferOptions
from signaling.media.proxy_mode import anchored
from signaling.media.sdp_streams import keep_disabled, one_audio_stream
from signaling.routing import ALL_GATEWAY_BUSY, Admission, CallRecord, Route
from signaling.sip.auth import DigestClient
from signaling.sip.dialog import Dialog, DialogId, make_request
from signaling.sip.identity import CallerPool, identity_headers
from signaling.sip.ids import new_tag
from signaling.sip.message import Request, Response, make_response
from signaling.sip.session_timer import (
    Resend,
    SessionTimer,
)
from signaling.sip.transaction import TransactionId

log = logging.getLogger("softswitch.call")

#: Reasons a call ended (CDR termination reasons besides the router's).
NORMAL = "Normal"
CALLER_CANCEL = "CallerCancel"
MEDIA_TIMEOUT = "RTP timeout"
ACK_TIMEOUT = "ACK timeout"
MAX_DURATION = "Max call duration"
ALL_ROUTES_FAILED = "AllRoutesFailed"
#: the reference's end reason when a carrier's answer did not come in time (behaviour 38)
RESPONSE_TIMEOUT = "Response timeout"
SHUTDOWN = "Shutdown"


def _ignore(_: MediaResult) -> None:
    return None


def _info_refused(call_id: str, leg: str, result: MediaResult) -> None:
    """A SIP INFO digit the engine did not play: refused by the leg's DTMF lock (one key press
    sent both ways is one digit), or an error."""
    if isinstance(result, MediaControlError):
        lock = str(result).startswith("DTMF locked")
        log.log(
            logging.DEBUG if lock else logging.INFO, "call %s: INFO DTMF from %s: %s", call_id, leg, result
        )


@dataclass(slots=True, eq=False, weakref_slot=True)
class Call:
    host: CallHost
    invite: Request
    transaction: TransactionId
    source: Addr
    transport: str
    admission: Admission
    record: CallRecord
    release: Callable[[], None] = lambda: None
    a: Leg = field(init=False)
    b: Leg | None = None
    attempt: Attempt | None = None
    routes: list[Route] = field(default_factory=list)
    a_final_sent: bool = False
    answered: bool = False
    ended: bool = False
    #: set when the call started ending (media teardown may still be running)
    ending: bool = False
    media_proxy: bool = True
    #: relayed in-dialog requests, by the transaction id of our copy on the other leg
    relayed: dict[TransactionId, Pending] = field(default_factory=dict)
    last_failure: int = 503
    #: the last failure was ours: the gateways' codec settings fit no codec (its reason)
    mismatch: str = ""
    #: attempts we cancelled, until their final response: a 2xx there is ACKed and hung up
    given_up: dict[TransactionId, Attempt] = field(default_factory=dict)
    #: RFC 4028 session timers per leg, when the leg's gateway uses them
    st: LegTimers = field(init=False)
    #: the caller-pool number this call holds, if any
    pool_number: tuple[CallerPool, str] | None = None
    #: the caller's Call-ID (plain attributes, not properties: read dozens of times a call)
    call_id: str = field(init=False, default="")
    #: The caller's From tag: the caller's party tag in the media engine.
    a_tag: str = field(init=False, default="")
    #: the offer/answer in force once answered (what a refused re-offer's repair goes back to)
    exchange: Exchange | None = None
    #: The node's SS_* parameters when the call started: the call keeps them when the store's
    #: change (the next call takes the new ones; signaling/b2bua/settings.py, behaviour 77).
    parameters: dict[str, Any] = field(init=False)
    #: the other local IP the caller reached (None: the main listener): the A leg's Via and
    #: Contact name it, and its messages leave from it (docs/b2bua.md "Local IPs")
    local: str | None = None
    #: the media interfaces of the caller's and the carrier's legs of the media call in place
    #: (None: no media call yet; an interface None: the default); docs/b2bua.md "Local IPs"
    media_interfaces: tuple[str | None, str | None] | None = None

    def __post_init__(self) -> None:
        self.parameters = self.host.parameters
        self.call_id = self.invite.call_id
        self.a_tag = self.invite.from_tag or ""
        self.a = Leg("a", self.source, self.transport, tag=new_tag(), dtmf=self.admission.dtmf)
        self.routes = list(self.admission.routes)
        self.st = LegTimers(self)

    # -- identity ---------------------------------------------------------------------------------

    def _slim(self) -> None:
        """The call is established: drop what only call setup needed (the INVITEs' bodies and
        most of their headers), so a long call holds little (10,000 held calls per node)."""
        self.invite = slim_request(self.invite)
        if self.attempt is not None:
            self.attempt.request = slim_request(self.attempt.request)

    def _media_tag(self, leg: Leg) -> str:
        return self.a_tag if leg.name == "a" else leg.tag

    def leg(self, name: str) -> Leg | None:
        return self.a if name == "a" else self.b

    def _other(self, leg: Leg) -> Leg | None:
        return self.b if leg.name == "a" else self.a

    @property
    def b_transport(self) -> str:
        return self.b.transport if self.b is not None else "UDP"

    @property
    def active(self) -> bool:
        return not (self.ended or self.ending)

    # -- A side ---------------------------------------------------------------------------------

    def _respond_a(
        self,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        if self.a_final_sent:
            return  # never a provisional (or a second final) after a final
        headers: list[tuple[str, str]] = list(extra or [])
        if body:
            self.a.sdp_sent = body
        if body:
            headers.append(("Content-Type", SDP))
        if 100 < status < 300:
            headers.append(("Contact", self.host.local_contact(self.transport, self.local)))
        response = make_response(self.invite, status, reason, to_tag=self.a.tag, extra=headers, body=body)
        if status >= 200:
            self.a_final_sent = True
        if self.a.dialog is not None:
            self.a.dialog.response_sent(self.invite, response, self.host.now())
        self.host.send_response(response, self.transaction)

    def _ensure_a_dialog(self) -> Dialog:
        if self.a.dialog is None:
            self.a.dialog = Dialog.from_uas(
                self.invite,
                local_tag=self.a.tag,
                local_contact=self.host.local_contact(self.transport, self.local),
                via=self.host.local_via(self.transport, self.local),
            )
            self.host.register_dialog(self.a.dialog, self, "a")
        return self.a.dialog

    def start(self) -> None:
        """Route the call: offer the caller's SDP to the media engine, then try the routes."""
        self.media_proxy = False  # until an attempt anchors (_decide_media)
        if self.admission.session_timer:
            timer = SessionTimer(self.st.config(), role="uas")
            refusal = timer.on_request(self.invite, to_tag=self.a.tag)
            if refusal is not None:  # 422 Session Interval Too Small (or 400)
                self.host.send_response(refusal, self.transaction)
                self.a_final_sent = True
                self.record.final_status = refusal.status
                self._finish(f"SIP {refusal.status}", "switch")
                return
            self.st.timers["a"] = timer
        if not self.routes:
            self.fail(503, "Service Unavailable", ALL_ROUTES_FAILED)
            return
        self._next_route()

    def _next_route(self) -> None:
        if not self.routes:
            # none tried: every route was skipped at its lines or CPS (the router's, or the
            # node's own carrier limits), which the store router calls AllGatewayBusy too
            termination = ALL_ROUTES_FAILED if self.record.attempts else ALL_GATEWAY_BUSY
            self.fail(self.last_failure, None, CODEC_MISMATCH if self.mismatch else termination)
            return
        route = self.routes.pop(0)
        if route.source_ip and self.host.source_refused(route):
            self.last_failure = 503  # a source IP this node does not have: as an unusable route
            self._next_route()
            return
        self._decide_media(route)
        body = one_audio_stream(self.invite.body)  # one planned audio stream (docs/b2bua.md)
        try:  # the two gateways' codec settings (docs/b2bua.md "Codecs")
            codecs = plan_attempt(self.admission.codecs, route.codecs, body, can_transcode=self.media_proxy)
        except CodecMismatch as exc:
            self._codec_mismatch(route, exc)
            return
        if not self.media_proxy or not body:
            self._send_attempt(route, codecs.toward_carrier(body, proxied=False), codecs)
            return
        extra: dict[str, Any] = {"DTMF-mode": self.a.dtmf}
        interfaces = self.host.media_interfaces(self.local, route)
        if self.media_interfaces is not None and interfaces != self.media_interfaces:
            if self.a.sdp_sent:  # the caller has our ports already: the legs stay where they are
                interfaces = self.media_interfaces
            else:  # the media call's legs are where the last carrier needed them: start anew
                self.media_interfaces = None
                self.host.media(self, "delete", (self.call_id, self.a_tag), lambda _: None)
        if interfaces != (None, None):  # rtpengine's key, our interfaces named by their IPs
            extra["direction"] = [interfaces[0] or "default", interfaces[1] or "default"]
        options = OfferOptions(codec=codecs.options or {}, extra=extra)

        def offered(result: MediaResult) -> None:
            if isinstance(result, MediaControlError):
                log.warning("call %s: media refused the offer: %s", self.call_id, result)
                self.fail(488 if "codec" in str(result).lower() else 503, None, MEDIA_FAILURE)
                return
            self.media_interfaces = interfaces
            if self.active and not self.a_final_sent:
                self._send_attempt(route, codecs.toward_carrier(result, proxied=True), codecs)

        self.host.media(self, "offer", (self.call_id, self.a_tag, body, options), offered)

    def _decide_media(self, route: Route) -> None:
        """Anchor this attempt's media or let it bypass (docs/b2bua.md "Media proxy"). Leaving an
        anchored attempt for a bypassing one deletes the media call, unless the caller already
        has the engine's SDP (then the call stays anchored)."""
        mode, caller = self.parameters["SS_MEDIAPROXYMODE"], self.admission.media_proxy
        proxied = anchored(
            mode, caller, route.media_proxy, offer=self.invite.body, source=self.source[0], host=route.host
        )
        if not proxied and self.media_interfaces is not None:
            if self.a.sdp_sent:
                proxied = True
            else:
                self.media_interfaces = None
                self.host.media(self, "delete", (self.call_id, self.a_tag), _ignore)
        self.media_proxy = proxied

    def _codec_mismatch(self, route: Route, exc: CodecMismatch) -> None:
        """Nothing fits before any INVITE: the caller's side (its gateway's settings or offer)
        ends the call with 488; a carrier's settings skip that carrier."""
        log.info("call %s: codec mismatch toward %s: %s", self.call_id, route.gateway, exc)
        self.last_failure = exc.sip_status
        self.mismatch = str(exc)
        if exc.side == "caller":
            self.fail(exc.sip_status, None, CODEC_MISMATCH)
            return
        self._next_route()

    def _send_attempt(self, route: Route, body: bytes, codecs: CodecStep | None = None) -> None:
        if self.host.router.attempt_started(self.call_id, route, self.host.now()) is False:
            # the router found the carrier's lines taken (by this or another node): next route
            log.info("call %s: %s is busy, not tried", self.call_id, route.gateway)
            self.last_failure = 503
            self._next_route()
            return
        from_party = self.invite.from_parsed
        display = f"{from_party.display} " if from_party.display else ""
        host = f"[{route.host}]" if ":" in route.host else route.host
        target = f"sip:{route.callee}@{host}:{route.port}"
        if route.transport in ("tcp", "tls"):
            target += f";transport={route.transport}"
        if route.uri is not None:  # a registered phone: its Contact is the Request-URI
            target = route.uri
        transport = route.transport.upper()
        source = self.host.source_local(route) if route.source_ip else None
        local = self.host.local_via(transport, source)
        caller = self._caller_for(route)
        extra = [("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE")]
        extra.extend(
            identity_headers(
                self.invite,
                caller,
                local.host,
                route.identity,
                support_privacy=self.admission.support_privacy,
            )
        )
        extra.extend(route.headers)  # a node hop's proof (signaling/callproc/cluster.py)
        if route.session_timer:
            timer = self.st.get("b")
            if timer is None or self.attempt is None or self.attempt.route != route:
                timer = SessionTimer(self.st.config(), role="uac")  # a 422 re-send keeps its own
                self.st.timers["b"] = timer
            extra.extend(timer.request_headers())
        else:
            self.st.timers.pop("b", None)
        mf = self.invite.headers.get("Max-Forwards")
        request = make_request(
            "INVITE",
            target,
            from_addr=f"{display}<sip:{caller}@{local.host}>",
            to_addr=f"<sip:{route.callee}@{host}:{route.port}>",
            via=local,
            contact=self.host.local_contact(transport, source),
            body=body,
            content_type=SDP if body else None,
            extra=extra,
            max_forwards=max(0, int(mf) - 1) if mf is not None and mf.strip().isdigit() else 70,
        )
        addr = (route.host, route.port)
        tid = self.host.send_request(self, request, addr, transport)
        self.attempt = Attempt(route=route, request=request, transaction=tid, addr=addr, codecs=codecs)
        self.mismatch = ""
        self.b = Leg("b", addr, transport, tag="", dtmf=route.dtmf, sdp_sent=body)
        self.record.attempts += 1
        self.record.gateway = route.gateway
        self._arm_attempt_timer("SS_SIP_TIMEOUT_INVITE")

    def _caller_for(self, route: Route) -> str:
        """The caller number toward ``route``: a pool number when the gateway has a pool with
        one free (else the caller's own), then the gateway's caller rewriting."""
        self._release_pool_number()
        caller = route.caller
        pool = self.host.caller_pool(route) if route.caller_pool else None
        number = pool.acquire() if pool is not None else None
        if pool is not None and number is not None:
            self.pool_number = (pool, number)
            caller = number
        return route.caller_add + caller[route.caller_strip :]

    def _release_pool_number(self) -> None:
        if self.pool_number is not None:
            pool, number = self.pool_number
            pool.release(number)
            self.pool_number = None

    def _arm_attempt_timer(self, parameter: str) -> None:
        attempt = self.attempt
        delay = float(self.parameters[parameter])

        def expired() -> None:
            if self.attempt is attempt and not self.answered and self.active:
                self._attempt_timed_out(parameter)

        self.host.set_timer(self, "attempt", delay, expired)

    def _attempt_timed_out(self, parameter: str) -> None:
        attempt = self.attempt
        if attempt is None:
            return
        log.info("call %s: %s expired on %s", self.call_id, parameter, attempt.route.gateway)
        attempt.cancelled = True
        self.given_up[attempt.transaction] = attempt
        self.host.cancel(attempt.transaction)
        self.host.router.attempt_ended(self.call_id, attempt.route, 408, self.host.now())
        self.last_failure = 408
        p = self.parameters
        if (attempt.sdp_seen and p["SS_SIP_STOP_SWITCH_AFTER_SDP"]) or (
            attempt.provisional >= 180 and not p["SS_GATEWAY_SWITCH_UNTIL_CONNECT"]
        ):
            self.fail(408, None, RESPONSE_TIMEOUT)
            return
        self._fail_over(attempt, lambda: self.fail(408, None, RESPONSE_TIMEOUT))

    def _fail_over(self, attempt: Attempt, stop: Callable[[], None]) -> None:
        """Try the next route after ``attempt`` failed, unless the carrier's early media already
        reached the engine (SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START): the caller has heard that
        carrier (an announcement, ringback), so the failure is the call's and ``stop`` runs.
        Only a carrier whose early SDP the engine took can have its RTP counted; the engine is
        asked for the packets received from that carrier's tag, and its answer (or refusal:
        then failover goes on) decides, in this call's turn."""
        tag = attempt.media_tag
        watch = self.parameters["SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START"]
        if not (tag and watch and self.routes and self.media_proxy):
            self._next_route()
            return

        def queried(result: MediaResult) -> None:
            if not self.active or self.a_final_sent or self.attempt is not attempt:
                return  # ended (a CANCEL, a shutdown) while the engine was asked
            received = media_report_by_party(result, {tag: "carrier"})[0] if isinstance(result, dict) else {}
            if received.get("carrier", 0) > 0:
                log.info(
                    "call %s: %s sent early media (%d RTP packets): no failover",
                    self.call_id,
                    attempt.route.gateway,
                    received["carrier"],
                )
                stop()
                return
            self._next_route()

        self.host.media(self, "query", (self.call_id,), queried)

    # -- responses on B ---------------------------------------------------------------------------

    def on_b_response(self, transaction: TransactionId, response: Response) -> None:
        """A response to a request we sent (on either leg: the name is historical)."""
        refreshed_leg = self.st.in_flight.get(transaction)
        if refreshed_leg is not None:
            self.st.on_response(transaction, refreshed_leg, response)
            return
        pending = self.relayed.get(transaction)
        if pending is not None:
            self._relay_response(transaction, pending, response)
            return
        attempt = self.attempt
        if attempt is None or attempt.transaction != transaction:
            attempt = self.given_up.get(transaction)
            if attempt is None:
                return
        attempt.heard = True
        if attempt.cancelled:
            if 200 <= response.status < 300:
                self._drop_late_answer(attempt, response)
            if response.status >= 200:
                self.given_up.pop(transaction, None)
            return
        if not self.active:
            return
        status = response.status
        if status < 300 and not self._answer_fits(attempt, response):
            return
        if status < 200:
            self._b_provisional(attempt, response)
        elif status < 300:
            self._b_answered(attempt, response)
        else:
            self._b_failed(attempt, response)

    def _answer_fits(self, attempt: Attempt, response: Response) -> bool:
        """Check the carrier's SDP (18x or 2xx) against the codec plan before anything of it
        reaches the caller. A mismatch gives the attempt up (CANCEL, or ACK and BYE for a 2xx)
        and counts as a 488 from that carrier: the next route is tried under the usual rules."""
        codecs = attempt.codecs
        if codecs is None or response.content_type != SDP:
            return True
        try:
            codecs.check_answer(response.body)
            if response.status >= 200 and codecs.answer is not None:  # the CDR's codecs
                self.record.codec_in = codecs.answer.to_caller[0].name
                self.record.codec_out = str(codecs.answer.callee_codecs[0]["name"])
        except CodecMismatch as exc:
            log.info("call %s: %s answered %s", self.call_id, attempt.route.gateway, exc)
            attempt.cancelled = True
            self.host.cancel_timer(self, "attempt")
            if response.status < 200:
                self.given_up[attempt.transaction] = attempt
                self.host.cancel(attempt.transaction)
            else:
                self._drop_late_answer(attempt, response)
            if attempt.dialog is not None:
                attempt.dialog.terminate()
            self.host.router.attempt_ended(self.call_id, attempt.route, exc.sip_status, self.host.now())
            self.last_failure = exc.sip_status
            if exc.sip_status in attempt.route.stop_switch_codes or not self.routes:
                self.fail(exc.sip_status, None, CODEC_MISMATCH)
            else:
                self.mismatch = str(exc)
                self._next_route()
            return False
        return True

    def _b_dialog(self, attempt: Attempt, response: Response) -> Dialog:
        """The B dialog this response belongs to (created by its first 1xx-with-tag or 2xx)."""
        if attempt.dialog is None or attempt.dialog.id.remote_tag != response.to_tag:
            route = attempt.route
            source = self.host.source_local(route) if route.source_ip else None
            attempt.dialog = Dialog.from_uac(
                attempt.request, response, local_contact=self.host.local_contact(self.b_transport, source)
            )
            self.host.register_dialog(attempt.dialog, self, "b")
        else:
            attempt.dialog.receive_response(response)
        assert self.b is not None
        self.b.dialog = attempt.dialog
        self.b.tag = attempt.dialog.id.remote_tag
        return attempt.dialog

    def _answer_media(self, response: Response, then: Callable[[bytes], None]) -> None:
        """Apply the callee's SDP to the media engine, then go on with the SDP for the caller."""
        assert self.b is not None
        body = keep_disabled(response.body, self.b.sdp_sent)
        if not self.media_proxy or not body:
            then(body)
            return
        options = OfferOptions(extra={"DTMF-mode": self.b.dtmf})

        codecs = self.attempt.codecs if self.attempt is not None else None

        def answered(result: MediaResult) -> None:
            if isinstance(result, MediaControlError):
                log.warning("call %s: media refused the answer: %s", self.call_id, result)
                self.hangup(MEDIA_FAILURE, status=488)
                return
            if self.active:
                then(codecs.toward_caller(result) if codecs is not None else result)

        args = (self.call_id, self.a_tag, response.to_tag or "", body, options)
        self.host.media(self, "answer", args, answered)

    def _b_provisional(self, attempt: Attempt, response: Response) -> None:
        status = response.status
        attempt.provisional = max(attempt.provisional, status)
        if status == 100:
            self._arm_attempt_timer("SS_SIP_TIMEOUT_TRYING")
            return
        if status in (180, 183):
            self.host.router.attempt_progress(self.call_id, attempt.route, status, self.host.now())
        if response.to_tag:
            self._b_dialog(attempt, response)
        has_sdp = bool(response.body) and response.content_type == SDP
        if has_sdp:
            attempt.sdp_seen = True
            if self.media_proxy and response.to_tag:
                attempt.media_tag = response.to_tag
        if self.record.ring is None:
            self.record.ring = self.host.now()
        if has_sdp:
            self._arm_attempt_timer("SS_SIP_TIMEOUT_SESSION_PROGRESS_SDP")
        elif status == 183:
            self._arm_attempt_timer("SS_SIP_TIMEOUT_SESSION_PROGRESS")
        else:
            self._arm_attempt_timer("SS_SIP_TIMEOUT_RINGING")

        def relay(body: bytes) -> None:
            if self.attempt is attempt and not attempt.cancelled and not self.answered:
                self._ensure_a_dialog()
                self._respond_a(status, response.reason, body=body)

        if has_sdp:
            self._answer_media(response, relay)
        else:
            relay(b"")

    def _b_answered(self, attempt: Attempt, response: Response) -> None:
        dialog = self._b_dialog(attempt, response)
        assert self.b is not None
        self.host.send_ack(dialog.create_ack(attempt.request.cseq.number), self.b.addr, self.b.transport)
        self.host.cancel_timer(self, "attempt")
        self.answered = True
        now = self.host.now()
        self.record.answer = now
        self.record.final_status = 200
        self.host.router.call_answered(self.call_id, attempt.route, now)
        b_timer = self.st.get("b")
        if b_timer is not None:
            self.st.apply("b", b_timer.on_response(response, now))

        def answer_caller(body: bytes) -> None:
            assert self.b is not None
            codec = dict(attempt.codecs.options or {}) if attempt.codecs is not None else {}
            answer = keep_disabled(response.body, self.b.sdp_sent)
            self.exchange = Exchange("a", one_audio_stream(self.invite.body), codec, answer)
            self._ensure_a_dialog()
            a_timer = self.st.get("a")
            self._respond_a(200, "OK", body=body, extra=a_timer.response_headers() if a_timer else None)
            if a_timer is not None:
                a_timer.on_answered(self.host.now())
                self.st.arm("a")
            self._arm_duration_limit()

        self._answer_media(response, answer_caller)

    def _arm_duration_limit(self) -> None:
        limit = self.admission.max_duration
        cap = float(self.parameters["SS_SIP_NO_TIMER_REINVITE_INTERVAL"] or 0)
        if cap > 0 and "a" not in self.st.timers:
            # without a session timer on the caller's leg the cap is ours to keep (with one,
            # the leg's SessionTimer applies it when the caller turns out to be non-timer)
            limit = cap if limit is None else min(limit, cap)
        if limit is not None:
            self.host.set_timer(self, "max_duration", limit, lambda: self.hangup(MAX_DURATION))

    def _drop_late_answer(self, attempt: Attempt, response: Response) -> None:
        """A 2xx on an attempt we gave up on: acknowledge it and hang it up at once."""
        dialog = Dialog.from_uac(attempt.request, response)
        self.host.send_ack(dialog.create_ack(attempt.request.cseq.number), attempt.addr, self.b_transport)
        self.host.send_request(self, dialog.create_request("BYE"), attempt.addr, self.b_transport)

    def _resend_with_credentials(self, attempt: Attempt, response: Response) -> bool:
        """A carrier challenged our INVITE (401/407) and we hold credentials for it: send the
        INVITE again, same Call-ID and From tag, next CSeq, new branch, with the answer. Once:
        a second challenge to an answered one means the password is wrong."""
        route = attempt.route
        if route.username is None or route.password is None or attempt.authenticated:
            return False
        client = DigestClient(route.username, route.password)
        old = attempt.request
        credentials = client.answer(response, "INVITE", old.uri, old.body)
        if not credentials:
            return False
        headers = old.headers.copy()
        headers.remove("Authorization")
        headers.remove("Proxy-Authorization")
        transport = route.transport.upper()
        source = self.host.source_local(route) if route.source_ip else None
        headers.set("Via", str(self.host.local_via(transport, source)))
        headers.set("CSeq", f"{old.cseq.number + 1} INVITE")
        for name, value in credentials:
            headers.add(name, value)
        request = Request("INVITE", old.uri, headers, old.body)
        tid = self.host.send_request(self, request, attempt.addr, transport)
        self.attempt = Attempt(
            route=route,
            request=request,
            transaction=tid,
            addr=attempt.addr,
            authenticated=True,
            codecs=attempt.codecs,
        )
        self._arm_attempt_timer("SS_SIP_TIMEOUT_INVITE")
        return True

    def _b_failed(self, attempt: Attempt, response: Response) -> None:
        status = response.status
        self.host.cancel_timer(self, "attempt")
        if status in (401, 407) and self._resend_with_credentials(attempt, response):
            return
        b_timer = self.st.get("b")
        if (
            status == 422
            and b_timer is not None
            and any(isinstance(a, Resend) for a in b_timer.on_response(response, self.host.now()))
        ):
            self.routes.insert(0, attempt.route)  # the same carrier, with its Min-SE
            self._next_route()
            return
        self.host.router.attempt_ended(self.call_id, attempt.route, status, self.host.now())
        self.last_failure = status
        if attempt.dialog is not None:
            attempt.dialog.terminate()
        p = self.parameters
        stop = (
            status in attempt.route.stop_switch_codes
            or (status in (486, 600) and p["SS_GATEWAY_SWITCH_STOP_AFTER_USER_BUSY"])
            or (attempt.sdp_seen and p["SS_SIP_STOP_SWITCH_AFTER_SDP"])
            or (attempt.provisional >= 180 and not p["SS_GATEWAY_SWITCH_UNTIL_CONNECT"])
            or 600 <= status < 700
        )
        if stop or not self.routes:
            self.fail(status, response.reason, f"SIP {status}" if stop else ALL_ROUTES_FAILED)
            return
        self._fail_over(attempt, lambda: self.fail(status, response.reason, f"SIP {status}"))

    # -- ending -----------------------------------------------------------------------------------

    def fail(self, status: int, reason: str | None, termination: str) -> None:
        """Refuse the call toward the caller (before answer) and end it."""
        self._respond_a(status, reason)
        self.record.final_status = self.record.final_status or status
        self._finish(termination, "switch")

    def hangup(self, termination: str, *, status: int = 503, ended_by: str = "switch") -> None:
        """End the call from the switch's side, whatever state it is in."""
        if not self.active:
            return
        if not self.answered or not self.a_final_sent:
            if not self.answered:
                self.record.final_status = self.record.final_status or status
            attempt = self.attempt
            if attempt is not None and not attempt.cancelled and not self.answered:
                attempt.cancelled = True
                self.given_up[attempt.transaction] = attempt
                self.host.cancel(attempt.transaction)
            if self.answered and self.b is not None:
                self._bye(self.b)
            self._respond_a(status)
        else:
            self._bye(self.a)
            if self.b is not None:
                self._bye(self.b)
        self._finish(termination, ended_by)

    def _bye(self, leg: Leg) -> None:
        dialog = leg.dialog
        if dialog is None or dialog.terminated:
            return
        try:
            bye = dialog.create_request("BYE")
        except ValueError:
            return
        dialog.terminate()
        self.host.send_request(self, bye, leg.addr, leg.transport)

    def _finish(self, termination: str, ended_by: str) -> None:
        """Record, tear the media down, release the slots, report. Runs once."""
        if not self.active:
            return
        self.ending = True
        self.record.end = self.host.now()
        self.record.termination = self.record.termination or termination
        self.record.ended_by = self.record.ended_by or ended_by
        self.host.cancel_timer(self, "attempt")
        self.host.cancel_timer(self, "max_duration")
        self.st.stop()
        self._release_pool_number()
        if not self.media_proxy:
            self._finalize()
            return

        def deleted(result: MediaResult) -> None:
            if isinstance(result, MediaControlError):
                log.warning("call %s: media delete failed: %s", self.call_id, result)
            elif isinstance(result, (dict, tuple)):  # the final statistics: the reply, or its counters
                parties = {self.a_tag: "caller", (self.b.tag if self.b else ""): "callee"}
                self.record.media_packets, self.record.media_quality = media_report_by_party(result, parties)
            self._finalize()

        # with the caller's tag: rtpengine answers a delete without from-tag with no statistics
        self.host.media(self, "delete", (self.call_id, self.a_tag), deleted)

    def _finalize(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.release()
        self.host.router.call_ended(self.record)
        self.host.call_ended(self)

    def on_cancel(self) -> None:
        """The caller cancelled before the answer (the layer already answered the CANCEL)."""
        if self.answered or not self.active:
            return
        self.record.termination = CALLER_CANCEL
        self.record.ended_by = "caller"
        self.hangup(CALLER_CANCEL, status=487, ended_by="caller")

    def on_ack_timeout(self) -> None:
        self.hangup(ACK_TIMEOUT)

    def on_media_notice(self, notice: MediaNotice) -> None:
        if not self.active:
            return
        event = notice.event
        kind = notice.kind
        if kind in ("media_timeout", "hold_timeout"):
            if self.answered:
                self.hangup(MEDIA_TIMEOUT)
            return
        info_to = event.get("info_to")
        if kind == "dtmf_played" and event.get("via") == "info":
            info_to = event.get("side")  # a played digit toward an INFO party: that party's side
        digit = event.get("digit")
        if kind in ("dtmf", "dtmf_played") and info_to and digit:
            leg = self.a if info_to == "caller" else self.b
            if leg is not None:
                self._send_info_dtmf(leg, digit, int(event.get("duration_ms") or 160))

    def _send_info_dtmf(self, leg: Leg, digit: str, duration_ms: int) -> None:
        dialog = leg.dialog
        if dialog is None or dialog.terminated:
            return
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
        info = dialog.create_request("INFO", body=body, content_type="application/dtmf-relay")
        self.host.send_request(self, info, leg.addr, leg.transport)

    # -- in-dialog requests -----------------------------------------------------------------------

    def on_request(  # noqa: PLR0911 (one return per request kind)
        self, leg_name: str, transaction: TransactionId, request: Request
    ) -> None:
        leg = self.leg(leg_name)
        if leg is None or leg.dialog is None:
            return
        reject = leg.dialog.receive_request(request)
        if request.method == "ACK":
            self._on_ack(leg)
            return
        if reject is not None:
            self._respond_in(leg, request, transaction, reject)
            return
        method = request.method
        if method == "BYE":
            self._respond_in(leg, request, transaction, 200)
            if not self.active:
                return
            self.record.ended_by = "caller" if leg.name == "a" else "callee"
            if self.answered and self.a_final_sent:
                other = self._other(leg)
                if other is not None:
                    self._bye(other)
                self._finish(NORMAL, self.record.ended_by)
            else:
                # a BYE on an early dialog: that side gave up before the answer reached A
                self.hangup(NORMAL, status=487, ended_by=self.record.ended_by)
            return
        if method == "INFO" and request.content_type in ("application/dtmf-relay", "application/dtmf"):
            self._info_dtmf(leg, request, transaction)
            return
        if method in ("INVITE", "UPDATE") and self.answered and self.active:
            self._session_request(leg, request, transaction)
            return
        if method == "INFO" and self.answered and self.active:
            self._relay_request(leg, request, transaction)
            return
        if method == "OPTIONS":
            self._respond_in(leg, request, transaction, 200)
            return
        self._respond_in(leg, request, transaction, 491 if method in ("INVITE", "UPDATE") else 501)

    def _on_ack(self, leg: Leg) -> None:
        if leg.name == "a" and self.answered and self.a_final_sent:
            if not self.record.established:
                self._slim()
            self.record.established = True  # the caller has the answer: the call is connected

    def _respond_in(
        self,
        leg: Leg,
        request: Request,
        transaction: TransactionId,
        status: int,
        *,
        body: bytes = b"",
        reason: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        dialog = leg.dialog
        assert dialog is not None
        if body:
            leg.sdp_sent = body
        response = dialog.make_response(
            request, status, reason, body=body, content_type=SDP if body else None, extra=extra or ()
        )
        dialog.response_sent(request, response, self.host.now())
        self.host.send_response(response, transaction)

    def _session_request(self, leg: Leg, request: Request, transaction: TransactionId) -> None:
        """A re-INVITE or UPDATE from a party of the answered call."""
        timer = self.st.get(leg.name)
        if timer is not None and leg.dialog is not None:
            refusal = timer.on_request(request, to_tag=leg.dialog.id.local_tag)
            if refusal is not None:
                self.host.send_response(refusal, transaction)
                return
        if not request.body:
            # a session refresh (or an offerless UPDATE): answered here, nothing changes
            self._answer_refresh(leg, request, transaction)
            return
        self._relay_request(leg, request, transaction)

    def _answer_refresh(self, leg: Leg, request: Request, transaction: TransactionId) -> None:
        timer = self.st.get(leg.name)
        extra = timer.response_headers() if timer is not None else None
        body = leg.sdp_sent if request.method == "INVITE" else b""  # an offerless re-INVITE gets our offer
        self._respond_in(leg, request, transaction, 200, body=body, extra=extra)
        if timer is not None:
            timer.on_answered(self.host.now())
            self.st.arm(leg.name)

    def _info_dtmf(self, leg: Leg, request: Request, transaction: TransactionId) -> None:
        digits, duration = parse_dtmf_info(request)
        if not digits:
            self._respond_in(leg, request, transaction, 400, reason="Bad DTMF")
            return
        self._respond_in(leg, request, transaction, 200)
        other = self._other(leg)
        if other is None or not self.answered or not self.active:
            return
        if self.media_proxy:  # the engine keeps the leg's first-kind lock (docs/decisions.md "DTMF")
            args = (self.call_id, self._media_tag(leg), digits, max(100, min(duration, 5000)), -8, "info")
            self.host.media(self, "play_dtmf", args, partial(_info_refused, self.call_id, leg.name))
            return
        for digit in digits:
            self._send_info_dtmf(other, digit, duration)

    def _send_in_dialog(
        self, leg: Leg, method: str, body: bytes, content_type: str | None
    ) -> TransactionId | None:
        """Send a request in ``leg``'s dialog (with its session-timer headers); None when the
        dialog cannot take one now."""
        dialog = leg.dialog
        if dialog is None or dialog.terminated:
            return None
        timer = self.st.get(leg.name)
        headers = timer.request_headers() if timer is not None and method != "INFO" else []
        try:
            request = dialog.create_request(method, body=body, content_type=content_type, extra=headers)
        except ValueError:
            return None
        return self.host.send_request(self, request, leg.addr, leg.transport)

    def _relay_request(self, leg: Leg, request: Request, transaction: TransactionId) -> None:
        other = self._other(leg)
        if other is None or other.dialog is None or other.dialog.terminated:
            self._respond_in(leg, request, transaction, 481)
            return
        if request.body and request.content_type == SDP:
            reoffer.relay_offer(self, leg, other, request, transaction)  # signaling/b2bua/reoffer.py
            return
        content_type = request.headers.get("Content-Type") if request.body else None
        tid = self._send_in_dialog(other, request.method, request.body, content_type)
        if tid is None:
            self._respond_in(leg, request, transaction, 491)
            return
        self.relayed[tid] = Pending(leg.name, request, transaction)

    def _relay_response(self, transaction: TransactionId, pending: Pending, response: Response) -> None:
        origin = self.leg(pending.origin)
        if origin is None:
            return
        other = self._other(origin)
        if other is not None and other.dialog is not None:
            resend = other.dialog.receive_response(response)
            if resend is not None:
                self.host.send_ack(resend, other.addr, other.transport)
        if response.status < 200:
            return
        self.relayed.pop(transaction, None)
        is_2xx = response.status < 300
        if is_2xx and pending.request.method == "INVITE" and other is not None and other.dialog is not None:
            self.host.send_ack(other.dialog.create_ack(response.cseq.number), other.addr, other.transport)
        if pending.offer_media and other is not None:
            if self.active:
                reoffer.answered(self, origin, other, pending, response)
            elif not pending.restore:  # the call ended meanwhile
                status = response.status if response.status >= 300 else 487
                self._respond_in(origin, pending.request, pending.transaction, status)
            return
        self._respond_in(
            origin,
            pending.request,
            pending.transaction,
            response.status,
            body=response.body if is_2xx else b"",
            reason=response.reason,
        )

    def on_transaction_failed(self, transaction: TransactionId, status: int) -> None:
        """Our request on a leg got no answer (timeout) or could not be sent."""
        refreshed_leg = self.st.in_flight.pop(transaction, None)
        if refreshed_leg is not None:
            timer = self.st.get(refreshed_leg)
            if timer is not None and self.active:
                self.st.apply(refreshed_leg, timer.on_timeout(self.host.now()))
            return
        attempt = self.attempt
        if attempt is not None and attempt.transaction == transaction and not self.answered:
            if not attempt.cancelled and self.active:
                self._b_failed(attempt, make_response(attempt.request, status))
            return
        pending = self.relayed.pop(transaction, None)
        if pending is not None:
            origin = self.leg(pending.origin)
            if origin is not None and not pending.restore:
                self._respond_in(origin, pending.request, pending.transaction, status)
            if status in (408, 481):
                self.hangup(f"SIP {status}")
            elif pending.offer_media and self.active:
                reoffer.failed(self, pending, status)


__all__ = [
    "CODEC_MISMATCH",
    "MEDIA_FAILURE",
    "Addr",
    "Attempt",
    "Call",
    "CallHost",
    "Continuation",
    "DialogId",
    "Leg",
    "MediaPort",
    "MediaResult",
    "Pending",
    "parse_dtmf_info",
    "rtp_packets_by_party",
]
