"""RFC 3261 §17 transactions (with RFC 6026's Accepted state), sans-IO.

Theory of operation
-------------------
A :class:`TransactionLayer` holds every client and server transaction of one SIP endpoint. It
owns no socket and reads no clock: the adapter feeds it parsed messages with
``receive(message, addr, now, transport)``, the transaction user (TU: the dialog / B2BUA
layer) calls ``send_request``, ``send_response``, ``cancel``; the adapter asks
``poll_timeout()`` when to call ``handle_timeout(now)`` next. Everything the layer wants done
comes out of one ordered queue (``next_event()`` / ``events()``): :class:`Transmit` for the
adapter, the other event types for the TU.

Client transactions (requests we send) are keyed by (top Via branch, method) — we always
generate RFC 3261 branches, so responses match by branch and CSeq method (§17.1.3)::

    INVITE:     Calling --1xx--> Proceeding --2xx--> Accepted --M--> gone
                   |  \\--2xx--> Accepted                   (2xx and forks go to the TU)
                   |   \\-3xx-6xx--> Completed (ACK sent here) --D--> gone
                   \\--B--> timeout                 Timer A retransmits while Calling (UDP)
    non-INVITE: Trying --1xx--> Proceeding --final--> Completed --K--> gone
                   \\--F--> timeout                 Timer E retransmits until final (UDP)

Server transactions (requests we receive) are keyed per §17.2.3: (branch, sent-by, method)
when the top Via branch carries the ``z9hG4bK`` cookie, else the RFC 2543 tuple (Request-URI,
To tag, From tag, Call-ID, CSeq, top Via). ACK is keyed as INVITE::

    INVITE:     Proceeding --2xx--> Accepted --L--> gone  (INVITE retransmissions absorbed,
                   |                                       ACKs and later 2xx passed through)
                   \\-3xx-6xx--> Completed --ACK--> Confirmed --I--> gone
                                   \\--H--> timeout    (Timer G retransmits the final, UDP)
    non-INVITE: Trying --1xx--> Proceeding --final--> Completed --J--> gone

A retransmitted request is answered with the last response sent; an INVITE server transaction
sends 100 Trying when the TU has said nothing for ``TimerConfig.trying_delay`` (200 ms), or at
once when a retransmission arrives first. Over reliable transports (anything but UDP) there are
no retransmission timers and D, I, J, K are zero, so the transaction ends at once.

The layer does the mechanical UAS-core work around CANCEL and merged requests: a CANCEL is
answered 200 when it matches an INVITE server transaction (and the TU gets
:class:`CancelReceived` while that INVITE is unanswered — the TU then sends 487), else 481;
a request without To tag whose From tag, Call-ID and CSeq equal a live transaction's but which
does not match it is answered 482 (§8.2.2.2). Responses go back to the address and transport
the request came from (RFC 3581 symmetric response routing); ``received``/``rport`` are set on
the top Via as §18.2.1 and RFC 3581 ask.

A transaction whose work is done but which must still answer for a while (Accepted: Timers L
and M, 32 s; Completed after its final response: Timers D, J, K; Confirmed: Timer I) is kept
as a *rest*: one plain tuple of strings, numbers and bytes (what it still matches on and sends
again) instead of its record with the request and responses. A node at hundreds of calls per
second holds thousands of transactions in these states; as tuples of atomic values the cyclic
garbage collector stops tracking them, so its full passes do not walk them. A rest behaves as
the transaction did: retransmitted requests are absorbed (a non-INVITE's final response sent
again), a 2xx retransmission reaches the TU, an ACK matching an Accepted INVITE is passed on,
the TU's 2xx retransmissions go out, ``state()`` names its state. Rests of one length end in
the order they began, so they wait in a queue per length (the rest itself is the entry) rather
than in the timer queues.

Timer B and Timer F (32 s) guard a request that is never answered. Over UDP they are armed
with the request but enter the timer queues only at its first retransmission (T1 later, before
they can fall due): a transaction answered within T1, nearly every one, leaves no 32 s entry
behind for the queues to skip when it comes up, cold, half a minute later.

A terminated transaction is removed from every table at once; ``len(layer)`` counts the live
ones (rests included). Bad network input never raises: it is dropped and counted in
``layer.counters``. Misuse by the TU raises :class:`TransactionError`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final

from ..untracked import untrack_tree
from .ids import new_tag
from .message import (
    Message,
    Request,
    Response,
    Via,
    make_response,
    serialize,
)
from .parser import SipParseError, parse_message
from .timer_queues import EarliestArmed, TimerQueues
from .timers import TimerConfig
from .transaction_events import (
    AckReceived,
    Addr,
    CancelReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    State,
    StrayResponse,
    TransactionError,
    TransactionId,
    TransactionTimeout,
    Transmit,
    TransportError,
)
from .transaction_keys import (
    ack_for_final,
    default_port,
    key_2543,
    key_3261,
    make_cancel,
    response_key,
    rfc3261_branch,
    server_key,
    stamp_received,
    top_via_read,
)

__all__ = [
    "UNRELIABLE_TRANSPORTS",
    "AckReceived",
    "Addr",
    "CancelReceived",
    "Event",
    "RequestReceived",
    "ResponseReceived",
    "State",
    "StrayResponse",
    "TransactionError",
    "TransactionId",
    "TransactionLayer",
    "TransactionTimeout",
    "Transmit",
    "TransportError",
    "default_port",
    "is_reliable",
    "make_cancel",
]

#: Transports that deliver reliably (no retransmission timers; D, I, J, K are zero).
UNRELIABLE_TRANSPORTS = frozenset({"UDP"})


def is_reliable(transport: str) -> bool:
    return transport.upper() not in UNRELIABLE_TRANSPORTS


# -- transaction records --------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Transaction:
    id: TransactionId
    method: str
    request: Request
    addr: Addr
    transport: str
    reliable: bool
    is_client: bool
    state: State
    #: the timer values when the transaction started: a new configuration applies to new
    #: transactions only (reference §16.77)
    config: TimerConfig
    #: timer name → deadline; the heap may hold stale entries, this is the truth.
    timers: dict[str, float] = field(default_factory=dict)
    #: keys under which the tables index this transaction (removed on termination).
    keys: list[tuple[object, ...]] = field(default_factory=list)
    merge_key: tuple[object, ...] | None = None
    # client side
    request_data: bytes = b""
    sent: int = 0
    ack: Request | None = None
    ack_data: bytes = b""
    cancel_pending: bool = False
    cancel_reason: str | None = None
    cancel_sent: bool = False
    # server side
    provisional: Response | None = None
    provisional_data: bytes = b""
    final: Response | None = None
    final_data: bytes = b""
    response_sent: int = 0
    to_tag: str | None = None
    #: the other local IP the transaction's messages leave from (None: the main listener)
    local: str | None = None


#: A transaction's rest (see the module docstring): a plain tuple, untracked by the cyclic
#: collector once it has seen it, of
#: (id, state's value, is_client, method, addr, transport, deadline, index keys, merge key,
#:  data: the final response (server non-INVITE) or the ACK (client INVITE) to send again,
#:  our To tag, the To tag of the request, the local IP it sends from)
_Rest = tuple[
    TransactionId,
    str,
    bool,
    str,
    Addr,
    str,
    float,
    tuple[tuple[object, ...], ...],
    "tuple[object, ...] | None",
    bytes,
    "str | None",
    "str | None",
    "str | None",
]
_R_ID: Final = 0
_R_STATE: Final = 1
_R_CLIENT: Final = 2
_R_METHOD: Final = 3
_R_ADDR: Final = 4
_R_TRANSPORT: Final = 5
_R_DEADLINE: Final = 6
_R_KEYS: Final = 7
_R_MERGE: Final = 8
_R_DATA: Final = 9
_R_TO_TAG: Final = 10
_R_REQUEST_TO_TAG: Final = 11
_R_LOCAL: Final = 12
#: the heap's timer name for the end of a rest (one whose deadline fits no rest queue)
_REST_TIMER = "rest"
#: distinct rest lengths that get a queue of their own (D, I, J, K, L, M: two or three in use)
_REST_QUEUES = 8
_ACCEPTED = State.ACCEPTED.value
_COMPLETED = State.COMPLETED.value


def _timer_live(tx: _Transaction | _Rest, name: str, deadline: float) -> bool:
    """Whether a heap entry is the transaction's armed timer (the heap keeps stale ones)."""
    if isinstance(tx, tuple):
        return name == _REST_TIMER and tx[_R_DEADLINE] == deadline
    return tx.timers.get(name) == deadline


