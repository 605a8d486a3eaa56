"""``softswitch``: one command for every operator task.

Subcommands so far:

``softswitch media``
    Run the media engine as a standalone node serving rtpengine's ng control protocol. The flags
    mirror rtpengine's (``--listen-ng``, ``--interface``, ``--port-min``, ``--port-max``,
    ``--timeout``, ``--silent-timeout``, ``--num-threads``) so operators recognise them. Runs in
    the foreground, logs to stderr, and exits cleanly on SIGTERM/SIGINT, releasing its ports.

``softswitch run``
    Run the SIP node (B2BUA) with its media engine (signaling/run.py); without ``--config``, on
    the embedded default (the data directory's store, seeded with the demo when empty).

``softswitch user add|passwd|list``, ``softswitch login``, ``softswitch calls [hangup CALL_ID]``
    Operator users on the store (the first administrator too), and the running node's live
    calls through its REST API with a stored session token (signaling/api/commands.py).

``softswitch route-analysis --store URL NUMBER [--caller N] [--at TIME] [--ingress NAME]``
``softswitch route-analysis [--store URL] NUMBER [--caller N] [--at TIME] [--ingress NAME]``
    Explain, from the store's configuration, which routing gateways a call to NUMBER would try
    in which order and why (each sorting step's key), which were skipped and why, and which rate
    would price it (docs/routing.md). Places no call; ``--json`` for scripts.

The operator commands live in their own modules, each registering its subparsers (docs/cli.md):
``cli_store`` (init, migrate, seed-demo, accounts, pay, credit, make-zero, payments),
``cli_csv`` (rates import/export, cdrs export), ``cli_billing`` (payment-records export, billing
monthly-min, savings), ``cli_backup`` (backup, restore), ``cli_call`` (call), ``cli_config``
(check-config, parameters). Each sets a ``handler``; :func:`main` runs it through
:func:`signaling.cli_common.run_handler`, which maps refusals to exit code 1 and usage or
configuration errors to 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import select
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType

from mediacore import MediaEngine, MediaError
from signaling import cli_backup, cli_billing, cli_call, cli_config, cli_csv, cli_store
from signaling.cli_common import add_store_option, run_handler, store_url
from signaling.observe.logs import configure as configure_logging

log = logging.getLogger("softswitch")

#: How often the media node logs its totals, seconds.
STATS_INTERVAL = 60.0


def _host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{host!r} is not an IP address") from exc
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from exc


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softswitch", description="Open softswitch node.")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="default info, or the configuration's [log] level",
    )
    parser.add_argument(
        "--log-format",
        default=None,
        choices=["text", "json"],
        help="text lines or one JSON object per line (default text, or the configuration's [log] format)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    media = sub.add_parser(
        "media",
        help="run a standalone media node (ng protocol)",
        description="Run the media engine as a standalone node serving rtpengine's ng protocol.",
    )
    media.add_argument(
        "--listen-ng",
        type=_host_port,
        default="127.0.0.1:2223",
        help="UDP address of the ng control socket (default 127.0.0.1:2223)",
    )
    media.add_argument(
        "--interface",
        type=_ip,
        action="append",
        default=None,
        help="local address media sockets bind to (default 127.0.0.1); repeated, the first is the "
        "default and the others further interfaces that ng 'direction' names by address "
        "(docs/control-protocol.md 'Interfaces')",
    )
    media.add_argument(
        "--advertise", type=_ip, default=None, help="address written into SDP if not the interface (1:1 NAT)"
    )
    media.add_argument("--port-min", type=_port, default=10000, help="lowest media port (default 10000)")
    media.add_argument("--port-max", type=_port, default=20000, help="highest media port (default 20000)")
    media.add_argument(
        "--num-threads",
        type=int,
        default=None,
        help="media worker threads (default: half the cores, at least 1)",
    )
    media.add_argument(
        "--timeout",
        type=_positive,
        default=30.0,
        help="seconds without RTP before a media timeout (SS_RTP_TIMEOUT, default 30)",
    )
    media.add_argument(
        "--silent-timeout",
        type=_positive,
        default=3600.0,
        help="seconds without RTP on a held stream before a hold timeout (default 3600)",
    )
    media.add_argument(
        "--transcode-slots",
        type=int,
        default=1000,
        help="transcoding sessions admitted at most (default 1000)",
    )
    media.add_argument(
        "--cpu-guard",
        type=float,
        default=0.85,
        help="refuse new transcoding while a media worker uses more than this share of a core (default 0.85)",
    )
    jb = media.add_argument_group("jitter buffer and echo canceller (every leg, unless a call sets its own)")
    jb.add_argument(
        "--jitter-buffer-mode",
        choices=["adaptive", "fixed"],
        default="adaptive",
        help="SS_JITTERBUFFER_MODE (default adaptive)",
    )
    jb.add_argument("--jitter-buffer-min", type=int, default=20, help="SS_JITTERBUFFER_MIN, ms (default 20)")
    jb.add_argument(
        "--jitter-buffer-max", type=int, default=200, help="SS_JITTERBUFFER_MAX, ms (default 200)"
    )
    jb.add_argument(
        "--jitter-buffer-default",
        type=int,
        default=60,
        help="SS_JITTERBUFFER_DEFAULT: starting (adaptive) or fixed delay, ms (default 60)",
    )
    jb.add_argument(
        "--jitter-buffer-relay",
        action="store_true",
        help="also re-time relayed streams (default: only decoded streams are buffered)",
    )
    jb.add_argument(
        "--echo-cancel",
        choices=["on", "off"],
        default="on",
        help="SS_ECHOCANCEL on decoded legs (default on)",
    )
    jb.add_argument(
        "--echo-cancel-tail",
        type=int,
        choices=[64, 128],
        default=64,
        help="SS_ECHOCANCELTAIL, ms (default 64)",
    )
    node = sub.add_parser(
        "run",
        help="run the SIP node (B2BUA) with its media engine",
        description="Run the softswitch node: SIP B2BUA, routing and media, in the foreground.",
    )
    node.add_argument(
        "--config",
        default=None,
        help="configuration file (TOML or YAML; docs/cli.md); without one: the embedded default "
        "(the data directory's SQLite store, seeded with the demo when empty, SIP on 127.0.0.1:5060)",
    )
    node.add_argument(
        "--sip",
        default=None,
        help="SIP listen address HOST:PORT, UDP and TCP (default: the file's, else 127.0.0.1:5060)",
    )
    node.add_argument(
        "--media-ports",
        default=None,
        metavar="LOW-HIGH",
        help="media (RTP) port range, overriding SS_MEDIAPROXYPORT_START/END",
    )
    node.add_argument(
        "--api",
        default=None,
        metavar="HOST:PORT|off",
        help="REST API and web manager listen address (default: the file's [api], else "
        "127.0.0.1:8080 on the embedded default); 'off' serves neither",
    )
    node.add_argument(
        "--demo-carrier-ports",
        type=cli_store.two_ports,
        default=None,
        metavar="A,B",
        help="embedded default only: the UDP ports of the demo's carrier-a and carrier-b on "
        "127.0.0.1 when the empty store is seeded (default 5081,5082; as seed-demo --carrier-ports)",
    )
    analysis = sub.add_parser(
        "route-analysis",
        help="explain how a number would be routed and rated",
        description="Which routing gateways a call would try, in which order and why, and its rate.",
    )
    analysis.add_argument("number", help="the called number, as the customer sends it")
    add_store_option(analysis)
    analysis.add_argument("--caller", default="", help="the calling number (for caller lists and dial plans)")
    analysis.add_argument(
        "--at", type=_instant, default=None, help="call time, ISO 8601 (default now; no zone means UTC)"
    )
    analysis.add_argument("--ingress", default=None, help="the mapping gateway (customer) to simulate")
    analysis.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_api_commands(sub)
    cli_store.register(sub)
    cli_csv.register(sub)
    cli_billing.register(sub)
    cli_backup.register(sub)
    cli_call.register(sub)
    cli_config.register(sub)
    return parser


def _add_api_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``softswitch user`` (operator users on the store), ``login`` and ``calls`` (the API)."""
    from signaling.api.commands import add_parsers  # noqa: PLC0415 (kept with the API)

    add_parsers(sub)


