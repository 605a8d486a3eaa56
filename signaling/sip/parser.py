"""SIP message parser: bytes in, :class:`Request` or :class:`Response` out, or a
:class:`SipParseError` that says how to answer.

Theory of operation. :func:`parse_message` takes one message: a whole datagram (UDP) or one frame
cut by :class:`StreamFramer` (TCP). The Cython scanner (:mod:`signaling.sip._scanner`, with the
pure-Python twin as the fallback) cuts the start line and the header lines, unfolds
continuation lines and canonicalises header names; everything after that is Python:

1. the start line: a request line is exactly ``Method SP Request-URI SP SIP-Version`` (RFC 4475
   lwsstart and lwsruri are rejected; trailing white space is tolerated, our choice for trws);
   a version other than 2.0 is 505; a Request-URI beyond the limit is 414;
2. the body, by Content-Length (RFC 3261 §18.3): on a datagram, bytes past the declared length
   are dropped (dblreq) and a missing Content-Length means "the rest of the datagram" (inv2543);
   a body shorter than declared is 400 (clerr); on a stream the frame must match exactly; more
   than one Content-Length is 400 (mcl01); a body over the limit is 413, a message over the
   limit 513;
3. the headers every transaction needs (Via, From, To, Call-ID, CSeq; Max-Forwards may be absent,
   as in RFC 2543 messages), each at most once where the RFC says so (multi01), and the syntax of
   every header whose grammar the stack relies on (Via, From, To, Contact, Route, Record-Route,
   Call-ID, CSeq, Max-Forwards, Content-Type): malformed ones are 400; a CSeq method that differs
   from the request method is 400, or 501 when the method is unknown to us (mismatch02).

Text is decoded from UTF-8 with ``surrogateescape``: valid UTF-8 reads as text (display names,
reason phrases), other bytes survive as lone surrogates, and :func:`serialize` writes the same
bytes back. The body stays bytes.

A request that fails after its start line and headers were cut carries them in
``SipParseError.request``, so the transport can answer with the right Via, From, To, Call-ID and
CSeq (:func:`signaling.sip.validate.error_response`). A response that fails is flagged
``is_response``: it is dropped, never answered (bigcode, scalarlg).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from . import _scanner_py, grammar
from .message import (
    Headers,
    Request,
    Response,
    cached_cseq,
    cached_name_addr,
    cached_via,
    check_uri,
    sip_uri_headers,
    split_list_strict,
)

#: The scanner's result: start line, headers, body offset, status (0 = fine), reason.
ScanResult = tuple[str, list[tuple[str, str]], int, int, str]
_scan: Callable[[bytes, int], ScanResult]
try:
    from ._scanner import scan as _compiled_scan

    _scan = _compiled_scan
except ImportError:  # the extension is not built: the pure-Python twin
    _scan = _scanner_py.scan

__all__ = [
    "DEFAULT_LIMITS",
    "KNOWN_METHODS",
    "MAX_MESSAGE_BYTES",
    "ParseLimits",
    "SipParseError",
    "StreamFramer",
    "check_message",
    "is_keepalive",
    "parse_message",
]

#: Methods of RFC 3261 and its extensions; a CSeq mismatch on any other method is answered 501.
KNOWN_METHODS = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)

#: The largest UDP payload; also our default cap for a message on a stream.
MAX_MESSAGE_BYTES = 65_535

#: Headers that may appear once at most (RFC 3261 §7.3.1, §20; RFC 4475 multi01, mcl01).
SINGLE_HEADERS = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type")
#: Headers without which no transaction or dialog can be matched (RFC 3261 §8.1.1).
MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_MEDIA_TYPE = re.compile(f"[ \\t]*[{grammar.TOKEN_CHARS}]+[ \\t]*/[ \\t]*[{grammar.TOKEN_CHARS}]+")


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one message may cost us. Each limit has its own answer code."""

    max_message_bytes: int = MAX_MESSAGE_BYTES  # bytes; beyond: 513 Message Too Large
    max_header_bytes: int = 16_384  # bytes of start line + headers; beyond: 513
    max_body_bytes: int = MAX_MESSAGE_BYTES  # bytes; beyond: 413 Request Entity Too Large
    max_uri_length: int = 4_096  # characters of Request-URI; beyond: 414 Request-URI Too Long


