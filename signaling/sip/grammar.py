"""RFC 3261 §25 lexical rules the value parsers share: tokens, quoted strings, hosts, parameters.

Every check here either returns the parsed piece or raises :class:`ValueError`; the parser turns
that into a 400. The rules are the RFC's ABNF with three deliberate liberties, each one seen from
real equipment and harmless to the meaning of a message:

- ``#`` is accepted unescaped in the user part of a SIP URI (dial strings such as ``*86#``);
- ``_`` is accepted in host names (lab and container host names);
- header-parameter values may carry ``:`` and ``[ ]`` without quotes, so an IPv6 ``received``
  parameter works with and without brackets (RFC 5118 §4.5).

Text arrives here as ``str`` decoded from UTF-8 with ``surrogateescape`` (see the parser): bytes
that are not UTF-8 show up as lone surrogates and count as non-ASCII text.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

TOKEN_CHARS = "\\-A-Za-z0-9.!%*_+`'~"  # noqa: S105 (the RFC 3261 token alphabet, no secret)
#: RFC 3261 token: method names, header names, parameter names, option tags, transports.
TOKEN = re.compile(f"[{TOKEN_CHARS}]++")
#: qdtext (LWS, %x21, %x23-5B, %x5D-7E, UTF8-NONASCII) or quoted-pair (\ and any CHAR but CR/LF).
QUOTED_STRING = re.compile(
    r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\U0010ffff]++|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*+"'
)
#: A generic-param value, liberal about ``:`` and brackets (IPv6 received/maddr values).
_PARAM_VALUE = re.compile(f"[{TOKEN_CHARS}:\\[\\]]+|{QUOTED_STRING.pattern}")
#: One header parameter, with the SWS the grammar allows around ``;`` and ``=``.
_HEADER_PARAM = re.compile(
    f"[ \\t]*;[ \\t]*([{TOKEN_CHARS}]+)(?:[ \\t]*=[ \\t]*({_PARAM_VALUE.pattern}))?[ \\t]*"
)
#: Call-ID: word ["@" word].
_WORD = "[A-Za-z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]+"
CALL_ID = re.compile(f"{_WORD}(?:@{_WORD})?")
#: URI scheme (RFC 3986 §3.1).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
#: What may appear in any absolute URI we carry: RFC 3986 reserved, unreserved and escapes.
_URI_TEXT = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_ESCAPE_BAD = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESC = "%[0-9A-Fa-f]{2}"
# Runs of plain characters or escapes, possessive (Python 3.11+) so that a failing match never
# backtracks into them: every piece below is delimited by a character it cannot contain.
_PARAMCHARS = f"(?:[A-Za-z0-9\\-_.!~*'()\\[\\]/:&+$]++|{_ESC})++"
_HNVCHARS = f"(?:[A-Za-z0-9\\-_.!~*'()\\[\\]/?:+$]++|{_ESC})"
#: A whole SIP or SIPS URI (RFC 3261 §19.1.1, user with the ``#`` liberty) in one match. The
#: user part may hold ``;``, ``?`` and ``/`` (RFC 4475 intmeth, semiuri); as neither host,
#: parameters nor headers may hold ``@``, the match is unambiguous and linear.
SIP_URI = re.compile(
    "(?P<scheme>[Ss][Ii][Pp][Ss]?):"
    f"(?:(?P<user>(?:[A-Za-z0-9\\-_.!~*'()&=+$,;?/#]++|{_ESC})++)"
    f"(?::(?P<password>(?:[A-Za-z0-9\\-_.!~*'()&=+$,]++|{_ESC})*+))?@)?"
    "(?P<host>\\[[0-9A-Fa-f:.]*+\\]|[A-Za-z0-9_.-]++)"
    "(?::(?P<port>[0-9]{1,5}+))?"
    f"(?P<params>(?:;{_PARAMCHARS}(?:={_PARAMCHARS})?)*+)"
    f"(?:\\?(?P<headers>{_HNVCHARS}++={_HNVCHARS}*+(?:&{_HNVCHARS}++={_HNVCHARS}*+)*+))?"
)
_HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_IPV4 = re.compile(
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)
_HEX_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")

#: Linear white space inside one (already unfolded) header value.
WSP = " \t"


def is_token(text: str) -> bool:
    return TOKEN.fullmatch(text) is not None


def parse_digits(text: str, max_digits: int = 10) -> int:
    """ASCII ``1*DIGIT`` → int; ``max_digits`` bounds the work an attacker can ask for."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not a number: {text[:20]!r}")
    stripped = text.lstrip("0") or "0"
    if len(stripped) > max_digits:
        raise ValueError(f"number too large: {text[:20]!r}")
    return int(stripped)


