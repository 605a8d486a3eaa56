"""``softswitch`` subcommands on the store: ``init``, ``migrate``, ``seed-demo``, ``accounts``,
``pay``, ``credit``, ``make-zero``, ``payments``.

Every change goes through :class:`signaling.store.Admin`, the service layer the REST API uses
too, so the rules are the same whichever way an operator works (docs/cli.md). Amounts are read
as ``Decimal`` from their text, never through a float.
"""

from __future__ import annotations

import argparse
import getpass
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from signaling import demo
from signaling.cli_common import (
    EXIT_USAGE,
    add_store_option,
    amount,
    fail,
    instant,
    money_text,
    open_for_command,
    print_table,
    store_url,
)
from signaling.progress import Progress
from signaling.store import Account, Admin, MappingGateway, RateGroup, RoutingGateway, Store
from signaling.store import migrate as migrations
from signaling.store.errors import SchemaError

_ACCOUNT_KINDS = ("customer", "vendor")
_BILLING = ("prepaid", "postpaid")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the store subcommands to the ``softswitch`` parser."""
    p = sub.add_parser(
        "init",
        help="create the store, or migrate it to this version",
        description="Create the store (the embedded SQLite file by default) or bring its schema "
        "up to date. Safe to run again.",
    )
    add_store_option(p)
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser(
        "migrate",
        help="show the applied and pending schema migrations, and apply them",
        description="List the schema migrations applied to the store and those pending, then "
        "apply the pending ones in one transaction.",
    )
    add_store_option(p)
    p.add_argument("--status", action="store_true", help="only list them; change nothing")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser(
        "seed-demo",
        help="add the demo configuration (a customer, two carriers, rates)",
        description="Add the demo: customer account 1001 behind mapping gateway demo-customer "
        "(calls from 127.0.0.1), carriers carrier-a and carrier-b on loopback, rate groups and "
        f"rates. Then `softswitch run` and `softswitch call {demo.DEMO_NUMBER}`.",
    )
    add_store_option(p)
    p.add_argument(
        "--carrier-ports",
        type=two_ports,
        default=demo.DEMO_CARRIER_PORTS,
        metavar="A,B",
        help="UDP ports of carrier-a and carrier-b on 127.0.0.1 (default 5081,5082)",
    )
    p.set_defaults(handler=cmd_seed_demo)

    _register_accounts(sub)
    _register_payments(sub)


def _register_accounts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = sub.add_parser("accounts", help="list, show, add and change accounts")
    verbs = accounts.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("list", help="every account, one per line")
    add_store_option(p)
    p.add_argument("--kind", choices=_ACCOUNT_KINDS, help="only customers or only vendors")
    p.set_defaults(handler=cmd_accounts_list)

    p = verbs.add_parser("show", help="one account in full, with its gateways")
    add_store_option(p)
    p.add_argument("account", help="the account ID (its code, e.g. 1001)")
    p.set_defaults(handler=cmd_accounts_show)

    p = verbs.add_parser("add", help="create an account")
    add_store_option(p)
    p.add_argument("account", help="the new account ID (unique, no spaces)")
    p.add_argument("--name", default="", help="account name")
    p.add_argument("--kind", choices=_ACCOUNT_KINDS, default="customer")
    p.add_argument("--billing", choices=_BILLING, default="prepaid")
    p.add_argument("--rate-group", default=None, help="rate group name (what the customer pays)")
    p.add_argument("--balance", type=amount, default=Decimal(0), help="opening balance (a payment record)")
    p.add_argument("--credit", type=amount, default=Decimal(0), help="overdraft limit (a credit record)")
    p.add_argument("--expiry", type=instant, default=None, help="no calls after this time (ISO 8601)")
    p.add_argument("--max-calls", type=int, default=None, help="concurrent calls of the account")
    p.add_argument("--ip-whitelist", default="", help=_WHITELIST_HELP)
    p.add_argument("--memo", default="")
    p.set_defaults(handler=cmd_accounts_add)

    p = verbs.add_parser("set", help="change an account (balance and credit: use pay / credit)")
    add_store_option(p)
    p.add_argument("account")
    p.add_argument("--name", default=None)
    p.add_argument("--billing", choices=_BILLING, default=None)
    p.add_argument("--rate-group", default=None, help="rate group name, or 'none'")
    p.add_argument("--expiry", default=None, help="ISO 8601 time, or 'never'")
    p.add_argument("--max-calls", default=None, help="a number, or 'none'")
    p.add_argument("--ip-whitelist", default=None, help=_WHITELIST_HELP + "; 'none' clears it")
    p.add_argument("--memo", default=None)
    p.set_defaults(handler=cmd_accounts_set)

    for verb, locked in (("lock", True), ("unlock", False)):
        p = verbs.add_parser(verb, help=f"{verb} an account ({'no new calls' if locked else 'calls again'})")
        add_store_option(p)
        p.add_argument("account")
        p.set_defaults(handler=cmd_accounts_lock, locked=locked)


def _register_payments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def payment_parser(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        add_store_option(p)
        p.add_argument("account", help="the account ID (its code)")
        return p

    def operation_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--memo", default="", help="note kept on the payment record")
        p.add_argument(
            "--operator", default=None, help="name recorded as the operator (default: your login name)"
        )

    p = payment_parser("pay", "add a payment to an account's balance (negative: an adjustment)")
    p.add_argument("amount", type=amount, help="e.g. 25.00, or -3.50 for a correction")
    operation_options(p)
    p.set_defaults(handler=cmd_pay)

    p = payment_parser("credit", "set an account's overdraft limit (the reference's Credit)")
    p.add_argument("limit", type=amount, help="the new limit, e.g. 50.00 (0 removes the overdraft)")
    operation_options(p)
    p.set_defaults(handler=cmd_credit)

    p = payment_parser("make-zero", "set an account's balance to zero (recorded)")
    operation_options(p)
    p.set_defaults(handler=cmd_make_zero)

    p = payment_parser("payments", "an account's payment records, oldest first")
    p.add_argument("--from", dest="start", type=instant, default=None, help="from this time (ISO 8601)")
    p.add_argument("--to", dest="end", type=instant, default=None, help="before this time")
    p.set_defaults(handler=cmd_payments)


def two_ports(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and 0 < int(p) < 65536 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not two ports A,B (e.g. 5081,5082)")
    return int(parts[0]), int(parts[1])


# -- init, migrate, seed-demo -----------------------------------------------------------------------


def _open_to_migrate(url: str) -> Store:
    try:
        return Store(url)
    except Exception as exc:  # a driver or file error
        fail(f"store {url}: {exc}", EXIT_USAGE)


def _refuse_newer(store: Store, url: str) -> None:
    current, latest = store.schema_version(), migrations.latest_version(store.dialect)
    if current > latest:
        fail(
            f"store {url}: schema version {current} is newer than this softswitch knows (up to "
            f"{latest}): upgrade the softswitch, or point it at another store",
            EXIT_USAGE,
        )


def _apply(store: Store, url: str) -> list[int]:
    _refuse_newer(store, url)
    todo = migrations.pending(store.db)
    if not todo:
        return []
    with Progress("migrate", len(todo)) as bar:
        try:
            done = store.migrate(progress=lambda _m: bar.advance())
        except SchemaError as exc:
            fail(f"store {url}: {exc}", EXIT_USAGE)
    return done


def cmd_init(args: argparse.Namespace) -> int:
    url = store_url(args)
    with _open_to_migrate(url) as store:
        existed = bool(migrations.applied(store.db))
        done = _apply(store, url)
        version = store.schema_version()
        empty = demo.is_empty(store)
    if done:
        verb = "migrated" if existed else "created"
        print(f"{verb} {url}: schema version {version} (applied {', '.join(map(str, done))})")
    else:
        print(f"{url}: already at schema version {version}; nothing to do")
    if empty:
        print("next: `softswitch seed-demo` for the demo configuration, then `softswitch run`")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    url = store_url(args)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        fail(f"no store at {url}: create it with `softswitch init`", EXIT_USAGE)
    with _open_to_migrate(url) as store:
        _refuse_newer(store, url)
        done_before = migrations.applied(store.db)
        todo = migrations.pending(store.db)
        for m in done_before:
            print(f"applied  {m.version:04d} {m.name}  ({m.applied_at})")
        for p in todo:
            print(f"pending  {p.version:04d} {p.name}")
        if args.status or not todo:
            if not todo:
                print(f"schema version {store.schema_version()}: up to date")
            return 0
        done = _apply(store, url)
        print(f"applied {', '.join(map(str, done))}: schema version {store.schema_version()}")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    store = open_for_command(args)
    with store:
        if demo.is_seeded(store):
            fail(f"the demo is already there (account {demo.DEMO_CUSTOMER}); nothing changed")
        seeded = demo.seed_demo(store, carrier_ports=args.carrier_ports)
    carriers = ", ".join(f"{g.name} at {g.host}:{g.port} (priority {g.priority})" for g in seeded.carriers)
    print(f"demo customer {seeded.customer.code}: balance {money_text(seeded.customer.balance)}, calls from")
    print("  127.0.0.1 through mapping gateway demo-customer")
    print(f"demo carriers: {carriers}")
    print(f"{seeded.rates} rates in demo-retail, demo-carrier-a, demo-carrier-b")
    print(f"try it: `softswitch run`, then `softswitch call {demo.DEMO_NUMBER}`")
    return 0


# -- accounts ---------------------------------------------------------------------------------------


def _account(admin: Admin, code: str) -> Account:
    return admin.find_account(code)


def _group_id(admin: Admin, name: str | None) -> int | None:
    if name is None or name.lower() == "none":
        return None
    for group in admin.list(RateGroup):
        if group.name == name:
            return group.id
    known = ", ".join(g.name for g in admin.list(RateGroup)) or "none yet"
    fail(f"no rate group {name!r} (known: {known})")


def _group_names(admin: Admin) -> dict[int, str]:
    return {g.id: g.name for g in admin.list(RateGroup)}


def cmd_accounts_list(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin()
        groups = _group_names(admin)
        rows = [
            [
                a.code,
                a.name,
                a.kind,
                a.billing,
                money_text(a.balance),
                money_text(a.credit_limit),
                groups.get(a.rate_group_id, "-") if a.rate_group_id else "-",
                "locked" if a.locked else "",
            ]
            for a in admin.list(Account)
            if args.kind is None or a.kind == args.kind
        ]
    header = ["ACCOUNT", "NAME", "KIND", "BILLING", "BALANCE", "CREDIT", "RATE GROUP", "STATE"]
    print_table(rows, header)
    return 0


def cmd_accounts_show(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin()
        a = _account(admin, args.account)
        groups = _group_names(admin)
        held = store.held(a.id)
        mapping = [g for g in admin.list(MappingGateway) if g.account_id == a.id]
        routing = [g for g in admin.list(RoutingGateway) if g.account_id == a.id]
        category = admin.category(a.id)
    lines = [
        ("account", a.code),
        ("name", a.name),
        ("kind", f"{a.kind} ({category})"),
        ("billing", a.billing),
        ("balance", money_text(a.balance)),
        ("credit limit", money_text(a.credit_limit)),
        ("held by calls", money_text(held)),
        ("available", money_text(a.available - held)),
        ("state", "locked" if a.locked else "active"),
        ("expiry", a.expiry.isoformat() if a.expiry else "never"),
        ("rate group", groups.get(a.rate_group_id, "-") if a.rate_group_id else "-"),
        ("max calls", "no limit" if a.max_calls is None else str(a.max_calls)),
        ("ip whitelist", " ".join(a.ip_whitelist) or "any address"),
        ("created", a.created_at.isoformat() if a.created_at else "-"),
        ("memo", a.memo),
    ]
    for g in mapping:
        lines.append(("mapping gateway", f"{g.name} ({g.auth_mode}: {', '.join(g.addresses) or g.username})"))
    for r in routing:
        lines.append(("routing gateway", f"{r.name} ({r.host}:{r.port}, priority {r.priority})"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")
    return 0


def cmd_accounts_add(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin(operator=_operator(args))
        record = Account(
            code=args.account,
            name=args.name,
            kind=args.kind,
            billing=args.billing,
            balance=args.balance,
            credit_limit=args.credit,
            expiry=args.expiry,
            max_calls=args.max_calls,
            ip_whitelist=_networks(args.ip_whitelist),
            rate_group_id=_group_id(admin, args.rate_group),
            memo=args.memo,
        )
        created = admin.create(record)
    print(
        f"account {created.code} created: {created.kind}, {created.billing}, balance "
        f"{money_text(created.balance)}, credit limit {money_text(created.credit_limit)}"
    )
    return 0


def cmd_accounts_set(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin(operator=_operator(args))
        a = _account(admin, args.account)
        changes: dict[str, object] = {}
        if args.name is not None:
            changes["name"] = args.name
        if args.billing is not None:
            changes["billing"] = args.billing
        if args.rate_group is not None:
            changes["rate_group_id"] = _group_id(admin, args.rate_group)
        if args.expiry is not None:
            changes["expiry"] = None if args.expiry.lower() == "never" else _instant_or_fail(args.expiry)
        if args.max_calls is not None:
            changes["max_calls"] = (
                None if args.max_calls.lower() == "none" else _count_or_fail(args.max_calls)
            )
        if args.ip_whitelist is not None:
            text = args.ip_whitelist
            changes["ip_whitelist"] = () if text.strip().lower() == "none" else _networks(text)
        if args.memo is not None:
            changes["memo"] = args.memo
        if not changes:
            fail(
                "nothing to change: give --name, --billing, --rate-group, --expiry, --max-calls, "
                "--ip-whitelist or --memo",
                2,
            )
        admin.update(replace(a, **changes))  # type: ignore[arg-type]
    print(f"account {a.code}: set {', '.join(sorted(changes))}")
    return 0


_WHITELIST_HELP = (
    "IP whitelist: the IPs and CIDR networks (IPv4/IPv6, comma- or space-separated) the "
    "account's phones may register and call from; empty = anywhere"
)


def _networks(text: str) -> tuple[str, ...]:
    """``--ip-whitelist``'s entries (checked by the store, which names a bad one)."""
    return tuple(v for v in text.replace(",", " ").split() if v)


