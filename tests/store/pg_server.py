"""A throwaway PostgreSQL server for the test session: initdb in a temporary directory, started
with pg_ctl on a Unix socket in that directory (no TCP listener), stopped and deleted at the end.

Run as root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root); the
directory is handed to that user first.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Port number naming the socket file (.s.PGSQL.<port>); no TCP port is opened.
PORT = 55432


def find_bin() -> Path | None:
    """The newest installed server binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PgServer:
    bin: Path
    base: Path
    pid: int = 0
    #: fsync on (benchmarks of durable writes); tests run without it, for speed.
    durable: bool = False
    _as_user: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.base}&port={PORT}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if os.getuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.base, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        fsync = "on" if self.durable else "off"
        options = f"-k {self.base} -p {PORT} -c listen_addresses='' -c fsync={fsync} -c max_connections=200"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.base / "server.log"), "-w", "-t", "60", "start")  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.pid:
            with contextlib.suppress(subprocess.SubprocessError):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            deadline = time.monotonic() + 10
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
            self.pid = 0
        shutil.rmtree(self.base, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_server(*, durable: bool = False) -> PgServer | None:
    bin_dir = find_bin()
    if bin_dir is None:
        return None
    server = PgServer(bin_dir, Path(tempfile.mkdtemp(prefix="softswitch-pg-")), durable=durable)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