def _run_api_command(args: argparse.Namespace) -> int:
    from signaling.api.commands import run  # noqa: PLC0415

    return run(args)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (2025-03-09T14:00:00+00:00)"
        ) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def run_route_analysis(args: argparse.Namespace) -> int:
    from signaling.callproc.analysis import analyse, as_json, render  # noqa: PLC0415 (store code on demand)
    from signaling.callproc.cluster import Registered, stored_registrations  # noqa: PLC0415
    from signaling.callproc.snapshot import load_snapshot  # noqa: PLC0415
    from signaling.store import Phone, open_store  # noqa: PLC0415

    url = store_url(args)
    try:
        store = open_store(url, migrate=False)
    except Exception as exc:  # any driver or file error, reported as the store's
        log.error("store %s: %s", url, exc)
        return 2
    at = args.at or datetime.now(UTC)

    def registered(phone: Phone) -> list[Registered]:  # where the phone is, on every node
        return stored_registrations(store, (phone.number, phone.sip_user or phone.number), datetime.now(UTC))

    try:
        snapshot = load_snapshot(store)
        result = analyse(
            snapshot, args.number, at=at, ingress=args.ingress, caller=args.caller, registered=registered
        )
    finally:
        store.close()
    print(as_json(result) if args.json else render(result))
    return 0


