"""What the transaction layer says: transaction ids, states, and the events in its output queue
(one :class:`Transmit` kind for the adapter, the others for the transaction user).
:mod:`signaling.sip.transaction` re-exports all of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NewType

from .message import Message, Request, Response

Addr = tuple[str, int]
TransactionId = NewType("TransactionId", int)


class TransactionError(ValueError):
    """The TU asked for something the transaction state does not allow (our bug, not the peer's)."""


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


# -- what comes out of the layer ------------------------------------------------------------------
# The kinds made for every message (Transmit, RequestReceived, AckReceived, ResponseReceived)
# are not frozen: a frozen dataclass sets each field through object.__setattr__, several times
# the cost of a plain slot; nobody changes an event once the layer has queued it.


@dataclass(slots=True)
class Transmit:
    """Put ``data`` (the serialised ``message``) on the wire to ``addr`` over ``transport``.
    If that fails, tell the layer: ``transport_error(transaction, now)``."""

    data: bytes
    addr: Addr
    transport: str
    message: Message
    transaction: TransactionId | None
    #: the other local IP to send from (the one the request arrived on, or the one named when
    #: the request was sent); None: the main listener
    local: str | None = None


@dataclass(slots=True)
class RequestReceived:
    """A new request (not ACK, not CANCEL): answer it with ``send_response``."""

    transaction: TransactionId
    request: Request
    addr: Addr
    transport: str
    #: the other local IP it arrived on (None: the main listener); its responses leave from it
    local: str | None = None


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched the unanswered INVITE ``transaction``; the layer already answered the
    CANCEL 200 with ``to_tag``. The TU ends the INVITE (487, using that tag when it has none)."""

    transaction: TransactionId
    request: Request
    addr: Addr
    transport: str
    to_tag: str


@dataclass(slots=True)
class AckReceived:
    """An ACK for a 2xx (or any ACK matching no transaction in Completed/Confirmed): the
    dialog layer's business. ``transaction`` is the Accepted INVITE it matched, if any."""

    request: Request
    addr: Addr
    transport: str
    transaction: TransactionId | None


@dataclass(slots=True)
class ResponseReceived:
    """A response for our client ``transaction`` (retransmitted 2xx included, in Accepted)."""

    transaction: TransactionId
    response: Response
    addr: Addr
    transport: str


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no client transaction (typically a 2xx retransmitted after Timer M):
    the dialog layer re-sends its ACK."""

    response: Response
    addr: Addr
    transport: str


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """``timer`` expired: "B"/"F" no final response to our request (treat as 408); "H" no ACK for
    our non-2xx final; "cancel" no final response 64*T1 after our CANCEL; "unanswered" the TU
    never answered a non-INVITE request (64*T1)."""

    transaction: TransactionId
    method: str
    timer: str


@dataclass(frozen=True, slots=True)
class TransportError:
    """The adapter reported a send failure; the transaction is gone (treat as 503, §8.1.3.1)."""

    transaction: TransactionId
    method: str


Event = (
    Transmit
    | RequestReceived
    | CancelReceived
    | AckReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimeout
    | TransportError
)
