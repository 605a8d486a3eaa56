"""The SIP message model: requests, responses, headers and the structured header values.

Parsing bytes into these objects lives in :mod:`signaling.sip.parser`; everything here is plain
data and serialisation, shared by the transaction layer, the dialog layer and the B2BUA. Header
names are stored in their canonical long form (compact forms are expanded on the way in), values
as the text that was on the wire, so a parse → serialise → parse round trip keeps every header's
meaning. Structured values (Via, name-addr, CSeq, SIP URI) are parsed on demand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from . import grammar

#: RFC 3261 §7.3.3 and later RFCs: compact header forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "Min-SE",
        "MIME-Version",
        "Organization",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Priority",
        "Privacy",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "RAck",
        "Reason",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Remote-Party-ID",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "RSeq",
        "Server",
        "Session-Expires",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}

#: Headers whose values may be comma-separated lists (RFC 3261 §7.3.1); the others may carry
#: commas inside a single value (dates, auth parameters, quoted display names).
LIST_HEADERS = frozenset(
    {
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "Proxy-Require",
        "Record-Route",
        "Require",
        "Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    }
)

#: Reason phrases for the status codes we send (RFC 3261 §21 and extensions).
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

#: sent-protocol and sent-by of a Via value; SWS is legal around the slashes and the colon
#: (RFC 4475 wsinv, lwsdisp).
_VIA_SENT = re.compile(
    r"[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z0-9.!%*_+`'~-]+)[ \t]+"
    r"(\[[^\]]*\]|[^ \t:\[\]]+)(?:[ \t]*:[ \t]*([0-9]+))?[ \t]*",
    re.IGNORECASE,
)
_CSEQ = re.compile(r"[ \t]*([0-9]+)[ \t]+([A-Za-z0-9.!%*_+`'~-]+)[ \t]*")
#: methods a CSeq names nearly always (a plain token each: CSeq.parse's fast path)
_COMMON_METHODS = frozenset(
    ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "REGISTER", "PRACK")
)

#: RFC 3261 §8.1.1.7: every branch we generate starts with this.
BRANCH_MAGIC = "z9hG4bK"


def _canonical_name(name: str) -> str:
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    known = _CANONICAL.get(lower)
    if known is not None:
        return known
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


#: spellings already seen → canonical name: header names are looked up by the stack many times
#: per message (every ``Headers.get``), nearly always in the same few spellings
_NAMES: dict[str, str] = {name: name for name in _CANONICAL.values()}
#: past this many spellings (someone sending invented header names) new ones are not stored
_NAMES_MAX = 4096


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name; compact forms become their long form."""
    known = _NAMES.get(name)
    if known is None:
        known = _canonical_name(name)
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[name] = known
    return known


def split_list(value: str) -> list[str]:
    """Split a header value at top-level commas: not inside quotes, angle brackets or escapes."""
    if "," not in value:
        value = value.strip(" \t")
        return [value] if value else []
    return [item for item in _split_top_level(value) if item]


def split_list_strict(value: str) -> list[str]:
    """Like :func:`split_list`, but an empty element (``a,,b``, a trailing comma) or an
    unterminated quote is a ValueError: RFC 3261 list headers have no null elements."""
    if "," not in value and '"' not in value:
        items = [value.strip(" \t")]
    else:
        items = _split_top_level(value, strict=True)
    if not all(items):
        raise ValueError(f"empty element in list {value!r}")
    return items


def _split_top_level(value: str, *, strict: bool = False) -> list[str]:
    items: list[str] = []
    start = 0
    quoted = False
    angle = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle += 1
        elif ch == ">" and angle:
            angle -= 1
        elif ch == "," and not angle:
            items.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    if strict and (quoted or angle):
        raise ValueError(f"unbalanced quotes or angle brackets in {value!r}")
    items.append(value[start:].strip(" \t"))
    return items


