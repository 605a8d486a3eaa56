"""``softswitch run``: the SIP node (B2BUA) with its media engine, in the foreground.

Loads the configuration file, or the **embedded default** without one: SIP on 127.0.0.1:5060
(loopback: nothing from another machine reaches it until ``--sip`` or ``[sip] listen`` says so),
in-process media, and the store in the data directory (``$SOFTSWITCH_DATA``, else
``./softswitch-data``: ``softswitch.db``, SQLite in WAL mode), created and migrated at start and
seeded with the demo configuration (signaling/demo.py) when it holds no account and no gateway,
and the REST API with the web manager on 127.0.0.1:8080 (``--api HOST:PORT`` or ``off``).
Then it starts the SIP transport and the media engine (in-process, or an ng client toward a
media node), and serves until SIGTERM/SIGINT, when every call is ended with BYE (or a final
response) and its record written before the sockets close.

Routing: the configuration file's gateway tables (:class:`StaticRouter`), or, with ``[store]
url`` set, the store (:class:`signaling.callproc.StoreRouter`: accounts, gateways, rates,
reservations and CDRs; calls a previous run left in the store are settled at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import signal
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mediacore import MediaEngine, MediaError
from signaling import demo, params
from signaling.b2bua.node import Node
from signaling.callproc.cdrwriter import CdrWriter
from signaling.callproc.driver import RouterDriver
from signaling.callproc.router import StoreRouter
from signaling.cli_common import data_dir, default_store_url
from signaling.config import (
    ApiConfig,
    Config,
    ConfigError,
    TraceConfig,
    check_source_ips,
    load_file,
    parse_host_port,
)
from signaling.media.control import InProcessMedia, MediaControlError, NgMediaClient
from signaling.observe.driver import Observer
from signaling.observe.logs import DebugFile, redact
from signaling.observe.logs import configure as configure_logging
from signaling.routing import Router, StaticRouter
from signaling.sip.transport import LocalIpError
from signaling.store import Store, StoreError, open_store
from signaling.store.backup_schedule import BackupSchedule

if TYPE_CHECKING:
    from signaling.api.server import ApiServer

log = logging.getLogger("softswitch")


#: Where the embedded default listens for SIP.
EMBEDDED_SIP = ("127.0.0.1", 5060)


#: a young collection once this many more container objects were allocated than freed
#: (Python's default: 700). Nearly all a call allocates dies young, by reference count; each
#: young collection walks what is alive, mostly the calls in flight, and what it keeps goes on
#: to the next generation's passes. In bench/b2bua_path.py (3,000 calls, 100 in flight) the
#: default ran 275 young collections, 0.11-0.16 s in all; 10,000 ran 18, 0.06-0.09 s. The real
#: node at 400 CPS for 70 s (bench/README.md, session 16): 10,000 ran 118 young and 10 older
#: passes, 1.7-1.8 s in all; 50,000 ran 80 and 6, 0.7-0.9 s, the longest pass as long (0.11-0.14
#: s against 0.11). What the passes find is next to nothing: 1,437 objects in all in a 20 s
#: run at 700 CPS (14,000 calls)
YOUNG_COLLECTION_THRESHOLD = 50_000


def settle_collector() -> None:
    """The cyclic collector's policy for a running node, once start-up is done. What start-up
    built (modules, the API's app, configuration, caches) lives as long as the node: it is set
    apart (``gc.freeze``), or every full pass would walk it again while calls come and go
    (pauses of the loop that grow with it); young collections come less often (above)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def embedded_config() -> Config:
    """The node without a configuration file: loopback SIP, the data directory's store, and its
    traces and debug file in the data directory's ``trace``."""
    return Config(
        sip_listen=EMBEDDED_SIP,
        store_url=default_store_url(),
        api=ApiConfig(),
        trace=TraceConfig(directory=str(data_dir() / "trace")),
    )


def load_config(
    path: str | None, sip: str | None, media_ports: str | None = None, api: str | None = None
) -> Config:
    cfg = load_file(Path(path)) if path else embedded_config()
    if sip:
        try:
            cfg.sip_listen = parse_host_port(sip, 5060)
        except ValueError as exc:
            raise ConfigError(f"--sip: {exc}") from None
        check_source_ips(cfg)  # the listen IP is one of the local IPs a gateway may name
    if api == "off":
        cfg.api = None
    elif api:
        try:
            listen = parse_host_port(api, 8080)
        except ValueError as exc:
            raise ConfigError(f"--api: {exc}") from None
        cfg.api = cfg.api or ApiConfig()
        cfg.api.listen = listen
    if media_ports:
        low, sep, high = media_ports.partition("-")
        if not sep or not low.strip().isdigit() or not high.strip().isdigit():
            raise ConfigError(f"--media-ports: {media_ports!r} is not LOW-HIGH (e.g. 30000-39999)")
        overrides = {"SS_MEDIAPROXYPORT_START": int(low), "SS_MEDIAPROXYPORT_END": int(high)}
        try:
            params.resolve(overrides, "--media-ports: ")
        except params.ParameterError as exc:
            raise ConfigError(str(exc)) from None
        cfg.parameters.update(overrides)
    return cfg


def prepare_embedded_store(
    url: str,
    carrier_ports: tuple[int, int] = demo.DEMO_CARRIER_PORTS,
    sip_listen: tuple[str, int] = EMBEDDED_SIP,
) -> bool:
    """Create or migrate the embedded store and seed the demo (its carriers on
    ``carrier_ports``) when it is empty (logged, with the command that places the demo call to
    a node listening on ``sip_listen``); False (logged) when it cannot be opened."""
    try:
        with open_store(url) as store:
            if demo.is_empty(store):
                seeded = demo.seed_demo(store, carrier_ports=carrier_ports)
                carriers = " and ".join(f"{g.name} at {g.host}:{g.port}" for g in seeded.carriers)
                node = "" if sip_listen == EMBEDDED_SIP else f" --node {_call_host(*sip_listen)}"
                log.info(
                    "the store was empty: seeded the demo (customer %s calling from 127.0.0.1, %s); "
                    "place a call with `softswitch call %s%s`",
                    seeded.customer.code,
                    carriers,
                    demo.DEMO_NUMBER,
                    node,
                )
    except Exception as exc:  # any driver, file or schema error: the node cannot start on it
        log.error("store %s: %s (is the data directory writable? set SOFTSWITCH_DATA)", url, exc)
        return False
    return True


def _call_host(host: str, port: int) -> str:
    """Where a test call from this machine reaches a node listening on ``host:port``."""
    return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def _reach(host: str) -> str:
    """A note for the log line when the node listens where other machines cannot reach it."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        return ""
    if not loopback:
        return ""
    return " (loopback only: other machines cannot reach it; use --sip 0.0.0.0:5060 or [sip] listen)"


def media_engine_options(p: Mapping[str, Any]) -> dict[str, Any]:
    """The in-process media engine's settings from the node's parameters as they stand at start
    (the file's, then the store's overrides): read here once, so a stored change of one of them
    takes effect at the node's next start (signaling/params.py ``AT_RESTART``)."""
    return {
        "port_min": int(p["SS_MEDIAPROXYPORT_START"]),
        "port_max": int(p["SS_MEDIAPROXYPORT_END"]),
        "rtp_timeout": float(p["SS_RTP_TIMEOUT"] or 3600),
        "jitter_buffer": {
            "mode": "fixed" if p["SS_JITTERBUFFER_MODE"] == "fixed" else "adaptive",
            "min": int(p["SS_JITTERBUFFER_MIN"]),
            "max": int(p["SS_JITTERBUFFER_MAX"]),
            "default": int(p["SS_JITTERBUFFER_DEFAULT"]),
        },
        "echo_cancel": {"enabled": bool(p["SS_ECHOCANCEL"]), "tail": int(p["SS_ECHOCANCELTAIL"])},
    }


async def _open_media(
    cfg: Config, parameters: Mapping[str, Any]
) -> tuple[InProcessMedia | NgMediaClient, MediaEngine | None] | None:
    """The media control (and the in-process engine, built from ``parameters``: the file's and
    the store's at start), or None (logged) when it cannot start."""
    if cfg.media_engine == "ng":
        assert cfg.media_ng is not None
        client = NgMediaClient(*cfg.media_ng)
        try:
            await client.ping()
        except MediaControlError as exc:
            log.error("media node %s:%d: %s", cfg.media_ng[0], cfg.media_ng[1], exc)
            return None
        return client, None
    try:
        engine = MediaEngine(
            interface=cfg.media_interface,
            interfaces=cfg.media_interfaces,
            workers=cfg.media_workers,
            advertise=cfg.media_advertise,
            **media_engine_options(parameters),
        )
    except MediaError as exc:
        log.error("cannot start the media engine: %s", exc)
        return None
    return InProcessMedia(engine), engine


def open_debug_file(cfg: Config, p: Mapping[str, Any]) -> DebugFile | None:
    """The softswitch debug file in the trace directory as SS_TRACETOFILE, SS_TRACE_MASK and
    SS_TRACE_FILE_LENGTH (KB) stand at start, attached to the root logger; None when off."""
    if not p["SS_TRACETOFILE"]:
        return None
    return DebugFile.attach(
        Path(cfg.trace.directory),
        int(p["SS_TRACE_FILE_LENGTH"]) * 1024,
        debug=str(p["SS_TRACE_MASK"]).lower() == "debug",
        fmt=cfg.log_format,
    )


def _start_billing(cfg: Config, billing: _Billing | None, node: Node, host: str, port: int) -> str:
    """Starts the store's router driver (settling the calls a previous run left); what the
    node routes from, for the start-up line."""
    if billing is None:
        return f"{len(cfg.mapping_gateways)} customer and {len(cfg.routing_gateways)} carrier gateways"
    if cfg.sip_advertise is None and host in ("0.0.0.0", "::"):
        log.warning(
            "[sip] advertise is not set: the other nodes of the store are told to reach this one "
            "at %s:%d, which only this machine reaches (docs/routing.md, 'Phones on several nodes')",
            node.advertise,
            port,
        )
    recovered = billing.driver.start()
    snap = billing.router.snapshot
    return (
        f"store {billing.store.dialect.value} as node {billing.router.node}: {len(snap.mapping)} "
        f"customer and {len(snap.routing)} carrier gateways, {recovered} calls of a previous run settled"
    )


def _start_backups(cfg: Config, config_file: Path | None) -> BackupSchedule | None:
    """The scheduled backups of ``[backup]`` (the configuration file goes into each archive
    beside the store's dump)."""
    if cfg.backup is None or cfg.store_url is None:
        return None
    backups = BackupSchedule(cfg.backup, cfg.store_url, config_file)
    backups.start()
    return backups


def _writable_directory(path: str) -> bool:
    return Path(path).is_dir() and os.access(path, os.W_OK | os.X_OK)


def _listen_error(cfg: Config, exc: OSError) -> str:
    """Why the node could not open its SIP sockets (a local IP's error names the key and IP)."""
    if isinstance(exc, LocalIpError):
        return str(exc)
    return f"cannot listen for SIP on {cfg.sip_listen[0]}:{cfg.sip_listen[1]}: {exc}"


async def serve(cfg: Config, stop: asyncio.Event, config_file: Path | None = None) -> int:
    if cfg.backup is not None and not _writable_directory(cfg.backup.directory):
        log.error("[backup] directory %r is not a directory this node can write to", cfg.backup.directory)
        return 2
    billing = _open_billing(cfg)
    if billing is None and cfg.store_url is not None:
        return 2
    # the store's overrides as they stand now reach the media engine and the debug file (read
    # at start only: signaling/params.py AT_RESTART)
    at_start = cfg.parameters if billing is None else billing.router.snapshot.parameters
    opened = await _open_media(cfg, at_start)
    if opened is None:
        if billing is not None:
            billing.store.close()
        return 2
    media, engine = opened

    debug_file: DebugFile | None = None

    def close() -> None:
        media.close()
        if engine is not None:
            engine.close()
        if billing is not None:
            billing.store.close()
        if debug_file is not None:
            debug_file.detach()

    router: Router = billing.router if billing is not None else StaticRouter(cfg)
    debug_file = open_debug_file(cfg, at_start)

    node = Node(cfg, media, router)
    observer = Observer(node)
    # The API first: building it is a burst of CPU on this loop that the node's overload guard,
    # sampling the loop from node.start() on, would take for traffic.
    api = await _start_api(cfg, billing, node, router, observer)
    if api is False:
        close()
        return 2
    try:
        host, port = await node.start()
    except OSError as exc:
        log.error("%s", _listen_error(cfg, exc))
        await _stop_api(api, billing)
        close()
        return 2
    observer.start()
    backups = _start_backups(cfg, config_file)
    settle_collector()
    gateways = _start_billing(cfg, billing, node, host, port)
    log.info(
        "node ready: SIP on %s:%d (udp, tcp)%s, media %s, %s",
        host,
        port,
        _reach(host),
        "in-process" if engine is not None else f"via ng {cfg.media_ng}",
        gateways,
    )
    await stop.wait()
    log.info("shutting down: ending %d calls", len(node.calls))
    await _stop_api(api, billing)
    if backups is not None:
        await backups.stop()
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


async def _start_api(
    cfg: Config, billing: _Billing | None, node: Node, router: Router, observer: Observer
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
            # the store the CLI's commands manage too ($SOFTSWITCH_STORE, else the data directory)
            url = default_store_url()
            store = open_store(url)
            log.info("API: no [store] url: managing %s (the node routes from its file's tables)", url)
        server = await start_node_api(cfg.api, store, node=node, router=router, observer=observer)
    except (OSError, ValueError, StoreError) as exc:
        log.error("cannot serve the API on %s:%d: %s", cfg.api.listen[0], cfg.api.listen[1], exc)
        if billing is None and store is not None:
            store.close()
        return False
    log.info(
        "API on %s/api/v1 (OpenAPI %s/api/openapi.json, metrics %s/metrics), web manager %s/manage",
        server.url,
        server.url,
        server.url,
        server.url,
    )
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
        log.error("store %s: %s", redact(cfg.store_url), exc)
        return None
    try:
        router = StoreRouter(
            store,
            node=cfg.store_node or socket.gethostname(),
            parameters=cfg.parameters,
            cdr_writer=CdrWriter(store),  # CDRs in group commits off the loop (docs/billing.md §5)
        )
    except StoreError as exc:
        log.error("store %s: cannot load the configuration: %s", redact(cfg.store_url), exc)
        store.close()
        return None
    return _Billing(store, router)


def run(
    config_path: str | None,
    sip: str | None,
    media_ports: str | None = None,
    api: str | None = None,
    *,
    demo_carrier_ports: tuple[int, int] | None = None,
    log_format: str | None = None,
    log_level: str | None = None,
) -> int:
    """Run the node; ``log_format``/``log_level`` from the command line win over ``[log]``;
    ``demo_carrier_ports`` (embedded default only) places the demo's carriers when it seeds."""
    if demo_carrier_ports is not None and config_path is not None:
        log.error("configuration: --demo-carrier-ports applies to the embedded default only (no --config)")
        return 2
    try:
        cfg = load_config(config_path, sip, media_ports, api)
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return 2
    if (cfg.log_format != "text" and log_format is None) or (cfg.log_level and log_level is None):
        configure_logging(log_format or cfg.log_format, log_level or cfg.log_level or "info")
    if config_path is None:
        assert cfg.store_url is not None
        log.info("no configuration file: the embedded default, store %s", cfg.store_url)
        ports = demo_carrier_ports or demo.DEMO_CARRIER_PORTS
        if not prepare_embedded_store(cfg.store_url, ports, cfg.sip_listen):
            return 2

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await serve(cfg, stop, Path(config_path) if config_path else None)

    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415

        return int(uvloop.run(main()))
    except ImportError:
        return asyncio.run(main())
