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

from mediacore import MediaEngine, MediaError
from signaling.b2bua.node import Node
from signaling.callproc.driver import RouterDriver
from signaling.callproc.router import StoreRouter
from signaling.config import Config, ConfigError, load_file, parse_host_port
from signaling.media.control import InProcessMedia, MediaControlError, NgMediaClient
from signaling.observe.driver import Observer
from signaling.observe.logs import configure as configure_logging
from signaling.observe.logs import redact
from signaling.routing import Router, StaticRouter
from signaling.store import Store, StoreError, open_store

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
    try:
        host, port = await node.start()
    except OSError as exc:
        log.error("cannot listen for SIP on %s:%d: %s", cfg.sip_listen[0], cfg.sip_listen[1], exc)
        close()
        return 2
    observer = Observer(node)
    observer.start()
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
    await observer.stop()
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
        log.error("store %s: %s", redact(cfg.store_url), exc)
        return None
    try:
        router = StoreRouter(store, node=cfg.store_node or socket.gethostname(), parameters=cfg.parameters)
    except StoreError as exc:
        log.error("store %s: cannot load the configuration: %s", redact(cfg.store_url), exc)
        store.close()
        return None
    return _Billing(store, router)


def run(
    config_path: str | None, sip: str | None, *, log_format: str | None = None, log_level: str | None = None
) -> int:
    """Run the node; ``log_format``/``log_level`` from the command line win over ``[log]``."""
    try:
        cfg = load_config(config_path, sip)
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return 2
    if (cfg.log_format != "text" and log_format is None) or (cfg.log_level and log_level is None):
        configure_logging(log_format or cfg.log_format, log_level or cfg.log_level or "info")

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