class Headers:
    """An ordered multimap of header fields; names are canonical, lookups case-insensitive."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(k), v) for k, v in items]
        #: name → its first field's value, built at the first lookup (a message's headers are
        #: looked up a dozen times and more on its way through the stack) and dropped by every
        #: change
        self._first: dict[str, str] | None = None

    @classmethod
    def from_wire(cls, items: list[tuple[str, str]]) -> Headers:
        """Adopt ``items`` whose names are already canonical (the scanner's output), uncopied."""
        headers = cls.__new__(cls)  # __init__ would copy and canonicalise
        headers._items = items
        headers._first = None
        return headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        return clone

    def _index(self) -> dict[str, str]:
        """name → its first field's value (the first of each name wins), kept until a change."""
        first = self._first = dict(reversed(self._items))
        return first

    def get(self, name: str) -> str | None:
        """The first field with this name, as written."""
        first = self._first
        if first is None:
            first = self._index()
        value = first.get(name)  # the stack asks by canonical name nearly always
        if value is None:
            key = _NAMES.get(name) or canonical_name(name)
            if key != name:
                value = first.get(key)
        return value

    def first_value(self, name: str) -> str | None:
        """The first value of a list header (``values(name)[0]``): the top Via."""
        index = self._first
        if index is None:
            index = self._index()
        first = index.get(name)
        if first is None and (_NAMES.get(name) or canonical_name(name)) != name:
            first = self.get(name)  # asked by another spelling
        if first is not None and "," not in first:
            value = first.strip(" \t")
            if value:
                return value
        if first is None:
            return None
        values = self.values(name)  # a list in one field, or an empty first field
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every field with this name, each as written (not split at commas)."""
        key = canonical_name(name)
        return [v for k, v in self._items if k == key]

    def values(self, name: str) -> list[str]:
        """Every value of a list header, split at top-level commas across all its fields."""
        key = _NAMES.get(name) or canonical_name(name)
        first = self._first
        if first is None:
            first = self._index()
        if key not in first:
            return []  # most asked for are absent (Require, Record-Route, Route, Accept)
        out: list[str] = []
        for k, v in self._items:
            if k == key:
                out.extend(split_list(v) if key in LIST_HEADERS else [v.strip()])
        return out

    def add(self, name: str, value: str) -> None:
        self._first = None
        self._items.append((_NAMES.get(name) or canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Insert before the first field of this name (or at the top): how a Via is pushed."""
        self._first = None
        key = canonical_name(name)
        for i, (k, _) in enumerate(self._items):
            if k == key:
                self._items.insert(i, (key, value))
                return
        self._items.insert(0, (key, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name with one, keeping the position of the first."""
        self._first = None
        key = canonical_name(name)
        for i, (k, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (key, value)
                self._items[i + 1 :] = [item for item in self._items[i + 1 :] if item[0] != key]
                return
        self._items.append((key, value))

    def remove(self, name: str) -> None:
        self._first = None
        key = canonical_name(name)
        self._items = [item for item in self._items if item[0] != key]

    def pop_first_value(self, name: str) -> str | None:
        """Remove and return the first value of a list header (e.g. the top Via or Route)."""
        self._first = None
        key = canonical_name(name)
        for i, (k, v) in enumerate(self._items):
            if k != key:
                continue
            parts = split_list(v)
            if len(parts) <= 1:
                del self._items[i]
            else:
                self._items[i] = (key, ", ".join(parts[1:]))
            return parts[0] if parts else None
        return None


def _format_params(params: dict[str, str | None]) -> str:
    if not params:
        return ""
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params.items()])


def split_host_port(hostport: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (host, port); raises ValueError."""
    hostport = hostport.strip()
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 reference in {hostport!r}")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"junk after IPv6 reference in {hostport!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = hostport.partition(":")
        if not sep:
            port_text = ""
    if not host:
        raise ValueError(f"empty host in {hostport!r}")
    if port_text == "":
        if hostport.endswith(":"):
            raise ValueError(f"empty port in {hostport!r}")
        return host, None
    try:
        port = grammar.parse_digits(port_text, max_digits=5)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"bad port in {hostport!r}")
    return host, port


def format_host_port(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@dataclass(slots=True)
class SipUri:
    """A sip:/sips: URI (RFC 3261 §19.1). ``user`` keeps its escapes as written."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Strict RFC 3261 §19.1.1 parse (see :data:`grammar.SIP_URI`); raises ValueError."""
        return cls._parse_exact(text.strip(grammar.WSP))

    @classmethod
    def _parse_exact(cls, text: str) -> SipUri:
        match = grammar.SIP_URI.fullmatch(text)
        if match is None:
            raise ValueError(f"not a valid SIP URI: {text[:80]!r}")
        host = grammar.check_host(match["host"])
        port: int | None = None
        if match["port"] is not None:
            port = int(match["port"])
            if not 0 < port < 65536:
                raise ValueError(f"bad port in {text[:80]!r}")
        return cls(
            host=host,
            user=match["user"],
            password=match["password"],
            port=port,
            scheme=match["scheme"].lower(),
            params=grammar.parse_uri_params(match["params"]),
            headers=match["headers"],
        )

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        tail = f"?{self.headers}" if self.headers is not None else ""
        return (
            f"{self.scheme}:{userinfo}{format_host_port(self.host, self.port)}"
            f"{_format_params(self.params)}{tail}"
        )


@lru_cache(maxsize=4096)
def check_uri(uri: str) -> str:
    """An absolute URI as found in a name-addr or Request-URI: any scheme, checked for its
    characters; SIP and SIPS URIs fully parsed. Returns the lower-case scheme; ValueError.
    Cached by the URI's text: a call's messages carry the same few URIs again and again (only
    their tags and branches change); a bad URI raises every time and is never stored."""
    scheme = uri[:5].lower()
    if scheme.startswith("sip:") or scheme == "sips:":
        return SipUri._parse_exact(uri).scheme
    return grammar.check_absolute_uri(uri)


@lru_cache(maxsize=1024)
def sip_uri_headers(uri: str) -> str | None:
    """The headers part (after ``?``) of a SIP or SIPS URI, None when it has none; ValueError
    when ``uri`` does not parse (:meth:`SipUri.parse`). Cached by text, like :func:`check_uri`."""
    return SipUri.parse(uri).headers


#: ``display <uri> params`` with the display a quoted string or tokens (RFC 3261 §25.1).
_NAME_ADDR = re.compile(
    f"(?:({grammar.QUOTED_STRING.pattern})|({grammar.TOKEN.pattern}(?:[ \\t]++{grammar.TOKEN.pattern})*+))?"
    "[ \\t]*+<([^<>]*+)>(.*)",
    re.DOTALL,
)


@dataclass(slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI, header parameters (``tag``)."""

    uri: str
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    #: False when the URI was written without angle brackets (addr-spec form).
    bracketed: bool = True

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Strict name-addr / addr-spec parse (RFC 3261 §20.10, §25.1); raises ValueError.

        Rejected, as RFC 4475 asks: unbalanced quotes (quotbal), white space inside ``< >``
        (badaspec), unquoted non-token display names (baddn), an addr-spec holding ``?`` or ``,``
        (regbadct), empty parameters (badinv01)."""
        text = text.strip(grammar.WSP)
        match = _NAME_ADDR.fullmatch(text)
        if match is not None:
            uri = match[3]
            check_uri(uri)
            display = match[1] or match[2]
            return cls(uri=uri, display=display, params=grammar.parse_header_params(match[4]), bracketed=True)
        if text.startswith('"'):
            grammar.skip_quoted(text, 0)
        if "<" in text or ">" in text:
            raise ValueError(f"bad name-addr (display name, quotes or angle brackets) {text[:80]!r}")
        if not text:
            raise ValueError("empty address")
        # addr-spec: parameters after a bare URI belong to the header, not the URI (RFC 3261
        # §20.10), so a URI that needs ``;``, ``?`` or ``,`` must come in angle brackets
        end = 0
        while end < len(text) and text[end] not in "; \t":
            end += 1
        uri = text[:end]
        if any(ch in uri for ch in '?,"'):
            raise ValueError(f"URI {uri!r} must be enclosed in <>")
        check_uri(uri)
        return cls(uri=uri, display=None, params=grammar.parse_header_params(text[end:]), bracketed=False)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{_format_params(self.params)}"


def _check_via_params(params: dict[str, str | None]) -> None:
    branch = params.get("branch", "")
    if branch is None or (branch and not grammar.is_token(branch)):
        raise ValueError(f"bad Via branch {branch!r}")
    for name in ("received", "maddr"):
        value = params.get(name)
        if value is not None:
            grammar.check_ipv6_or_host(value)
    ttl = params.get("ttl")
    if ttl is not None and grammar.parse_digits(ttl, 3) > 255:
        raise ValueError(f"bad Via ttl {ttl!r}")
    rport = params.get("rport")
    if rport is not None and not 0 < grammar.parse_digits(rport, 5) < 65536:
        raise ValueError(f"bad Via rport {rport!r}")


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """One via-parm (not a comma list); raises ValueError on bad syntax."""
        head, semi, tail = text.partition(";")
        match = _VIA_SENT.fullmatch(head)
        if match is None:
            raise ValueError(f"bad Via sent-protocol or sent-by in {text!r}")
        host = grammar.check_host(match.group(2))
        port: int | None = None
        if match.group(3) is not None:
            port = grammar.parse_digits(match.group(3), max_digits=5)
            if not 0 < port < 65536:
                raise ValueError(f"bad Via port in {text!r}")
        params = grammar.parse_header_params(semi + tail)
        _check_via_params(params)
        return cls(transport=match.group(1).upper(), host=host, port=port, params=params)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch carries the magic cookie and something after it (RFC 3261
        §17.2.3); otherwise transactions match the RFC 2543 way (RFC 4475 badbranch)."""
        branch = self.params.get("branch")
        return branch is not None and branch.startswith(BRANCH_MAGIC) and len(branch) > len(BRANCH_MAGIC)

    def __str__(self) -> str:
        sent_by = format_host_port(self.host, self.port)
        return f"SIP/2.0/{self.transport} {sent_by}{_format_params(self.params)}"


class CSeq(NamedTuple):
    """A CSeq value. A named tuple: most CSeq texts a node sees are new (the numbers of its
    own requests are random), and a named tuple is made, and hashed, in C."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """``1*DIGIT LWS Method``, the number below 2**31 (RFC 3261 §8.1.1.5); ValueError."""
        number_text, space, method = text.partition(" ")
        if space and method in _COMMON_METHODS and number_text.isascii() and number_text.isdigit():
            # the usual form, one space between digits and a method we know: what the
            # pattern below would match, without it
            number = grammar.parse_digits(number_text)
            if number < 2**31:
                return cls(number, method)
        match = _CSEQ.fullmatch(text)
        if match is None:
            raise ValueError(f"bad CSeq {text!r}")
        number = grammar.parse_digits(match.group(1))
        if number >= 2**31:
            raise ValueError(f"CSeq number out of range in {text!r}")
        return cls(number, match.group(2))

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


class _Message:
    """What requests and responses share: headers, body and the common header accessors."""

    headers: Headers
    body: bytes

    # The accessors below read the headers' index directly (what ``headers.get`` does for a
    # canonical name): the stack calls them a hundred times per call.

    @property
    def call_id(self) -> str:
        first = self.headers._first
        if first is None:
            first = self.headers._index()
        return first.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        first = self.headers._first
        if first is None:
            first = self.headers._index()
        return cached_cseq(first.get("CSeq") or "")

    @property
    def top_via(self) -> Via:
        top = self.headers.first_value("Via")
        if top is None:
            raise ValueError("no Via header")
        v = cached_via(top)
        return Via(v.transport, v.host, v.port, dict(v.params))

    @property
    def from_(self) -> NameAddr:
        return _name_addr_copy(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return _name_addr_copy(self.headers.get("To") or "")

    @property
    def from_parsed(self) -> NameAddr:
        """The parsed From, shared with the parse cache: read it, never change it (``from_``
        is a copy of one's own). ValueError when it does not parse."""
        first = self.headers._first
        if first is None:
            first = self.headers._index()
        return cached_name_addr(first.get("From") or "")

    @property
    def to_parsed(self) -> NameAddr:
        """The parsed To, shared with the parse cache: read it, never change it."""
        first = self.headers._first
        if first is None:
            first = self.headers._index()
        return cached_name_addr(first.get("To") or "")

    @property
    def from_tag(self) -> str | None:
        """``from_.tag`` without a copy of the parsed From (ValueError when it does not parse)."""
        first = self.headers._first
        if first is None:
            first = self.headers._index()
        return cached_name_addr(first.get("From") or "").params.get("tag")

    @property
    def to_tag(self) -> str | None:
        """``to.tag`` without a copy of the parsed To (ValueError when it does not parse)."""
        first = self.headers._first
        if first is None:
            first = self.headers._index()
        return cached_name_addr(first.get("To") or "").params.get("tag")

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None


# The structured values of a message's headers are read many times per message (transaction
# matching, dialog lookup, responses); parsing is by far the larger cost, so parses are cached
# by the header's text and each caller gets its own copy of the mutable ones.
#
# Most values a node sees for the first time differ from one it has seen only in their last
# parameter: a From or To in its tag (the same party, a new call), a Via in its branch (the
# same hop, a new transaction). Such a value is parsed as its cached beginning plus that one
# parameter, when the parameter is a plain token; anything else (a quoted or repeated
# parameter, white space, a parse error) takes the full parse, so the result and any error are
# those of the full parse.

_base_name_addr = lru_cache(maxsize=1024)(NameAddr.parse)
_base_via = lru_cache(maxsize=1024)(Via.parse)


_token_match = grammar.TOKEN.fullmatch


def _parse_name_addr(text: str) -> NameAddr:
    base, sep, tag = text.strip(" \t").rpartition(";tag=")  # grammar.WSP
    if sep and _token_match(tag) is not None:
        try:
            shared = _base_name_addr(base)
        except ValueError:
            shared = None
        if shared is not None and "tag" not in shared.params:
            params = dict(shared.params)
            params["tag"] = tag
            return NameAddr(shared.uri, shared.display, params, shared.bracketed)
    return NameAddr.parse(text)


def _parse_via(text: str) -> Via:
    base, sep, branch = text.rpartition(";branch=")
    if sep and _token_match(branch) is not None:
        try:
            shared = _base_via(base)
        except ValueError:
            shared = None
        if shared is not None and "branch" not in shared.params:
            params = dict(shared.params)
            params["branch"] = branch
            return Via(shared.transport, shared.host, shared.port, params)
    return Via.parse(text)


cached_cseq = lru_cache(maxsize=4096)(CSeq.parse)
cached_via = lru_cache(maxsize=4096)(_parse_via)
cached_name_addr = lru_cache(maxsize=8192)(_parse_name_addr)


def _name_addr_copy(text: str) -> NameAddr:
    n = cached_name_addr(text)
    return NameAddr(n.uri, n.display, dict(n.params), n.bracketed)


def parse_name_addr(text: str) -> NameAddr:
    """:meth:`NameAddr.parse` through the cache: a copy of its own for the caller."""
    return _name_addr_copy(text)


@dataclass(slots=True, eq=True)
class Request(_Message):
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass(slots=True, eq=True)
class Response(_Message):
    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


Message = Request | Response


def serialize(msg: Message) -> bytes:
    """Wire form; Content-Length always states the body's true length."""
    body = msg.body
    fields = "".join([f"{k}: {v}\r\n" for k, v in msg.headers._items if k != "Content-Length"])
    text = f"{msg.start_line()}\r\n{fields}Content-Length: {len(body)}\r\n\r\n"
    return text.encode("utf-8", "surrogateescape") + body


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq copied;
    a To tag added when given and the request had none (never on 100 Trying)."""
    # the request's names are canonical already
    copied = _COPIED_WITH_RECORD_ROUTE if 100 < status < 300 else _COPIED_TO_RESPONSE
    items = [item for item in request.headers._items if item[0] in copied]
    if to_tag is not None and status != 100:
        for i, (name, value) in enumerate(items):
            if name == "To":
                try:
                    tagged = cached_name_addr(value).tag is not None
                except ValueError:
                    tagged = True
                if not tagged:
                    items[i] = (name, f"{value};tag={to_tag}")
    for name, value in extra:
        items.append((canonical_name(name), value))
    return Response(
        status=status,
        reason=reason if reason is not None else REASON_PHRASES.get(status, ""),
        headers=Headers.from_wire(items),
        body=body,
    )


#: copied from a request into every response to it (Record-Route only into 101-299); the To
#: gets our tag where it has none
_COPIED_TO_RESPONSE = frozenset(("Via", "From", "To", "Call-ID", "CSeq"))
_COPIED_WITH_RECORD_ROUTE = _COPIED_TO_RESPONSE | {"Record-Route"}
