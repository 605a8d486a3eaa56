"""What the store subcommands of ``softswitch`` share: where the store is, how errors end a
command (exit codes), reading amounts and times from the command line.

**Where the store is.** ``--store URL`` when given, else ``$SOFTSWITCH_STORE``, else the
embedded default: the SQLite file ``softswitch.db`` in the data directory, which is
``$SOFTSWITCH_DATA`` or ``./softswitch-data`` (created on first use).

**Exit codes.** 0 done; 1 the store refused the operation (unknown account, a rule of the
admin API, a rate file with bad rows: nothing was changed); 2 a usage or configuration error
(bad arguments, an unreadable file, a store that cannot be opened or needs migrating).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

from signaling.billing.money import parse_decimal
from signaling.store import Store, open_store
from signaling.store.errors import NotFoundError, SchemaError, StoreError

log = logging.getLogger("softswitch")

EXIT_REFUSED = 1
EXIT_USAGE = 2

DATA_ENV = "SOFTSWITCH_DATA"
STORE_ENV = "SOFTSWITCH_STORE"
DEFAULT_DATA_DIR = "softswitch-data"
DB_FILE = "softswitch.db"

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """Ends a command with ``message`` on stderr and ``code`` as the exit status."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    raise CommandError(message, code)


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR)


def default_store_url() -> str:
    """The store a command uses without ``--store``: ``$SOFTSWITCH_STORE`` or the data dir's file."""
    url = os.environ.get(STORE_ENV)
    if url:
        return url
    return f"sqlite:///{(data_dir() / DB_FILE).resolve()}"


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=None,
        help=f"store URL (default ${STORE_ENV}, else sqlite:///${DATA_ENV}/{DB_FILE}, "
        f"${DATA_ENV} defaulting to ./{DEFAULT_DATA_DIR})",
    )


def store_url(args: argparse.Namespace) -> str:
    return str(args.store) if getattr(args, "store", None) else default_store_url()


def open_for_command(args: argparse.Namespace) -> Store:
    """The store at the command's URL, at this code's schema version (never migrated here)."""
    url = store_url(args)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        fail(f"no store at {url}: create it with `softswitch init`", EXIT_USAGE)
    try:
        return open_store(url, migrate=False)
    except SchemaError as exc:
        fail(f"store {url}: {exc} (`softswitch migrate` applies them)", EXIT_USAGE)
    except Exception as exc:  # a driver or file error: the store cannot be used at all
        fail(f"store {url}: {exc}", EXIT_USAGE)


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run a subcommand, turning its refusals into a message and an exit code."""
    name = " ".join(filter(None, ["softswitch", args.command, getattr(args, "verb", None)]))
    try:
        return handler(args)
    except CommandError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.code
    except NotFoundError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except StoreError as exc:
        print(f"{name}: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except BrokenPipeError:  # `softswitch ... | head`: the reader left, nothing to report
        return 0


# -- argument types -------------------------------------------------------------------------------


def amount(text: str) -> Decimal:
    """A money amount as typed: plain decimal notation, never through a float."""
    value = parse_decimal(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an amount: write plain decimal notation, e.g. 25.00 or -3.5"
        )
    return value


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def instant(text: str) -> datetime:
    """ISO 8601; a date alone is its midnight; no zone means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time (2025-03-09 or 2025-03-09T14:00:00+00:00)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def money_text(value: Decimal) -> str:
    """Money as people read it: at least two places, no trailing zeros beyond them."""
    text = format(value.normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
