"""The ``softswitch`` console script run as a subprocess, as an operator runs it.

The script is the one ``make install`` put on PATH; it imports this tree's ``signaling`` (the
repository root goes first on PYTHONPATH), and every command gets its own data directory
(``SOFTSWITCH_DATA``) under the test's tmp_path, so no test sees another's store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.store.conftest import pg_server, store_url

__all__ = ["Cli", "cli", "cli_env", "data_dir", "pg_server", "softswitch_script", "store_url"]

ROOT = Path(__file__).resolve().parents[2]

Cli = Callable[..., subprocess.CompletedProcess[str]]


def softswitch_script() -> str:
    found = shutil.which("softswitch")
    if found is None:
        raise RuntimeError("the softswitch console script is not installed: run `make install`")
    return found


def cli_env(data: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["SOFTSWITCH_DATA"] = str(data)
    env.pop("SOFTSWITCH_STORE", None)
    return env


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(data_dir: Path) -> Cli:
    """``cli("accounts", "list")`` runs ``softswitch accounts list``; returns the finished
    process (exit code, stdout, stderr as text)."""
    script = softswitch_script()
    env = cli_env(data_dir)

    def run(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    return run
