"""Dialogs (RFC 3261 §12 to §15), sans-IO: identity, route set, remote target, CSeq bookkeeping,
in-dialog request construction, and the UA-core retransmission duties around INVITE 2xx.

Theory of operation
-------------------
A :class:`Dialog` is created from the transaction that establishes it:

* UAC side, :meth:`Dialog.from_uac`, from our INVITE and a 1xx carrying a To tag (an *early*
  dialog) or a 2xx (*confirmed*). Several To tags for one INVITE (forking) make several
  dialogs; :class:`DialogTable` keeps them apart by :class:`DialogId`.
* UAS side, :meth:`Dialog.from_uas`, from a received INVITE and the To tag we chose; it is
  early until we send a 2xx (``response_sent``).

Whichever side created it, a dialog then sends and receives requests both ways:

* sending: :meth:`create_request` (BYE, re-INVITE, UPDATE, INFO, …: next local CSeq, Route
  and Request-URI from the route set and remote target) and :meth:`create_ack` for a 2xx
  (the INVITE's CSeq number). Responses to what we sent go to :meth:`receive_response`, which
  confirms or ends the dialog, refreshes the remote target, and — when the 2xx is a
  retransmission of one we already acknowledged — returns the ACK to send again (the UAC core's
  duty, RFC 3261 §13.2.2.4).
* receiving: :meth:`receive_request` checks the CSeq (lower or equal → 500, §12.2.2), glare
  (491) and overlapping INVITEs (500), and an ACK stops the 2xx retransmission. Responses we
  send are built with :meth:`make_response` and reported with :meth:`response_sent`: a 2xx to
  INVITE confirms the dialog and starts the UAS core's 2xx retransmission (T1 doubling up to
  T2) until the ACK comes; after 64*T1 without ACK, :meth:`handle_timeout` yields
  :class:`AckTimeout` (the B2BUA sends BYE). Target refresh happens when the 2xx to a
  re-INVITE/UPDATE is sent or received (RFC 6141).

The dialog reads no clock: ``poll_timeout()`` says when ``handle_timeout(now)`` is due. It
never touches the network either; the TU sends what it builds through the transaction layer
(2xx retransmissions through ``TransactionLayer.send_response``, which the INVITE server
transaction passes on while in Accepted; ACKs through ``send_stateless``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from .ids import new_branch, new_call_id, new_cseq, new_tag
from .message import (
    Headers,
    NameAddr,
    Request,
    Response,
    SipUri,
    Via,
    cached_name_addr,
    cached_via,
    make_response,
    parse_name_addr,
    serialize,
)
from .parser import parse_message
from .timers import TimerConfig

__all__ = [
    "TARGET_REFRESH_METHODS",
    "AckTimeout",
    "Dialog",
    "DialogAction",
    "DialogError",
    "DialogId",
    "DialogState",
    "DialogTable",
    "Retransmit2xx",
    "dialog_id_of_request",
    "dialog_id_of_response",
    "make_request",
    "new_branch",
    "new_call_id",
    "new_cseq",
    "new_tag",
    "next_hop",
]

#: Methods whose Contact replaces the remote target when they succeed (RFC 3261 §12.2,
#: RFC 3311, RFC 6665, RFC 3515).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogError(ValueError):
    """The TU asked for something this dialog cannot do (our bug, not the peer's)."""


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogId(NamedTuple):
    """RFC 3261 §12: Call-ID, local tag, remote tag. A named tuple: made and hashed (every
    in-dialog message looks its dialog up) as a tuple is, in C."""

    call_id: str
    local_tag: str
    remote_tag: str


def dialog_id_of_request(request: Request) -> DialogId | None:
    """The dialog a received request belongs to (we are its UAS: our tag is in To)."""
    try:
        local, remote = request.to_tag, request.from_tag
    except ValueError:
        return None
    if not local or not remote:
        return None
    return DialogId(request.call_id, local, remote)


def dialog_id_of_response(response: Response) -> DialogId | None:
    """The dialog a response to our request belongs to (our tag is in From)."""
    try:
        local, remote = response.from_tag, response.to_tag
    except ValueError:
        return None
    if not local or not remote:
        return None
    return DialogId(response.call_id, local, remote)


@dataclass(frozen=True, slots=True)
class Retransmit2xx:
    """Send this 2xx again (``TransactionLayer.send_response``): no ACK yet."""

    dialog_id: DialogId
    response: Response


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """No ACK for our 2xx to the INVITE with this CSeq within 64*T1: end the session (BYE)."""

    dialog_id: DialogId
    cseq: int


DialogAction = Retransmit2xx | AckTimeout


@dataclass(slots=True)
class _Retransmission:
    response: Response
    cseq: int
    sent: int
    next_at: float
    give_up_at: float


def _contact_uri(message: Request | Response) -> str | None:
    first = message.headers.first_value("Contact")
    if first is None:
        return None
    try:
        return cached_name_addr(first).uri
    except ValueError:
        return None


def _is_loose(route: str) -> bool:
    try:
        uri = cached_name_addr(route).uri
        return "lr" in SipUri.parse(uri).params
    except ValueError:
        return ";lr" in route.lower()


def _top_via_shared(request: Request) -> Via:
    """The request's top Via as the shared parse (no copy: a dialog only reads it, to pick its
    Via template). ValueError when there is none, as ``request.top_via``."""
    top = request.headers.first_value("Via")
    if top is None:
        raise ValueError("no Via header")
    return cached_via(top)


#: the timers of dialogs created without their own (frozen: one object serves them all)
_DEFAULT_TIMERS = TimerConfig()
#: transport, host, port, the parameters kept, whether rport is asked for
_TemplateKey = tuple[str, str, int | None, tuple[tuple[str, str | None], ...], bool]
#: the Via parameters a template does not keep (each request has its own)
_NOT_KEPT = frozenset(("branch", "received", "rport"))
#: distinct Via templates in use (our address and transport: a handful), shared by dialogs
_VIA_TEMPLATES: dict[_TemplateKey, Via] = {}


def _template_key(via: Via) -> _TemplateKey:
    """What identifies a template in ``_VIA_TEMPLATES``: transport, host, port, the parameters
    it keeps, whether it asks for rport."""
    params = via.params
    if params.keys() <= _NOT_KEPT:  # ours: branch and rport only (three a call)
        return (via.transport, via.host, via.port, (), "rport" in params)
    kept = tuple((k, v) for k, v in params.items() if k not in _NOT_KEPT)
    return (via.transport, via.host, via.port, kept, "rport" in params)


def _via_template(via: Via) -> Via:
    """What :func:`_fresh_via` reads of ``via`` (transport, sent-by, the parameters it keeps,
    whether to ask for rport) as one shared object: each dialog keeps its Via template for the
    whole call, and they are all alike."""
    key = _template_key(via)
    shared = _VIA_TEMPLATES.get(key)
    if shared is None:
        params: dict[str, str | None] = dict(key[3])
        if "rport" in via.params:
            params["rport"] = None
        shared = Via(via.transport, via.host, via.port, params)
        if len(_VIA_TEMPLATES) < 256:
            _VIA_TEMPLATES[key] = shared
    return shared


#: a shared template (``_VIA_TEMPLATES``) → the text of its Via up to the branch (the template
#: is kept in the value: its id cannot be reused while the entry lives)
_VIA_PREFIXES: dict[int, tuple[Via, str]] = {}


def _fresh_via(template: Via) -> str:
    """A Via for a new request from ``template``: its sent-by and kept parameters, ``rport``
    asked for again if the template asks (never a stamped value copied) and a new branch."""
    known = _VIA_PREFIXES.get(id(template))
    if known is not None and known[0] is template:
        return known[1] + new_branch()
    params: dict[str, str | None] = {
        k: v for k, v in template.params.items() if k not in ("branch", "received", "rport")
    }
    if "rport" in template.params:
        params["rport"] = None
    prefix = str(Via(template.transport, template.host, template.port, params)) + ";branch="
    if _VIA_TEMPLATES.get(_template_key(template)) is template and len(_VIA_PREFIXES) < 256:
        _VIA_PREFIXES[id(template)] = (template, prefix)
    return prefix + new_branch()


def next_hop(request: Request) -> SipUri:
    """Where a request goes first (RFC 3261 §8.1.2): the top Route's URI when it is a loose
    router (``lr``), else the Request-URI — with a strict router first in the route set,
    §12.2.1.1 already put that router in the Request-URI. The adapter resolves the URI
    (RFC 3263) to an address."""
    routes = request.headers.values("Route")
    if routes and _is_loose(routes[0]):
        return SipUri.parse(NameAddr.parse(routes[0]).uri)
    return SipUri.parse(request.uri)


def make_request(
    method: str,
    uri: str,
    *,
    from_addr: str,
    to_addr: str,
    via: Via,
    contact: str | None = None,
    call_id: str | None = None,
    cseq: int | None = None,
    from_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    max_forwards: int = 70,
) -> Request:
    """An out-of-dialog request per RFC 3261 §8.1.1 (a new call's INVITE, OPTIONS, …):
    ``from_addr``/``to_addr`` are name-addrs without tag; From gets ``from_tag`` (or a new
    one), Via a new branch, and Call-ID / CSeq new values unless given."""
    from_party = parse_name_addr(from_addr)
    from_party.params["tag"] = from_tag or new_tag()
    headers = Headers()
    headers.add("Via", _fresh_via(_via_template(via)))
    headers.add("Max-Forwards", str(max_forwards))
    headers.add("From", str(from_party))
    headers.add("To", str(parse_name_addr(to_addr)))
    headers.add("Call-ID", call_id or new_call_id())
    headers.add("CSeq", f"{cseq if cseq is not None else new_cseq()} {method}")
    if contact is not None:
        headers.add("Contact", contact)
    for name, value in extra:
        headers.add(name, value)
    if body and content_type:
        headers.add("Content-Type", content_type)
    return Request(method=method, uri=uri, headers=headers, body=body)


class Dialog:
    """One dialog; see the module docstring."""

    # a node holds two dialogs per call for the whole call: no per-instance __dict__
    __slots__ = (
        "_incoming_invite",
        "_last_ack",
        "_local_party",
        "_outgoing_invite",
        "_remote_party",
        "_retransmission",
        "id",
        "invite_cseq",
        "is_uac",
        "local_contact",
        "local_seq",
        "remote_seq",
        "remote_target",
        "route_set",
        "secure",
        "state",
        "timers",
        "via",
    )

    def __init__(
        self,
        *,
        dialog_id: DialogId,
        is_uac: bool,
        state: DialogState,
        local_party: NameAddr | str,
        remote_party: NameAddr | str,
        local_seq: int | None,
        remote_seq: int | None,
        remote_target: str,
        route_set: list[str],
        secure: bool,
        invite_cseq: int,
        local_contact: str | None = None,
        via: Via | None = None,
        timers: TimerConfig | None = None,
    ) -> None:
        self.id = dialog_id
        #: True when we sent the request that created the dialog.
        self.is_uac = is_uac
        self.state = state
        # kept as the header text our requests carry (From, To): a string instead of a parsed
        # value with its parameter dictionary, twice per call for the whole call (a string is
        # taken as that text, formatted as ``str(NameAddr)`` formats)
        self._local_party = local_party if isinstance(local_party, str) else str(local_party)
        self._remote_party = remote_party if isinstance(remote_party, str) else str(remote_party)
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.remote_target = remote_target
        #: Route header values, in the order our requests carry them.
        self.route_set = route_set
        self.secure = secure
        #: CSeq number of the dialog-creating request.
        self.invite_cseq = invite_cseq
        #: Our Contact header value, put in target-refresh requests and their 2xx.
        self.local_contact = local_contact
        #: Template for the Via of requests we send (the branch is always new); one shared
        #: object per distinct template (see :func:`_via_template`)
        self.via = _via_template(via) if via is not None else None
        self.timers = timers if timers is not None else _DEFAULT_TIMERS
        self._outgoing_invite: int | None = None  # CSeq of our INVITE awaiting its final
        self._incoming_invite: int | None = invite_cseq if not is_uac else None
        #: the last ACK we sent for a 2xx, kept serialised (compact for a long call): a
        #: retransmitted 2xx gets it again
        self._last_ack: tuple[int, bytes] | None = None
        self._retransmission: _Retransmission | None = None

    # -- creation ----------------------------------------------------------------------------------

    @classmethod
    def from_uac(
        cls,
        request: Request,
        response: Response,
        *,
        via: Via | None = None,
        local_contact: str | None = None,
        timers: TimerConfig | None = None,
    ) -> Dialog:
        """The dialog a 1xx (with To tag) or 2xx to our ``request`` creates (§12.1.2)."""
        remote_tag = response.to_tag
        if not 100 < response.status < 300 or not remote_tag:
            raise DialogError(f"a {response.status} without To tag creates no dialog")
        local_party = request.from_parsed  # shared with the parse cache: only read here
        local_tag = local_party.tag
        if not local_tag:
            raise DialogError("our request has no From tag")
        contacts = request.headers.values("Contact")
        number = request.cseq.number
        dialog = cls(
            dialog_id=DialogId(request.call_id, local_tag, remote_tag),
            is_uac=True,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            local_party=str(local_party),
            remote_party=str(response.to_parsed),
            local_seq=number,
            remote_seq=None,
            remote_target=_contact_uri(response) or request.uri,
            route_set=list(reversed(response.headers.values("Record-Route"))),
            secure=request.uri.lower().startswith("sips:"),
            invite_cseq=number,
            local_contact=local_contact if local_contact is not None else (contacts[0] if contacts else None),
            via=via if via is not None else _top_via_shared(request),
            timers=timers,
        )
        if request.method == "INVITE" and response.status < 200:
            dialog._outgoing_invite = number
        return dialog

    @classmethod
    def from_uas(
        cls,
        request: Request,
        *,
        local_tag: str,
        local_contact: str | None,
        via: Via | None = None,
        timers: TimerConfig | None = None,
    ) -> Dialog:
        """The (early) dialog we create by answering ``request`` with To tag ``local_tag``
        (§12.1.1); it is confirmed when we send a 2xx."""
        remote_party = request.from_parsed  # shared with the parse cache: only read here
        remote_tag = remote_party.tag
        if not remote_tag:
            raise DialogError("a request without From tag (RFC 2543 peer) cannot form a dialog here")
        to = request.to_parsed
        if "tag" in to.params:
            tagged = request.to
            tagged.params["tag"] = local_tag
            local_party = str(tagged)
        else:  # the usual case: what str() of the copy with our tag appended would give
            local_party = f"{to};tag={local_tag}"
        number = request.cseq.number
        return cls(
            dialog_id=DialogId(request.call_id, local_tag, remote_tag),
            is_uac=False,
            state=DialogState.EARLY,
            local_party=local_party,
            remote_party=str(remote_party),
            local_seq=None,
            remote_seq=number,
            remote_target=_contact_uri(request) or request.uri,
            route_set=list(request.headers.values("Record-Route")),
            secure=request.uri.lower().startswith("sips:"),
            invite_cseq=number,
            local_contact=local_contact,
            via=via,
            timers=timers,
        )

    # -- state ---------------------------------------------------------------------------------------

    @property
    def local_party(self) -> NameAddr:
        """Our party: the From of our requests (with our tag), parsed; a copy of its own."""
        return parse_name_addr(self._local_party)

    @property
    def remote_party(self) -> NameAddr:
        """The peer: the To of our requests (with its tag), parsed; a copy of its own."""
        return parse_name_addr(self._remote_party)

    def __repr__(self) -> str:
        return f"Dialog({self.id}, {self.state.value}, {'uac' if self.is_uac else 'uas'})"

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED
        self._retransmission = None

    def _refresh_target(self, message: Request | Response) -> None:
        uri = _contact_uri(message)
        if uri is not None:
            self.remote_target = uri

    # -- sending requests ----------------------------------------------------------------------------

    def _target_and_routes(self) -> tuple[str, list[str]]:
        """§12.2.1.1: loose routing keeps the remote target as Request-URI; a strict router
        (no ``lr``) takes the Request-URI and the remote target goes last in Route."""
        if not self.route_set:
            return self.remote_target, []
        if _is_loose(self.route_set[0]):
            return self.remote_target, list(self.route_set)
        first = SipUri.parse(NameAddr.parse(self.route_set[0]).uri)
        first.headers = None  # not allowed in a Request-URI
        first.params.pop("method", None)
        return str(first), [*self.route_set[1:], f"<{self.remote_target}>"]

    def _headers(self, method: str, cseq: int, via: Via | None) -> tuple[str, Headers]:
        template = via if via is not None else self.via
        if template is None:
            raise DialogError("no Via template: pass via= or set dialog.via")
        uri, routes = self._target_and_routes()
        headers = Headers()
        headers.add("Via", _fresh_via(template))
        headers.add("Max-Forwards", "70")
        headers.add("From", self._local_party)
        headers.add("To", self._remote_party)
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        for route in routes:
            headers.add("Route", route)
        return uri, headers

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        via: Via | None = None,
    ) -> Request:
        """A new in-dialog request (§12.2.1.1) with the next local CSeq."""
        method = method.upper()
        if method in ("ACK", "CANCEL"):
            raise DialogError(f"{method} is not built here: create_ack / transaction.make_cancel")
        if self.state is DialogState.TERMINATED:
            raise DialogError("the dialog is terminated")
        if method == "INVITE" and self._outgoing_invite is not None:
            raise DialogError("an INVITE of ours is still pending on this dialog (§14.1)")
        self.local_seq = new_cseq() if self.local_seq is None else self.local_seq + 1
        uri, headers = self._headers(method, self.local_seq, via)
        if method in TARGET_REFRESH_METHODS and self.local_contact:
            headers.add("Contact", self.local_contact)
        for name, value in extra:
            headers.add(name, value)
        if body and content_type:
            headers.add("Content-Type", content_type)
        if method == "INVITE":
            self._outgoing_invite = self.local_seq
        return Request(method=method, uri=uri, headers=headers, body=body)

    def create_ack(
        self,
        cseq: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        via: Via | None = None,
    ) -> Request:
        """The ACK for a 2xx to our INVITE with CSeq number ``cseq`` (§13.2.2.4); remembered
        so a retransmitted 2xx gets it again."""
        uri, headers = self._headers("ACK", cseq, via)
        for name, value in extra:
            headers.add(name, value)
        if body and content_type:
            headers.add("Content-Type", content_type)
        ack = Request(method="ACK", uri=uri, headers=headers, body=body)
        self._last_ack = (cseq, serialize(ack))
        return ack

    def receive_response(self, response: Response) -> Request | None:
        """A response to a request we sent in this dialog (or to the INVITE that made it).
        Returns the ACK to send again when ``response`` repeats a 2xx we already acknowledged."""
        cseq = response.cseq
        status = response.status
        if cseq.method == "INVITE":
            return self._invite_response(response, cseq.number, status)
        if status < 200:
            return None
        if status < 300 and cseq.method in TARGET_REFRESH_METHODS:
            self._refresh_target(response)
        if cseq.method == "BYE" or status in (408, 481):
            self.terminate()  # §12.2.1.2: 408/481 mean the peer lost the dialog
        return None

    def _invite_response(self, response: Response, number: int, status: int) -> Request | None:
        initial = number == self.invite_cseq and self.is_uac
        if status < 200:
            if self.state is DialogState.EARLY:
                self._refresh_target(response)
                if initial:
                    self.route_set = list(reversed(response.headers.values("Record-Route")))
            return None
        if self._outgoing_invite == number:
            self._outgoing_invite = None
        if status >= 300:
            if (initial and self.state is DialogState.EARLY) or status in (408, 481):
                self.terminate()
            return None
        last = self._last_ack
        if last is not None and last[0] == number:
            ack = parse_message(last[1])  # a retransmitted 2xx: our ACK was lost
            if isinstance(ack, Request):
                return ack
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED
            if initial:  # §13.2.2.4: the 2xx decides the route set
                self.route_set = list(reversed(response.headers.values("Record-Route")))
        self._refresh_target(response)
        return None

    # -- receiving requests ----------------------------------------------------------------------------

    def receive_request(self, request: Request) -> int | None:
        """Check a request received in this dialog (not the one that created it). Returns None
        to go on, or the status to reject it with: 500 for a CSeq not above the last one
        (§12.2.2) or an INVITE overlapping our unanswered one (§14.2, add Retry-After),
        491 for glare with our own pending INVITE, 481 once the dialog is terminated."""
        method = request.method
        number = request.cseq.number
        if method == "ACK":
            pending = self._retransmission
            if pending is not None and pending.cseq == number:
                self._retransmission = None
            return None
        if method == "CANCEL":
            return None  # handled by the transaction layer
        if self.state is DialogState.TERMINATED:
            return 481
        if self.remote_seq is not None and number <= self.remote_seq:
            return 500
        self.remote_seq = number
        return self._check_invite(number) if method == "INVITE" else None

    def _check_invite(self, number: int) -> int | None:
        if self._outgoing_invite is not None:
            return 491
        if self._incoming_invite is not None:
            return 500
        self._incoming_invite = number
        return None

    def make_response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """A response in this dialog: our To tag, and our Contact on a 1xx/2xx to a
        dialog-creating or target-refresh request."""
        headers = list(extra)
        if 100 < status < 300 and request.method in TARGET_REFRESH_METHODS and self.local_contact:
            headers.append(("Contact", self.local_contact))
        if body and content_type:
            headers.append(("Content-Type", content_type))
        return make_response(request, status, reason, to_tag=self.id.local_tag, extra=headers, body=body)

    def response_sent(self, request: Request, response: Response, now: float) -> None:
        """Tell the dialog what we answered a received request with (sent at ``now``)."""
        status = response.status
        if status < 200:
            return
        method = request.method
        number = request.cseq.number
        if method == "INVITE":
            if self._incoming_invite == number:
                self._incoming_invite = None
            if status >= 300:
                if number == self.invite_cseq and not self.is_uac and self.state is DialogState.EARLY:
                    self.terminate()
                return
            if self.state is DialogState.EARLY:
                self.state = DialogState.CONFIRMED
            self._refresh_target(request)
            self._retransmission = _Retransmission(
                response=response,
                cseq=number,
                sent=1,
                next_at=now + self.timers.response_retransmit_delay(1),
                give_up_at=now + self.timers.ack_wait,
            )
            return
        if status < 300 and method in TARGET_REFRESH_METHODS:
            self._refresh_target(request)
        if method == "BYE" and status < 300:
            self.terminate()

    # -- timers --------------------------------------------------------------------------------------

    @property
    def last_ack(self) -> tuple[int, bytes] | None:
        """The CSeq number and wire form of the last ACK we sent for a 2xx, if any: what a
        retransmission of that 2xx gets again (kept by the node for a while after the call)."""
        return self._last_ack

    @property
    def awaiting_ack(self) -> bool:
        return self._retransmission is not None

    def poll_timeout(self) -> float | None:
        pending = self._retransmission
        if pending is None:
            return None
        return min(pending.next_at, pending.give_up_at)

    def handle_timeout(self, now: float) -> list[DialogAction]:
        pending = self._retransmission
        if pending is None:
            return []
        if now >= pending.give_up_at:
            self._retransmission = None
            return [AckTimeout(self.id, pending.cseq)]
        if now < pending.next_at:
            return []
        pending.sent += 1
        pending.next_at = now + self.timers.response_retransmit_delay(pending.sent)
        return [Retransmit2xx(self.id, pending.response)]


