"""Operator users, passwords, login sessions and the brute-force lockout.

The same accounts serve the REST API (``Authorization: Bearer TOKEN``) and the web manager (the
token in the ``softswitch_session`` cookie): the reference's "same username and password as the
client" (web manager §7.1). Everything lives in the store (migration 0004), so several nodes on
one PostgreSQL database share users, sessions and lockouts.

```python
users = Users(store, AuthSettings())
users.add("alice", "admin", password)                 # or "operator"; "agent" needs account_id=
user = users.authenticate("alice", password, "192.0.2.7")   # LoginFailed if not
token = users.issue_session(user, "192.0.2.7")        # give it to the client, once
user = users.resolve(token)                           # InvalidSession when unknown or expired
admin = users.admin_for(user)                         # signaling.store.Admin under its Scope
```

- **Roles**: ``admin`` (everything), ``operator`` (everything but users and system parameters),
  ``agent`` (bound to an agent account: its subtree, its authorisations — the store's
  :class:`~signaling.store.scope.Scope`).
- **Passwords**: salted scrypt (``hashlib.scrypt``, N=2^14, r=8, p=1), compared in constant time;
  a login for an unknown name costs the same hash, so timing does not tell which names exist.
- **Lockout** (temporary): ``max_failures_user`` failed logins of one name, or
  ``max_failures_ip`` from one address, within ``failure_window`` lock that name / address for
  ``lockout_time``; while locked even the right password is refused. After ``challenge_after``
  failures (of the name or the address) :class:`LoginFailed` says ``challenge_required``: the
  web manager then shows its verification challenge before it calls :meth:`Users.authenticate`
  again (:meth:`Users.challenge_required` asks beforehand).
- **Sessions**: a random 256-bit token, of which only its SHA-256 is stored, valid for
  ``session_ttl`` from its issue (absolute, not sliding); :meth:`Users.revoke` ends it at once;
  disabling or removing a user ends its sessions.
- **Secrets are never logged**: no password, token or hash is put in a log record here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal, get_args

from signaling.store import Admin, NotFoundError, Store, ValidationError
from signaling.store.codec import Kind, decode, encode
from signaling.store.db import Tx
from signaling.store.scope import Scope

Role = Literal["admin", "operator", "agent"]
ROLES: tuple[Role, ...] = get_args(Role)

#: The cookie the web manager keeps the session token in (HttpOnly, SameSite=Strict).
SESSION_COOKIE = "softswitch_session"

#: scrypt cost: N=2^14, r=8, p=1 takes ~16 MiB and tens of milliseconds per hash (RFC 7914's
#: interactive-login figure); the parameters are stored with each hash, so they can grow later.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
#: Session tokens: 32 random bytes, URL-safe base64 (43 characters).
TOKEN_BYTES = 32
#: Shortest password accepted when a user is created or changes it: the reference's
#: SERVER_PASSWORD_LENGTH default, and the least that parameter may be set to (8..128).
MIN_PASSWORD_LENGTH = 8
#: Generated first-admin passwords: 18 random bytes, 24 characters.
GENERATED_PASSWORD_BYTES = 18


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``[api]`` of the node's configuration (signaling/config.py) fills these."""

    session_ttl: timedelta = timedelta(hours=8)
    max_failures_user: int = 5
    max_failures_ip: int = 20
    failure_window: timedelta = timedelta(minutes=15)
    lockout_time: timedelta = timedelta(minutes=15)
    challenge_after: int = 3


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    #: The agent account of an ``agent`` user; None for the others.
    account_id: int | None
    disabled: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AuthError(Exception):
    """Base of what authentication raises."""


