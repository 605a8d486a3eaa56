"""``softswitch check-config FILE``: the checks ``softswitch run`` makes at start, without
starting anything. Exit 0 and a summary when the file is good; exit 2 and one line naming the
file and the bad key's path (with a "did you mean" for a misspelt name) when it is not."""

from __future__ import annotations

import argparse
import sys

from signaling.cli_common import EXIT_USAGE, add_store_option, open_for_command


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
        help="list every system parameter, or set, reset and list the store's overrides",
        description="Without a verb: every SS_*, SERVER_* and IVR_* parameter by the reference's "
        "name, with its default, meaning, whether this softswitch uses it or only accepts it, "
        "and when a stored change takes effect. `set`, `reset` and `stored` work on the store's "
        "overrides: running nodes take most at their next reload; those marked 'restart "
        "required' (the media engine's, the trace file sizes) at each node's next start "
        "(docs/routing.md, 'Parameters').",
    )
    p.set_defaults(handler=cmd_parameters)
    verbs = p.add_subparsers(dest="verb", metavar="{set,reset,stored}")
    v = verbs.add_parser("set", help="store an override (checked by name and value)")
    v.add_argument("name", help="the parameter, e.g. SS_SIP_TIMEOUT_INVITE")
    v.add_argument("value", help="its value, in the reference's form (On/Off, a number, a mode)")
    add_store_option(v)
    v.set_defaults(handler=cmd_parameter_set)
    v = verbs.add_parser("reset", help="drop an override: the file's value or the default applies")
    v.add_argument("name")
    add_store_option(v)
    v.set_defaults(handler=cmd_parameter_reset)
    v = verbs.add_parser("stored", help="list the store's overrides")
    add_store_option(v)
    v.set_defaults(handler=cmd_parameters_stored)


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
        rows.append([p.name, _shown(p.default), use, _effect(p.name), p.doc])
    for s in SERVER_PARAMETERS.values():
        if s.name not in params.PARAMETERS:
            use = "accepted only" if s.name in params.SERVER_UNUSED else ""
            rows.append([s.name, _shown(s.default) or '""', use, _effect(s.name), s.doc])
    print_table(rows, ["PARAMETER", "DEFAULT", "USE", "TAKES EFFECT", "MEANING"])
    return 0


def _effect(name: str) -> str:
    """When a stored change of ``name`` takes effect, for a listing (a stored name this version
    does not know: nodes skip it)."""
    from signaling import params  # noqa: PLC0415

    kind = params.TAKES_EFFECT.get(name)
    return "unknown here: ignored" if kind is None else params.EFFECT_MARK[kind]


def _note(name: str) -> str:
    from signaling import params  # noqa: PLC0415

    kind = params.TAKES_EFFECT.get(name)
    return "this version does not read it" if kind is None else params.EFFECT_NOTE[kind]


def cmd_parameter_set(args: argparse.Namespace) -> int:
    """Store an override; the store checks the name and the value (a refusal names the
    parameter and exits 1, nothing stored)."""
    with open_for_command(args) as store:
        store.set_parameter(args.name, args.value)
        print(f"{args.name} = {store.parameters()[args.name]} (stored; {_note(args.name)})")
    return 0


def cmd_parameter_reset(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        if args.name not in store.parameters():
            print(f"{args.name}: no override stored")
            return 0
        store.reset_parameter(args.name)
    print(f"{args.name}: override dropped ({_note(args.name)})")
    return 0


def cmd_parameters_stored(args: argparse.Namespace) -> int:
    from signaling.cli_common import print_table  # noqa: PLC0415

    with open_for_command(args) as store:
        overrides = store.parameters()
    print_table([[n, v, _effect(n)] for n, v in overrides.items()], ["PARAMETER", "VALUE", "TAKES EFFECT"])
    return 0
