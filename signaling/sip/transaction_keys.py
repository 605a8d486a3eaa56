"""How the transaction layer matches messages to transactions (RFC 3261 §17.1.3, §17.2.3), and
the requests it builds itself (CANCEL, the ACK of a non-2xx final response): split from
:mod:`signaling.sip.transaction` to keep each file small. Pure functions over parsed messages.
"""

from __future__ import annotations

from .message import BRANCH_MAGIC, Headers, Message, Request, Response, Via, cached_via
from .transaction_events import Addr

__all__ = [
    "ack_for_final",
    "default_port",
    "key_2543",
    "key_3261",
    "make_cancel",
    "response_key",
    "rfc3261_branch",
    "server_key",
    "stamp_received",
    "top_via_read",
    "top_via_value",
    "via_identity",
]


def default_port(transport: str) -> int:
    return 5061 if transport.upper() in ("TLS", "WSS") else 5060


def via_identity(via: Via) -> tuple[object, ...]:
    params = tuple(sorted(via.params.items()))  # names are unique: only they are compared
    return (via.transport, via.host.lower(), via.port or default_port(via.transport), params)


def rfc3261_branch(branch: str | None) -> bool:
    """The magic cookie and something after it; a bare ``z9hG4bK`` matches the RFC 2543 way."""
    return branch is not None and branch.startswith(BRANCH_MAGIC) and len(branch) > len(BRANCH_MAGIC)


def server_key(request: Request, via: Via, method: str) -> tuple[object, ...]:
    """§17.2.3 matching key; ACK and CANCEL look up their INVITE by passing method="INVITE"."""
    if rfc3261_branch(via.branch):
        return key_3261(via, method)
    return key_2543(request, via, method, request.to_tag)


def key_3261(via: Via, method: str) -> tuple[object, ...]:
    """RFC 3261 matching (§17.2.3): the top Via's branch and sent-by, and the method. A
    response copies its request's top Via and CSeq, so this key also finds the server
    transaction a response answers (its CSeq method as ``method``)."""
    return ("3261", via.branch, via.host.lower(), via.port or default_port(via.transport), method)


def key_2543(request: Request, via: Via, method: str, to_tag: str | None) -> tuple[object, ...]:
    """RFC 2543 matching: Request-URI, To tag, From tag, Call-ID, CSeq number, top Via."""
    return (
        "2543",
        request.uri,
        to_tag,
        request.from_tag,
        request.call_id,
        request.cseq.number,
        via_identity(via),
        method,
    )


def response_key(message: Message, via: Via) -> tuple[object, ...]:
    """What a response copies from its request: finds the server transaction it answers when
    the request's branch is not an RFC 3261 one (else :func:`key_3261` does)."""
    cseq = message.cseq
    return ("response", message.call_id, cseq.number, cseq.method, via_identity(via))


def top_via_value(message: Message) -> str:
    top = message.headers.first_value("Via")
    if top is None:
        raise ValueError("no Via header")
    return top


def top_via_read(message: Message) -> Via:
    """The parsed top Via shared with the parse cache (``message.top_via`` is a copy of one's
    own): for reading only. ValueError when there is none or it does not parse."""
    top = message.headers.first_value("Via")  # top_via_value, inline: eight a call
    if top is None:
        raise ValueError("no Via header")
    return cached_via(top)


def make_cancel(invite: Request, reason: str | None = None) -> Request:
    """The CANCEL for a client INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To,
    CSeq number and Route; one Via, the INVITE's top one (so it shares the branch).
    ``reason`` becomes a Reason header (RFC 3326), e.g. ``SIP;cause=487``."""
    headers = Headers()
    headers.add("Via", top_via_value(invite))
    headers.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        headers.add(name, invite.headers.get(name) or "")
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    if reason:
        headers.add("Reason", reason)
    return Request(method="CANCEL", uri=invite.uri, headers=headers)


def ack_for_final(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 3xx-6xx (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", top_via_value(invite))
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    return Request(method="ACK", uri=invite.uri, headers=headers)


def stamp_received(request: Request, addr: Addr) -> Via:
    """§18.2.1 / RFC 3581: note the source address in the top Via; returns the (new) top Via."""
    via = top_via_read(request)
    source_host = addr[0]
    moved = via.host.strip("[]").lower() != source_host.strip("[]").lower()
    rport = "rport" in via.params and not via.params["rport"]
    if not moved and not rport:
        return via  # nothing to note: the shared parse serves (the caller only reads it)
    via = request.top_via  # a copy of its own to change
    if moved:
        via.params["received"] = source_host
    if rport:
        via.params["rport"] = str(addr[1])
        via.params["received"] = source_host
    request.headers.pop_first_value("Via")
    request.headers.prepend("Via", str(via))
    return via
