"""Scheduled backups: the node writes ``softswitch backup``'s archive by itself (reference
CAP-7.8: "automated regular schedules", daily backups).

``[backup]`` in the node's configuration file turns it on:

```toml
[backup]
directory = "/var/backups/softswitch"   # must exist; the archives are written here
at = "03:00"                            # daily, at this local time (HH:MM), the default
# every_minutes = 360                   # or: every this many minutes from the node's start
keep = 7                                # the newest archives kept; older ones removed
```

Each archive is ``softswitch-YYYYMMDD-HHMMSS.tar.gz`` (local time of the run): the store's
consistent dump and the configuration file (signaling/store/backup.py), written to a temporary
file and renamed, so a crash mid-backup leaves no partial archive under that name. After a
good backup, archives of that name pattern beyond the newest ``keep`` are removed; nothing else
in the directory is touched. The backup runs in a worker thread: the node's loop goes on. A
failure (a full disk, pg_dump missing) is logged as an error and counted, and the schedule goes
on; the archives already there are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from signaling.store.backup import backup

log = logging.getLogger("softswitch.backup")

#: archive names the schedule writes, and the only files it ever removes
ARCHIVE_NAME = re.compile(r"softswitch-\d{8}-\d{6}\.tar\.gz")


@dataclass(frozen=True, slots=True)
class BackupConfig:
    """``[backup]``: where, when, how many."""

    directory: str
    #: daily at this local time
    at: time = time(3, 0)
    #: instead: every this many minutes (the first one interval after the start)
    every_minutes: float | None = None
    keep: int = 7

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError("keep must be 1 or more")
        if self.every_minutes is not None and not self.every_minutes > 0:
            raise ValueError("every_minutes must be more than 0")


def next_run(config: BackupConfig, now: datetime) -> datetime:
    """When the next backup is due after ``now`` (naive local time)."""
    if config.every_minutes is not None:
        return now + timedelta(minutes=config.every_minutes)
    due = datetime.combine(now.date(), config.at)
    return due if due > now else due + timedelta(days=1)


def archive_name(when: datetime) -> str:
    return when.strftime("softswitch-%Y%m%d-%H%M%S.tar.gz")


def prune(directory: Path, keep: int) -> list[Path]:
    """Removes the scheduled archives in ``directory`` beyond the newest ``keep`` (by their
    names, which sort by time); returns those removed."""
    archives = sorted(p for p in directory.iterdir() if ARCHIVE_NAME.fullmatch(p.name) and p.is_file())
    removed = []
    for path in archives[: max(0, len(archives) - keep)]:
        try:
            path.unlink()
        except OSError as exc:
            log.warning("backup: cannot remove the old archive %s: %s", path, exc.strerror)
            continue
        removed.append(path)
    return removed


class BackupSchedule:
    """Runs the backups of ``store_url`` on the loop's clock; ``clock`` gives naive local time
    (injected by tests)."""

    #: the longest sleep before the clock is read again (it may jump: suspend, NTP)
    max_nap_s = 60.0

    def __init__(
        self,
        config: BackupConfig,
        store_url: str,
        config_file: Path | None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.config = config
        self.store_url = store_url
        self.config_file = config_file
        self.clock = clock
        self.done = 0
        self.failed = 0
        self.last_archive: Path | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="backup-schedule")

    async def stop(self) -> None:
        """Stops the schedule; a backup being written finishes in its thread (its archive is
        renamed into place whole, or not at all)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        due = next_run(self.config, self.clock())
        when = due.isoformat(" ", "minutes")
        log.info("backup: the next archive is due at %s in %s", when, self.config.directory)
        while True:
            wait = (due - self.clock()).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, self.max_nap_s))
                continue
            await asyncio.to_thread(self.run_once)
            due = next_run(self.config, max(self.clock(), due))

    def run_once(self) -> Path | None:
        """One backup and the pruning after it (in a worker thread); the archive, or None when
        it failed (logged)."""
        directory = Path(self.config.directory)
        archive = directory / archive_name(self.clock())
        try:
            manifest = backup(self.store_url, archive, config=self.config_file)
        except Exception as exc:  # whatever one run raised, the schedule goes on
            self.failed += 1
            self.last_error = str(exc)
            log.error("backup: %s was not written: %s", archive, exc)
            return None
        self.done += 1
        self.last_archive, self.last_error = archive, None
        removed = prune(directory, self.config.keep)
        rows = sum(n for name, n in manifest.tables.items() if name != "schema_version")
        log.info(
            "backup: wrote %s (%d rows%s); removed %d older archive(s)",
            archive,
            rows,
            " and the configuration file" if manifest.config else "",
            len(removed),
        )
        return archive
