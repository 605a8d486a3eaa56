"""The registrar for phones (RFC 3261 §10.3), sans-IO.

Theory of operation. A REGISTER that passed authentication (the caller runs
:class:`~signaling.sip.auth.DigestChallenger` first and passes the authenticated username) is
processed in the RFC's order, and either every binding change it asks for is committed or none:

1. ``Require`` names an extension we do not support → 420 with ``Unsupported``;
2. the To URI is the address-of-record; a non-SIP scheme → 416 (RFC 4475 unksm2), unparsable → 400,
   a domain we do not serve → 404;
3. the authenticated user may not register this AOR → 403;
4. ``Contact: *`` is legal only alone and with ``Expires: 0`` (else 400) and removes every binding;
5. each contact's lifetime is its ``expires`` parameter, else the ``Expires`` header, else the
   default; a non-zero lifetime below ``min_expires`` → 423 with ``Min-Expires``; above
   ``max_expires`` it is shortened;
6. a binding already held for the same contact URI (RFC 3261 §19.1.4 comparison) with the *same*
   Call-ID is changed only by a higher CSeq — otherwise the whole request fails with 500 (an old,
   reordered REGISTER must not undo a newer one); a different Call-ID always replaces it;
7. past ``max_contacts`` bindings per AOR the least recently refreshed ones are dropped, so a
   phone that rebooted with a new address is never locked out by its own stale bindings.

A query (no Contact) and every success get 200 listing all current bindings, each with its
remaining ``expires`` and every contact parameter it registered with (RFC 4475 cparam01/02,
regescrt). Each binding remembers the *observed* source address and transport of its REGISTER,
which is where calls and NAT keep-alives are sent (the Contact of a phone behind NAT names a
private address). Expiry is driven by the injected clock: :meth:`Registrar.get_timer` /
:meth:`Registrar.handle_timer`; lookups never return an expired binding even between sweeps.
The first binding of an AOR raises :class:`PhoneOnline`, the removal of its last binding
:class:`PhoneOffline` (the web manager's "online phones"). A consumer takes them with
:meth:`Registrar.pop_events`; until then at most ``events_kept`` wait, the oldest dropped first
and counted (:attr:`Registrar.events_dropped`), so a node nobody drains never grows without
bound and a consumer that fell behind knows how many it missed. The online-phone list itself
is :meth:`Registrar.online`, never rebuilt from events.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from .keepalive import NatKeepAlive
from .message import NameAddr, Request, Response, SipUri, make_response
from .timer_queues import EarliestArmed

__all__ = [
    "Binding",
    "PhoneOffline",
    "PhoneOnline",
    "Registrar",
    "RegistrarConfig",
    "RegistrarEvent",
    "canonical_aor",
    "uri_equal",
]

Address = tuple[str, int]

_SIP_SCHEMES = ("sip", "sips")

#: online/offline events kept for :meth:`Registrar.pop_events` (count; two per phone that
#: registers and expires, so a node whose consumer drains now and then never drops one
#: while tens of thousands of phones come back at once after a restart is a burst it may)
EVENTS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    #: seconds granted when neither the contact nor the request names a lifetime (RFC 3261: 3600)
    default_expires: int = 3600
    #: a shorter non-zero lifetime is refused with 423 Interval Too Brief
    min_expires: int = 60
    #: a longer lifetime is shortened to this
    max_expires: int = 7200
    #: bindings kept per address-of-record; the least recently refreshed beyond it are dropped
    max_contacts: int = 10
    #: domains served (Request-URI host); None = any
    domains: frozenset[str] | None = None
    #: option tags a REGISTER may Require
    supported: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if self.max_contacts < 1:
            raise ValueError("max_contacts must be at least 1")


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address-of-record."""

    aor: str
    #: the Contact as registered: URI, display name and contact parameters (without ``expires``)
    contact: NameAddr
    expires_at: float
    q: float
    call_id: str
    cseq: int
    #: where the REGISTER came from (outside the phone's NAT): send calls and keep-alives here
    source: Address
    transport: str
    registered_at: float
    updated_at: float
    user_agent: str | None = None
    #: our socket the REGISTER arrived on (multi-IP nodes answer from the same address)
    local: Address | None = None

    @property
    def uri(self) -> str:
        return self.contact.uri

    def expires_in(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))


