"""The CLI's API commands (``softswitch user``, ``login``, ``calls``); signaling/cli.py wires them.

- ``softswitch user add --role admin NAME [--store URL] [--password-file F] [--account CODE]``
  works on the store directly (it makes the first administrator); ``user list``, ``user passwd``.
  Without ``--store``: the store every other command uses (``$SOFTSWITCH_STORE``, else the data
  directory's SQLite file, the embedded default's), which must exist already.
- ``softswitch login --api URL --user NAME`` asks the running node's API for a session and keeps
  the token in a file only its owner may read (0600; ``--token-file``, default
  ``~/.config/softswitch/token.json``), with the URL.
- ``softswitch calls`` lists the live calls; ``softswitch calls hangup CALL_ID`` ends one. Both go
  through the API with the stored token (``--api`` to point elsewhere; ``--cacert`` for a
  self-signed HTTPS certificate).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from signaling.cli_common import add_store_option, store_url
from signaling.observe.logs import redact

DEFAULT_API = "http://127.0.0.1:8080"
#: HTTP timeout of one CLI request, seconds.
REQUEST_TIMEOUT = 10.0


def default_token_file() -> Path:
    env = os.environ.get("SOFTSWITCH_TOKEN_FILE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "softswitch" / "token.json"


def add_parsers(sub: Any) -> None:  # noqa: ANN401 (argparse's private subparsers action)
    """Register ``user``, ``login`` and ``calls`` on the top-level subparsers."""
    user = sub.add_parser("user", help="operator users of the API and web manager (on the store)")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a user (the first administrator too)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["admin", "operator", "agent"])
    add.add_argument("--account", default=None, help="an agent user's agent account (its Account ID)")
    add.add_argument("--password-file", default=None, help="read the password from this file (else prompted)")
    add_store_option(add)
    passwd = user_sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-file", default=None)
    add_store_option(passwd)
    listing = user_sub.add_parser("list", help="list the users")
    add_store_option(listing)

    login = sub.add_parser("login", help="log in to a node's API and keep the session token (0600 file)")
    login.add_argument("--api", default=None, help=f"API base URL (default {DEFAULT_API})")
    login.add_argument("--user", required=True)
    login.add_argument("--password-file", default=None)
    _client_options(login)

    calls = sub.add_parser("calls", help="live calls of the running node (through its API)")
    calls.add_argument("--api", default=None, help="API base URL (default: the one logged in to)")
    calls.add_argument("--json", action="store_true", help="print JSON")
    _client_options(calls)
    calls_sub = calls.add_subparsers(dest="calls_command")
    hangup = calls_sub.add_parser("hangup", help="end a call in progress")
    hangup.add_argument("call_id")


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-file", default=None, help="where the session token is kept")
    parser.add_argument("--cacert", default=None, help="CA certificate (PEM) to check the API's HTTPS")


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "user":
            return _user(args)
        if args.command == "login":
            return _login(args)
        return _calls(args)
    except CommandError as exc:
        print(f"softswitch {args.command}: {exc}", file=sys.stderr)
        return 2


class CommandError(Exception):
    pass


def _read_password(path: str | None, prompt: str, *, confirm: bool) -> str:
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        return text.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CommandError("no terminal to prompt for the password: give --password-file")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise CommandError("the two passwords differ")
    return first


def _user(args: argparse.Namespace) -> int:
    from signaling.api.auth import Users  # noqa: PLC0415
    from signaling.store import StoreError, open_store  # noqa: PLC0415

    url = store_url(args)
    if args.store is None and url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        raise CommandError(f"no store at {url}: start the node once (softswitch run) or give --store URL")
    try:
        store = open_store(url)
    except Exception as exc:  # any driver or file error, reported as the store's
        raise CommandError(f"store {redact(url)}: {exc}") from None
    try:
        users = Users(store)
        if args.user_command == "list":
            for u in users.list():
                extra = f" (agent account {u.account_id})" if u.account_id is not None else ""
                print(f"{u.name}\t{u.role}{extra}{'  DISABLED' if u.disabled else ''}")
            return 0
        password = _read_password(args.password_file, f"Password for {args.name}: ", confirm=True)
        if args.user_command == "passwd":
            users.set_password(args.name, password)
            print(f"password of {args.name} changed (its sessions ended)")
            return 0
        account_id = None
        if args.account is not None:
            account_id = store.admin().find_account(args.account).id
        user = users.add(args.name, args.role, password, account_id=account_id)
        print(f"user {user.name} ({user.role}) created")
        return 0
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()


# -- talking to the API ----------------------------------------------------------------------


def _context(cacert: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cacert)


def request(
    url: str, method: str = "GET", *, token: str | None = None, body: object = None, cacert: str | None = None
) -> tuple[int, Any]:
    """One JSON request; (status, decoded body or None)."""
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"{url!r} is not an http:// or https:// URL")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (scheme checked above)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT, context=_context(cacert)) as resp:  # noqa: S310
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, {"error": raw.decode("utf-8", "replace")[:200]}
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach the API at {url}: {reason}") from None


def _error(status: int, body: Any) -> CommandError:  # noqa: ANN401 (decoded JSON)
    message = body.get("error") if isinstance(body, dict) else None
    return CommandError(f"HTTP {status}: {message or body}")


def save_token(path: Path, api: str, token: str) -> None:
    """Write ``{"api", "token"}`` to ``path``, readable by its owner only (0600 from creation)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        json.dump({"api": api, "token": token}, fh)


def load_token(path: Path) -> tuple[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["api"]), str(data["token"])
    except FileNotFoundError:
        raise CommandError(f"not logged in ({path} does not exist): run `softswitch login`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"{path}: not a token file ({exc})") from None


def _login(args: argparse.Namespace) -> int:
    api = (args.api or DEFAULT_API).rstrip("/")
    password = _read_password(args.password_file, f"Password for {args.user}: ", confirm=False)
    status, body = request(
        f"{api}/api/v1/auth/login", "POST", body={"name": args.user, "password": password}, cacert=args.cacert
    )
    if status != 200 or not isinstance(body, dict):
        raise _error(status, body)
    path = Path(args.token_file) if args.token_file else default_token_file()
    save_token(path, api, str(body["token"]))
    print(f"logged in to {api} as {args.user} until {body['expires_at']} (token in {path})")
    return 0


def _calls(args: argparse.Namespace) -> int:
    path = Path(args.token_file) if args.token_file else default_token_file()
    stored_api, token = load_token(path)
    api = (args.api or stored_api).rstrip("/")
    if args.calls_command == "hangup":
        status, body = request(
            f"{api}/api/v1/calls/{urllib.parse.quote(args.call_id, safe='')}",
            "DELETE",
            token=token,
            cacert=args.cacert,
        )
        if status != 204:
            raise _error(status, body)
        print(f"call {args.call_id} hung up")
        return 0
    status, body = request(f"{api}/api/v1/calls", token=token, cacert=args.cacert)
    if status != 200 or not isinstance(body, list):
        raise _error(status, body)
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    if not body:
        print("no calls in progress")
        return 0
    print("CALL-ID\tSTATE\tCALLER\tCALLEE\tINGRESS\tGATEWAY\tDURATION")
    for c in body:
        print(
            f"{c['call_id']}\t{c['state']}\t{c['caller']}\t{c['callee']}\t{c['ingress']}\t"
            f"{c['gateway']}\t{c['duration']:.0f}s"
        )
    return 0
