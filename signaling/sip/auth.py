"""SIP digest authentication (RFC 2617, RFC 7616, RFC 8760), both sides, sans-IO.

Theory of operation.

*Server* (:class:`DigestChallenger`): a request without usable credentials is answered 401
(WWW-Authenticate; REGISTER) or 407 (Proxy-Authenticate; everything else, as a softswitch is the
proxy-like first hop for a phone's INVITE). Nonces are **stateless**: ``base64url(issue time in
ms ‖ 8 random bytes ‖ HMAC-SHA-256(node secret, time ‖ salt ‖ realm)[:16])``, so any node that
shares the secret can check them and nothing is stored per challenge (a flood of unauthenticated
requests costs no memory). A request with credentials is checked in this order:

1. credentials for our realm in the right header, else a fresh challenge;
2. the fields RFC 7616 requires, else 400 (a malformed request, not a failed login);
3. the digest-uri equals the Request-URI, else 400 (RFC 2617 §3.2.2.5);
4. the nonce is one of ours (HMAC), else a fresh challenge (another node's secret, or forged);
5. the password (or stored HA1) from the lookup callback gives the same response, compared in
   constant time, else 403 — an unknown user gets the very same 403, so usernames cannot be probed;
6. only now freshness: an expired nonce or a nonce-count not above the last one seen (a replay)
   gets a new challenge with ``stale=true``, so a client that knows the password retries silently.

Nonce-count memory is bounded (``nc_capacity`` nonces, oldest first-use evicted). Evicting could
let a replayed ``nc=1`` through, so the issue time of the newest evicted nonce is kept as a
watermark: an unknown nonce issued at or before it is treated as stale, never as first use.

Requests without ``qop`` (RFC 2069 clients) are accepted when ``allow_legacy`` is set; such a
response can be replayed for the same method and URI until the nonce expires, which is why the
nonce lifetime is short (300 s by default).

*Client* (:class:`DigestClient`): answers 401/407 from carriers for outbound REGISTER and INVITE,
choosing the strongest algorithm offered (SHA-256 over MD5), ``qop=auth`` when offered, counting
``nc`` per nonce, and giving up when a request that already carried our credentials for a realm
is challenged again without ``stale=true`` (wrong password: no retry loop).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from .message import Request, Response, make_response

__all__ = [
    "AuthOutcome",
    "AuthResult",
    "DigestAlgorithm",
    "DigestChallenge",
    "DigestChallenger",
    "DigestClient",
    "DigestCredentials",
    "Password",
    "StoredHa1",
    "compute_ha1",
    "digest_response",
    "format_auth_params",
    "parse_auth_header",
]


class DigestAlgorithm(Enum):
    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA256 = "SHA-256"
    SHA256_SESS = "SHA-256-sess"

    @classmethod
    def parse(cls, text: str | None) -> DigestAlgorithm:
        """An absent algorithm means MD5 (RFC 2617 §3.2.1); names compare case-insensitively."""
        if text is None:
            return cls.MD5
        for alg in cls:
            if alg.value.lower() == text.strip().lower():
                return alg
        raise ValueError(f"unsupported digest algorithm {text!r}")

    @property
    def hash_name(self) -> str:
        return "md5" if self in (DigestAlgorithm.MD5, DigestAlgorithm.MD5_SESS) else "sha256"

    @property
    def is_session(self) -> bool:
        return self in (DigestAlgorithm.MD5_SESS, DigestAlgorithm.SHA256_SESS)

    @property
    def base(self) -> DigestAlgorithm:
        """The non-session algorithm whose HA1 a ``-sess`` variant starts from."""
        return DigestAlgorithm.MD5 if self.hash_name == "md5" else DigestAlgorithm.SHA256


#: Client preference when several challenges are offered (RFC 8760 §2.4: strongest first).
_PREFERENCE = (
    DigestAlgorithm.SHA256,
    DigestAlgorithm.SHA256_SESS,
    DigestAlgorithm.MD5,
    DigestAlgorithm.MD5_SESS,
)


def _h(alg: DigestAlgorithm, text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.new(alg.hash_name, data).hexdigest()


def compute_ha1(
    alg: DigestAlgorithm,
    username: str,
    realm: str,
    password: str,
    *,
    nonce: str = "",
    cnonce: str = "",
) -> str:
    """HA1 = H(username:realm:password), or for ``-sess`` H(that:nonce:cnonce)."""
    ha1 = _h(alg, f"{username}:{realm}:{password}")
    return _session_ha1(alg, ha1, nonce, cnonce)


def _session_ha1(alg: DigestAlgorithm, base_ha1: str, nonce: str, cnonce: str) -> str:
    return _h(alg, f"{base_ha1}:{nonce}:{cnonce}") if alg.is_session else base_ha1


def digest_response(
    alg: DigestAlgorithm,
    ha1: str,
    *,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1) from an already computed HA1."""
    a2 = f"{method}:{uri}:{_h(alg, body)}" if qop == "auth-int" else f"{method}:{uri}"
    ha2 = _h(alg, a2)
    if qop is None:
        return _h(alg, f"{ha1}:{nonce}:{ha2}")
    return _h(alg, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --------------------------------------------------------------------------- header syntax


def parse_auth_header(value: str) -> tuple[str, dict[str, str]]:
    """``Digest a=b, c="d"`` → (``Digest``, {a: b, c: d}); names lower-cased, quotes removed.

    Raises ValueError on unbalanced quotes or a parameter without ``=``."""
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme:
        raise ValueError("empty authorization header")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t\r\n,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise ValueError(f"auth parameter without value in {value!r}")
        name = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise ValueError(f"unterminated quoted string in {value!r}")
            i += 1
            val = "".join(chars)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            val = rest[i:end].strip()
            i = end
        if not name:
            raise ValueError(f"empty auth parameter name in {value!r}")
        params[name] = val
    return scheme, params


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_auth_params(scheme: str, params: Iterable[tuple[str, str, bool]]) -> str:
    """``scheme name="value", name=token`` from (name, value, quoted) triples."""
    return scheme + " " + ", ".join(f"{k}={_quote(v) if q else v}" for k, v, q in params)


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One WWW-Authenticate / Proxy-Authenticate value."""

    realm: str
    nonce: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        scheme, p = parse_auth_header(value)
        if scheme.lower() != "digest":
            raise ValueError(f"not a Digest challenge: {scheme!r}")
        if "realm" not in p or "nonce" not in p:
            raise ValueError("Digest challenge without realm or nonce")
        qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
        return cls(
            realm=p["realm"],
            nonce=p["nonce"],
            algorithm=DigestAlgorithm.parse(p.get("algorithm")),
            qop=qop,
            opaque=p.get("opaque"),
            stale=p.get("stale", "").lower() == "true",
        )

    def __str__(self) -> str:
        items: list[tuple[str, str, bool]] = [("realm", self.realm, True), ("nonce", self.nonce, True)]
        if self.opaque is not None:
            items.append(("opaque", self.opaque, True))
        if self.stale:
            items.append(("stale", "true", False))
        items.append(("algorithm", self.algorithm.value, False))
        if self.qop:
            items.append(("qop", ",".join(self.qop), True))
        return format_auth_params("Digest", items)


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """One Authorization / Proxy-Authorization value."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        """Raises ValueError when a field RFC 7616 §3.4 requires is missing or malformed."""
        scheme, p = parse_auth_header(value)
        if scheme.lower() != "digest":
            raise ValueError(f"not Digest credentials: {scheme!r}")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            raise ValueError(f"Digest credentials without {', '.join(missing)}")
        qop = p.get("qop")
        qop = qop.strip().lower() if qop is not None else None
        nc = p.get("nc")
        cnonce = p.get("cnonce")
        if qop is not None:
            if qop not in ("auth", "auth-int"):
                raise ValueError(f"unsupported qop {qop!r}")
            if nc is None or cnonce is None:
                raise ValueError("qop without nc or cnonce")
            if len(nc) != 8 or any(c not in "0123456789abcdefABCDEF" for c in nc):
                raise ValueError(f"bad nonce-count {nc!r}")
        return cls(
            username=p["username"],
            realm=p["realm"],
            nonce=p["nonce"],
            uri=p["uri"],
            response=p["response"].lower(),
            algorithm=DigestAlgorithm.parse(p.get("algorithm")),
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=p.get("opaque"),
        )

    def __str__(self) -> str:
        items: list[tuple[str, str, bool]] = [
            ("username", self.username, True),
            ("realm", self.realm, True),
            ("nonce", self.nonce, True),
            ("uri", self.uri, True),
            ("response", self.response, True),
            ("algorithm", self.algorithm.value, False),
        ]
        if self.qop is not None:
            items += [
                ("qop", self.qop, False),
                ("nc", self.nc or "", False),
                ("cnonce", self.cnonce or "", True),
            ]
        if self.opaque is not None:
            items.append(("opaque", self.opaque, True))
        return format_auth_params("Digest", items)


# --------------------------------------------------------------------------- server side


@dataclass(frozen=True, slots=True)
class Password:
    """The clear-text password of a user, as the credentials lookup may return it."""

    value: str


@dataclass(frozen=True, slots=True)
class StoredHa1:
    """A stored H(username:realm:password) in hex, for the non-session algorithm it was made with."""

    value: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5


#: ``lookup(username, realm)`` → the user's secret, or None for an unknown user.
CredentialLookup = Callable[[str, str], Password | StoredHa1 | None]


class AuthOutcome(Enum):
    ACCEPTED = "accepted"
    #: no credentials for our realm (or not our nonce): send the challenge in ``response``.
    CHALLENGE = "challenge"
    #: right password, expired or replayed nonce: a new challenge with stale=true.
    STALE = "stale"
    #: wrong password or unknown user: 403.
    REJECTED = "rejected"
    #: credentials present but malformed: 400.
    BAD_REQUEST = "bad_request"


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: AuthOutcome
    #: the authenticated (or claimed, for REJECTED/STALE) username
    username: str | None = None
    #: what to send back when not accepted
    response: Response | None = None
    #: a short machine-readable cause for logs and failed-auth counters
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome is AuthOutcome.ACCEPTED


_TS = struct.Struct(">Q")
_SALT_LEN = 8  # bytes of randomness per nonce, so two challenges in one millisecond differ
_CLOCK_SKEW_MS = 1000  # a nonce "issued" this far in the future still counts (nodes' clocks differ)
_MAC_LEN = 16  # bytes of HMAC-SHA-256 kept: 128 bits is beyond brute force within a nonce lifetime


class _Denied(Exception):
    def __init__(self, outcome: AuthOutcome, detail: str, username: str | None = None) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.username = username


@dataclass(slots=True)
class _NonceUse:
    issued_ms: int
    last_nc: int


class DigestChallenger:
    """Issues digest challenges and verifies credentials; one per realm (see module docstring).

    ``now`` must be a clock shared by every node that shares ``secret`` (wall-clock seconds) when
    nonces are checked by another node than the one that issued them; a single node may use a
    monotonic clock.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        lookup: CredentialLookup,
        *,
        algorithms: Sequence[DigestAlgorithm] = (DigestAlgorithm.MD5,),
        qop: bool = True,
        allow_legacy: bool = True,
        nonce_ttl: float = 300.0,
        nc_capacity: int = 10000,
        check_uri: bool = True,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the node secret must be at least 16 bytes")
        if not algorithms:
            raise ValueError("at least one digest algorithm is needed")
        if nonce_ttl <= 0 or nc_capacity <= 0:
            raise ValueError("nonce_ttl and nc_capacity must be positive")
        self.realm = realm
        self._secret = secret
        self._lookup = lookup
        self.algorithms = tuple(algorithms)
        self.qop = qop
        self.allow_legacy = allow_legacy
        self.nonce_ttl = nonce_ttl
        self.check_uri = check_uri
        self._random = random_bytes
        self._nc_capacity = nc_capacity
        self._uses: OrderedDict[str, _NonceUse] = OrderedDict()
        self._evicted_watermark_ms = -1

    # -- nonces

    def make_nonce(self, now: float) -> str:
        head = _TS.pack(int(now * 1000)) + self._random(_SALT_LEN)
        return base64.urlsafe_b64encode(head + self._mac(head)).decode("ascii").rstrip("=")

    def _mac(self, head: bytes) -> bytes:
        return hmac.new(self._secret, head + self.realm.encode("utf-8"), hashlib.sha256).digest()[:_MAC_LEN]

    def _nonce_issued_ms(self, nonce: str) -> int | None:
        """The issue time of one of our nonces, or None when it is not ours."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != _TS.size + _SALT_LEN + _MAC_LEN:
            return None
        head, mac = raw[: _TS.size + _SALT_LEN], raw[_TS.size + _SALT_LEN :]
        if not hmac.compare_digest(mac, self._mac(head)):
            return None
        issued_ms: int = _TS.unpack(head[: _TS.size])[0]
        return issued_ms

    # -- challenges

    def challenge(
        self,
        request: Request,
        now: float,
        *,
        stale: bool = False,
        proxy: bool | None = None,
        to_tag: str | None = None,
    ) -> Response:
        """A 401 (REGISTER) or 407 (other methods) with one challenge per configured algorithm."""
        use_proxy = request.method != "REGISTER" if proxy is None else proxy
        status, header = (407, "Proxy-Authenticate") if use_proxy else (401, "WWW-Authenticate")
        nonce = self.make_nonce(now)
        extra = [
            (
                header,
                str(
                    DigestChallenge(
                        realm=self.realm,
                        nonce=nonce,
                        algorithm=alg,
                        qop=("auth",) if self.qop else (),
                        stale=stale,
                    )
                ),
            )
            for alg in self.algorithms
        ]
        return make_response(request, status, to_tag=to_tag or self._random(6).hex(), extra=extra)

    # -- verification

    def authenticate(
        self, request: Request, now: float, *, proxy: bool | None = None, to_tag: str | None = None
    ) -> AuthResult:
        """Check ``request``'s credentials; the result carries the response to send when not accepted."""
        use_proxy = request.method != "REGISTER" if proxy is None else proxy
        try:
            username = self._verify(request, now, "Proxy-Authorization" if use_proxy else "Authorization")
        except _Denied as denied:
            if denied.outcome is AuthOutcome.BAD_REQUEST:
                resp = make_response(request, 400, to_tag=to_tag or self._random(6).hex())
            elif denied.outcome is AuthOutcome.REJECTED:
                resp = make_response(request, 403, to_tag=to_tag or self._random(6).hex())
            else:
                stale = denied.outcome is AuthOutcome.STALE
                resp = self.challenge(request, now, stale=stale, proxy=use_proxy, to_tag=to_tag)
            return AuthResult(denied.outcome, denied.username, resp, denied.detail)
        return AuthResult(AuthOutcome.ACCEPTED, username, None, "ok")

    def _verify(self, request: Request, now: float, header: str) -> str:
        """The authenticated username; raises _Denied in the order the module docstring gives."""
        creds = self._credentials_for_realm(request, header)
        user = creds.username
        if creds.algorithm not in self.algorithms:
            raise _Denied(AuthOutcome.CHALLENGE, f"algorithm {creds.algorithm.value} not offered", user)
        if creds.qop is None and self.qop and not self.allow_legacy:
            raise _Denied(AuthOutcome.CHALLENGE, "qop required", user)
        if self.check_uri and creds.uri != request.uri:
            raise _Denied(AuthOutcome.BAD_REQUEST, "digest uri differs from the Request-URI", user)
        issued_ms = self._nonce_issued_ms(creds.nonce)
        if issued_ms is None:
            raise _Denied(AuthOutcome.CHALLENGE, "foreign nonce", user)
        expected = self._expected_response(creds, request)
        if expected is None or not hmac.compare_digest(expected, creds.response):
            raise _Denied(AuthOutcome.REJECTED, "wrong credentials", user)
        age_ms = int(now * 1000) - issued_ms
        if age_ms > self.nonce_ttl * 1000 or age_ms < -_CLOCK_SKEW_MS:
            raise _Denied(AuthOutcome.STALE, "nonce expired", user)
        if creds.qop is not None and not self._count(creds.nonce, issued_ms, int(creds.nc or "0", 16)):
            raise _Denied(AuthOutcome.STALE, "nonce-count replayed", user)
        return user

    def _credentials_for_realm(self, request: Request, header: str) -> DigestCredentials:
        for value in request.headers.get_all(header):
            try:
                scheme, params = parse_auth_header(value)
            except ValueError:
                raise _Denied(AuthOutcome.BAD_REQUEST, "unparsable credentials") from None
            if scheme.lower() != "digest" or params.get("realm") != self.realm:
                continue  # another scheme (RFC 4475 regaut01) or another hop's realm
            try:
                return DigestCredentials.parse(value)
            except ValueError as exc:
                raise _Denied(AuthOutcome.BAD_REQUEST, str(exc), params.get("username")) from None
        raise _Denied(AuthOutcome.CHALLENGE, "no credentials")

    def _expected_response(self, creds: DigestCredentials, request: Request) -> str | None:
        secret = self._lookup(creds.username, self.realm)
        alg = creds.algorithm
        if secret is None:
            # still spend the hashing time, so an unknown user answers as slowly as a wrong password
            _h(alg, f"{creds.username}:{self.realm}:")
            return None
        if isinstance(secret, Password):
            base_ha1 = _h(alg, f"{creds.username}:{self.realm}:{secret.value}")
        elif secret.algorithm is alg.base:
            base_ha1 = secret.value.lower()
        else:
            return None  # an MD5 HA1 cannot answer a SHA-256 challenge
        ha1 = _session_ha1(alg, base_ha1, creds.nonce, creds.cnonce or "")
        return digest_response(
            alg,
            ha1,
            method=request.method,
            uri=creds.uri,
            nonce=creds.nonce,
            qop=creds.qop,
            nc=creds.nc or "",
            cnonce=creds.cnonce or "",
            body=request.body,
        )

    def _count(self, nonce: str, issued_ms: int, nc: int) -> bool:
        """Record nonce-count ``nc`` for ``nonce``; False when it is not above the last one seen."""
        use = self._uses.get(nonce)
        if use is None:
            if issued_ms <= self._evicted_watermark_ms:
                return False  # we may have forgotten this nonce: make the client take a new one
            self._uses[nonce] = _NonceUse(issued_ms, nc)
            while len(self._uses) > self._nc_capacity:
                _, old = self._uses.popitem(last=False)
                self._evicted_watermark_ms = max(self._evicted_watermark_ms, old.issued_ms)
            return nc >= 1
        if nc <= use.last_nc:
            return False
        use.last_nc = nc
        return True

    def forget_expired(self, now: float) -> None:
        """Drop nonce-count records whose nonce has expired anyway (call now and then)."""
        limit = int((now - self.nonce_ttl) * 1000)
        for nonce in [n for n, u in self._uses.items() if u.issued_ms < limit]:
            del self._uses[nonce]

    @property
    def tracked_nonces(self) -> int:
        return len(self._uses)


# --------------------------------------------------------------------------- client side


@dataclass(slots=True)
class _ClientNonce:
    nonce: str
    nc: int = 0


class DigestClient:
    """Answers digest challenges for one set of credentials (a carrier account, a trunk)."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        realm: str | None = None,
        cnonce_factory: Callable[[], str] | None = None,
    ) -> None:
        self.username = username
        self.password = password
        #: restrict answers to this realm (None: answer any realm the carrier names)
        self.realm = realm
        self._cnonce = cnonce_factory or (lambda: secrets.token_hex(8))
        self._last: dict[tuple[str, str], tuple[DigestChallenge, _ClientNonce]] = {}

    def answer(
        self,
        challenge: Response,
        method: str,
        uri: str,
        body: bytes = b"",
        *,
        previous: Request | None = None,
    ) -> list[tuple[str, str]] | None:
        """Credential headers answering a 401/407, to add to the re-sent request (new CSeq, new branch).

        None when nothing can be answered: no Digest challenge we support, a realm we are not
        configured for, or ``previous`` (the request that was challenged) already carried our
        credentials for that realm and the server did not say ``stale=true`` (wrong password).
        """
        if challenge.status == 401:
            in_header, out_header = "WWW-Authenticate", "Authorization"
        elif challenge.status == 407:
            in_header, out_header = "Proxy-Authenticate", "Proxy-Authorization"
        else:
            return None
        by_realm: dict[str, DigestChallenge] = {}
        for value in challenge.headers.get_all(in_header):
            try:
                parsed = DigestChallenge.parse(value)
            except ValueError:
                continue
            if self.realm is not None and parsed.realm != self.realm:
                continue
            if parsed.qop and not {"auth", "auth-int"} & set(parsed.qop):
                continue
            best = by_realm.get(parsed.realm)
            if best is None or _PREFERENCE.index(parsed.algorithm) < _PREFERENCE.index(best.algorithm):
                by_realm[parsed.realm] = parsed
        if not by_realm:
            return None
        tried = _realms_in(previous, out_header) if previous is not None else set()
        out: list[tuple[str, str]] = []
        for realm, chal in by_realm.items():
            if realm in tried and not chal.stale:
                return None
            state = _ClientNonce(chal.nonce)
            self._last[(out_header, realm)] = (chal, state)
            out.append((out_header, str(self._credentials(chal, state, method, uri, body))))
        return out

    def preauthorize(self, method: str, uri: str, body: bytes = b"") -> list[tuple[str, str]]:
        """Credentials for a new request from the last challenges (e.g. a REGISTER refresh),
        with the nonce-count advanced; empty when nothing has been challenged yet."""
        return [
            (header, str(self._credentials(chal, state, method, uri, body)))
            for (header, _), (chal, state) in self._last.items()
        ]

    def _credentials(
        self, chal: DigestChallenge, state: _ClientNonce, method: str, uri: str, body: bytes
    ) -> DigestCredentials:
        alg = chal.algorithm
        qop: str | None = None
        if "auth" in chal.qop:
            qop = "auth"
        elif "auth-int" in chal.qop:
            qop = "auth-int"
        cnonce = self._cnonce() if qop is not None else ""
        state.nc += 1
        nc = f"{state.nc:08x}"
        ha1 = compute_ha1(alg, self.username, chal.realm, self.password, nonce=chal.nonce, cnonce=cnonce)
        response = digest_response(
            alg, ha1, method=method, uri=uri, nonce=chal.nonce, qop=qop, nc=nc, cnonce=cnonce, body=body
        )
        return DigestCredentials(
            username=self.username,
            realm=chal.realm,
            nonce=chal.nonce,
            uri=uri,
            response=response,
            algorithm=alg,
            qop=qop,
            nc=nc if qop is not None else None,
            cnonce=cnonce if qop is not None else None,
            opaque=chal.opaque,
        )


def _realms_in(request: Request, header: str) -> set[str]:
    realms: set[str] = set()
    for value in request.headers.get_all(header):
        try:
            _, params = parse_auth_header(value)
        except ValueError:
            continue
        if "realm" in params:
            realms.add(params["realm"])
    return realms
