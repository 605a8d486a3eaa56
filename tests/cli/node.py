"""A ``softswitch run`` process for the CLI tests: started on loopback ports of a harness
port block, its log collected, stopped with SIGTERM (and killed by PID if it will not stop)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.cli.conftest import cli_env, softswitch_script


@dataclass
class NodeProcess:
    proc: asyncio.subprocess.Process
    log: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.log)

    async def wait_for(self, needle: str, within: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while needle not in self.text():
            if self.proc.returncode is not None:
                raise AssertionError(f"the node exited ({self.proc.returncode}):\n{self.text()}")
            if loop.time() > deadline:
                raise AssertionError(f"no {needle!r} within {within} s:\n{self.text()}")
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 20)


async def _collect(node: NodeProcess) -> None:
    assert node.proc.stderr is not None
    while line := await node.proc.stderr.readline():
        node.log.append(line.decode(errors="replace"))


@contextlib.asynccontextmanager
async def softswitch_node(data: Path, *args: str) -> AsyncIterator[NodeProcess]:
    proc = await asyncio.create_subprocess_exec(
        softswitch_script(),
        "run",
        *args,
        env=cli_env(data),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    node = NodeProcess(proc)
    reader = asyncio.get_running_loop().create_task(_collect(node))
    try:
        yield node
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        await asyncio.wait_for(reader, 10)


async def softswitch(data: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run one ``softswitch`` command without blocking the loop; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        softswitch_script(),
        *args,
        env=cli_env(data),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
