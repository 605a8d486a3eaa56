"""What the browser tests share: Debian's chromium (required in CI, a skip with its reason
elsewhere), processes in their own session killed by process group when a block ends, bounded
waits, and the screenshot directory.

Playwright is launched with the system executable (``executable_path``), headless; its own
``playwright install`` is never run (it would download a browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def chromium() -> str:
    """The chromium executable. Missing chromium or Playwright fails the test when ``CI`` is
    set (CI must run every browser test: scripts/install.sh installs both) and skips it, saying
    why, anywhere else."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = []
    if path is None:
        missing.append("Debian's chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401, PLC0415 (a test-only tool)
    except ImportError:
        missing.append("Playwright for Python (pip install playwright)")
    if missing:
        reason = f"the browser test needs {' and '.join(missing)}: `make install` installs them"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {reason}", pytrace=False)
        pytest.skip(reason)
    assert path is not None
    return path


def launch(pw: Playwright, executable: str) -> Browser:
    """Headless chromium (no sandbox: CI runs as root)."""
    return pw.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])


def wait_for(predicate: Callable[[], object], what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {within} s waiting for {what}")


@contextlib.contextmanager
def process(
    argv: list[str],
    log: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    *,
    stderr: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session, its output in ``log`` (stderr too unless ``stderr`` names
    another file); stopped with SIGTERM, then SIGKILL, by its process group id when the block
    ends, whatever happened."""
    with log.open("wb") as out, (stderr or log).open("ab") as err:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if stderr is None else err,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    """SIGTERM to the process group, SIGKILL after ``timeout`` s; its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    assert proc.returncode is not None
    return proc.returncode