def _guard(config: TimerConfig, *, invite: bool) -> tuple[str, float]:
    """A client transaction's no-answer timer and its length: Timer B (INVITE) or Timer F."""
    return ("B", config.timer_b) if invite else ("F", config.timer_f)


class TransactionLayer:
    """Every client and server transaction of one endpoint; see the module docstring."""

    def __init__(self, timers: TimerConfig | None = None, *, armed: EarliestArmed | None = None) -> None:
        """``armed``: where every timer the layer arms is noted (shared with the adapter's
        other timer sources, :class:`~signaling.sip.timer_queues.EarliestArmed`)."""
        #: replace to reconfigure; transactions already running keep the values they began with
        self.timers = timers if timers is not None else TimerConfig()
        self.counters: Counter[str] = Counter()
        self._events: deque[Event] = deque()
        #: the event queue itself, truthy while events wait: an adapter draining the layer
        #: tests it without a call per turn
        self.pending: deque[Event] = self._events
        self._next_id = 1
        self._by_id: dict[TransactionId, _Transaction | _Rest] = {}
        self._index: dict[tuple[object, ...], _Transaction | _Rest] = {}
        self._merge: dict[tuple[object, ...], _Transaction | _Rest] = {}
        #: every armed timer (and disarmed ones not yet due: skipped then), earliest first
        self._timers: TimerQueues[TransactionId] = TimerQueues(armed)
        #: rests by their length, each queue in the order they end: the rest is its own entry
        #: (its deadline is in it), and one that is gone when it comes up is skipped
        self._rests: dict[float, deque[_Rest]] = {}

    # -- public API --------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live transactions."""
        return len(self._by_id)

    def state(self, transaction: TransactionId) -> State | None:
        """The state of a live transaction, None once it is gone."""
        tx = self._by_id.get(transaction)
        if tx is None:
            return None
        return State(tx[_R_STATE]) if isinstance(tx, tuple) else tx.state

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """Drain the queue."""
        if not self._events:
            return []
        out = list(self._events)
        self._events.clear()
        return out

    def poll_timeout(self) -> float | None:
        """The earliest instant at which ``handle_timeout`` has work, or None."""
        by_id = self._by_id
        earliest: float | None = None
        for rests in self._rests.values():
            while rests:
                rest = rests[0]
                if by_id.get(rest[_R_ID]) is rest:
                    if earliest is None or rest[_R_DEADLINE] < earliest:
                        earliest = rest[_R_DEADLINE]
                    break
                rests.popleft()  # ended before its time (a transport error)
        timers = self._timers
        while (entry := timers.first()) is not None:
            deadline, _, tid, name = entry
            tx = by_id.get(tid)
            if tx is not None:  # _timer_live, inline
                if isinstance(tx, tuple):
                    if name == _REST_TIMER and tx[_R_DEADLINE] == deadline:
                        break
                elif tx.timers.get(name) == deadline:
                    break
            timers.pop()  # stale: re-armed, disarmed or the transaction is gone
        else:
            return earliest
        return deadline if earliest is None or deadline < earliest else earliest

    def handle_timeout(self, now: float) -> None:
        by_id = self._by_id
        for rests in self._rests.values():
            # the end of a rest (D, I, J, K, L, M): nothing to say, only tables to clear
            while rests and rests[0][_R_DEADLINE] <= now:
                rest = rests.popleft()
                if by_id.get(rest[_R_ID]) is rest:
                    self._terminate(rest)
        timers = self._timers
        while (entry := timers.pop_due(now)) is not None:
            deadline, _, tid, name = entry
            tx = self._by_id.get(tid)
            if tx is None or not _timer_live(tx, name, deadline):
                continue  # stale: re-armed, disarmed or the transaction is gone
            if isinstance(tx, tuple):
                self._terminate(tx)  # the end of a rest (D, I, J, K, L, M): nothing to say
                continue
            del tx.timers[name]
            if tx.is_client:
                self._client_timer(tx, name, now)
            else:
                self._server_timer(tx, name, now)

    def receive(
        self, message: Message, addr: Addr, now: float, transport: str = "UDP", local: str | None = None
    ) -> None:
        """A parsed message from the network; ``local``: the other local IP it arrived on (a
        server transaction answers from it), None for the main listener."""
        transport = transport.upper()
        try:
            if isinstance(message, Request):
                self._receive_request(message, addr, now, transport, local)
            else:
                self._receive_response(message, addr, now, transport)
        except TransactionError:
            # our own state disagrees (e.g. the TU already sent a CANCEL on this branch): a bug
            # to count, not a reason to raise into the adapter
            self.counters["tu_error"] += 1
        except ValueError:
            # a header we need (Via, CSeq, From, To) does not parse: nothing can match it
            self.counters["malformed"] += 1

    def send_request(
        self,
        request: Request,
        addr: Addr,
        now: float,
        *,
        transport: str | None = None,
        local: str | None = None,
    ) -> TransactionId:
        """Start a client transaction. The request's top Via must carry a fresh RFC 3261 branch
        (``ids.new_branch()``); ``transport`` defaults to the Via's; ``local``: the other local
        IP it (its retransmissions, its CANCEL) leaves from, None for the main listener."""
        if request.method in ("ACK",):
            raise TransactionError("an ACK for a 2xx is not a transaction: use send_stateless")
        try:
            via = top_via_read(request)
            request.cseq  # noqa: B018  # must parse: responses are matched on it
        except ValueError as exc:
            raise TransactionError(f"request cannot start a transaction: {exc}") from None
        branch = via.branch
        if not rfc3261_branch(branch):
            raise TransactionError(f"top Via needs an RFC 3261 branch, not {branch!r}")
        key = ("client", branch, request.method)
        if key in self._index:
            raise TransactionError(f"branch {branch} already names a {request.method} transaction")
        chosen = (transport or via.transport).upper()
        invite = request.method == "INVITE"
        tx = self._new(request, addr, chosen, is_client=True, state=State.CALLING if invite else State.TRYING)
        if local is not None:
            tx.local = local
        self._add_key(tx, key)
        tx.request_data = serialize(request)
        tx.sent = 1
        self._transmit(tx.request_data, request, tx.addr, tx.transport, tx.id, local)
        guard, guard_delay = _guard(tx.config, invite=invite)
        if not tx.reliable:
            delay = tx.config.request_retransmit_delay(1, invite=invite)
            if delay is not None and delay < guard_delay:
                self._arm(tx, "A" if invite else "E", now, delay)
                # Timer B / F is armed (its deadline is the truth in ``tx.timers``) but enters
                # the queue only at the first retransmission, which comes before it: most
                # transactions are answered within T1 and leave no 32 s entry behind
                tx.timers[guard] = now + guard_delay
                return tx.id
        self._arm(tx, guard, now, guard_delay)
        return tx.id

    def send_response(self, response: Response, now: float, transaction: TransactionId | None = None) -> None:
        """Answer a server transaction, named or found from the response's Via/Call-ID/CSeq."""
        tx = self._by_id.get(transaction) if transaction is not None else self._find_for_response(response)
        if tx is None or (tx[_R_CLIENT] if isinstance(tx, tuple) else tx.is_client):
            raise TransactionError("no server transaction for this response")
        if not 100 <= response.status <= 699:
            raise TransactionError(f"status {response.status} is not a SIP status code")
        if isinstance(tx, tuple):
            self._rest_respond(tx, response)
            return
        self._respond(tx, response, now)

    def send_stateless(
        self, message: Message, addr: Addr, transport: str = "UDP", local: str | None = None
    ) -> None:
        """Send outside any transaction: the ACK for a 2xx, or a response to a request the
        layer never saw."""
        self._transmit(serialize(message), message, addr, transport.upper(), None, local)

    def cancel(
        self, transaction: TransactionId, now: float, reason: str | None = None
    ) -> TransactionId | None:
        """CANCEL our INVITE ``transaction`` (RFC 3261 §9.1). Sent at once when a provisional
        response has arrived, else as soon as one does (never before); nothing once a final
        response arrived. Returns the CANCEL's transaction when it was sent now."""
        tx = self._by_id.get(transaction)
        if isinstance(tx, tuple) and tx[_R_CLIENT] and tx[_R_METHOD] == "INVITE":
            return None  # a final response arrived: nothing to cancel
        if tx is None or isinstance(tx, tuple) or not tx.is_client or tx.method != "INVITE":
            raise TransactionError("only a live client INVITE transaction can be cancelled")
        if tx.cancel_pending or tx.cancel_sent:
            return None
        tx.cancel_reason = reason
        if tx.state is State.CALLING:
            tx.cancel_pending = True
            return None
        if tx.state is State.PROCEEDING:
            return self._send_cancel(tx, now)
        return None

    def transport_error(self, transaction: TransactionId, now: float) -> None:
        """The adapter could not deliver a Transmit of ``transaction`` (§17.1.4, §17.2.4)."""
        tx = self._by_id.get(transaction)
        if tx is None:
            return
        self._terminate(tx)
        if isinstance(tx, tuple):
            self._events.append(TransportError(tx[_R_ID], tx[_R_METHOD]))
        else:
            self._events.append(TransportError(tx.id, tx.method))

    # -- plumbing ----------------------------------------------------------------------------------

    def _new(
        self, request: Request, addr: Addr, transport: str, *, is_client: bool, state: State
    ) -> _Transaction:
        tid = TransactionId(self._next_id)
        self._next_id += 1
        # positional: four a call (id, method, request, addr, transport, reliable, is_client,
        # state, config)
        tx = _Transaction(
            tid,
            request.method,
            request,
            addr,
            transport,
            transport not in UNRELIABLE_TRANSPORTS,  # is_reliable(transport): upper-case here
            is_client,
            state,
            self.timers,
        )
        self._by_id[tid] = tx
        return tx

    def _add_key(self, tx: _Transaction, key: tuple[object, ...]) -> None:
        self._index[key] = tx
        tx.keys.append(key)

    def _terminate(self, tx: _Transaction | _Rest) -> None:
        if isinstance(tx, tuple):
            for key in tx[_R_KEYS]:
                if self._index.get(key) is tx:
                    del self._index[key]
            merge_key = tx[_R_MERGE]
            if merge_key is not None and self._merge.get(merge_key) is tx:
                del self._merge[merge_key]
            self._by_id.pop(tx[_R_ID], None)
            return
        assert isinstance(tx, _Transaction)
        tx.state = State.TERMINATED
        tx.timers.clear()
        for key in tx.keys:
            if self._index.get(key) is tx:
                del self._index[key]
        tx.keys.clear()
        if tx.merge_key is not None and self._merge.get(tx.merge_key) is tx:
            del self._merge[tx.merge_key]
        self._by_id.pop(tx.id, None)

    def _arm(self, tx: _Transaction, name: str, now: float, delay: float) -> None:
        deadline = tx.timers[name] = now + delay
        self._timers.push(deadline, delay, tx.id, name)

    def _retire(self, tx: _Transaction, now: float, delay: float, data: bytes = b"") -> None:
        """The transaction's work is done: keep it ``delay`` more seconds as a rest (see the
        module docstring) holding ``data`` to send again; a zero delay (reliable transport)
        ends it at once."""
        if delay <= 0:
            self._terminate(tx)
            return
        deadline = now + delay
        rest: _Rest = (
            tx.id,
            tx.state._value_,  # a string: an enum member would keep the tuple tracked
            tx.is_client,
            tx.method,
            tx.addr,
            tx.transport,
            deadline,
            tuple(tx.keys),
            tx.merge_key,
            data,
            tx.to_tag,
            None if tx.is_client else tx.request.to_tag,
            tx.local,
        )
        # strings, numbers, bytes and tuples of them (its keys): it cannot be part of a ring,
        # so the cyclic collector need not walk it, nor its keys, in the 32 s it is kept
        untrack_tree(rest)
        # the rest takes the record's place under each of its keys (what terminating the
        # record and indexing the rest would leave, in one pass: nothing iterates the tables)
        tx.state = State.TERMINATED
        tx.timers.clear()
        tx.keys.clear()
        index = self._index
        for key in rest[_R_KEYS]:
            index[key] = rest
        if tx.merge_key is not None:
            self._merge[tx.merge_key] = rest
        self._by_id[tx.id] = rest
        rests = self._rests.get(delay)
        if rests is None and len(self._rests) < _REST_QUEUES:
            rests = self._rests[delay] = deque()
        if rests is not None and (not rests or rests[-1][_R_DEADLINE] <= deadline):
            rests.append(rest)
            self._timers.armed.note(deadline)
        else:  # a new length beyond the queues, or a clock that went back: the timer queues
            self._timers.push(deadline, delay, tx.id, _REST_TIMER)

    def _resend(self, rest: _Rest) -> None:
        """A rest's stored message again (a lost ACK or final response): re-read from its bytes
        for the Transmit, a rare event that does not justify keeping the parsed message."""
        data = rest[_R_DATA]
        try:
            message = parse_message(data)
        except SipParseError:  # our own message: cannot happen
            return
        self._transmit(data, message, rest[_R_ADDR], rest[_R_TRANSPORT], rest[_R_ID], rest[_R_LOCAL])

    def _transmit(  # noqa: PLR0917 (positional: one call per message)
        self,
        data: bytes,
        message: Message,
        addr: Addr,
        transport: str,
        tid: TransactionId | None,
        local: str | None,
    ) -> None:
        self._events.append(Transmit(data, addr, transport, message, tid, local))

    def _find_for_response(self, response: Response) -> _Transaction | _Rest | None:
        """The server transaction a response (sent without naming it) answers. A response
        copies its request's top Via and CSeq: with an RFC 3261 branch, that Via's branch and
        sent-by and the CSeq's method are the request's matching key (§17.2.3), so only a
        request without one is indexed by what its responses copy (:func:`response_key`)."""
        try:
            via = top_via_read(response)
            if rfc3261_branch(via.branch):
                return self._index.get(key_3261(via, response.cseq.method))
            return self._index.get(response_key(response, via))
        except ValueError:
            return None

    # -- client side -------------------------------------------------------------------------------

    def _receive_response(self, response: Response, addr: Addr, now: float, transport: str) -> None:
        via = top_via_read(response)
        method = response.cseq.method
        tx = self._index.get(("client", via.branch, method)) if via.branch else None
        if tx is None:
            self.counters["stray_response"] += 1
            self._events.append(StrayResponse(response, addr, transport))
            return
        if isinstance(tx, tuple):
            self._rest_response(tx, response, addr, transport)
            return
        if tx.method == "INVITE":
            self._client_invite_response(tx, response, addr, now, transport)
        else:
            self._client_plain_response(tx, response, addr, now, transport)

    def _deliver(self, tx: _Transaction, response: Response, addr: Addr, transport: str) -> None:
        self._events.append(ResponseReceived(tx.id, response, addr, transport))

    def _client_invite_response(
        self, tx: _Transaction, response: Response, addr: Addr, now: float, transport: str
    ) -> None:
        status = response.status
        if tx.state in (State.CALLING, State.PROCEEDING):
            if status < 200:
                tx.timers.pop("A", None)
                tx.timers.pop("B", None)  # Timer B only guards the Calling state
                tx.state = State.PROCEEDING
                self._deliver(tx, response, addr, transport)
                if tx.cancel_pending:
                    self._send_cancel(tx, now)
                return
            tx.cancel_pending = False
            tx.timers.clear()
            if status < 300:
                tx.state = State.ACCEPTED
                self._deliver(tx, response, addr, transport)
                self._retire(tx, now, tx.config.timer_m)  # later 2xx still reach the TU
                return
            tx.state = State.COMPLETED
            tx.ack = ack_for_final(tx.request, response)
            tx.ack_data = serialize(tx.ack)
            self._transmit(tx.ack_data, tx.ack, tx.addr, tx.transport, tx.id, tx.local)
            self._deliver(tx, response, addr, transport)
            self._retire(tx, now, tx.config.timer_d(tx.reliable), tx.ack_data)
            return
        self.counters["absorbed"] += 1

    def _rest_response(self, rest: _Rest, response: Response, addr: Addr, transport: str) -> None:
        """A response matching a client transaction's rest: Accepted (INVITE) passes a 2xx on
        (a retransmission or another fork's), Completed (INVITE) sends its ACK again for a
        repeated final; everything else is absorbed."""
        if not rest[_R_CLIENT]:
            self.counters["absorbed"] += 1
            return
        status = response.status
        state = rest[_R_STATE]
        if state == _ACCEPTED and 200 <= status < 300:
            self._events.append(ResponseReceived(rest[_R_ID], response, addr, transport))
            return
        self.counters["absorbed"] += 1
        if state == _COMPLETED and status >= 300 and rest[_R_DATA]:
            self._resend(rest)  # the final again: our ACK was lost

    def _client_plain_response(
        self, tx: _Transaction, response: Response, addr: Addr, now: float, transport: str
    ) -> None:
        if tx.state not in (State.TRYING, State.PROCEEDING):
            self.counters["absorbed"] += 1
            return
        if response.status < 200:
            tx.state = State.PROCEEDING
            self._deliver(tx, response, addr, transport)
            return
        tx.timers.clear()
        tx.state = State.COMPLETED
        self._deliver(tx, response, addr, transport)
        self._retire(tx, now, tx.config.timer_k(tx.reliable))

    def _client_timer(self, tx: _Transaction, name: str, now: float) -> None:
        if name in ("A", "E"):
            tx.sent += 1
            if tx.sent == 2:  # the first retransmission: Timer B / F enters the queue now
                guard, guard_delay = _guard(tx.config, invite=name == "A")
                deadline = tx.timers.get(guard)
                if deadline is not None:
                    self._timers.push(deadline, guard_delay, tx.id, guard)
            self.counters["retransmissions"] += 1
            self._transmit(tx.request_data, tx.request, tx.addr, tx.transport, tx.id, tx.local)
            delay = tx.config.request_retransmit_delay(
                tx.sent, invite=name == "A", proceeding=tx.state is State.PROCEEDING
            )
            if delay is not None:
                self._arm(tx, name, now, delay)
        elif name in ("B", "F", "cancel"):
            self._terminate(tx)
            self._events.append(TransactionTimeout(tx.id, tx.method, name))

    def _send_cancel(self, invite_tx: _Transaction, now: float) -> TransactionId:
        invite_tx.cancel_pending = False
        invite_tx.cancel_sent = True
        cancel = make_cancel(invite_tx.request, invite_tx.cancel_reason)
        # §9.1: with no final response 64*T1 after the CANCEL, the INVITE counts as cancelled
        self._arm(invite_tx, "cancel", now, 64 * invite_tx.config.t1)
        return self.send_request(
            cancel, invite_tx.addr, now, transport=invite_tx.transport, local=invite_tx.local
        )

    # -- server side -------------------------------------------------------------------------------

    def _receive_request(
        self, request: Request, addr: Addr, now: float, transport: str, local: str | None
    ) -> None:
        via = stamp_received(request, addr)
        request.cseq  # noqa: B018  # must parse before anything keys on it
        method = request.method
        if method == "ACK":
            self._receive_ack(request, via, addr, now, transport)
            return
        key = server_key(request, via, method)
        tx = self._index.get(key)
        if tx is not None:
            self._server_retransmission(tx, now)
            return
        to_tag = request.to_tag
        merge_key: tuple[object, ...] | None = None
        if to_tag is None and method != "CANCEL":
            cseq = request.cseq
            merge_key = (request.from_tag, request.call_id, cseq.number, cseq.method)
        tx = self._new(
            request,
            addr,
            transport,
            is_client=False,
            state=State.PROCEEDING if method == "INVITE" else State.TRYING,
        )
        if local is not None:
            tx.local = local
        self._add_key(tx, key)
        if key[0] != "3261":  # an RFC 3261 branch: a response finds it by that key
            self._add_key(tx, response_key(request, via))
        if method == "CANCEL":
            self._answer_cancel(tx, request, via, now)
            return
        if merge_key is not None:
            if merge_key in self._merge:
                self.counters["merged"] += 1
                self._respond(tx, make_response(request, 482, to_tag=new_tag()), now)
                return
            tx.merge_key = merge_key
            self._merge[merge_key] = tx
        if method == "INVITE":
            if tx.config.trying_delay > 0:
                self._arm(tx, "trying", now, tx.config.trying_delay)
            else:
                self._send_trying(tx)
        else:
            # a TU that never answers must not leak the transaction: the client gave up at F
            self._arm(tx, "unanswered", now, 64 * tx.config.t1)
        self._events.append(RequestReceived(tx.id, request, addr, transport, local))

    def _receive_ack(self, ack: Request, via: Via, addr: Addr, now: float, transport: str) -> None:
        tx = self._find_invite_for_ack(ack, via)
        if tx is None:
            self.counters["stray_ack"] += 1
            self._events.append(AckReceived(ack, addr, transport, None))
            return
        if isinstance(tx, tuple):
            if tx[_R_STATE] == _ACCEPTED:
                self._events.append(AckReceived(ack, addr, transport, tx[_R_ID]))  # RFC 6026 §8.7
            else:
                self.counters["absorbed"] += 1  # Confirmed: a retransmitted ACK
            return
        if tx.state is State.ACCEPTED:
            self._events.append(AckReceived(ack, addr, transport, tx.id))  # RFC 6026 §8.7
        elif tx.state is State.COMPLETED:
            tx.timers.clear()
            tx.state = State.CONFIRMED
            self._retire(tx, now, tx.config.timer_i(tx.reliable))
        else:
            self.counters["absorbed"] += 1  # Confirmed: a retransmitted ACK; Proceeding: bogus

    def _find_invite_for_ack(self, ack: Request, via: Via) -> _Transaction | _Rest | None:
        key = server_key(ack, via, "INVITE")
        if key[0] == "3261":
            return self._index.get(key)
        # RFC 2543 (§17.2.3): the ACK's To tag must be the tag of our response. A re-INVITE
        # already carried it; an initial INVITE had none, so look that up too.
        ack_tag = ack.to.tag
        tx = self._index.get(key)
        if tx is None:
            tx = self._index.get(key_2543(ack, via, "INVITE", None))
        if tx is None:
            return None
        if isinstance(tx, tuple):
            tags: tuple[str | None, ...] = (tx[_R_REQUEST_TO_TAG], tx[_R_TO_TAG])
        else:
            tags = (tx.request.to.tag, tx.to_tag)
        return tx if ack_tag in tags else None

    def _answer_cancel(self, cancel_tx: _Transaction, cancel: Request, via: Via, now: float) -> None:
        invite_tx = self._index.get(server_key(cancel, via, "INVITE"))
        client = invite_tx[_R_CLIENT] if isinstance(invite_tx, tuple) else invite_tx and invite_tx.is_client
        if invite_tx is None or client:
            self._server_plain_response(cancel_tx, make_response(cancel, 481, to_tag=new_tag()), now)
            return
        if isinstance(invite_tx, tuple):  # answered already (Accepted, Confirmed): nothing to end
            tag = invite_tx[_R_TO_TAG] or cancel.to.tag or new_tag()
            self._server_plain_response(cancel_tx, make_response(cancel, 200, to_tag=tag), now)
            return
        # §9.2: the CANCEL's 200 and the INVITE's final response should carry the same To tag
        if invite_tx.to_tag is None:
            invite_tx.to_tag = cancel.to.tag or new_tag()
        tag = invite_tx.to_tag
        self._server_plain_response(cancel_tx, make_response(cancel, 200, to_tag=tag), now)
        if invite_tx.state is State.PROCEEDING:
            self._events.append(
                CancelReceived(invite_tx.id, cancel, cancel_tx.addr, cancel_tx.transport, tag)
            )

    def _send_trying(self, tx: _Transaction) -> None:
        tx.timers.pop("trying", None)
        extra: list[tuple[str, str]] = []
        timestamp = tx.request.headers.get("Timestamp")
        if timestamp is not None:
            extra.append(("Timestamp", timestamp))  # §8.2.6.1
        self._send(tx, make_response(tx.request, 100, extra=extra))

    def _send(self, tx: _Transaction, response: Response) -> None:
        """Transmit a response and remember it for retransmitted requests (and Timer G)."""
        data = serialize(response)
        tag = response.to_tag if response.status > 100 else None
        if tag is not None:
            tx.to_tag = tag
        if response.status < 200:
            tx.provisional, tx.provisional_data = response, data
        else:
            tx.final, tx.final_data = response, data
        self._transmit(data, response, tx.addr, tx.transport, tx.id, tx.local)

    def _server_retransmission(self, tx: _Transaction | _Rest, now: float) -> None:
        self.counters["absorbed"] += 1
        if isinstance(tx, tuple):
            if tx[_R_STATE] == _COMPLETED and tx[_R_DATA]:
                self._resend(tx)  # a non-INVITE's final response again
            return  # Accepted, Confirmed: absorbed
        if tx.state is State.PROCEEDING:
            if tx.provisional is not None:
                self._transmit(tx.provisional_data, tx.provisional, tx.addr, tx.transport, tx.id, tx.local)
            elif tx.method == "INVITE":
                self._send_trying(tx)  # the client is retransmitting: stop it now
        elif tx.state is State.COMPLETED and tx.final is not None:
            self._transmit(tx.final_data, tx.final, tx.addr, tx.transport, tx.id, tx.local)
        # Trying (non-INVITE), Accepted, Confirmed: absorbed

    def _rest_respond(self, rest: _Rest, response: Response) -> None:
        """The TU answers a server transaction's rest: only an Accepted INVITE sends (the TU's
        2xx retransmissions, RFC 6026, or another 2xx)."""
        status = response.status
        state = rest[_R_STATE]
        if state != _ACCEPTED or not 200 <= status < 300:
            raise TransactionError(f"{rest[_R_METHOD]} transaction in {state} cannot send {status}")
        self._transmit(
            serialize(response), response, rest[_R_ADDR], rest[_R_TRANSPORT], rest[_R_ID], rest[_R_LOCAL]
        )

    def _respond(self, tx: _Transaction, response: Response, now: float) -> None:
        if tx.method == "INVITE":
            self._server_invite_response(tx, response, now)
        else:
            self._server_plain_response(tx, response, now)

    def _server_invite_response(self, tx: _Transaction, response: Response, now: float) -> None:
        status = response.status
        if tx.state is not State.PROCEEDING:
            raise TransactionError(f"INVITE transaction in {tx.state.value} cannot send {status}")
        tx.timers.pop("trying", None)
        self._send(tx, response)
        if status < 200:
            return
        if status < 300:
            tx.state = State.ACCEPTED
            # Accepted absorbs retransmitted INVITEs and only passes the TU's 2xx on: a rest
            # for the 32 s of Timer L (memory and collector passes per call at high CPS)
            self._retire(tx, now, tx.config.timer_l)
            return
        tx.state = State.COMPLETED
        tx.response_sent = 1
        if not tx.reliable:
            self._arm(tx, "G", now, tx.config.response_retransmit_delay(1))
        self._arm(tx, "H", now, tx.config.timer_h)

    def _server_plain_response(self, tx: _Transaction, response: Response, now: float) -> None:
        if tx.state not in (State.TRYING, State.PROCEEDING):
            raise TransactionError(
                f"{tx.method} transaction in {tx.state.value} cannot send {response.status}"
            )
        self._send(tx, response)
        if response.status < 200:
            tx.state = State.PROCEEDING
            return
        tx.timers.clear()
        tx.state = State.COMPLETED
        self._retire(tx, now, tx.config.timer_j(tx.reliable), tx.final_data)

    def _server_timer(self, tx: _Transaction, name: str, now: float) -> None:
        if name == "trying":
            if tx.state is State.PROCEEDING and tx.provisional is None:
                self._send_trying(tx)
        elif name == "G":
            if tx.final is not None:
                tx.response_sent += 1
                self.counters["retransmissions"] += 1
                self._transmit(tx.final_data, tx.final, tx.addr, tx.transport, tx.id, tx.local)
                self._arm(tx, "G", now, tx.config.response_retransmit_delay(tx.response_sent))
        elif name in ("H", "unanswered"):
            self._terminate(tx)
            self._events.append(TransactionTimeout(tx.id, tx.method, name))