def _instant_or_fail(text: str) -> datetime:
    try:
        return instant(text)
    except argparse.ArgumentTypeError as exc:
        fail(f"--expiry: {exc}", EXIT_USAGE)


def _count_or_fail(text: str) -> int:
    if not text.isdigit():
        fail(f"--max-calls: {text!r} is not a whole number (or 'none')", EXIT_USAGE)
    return int(text)


def cmd_accounts_lock(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin(operator=_operator(args))
        a = _account(admin, args.account)
        if a.locked != args.locked:
            admin.update(replace(a, locked=args.locked))
    print(f"account {a.code} {'locked: no new calls' if args.locked else 'unlocked'}")
    return 0


# -- payments ---------------------------------------------------------------------------------------


def _operator(args: argparse.Namespace) -> str:
    given = getattr(args, "operator", None)
    if given:
        return str(given)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


def cmd_pay(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin(operator=_operator(args))
        a = _account(admin, args.account)
        record = admin.pay(a.id, args.amount, memo=args.memo)
    extended = record.expiry_after is not None and record.expiry_after != record.expiry_before
    expiry = f", expiry now {record.expiry_after.isoformat()}" if extended and record.expiry_after else ""
    before, after = money_text(record.balance_before), money_text(record.balance_after)
    print(f"account {a.code}: paid {money_text(record.amount)}, balance {before} -> {after}{expiry}")
    return 0


def cmd_credit(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin(operator=_operator(args))
        a = _account(admin, args.account)
        record = admin.set_credit(a.id, args.limit, memo=args.memo)
    before, after = money_text(record.credit_before), money_text(record.credit_after)
    print(f"account {a.code}: credit limit {before} -> {after} (balance {money_text(record.balance_after)})")
    return 0


def cmd_make_zero(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin(operator=_operator(args))
        a = _account(admin, args.account)
        record = admin.make_zero(a.id, memo=args.memo)
    print(f"account {a.code}: balance {money_text(record.balance_before)} -> 0.00")
    return 0


def cmd_payments(args: argparse.Namespace) -> int:
    with open_for_command(args) as store:
        admin = store.admin()
        a = _account(admin, args.account)
        records = admin.payments(account_id=a.id, start=args.start, end=args.end)
    rows = [
        [
            p.payment_time.isoformat(timespec="seconds") if p.payment_time else "-",
            p.type,
            money_text(p.amount),
            money_text(p.balance_after),
            money_text(p.credit_after),
            p.operator,
            p.memo,
        ]
        for p in records
    ]
    print_table(rows, ["TIME", "TYPE", "AMOUNT", "BALANCE AFTER", "CREDIT AFTER", "OPERATOR", "MEMO"])
    if not rows:
        print(f"(no payment records for account {a.code})")
    return 0
