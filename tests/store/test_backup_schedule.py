"""Scheduled backups (signaling/store/backup_schedule.py; reference CAP-7.8: automated regular
schedules): when each is due, the archives written on both store kinds and restorable, the
oldest removed past ``keep`` and nothing else, a failure logged and survived, the schedule run
on the loop's clock; and the node writing them from ``[backup]``."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import subprocess
import sys
import time as time_
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path

import pytest

from signaling.store import Account, open_store
from signaling.store.backup import read_manifest, restore
from signaling.store.backup_schedule import (
    ARCHIVE_NAME,
    BackupConfig,
    BackupSchedule,
    archive_name,
    next_run,
    prune,
)


def test_a_daily_backup_is_due_at_its_next_time_of_day() -> None:
    config = BackupConfig("backups", at=time(3, 0))
    assert next_run(config, datetime(2026, 3, 1, 2, 59)) == datetime(2026, 3, 1, 3, 0)
    # at the time itself, the one just run: the next is tomorrow's
    assert next_run(config, datetime(2026, 3, 1, 3, 0)) == datetime(2026, 3, 2, 3, 0)
    assert next_run(config, datetime(2026, 12, 31, 23, 0)) == datetime(2027, 1, 1, 3, 0)
    every = BackupConfig("backups", every_minutes=90)
    assert next_run(every, datetime(2026, 3, 1, 23, 0)) == datetime(2026, 3, 2, 0, 30)


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="keep"):
        BackupConfig("backups", keep=0)
    with pytest.raises(ValueError, match="every_minutes"):
        BackupConfig("backups", every_minutes=0)


def test_pruning_removes_only_the_oldest_scheduled_archives(tmp_path: Path) -> None:
    names = [archive_name(datetime(2026, 3, day, 3, 0)) for day in range(1, 6)]
    others = ["softswitch-manual.tar.gz", "notes.txt", "softswitch-20260301-030000.tar.gz.part"]
    for name in [*names, *others]:
        (tmp_path / name).write_text("x")
    removed = prune(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[3:], *others])
    assert prune(tmp_path, keep=2) == []


def clock_from(start: datetime, step_s: float = 61.0) -> Iterator[datetime]:
    for i in itertools.count():
        yield datetime.fromtimestamp(start.timestamp() + i * step_s)


def test_each_run_writes_a_restorable_archive_and_keeps_the_newest(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with open_store(store_url) as store:
        store.admin().create(Account(code="sched-1", name="Scheduled"))
    directory = tmp_path / "backups"
    directory.mkdir()
    node_config = tmp_path / "node.toml"
    node_config.write_text('[sip]\nlisten = "127.0.0.1:5060"\n')
    ticks = clock_from(datetime(2026, 3, 1, 3, 0))
    schedule = BackupSchedule(
        BackupConfig(str(directory), keep=2), store_url, node_config, clock=lambda: next(ticks)
    )
    written = [schedule.run_once() for _ in range(3)]
    assert all(path is not None for path in written) and schedule.done == 3
    kept = sorted(p.name for p in directory.iterdir())
    assert kept == sorted(p.name for p in written[1:] if p is not None), "the oldest is removed"
    assert all(ARCHIVE_NAME.fullmatch(name) for name in kept)
    newest = written[-1]
    assert newest is not None
    manifest = read_manifest(newest)
    assert manifest.config is not None and manifest.tables["account"] == 1
    # the archive restores: the account is in the fresh store
    if store_url.startswith("sqlite"):
        target = f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        from tests.store.conftest import drop_pg_database, new_pg_database  # noqa: PLC0415

        server = request.getfixturevalue("pg_server")
        name = new_pg_database(server)
        request.addfinalizer(lambda: drop_pg_database(server, name))
        target = server.url(name)
    restore(target, newest)
    with open_store(target) as restored:
        assert [a.name for a in restored.admin().list(Account) if a.code == "sched-1"] == ["Scheduled"]


def test_a_failed_backup_is_logged_counted_and_survived(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'softswitch.db'}"
    open_store(url).close()
    directory = tmp_path / "backups"
    directory.mkdir()
    (directory / archive_name(datetime(2026, 1, 1))).write_text("an older archive")
    schedule = BackupSchedule(BackupConfig(str(directory / "gone"), keep=1), url, None)
    with caplog.at_level(logging.ERROR, logger="softswitch.backup"):
        assert schedule.run_once() is None
    assert schedule.failed == 1 and schedule.done == 0
    assert schedule.last_error is not None and "no such directory" in schedule.last_error
    assert "was not written" in caplog.text
    # the archives already there are left alone
    assert [p.name for p in directory.iterdir()] == [archive_name(datetime(2026, 1, 1))]


def test_the_schedule_runs_on_its_own_until_stopped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'softswitch.db'}"
    open_store(url).close()
    directory = tmp_path / "backups"
    directory.mkdir()
    # the schedule's clock runs 20 times as fast as the real one: every 6 s of it is 0.3 s
    start, origin = datetime(2026, 3, 1, 3, 0).timestamp(), time_.monotonic()

    def clock() -> datetime:
        return datetime.fromtimestamp(start + 20 * (time_.monotonic() - origin))

    async def main() -> tuple[BackupSchedule, float]:
        schedule = BackupSchedule(BackupConfig(str(directory), every_minutes=0.1, keep=5), url, None, clock)
        schedule.max_nap_s = 0.05  # real seconds: the clock is read again that often
        schedule.start()
        began = time_.monotonic()
        deadline = began + 15
        while schedule.done < 2 and time_.monotonic() < deadline:
            await asyncio.sleep(0.02)
        took = time_.monotonic() - began
        await schedule.stop()
        return schedule, took

    schedule, took = asyncio.run(main())
    assert schedule.done >= 2, "two archives within 15 s of a 0.3 s schedule"
    assert took >= 0.5, "not before their time: the second is due 0.6 s after the start"
    assert len(list(directory.iterdir())) == schedule.done


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "signaling.cli", *args]


def test_the_node_writes_archives_from_its_backup_table(tmp_path: Path) -> None:
    directory = tmp_path / "backups"
    store = tmp_path / "softswitch.db"
    cfg = tmp_path / "node.toml"
    text = (
        '[sip]\nlisten = "127.0.0.1:51251"\n'
        "[parameters]\nSS_MEDIAPROXYPORT_START = 51600\nSS_MEDIAPROXYPORT_END = 51699\n"
        f'[store]\nurl = "sqlite:///{store}"\n'
        f'[backup]\ndirectory = "{directory}"\nevery_minutes = 0.01\nkeep = 3\n'
    )
    cfg.write_text(text)
    # a directory that is not there stops the start, naming it
    refused = subprocess.run(
        _cli("run", "--config", str(cfg)), check=False, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "[backup] directory" in refused.stderr, refused.stderr
    directory.mkdir()
    proc = subprocess.Popen(
        _cli("run", "--config", str(cfg)), stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time_.monotonic() + 30
        while time_.monotonic() < deadline and len(list(directory.glob("softswitch-*.tar.gz"))) < 1:
            time_.sleep(0.2)
        archives = sorted(directory.glob("softswitch-*.tar.gz"))
        assert archives, "an archive within 30 s of a 0.6 s schedule"
        manifest = read_manifest(archives[-1])
        assert manifest.config == "config/node.toml"  # the node's configuration file is in it
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "backup: wrote" in err
        assert len(list(directory.glob("softswitch-*.tar.gz"))) <= 3  # keep
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
