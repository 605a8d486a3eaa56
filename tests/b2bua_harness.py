"""Runs the B2BUA node in-process on loopback with SIPp as the customer and as the carriers.

``node_with(...)`` starts a :class:`Node` with the in-process media engine in the test's event
loop; ``sipp(...)`` runs one SIPp scenario to completion (bounded by its own -timeout and by a
hard deadline here, then killed by PID). Every scenario file lives in tests/sipp/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.routing import StaticRouter

SCENARIOS = Path(__file__).resolve().parent / "sipp"

#: Each node gets its own SIP port and media port window.
_next = [0]


def _slot() -> int:
    _next[0] += 1
    return _next[0]


@dataclass
class Sipp:
    returncode: int
    output: str


async def sipp(
    scenario: str,
    *,
    port: int,
    target: str | None = None,
    media_port: int,
    calls: int = 1,
    rate: float | None = None,
    extra: Sequence[str] = (),
    timeout: float = 30.0,
    rtp_echo: bool = False,
    fill: dict[str, str] | None = None,
) -> Sipp:
    """Run one scenario; ``fill`` replaces ``@NAME@`` placeholders (status codes, which SIPp
    cannot take from variables) in a private copy of the file."""
    path = SCENARIOS / scenario
    if fill:
        text = path.read_text()
        for key, value in fill.items():
            text = text.replace(f"@{key}@", value)
        path = Path(tempfile.mkdtemp(prefix="sipp-")) / scenario
        path.write_text(text)
    argv = [
        "sipp",
        "-sf",
        str(path),
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        str(calls),
        "-mp",
        str(media_port),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
    ]
    if rate is not None:
        argv += ["-r", str(rate)]
    if rtp_echo:
        argv.append("-rtp_echo")
    argv += list(extra)
    if target is not None:
        argv.append(target)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        cwd=tempfile.gettempdir(),
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = await proc.communicate()
    return Sipp(proc.returncode if proc.returncode is not None else -9, out.decode(errors="replace"))


@dataclass
class Harness:
    node: Node
    engine: MediaEngine
    sip_port: int
    carrier_ports: list[int]
    customer_port: int
    media_base: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.sip_port}"


@contextlib.asynccontextmanager
async def node_with(
    carriers: Sequence[dict[str, Any]] = ({},),
    parameters: dict[str, Any] | None = None,
    customer: dict[str, Any] | None = None,
    rtp_timeout: float = 30.0,
) -> AsyncIterator[Harness]:
    slot = _slot()
    base = 33000 + (os.getpid() % 50) * 400 + slot * 20
    sip_port = base
    carrier_ports = [base + 1 + i for i in range(len(carriers))]
    customer_port = base + 10
    media_base = 48000 + (os.getpid() % 20) * 500 + slot * 40
    data: dict[str, Any] = {
        "sip": {"listen": f"127.0.0.1:{sip_port}"},
        "parameters": dict(parameters or {}),
        "mapping_gateway": [{"name": "customer", "addresses": ["127.0.0.1"], **(customer or {})}],
        "routing_gateway": [
            {"name": f"carrier-{i}", "address": f"127.0.0.1:{carrier_ports[i]}", "priority": i, **c}
            for i, c in enumerate(carriers)
        ],
    }
    cfg = load(data)
    port_min = 20000 + (os.getpid() % 20) * 500 + slot * 20
    engine = MediaEngine(
        interface="127.0.0.1", port_min=port_min, port_max=port_min + 19, workers=1, rtp_timeout=rtp_timeout
    )
    media = InProcessMedia(engine)
    node = Node(cfg, media, StaticRouter(cfg))
    await node.start()
    try:
        yield Harness(node, engine, sip_port, carrier_ports, customer_port, media_base)
    finally:
        await node.stop()
        media.close()
        engine.close()
