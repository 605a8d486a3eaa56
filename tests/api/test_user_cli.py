"""`softswitch user add/list/passwd` make operator users on the store (the first administrator
without any default password); `softswitch calls` without a login says how to log in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from signaling.api.auth import Users
from signaling.store import open_store


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signaling.cli", *args],
        check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def test_user_add_makes_the_first_administrator_from_a_password_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ss.db'}"
    secret = tmp_path / "pw"
    secret.write_text("first admin password\n")
    made = _cli("user", "add", "--role", "admin", "alice", "--password-file", str(secret), "--store", url)
    assert made.returncode == 0, made.stderr
    assert "first admin password" not in made.stdout + made.stderr
    with open_store(url) as store:
        assert Users(store).authenticate("alice", "first admin password", "127.0.0.1").is_admin
    listed = _cli("user", "list", "--store", url)
    assert listed.stdout.split() == ["alice", "admin"]
    short = tmp_path / "short"
    short.write_text("1234\n")
    refused = _cli("user", "passwd", "alice", "--password-file", str(short), "--store", url)
    assert refused.returncode == 2 and "password: must be at least 8" in refused.stderr
    agent = _cli(
        "user",
        "add",
        "--role",
        "agent",
        "bob",
        "--account",
        "NOPE",
        "--password-file",
        str(secret),
        "--store",
        url,
    )
    assert agent.returncode == 2 and "no account 'NOPE'" in agent.stderr


def test_user_add_without_a_terminal_or_file_asks_for_the_file(tmp_path: Path) -> None:
    result = _cli("user", "add", "--role", "admin", "alice", "--store", f"sqlite:///{tmp_path / 'ss.db'}")
    assert result.returncode == 2 and "--password-file" in result.stderr


def test_calls_without_a_login_says_how_to_log_in(tmp_path: Path) -> None:
    env = {**os.environ, "SOFTSWITCH_TOKEN_FILE": str(tmp_path / "none.json")}
    result = _cli("calls", env=env)
    assert result.returncode == 2 and "softswitch login" in result.stderr


def test_user_commands_default_to_the_embedded_store(tmp_path: Path) -> None:
    """Without --store, `user` works on the store every other command uses (the data directory's
    SQLite file): the README's way to a new administrator password; a store that does not exist
    yet is refused, not created."""
    data = tmp_path / "data"
    env = {**os.environ, "SOFTSWITCH_DATA": str(data)}
    env.pop("SOFTSWITCH_STORE", None)
    secret = tmp_path / "pw"
    secret.write_text("a new admin password\n")
    missing = _cli("user", "passwd", "admin", "--password-file", str(secret), env=env)
    assert missing.returncode == 2 and "no store at sqlite:///" in missing.stderr, missing.stderr
    assert not data.exists()
    url = f"sqlite:///{data / 'softswitch.db'}"
    with open_store(url) as store:
        Users(store).add("admin", "admin", "the printed password")
    changed = _cli("user", "passwd", "admin", "--password-file", str(secret), env=env)
    assert changed.returncode == 0, changed.stderr
    with open_store(url) as store:
        assert Users(store).authenticate("admin", "a new admin password", "127.0.0.1").is_admin
    listed = _cli("user", "list", env=env)
    assert listed.stdout.split() == ["admin", "admin"]
