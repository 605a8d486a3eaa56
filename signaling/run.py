"""``softswitch run``: the SIP node (B2BUA) with its media engine, in the foreground.

Loads the configuration file (or the embedded default: listen on 0.0.0.0:5060, in-process media,
no gateways), starts the SIP transport and the media engine (in-process, or an ng client toward
a media node), and serves until SIGTERM/SIGINT, when every call is ended with BYE (or a final
response) and its record written before the sockets close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from mediacore import MediaEngine, MediaError
from signaling.b2bua.node import Node
from signaling.config import Config, ConfigError, load_file, parse_host_port
from signaling.media.control import InProcessMedia, MediaControlError, NgMediaClient
from signaling.routing import StaticRouter

log = logging.getLogger("softswitch")


def load_config(path: str | None, sip: str | None) -> Config:
    cfg = load_file(Path(path)) if path else Config()
    if sip:
        try:
            cfg.sip_listen = parse_host_port(sip, 5060)
        except ValueError as exc:
            raise ConfigError(f"--sip: {exc}") from None
    return cfg


async def serve(cfg: Config, stop: asyncio.Event) -> int:
    engine: MediaEngine | None = None
    media: InProcessMedia | NgMediaClient
    if cfg.media_engine == "ng":
        assert cfg.media_ng is not None
        media = NgMediaClient(*cfg.media_ng)
        try:
            await media.ping()
        except MediaControlError as exc:
            log.error("media node %s:%d: %s", cfg.media_ng[0], cfg.media_ng[1], exc)
            return 2
    else:
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
            return 2
        media = InProcessMedia(engine)
    router = StaticRouter(cfg)
    node = Node(cfg, media, router)
    try:
        host, port = await node.start()
    except OSError as exc:
        log.error("cannot listen for SIP on %s:%d: %s", cfg.sip_listen[0], cfg.sip_listen[1], exc)
        media.close()
        if engine is not None:
            engine.close()
        return 2
    log.info(
        "node ready: SIP on %s:%d (udp, tcp), media %s, %d customer and %d carrier gateways",
        host,
        port,
        "in-process" if engine is not None else f"via ng {cfg.media_ng}",
        len(cfg.mapping_gateways),
        len(cfg.routing_gateways),
    )
    await stop.wait()
    log.info("shutting down: ending %d calls", len(node.calls))
    await node.stop()
    media.close()
    if engine is not None:
        engine.close()
    s = node.stats
    log.info(
        "stopped: %d calls, %d answered, %d failed, %d rejected",
        s.calls_started,
        s.calls_answered,
        s.calls_failed,
        s.calls_rejected,
    )
    return 0


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
