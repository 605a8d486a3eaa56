"""Caller identity across the B2BUA: where the caller number comes from on the customer's leg,
and which identity headers (P-Asserted-Identity, P-Preferred-Identity, Privacy) and extra
headers the carrier's INVITE carries — the VOS3000 per-gateway settings, as pure functions.

The caller-number pipeline (reference §8.4, order matters):
1. the mapping gateway's "Caller" source: From user, Remote-Party-ID user or the From display;
2. the mapping gateway's dial plans (routing layer);
3. the routing gateway's caller number pool, when enabled (:class:`CallerPool`);
4. the routing gateway's caller rewriting;
5. emission in From, PAI and PPI (:func:`identity_headers`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .message import Request, SipUri, cached_name_addr, canonical_name

#: Mapping gateway "Caller": which field gives the caller number.
CALLER_SOURCES = ("from", "rpid", "display")
#: Routing gateway PAI / PPI modes ("Pass through" and "Passthrough" are one mode here).
IDENTITY_MODES = ("none", "passthrough", "caller")
PRIVACY_MODES = ("none", "passthrough", "id")

#: Headers the B2BUA builds itself for the carrier's leg: never copied as "extra" headers.
_OWN_HEADERS = frozenset(
    canonical_name(h)
    for h in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Max-Forwards",
        "Route",
        "Record-Route",
        "Content-Length",
        "Content-Type",
        "Content-Encoding",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Session-Expires",
        "Min-SE",
        "Authorization",
        "Proxy-Authorization",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Privacy",
        "Remote-Party-ID",
        "Accept",
        "Expires",
        "User-Agent",
        "Server",
    )
)


def caller_number(request: Request, source: str = "from") -> str:
    """The caller number of an incoming INVITE from the configured field; falls back to the From
    user when the chosen field is absent or carries no number."""
    from_user = _user_of(request.headers.get("From"))
    if source == "rpid":
        rpid = request.headers.values("Remote-Party-ID")
        number = _user_of(rpid[0]) if rpid else ""
        return number or from_user
    if source == "display":
        try:
            display = request.from_parsed.display or ""
        except ValueError:
            display = ""
        digits = "".join(c for c in display if c.isdigit() or c in "+*#")
        return digits or from_user
    return from_user


def _user_of(value: str | None) -> str:
    if not value:
        return ""
    try:
        # the parses are cached by text: a customer's From differs from call to call by its tag
        return _uri_user(cached_name_addr(value).uri)
    except ValueError:
        return ""


@lru_cache(maxsize=1024)
def _uri_user(uri: str) -> str:
    return SipUri.parse(uri).user or ""


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """A routing gateway's identity settings (reference §8.2)."""

    pai: str = "caller"
    privacy: str = "passthrough"
    ppi: str = "none"
    #: "none", "all", or the names of the extra headers to forward
    extra_headers: str | tuple[str, ...] = "none"

    def __post_init__(self) -> None:
        if self.pai not in IDENTITY_MODES or self.ppi not in IDENTITY_MODES:
            raise ValueError(f"PAI/PPI mode must be one of {', '.join(IDENTITY_MODES)}")
        if self.privacy not in PRIVACY_MODES:
            raise ValueError(f"Privacy mode must be one of {', '.join(PRIVACY_MODES)}")


def identity_headers(
    incoming: Request,
    caller: str,
    host: str,
    policy: IdentityPolicy,
    *,
    support_privacy: bool = True,
    display: str | None = None,
) -> list[tuple[str, str]]:
    """The identity headers for the carrier's INVITE: PAI, PPI, Privacy, then extra headers.

    ``caller`` is the number after the whole pipeline; ``host`` is ours (the asserting network).
    """
    out: list[tuple[str, str]] = []
    name = f'"{display}" ' if display else ""
    asserted = f"{name}<sip:{caller}@{host}>"
    for header, mode in (("P-Asserted-Identity", policy.pai), ("P-Preferred-Identity", policy.ppi)):
        if mode == "caller":
            out.append((header, asserted))
        elif mode == "passthrough":
            out.extend((header, value) for value in incoming.headers.get_all(header))
    if policy.privacy == "id":
        out.append(("Privacy", "id"))
    elif policy.privacy == "passthrough" and support_privacy:
        out.extend(("Privacy", value) for value in incoming.headers.get_all("Privacy"))
    out.extend(extra_headers(incoming, policy.extra_headers))
    return out


def extra_headers(incoming: Request, allowed: str | Sequence[str]) -> list[tuple[str, str]]:
    """SIP header transparency: the incoming leg's other headers to copy ("all" of them, or
    the named ones), never the ones this B2BUA builds for the outgoing leg."""
    if allowed == "none" or not allowed:
        return []
    if isinstance(allowed, str) and allowed == "all":
        return [(n, v) for n, v in incoming.headers if n not in _OWN_HEADERS]
    names = {canonical_name(n) for n in allowed} - _OWN_HEADERS
    return [(n, v) for n, v in incoming.headers if n in names]


@dataclass(slots=True)
class CallerPool:
    """A routing gateway's caller number pool: each number at most ``multiplex`` calls at once;
    ``sequence`` 0 picks at random, 1 in turn (FORWARD_SIGNAL_REWRITE_SEQUENCE). When every
    number is busy, :meth:`acquire` returns None and the call keeps its own caller number
    (our choice where the reference leaves it open: a call is never refused for it)."""

    numbers: tuple[str, ...]
    sequence: int = 1
    multiplex: int = 1
    rng: random.Random = field(default_factory=random.Random)
    _in_use: dict[str, int] = field(default_factory=dict)
    _next: int = 0

    def __post_init__(self) -> None:
        if not self.numbers:
            raise ValueError("a caller number pool needs at least one number")
        if self.multiplex < 1:
            raise ValueError("multiplex must be at least 1")
        if self.sequence not in (0, 1):
            raise ValueError("FORWARD_SIGNAL_REWRITE_SEQUENCE is 0 (random) or 1 (poll)")

    def _free(self) -> list[int]:
        return [i for i, n in enumerate(self.numbers) if self._in_use.get(n, 0) < self.multiplex]

    def acquire(self) -> str | None:
        free = self._free()
        if not free:
            return None
        if self.sequence == 0:
            index = self.rng.choice(free)
        else:
            count = len(self.numbers)
            index = next(i % count for i in range(self._next, self._next + count) if i % count in free)
            self._next = index + 1
        number = self.numbers[index]
        self._in_use[number] = self._in_use.get(number, 0) + 1
        return number

    def release(self, number: str) -> None:
        count = self._in_use.get(number, 0)
        if count <= 1:
            self._in_use.pop(number, None)
        else:
            self._in_use[number] = count - 1

    def in_use(self) -> Iterable[tuple[str, int]]:
        return self._in_use.items()
