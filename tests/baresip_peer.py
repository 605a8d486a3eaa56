"""baresip (Debian's ``baresip``) as a real user agent on loopback: the customer's phone that
dials through the node, or the carrier's phone that answers the node's INVITE.

Each run gets a private configuration directory written here (``config`` and ``accounts``):
no audio device (the source is a WAV tone the test writes, nothing plays what arrives), SIP and
RTP bound to 127.0.0.1 on ports the test gives, the audio codecs the test names (G.711, Opus)
and no other module than the codecs, the file source, the account loader and the menu (which
runs ``-e "/dial …"`` and prints the call's events and its RTP statistics). The run is bounded
twice: ``-t`` makes baresip hang up and quit by itself, and a hard deadline here kills its
process group by PID; a test that stops early (cancelled) kills it too.

Missing baresip fails the test when ``CI`` is set (scripts/install.sh installs it) and skips
it, saying why, anywhere else (as the browser tests do with chromium)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import signal
import struct
import tempfile
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Where Debian installs baresip's modules (``baresip-core``).
MODULES = Path("/usr/lib/baresip/modules")
#: The tone baresip sends: 440 Hz at 8 kHz, mono, S16LE (what ``aufile`` reads).
TONE_HZ = 440
TONE_RATE = 8000


def _missing(reason: str) -> None:
    reason += ": `make install` installs it"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


def baresip_executable() -> str:
    """baresip's path: a failure under CI, a skip (with the reason) elsewhere, when missing."""
    path = shutil.which("baresip")
    if path is None or not (MODULES / "g711.so").exists():
        _missing("the baresip test needs Debian's baresip (apt-get install baresip)")
    assert path is not None
    return path


def require_opus() -> None:
    """baresip's Opus module (Debian's baresip-core has it), with the same rule when missing."""
    if not (MODULES / "opus.so").exists():
        _missing(f"the Opus call needs baresip's opus module ({MODULES / 'opus.so'})")


@dataclass
class Baresip:
    """One finished baresip run: its exit status and what it printed."""

    returncode: int
    output: str

    @property
    def established(self) -> bool:
        return "Call established" in self.output

    @property
    def terminated(self) -> bool:
        return bool(re.search(r"terminated \(duration: \d+ secs?\)", self.output))

    @property
    def encoder(self) -> str | None:
        """The codec baresip sent with, as it logs it (``"PCMU 8000Hz 1ch"``)."""
        found = re.search(r"audio: Set audio encoder: (.+)", self.output)
        return found.group(1).strip() if found else None

    @property
    def decoder(self) -> str | None:
        found = re.search(r"audio: Set audio decoder: (.+)", self.output)
        return found.group(1).strip() if found else None

    @property
    def packets(self) -> tuple[int, int]:
        """RTP packets (sent, received) of the call's audio stream, from the statistics
        baresip prints when the call ends (``rtp_stats``); (0, 0) when it printed none."""
        found = re.search(r"packets:\s+(\d+)\s+(\d+)", self.output)
        return (int(found.group(1)), int(found.group(2))) if found else (0, 0)

    def tail(self, chars: int = 4000) -> str:
        """The end of the output without the menu's status line (rewritten with ``\\r``)."""
        return re.sub(r"\[\d+:\d+:\d+\] audio=[^\r\n]*\s*", "", self.output)[-chars:]


def write_tone(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(TONE_RATE)
        frames = int(TONE_RATE * seconds)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * TONE_HZ * i / TONE_RATE)))
                for i in range(frames)
            )
        )


def write_config(
    directory: Path,
    *,
    sip_port: int,
    rtp_ports: tuple[int, int],
    codecs: Sequence[str],
    answer: bool,
    seconds: float,
    user: str,
) -> None:
    """baresip's ``config`` and ``accounts`` for one run, in ``directory``: one account,
    ``user`` (the Request-URI's user it answers: baresip refuses others with 404)."""
    tone = directory / "tone.wav"
    write_tone(tone, seconds + 5)
    modules = ["g711.so", "aufile.so"] + (["opus.so"] if any(c.startswith("opus") for c in codecs) else [])
    lines = [
        "poll_method epoll",
        f"sip_listen 127.0.0.1:{sip_port}",
        "net_interface 127.0.0.1",
        "call_local_timeout 30",
        "call_max_calls 1",
        f"audio_source aufile,{tone}",
        f"audio_alert aufile,{tone}",
        f"ausrc_srate {TONE_RATE}",
        "ausrc_channels 1",
        f"rtp_ports {rtp_ports[0]}-{rtp_ports[1]}",
        "rtp_stats yes",
        f"module_path {MODULES}",
        *(f"module {m}" for m in modules),
        "module_tmp account.so",
        "module_app menu.so",
    ]
    (directory / "config").write_text("\n".join(lines) + "\n")
    params = ["regint=0", "audio_codecs=" + ",".join(codecs)]
    if answer:
        params.append("answermode=auto")
    (directory / "accounts").write_text(f"<sip:{user}@127.0.0.1:{sip_port}>;" + ";".join(params) + "\n")


class BaresipProcess:
    """A running baresip; :meth:`finish` waits for it (bounded), :meth:`hangup` asks it to
    end its calls and quit (SIGTERM: baresip hangs up with BYE first)."""

    def __init__(self, proc: asyncio.subprocess.Process, workdir: Path, deadline: float) -> None:
        self.proc = proc
        self.workdir = workdir
        self.deadline = deadline

    def hangup(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def finish(self) -> Baresip:
        loop = asyncio.get_running_loop()
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), max(0.1, self.deadline - loop.time()))
        except TimeoutError:
            self.kill()
            out, _ = await self.proc.communicate()
        except BaseException:  # cancelled: no baresip left behind
            self.kill()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), 5)
            raise
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
        code = self.proc.returncode
        return Baresip(code if code is not None else -9, out.decode(errors="replace"))


@contextlib.asynccontextmanager
async def baresip(
    *,
    sip_port: int,
    rtp_ports: tuple[int, int],
    codecs: Sequence[str] = ("PCMU", "PCMA"),
    dial: str | None = None,
    answer: bool = False,
    seconds: float = 6.0,
    user: str = "1001",
) -> AsyncIterator[BaresipProcess]:
    """Start baresip as ``user``: dialling ``dial`` at once (and hanging up after ``seconds``),
    or answering calls to ``user`` (``answer``) until ``seconds`` have passed. Yields the
    running process; on exit it is waited for (at most ``seconds`` + 10 s in all) or killed."""
    executable = baresip_executable()
    workdir = Path(tempfile.mkdtemp(prefix="baresip-"))
    proc: asyncio.subprocess.Process | None = None
    try:
        write_config(
            workdir,
            sip_port=sip_port,
            rtp_ports=rtp_ports,
            codecs=codecs,
            answer=answer,
            seconds=seconds,
            user=user,
        )
        argv = [executable, "-f", str(workdir), "-t", str(math.ceil(seconds))]
        if dial is not None:
            argv += ["-e", f"/dial {dial}"]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
        yield BaresipProcess(proc, workdir, asyncio.get_running_loop().time() + seconds + 10)
    finally:
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(proc.communicate()), 5)
        shutil.rmtree(workdir, ignore_errors=True)
