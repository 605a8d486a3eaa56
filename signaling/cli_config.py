"""``softswitch check-config FILE``: the checks ``softswitch run`` makes at start, without
starting anything. Exit 0 and a summary when the file is good; exit 2 and one line naming the
file and the bad key's path (with a "did you mean" for a misspelt name) when it is not."""

from __future__ import annotations

import argparse
import sys

from signaling.cli_common import EXIT_USAGE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="check a node configuration file (TOML or YAML) without starting the node",
        description="Check every key and value of a configuration file as `softswitch run` does "
        "at start; report the first bad key with the file and its path.",
    )
    p.add_argument("file", help="the configuration file (*.toml, or *.yaml / *.yml)")
    p.set_defaults(handler=cmd_check_config)

    p = sub.add_parser(
        "parameters",
        help="list every system parameter a configuration file may set, with its default",
        description="Every SS_*, SERVER_* and IVR_* parameter by the reference's name: default, "
        "meaning, and whether this softswitch uses it or only accepts it.",
    )
    p.set_defaults(handler=cmd_parameters)


def cmd_check_config(args: argparse.Namespace) -> int:
    from signaling.config import ConfigError, load_file  # noqa: PLC0415 (parsers on demand)

    try:
        cfg = load_file(args.file)
    except ConfigError as exc:
        print(f"softswitch check-config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    host, port = cfg.sip_listen
    routing = (
        f"store {cfg.store_url}"
        if cfg.store_url
        else f"{len(cfg.mapping_gateways)} mapping and {len(cfg.routing_gateways)} routing gateways"
    )
    media = f"ng {cfg.media_ng[0]}:{cfg.media_ng[1]}" if cfg.media_ng else "in-process"
    print(f"{args.file}: OK (SIP on {host}:{port}, media {media}, {routing})")
    return 0


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, tuple):
        return ",".join(format(v, "g") if isinstance(v, float) else str(v) for v in value)
    return "None" if value is None else str(value)


def cmd_parameters(args: argparse.Namespace) -> int:
    from signaling import params  # noqa: PLC0415
    from signaling.cli_common import print_table  # noqa: PLC0415
    from signaling.store.parameters import SERVER_PARAMETERS  # noqa: PLC0415

    rows = []
    for p in params.PARAMETERS.values():
        alias = params.ALIASES.get(p.name)
        use = f"= {', '.join(alias)}" if alias else ("accepted only" if p.name in params.UNUSED else "")
        rows.append([p.name, _shown(p.default), use, p.doc])
    for s in SERVER_PARAMETERS.values():
        if s.name not in params.PARAMETERS:
            rows.append([s.name, _shown(s.default) or '""', "", s.doc])
    print_table(rows, ["PARAMETER", "DEFAULT", "USE", "MEANING"])
    return 0