def run_media(args: argparse.Namespace) -> int:
    try:
        interfaces = args.interface or ["127.0.0.1"]
        engine = MediaEngine(
            interface=interfaces[0],
            interfaces=interfaces[1:],
            port_min=args.port_min,
            port_max=args.port_max,
            workers=args.num_threads,
            rtp_timeout=args.timeout,
            hold_timeout=args.silent_timeout,
            advertise=args.advertise,
            transcode_slots=args.transcode_slots,
            cpu_guard=args.cpu_guard,
            jitter_buffer={
                "mode": args.jitter_buffer_mode,
                "min": args.jitter_buffer_min,
                "max": args.jitter_buffer_max,
                "default": args.jitter_buffer_default,
                "relay": args.jitter_buffer_relay,
            },
            echo_cancel={"enabled": args.echo_cancel == "on", "tail": args.echo_cancel_tail},
        )
    except MediaError as exc:
        log.error("cannot start the media engine: %s", exc)
        return 2
    try:
        host, port = engine.serve_ng(args.listen_ng)
    except MediaError as exc:
        log.error("cannot serve ng: %s (is another media node already listening there?)", exc)
        engine.close()
        return 2

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "media node ready: ng on %s:%d (udp), media on %s ports %d-%d, %d workers",
        host,
        port,
        ", ".join(interfaces),
        args.port_min,
        args.port_max,
        engine.workers,
    )
    try:
        _serve_until(stop, engine)
    finally:
        engine.close()
        log.info("media node stopped; all ports released")
    return 0


def _serve_until(stop: threading.Event, engine: MediaEngine) -> None:
    fd = engine.event_fd()
    last_stats = 0.0
    while not stop.is_set():
        try:
            ready, _, _ = select.select([fd], [], [], 0.5)
        except InterruptedError:
            continue
        if ready:
            for ev in engine.drain_events():
                log.warning(
                    "%s: session %d %s leg silent for %.1f s",
                    ev["kind"],
                    ev["session"],
                    ev["side"],
                    ev["silent_for"],
                )
        now = time.monotonic()
        if now - last_stats >= STATS_INTERVAL:
            last_stats = now
            t = engine.totals()
            log.info(
                "sessions=%d in=%d forwarded=%d dropped=%d send_errors=%d ports=%d/%d",
                t["sessions"],
                t["datagrams_in"],
                t["forwarded"],
                t["dropped"],
                t["send_errors"],
                t["ports_in_use"],
                t["port_capacity"],
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format or "text", args.log_level or "info", sys.stderr)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return run_handler(handler, args)
    if args.command == "media":
        if args.port_min > args.port_max:
            parser.error(f"--port-min {args.port_min} is above --port-max {args.port_max}")
        return run_media(args)
    if args.command == "run":
        from signaling.run import run  # noqa: PLC0415 (asyncio and the SIP stack only when needed)

        return run(
            args.config,
            args.sip,
            args.media_ports,
            args.api,
            demo_carrier_ports=args.demo_carrier_ports,
            log_format=args.log_format,
            log_level=args.log_level,
        )
    if args.command == "route-analysis":
        return run_route_analysis(args)
    if args.command in ("user", "login", "calls"):
        return _run_api_command(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
