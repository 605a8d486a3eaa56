"""System resources from /proc and statvfs, for the alarms and the dashboard (no psutil).

The parsers take the files' text and the meters keep the previous reading, so the arithmetic is
tested on fixed text; :class:`SystemSampler` is the thin part that reads the files. CPU and disk
busy time are shares of the time between two samples; memory in use is
``1 - MemAvailable / MemTotal`` (what ``free`` calls available: reclaimable cache counts as
free); a file system's use is what ``df`` shows (used / (used + available to users)).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from signaling.observe.alarms import SystemSample

__all__ = [
    "CpuMeter",
    "DiskIoMeter",
    "SystemSampler",
    "conntrack",
    "cpu_times",
    "disk_percent",
    "memory_percent",
]

#: /proc/diskstats device names that are not disks (or are partitions counted with their disk)
_NOT_DISKS = ("loop", "ram", "zram", "sr", "fd", "dm-", "md")


def cpu_times(stat: str) -> tuple[int, int] | None:
    """(busy, total) jiffies from the ``cpu`` line of /proc/stat; iowait counts as idle."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            fields = [int(v) for v in line.split()[1:]]
            total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
            return total - idle, total
    return None


class CpuMeter:
    """Percent of all CPUs busy since the previous reading."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None

    def update(self, stat: str) -> float | None:
        times = cpu_times(stat)
        if times is None:
            return None
        last, self._last = self._last, times
        if last is None or times[1] <= last[1]:
            return None
        return 100.0 * (times[0] - last[0]) / (times[1] - last[1])


def memory_percent(meminfo: str) -> float | None:
    values: dict[str, int] = {}
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0])
    total = values.get("MemTotal")
    available = values.get("MemAvailable")
    if not total or available is None:
        return None
    return 100.0 * (total - available) / total


def disk_percent(path: str) -> float | None:
    """Used percent of the file system holding ``path``, as df computes it; None if unreadable."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    available = st.f_bavail * st.f_frsize
    if used + available <= 0:
        return None
    return 100.0 * used / (used + available)


def _disk_ticks(diskstats: str) -> dict[str, int]:
    """Device -> milliseconds spent doing I/O (field 13 of /proc/diskstats), whole disks only."""
    out: dict[str, int] = {}
    for line in diskstats.splitlines():
        parts = line.split()
        if len(parts) < 13:
            continue
        name = parts[2]
        if name.startswith(_NOT_DISKS) or (name[-1].isdigit() and name.rstrip("0123456789")[-1:] == "p"):
            continue  # nvme0n1p1-style partitions
        if name.startswith(("sd", "vd", "hd", "xvd")) and name[-1].isdigit():
            continue  # sda1-style partitions
        out[name] = int(parts[12])
    return out


class DiskIoMeter:
    """Percent of wall time each disk was busy since the previous reading (iostat's %util)."""

    def __init__(self) -> None:
        self._last: tuple[float, dict[str, int]] | None = None

    def update(self, diskstats: str, now: float) -> dict[str, float]:
        ticks = _disk_ticks(diskstats)
        last, self._last = self._last, (now, ticks)
        if last is None or now <= last[0]:
            return {}
        span_ms = (now - last[0]) * 1000.0
        return {
            name: min(100.0, 100.0 * max(0, value - last[1][name]) / span_ms)
            for name, value in ticks.items()
            if name in last[1]
        }


def conntrack(root: Path = Path("/proc/sys/net/netfilter")) -> tuple[int, int] | None:
    """(entries, maximum) of the kernel's connection tracking table, or None without it."""
    try:
        count = int((root / "nf_conntrack_count").read_text())
        limit = int((root / "nf_conntrack_max").read_text())
    except (OSError, ValueError):
        return None
    return count, limit


@dataclass
class SystemSampler:
    """Reads the files and returns a :class:`SystemSample` per call (the CPU and disk shares
    over the time since the previous call)."""

    disk_paths: Sequence[str] = ("/",)
    proc: Path = Path("/proc")

    def __post_init__(self) -> None:
        self._cpu = CpuMeter()
        self._disk_io = DiskIoMeter()

    def _read(self, name: str) -> str:
        try:
            return (self.proc / name).read_text()
        except OSError:
            return ""

    def sample(self, now: float, *, statvfs: Callable[[str], float | None] = disk_percent) -> SystemSample:
        disks = {p: used for p in self.disk_paths if (used := statvfs(p)) is not None}
        return SystemSample(
            cpu=self._cpu.update(self._read("stat")),
            memory=memory_percent(self._read("meminfo")),
            disks=disks,
            disk_io=self._disk_io.update(self._read("diskstats"), now),
            conntrack=conntrack(self.proc / "sys/net/netfilter"),
        )
