"""The web manager's core: who is logged in, the CSRF and flash helpers, rendering, and how the
pages are put into the FastAPI application beside the REST API.

Theory of operation:

* **Login** uses the API's users and sessions (signaling.api.auth ``Users``): the session
  token is kept in the API's HttpOnly, SameSite=Strict ``softswitch_session`` cookie, so one
  login serves both. Once ``Users.challenge_required`` says so (failed attempts of the name or
  the address), the login form shows a verification challenge (signaling.web.challenge) and a
  password without its correct answer is refused before it is even checked (T75).
* **Every POST** carries a CSRF token tied to the session (signaling.web.csrf); one without it
  is refused with 403 before anything is read or changed.
* **Scope**: an administrator or operator works through ``Store.admin()``, an agent through
  ``Store.agent()`` (its own subtree and rights) — the same admin API the REST API uses; report
  queries go through signaling.store.reports under the same scope.
* **Web Access Control** (signaling.web.access) wraps the whole application, API included.
* Store calls block (SQLite, PostgreSQL drivers), so handlers run them in worker threads
  (:meth:`WebManager.db`); live node state is read on the event loop (signaling.web.live).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from signaling.api.auth import SESSION_COOKIE, InvalidSession, User
from signaling.api.context import ApiContext
from signaling.store import Admin, NotFoundError, Store
from signaling.store.reports import Reports
from signaling.trace import TraceRecord
from signaling.web.access import REFRESH_SECONDS, AccessControlMiddleware, AccessPolicy, parse_access_list
from signaling.web.challenge import Challenges
from signaling.web.csrf import CsrfTokens
from signaling.web.history import History, Sampler
from signaling.web.live import NoNode
from signaling.web.sysstats import CpuSampler, NetworkSource

log = logging.getLogger("softswitch.web")

P = ParamSpec("P")
T = TypeVar("T")

PREFIX = "/manage"
#: Sessions with a message waiting at most (the oldest is dropped beyond).
MAX_FLASH_SESSIONS = 10_000
#: Pre-session cookie the login form's CSRF token is tied to.
LOGIN_COOKIE = "softswitch_login"

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One alarm as the alarm page shows it."""

    name: str
    #: "critical", "major", "warning" (reference §7.8), or "info".
    severity: str
    #: What it is about: a gateway, an account, "system".
    subject: str
    message: str
    #: Unix times.
    raised_at: float
    cleared_at: float | None = None
    #: The alarm's kind ("gateway_down", "cpu_high"…; signaling.web.alarms names them).
    kind: str = ""
    #: In the history: what happened ("raised", "changed", "cleared") and when.
    action: str = ""
    at: float | None = None


class AlarmFeed(Protocol):
    def current(self) -> Sequence[AlarmView]: ...

    def history(self, limit: int) -> Sequence[AlarmView]: ...


class NoAlarms:
    def current(self) -> Sequence[AlarmView]:
        return []

    def history(self, limit: int) -> Sequence[AlarmView]:
        return []


class NodeView(Protocol):
    """What the dashboard reads from the running node besides its calls (signaling.web.live)."""

    def concurrency(self) -> int: ...

    def calls_started(self) -> int: ...

    def online_phones(self) -> int: ...

    def trace(self, call_id: str) -> list[TraceRecord]: ...

    def trace_pcap(self, call_id: str) -> bytes: ...


@dataclass(slots=True)
class Page:
    """What a handler found out about the request: the user, the session, its CSRF token."""

    user: User
    token: str
    csrf: str
    admin: Admin
    reports: Reports
    flashes: list[tuple[str, str]] = field(default_factory=list)


class NotLoggedIn(Exception):
    def __init__(self, expired: bool) -> None:
        super().__init__("not logged in")
        self.expired = expired


class CsrfFailed(Exception):
    pass