@lru_cache(maxsize=2048)
def check_host(host: str) -> str:
    """A host name, dotted IPv4 address or bracketed IPv6 reference; returns it unchanged.
    Cached: the same few hosts (ours, the gateways') are checked in nearly every header of
    every message; a refused host raises every time and is never stored."""
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:
            raise ValueError(f"bad IPv6 reference {host!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"bad IPv6 reference {host!r}") from None
        return host
    name = host[:-1] if host.endswith(".") else host
    if (
        _HOST_NAME.fullmatch(name) is None
        or name.startswith(("-", "."))
        or name.endswith("-")
        or ".." in name
        or "-." in name
        or ".-" in name
    ):
        raise ValueError(f"bad host name {host!r}")
    if name.replace(".", "").isdigit() and _IPV4.fullmatch(host) is None:
        raise ValueError(f"bad IPv4 address {host!r}")
    return host


def check_ipv6_or_host(value: str) -> None:
    """A Via ``received``/``maddr`` value: host, IPv4, IPv6 with or without brackets (RFC 5118)."""
    if ":" in value and not value.startswith("["):
        value = f"[{value}]"
    check_host(value)


def check_scheme(scheme: str) -> None:
    if _SCHEME.fullmatch(scheme) is None:
        raise ValueError(f"bad URI scheme {scheme!r}")


def check_absolute_uri(text: str) -> str:
    """Any ``scheme:rest`` URI, checked only for characters and escapes; returns the scheme."""
    scheme, colon, rest = text.partition(":")
    if not colon or not rest:
        raise ValueError(f"not an absolute URI: {text!r}")
    check_scheme(scheme)
    if _URI_TEXT.fullmatch(rest) is None or _ESCAPE_BAD.search(rest):
        raise ValueError(f"bad characters in URI {text!r}")
    return scheme.lower()


def parse_uri_params(text: str) -> dict[str, str | None]:
    """``;a=1;b`` as matched by :data:`SIP_URI`; names lower-cased, each at most once."""
    params: dict[str, str | None] = {}
    for part in text.split(";")[1:]:
        name, eq, value = part.partition("=")
        key = name.lower()
        if key in params:
            raise ValueError(f"URI parameter {name!r} repeated")
        params[key] = value if eq else None
    return params


def parse_header_params(text: str) -> dict[str, str | None]:
    """``;tag=x ; q = 0.5 ;lr`` after a header value; names lower-cased, each at most once.

    Raises ValueError on anything else: an empty name (``;;``), a stray comma, junk at the end.
    """
    params: dict[str, str | None] = {}
    pos = 0
    end = len(text)
    while pos < end:
        match = _HEADER_PARAM.match(text, pos)
        if match is None:
            if text[pos:].strip(WSP) == "":
                break
            raise ValueError(f"bad parameter list {text!r}")
        key = match.group(1).lower()
        if key in params:
            raise ValueError(f"parameter {match.group(1)!r} repeated")
        params[key] = match.group(2)
        pos = match.end()
    return params


def skip_quoted(text: str, start: int) -> int:
    """``text[start]`` is ``"``: the index just past the closing quote; ValueError if unclosed."""
    match = QUOTED_STRING.match(text, start)
    if match is None:
        raise ValueError(f"unterminated or invalid quoted string in {text!r}")
    return match.end()


def _escaped_char(match: re.Match[str]) -> str:
    # bytes >= 0x80 become the surrogates that ``surrogateescape`` turns back into those bytes
    byte = int(match.group(1), 16)
    return chr(byte) if byte < 0x80 else chr(0xDC00 + byte)


def unescape(text: str) -> str:
    """Percent-decoding of a URI component (``%41`` → ``A``), for comparisons such as the
    registrar's address-of-record match; decoded bytes that are not UTF-8 stay as surrogates."""
    if "%" not in text:
        return text
    raw = _HEX_ESCAPE.sub(_escaped_char, text)
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
