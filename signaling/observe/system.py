"""System resources from /proc and statvfs, for the alarms and the dashboard (no psutil).

The parsers take the files' text and the meters keep the previous reading, so the arithmetic is
tested on fixed text; :class:`SystemSampler` is the thin part that reads the files. CPU and disk
busy time are shares of the time between two samples; memory in use is
``1 - MemAvailable / MemTotal`` (what ``free`` calls available: reclaimable cache counts as
free); a file system's use is what ``df`` shows (used / (used + available to users)). A network
interface's use is its throughput between two samples (bytes received and sent, from
/proc/net/dev) in percent of its capacity, the busier direction (links are full duplex); the
capacity is the link speed the kernel reports in /sys/class/net/IF/speed (Mb/s), or the
configured ``network_capacity_mbps`` where it reports none (-1 or unreadable: virtual NICs,
bridges); an interface with neither has its throughput but no percentage. Loopback is left out.
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
    "NetworkMeter",
    "SystemSampler",
    "Throughput",
    "conntrack",
    "cpu_times",
    "disk_percent",
    "link_speed_mbps",
    "memory_percent",
    "net_bytes",
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


def net_bytes(netdev: str) -> dict[str, tuple[int, int]]:
    """Interface -> (bytes received, bytes sent) from /proc/net/dev (loopback left out)."""
    out: dict[str, tuple[int, int]] = {}
    for line in netdev.splitlines():
        name, sep, rest = line.partition(":")
        fields = rest.split()
        name = name.strip()
        if not sep or len(fields) < 9 or name == "lo" or not fields[0].isdigit():
            continue
        out[name] = (int(fields[0]), int(fields[8]))
    return out


def link_speed_mbps(interface: str, root: Path = Path("/sys/class/net")) -> float | None:
    """The link speed the kernel reports for ``interface`` in Mb/s; None when it knows none."""
    try:
        speed = int((root / interface / "speed").read_text().strip())
    except (OSError, ValueError):  # a virtual NIC: EINVAL on read, or no such file
        return None
    return float(speed) if speed > 0 else None


@dataclass(frozen=True, slots=True)
class Throughput:
    """One interface between two samples: bits per second each way, and percent of capacity."""

    rx_bps: float
    tx_bps: float
    capacity_mbps: float | None
    percent: float | None


class NetworkMeter:
    """Throughput per interface since the previous reading, and its share of the capacity."""

    def __init__(
        self, capacity_mbps: float = 0.0, speed: Callable[[str], float | None] = link_speed_mbps
    ) -> None:
        self.capacity_mbps = capacity_mbps
        self._speed = speed
        self._last: tuple[float, dict[str, tuple[int, int]]] | None = None

    def update(self, netdev: str, now: float) -> dict[str, Throughput]:
        counters = net_bytes(netdev)
        last, self._last = self._last, (now, counters)
        if last is None or now <= last[0]:
            return {}
        span = now - last[0]
        out = {}
        for name, (rx, tx) in counters.items():
            before = last[1].get(name)
            if before is None:
                continue
            # a counter that went back (the interface was reset) counts as no traffic
            rx_bps = max(0, rx - before[0]) * 8 / span
            tx_bps = max(0, tx - before[1]) * 8 / span
            capacity = self._speed(name) or (self.capacity_mbps or None)
            percent = None if capacity is None else 100.0 * max(rx_bps, tx_bps) / (capacity * 1e6)
            out[name] = Throughput(rx_bps, tx_bps, capacity, percent)
        return out


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
    #: ``[alarms] network_capacity_mbps``: for interfaces whose link speed the kernel knows not
    network_capacity_mbps: float = 0.0
    sys_net: Path = Path("/sys/class/net")

    def __post_init__(self) -> None:
        self._cpu = CpuMeter()
        self._disk_io = DiskIoMeter()
        root = self.sys_net
        self._network = NetworkMeter(self.network_capacity_mbps, lambda name: link_speed_mbps(name, root))
        #: the last sample's throughput per interface (the dashboard)
        self.throughput: dict[str, Throughput] = {}

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
            network=self._network_percent(now),
        )

    def _network_percent(self, now: float) -> dict[str, float]:
        self.throughput = self._network.update(self._read("net/dev"), now)
        return {name: t.percent for name, t in self.throughput.items() if t.percent is not None}