@dataclass(frozen=True, slots=True)
class PhoneOnline:
    aor: str
    binding: Binding
    at: float


@dataclass(frozen=True, slots=True)
class PhoneOffline:
    aor: str
    #: "unregistered" (expires 0 or Contact *), "expired" or "removed" (by the operator)
    reason: str
    at: float


RegistrarEvent = PhoneOnline | PhoneOffline


class _Reject(Exception):
    def __init__(
        self, status: int, reason: str | None = None, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(reason or str(status))
        self.status = status
        self.reason = reason
        self.extra = extra


def canonical_aor(uri: SipUri) -> str:
    """The AOR key of a To URI (RFC 3261 §10.3 step 5): scheme, unescaped user, lower-case host;
    parameters, headers, password and port dropped."""
    host = uri.host.lower()
    if uri.user is None:
        return f"{uri.scheme}:{host}"
    return f"{uri.scheme}:{unquote(uri.user)}@{host}"


_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def uri_equal(a: SipUri, b: SipUri) -> bool:
    """SIP URI equivalence (RFC 3261 §19.1.4)."""
    if a.scheme != b.scheme or a.host.lower() != b.host.lower() or a.port != b.port:
        return False
    if unquote(a.user or "") != unquote(b.user or "") or (a.user is None) != (b.user is None):
        return False
    if unquote(a.password or "") != unquote(b.password or ""):
        return False
    for name in _SIGNIFICANT_PARAMS:
        if _param(a, name) != _param(b, name):
            return False
    for name in a.params.keys() & b.params.keys():
        if _param(a, name) != _param(b, name):
            return False
    return _uri_headers(a) == _uri_headers(b)


def _param(uri: SipUri, name: str) -> str | None:
    if name not in uri.params:
        return None
    return unquote(uri.params[name] or "").lower()


def _uri_headers(uri: SipUri) -> frozenset[tuple[str, str]]:
    if not uri.headers:
        return frozenset()
    out: set[tuple[str, str]] = set()
    for item in uri.headers.split("&"):
        name, _, value = item.partition("=")
        out.add((unquote(name).lower(), unquote(value)))
    return frozenset(out)


def _sip_uri(text: str) -> SipUri:
    """Parse a SIP/SIPS URI; 416 for another scheme, 400 when malformed."""
    scheme = text.strip().partition(":")[0].lower()
    if scheme not in _SIP_SCHEMES:
        raise _Reject(416)
    try:
        return SipUri.parse(text)
    except ValueError:
        raise _Reject(400, f"Bad URI {text[:40]!r}") from None


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 10:
        return None
    return int(text)


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a REGISTER came from."""

    source: Address
    transport: str
    local: Address | None
    user_agent: str | None


@dataclass(slots=True)
class _Wanted:
    contact: NameAddr
    uri: SipUri
    expires: int
    q: float


@dataclass(slots=True)
class _Aor:
    bindings: list[Binding] = field(default_factory=list)


class Registrar:
    """Bindings per address-of-record; see the module docstring."""

    def __init__(
        self,
        config: RegistrarConfig | None = None,
        *,
        aor_key: Callable[[SipUri], str] = canonical_aor,
        authorize: Callable[[str, str], bool] | None = None,
        keepalive: NatKeepAlive | None = None,
        events_kept: int = EVENTS_KEPT,
        armed: EarliestArmed | None = None,
    ) -> None:
        """``aor_key`` maps a To (or Request-) URI to the AOR key; a softswitch that knows phones by
        number alone can pass ``lambda uri: uri.user``. ``authorize(username, aor)`` says whether
        an authenticated user may register an AOR (default: the user part must equal the
        username). ``keepalive`` receives each UDP binding's source address. ``events_kept``
        bounds the events waiting for :meth:`pop_events`. ``armed``: where every expiry deadline
        is noted (shared with an adapter's other timer sources, ``timer_queues.EarliestArmed``)."""
        if events_kept < 1:
            raise ValueError("events_kept must be at least 1")
        self.config = config or RegistrarConfig()
        self._aor_key = aor_key
        self._authorize = authorize or _user_matches_aor
        self._keepalive = keepalive
        self._aors: dict[str, _Aor] = {}
        self._expiry: list[tuple[float, str]] = []
        self.armed = armed if armed is not None else EarliestArmed()
        self._events: deque[RegistrarEvent] = deque(maxlen=events_kept)
        #: events dropped, oldest first, because ``events_kept`` were already waiting (a total
        #: since start: a consumer compares it between two :meth:`pop_events`)
        self.events_dropped = 0
        #: AORs whose bindings changed since the last :meth:`pop_changed` (a node sharing its
        #: registrations through a store writes only those)
        self._changed: set[str] = set()

    # ------------------------------------------------------------------ REGISTER

    def register(
        self,
        request: Request,
        source: Address,
        now: float,
        *,
        transport: str = "UDP",
        local: Address | None = None,
        authenticated_user: str | None = None,
        to_tag: str | None = None,
    ) -> Response:
        """Process one REGISTER; the response to send (200 with the bindings, or the rejection)."""
        if request.method != "REGISTER":
            raise ValueError(f"not a REGISTER: {request.method}")
        self.handle_timer(now)  # expired bindings go (with their events) before anything changes
        tag = to_tag or _stable_tag(request)
        origin = _Origin(source, transport.upper(), local, request.headers.get("User-Agent"))
        try:
            aor = self._process(request, origin, now, authenticated_user)
        except _Reject as rej:
            return make_response(request, rej.status, rej.reason, to_tag=tag, extra=rej.extra)
        contacts = [("Contact", _listed(b, now)) for b in self.lookup(aor, now)]
        return make_response(request, 200, to_tag=tag, extra=contacts)

    def _process(self, request: Request, origin: _Origin, now: float, user: str | None) -> str:
        unsupported = [t for t in request.headers.values("Require") if t.lower() not in self.config.supported]
        if unsupported:
            raise _Reject(420, extra=(("Unsupported", ", ".join(unsupported)),))
        aor = self._aor_of(request)
        if user is not None and not self._authorize(user, aor):
            raise _Reject(403)
        values = request.headers.values("Contact")
        if not values:
            return aor  # a query: 200 with the current bindings
        header_expires = _int_or_none(request.headers.get("Expires"))
        try:
            cseq = request.cseq.number
        except ValueError:
            raise _Reject(400, "Bad CSeq") from None
        current = [b for b in self._aors.get(aor, _Aor()).bindings if b.expires_at > now]
        if any(v.strip() == "*" for v in values):
            if len(values) != 1 or header_expires != 0:
                raise _Reject(400, "Wildcard Contact needs Expires 0 and no other Contact")
            for b in current:
                _check_order(b, request.call_id, cseq)
            self._commit(aor, [], now, "unregistered")
            return aor
        wanted = self._wanted_contacts(values, header_expires)
        updated = self._updated(
            aor, current, wanted, call_id=request.call_id, cseq=cseq, origin=origin, now=now
        )
        self._commit(aor, updated, now, "unregistered")
        return aor

    def _updated(
        self,
        aor: str,
        current: list[Binding],
        wanted: list[_Wanted],
        *,
        call_id: str,
        cseq: int,
        origin: _Origin,
        now: float,
    ) -> list[Binding]:
        """The AOR's bindings after the request (nothing is committed yet: all or nothing)."""
        kept = list(current)
        for w in wanted:
            old = next((b for b in kept if _same_contact(b, w.uri)), None)
            if old is not None:
                _check_order(old, call_id, cseq)
                kept.remove(old)
            if w.expires == 0:
                continue
            kept.append(
                Binding(
                    aor=aor,
                    contact=w.contact,
                    expires_at=now + w.expires,
                    q=w.q,
                    call_id=call_id,
                    cseq=cseq,
                    source=origin.source,
                    transport=origin.transport,
                    registered_at=old.registered_at if old is not None else now,
                    updated_at=now,
                    user_agent=origin.user_agent,
                    local=origin.local,
                )
            )
        if len(kept) > self.config.max_contacts:
            kept.sort(key=lambda b: b.updated_at)
            kept = kept[-self.config.max_contacts :]
        return kept

    def _aor_of(self, request: Request) -> str:
        try:
            to = request.to
        except ValueError:
            raise _Reject(400, "Bad To") from None
        to_uri = _sip_uri(to.uri)
        if self.config.domains is not None:
            try:
                host = SipUri.parse(request.uri).host.lower()
            except ValueError:
                raise _Reject(416) from None
            if host not in self.config.domains:
                raise _Reject(404, "Domain Not Served")
        try:
            return self._aor_key(to_uri)
        except ValueError:
            raise _Reject(404) from None

    def _wanted_contacts(self, values: list[str], header_expires: int | None) -> list[_Wanted]:
        wanted: list[_Wanted] = []
        too_brief = False
        for value in values:
            try:
                contact = NameAddr.parse(value)
            except ValueError:
                raise _Reject(400, "Bad Contact") from None
            if not contact.bracketed and ("?" in contact.uri or "," in contact.uri):
                # RFC 3261 §20.10: a URI with headers must be in angle brackets (RFC 4475 regbadct)
                raise _Reject(400, "Bad Contact")
            uri = _sip_uri(contact.uri)
            q = 1.0
            if contact.params.get("q") is not None:
                try:
                    q = float(contact.params["q"] or "")
                except ValueError:
                    q = -1.0
                if not 0.0 <= q <= 1.0:
                    raise _Reject(400, "Bad q-value")
            expires = _int_or_none(contact.params.get("expires"))
            if expires is None:
                expires = header_expires if header_expires is not None else self.config.default_expires
            if 0 < expires < self.config.min_expires:
                too_brief = True
            expires = min(expires, self.config.max_expires)
            params = {k: v for k, v in contact.params.items() if k != "expires"}
            stored = NameAddr(uri=contact.uri, display=contact.display, params=params)
            wanted = [w for w in wanted if not uri_equal(w.uri, uri)]  # the last mention wins
            wanted.append(_Wanted(stored, uri, expires, q))
        if too_brief:
            raise _Reject(423, extra=(("Min-Expires", str(self.config.min_expires)),))
        return wanted

    # ------------------------------------------------------------------ state changes

    def _commit(self, aor: str, bindings: list[Binding], now: float, reason: str) -> None:
        entry = self._aors.get(aor)
        before = entry.bindings if entry is not None else []
        was_online = bool(before)  # register() sweeps first, so these were all live
        self._changed.add(aor)
        if self._keepalive is not None:
            for b in before:
                if b.transport == "UDP":
                    self._keepalive.remove(b.source)
            for b in bindings:
                if b.transport == "UDP":
                    self._keepalive.add(b.source, now)
        if bindings:
            self._aors[aor] = _Aor(list(bindings))
            earliest = min(b.expires_at for b in bindings)
            heapq.heappush(self._expiry, (earliest, aor))
            self.armed.note(earliest)
        else:
            self._aors.pop(aor, None)
        if bindings and not was_online:
            best = max(bindings, key=lambda b: (b.q, b.updated_at))
            self._event(PhoneOnline(aor, best, now))
        elif not bindings and was_online:
            self._event(PhoneOffline(aor, reason, now))

    def _event(self, event: RegistrarEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.events_dropped += 1  # the deque drops its oldest
        self._events.append(event)

    def unregister(self, aor: str, now: float) -> None:
        """Remove every binding of ``aor`` (an operator action or a locked account)."""
        self.handle_timer(now)
        if aor in self._aors:
            self._commit(aor, [], now, "removed")

    def get_timer(self) -> float | None:
        """The next instant a binding expires (None: no bindings)."""
        while self._expiry:
            at, aor = self._expiry[0]
            entry = self._aors.get(aor)
            if entry is not None and any(b.expires_at == at for b in entry.bindings):
                return at
            heapq.heappop(self._expiry)
        return None

    def handle_timer(self, now: float) -> None:
        """Remove the bindings that have expired by ``now``; events say which phones went offline."""
        while self._expiry and self._expiry[0][0] <= now:
            _, aor = heapq.heappop(self._expiry)
            entry = self._aors.get(aor)
            if entry is None:
                continue
            live = [b for b in entry.bindings if b.expires_at > now]
            if len(live) != len(entry.bindings):
                if live:
                    # the AOR stays online: drop the expired bindings quietly
                    self._commit_quietly(aor, entry.bindings, live, now)
                else:
                    self._commit(aor, [], now, "expired")

    def _commit_quietly(self, aor: str, before: list[Binding], live: list[Binding], now: float) -> None:
        if self._keepalive is not None:
            for b in before:
                if b not in live and b.transport == "UDP":
                    self._keepalive.remove(b.source)
        self._aors[aor] = _Aor(live)
        self._changed.add(aor)
        earliest = min(b.expires_at for b in live)
        heapq.heappush(self._expiry, (earliest, aor))
        self.armed.note(earliest)

    def pop_changed(self) -> set[str]:
        """The AORs whose bindings were added, refreshed, changed or removed (expiry included)
        since the last call."""
        changed, self._changed = self._changed, set()
        return changed

    def pop_events(self) -> list[RegistrarEvent]:
        """The online/offline events since the last call, oldest first (those dropped while
        more than ``events_kept`` waited are counted in :attr:`events_dropped`)."""
        events = list(self._events)
        self._events.clear()
        return events

    @property
    def events_waiting(self) -> int:
        """Events raised and not yet taken by :meth:`pop_events`."""
        return len(self._events)

    # ------------------------------------------------------------------ lookups

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """The live bindings of an AOR, best first (highest q, then most recently refreshed)."""
        entry = self._aors.get(aor)
        if entry is None:
            return []
        live = [b for b in entry.bindings if b.expires_at > now]
        return sorted(live, key=lambda b: (-b.q, -b.updated_at))

    def lookup_uri(self, uri: str, now: float) -> list[Binding]:
        """The bindings a request for ``uri`` (e.g. an INVITE's Request-URI) should be sent to."""
        try:
            key = self._aor_key(SipUri.parse(uri))
        except ValueError:
            return []
        return self.lookup(key, now)

    def is_online(self, aor: str, now: float) -> bool:
        return bool(self.lookup(aor, now))

    def online(self, now: float) -> Iterator[tuple[str, list[Binding]]]:
        """Every AOR with at least one live binding, with its bindings (the online-phone list)."""
        for aor in list(self._aors):
            live = self.lookup(aor, now)
            if live:
                yield aor, live

    def __len__(self) -> int:
        """The number of AORs holding bindings (expired ones count until the next sweep)."""
        return len(self._aors)


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    """RFC 3261 §10.3 step 7: within one Call-ID only a higher CSeq may change a binding."""
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise _Reject(500, "Out-of-order REGISTER")


def _listed(binding: Binding, now: float) -> str:
    """The binding as a 200 OK Contact value, with its remaining lifetime."""
    params = {**binding.contact.params, "expires": str(binding.expires_in(now))}
    return str(replace(binding.contact, params=params))


def _same_contact(binding: Binding, uri: SipUri) -> bool:
    try:
        return uri_equal(SipUri.parse(binding.uri), uri)
    except ValueError:
        return False


def _user_matches_aor(username: str, aor: str) -> bool:
    scheme, _, rest = aor.partition(":")
    user = rest.rpartition("@")[0] if scheme in _SIP_SCHEMES else aor
    return user == username


def _stable_tag(request: Request) -> str:
    """A To tag that is the same for a retransmission of the same REGISTER."""
    seed = f"{request.call_id}|{request.headers.get('CSeq') or ''}".encode()
    return hashlib.sha256(seed).hexdigest()[:12]
