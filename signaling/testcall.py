"""A test call placed with our own SIP stack: the sans-IO user agent behind ``softswitch call``.

Theory of operation
-------------------
:class:`TestCall` is one UAC call, fed ``receive(data, addr, now)`` and ``handle_timeout(now)``
by an adapter (signaling/testcall_io.py) that owns the sockets and the clock, and emptying
:meth:`TestCall.outbox` onto the wire. It drives a :class:`TransactionLayer` for its client
transactions (INVITE, BYE, CANCEL) and the node's requests, and a :class:`Dialog` once answered::

    start ──INVITE──► calling ──1xx──► ringing ──2xx──► answered ──hang_up()──► ending ──► done
       401/407: INVITE again with credentials (once per challenge; a wrong password fails)
       3xx-6xx, timeout, transport error ──────────────────────────────────────────► done
       cancel() while calling/ringing: CANCEL, then the 487 ends it ───────────────► done
       BYE from the node while answered: 200, then ────────────────────────────────► done

A 2xx is acknowledged at once (and again if it is retransmitted); re-INVITEs and UPDATEs from the
node (session timers) are answered 200 with the same SDP. Every response and request is
remembered with its time (:attr:`TestCall.events`) for the report. Media is the adapter's: it
reads :attr:`TestCall.remote_media` and :attr:`TestCall.payload_type` from the answer.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import Enum

from signaling.sip.auth import DigestClient
from signaling.sip.dialog import Dialog, make_request
from signaling.sip.ids import new_call_id
from signaling.sip.message import Request, Response, Via, make_response
from signaling.sip.parser import SipParseError, is_keepalive, parse_message
from signaling.sip.timers import TimerConfig
from signaling.sip.transaction import (
    AckReceived,
    Addr,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionId,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    TransportError,
)

#: G.711 payload types we offer, in our order of preference (RFC 3551).
PCMA, PCMU = 8, 0
TELEPHONE_EVENT = 101


class Phase(Enum):
    CALLING = "calling"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDING = "ending"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: ``at`` seconds after the start."""

    at: float
    what: str


@dataclass(slots=True)
class Outcome:
    call_id: str
    #: Final status of the INVITE (None: no final response).
    status: int | None = None
    reason: str = ""
    #: Seconds after the start.
    ring_at: float | None = None
    answer_at: float | None = None
    end_at: float | None = None
    #: "us" (our BYE or CANCEL), "node" (its BYE), "" (never answered).
    ended_by: str = ""
    bye_status: int | None = None
    challenged: bool = False
    events: list[Event] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.answer_at is not None


