"""``softswitch backup FILE`` and ``softswitch restore FILE`` (signaling/store/backup.py).

The archive is one ``.tar.gz``: a consistent dump of the database (SQLite's online backup, or
``pg_dump``), the node's configuration file when ``--config`` names it, and a manifest (version,
time, schema version, rows per table). Rates and routing are tables of the database, so the dump
holds them. A restore goes into an empty database (``--force`` replaces a non-empty one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from signaling.cli_common import EXIT_USAGE, add_store_option, fail, store_url
from signaling.store.backup import BackupError, backup, restore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backup",
        help="write the store (and a configuration file) to one .tar.gz archive",
        description="Write a consistent dump of the store's database — accounts, payments, rates, "
        "routing, CDRs: everything is in it — with a manifest, and the node's configuration file "
        "if --config names it, to one .tar.gz archive. Nodes may keep running.",
    )
    add_store_option(p)
    p.add_argument("file", help="the archive to write (e.g. softswitch-2025-03-01.tar.gz)")
    p.add_argument("--config", type=Path, default=None, help="the node's configuration file, saved too")
    p.set_defaults(handler=cmd_backup)

    p = sub.add_parser(
        "restore",
        help="load a backup archive into an empty store",
        description="Load the database of a backup archive into the store (an empty or freshly "
        "initialised database of the same kind), check its schema version (an older one is "
        "migrated) and its row counts. Stop the nodes of the store first.",
    )
    add_store_option(p)
    p.add_argument("file", help="the archive written by `softswitch backup`")
    p.add_argument("--force", action="store_true", help="replace a database that holds records")
    p.add_argument(
        "--config",
        dest="config_out",
        type=Path,
        default=None,
        help="also write the saved configuration file here",
    )
    p.set_defaults(handler=cmd_restore)


def cmd_backup(args: argparse.Namespace) -> int:
    url = store_url(args)
    try:
        manifest = backup(url, Path(args.file), config=args.config)
    except BackupError as exc:
        fail(str(exc), EXIT_USAGE if "no such" in str(exc) else 1)
    rows = sum(n for name, n in manifest.tables.items() if name != "schema_version")
    extra = f" and {manifest.config}" if manifest.config else ""
    print(
        f"{args.file}: {manifest.dialect} database at schema version {manifest.schema_version}, "
        f"{rows} rows{extra}"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    url = store_url(args)
    try:
        done = restore(url, Path(args.file), force=args.force, config_out=args.config_out)
    except BackupError as exc:
        fail(str(exc))
    m = done.manifest
    print(
        f"restored the backup of {m.created_at.isoformat(timespec='seconds')} "
        f"(softswitch {m.softswitch_version})"
    )
    if done.migrated:
        print(f"migrated from schema version {m.schema_version} to {done.schema_version}")
    if done.config_written:
        print(f"configuration written to {done.config_written}", file=sys.stderr)
    return 0
