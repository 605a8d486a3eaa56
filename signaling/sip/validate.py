"""UAS request checks after parsing (RFC 3261 §8.2): the response to send, or None to go on.

Theory of operation. :func:`validate_request` runs the checks in the RFC's order and stops at the
first failure; each failure is an answer the UAC can act on:

1. structure (the parser's own check, for requests built elsewhere): mandatory headers, repeated
   single headers, syntax, CSeq method → 400 (RFC 4475 insuf, multi01, mcl01), 501;
2. method (§8.2.1): not allowed here → 405 with ``Allow``;
3. Request-URI scheme (§8.2.2.1): not one we serve → 416 (unkscm, novelsc);
4. ``Require`` (§8.2.2.3; ignored for ACK and CANCEL): an option tag we do not support → 420 with
   ``Unsupported`` listing them (bext01; ``Proxy-Require`` is for proxies and is not ours);
5. body (§8.2.3): a content type or encoding we cannot handle → 415 with ``Accept`` and
   ``Accept-Encoding`` (invut);
6. ``Accept`` of an INVITE or UPDATE that rules out the SDP our answer carries → 406 (sdp01);
7. ``Max-Forwards: 0`` on a request this node would pass on → 483 (zeromf; a request answered
   here, such as OPTIONS to the node itself, is not refused).

Nothing is ever sent in answer to an ACK (RFC 3261 §17.2.1 and §8.2: ACK gets no response), so
every function returns None for one. REGISTER-specific rules (the To scheme of unksm2, Contact
``*``) belong to :mod:`signaling.sip.registrar`; authentication (regaut01) to
:mod:`signaling.sip.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .message import Request, Response, make_response
from .parser import SipParseError, check_message

__all__ = ["DEFAULT_POLICY", "UasPolicy", "error_response", "validate_request"]

SDP = "application/sdp"


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this UAS supports; each set is matched case-insensitively except methods."""

    allowed_methods: frozenset[str] = frozenset(
        {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE"}
    )
    #: option tags we implement (Supported/Require): RFC 4028 session timers
    supported_extensions: frozenset[str] = frozenset({"timer"})
    #: body types we read: SDP and the two SIP INFO DTMF forms
    accepted_content_types: frozenset[str] = frozenset({SDP, "application/dtmf-relay", "application/dtmf"})
    accepted_encodings: frozenset[str] = frozenset({"identity"})
    uri_schemes: frozenset[str] = frozenset({"sip", "sips", "tel"})


DEFAULT_POLICY = UasPolicy()

#: policy id → (the policy, its option tags, content types and encodings in lower case): the
#: sets a request is matched against, made once per policy instead of once per request
_LOWERED: dict[int, tuple[UasPolicy, UasPolicy]] = {}
_LOWERED_MAX = 64  # policies; more (made on the fly) and the table starts afresh


def _lowered(policy: UasPolicy) -> UasPolicy:
    """``policy`` with its case-insensitive sets in lower case."""
    entry = _LOWERED.get(id(policy))
    if entry is not None and entry[0] is policy:
        return entry[1]
    lowered = UasPolicy(
        allowed_methods=policy.allowed_methods,
        supported_extensions=frozenset(t.lower() for t in policy.supported_extensions),
        accepted_content_types=frozenset(t.lower() for t in policy.accepted_content_types),
        accepted_encodings=frozenset(e.lower() for e in policy.accepted_encodings),
        uri_schemes=policy.uri_schemes,
    )
    if len(_LOWERED) >= _LOWERED_MAX:
        _LOWERED.clear()
    _LOWERED[id(policy)] = (policy, lowered)  # the policy is held: its id is not reused
    return lowered


def error_response(err: SipParseError, *, to_tag: str | None = None) -> Response | None:
    """The answer to a request the parser refused (its ``status``), or None when nothing may be
    sent: a response (dropped), nothing readable, no Via to answer along, or an ACK."""
    request = err.request
    if err.is_response or request is None or request.method == "ACK" or "Via" not in request.headers:
        return None
    return make_response(request, err.status, to_tag=to_tag)


def validate_request(  # noqa: PLR0911 (one return per RFC 3261 §8.2 step)
    request: Request,
    policy: UasPolicy = DEFAULT_POLICY,
    *,
    will_forward: bool = True,
    to_tag: str | None = None,
    parsed: bool = False,
) -> Response | None:
    """The first RFC 3261 §8.2 check ``request`` fails, as the response to send; None if it
    passes. ``will_forward`` says whether this node would pass the request on (B2BUA legs),
    which is when ``Max-Forwards: 0`` means 483. ``parsed``: the request comes from
    :func:`parse_message` as it was, whose structure check (step 1) it passed already."""
    if request.method == "ACK":
        return None
    problem = None if parsed else check_message(request)
    if problem is not None:
        return make_response(request, problem[0], to_tag=to_tag)
    if request.method not in policy.allowed_methods:
        allow = ", ".join(sorted(policy.allowed_methods))
        return make_response(request, 405, to_tag=to_tag, extra=[("Allow", allow)])
    scheme = request.uri.partition(":")[0].lower()
    if scheme not in policy.uri_schemes:
        return make_response(request, 416, to_tag=to_tag)
    if request.method != "CANCEL":
        supported = _lowered(policy).supported_extensions
        unsupported = [tag for tag in request.headers.values("Require") if tag.lower() not in supported]
        if unsupported:
            return make_response(request, 420, to_tag=to_tag, extra=[("Unsupported", ", ".join(unsupported))])
    answer = _body_problem(request, policy, to_tag)
    if answer is not None:
        return answer
    if request.method in ("INVITE", "UPDATE") and not _accepts(request, SDP):
        return make_response(request, 406, to_tag=to_tag)
    if will_forward and _max_forwards(request) == 0:
        return make_response(request, 483, to_tag=to_tag)
    return None


def _body_problem(request: Request, policy: UasPolicy, to_tag: str | None) -> Response | None:
    if not request.body:
        return None
    content_type = request.content_type
    encodings = [e.lower() for e in request.headers.values("Content-Encoding")]
    lowered = _lowered(policy)
    accepted = lowered.accepted_content_types
    known_encodings = lowered.accepted_encodings
    if content_type not in accepted or any(e not in known_encodings for e in encodings):
        extra = [
            ("Accept", ", ".join(sorted(policy.accepted_content_types))),
            ("Accept-Encoding", ", ".join(sorted(policy.accepted_encodings))),
        ]
        return make_response(request, 415, to_tag=to_tag, extra=extra)
    return None


def _accepts(request: Request, media_type: str) -> bool:
    """Whether the request's Accept (absent: application/sdp, RFC 3261 §20.1) admits
    ``media_type``, with ``*/*`` and ``type/*`` ranges and ``q=0`` meaning "not this"."""
    if request.headers.get("Accept") is None:
        return True
    ranges = request.headers.values("Accept")
    main = media_type.split("/", 1)[0]
    for item in ranges:
        kind, *params = (part.strip(" \t") for part in item.split(";"))
        if any(p.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        kind = kind.replace(" ", "").lower()
        if kind in (media_type, f"{main}/*", "*/*"):
            return True
    return False


def _max_forwards(request: Request) -> int | None:
    value = request.headers.get("Max-Forwards")
    return int(value.strip(" \t")) if value is not None else None
