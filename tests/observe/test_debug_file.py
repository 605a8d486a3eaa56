"""The softswitch debug file (timers-trace-routing-dialplan.md §2.4, behaviour 16):
SS_TRACETOFILE writes the node's log, at SS_TRACE_MASK's level, to two files in the trace
directory written in turn, each up to SS_TRACE_FILE_LENGTH KB; the older is overwritten, so at
most twice the length is kept."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signaling.observe.logs import DebugFile
from tests.helpers import options_until_answered

SIP_PORT = 51241


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, with its handlers and level put back after the test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, [(h, h.level) for h in root.handlers])
    try:
        yield root
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for handler, level in saved[2]:
            handler.setLevel(level)


def test_two_files_in_turn_never_more_than_twice_the_length(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    """Behaviour 16 scaled down: a 4 kB length instead of 40 MB."""
    handler = DebugFile.attach(tmp_path, 4096, debug=False)
    log = logging.getLogger("softswitch.test.rotation")
    one, two = tmp_path / "softswitch1.log", tmp_path / "softswitch2.log"
    assert not one.exists(), "nothing before the first record"
    n = 0

    def write() -> None:
        nonlocal n
        n += 1
        log.warning("record %05d %s", n, "x" * 80)

    while not two.exists():
        write()
    assert one.stat().st_size <= 4096 and n > 20
    first_of_two = n
    for _ in range(1000):  # until file 2 is full and file 1 is written again from its start
        write()
        assert one.stat().st_size + two.stat().st_size <= 2 * 4096
        if "record 00001 " not in one.read_text():
            break
    assert f"record {n:05d}" in one.read_text(), "the newest record is in the file written again"
    assert f"record {first_of_two:05d}" in two.read_text(), "the one before it is kept"
    for _ in range(200):
        write()
        assert one.stat().st_size + two.stat().st_size <= 2 * 4096
    handler.detach()
    log.warning("after detach")
    assert "after detach" not in one.read_text() + two.read_text()


def test_error_mask_keeps_errors_and_warnings_debug_mask_everything(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    stderr = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 (closed below)
    root_logger.handlers[:] = [stderr]
    root_logger.setLevel(logging.INFO)
    log = logging.getLogger("softswitch.test.mask")
    errors = DebugFile.attach(tmp_path / "e", 1 << 20, debug=False)
    log.info("an info line")
    log.warning("a warning line")
    log.error("an error line")
    errors.detach()
    text = (tmp_path / "e" / "softswitch1.log").read_text()
    assert "a warning line" in text and "an error line" in text and "an info line" not in text
    assert root_logger.level == logging.INFO
    full = DebugFile.attach(tmp_path / "d", 1 << 20, debug=True)
    log.debug("a debug line")
    full.detach()
    assert "DEBUG softswitch.test.mask: a debug line" in (tmp_path / "d" / "softswitch1.log").read_text()
    # the file's DEBUG did not make the other handler verbose
    assert root_logger.level == logging.DEBUG and stderr.level == logging.INFO
    stderr.stream.close()


def _options() -> None:
    """One OPTIONS to the node, answered 200."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        assert options_until_answered(s, SIP_PORT, "debug-file-options").startswith(b"SIP/2.0 200 ")


def _node(tmp_path: Path, parameters: str) -> tuple[str, Path]:
    """Start `softswitch run` with ``parameters``, send it one OPTIONS, stop it with SIGTERM;
    its stderr and trace directory."""
    tmp_path.mkdir()
    trace = tmp_path / "trace-dir"
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        f'[sip]\nlisten = "127.0.0.1:{SIP_PORT}"\n'
        f'[trace]\ndirectory = "{trace}"\n'
        f"[parameters]\nSS_MEDIAPROXYPORT_START = 51500\nSS_MEDIAPROXYPORT_END = 51599\n{parameters}"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "signaling.cli", "run", "--config", str(cfg)],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        seen = ""
        assert proc.stderr is not None
        while "node ready" not in seen and time.monotonic() < deadline and proc.poll() is None:
            seen += proc.stderr.readline()
        assert "node ready" in seen, seen
        _options()
        os.kill(proc.pid, signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
        assert proc.returncode == 0, seen + rest
        return seen + rest, trace
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_node_writes_its_debug_file_as_the_parameters_say(tmp_path: Path) -> None:
    stderr, trace = _node(tmp_path / "debug", 'SS_TRACE_MASK = "DEBUG"\nSS_TRACE_FILE_LENGTH = 1024\n')
    text = (trace / "softswitch1.log").read_text()
    # INFO gets in under the DEBUG mask only (ERROR keeps errors and warnings)
    assert "INFO softswitch: node ready" in text and "INFO softswitch: shutting down" in text, text
    assert "node ready" in stderr, "stderr as before"
    # behaviour 14: every SIP message, under its timestamp and direction lines
    assert re.search(
        r"DEBUG softswitch\.sip: ---------- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ----------\n"
        r"recv 127\.0\.0\.1:\d+ udp\nOPTIONS sip:ping@",
        text,
    ), text
    assert re.search(r"----------\nsend 127\.0\.0\.1:\d+ udp\nSIP/2\.0 200 OK", text), text
    assert "softswitch.sip" not in stderr, "stderr keeps its level"
    assert not (trace / "softswitch2.log").exists()
    _, trace = _node(tmp_path / "off", 'SS_TRACE_MASK = "DEBUG"\nSS_TRACETOFILE = false\n')
    assert not (trace / "softswitch1.log").exists()
    # the defaults, On and ERROR: a clean start and a successful exchange write nothing
    _, trace = _node(tmp_path / "quiet", "")
    assert not (trace / "softswitch1.log").exists()
