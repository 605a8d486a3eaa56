"""Serving the API on the node's own event loop (uvicorn, no second process).

``start_node_api(cfg.api, store, node=…, router=…)`` builds the context and the app, makes the
first administrator when the store has none (its password printed once to the console — stderr
— and never logged), binds the listener itself (a port in use is an error here, not an exit
inside uvicorn) and serves until :meth:`ApiServer.stop`. uvicorn's own signal handling is left
out: the node owns SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import sys
from collections.abc import Generator, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, TextIO

import uvicorn
from fastapi import APIRouter, FastAPI

from signaling.api.app import API_PREFIX, create_app
from signaling.api.auth import AuthSettings, Users
from signaling.api.context import ApiContext
from signaling.api.livecalls import NodeCalls
from signaling.config import ApiConfig
from signaling.store import Store

if TYPE_CHECKING:
    from signaling.b2bua.node import Node
    from signaling.callproc.router import StoreRouter
    from signaling.observe.driver import Observer
    from signaling.routing import Router
    from signaling.web import WebManager
    from signaling.web.sysstats import NetworkSource

log = logging.getLogger("softswitch.api")

#: How long start() waits for uvicorn to be ready, seconds.
STARTUP_TIMEOUT = 10.0


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the node handles SIGTERM/SIGINT and stops us


def auth_settings(api: ApiConfig) -> AuthSettings:
    return AuthSettings(
        session_ttl=timedelta(seconds=api.session_ttl),
        max_failures_user=api.max_failures_user,
        max_failures_ip=api.max_failures_ip,
        failure_window=timedelta(seconds=api.failure_window),
        lockout_time=timedelta(seconds=api.lockout_time),
        challenge_after=api.challenge_after,
    )


class ApiServer:
    def __init__(
        self, app: FastAPI, context: ApiContext, server: _EmbeddedServer, sock: socket.socket
    ) -> None:
        self.app = app
        self.context = context
        self._server = server
        self._sock = sock
        self._task: asyncio.Task[None] | None = None
        host, port = sock.getsockname()[:2]
        self.address: tuple[str, int] = (str(host), int(port))
        self.scheme = "https" if server.config.ssl is not None else "http"
        #: The web manager served by the same app (its sampler stops with the server).
        self.web: WebManager | None = None

    @property
    def url(self) -> str:
        host = self.address[0]
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{self.address[1]}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        for _ in range(int(STARTUP_TIMEOUT / 0.01)):
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()  # raises what stopped it
            raise OSError("the API server stopped at start")

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5.0)
        self._sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def announce_first_admin(users: Users, console: TextIO | None = None) -> None:
    """Create the first administrator when there is none, and show its password once."""
    password = users.ensure_admin()
    if password is None:
        return
    admin = next(u for u in users.list() if u.is_admin)
    out = console or sys.stderr
    # Deliberately not the logger: the password must not reach log files.
    out.write(
        f"\nsoftswitch: no administrator existed; created user {admin.name!r} with password\n\n"
        f"    {password}\n\n"
        "It is shown only this once. Log in and change it (PATCH /api/v1/users/NAME), "
        "or make your own administrator with `softswitch user add --role admin NAME`.\n\n"
    )
    out.flush()
    log.warning("created the first administrator %r (password shown once on the console)", admin.name)


async def start_node_api(
    api: ApiConfig,
    store: Store,
    *,
    node: Node | None = None,
    router: Router | None = None,
    routers: Iterable[APIRouter] = (),
    console: TextIO | None = None,
    observer: Observer | None = None,
) -> ApiServer:
    """Build and start the node's API (see the module doc); OSError when it cannot listen."""
    from signaling.callproc.router import StoreRouter  # noqa: PLC0415 (store code on demand)

    users = Users(store, auth_settings(api))
    announce_first_admin(users, console)
    store_router: StoreRouter | None = router if isinstance(router, StoreRouter) else None
    context = ApiContext(
        store=store,
        users=users,
        live=NodeCalls(node, router) if node is not None and router is not None else None,
        router=store_router,
        allow=tuple(ipaddress.ip_network(a, strict=False) for a in api.allow),
        secure_cookie=api.tls_cert is not None,
        local_ips=node.config.local_ip_set() if node is not None else None,
    )
    extra = list(routers)
    if observer is not None:
        from signaling.api.routes.observe import observe_router  # noqa: PLC0415

        extra.append(observe_router(observer, API_PREFIX))
    app = create_app(context, routers=extra)
    web = _web_manager(app, context, node, observer)
    # The OpenAPI document is built here, not at its first request: building it takes ~0.4 s of
    # this loop's CPU, which a node answering calls would spend stalled, and which its overload
    # guard (sampling this loop) would take for traffic and answer new calls 503 for.
    app.openapi()
    config = uvicorn.Config(
        app,
        ssl_certfile=api.tls_cert,
        ssl_keyfile=api.tls_key,
        log_config=None,
        lifespan="off",
        access_log=False,
        server_header=False,
        # The client address is the socket's: a forwarded header must not pick the address the
        # lockout and the access control see.
        proxy_headers=False,
    )
    config.load()  # a bad certificate or key fails here, with its own error
    sock = _bind(*api.listen)
    server = ApiServer(app, context, _EmbeddedServer(config), sock)
    server.web = web
    await server.start()
    await web.start()
    return server


def _web_manager(
    app: FastAPI, context: ApiContext, node: Node | None, observer: Observer | None = None
) -> WebManager:
    """The web manager at /manage in the same app (signaling.web), with the node's live view
    and its alarms."""
    from signaling.web import NodeLive, WebManager  # noqa: PLC0415 (templates load on demand)
    from signaling.web.alarms import SnapshotAlarms  # noqa: PLC0415

    web = WebManager(
        context,
        node=NodeLive(node) if node is not None else None,
        alarms=SnapshotAlarms(observer.snapshot) if observer is not None else None,
        network=_throughput(observer) if observer is not None else None,
    )
    web.install(app)
    return web


def _throughput(observer: Observer) -> NetworkSource:
    """The dashboard's network figures: what the node's alarm sampler measured last (no second
    sampler reading /proc/net/dev)."""
    sampler = observer.sampler
    return lambda: sampler.throughput
