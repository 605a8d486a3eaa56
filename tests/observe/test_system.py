"""System resources from /proc text (fixed samples, then the real files once)."""

from __future__ import annotations

import os
from pathlib import Path

from signaling.observe.system import (
    CpuMeter,
    DiskIoMeter,
    SystemSampler,
    conntrack,
    cpu_times,
    memory_percent,
)

STAT_1 = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\nintr 1\n"
STAT_2 = "cpu  250 0 150 800 100 0 0 0 0 0\ncpu0 1 1 1 1 1 0 0 0 0 0\n"
MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n"
DISKSTATS_1 = (
    "   8       0 sda 1 0 0 0 1 0 0 0 0 1000 0 0 0 0 0\n"
    "   8       1 sda1 1 0 0 0 1 0 0 0 0 900 0 0 0 0 0\n"
    " 259       0 nvme0n1 1 0 0 0 1 0 0 0 0 500 0 0 0 0 0\n"
    " 259       1 nvme0n1p1 1 0 0 0 1 0 0 0 0 400 0 0 0 0 0\n"
    "   7       0 loop0 1 0 0 0 1 0 0 0 0 9999 0 0 0 0 0\n"
)
DISKSTATS_2 = DISKSTATS_1.replace(" 1000 ", " 1800 ").replace(" 500 ", " 600 ")


def test_cpu_share_between_two_readings_counts_iowait_as_idle() -> None:
    assert cpu_times(STAT_1) == (200, 1000)
    meter = CpuMeter()
    assert meter.update(STAT_1) is None  # one reading: no period yet
    # busy 200 -> 400, total 1000 -> 1300: 200 of 300 jiffies busy
    assert meter.update(STAT_2) == 100.0 * 200 / 300
    assert meter.update("garbage") is None


def test_memory_in_use_is_what_is_not_available() -> None:
    assert memory_percent(MEMINFO) == 75.0
    assert memory_percent("MemTotal: 100 kB\n") is None


def test_disk_busy_share_of_whole_disks_only() -> None:
    meter = DiskIoMeter()
    assert meter.update(DISKSTATS_1, 10.0) == {}
    busy = meter.update(DISKSTATS_2, 11.0)  # one second: sda busy 800 ms, nvme0n1 100 ms
    assert busy == {"sda": 80.0, "nvme0n1": 10.0}


def test_conntrack_table(tmp_path: Path) -> None:
    assert conntrack(tmp_path) is None
    (tmp_path / "nf_conntrack_count").write_text("12\n")
    (tmp_path / "nf_conntrack_max").write_text("1048576\n")
    assert conntrack(tmp_path) == (12, 1048576)


def test_sampler_on_this_machine() -> None:
    sampler = SystemSampler(disk_paths=("/", "/no/such/path"))
    first = sampler.sample(0.0)
    assert first.cpu is None and first.memory is not None and 0 < first.memory < 100
    assert set(first.disks) == {"/"} and 0 <= first.disks["/"] <= 100
    os.sched_yield()
    second = sampler.sample(1.0)
    assert second.cpu is None or 0 <= second.cpu <= 100
