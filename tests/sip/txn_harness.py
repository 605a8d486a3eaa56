"""Test support for the transaction and dialog tests: message builders, a fake-clock driver
for one TransactionLayer, and a zero-latency loopback network joining two user agents.

Nothing here sleeps or reads the clock: time is the float each test advances.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from signaling.sip.dialog import (
    AckTimeout,
    Dialog,
    DialogTable,
    Retransmit2xx,
    dialog_id_of_response,
    make_request,
)
from signaling.sip.ids import new_tag
from signaling.sip.message import Headers, Request, Response, Via, make_response
from signaling.sip.timers import TimerConfig
from signaling.sip.transaction import (
    AckReceived,
    Addr,
    Event,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionId,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
)

CLIENT_ADDR: Addr = ("192.0.2.10", 5060)
SERVER_ADDR: Addr = ("192.0.2.20", 5060)


def build_request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK-test-1",
    via_host: str = "192.0.2.10",
    via_port: int | None = 5060,
    transport: str = "UDP",
    cseq: int = 1,
    cseq_method: str | None = None,
    call_id: str = "call-1@192.0.2.10",
    from_tag: str | None = "from-1",
    to_tag: str | None = None,
    uri: str = "sip:bob@192.0.2.20",
    extra: tuple[tuple[str, str], ...] = (),
) -> Request:
    """A request as a peer would send it; ``branch=None`` gives an RFC 2543 Via."""
    params: dict[str, str | None] = {} if branch is None else {"branch": branch}
    headers = Headers()
    headers.add("Via", str(Via(transport, via_host, via_port, params)))
    headers.add("Max-Forwards", "70")
    headers.add("From", "<sip:alice@192.0.2.10>" + (f";tag={from_tag}" if from_tag else ""))
    headers.add("To", "<sip:bob@192.0.2.20>" + (f";tag={to_tag}" if to_tag else ""))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {cseq_method or method}")
    headers.add("Contact", "<sip:alice@192.0.2.10:5060>")
    for name, value in extra:
        headers.add(name, value)
    return Request(method=method, uri=uri, headers=headers)


def respond(request: Request, status: int, to_tag: str | None = "to-1") -> Response:
    return make_response(request, status, to_tag=to_tag)


def ack_for(request: Request, response: Response) -> Request:
    """The ACK a (non-2xx) INVITE client sends: the INVITE's Via, the response's To."""
    ack = copy.deepcopy(request)
    ack.method = "ACK"
    ack.headers.set("To", response.headers.get("To") or "")
    ack.headers.set("CSeq", f"{request.cseq.number} ACK")
    return ack


def transmits(events: list[Event]) -> list[Transmit]:
    return [e for e in events if isinstance(e, Transmit)]


def sent_response(event: object) -> Response:
    """The response a Transmit event carries (fails the test otherwise)."""
    assert isinstance(event, Transmit), event
    assert isinstance(event.message, Response), event.message
    return event.message


def sent_request(event: object) -> Request:
    assert isinstance(event, Transmit), event
    assert isinstance(event.message, Request), event.message
    return event.message


def run(layer: TransactionLayer, until: float) -> list[tuple[float, Event]]:
    """Fire every timer due up to ``until`` in order; each event with the instant it came out."""
    out: list[tuple[float, Event]] = [(-1.0, e) for e in layer.events()]
    while True:
        due = layer.poll_timeout()
        if due is None or due > until:
            return out
        layer.handle_timeout(due)
        out.extend((due, e) for e in layer.events())


def times_of(timeline: list[tuple[float, Event]], kind: type, method: str | None = None) -> list[float]:
    found = []
    for t, event in timeline:
        if not isinstance(event, kind):
            continue
        if method is not None and isinstance(event, Transmit):
            msg = event.message
            if not isinstance(msg, Request) or msg.method != method:
                continue
        found.append(t)
    return found


# -- two user agents over a loopback network ------------------------------------------------------


@dataclass
class Wire:
    """What crossed the network, for assertions."""

    time: float
    src: Addr
    dst: Addr
    message: Request | Response
    dropped: bool


@dataclass
class UA:
    """A minimal user agent on our transaction layer and dialogs: answers INVITE/re-INVITE/
    UPDATE/BYE with 2xx, ACKs 2xx, re-sends ACKs, retransmits 2xx until ACK."""

    name: str
    addr: Addr
    timers: TimerConfig = field(default_factory=TimerConfig)
    layer: TransactionLayer = field(init=False)
    dialogs: DialogTable = field(default_factory=DialogTable)
    log: list[tuple[float, object]] = field(default_factory=list)
    #: our INVITE client transactions: transaction → the INVITE
    invites: dict[TransactionId, Request] = field(default_factory=dict)
    #: server transaction → request, so responses can be reported to the dialog
    incoming: dict[TransactionId, Request] = field(default_factory=dict)
    answer_status: int = 200

    def __post_init__(self) -> None:
        self.layer = TransactionLayer(self.timers)

    @property
    def via(self) -> Via:
        return Via("UDP", self.addr[0], self.addr[1], {"rport": None})

    @property
    def contact(self) -> str:
        return f"<sip:{self.name}@{self.addr[0]}:{self.addr[1]}>"

    def call(self, peer: UA, now: float) -> Request:
        invite = make_request(
            "INVITE",
            f"sip:{peer.name}@{peer.addr[0]}:{peer.addr[1]}",
            from_addr=f"<sip:{self.name}@example.net>",
            to_addr=f"<sip:{peer.name}@example.net>",
            via=self.via,
            contact=self.contact,
            body=b"v=0\r\n",
            content_type="application/sdp",
        )
        tid = self.layer.send_request(invite, peer.addr, now)
        self.invites[tid] = invite
        return invite

    def send_in_dialog(self, dialog: Dialog, method: str, now: float) -> Request:
        request = dialog.create_request(method)
        tid = self.layer.send_request(request, _addr_of(dialog.remote_target), now)
        if method == "INVITE":
            self.invites[tid] = request
        return request

    # -- the TU --------------------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> None:
        self.log.append((now, event))
        if isinstance(event, RequestReceived):
            self._on_request(event.transaction, event.request, now)
        elif isinstance(event, AckReceived):
            dialog = self.dialogs.for_request(event.request)
            if dialog is not None:
                dialog.receive_request(event.request)
        elif isinstance(event, ResponseReceived | StrayResponse):
            self._on_response(event.response, now)

    def _on_request(self, tid: TransactionId, request: Request, now: float) -> None:
        if not request.to.tag:  # a new call
            dialog = Dialog.from_uas(request, local_tag=new_tag(), local_contact=self.contact, via=self.via)
            self.dialogs.add(dialog)
            status = self.answer_status
            response = dialog.make_response(request, status, body=b"v=0\r\n", content_type="application/sdp")
            self.layer.send_response(response, now, tid)
            dialog.response_sent(request, response, now)
            if dialog.terminated:
                self.dialogs.remove(dialog.id)
            return
        found = self.dialogs.for_request(request)
        if found is None:
            self.layer.send_response(make_response(request, 481), now, tid)
            return
        reject = found.receive_request(request)
        status = reject if reject is not None else 200
        response = found.make_response(request, status)
        self.layer.send_response(response, now, tid)
        found.response_sent(request, response, now)
        if found.terminated:
            self.dialogs.remove(found.id)

    def _on_response(self, response: Response, now: float) -> None:
        dialog = self.dialogs.for_response(response)
        cseq = response.cseq
        if dialog is None:
            invite = next(
                (r for r in self.invites.values() if r.cseq == cseq and _same_call(r, response)), None
            )
            if invite is None or not 100 < response.status < 300 or not response.to.tag:
                return
            dialog = self.dialogs.add(Dialog.from_uac(invite, response, via=self.via))
        resend = dialog.receive_response(response)
        if resend is not None:
            self.layer.send_stateless(resend, _addr_of(dialog.remote_target))
        elif cseq.method == "INVITE" and 200 <= response.status < 300:
            ack = dialog.create_ack(cseq.number)
            self.layer.send_stateless(ack, _addr_of(dialog.remote_target))
        if dialog.terminated:
            self.dialogs.remove(dialog.id)

    def on_dialog_action(self, action: object, now: float) -> None:
        self.log.append((now, action))
        if isinstance(action, Retransmit2xx):
            self.layer.send_response(action.response, now)
        elif isinstance(action, AckTimeout):  # what the B2BUA does: end the session
            dialog = self.dialogs.get(action.dialog_id)
            if dialog is not None:
                self.send_in_dialog(dialog, "BYE", now)


def _same_call(request: Request, response: Response) -> bool:
    dialog_id = dialog_id_of_response(response)
    return dialog_id is not None and request.call_id == dialog_id.call_id


def _addr_of(uri: str) -> Addr:
    host_port = uri.split("@", 1)[-1].split(";", 1)[0]
    host, _, port = host_port.partition(":")
    return host, int(port or 5060)


class Network:
    """Zero-latency delivery between user agents, with an optional loss rule, and one loop
    that advances a fake clock to the next timer of any layer, dialog or scheduled task."""

    def __init__(self, *agents: UA) -> None:
        self.agents = {agent.addr: agent for agent in agents}
        self.now = 0.0
        self.wire: list[Wire] = []
        self.drop: Callable[[Wire], bool] = lambda _w: False
        self._tasks: list[tuple[float, int, Callable[[float], object]]] = []
        self._seq = 0

    def at(self, when: float, task: Callable[[float], object]) -> None:
        self._seq += 1
        heapq.heappush(self._tasks, (when, self._seq, task))

    def pump(self) -> None:
        busy = True
        while busy:
            busy = False
            for agent in list(self.agents.values()):
                for event in agent.layer.events():
                    busy = True
                    if isinstance(event, Transmit):
                        self._deliver(agent, event)
                    else:
                        agent.handle(event, self.now)

    def _deliver(self, sender: UA, transmit: Transmit) -> None:
        wire = Wire(self.now, sender.addr, transmit.addr, copy.deepcopy(transmit.message), False)
        wire.dropped = self.drop(wire)
        self.wire.append(wire)
        receiver = self.agents.get(transmit.addr)
        if receiver is not None and not wire.dropped:
            receiver.layer.receive(copy.deepcopy(transmit.message), sender.addr, self.now, transmit.transport)

    def _next_deadline(self) -> float | None:
        deadlines = [
            t for a in self.agents.values() for t in (a.layer.poll_timeout(), a.dialogs.poll_timeout())
        ]
        if self._tasks:
            deadlines.append(self._tasks[0][0])
        present = [t for t in deadlines if t is not None]
        return min(present) if present else None

    def run(self, until: float) -> None:
        self.pump()
        while True:
            due = self._next_deadline()
            if due is None or due > until:
                break
            self.now = max(self.now, due)
            for agent in self.agents.values():
                agent.layer.handle_timeout(self.now)
                for action in agent.dialogs.handle_timeout(self.now):
                    agent.on_dialog_action(action, self.now)
                self.pump()
            while self._tasks and self._tasks[0][0] <= self.now:
                _, _, task = heapq.heappop(self._tasks)
                task(self.now)
                self.pump()
        self.now = max(self.now, until)

    def sent(self, method_or_status: str | int, *, delivered_only: bool = False) -> list[Wire]:
        out = []
        for w in self.wire:
            msg = w.message
            key: str | int = msg.method if isinstance(msg, Request) else msg.status
            if key == method_or_status and not (delivered_only and w.dropped):
                out.append(w)
        return out


def ack_timeouts(agent: UA) -> list[AckTimeout]:
    return [a for _, a in agent.log if isinstance(a, AckTimeout)]


def timeouts(agent: UA) -> list[TransactionTimeout]:
    return [e for _, e in agent.log if isinstance(e, TransactionTimeout)]
