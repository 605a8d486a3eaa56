"""`softswitch media` runs a standalone ng media node and exits cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import NgClient, endpoints, port_is_free, rtp, sdp, sdp_media_port

NG_PORT = 51223


def _start(*extra: str, tree: bool = False) -> subprocess.Popen[str]:
    """The installed ``softswitch`` (else the module); ``tree``: this checkout's module."""
    exe = None if tree else shutil.which("softswitch")
    cmd = [exe] if exe else [sys.executable, "-m", "signaling.cli"]
    return subprocess.Popen(
        [
            *cmd,
            "media",
            "--listen-ng",
            f"127.0.0.1:{NG_PORT}",
            "--interface",
            "127.0.0.1",
            "--port-min",
            "51300",
            "--port-max",
            "51399",
            *extra,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )


def _reap(proc: subprocess.Popen[str]) -> None:
    """Stops a node we started (by its PID) and closes its pipe."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + 15
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if "media node ready" in line:
            return line
    proc.kill()
    raise AssertionError("node did not start: " + "".join(seen))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_media_node_serves_ng_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = _start()
    try:
        ready = _wait_ready(proc)
        assert f"127.0.0.1:{NG_PORT}" in ready
        client = NgClient(("127.0.0.1", NG_PORT))
        with endpoints(2) as (a, b):
            assert client.request({"command": "ping"}) == {"result": b"pong"}
            r = client.request({"command": "offer", "call-id": "k1", "from-tag": "f", "sdp": sdp(a.addr)})
            to_b = sdp_media_port(r["sdp"])  # type: ignore[arg-type]
            r = client.request(
                {"command": "answer", "call-id": "k1", "from-tag": "f", "to-tag": "t", "sdp": sdp(b.addr)}
            )
            to_a = sdp_media_port(r["sdp"])  # type: ignore[arg-type]
            a.send(rtp(1, 0, 1), to_a)
            assert b.recv()[0] == rtp(1, 0, 1)
        client.close()
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        tail = proc.stderr.read()
        assert "shutting down" in tail and "all ports released" in tail
        # The node released its media ports and the ng port.
        for port in (to_a[1], to_a[1] + 1, to_b[1], to_b[1] + 1, NG_PORT):
            assert port_is_free(port), port
    finally:
        _reap(proc)


def test_bad_flags_exit_non_zero_with_the_reason() -> None:
    exe = shutil.which("softswitch")
    cmd = [exe] if exe else [sys.executable, "-m", "signaling.cli"]
    r = subprocess.run(
        [*cmd, "media", "--port-min", "500", "--port-max", "400"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode != 0
    assert "--port-min 500 is above --port-max 400" in r.stderr
    r = subprocess.run(
        [*cmd, "media", "--interface", "eth0"], check=False, capture_output=True, text=True, timeout=30
    )
    assert r.returncode != 0
    assert "'eth0' is not an IP address" in r.stderr


def test_ng_port_in_use_is_reported() -> None:
    first = _start()
    try:
        _wait_ready(first)
        second = _start()
        assert second.wait(timeout=15) == 2
        assert second.stderr is not None
        assert "cannot serve ng" in second.stderr.read()
        _reap(second)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
        _reap(first)


def test_repeated_interface_gives_ng_direction_a_second_interface() -> None:
    """Behaviour 80 (media on the carrier's network): ``--interface`` repeated, the second
    interface named by its address in ``direction`` carries the answerer's leg; RTP relays both
    ways across the two addresses. An interface the node lacks is refused by name."""
    proc = _start("--interface", "127.0.0.2", tree=True)
    try:
        ready = _wait_ready(proc)
        assert "media on 127.0.0.1, 127.0.0.2" in ready
        client = NgClient(("127.0.0.1", NG_PORT))
        with endpoints(1) as (a,), endpoints(1, host="127.0.0.2") as (b,):
            offer = {"command": "offer", "call-id": "d1", "from-tag": "f", "sdp": sdp(a.addr)}
            r = client.request({**offer, "direction": ["default", "127.0.0.2"]})
            to_b = sdp_media_port(r["sdp"])  # type: ignore[arg-type]
            assert to_b[0] == "127.0.0.2"
            r = client.request(
                {"command": "answer", "call-id": "d1", "from-tag": "f", "to-tag": "t", "sdp": sdp(b.addr)}
            )
            to_a = sdp_media_port(r["sdp"])  # type: ignore[arg-type]
            assert to_a[0] == "127.0.0.1"
            a.send(rtp(1, 0, 1), to_a)
            data, src = b.recv()
            assert data == rtp(1, 0, 1) and src == to_b  # sent from the callee leg's port
            b.send(rtp(1, 0, 2), to_b)
            assert a.recv() == (rtp(1, 0, 2), to_a)
            r = client.request({**offer, "call-id": "d2", "direction": ["127.0.0.9", ""]})
            assert r["result"] == b"error"
            assert b"127.0.0.9 is not one of this engine's media interfaces" in r["error-reason"]  # type: ignore[operator]
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        _reap(proc)