DEFAULT_LIMITS = ParseLimits()


class SipParseError(ValueError):
    """A message we cannot take. ``status`` is the response a UAS sends for a request (400, 413,
    414, 501, 505, 513); ``request`` is the request as far as it was read (None when not even the
    start line and headers could be cut); ``is_response`` means the message was a response, to be
    dropped."""

    def __init__(
        self, status: int, reason: str, *, request: Request | None = None, is_response: bool = False
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.request = request
        self.is_response = is_response


def is_keepalive(data: bytes) -> bool:
    """A CRLF keep-alive (RFC 5626 §3.5.1: ``CRLF CRLF`` ping, ``CRLF`` pong), not a message."""
    return bool(data) and data[0] in (13, 10) and not data.strip(b"\r\n")


def scan_request(data: bytes) -> Request | None:
    """The start line and header fields of a request, cut by the scanner alone (no validation):
    enough to answer it statelessly (an overload 503) without the cost of a full parse. None for
    a response or anything the scanner cannot cut."""
    try:
        start_line, items, _, _, _ = _scan(data, DEFAULT_LIMITS.max_header_bytes)
    except Exception:
        return None
    parts = start_line.split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0" or not items:
        return None
    return Request(method=parts[0], uri=parts[1], headers=Headers.from_wire(list(items)))


def parse_message(
    data: bytes, *, stream: bool = False, limits: ParseLimits = DEFAULT_LIMITS
) -> Request | Response:
    """One SIP message. ``stream`` is True for a frame cut by :class:`StreamFramer` (Content-Length
    required and exact), False for a datagram. Raises only :class:`SipParseError`."""
    if type(data) is not bytes:
        data = bytes(data)
    head = data[:4]
    if head[:1] in b"\r\n":  # leading CR/LF (RFC 3261 §7.5; b"" too): look past them
        head = data.lstrip(b"\r\n")[:4]
    is_response = head == b"SIP/" or head.upper() == b"SIP/"
    if len(data) > limits.max_message_bytes:
        raise SipParseError(
            513, f"message larger than {limits.max_message_bytes} bytes", is_response=is_response
        )
    start_line, items, body_start, status, reason = _scan(data, limits.max_header_bytes)
    if not start_line and not items:
        raise SipParseError(400, "empty message", is_response=is_response)
    headers = Headers.from_wire(items)
    if is_response:
        return _response(data, start_line, headers, body_start, status, reason, stream, limits)
    return _request(data, start_line, headers, body_start, status, reason, stream, limits)


def _request(  # noqa: PLR0917 (positional: one call per message)
    data: bytes,
    start_line: str,
    headers: Headers,
    body_start: int,
    status: int,
    reason: str,
    stream: bool,
    limits: ParseLimits,
) -> Request:
    parts = start_line.rstrip(" \t").split(" ")
    method = parts[0] if parts[0] in KNOWN_METHODS or grammar.is_token(parts[0]) else ""
    uri = parts[1] if len(parts) > 1 else ""
    request = Request(method, uri, headers)
    if status:
        raise SipParseError(status, reason, request=request)
    problem = _request_line_problem(parts, limits)
    if problem is None:
        try:
            request.body = _body(data, body_start, headers, stream, limits)
        except _BodyTooLarge as exc:
            problem = 413, str(exc)
        except ValueError as exc:
            problem = 400, str(exc)
    if problem is None:
        problem = check_message(request)
    if problem is not None:
        raise SipParseError(problem[0], problem[1], request=request)
    return request


def _request_line_problem(parts: list[str], limits: ParseLimits) -> tuple[int, str] | None:  # noqa: PLR0911
    if len(parts) != 3 or not all(parts):
        return 400, "malformed Request-Line (Method SP Request-URI SP SIP-Version)"
    method, uri, version = parts
    if method not in KNOWN_METHODS and not grammar.is_token(method):
        return 400, f"bad method {method[:40]!r}"
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION.fullmatch(version):
            return 505, f"SIP version {version} not supported"
        return 400, f"bad SIP version {version[:40]!r}"
    if len(uri) > limits.max_uri_length:
        return 414, f"Request-URI longer than {limits.max_uri_length} characters"
    try:
        head = uri[:5].lower()
        if head.startswith("sip:") or head == "sips:":
            if sip_uri_headers(uri) is not None:
                # RFC 3261 §19.1.1: no headers in a Request-URI (RFC 4475 escruri)
                return 400, "headers in the Request-URI"
        else:
            check_uri(uri)
    except ValueError as exc:
        return 400, f"bad Request-URI: {exc}"
    return None


def _response(  # noqa: PLR0917 (positional: one call per message)
    data: bytes,
    start_line: str,
    headers: Headers,
    body_start: int,
    status: int,
    reason: str,
    stream: bool,
    limits: ParseLimits,
) -> Response:
    parts = start_line.split(" ", 2)
    code = parts[1] if len(parts) > 1 else ""
    problem: tuple[int, str] | None = None
    if status:
        problem = status, reason
    elif parts[0] != "SIP/2.0" and parts[0].upper() != "SIP/2.0":
        problem = 505, f"SIP version {parts[0][:20]!r} not supported"
    elif len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
        problem = 400, f"bad status code {code[:20]!r}"
    response = Response(int(code) if problem is None else 0, parts[2] if len(parts) > 2 else "", headers)
    if problem is None:
        try:
            response.body = _body(data, body_start, headers, stream, limits)
        except ValueError as exc:
            problem = 400, str(exc)
    if problem is None:
        problem = check_message(response)
    if problem is not None:
        raise SipParseError(problem[0], problem[1], is_response=True)
    return response


class _BodyTooLarge(ValueError):
    pass


def _body(data: bytes, body_start: int, headers: Headers, stream: bool, limits: ParseLimits) -> bytes:
    """The body by Content-Length (RFC 3261 §18.3); ValueError says what is wrong."""
    values = [v for k, v in headers._items if k == "Content-Length"]
    if len(values) == 1 and len(value := values[0]) <= 10 and value.isdigit() and value.isascii():
        declared: int | None = int(value)  # the usual case of content_length, inline
    else:
        declared = content_length(headers)
    available = len(data) - body_start
    if declared is None:
        if stream:
            raise ValueError("Content-Length is required on a stream transport")
        length = available
    else:
        if declared > available:
            raise ValueError(f"body shorter ({available} bytes) than its Content-Length ({declared})")
        if stream and declared < available:
            raise ValueError("bytes after the body on a stream transport")
        length = declared
    if length > limits.max_body_bytes:
        raise _BodyTooLarge(f"body larger than {limits.max_body_bytes} bytes")
    return data[body_start : body_start + length] if length else b""


def content_length(headers: Headers) -> int | None:
    """The one Content-Length value, None when absent; ValueError when repeated or not a number."""
    values = [v for k, v in headers._items if k == "Content-Length"]  # headers.get_all, inline
    if not values:
        return None
    if len(values) > 1:
        raise ValueError("more than one Content-Length")
    value = values[0]
    if len(value) <= 10 and value.isdigit() and value.isascii():  # what parse_digits takes
        return int(value)
    try:
        return grammar.parse_digits(values[0].strip(" \t"))
    except ValueError:
        raise ValueError(f"bad Content-Length {values[0][:20]!r}") from None


# The checks parse with the cached value parsers the message accessors use: a header checked
# here is read again by the stack (and again in its retransmissions), so it is parsed once.


def _check_via(value: str) -> None:
    for item in split_list_strict(value):
        cached_via(item)


def _check_contact(value: str) -> None:
    if value.strip(" \t") == "*":
        return
    for item in split_list_strict(value):
        cached_name_addr(item)


def _check_route(value: str) -> None:
    for item in split_list_strict(value):
        if not cached_name_addr(item).bracketed:
            raise ValueError(f"route {item!r} must be in <>")


def _check_call_id(value: str) -> None:
    if grammar.CALL_ID.fullmatch(value) is None:
        raise ValueError(f"bad Call-ID {value[:60]!r}")


def _check_max_forwards(value: str) -> None:
    if grammar.parse_digits(value.strip(" \t"), 3) > 255:
        raise ValueError(f"Max-Forwards {value!r} above 255")


def _check_content_type(value: str) -> None:
    match = _MEDIA_TYPE.match(value)
    if match is None:
        raise ValueError(f"bad Content-Type {value[:60]!r}")
    grammar.parse_header_params(value[match.end() :])


def _check_content_length(value: str) -> None:
    grammar.parse_digits(value.strip(" \t"))


def _check_cseq(value: str) -> None:
    cached_cseq(value)


#: The headers whose syntax the stack relies on, and how each is checked.
_CHECKS: dict[str, Callable[[str], object]] = {
    "Via": _check_via,
    "From": cached_name_addr,
    "To": cached_name_addr,
    "Contact": _check_contact,
    "Route": _check_route,
    "Record-Route": _check_route,
    "Call-ID": _check_call_id,
    "CSeq": _check_cseq,
    "Max-Forwards": _check_max_forwards,
    "Content-Type": _check_content_type,
    "Content-Length": _check_content_length,
}


def _header_problem_now(name: str, value: str) -> str | None:
    """What is wrong with one checked header field, or None."""
    try:
        _CHECKS[name](value)
    except ValueError as exc:
        return f"bad {name}: {exc}"
    return None


#: :func:`_header_problem_now` cached by name and value: most fields a node receives repeat
#: one it has seen (Max-Forwards, Content-Type, Content-Length, a gateway's Contact)
_header_problem = lru_cache(maxsize=4096)(_header_problem_now)

#: How :func:`check_message` checks each header. Fields new in nearly every message (a Via's
#: branch, the tags of From and To, a Call-ID, the CSeq of a node's own requests, whose numbers
#: are random) are checked inline, by the parsers the stack reads them with, without the field
#: cache above, whose every lookup would miss and evict (their own value parsers cache what
#: repeats: a Via or name-addr up to its branch or tag); the rest through that cache.
_VIA_KIND, _NAME_ADDR_KIND, _CALL_ID_KIND, _CSEQ_KIND, _CACHED_KIND = 0, 1, 2, 3, 4
_KINDS: dict[str, int] = dict.fromkeys(_CHECKS, _CACHED_KIND) | {
    "Via": _VIA_KIND,
    "From": _NAME_ADDR_KIND,
    "To": _NAME_ADDR_KIND,
    "Call-ID": _CALL_ID_KIND,
    "CSeq": _CSEQ_KIND,
}
_MANDATORY_SET = frozenset(MANDATORY_HEADERS)
_call_id_match = grammar.CALL_ID.fullmatch


def check_message(msg: Request | Response) -> tuple[int, str] | None:  # noqa: PLR0912
    """The first structural problem of a message's headers as ``(status, reason)``, or None:
    mandatory headers missing, single headers repeated, bad syntax, CSeq method mismatch."""
    # one pass, the usual cases inline: what _header_problem_now does for each, with its texts
    names: list[str] = []
    cseq = ""
    for name, value in msg.headers._items:
        kind = _KINDS.get(name)
        if kind is None:
            continue
        names.append(name)
        if kind == _CACHED_KIND:
            problem = _header_problem(name, value)
            if problem is not None:
                return 400, problem
            continue
        try:
            if kind == _CSEQ_KIND:
                cached_cseq(value)
                if not cseq:
                    cseq = value
            elif kind == _VIA_KIND:
                if "," in value or '"' in value:
                    _check_via(value)
                else:
                    item = value.strip(" \t")
                    if not item:
                        raise ValueError(f"empty element in list {value!r}")
                    cached_via(item)
            elif kind == _NAME_ADDR_KIND:
                cached_name_addr(value)
            elif _call_id_match(value) is None:
                raise ValueError(f"bad Call-ID {value[:60]!r}")
        except ValueError as exc:
            return 400, f"bad {name}: {exc}"
    unique = set(names)
    if not unique >= _MANDATORY_SET:
        missing = [name for name in MANDATORY_HEADERS if name not in unique]
        return 400, "missing " + ", ".join(missing)
    if len(names) != len(unique):  # a name more than once (Via may: it is a list)
        repeated = [name for name in SINGLE_HEADERS if names.count(name) > 1]
        if repeated:
            return 400, "more than one " + ", ".join(repeated)
    if isinstance(msg, Request):
        cseq_method = cached_cseq(cseq).method  # the one CSeq, checked above
        if cseq_method != msg.method:
            status = 400 if msg.method in KNOWN_METHODS else 501
            return status, f"CSeq method {cseq_method} does not match {msg.method}"
    return None


class StreamFramer:
    """Cuts a stream (TCP, TLS) into messages by Content-Length, which a stream requires
    (RFC 3261 §18.3). CR/LF between messages are skipped; each ``CRLF CRLF`` among them is counted
    in ``keepalives`` (an RFC 5626 ping, to be answered with one CRLF).

    :meth:`feed` returns the complete messages as bytes, for :func:`parse_message` with
    ``stream=True``. When the stream can no longer be framed (a header section or message beyond
    ``max_size``: 513; Content-Length missing, repeated or bad: 400) the connection must be closed:
    :meth:`feed` raises :class:`SipParseError` — at once when that read framed nothing, else it
    first returns the messages framed before the fault and keeps the error in :attr:`error` (check
    it after delivering them); every later call raises it.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_BYTES) -> None:
        self.max_size = max_size
        self.keepalives = 0
        self._buf = bytearray()
        self._searched = 0  # no end of headers before this offset
        self._frame = 0  # length of the message at the head of the buffer, once known
        self._gap = bytearray()  # CR/LF skipped since the last message
        self._gap_pings = 0
        self.error: SipParseError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self.error is not None:
            raise self.error
        self._buf += data
        out: list[bytes] = []
        try:
            while (message := self._next()) is not None:
                out.append(message)
        except SipParseError as exc:
            self.error = exc
            self._buf.clear()
            if not out:
                raise
        return out

    def _skip_gap(self) -> None:
        buf = self._buf
        i = 0
        while i < len(buf) and buf[i] in (13, 10):
            i += 1
        if not i:
            return
        self._gap += buf[:i]
        del buf[:i]
        pings = self._gap.count(b"\r\n\r\n")
        self.keepalives += pings - self._gap_pings
        self._gap_pings = pings
        if len(self._gap) > 64:  # keep only what a ping split across reads still needs
            tail = bytes(self._gap[-3:])
            self._gap = bytearray(tail)
            self._gap_pings = 0

    def _next(self) -> bytes | None:
        buf = self._buf
        if not self._frame:
            self._skip_gap()
            if not buf:
                return None
            self._frame = self._frame_length()
            if not self._frame:
                return None
            self._gap.clear()
            self._gap_pings = 0
        if len(buf) < self._frame:
            return None
        message = bytes(buf[: self._frame])
        del buf[: self._frame]
        self._frame = 0
        self._searched = 0
        return message

    def _frame_length(self) -> int:
        """Length of the message at the head of the buffer, 0 while its headers are incomplete."""
        buf = self._buf
        limit = min(len(buf), self.max_size)
        start = max(0, self._searched - 3)
        blank = buf.find(b"\n\r\n", start, limit)
        other = buf.find(b"\n\n", start, limit if blank < 0 else blank + 2)
        if other >= 0 and (blank < 0 or other < blank):
            body_start = other + 2
        elif blank >= 0:
            body_start = blank + 3
        else:
            if len(buf) >= self.max_size:
                raise SipParseError(513, f"header section not ended within {self.max_size} bytes")
            self._searched = len(buf)
            return 0
        head = bytes(buf[:body_start])
        start_line, items, _, _, _ = _scan(head, self.max_size)
        headers = Headers.from_wire(items)
        partial = None
        if not start_line.upper().startswith("SIP/"):
            parts = start_line.split(" ")
            partial = Request(parts[0], parts[1] if len(parts) > 1 else "", headers)
        try:
            declared = content_length(headers)
        except ValueError as exc:
            raise SipParseError(400, str(exc), request=partial) from None
        if declared is None:
            raise SipParseError(400, "Content-Length is required on a stream transport", request=partial)
        if body_start + declared > self.max_size:
            raise SipParseError(513, f"message larger than {self.max_size} bytes", request=partial)
        return body_start + declared