class DialogTable:
    """The dialogs of one UA (or one B2BUA side), by :class:`DialogId`."""

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._dialogs

    def add(self, dialog: Dialog) -> Dialog:
        if dialog.id in self._dialogs:
            raise DialogError(f"dialog {dialog.id} exists")
        self._dialogs[dialog.id] = dialog
        return dialog

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def remove(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.pop(dialog_id, None)

    def for_request(self, request: Request) -> Dialog | None:
        dialog_id = dialog_id_of_request(request)
        return self._dialogs.get(dialog_id) if dialog_id is not None else None

    def for_response(self, response: Response) -> Dialog | None:
        dialog_id = dialog_id_of_response(response)
        return self._dialogs.get(dialog_id) if dialog_id is not None else None

    def forks(self, call_id: str, local_tag: str) -> list[Dialog]:
        """Every dialog one request of ours created (one per remote To tag)."""
        return [d for d in self._dialogs.values() if d.id.call_id == call_id and d.id.local_tag == local_tag]

    def remove_terminated(self) -> list[Dialog]:
        gone = [d for d in self._dialogs.values() if d.terminated and not d.awaiting_ack]
        for dialog in gone:
            del self._dialogs[dialog.id]
        return gone

    def poll_timeout(self) -> float | None:
        deadlines = [t for d in self._dialogs.values() if (t := d.poll_timeout()) is not None]
        return min(deadlines) if deadlines else None

    def handle_timeout(self, now: float) -> list[DialogAction]:
        out: list[DialogAction] = []
        for dialog in list(self._dialogs.values()):
            due = dialog.poll_timeout()
            if due is not None and due <= now:
                out.extend(dialog.handle_timeout(now))
        return out