def offer_sdp(ip: str, rtp_port: int) -> bytes:
    session = secrets.randbelow(2**31)
    family = "IP6" if ":" in ip else "IP4"
    lines = [
        "v=0",
        f"o=softswitch-call {session} {session} IN {family} {ip}",
        "s=softswitch call",
        f"c=IN {family} {ip}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP {PCMA} {PCMU} {TELEPHONE_EVENT}",
        f"a=rtpmap:{PCMA} PCMA/8000",
        f"a=rtpmap:{PCMU} PCMU/8000",
        f"a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000",
        f"a=fmtp:{TELEPHONE_EVENT} 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


_CONNECTION = re.compile(r"^c=IN IP[46] (\S+)", re.M)
_AUDIO = re.compile(r"^m=audio (\d+) RTP/\S+ ([\d ]+)", re.M)


def answer_media(body: bytes) -> tuple[Addr, int] | None:
    """(media address, G.711 payload type to send) from an SDP answer; None when it has no
    audio stream we can send (no c= line, port 0, or neither PCMA nor PCMU)."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    audio = _AUDIO.search(text)
    if audio is None or int(audio.group(1)) == 0:
        return None
    # a media-level c= (after the m= line) wins over the session-level one
    media_c = _CONNECTION.search(text, audio.end())
    session_c = _CONNECTION.search(text[: audio.start()])
    found = media_c or session_c
    if found is None:
        return None
    pts = [int(p) for p in audio.group(2).split()]
    pt = next((p for p in pts if p in (PCMA, PCMU)), None)
    if pt is None:
        return None
    return (found.group(1), int(audio.group(1))), pt


class TestCall:
    """One outgoing call; see the module docstring."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        *,
        target: Addr,
        local: Addr,
        callee: str,
        caller: str,
        rtp_port: int,
        credentials: DigestClient | None = None,
        timers: TimerConfig | None = None,
    ) -> None:
        self.target = target
        self.local = local
        host = f"[{target[0]}]" if ":" in target[0] else target[0]
        me = f"[{local[0]}]" if ":" in local[0] else local[0]
        self.uri = f"sip:{callee}@{host}:{target[1]}"
        self.from_addr = f'"softswitch call" <sip:{caller}@{me}>'
        self.to_addr = f"<sip:{callee}@{host}:{target[1]}>"
        self.contact = f"<sip:{caller}@{me}:{local[1]}>"
        self.via = Via("UDP", local[0], local[1], {"rport": None})
        self.sdp = offer_sdp(local[0], rtp_port)
        self.credentials = credentials
        self.layer = TransactionLayer(timers)
        self.phase = Phase.CALLING
        self.outcome = Outcome(call_id=new_call_id(local[0]))
        self.remote_media: Addr | None = None
        self.payload_type = PCMA
        self.dialog: Dialog | None = None
        self._started = 0.0
        self._invite: Request | None = None
        self._invite_tx: TransactionId | None = None
        self._bye: Request | None = None
        self._bye_tx: TransactionId | None = None
        self._from_tag = ""
        self._cancelled = False
        self._out: list[tuple[bytes, Addr]] = []

    # -- the adapter's side ------------------------------------------------------------------------

    def start(self, now: float) -> None:
        self._started = now
        invite = make_request(
            "INVITE",
            self.uri,
            from_addr=self.from_addr,
            to_addr=self.to_addr,
            via=self.via,
            contact=self.contact,
            call_id=self.outcome.call_id,
            body=self.sdp,
            content_type="application/sdp",
            extra=[("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"), ("User-Agent", "softswitch call")],
        )
        self._from_tag = invite.from_.tag or ""
        self._send_invite(invite, now)

    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        if is_keepalive(data):
            return
        try:
            message = parse_message(data)
        except SipParseError:
            self._note(now, "ignored an unparsable message")
            return
        self.layer.receive(message, addr, now, "UDP")
        self._drain(now)

    def poll_timeout(self) -> float | None:
        return self.layer.poll_timeout()

    def handle_timeout(self, now: float) -> None:
        self.layer.handle_timeout(now)
        self._drain(now)

    def outbox(self) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def hang_up(self, now: float) -> None:
        """End the call: BYE when answered, CANCEL while it rings, nothing once it ended."""
        if self.phase is Phase.ANSWERED and self.dialog is not None:
            self._send_bye(self.dialog.create_request("BYE"), now)
        elif self.phase in (Phase.CALLING, Phase.RINGING):
            self.cancel(now)

    def cancel(self, now: float) -> None:
        if self._invite_tx is None or self._cancelled or self.phase not in (Phase.CALLING, Phase.RINGING):
            return
        self._cancelled = True
        self.outcome.ended_by = "us"
        if self.phase is Phase.CALLING:
            # Nothing came back at all: a CANCEL may not be sent before a provisional (RFC 3261
            # §9.1), and waiting for Timer B tells the operator nothing more. Give up now.
            self._note(now, "no response in time; gave up")
            self.outcome.reason = "no response"
            self._finish(now)
            return
        self._note(now, "CANCEL sent (no answer in time)")
        self.layer.cancel(self._invite_tx, now)
        self._drain(now)

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    # -- internals -----------------------------------------------------------------------------------

    def _elapsed(self, now: float) -> float:
        return round(now - self._started, 3)

    def _note(self, now: float, what: str) -> None:
        self.outcome.events.append(Event(self._elapsed(now), what))

    def _finish(self, now: float) -> None:
        if self.phase is not Phase.DONE:
            self.phase = Phase.DONE
            self.outcome.end_at = self._elapsed(now)

    def _send_invite(self, invite: Request, now: float) -> None:
        self._invite = invite
        self._invite_tx = self.layer.send_request(invite, self.target, now)
        self._drain(now)

    def _send_bye(self, bye: Request, now: float) -> None:
        self.phase = Phase.ENDING
        self.outcome.ended_by = self.outcome.ended_by or "us"
        self._bye = bye
        self._bye_tx = self.layer.send_request(bye, self.target, now)
        self._note(now, "BYE sent")
        self._drain(now)

    def _drain(self, now: float) -> None:
        for event in self.layer.events():
            if isinstance(event, Transmit):
                self._out.append((event.data, event.addr))
            elif isinstance(event, ResponseReceived):
                self._response(event.transaction, event.response, now)
            elif isinstance(event, StrayResponse):
                self._repeat_ack(event.response)
            elif isinstance(event, RequestReceived):
                self._request(event, now)
            elif isinstance(event, AckReceived):
                if self.dialog is not None:
                    self.dialog.receive_request(event.request)
            elif isinstance(event, TransactionTimeout | TransportError):
                self._lost(
                    event.transaction, now, "timeout" if isinstance(event, TransactionTimeout) else "error"
                )

    def _lost(self, tid: TransactionId, now: float, kind: str) -> None:
        if tid == self._invite_tx and self.phase in (Phase.CALLING, Phase.RINGING):
            status, reason = (408, "no response") if kind == "timeout" else (503, "could not send")
            self.outcome.status, self.outcome.reason = status, reason
            self._note(now, f"INVITE: {reason}")
            self._finish(now)
        elif tid == self._bye_tx:
            self.outcome.bye_status = 408 if kind == "timeout" else 503
            self._note(now, "BYE: no response")
            self._finish(now)

    def _response(self, tid: TransactionId, response: Response, now: float) -> None:
        if tid == self._invite_tx:
            self._invite_response(response, now)
        elif tid == self._bye_tx:
            self._bye_response(response, now)

    def _invite_response(self, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            self._note(now, f"{status} {response.reason}")
            if status in (180, 183) and self.outcome.ring_at is None:
                self.outcome.ring_at = self._elapsed(now)
            if self.phase is Phase.CALLING:
                self.phase = Phase.RINGING
            return
        if status < 300:
            self._answered(response, now)
            return
        self._note(now, f"{status} {response.reason}")
        if status in (401, 407) and self._retry_with_credentials(response, now):
            return
        self.outcome.status, self.outcome.reason = status, response.reason
        self._finish(now)

    def _retry_with_credentials(self, challenge: Response, now: float) -> bool:
        self.outcome.challenged = True
        assert self._invite is not None
        if self.credentials is None:
            return False
        answer = self.credentials.answer(challenge, "INVITE", self.uri, self.sdp, previous=self._invite)
        if answer is None:  # a realm we cannot answer, or our password was refused
            return False
        old = self._invite
        invite = make_request(
            "INVITE",
            self.uri,
            from_addr=self.from_addr,
            to_addr=self.to_addr,
            via=self.via,
            contact=self.contact,
            call_id=self.outcome.call_id,
            cseq=old.cseq.number + 1,
            from_tag=self._from_tag,
            body=self.sdp,
            content_type="application/sdp",
            extra=[*(h for h in old.headers if h[0] in ("Allow", "User-Agent")), *answer],
        )
        self._note(now, "INVITE again with credentials")
        self._send_invite(invite, now)
        return True

    def _answered(self, response: Response, now: float) -> None:
        if self.dialog is not None:
            self._repeat_ack(response)
            return
        assert self._invite is not None
        self.outcome.status, self.outcome.reason = response.status, response.reason
        self.outcome.answer_at = self._elapsed(now)
        self._note(now, f"{response.status} {response.reason}")
        self.dialog = Dialog.from_uac(self._invite, response, via=self.via, local_contact=self.contact)
        ack = self.dialog.create_ack(self._invite.cseq.number)
        self.layer.send_stateless(ack, self.target)
        media = answer_media(response.body)
        if media is not None:
            self.remote_media, self.payload_type = media
        self.phase = Phase.ANSWERED
        if self._cancelled or media is None:  # answered after our CANCEL, or nothing to talk to
            if media is None:
                self._note(now, "the answer has no G.711 audio stream we can send to")
            self._send_bye(self.dialog.create_request("BYE"), now)

    def _repeat_ack(self, response: Response) -> None:
        if self.dialog is None or response.cseq.method != "INVITE" or not 200 <= response.status < 300:
            return
        ack = self.dialog.receive_response(response)
        if ack is not None:
            self.layer.send_stateless(ack, self.target)

    def _bye_response(self, response: Response, now: float) -> None:
        if response.status < 200:
            return
        self._note(now, f"BYE: {response.status} {response.reason}")
        if response.status in (401, 407) and self.credentials is not None and self._bye is not None:
            assert self.dialog is not None
            answer = self.credentials.answer(response, "BYE", self._bye.uri, previous=self._bye)
            if answer is not None:
                self._send_bye(self.dialog.create_request("BYE", extra=answer), now)
                return
        self.outcome.bye_status = response.status
        if self.dialog is not None:
            self.dialog.receive_response(response)
        self._finish(now)

    def _request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        dialog = self.dialog
        if dialog is None or request.call_id != dialog.id.call_id:
            self.layer.send_response(make_response(request, 481), now, event.transaction)
            self._drain(now)
            return
        rejected = dialog.receive_request(request)
        if rejected is not None:
            response = dialog.make_response(request, rejected)
        elif request.method == "BYE":
            response = dialog.make_response(request, 200)
            self._note(now, "BYE from the node")
            self.outcome.ended_by = self.outcome.ended_by or "node"
            self._finish(now)
        elif request.method in ("INVITE", "UPDATE"):
            body = self.sdp if request.body else b""
            response = dialog.make_response(
                request, 200, body=body, content_type="application/sdp" if body else None
            )
        elif request.method in ("OPTIONS", "INFO"):
            response = dialog.make_response(request, 200)
        else:
            response = dialog.make_response(request, 501)
        self.layer.send_response(response, now, event.transaction)
        dialog.response_sent(request, response, now)
        self._drain(now)
