"""`softswitch run`: starts on a configuration file, answers OPTIONS, stops cleanly on SIGTERM;
a bad configuration key stops it at once with a message naming the key."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import options_until_answered

SIP_PORT = 51231


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "signaling.cli", *args]


def test_bad_config_key_is_named_and_exit_code_is_2(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('[sip]\nlisten = "127.0.0.1:5070"\n[parameters]\nSS_SIP_TIMEOUT_INVITES = 3\n')
    proc = subprocess.run(
        _cli("run", "--config", str(cfg)), check=False, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "parameters.SS_SIP_TIMEOUT_INVITES: unknown parameter" in proc.stderr
    assert "did you mean SS_SIP_TIMEOUT_INVITE" in proc.stderr


def test_node_answers_options_and_stops_on_sigterm(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        f'[sip]\nlisten = "127.0.0.1:{SIP_PORT}"\n'
        "[parameters]\nSS_MEDIAPROXYPORT_START = 51300\nSS_MEDIAPROXYPORT_END = 51399\n"
    )
    proc = subprocess.Popen(
        _cli("run", "--config", str(cfg)), stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.5)
            port = s.getsockname()[1]
            reply = options_until_answered(s, SIP_PORT, "cli-options-1")
            assert reply.startswith(b"SIP/2.0 200 "), reply
            assert b"Allow: " in reply and b"cli-options-1" in reply
            # a malformed request gets 400, not silence and not a crash
            s.sendto(
                b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKb\r\n\r\n" % port,
                ("127.0.0.1", SIP_PORT),
            )
            answers: list[bytes] = []
            while not answers or answers[-1].startswith(b"SIP/2.0 200 "):  # skip OPTIONS repeats
                answers.append(s.recv(4096))
            assert answers[-1].startswith(b"SIP/2.0 400 "), answers
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "node ready" in err and "stopped" in err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
