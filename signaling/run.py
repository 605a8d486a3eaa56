"""``softswitch run``: the SIP node (B2BUA) with its media engine, in the foreground.

Loads the configuration file (or the embedded default: listen on 0.0.0.0:5060, in-process media,
no gateways), starts the SIP transport and the media engine (in-process, or an ng client toward
a media node), and serves until SIGTERM/SIGINT, when every call is ended with BYE (or a final
response) and its record written before the sockets close.

Routing: the configuration file's gateway tables (:class:`StaticRouter`), or, with ``[store]
url`` set, the store (:class:`signaling.callproc.StoreRouter`: accounts, gateways, rates,
reservations and CDRs; calls a previous run left in the store are settled at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mediacore import MediaEngine, MediaError
from signaling.b2bua.node import Node
from signaling.callproc.driver import RouterDriver
from signaling.callproc.router import StoreRouter
from signaling.config import Config, ConfigError, load_file, parse_host_port
from signaling.media.control import InProcessMedia, MediaControlError, NgMediaClient
from signaling.routing import Router, StaticRouter
from signaling.store import DEFAULT_URL, Store, StoreError, open_store

if TYPE_CHECKING:
    from signaling.api.server import ApiServer

log = logging.getLogger("softswitch")


def load_config(path: str | None, sip: str | None) -> Config:
    cfg = load_file(Path(path)) if path else Config()
    if sip:
        try:
            cfg.sip_listen = parse_host_port(sip, 5060)
        except ValueError as exc:
            raise ConfigError(f"--sip: {exc}") from None
    return cfg


async def _open_media(cfg: Config) -> tuple[InProcessMedia | NgMediaClient, MediaEngine | None] | None:
    """The media control (and the in-process engine), or None (logged) when it cannot start."""
    if cfg.media_engine == "ng":
        assert cfg.media_ng is not None
        client = NgMediaClient(*cfg.media_ng)
        try:
            await client.ping()
        except MediaControlError as exc:
            log.error("media node %s:%d: %s", cfg.media_ng[0], cfg.media_ng[1], exc)
            return None
        return client, None
    p = cfg.parameters
    try:
        engine = MediaEngine(
            interface=cfg.media_interface,
            port_min=int(p["SS_MEDIAPROXYPORT_START"]),
            port_max=int(p["SS_MEDIAPROXYPORT_END"]),
            workers=cfg.media_workers,
            rtp_timeout=float(p["SS_RTP_TIMEOUT"] or 3600),
            advertise=cfg.media_advertise,
        )
    except MediaError as exc:
        log.error("cannot start the media engine: %s", exc)
        return None
    return InProcessMedia(engine), engine


async def serve(cfg: Config, stop: asyncio.Event) -> int:
    opened = await _open_media(cfg)
    if opened is None:
        return 2
    media, engine = opened
    billing = _open_billing(cfg)

    def close() -> None:
        media.close()
        if engine is not None:
            engine.close()
        if billing is not None:
            billing.store.close()

    if billing is None and cfg.store_url is not None:
        close()
        return 2
    router: Router = billing.router if billing is not None else StaticRouter(cfg)
    node = Node(cfg, media, router)
    # The API first: building it is a burst of CPU on this loop that the node's overload guard,
    # sampling the loop from node.start() on, would take for traffic.
    api = await _start_api(cfg, billing, node, router)
    if api is False:
        close()
        return 2
    try:
        host, port = await node.start()
    except OSError as exc:
        log.error("cannot listen for SIP on %s:%d: %s", cfg.sip_listen[0], cfg.sip_listen[1], exc)
        await _stop_api(api, billing)
        close()
        return 2
    gateways = f"{len(cfg.mapping_gateways)} customer and {len(cfg.routing_gateways)} carrier gateways"
    if billing is not None:
        recovered = billing.driver.start()
        snap = billing.router.snapshot
        gateways = (
            f"store {billing.store.dialect.value} as node {billing.router.node}: {len(snap.mapping)} "
            f"customer and {len(snap.routing)} carrier gateways, {recovered} calls of a previous run settled"
        )
    log.info(
        "node ready: SIP on %s:%d (udp, tcp), media %s, %s",
        host,
        port,
        "in-process" if engine is not None else f"via ng {cfg.media_ng}",
        gateways,
    )
    await stop.wait()
    log.info("shutting down: ending %d calls", len(node.calls))
    await _stop_api(api, billing)
    await node.stop()
    if billing is not None:
        await billing.driver.stop()
    close()
    s = node.stats
    log.info(
        "stopped: %d calls, %d answered, %d failed, %d rejected",
        s.calls_started,
        s.calls_answered,
        s.calls_failed,
        s.calls_rejected,
    )
    return 0


async def _start_api(
    cfg: Config, billing: _Billing | None, node: Node, router: Router
) -> ApiServer | Literal[False] | None:
    """The REST API when ``[api]`` is configured (None when not; False, logged, when it cannot
    start). Without ``[store]`` it manages the default store (users and records), while the node
    routes from its file's tables."""
    if cfg.api is None:
        return None
    from signaling.api.server import start_node_api  # noqa: PLC0415 (the web stack only when used)

    store = billing.store if billing is not None else None
    try:
        if store is None:
            store = open_store(DEFAULT_URL)
            log.info("API: no [store] url: managing %s (the node routes from its file's tables)", DEFAULT_URL)
        server = await start_node_api(cfg.api, store, node=node, router=router)
    except (OSError, ValueError, StoreError) as exc:
        log.error("cannot serve the API on %s:%d: %s", cfg.api.listen[0], cfg.api.listen[1], exc)
        if billing is None and store is not None:
            store.close()
        return False
    log.info("API on %s/api/v1 (OpenAPI %s/api/openapi.json)", server.url, server.url)
    return server


async def _stop_api(api: ApiServer | None, billing: _Billing | None) -> None:
    if api is not None:
        await api.stop()
        if billing is None:  # the store the API opened for itself
            api.context.store.close()


class _Billing:
    def __init__(self, store: Store, router: StoreRouter) -> None:
        self.store = store
        self.router = router
        self.driver = RouterDriver(router)


def _open_billing(cfg: Config) -> _Billing | None:
    """The store and its router when ``[store] url`` is set (None, logged, when it cannot open)."""
    if cfg.store_url is None:
        return None
    try:
        store = open_store(cfg.store_url)
    except Exception as exc:  # any driver or file error: the node cannot bill, it does not start
        log.error("store %s: %s", cfg.store_url, exc)
        return None
    try:
        router = StoreRouter(store, node=cfg.store_node or socket.gethostname(), parameters=cfg.parameters)
    except StoreError as exc:
        log.error("store %s: cannot load the configuration: %s", cfg.store_url, exc)
        store.close()
        return None
    return _Billing(store, router)


def run(config_path: str | None, sip: str | None) -> int:
    try:
        cfg = load_config(config_path, sip)
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return 2

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await serve(cfg, stop)

    try:
        import uvloop  # type: ignore[import-not-found]  # noqa: PLC0415

        return int(uvloop.run(main()))
    except ImportError:
        return asyncio.run(main())