class LoginFailed(AuthError):
    """Wrong name or password, or a locked name/address. The message never says which part was
    wrong; ``locked_until`` is set while a lockout refuses every attempt."""

    def __init__(
        self, message: str, *, challenge_required: bool, locked_until: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.challenge_required = challenge_required
        self.locked_until = locked_until


class InvalidSession(AuthError):
    """The token is unknown, expired or revoked, or its user is disabled."""


def _now() -> datetime:
    return datetime.now(UTC)


# -- password hashes -------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$SALT$HASH`` (base64), with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 1024 * 1024, dklen=HASH_BYTES
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


#: Verified against when the name does not exist, so both cases cost one scrypt.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_password(length: int = 0) -> str:
    """A random password of at least 24 characters, and at least ``length``."""
    return secrets.token_urlsafe(max(GENERATED_PASSWORD_BYTES, (length * 3 + 3) // 4))


def check_password_strength(password: str, minimum: int = MIN_PASSWORD_LENGTH) -> None:
    if len(password) < minimum:
        raise ValidationError("password", f"must be at least {minimum} characters (SERVER_PASSWORD_LENGTH)")
    if password.strip() != password or not password.isprintable():
        raise ValidationError("password", "must not start or end with spaces or hold control characters")


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or any(c.isspace() or not c.isprintable() for c in name):
        raise ValidationError("name", "1 to 64 printable characters without spaces")


# -- the service -----------------------------------------------------------------------------


class Users:
    """Users, their sessions and the lockout, over one store; safe to share between threads."""

    _COLUMNS: ClassVar[str] = "id, name, role, account_id, disabled, created_at"

    def __init__(
        self,
        store: Store,
        settings: AuthSettings | None = None,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.settings = settings or AuthSettings()
        self.clock = clock

    # -- users ------------------------------------------------------------------------------

    def add(self, name: str, role: Role, password: str, *, account_id: int | None = None) -> User:
        """Create a user; ``account_id`` (the agent account) is required for, and only for, agents."""
        _check_name(name)
        if role not in ROLES:
            raise ValidationError("role", f"expected one of {', '.join(ROLES)}")
        if (role == "agent") != (account_id is not None):
            raise ValidationError("account_id", "an agent user needs its agent account, the others none")
        check_password_strength(password, self.min_password_length())
        hashed = hash_password(password)
        with self.store.db.transaction() as tx:
            if tx.one("SELECT 1 FROM operator_user WHERE name = ?", (name,)):
                raise ValidationError("name", "already used")
            if account_id is not None and not tx.one("SELECT 1 FROM account WHERE id = ?", (account_id,)):
                raise ValidationError("account_id", f"no account with id {account_id}")
            d = tx.dialect
            tx.execute(
                "INSERT INTO operator_user (name, role, account_id, password_hash, disabled, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    name,
                    role,
                    account_id,
                    hashed,
                    encode(d, Kind.BOOL, False),
                    encode(d, Kind.TIME, self.clock()),
                ),
            )
            return self._by_name(tx, name)

    def get(self, name: str) -> User:
        with self.store.db.transaction(write=False) as tx:
            return self._by_name(tx, name)

    def list(self) -> list[User]:
        with self.store.db.transaction(write=False) as tx:
            rows = tx.execute(f"SELECT {self._COLUMNS} FROM operator_user ORDER BY name")  # noqa: S608
            return [_user(tx, row) for row in rows]

    def update(
        self,
        name: str,
        *,
        role: Role | None = None,
        account_id: int | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> User:
        """Change a user; a new role of ``agent`` needs ``account_id``. Disabling a user, or
        changing its role or password, ends its sessions."""
        minimum = self.min_password_length() if password is not None else MIN_PASSWORD_LENGTH
        with self.store.db.transaction() as tx:
            user = self._by_name(tx, name)
            new_role = role or user.role
            if new_role not in ROLES:
                raise ValidationError("role", f"expected one of {', '.join(ROLES)}")
            new_account = account_id if account_id is not None else user.account_id
            if new_role != "agent":
                new_account = None
            elif new_account is None:
                raise ValidationError("account_id", "an agent user needs its agent account")
            elif not tx.one("SELECT 1 FROM account WHERE id = ?", (new_account,)):
                raise ValidationError("account_id", f"no account with id {new_account}")
            new_disabled = user.disabled if disabled is None else disabled
            if user.is_admin and (new_role != "admin" or new_disabled):
                self._keep_an_admin(tx, user.id)
            d = tx.dialect
            tx.execute(
                "UPDATE operator_user SET role = ?, account_id = ?, disabled = ? WHERE id = ?",
                (new_role, new_account, encode(d, Kind.BOOL, new_disabled), user.id),
            )
            if password is not None:
                check_password_strength(password, minimum)
                tx.execute(
                    "UPDATE operator_user SET password_hash = ? WHERE id = ?",
                    (hash_password(password), user.id),
                )
            if password is not None or new_disabled or new_role != user.role:
                tx.execute("DELETE FROM operator_session WHERE user_id = ?", (user.id,))
            return self._by_name(tx, name)

    def min_password_length(self) -> int:
        """SERVER_PASSWORD_LENGTH as stored now (a change applies to the next password set)."""
        try:
            value = self.store.server_parameter("SERVER_PASSWORD_LENGTH")
        except ValueError:  # stored before 8 became its least value: the floor
            return MIN_PASSWORD_LENGTH
        return max(MIN_PASSWORD_LENGTH, value if isinstance(value, int) else MIN_PASSWORD_LENGTH)

    def set_password(self, name: str, password: str) -> User:
        return self.update(name, password=password)

    def remove(self, name: str) -> None:
        """Delete a user and its sessions; the last enabled administrator cannot be removed."""
        with self.store.db.transaction() as tx:
            user = self._by_name(tx, name)
            if user.is_admin:
                self._keep_an_admin(tx, user.id)
            tx.execute("DELETE FROM operator_session WHERE user_id = ?", (user.id,))
            tx.execute("DELETE FROM operator_user WHERE id = ?", (user.id,))

    def has_admin(self) -> bool:
        """Whether an enabled administrator exists."""
        with self.store.db.transaction(write=False) as tx:
            return self._admins(tx) > 0

    def ensure_admin(self, name: str = "admin") -> str | None:
        """With no enabled administrator, create ``name`` with a random password and return the
        password (to be shown once, never logged); None when an administrator exists."""
        if self.has_admin():
            return None
        password = generate_password(self.min_password_length())
        try:
            self.add(name, "admin", password)
        except ValidationError:
            # ``name`` exists (disabled or not an admin): give the fresh admin another name.
            self.add(f"{name}-{secrets.token_hex(3)}", "admin", password)
        return password

    # -- login ------------------------------------------------------------------------------

    def authenticate(self, name: str, password: str, source_ip: str) -> User:
        """The user, when ``password`` is right and neither the name nor the address is locked;
        else :class:`LoginFailed` (which says whether a challenge is now required)."""
        now = self.clock()
        user_key, ip_key = f"user:{name}", f"ip:{source_ip}"
        with self.store.db.transaction(write=False) as tx:
            locked = max(
                (
                    t
                    for t in (self._locked_until(tx, user_key, now), self._locked_until(tx, ip_key, now))
                    if t
                ),
                default=None,
            )
            row = tx.one("SELECT password_hash, disabled FROM operator_user WHERE name = ?", (name,))
        if locked is not None:
            raise LoginFailed(
                "too many failed logins: try again later", challenge_required=True, locked_until=locked
            )
        stored = str(row[0]) if row is not None else _DUMMY_HASH
        right = verify_password(password, stored)
        if row is None or not right or bool(decode(self.store.dialect, Kind.BOOL, row[1])):
            challenge, locked = self._failed(user_key, ip_key, now)
            raise LoginFailed(
                "wrong user name or password", challenge_required=challenge, locked_until=locked
            )
        with self.store.db.transaction() as tx:
            tx.execute("DELETE FROM login_failure WHERE subject = ?", (user_key,))
            return self._by_name(tx, name)

    def challenge_required(self, name: str, source_ip: str) -> bool:
        """Whether the next login of ``name`` from ``source_ip`` should pass a challenge first."""
        now = self.clock()
        with self.store.db.transaction(write=False) as tx:
            counts = [self._recent_failures(tx, key, now) for key in (f"user:{name}", f"ip:{source_ip}")]
        return max(counts) >= self.settings.challenge_after

    def _failed(self, user_key: str, ip_key: str, now: datetime) -> tuple[bool, datetime | None]:
        s = self.settings
        challenge = False
        locked: datetime | None = None
        with self.store.db.transaction() as tx:
            for key, limit in ((user_key, s.max_failures_user), (ip_key, s.max_failures_ip)):
                count = self._recent_failures(tx, key, now) + 1
                d = tx.dialect
                until = now + s.lockout_time if count >= limit else None
                if count == 1:
                    tx.execute(
                        "INSERT INTO login_failure (subject, failures, first_at, locked_until) "
                        "VALUES (?, 1, ?, ?) "
                        "ON CONFLICT (subject) DO UPDATE SET failures = 1, first_at = excluded.first_at, "
                        "locked_until = excluded.locked_until",
                        (key, encode(d, Kind.TIME, now), encode(d, Kind.TIME, until)),
                    )
                else:
                    tx.execute(
                        "UPDATE login_failure SET failures = ?, locked_until = ? WHERE subject = ?",
                        (count, encode(d, Kind.TIME, until), key),
                    )
                challenge = challenge or count >= s.challenge_after
                if until is not None:
                    locked = until
        return challenge, locked

    def _recent_failures(self, tx: Tx, key: str, now: datetime) -> int:
        row = tx.one("SELECT failures, first_at FROM login_failure WHERE subject = ?", (key,))
        if row is None:
            return 0
        first = decode(tx.dialect, Kind.TIME, row[1])
        assert isinstance(first, datetime)
        return int(row[0]) if now - first < self.settings.failure_window else 0

    def _locked_until(self, tx: Tx, key: str, now: datetime) -> datetime | None:
        value = decode(
            tx.dialect,
            Kind.TIME,
            tx.scalar("SELECT locked_until FROM login_failure WHERE subject = ?", (key,)),
        )
        return value if isinstance(value, datetime) and value > now else None

    # -- sessions ---------------------------------------------------------------------------

    def issue_session(self, user: User, source_ip: str = "") -> str:
        """A new session token for ``user`` (returned once; only its hash is stored)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        with self.store.db.transaction() as tx:
            d = tx.dialect
            # Expired sessions of anyone are dropped here, so the table does not grow forever.
            tx.execute("DELETE FROM operator_session WHERE expires_at <= ?", (encode(d, Kind.TIME, now),))
            tx.execute(
                "INSERT INTO operator_session (token_hash, user_id, created_at, expires_at, source_ip) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    _token_hash(token),
                    user.id,
                    encode(d, Kind.TIME, now),
                    encode(d, Kind.TIME, now + self.settings.session_ttl),
                    source_ip,
                ),
            )
        return token

    def session_expiry(self, token: str) -> datetime:
        """When the session of ``token`` ends (InvalidSession when it already has)."""
        with self.store.db.transaction(write=False) as tx:
            value = decode(
                tx.dialect,
                Kind.TIME,
                tx.scalar(
                    "SELECT expires_at FROM operator_session WHERE token_hash = ?", (_token_hash(token),)
                ),
            )
        if not isinstance(value, datetime) or value <= self.clock():
            raise InvalidSession("the session has ended: log in again")
        return value

    def resolve(self, token: str) -> User:
        """The user of a live session; InvalidSession otherwise."""
        if not token or len(token) > 256:
            raise InvalidSession("no valid session token")
        now = self.clock()
        with self.store.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT user_id, expires_at FROM operator_session WHERE token_hash = ?", (_token_hash(token),)
            )
            if row is None:
                raise InvalidSession("no valid session token")
            expires = decode(tx.dialect, Kind.TIME, row[1])
            if not isinstance(expires, datetime) or expires <= now:
                raise InvalidSession("the session has expired: log in again")
            found = tx.one(f"SELECT {self._COLUMNS} FROM operator_user WHERE id = ?", (row[0],))  # noqa: S608
            if found is None:
                raise InvalidSession("no valid session token")
            user = _user(tx, found)
        if user.disabled:
            raise InvalidSession("the user is disabled")
        return user

    def revoke(self, token: str) -> None:
        """End a session (logout); unknown tokens are ignored."""
        with self.store.db.transaction() as tx:
            tx.execute("DELETE FROM operator_session WHERE token_hash = ?", (_token_hash(token),))

    # -- what a user may do -----------------------------------------------------------------

    @staticmethod
    def scope_for(user: User) -> Scope:
        """The store scope of ``user``: an agent's account subtree, else everything."""
        return Scope(user.name, user.account_id if user.role == "agent" else None)

    def admin_for(self, user: User) -> Admin:
        """The store's admin API under ``user``'s scope; its name is the payments' operator."""
        scope = self.scope_for(user)
        if scope.agent_id is None:
            return self.store.admin(operator=user.name)
        return self.store.agent(scope.agent_id, operator=user.name)

    # -- internals --------------------------------------------------------------------------

    def _by_name(self, tx: Tx, name: str) -> User:
        row = tx.one(f"SELECT {self._COLUMNS} FROM operator_user WHERE name = ?", (name,))  # noqa: S608
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return _user(tx, row)

    def _admins(self, tx: Tx, *, besides: int = 0) -> int:
        false = encode(tx.dialect, Kind.BOOL, False)
        return int(
            tx.scalar(
                "SELECT count(*) FROM operator_user WHERE role = 'admin' AND disabled = ? AND id <> ?",
                (false, besides),
            )
        )

    def _keep_an_admin(self, tx: Tx, user_id: int) -> None:
        if self._admins(tx, besides=user_id) == 0:
            raise ValidationError("role", "the last enabled administrator must stay one")


def _user(tx: Tx, row: tuple[object, ...]) -> User:
    created = decode(tx.dialect, Kind.TIME, row[5])
    assert isinstance(created, datetime)
    role = str(row[2])
    assert role in ROLES
    return User(
        id=int(str(row[0])),
        name=str(row[1]),
        role=role,
        account_id=None if row[3] is None else int(str(row[3])),
        disabled=bool(decode(tx.dialect, Kind.BOOL, row[4])),
        created_at=created,
    )