class WebManager:
    """The web manager of one process: its pages (``router``) and what they share."""

    def __init__(
        self,
        context: ApiContext,
        *,
        node: NodeView | None = None,
        alarms: AlarmFeed | None = None,
        disk_path: str | None = None,
        network: NetworkSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.context = context
        self.store = context.store
        self.users = context.users
        self.node: NodeView = node or NoNode()
        self.alarms: AlarmFeed = alarms or NoAlarms()
        self.secure_cookies = context.secure_cookie
        self.disk_path = disk_path or _store_dir(self.store)
        #: the latest throughput per interface, from the node's alarm sampler (None: not shown)
        self.network = network
        self.clock = clock
        self.challenges = Challenges()
        self.csrf = CsrfTokens()
        self.cpu = CpuSampler()
        self.history = History()
        self.sampler = Sampler(self.node, self.history, CpuSampler())
        self._flash: dict[str, list[tuple[str, str]]] = {}
        #: Set by :meth:`stop`: live feeds end.
        self.stopping = False
        #: Seconds the Web Access Control policy is cached (signaling.web.access).
        self.access_refresh = REFRESH_SECONDS
        self._policy: AccessPolicy | None = None
        self._policy_at = 0.0
        self.templates = Jinja2Templates(directory=str(_HERE / "templates"))
        self.templates.env.filters.update(money=money, when=when, seconds=seconds, pct=pct, pdd=pdd)
        self.templates.env.globals["prefix"] = PREFIX
        self.router = APIRouter(prefix=PREFIX, include_in_schema=False)
        from signaling.web import routes_auth, routes_config, routes_monitor, routes_reports  # noqa: PLC0415

        for module in (routes_auth, routes_monitor, routes_config, routes_reports):
            module.register(self.router, self)

    # -- putting it into an application --------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        """Add the pages, the static files and the Web Access Control middleware (which then
        guards every route of ``app``, the REST API's too)."""
        app.include_router(self.router)
        app.mount(f"{PREFIX}/static", StaticFiles(directory=str(_HERE / "static")), name="manage-static")
        app.add_middleware(AccessControlMiddleware, policy=self.current_policy)
        app.add_exception_handler(NotLoggedIn, self._to_login)
        app.add_exception_handler(CsrfFailed, self._csrf_failed)

    async def _to_login(self, request: Request, exc: Exception) -> Response:
        expired = isinstance(exc, NotLoggedIn) and exc.expired
        target = f"{PREFIX}/login" + ("?expired=1" if expired else "")
        if request.method == "GET" and request.url.path not in (PREFIX, PREFIX + "/"):
            target += ("&" if expired else "?") + "next=" + quote(request.url.path, safe="/")
        response = RedirectResponse(target, status_code=303)
        if expired:
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def _csrf_failed(self, request: Request, exc: Exception) -> Response:
        return HTMLResponse(
            "<h1>403</h1><p>The form's security token is missing or belongs to another session. "
            f'<a href="{PREFIX}">Reload the page</a> and try again.</p>',
            status_code=403,
        )

    def access_policy(self) -> AccessPolicy:
        """Web Access Control as stored now (signaling.web.access)."""
        enabled = bool(self.store.server_parameter("SERVER_WEB_ACCESS_CONTROL"))
        text = self.store.parameters().get("SERVER_WEB_ACCESS_LIST", "")
        return AccessPolicy(enabled, parse_access_list(text))

    def current_policy(self) -> AccessPolicy:
        """The policy in force, re-read from the store at most every ``access_refresh`` seconds
        (and after a change made here). If the store cannot be read the last policy stays; with
        none known yet, everything is refused (fail closed)."""
        now = time.monotonic()
        if self._policy is None or now - self._policy_at >= self.access_refresh:
            try:
                self._policy = self.access_policy()
            except Exception:  # the store is unreachable: keep what was in force
                log.exception("Web Access Control: cannot read the whitelist")
                if self._policy is None:
                    return AccessPolicy(enabled=True)
            self._policy_at = now
        return self._policy

    def policy_changed(self) -> None:
        self._policy = None

    async def start(self) -> None:
        """Start sampling the node for the dashboard and performance charts."""
        self.sampler.start()

    async def stop(self) -> None:
        """Stop sampling, and end the open live feeds (so the server's shutdown is not held)."""
        self.stopping = True
        await self.sampler.stop()

    # -- per request ---------------------------------------------------------------------------

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store call in a worker thread."""
        return await run_in_threadpool(fn, *args, **kwargs)

    async def page(self, request: Request) -> Page:
        """The logged-in user of this request (NotLoggedIn otherwise)."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise NotLoggedIn(expired=False)
        try:
            user = await self.db(self.users.resolve, token)
            admin = await self.db(self.users.admin_for, user)
        except (InvalidSession, NotFoundError):
            raise NotLoggedIn(expired=True) from None
        self.sampler.start()  # the performance history starts with the first page served
        return Page(
            user=user,
            token=token,
            csrf=self.csrf.token(token),
            admin=admin,
            reports=Reports(self.store.db, admin.scope),
            flashes=self._flash.pop(token, []),
        )

    async def form(self, request: Request, page: Page) -> dict[str, str]:
        """The POSTed form, after its CSRF token was checked against the session."""
        data = await request.form()
        values = {k: v for k, v in data.items() if isinstance(v, str)}
        if not self.csrf.check(page.token, values.get("csrf")):
            raise CsrfFailed
        return values

    def flash(self, page: Page, kind: Literal["ok", "error"], text: str) -> None:
        """A message for the next page this session sees (after the redirect of a POST)."""
        if page.token not in self._flash and len(self._flash) >= MAX_FLASH_SESSIONS:
            del self._flash[next(iter(self._flash))]  # a session that never came back
        box = self._flash.setdefault(page.token, [])
        if len(box) < 5:
            box.append((kind, text))

    def render(
        self, request: Request, template: str, page: Page | None, status: int = 200, **context: object
    ) -> HTMLResponse:
        context.update(
            page=page,
            user=page.user if page else None,
            csrf=page.csrf if page else context.get("csrf", ""),
            flashes=page.flashes if page else [],
            now=self.clock(),
        )
        response = self.templates.TemplateResponse(request, template, dict(context), status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        return response

    def back(self, where: str) -> RedirectResponse:
        """After a POST: see the page again (303, so a reload does not post twice)."""
        return RedirectResponse(PREFIX + where, status_code=303)

    def set_session_cookie(self, response: Response, token: str) -> None:
        """The API's session cookie (path /, as its login sets it): one login serves both."""
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(self.users.settings.session_ttl.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            path="/",
        )


def _store_dir(store: Store) -> str:
    """The directory of a SQLite store's file (its disk is the one that fills), else "/"."""
    path = store.db.url.path
    return str(path.resolve().parent) if path is not None else "/"


# -- template filters --------------------------------------------------------------------------------


def money(value: Decimal | None, places: int | None = None) -> str:
    """A Decimal amount for display, "—" for None. Without ``places``: exact, with at least two
    places and no trailing zeros beyond them (the demo call's fee is 0.002 and leaves a balance
    of 9.998, as ``softswitch accounts show`` prints them: rounding to cents would show 0.00 and
    10.00); with ``places``: rounded half-even to that many (the stored value stays exact)."""
    if value is None:
        return "—"
    if places is None:
        whole, _, frac = format(value.normalize(), ",f").partition(".")
        return f"{whole}.{frac.ljust(2, '0')}"
    return f"{value.quantize(Decimal(1).scaleb(-places)):,}"


def when(value: datetime | float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    total = int(value)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def pdd(value: float | None) -> str:
    """A post-dial delay in seconds."""
    return "—" if value is None else f"{value:.2f} s"
