"""CPU, memory and disk use of the machine, read from /proc and statvfs (reference web manager
§7.3/§7.9), with the reference's threshold bands.

CPU use is a difference of two readings of /proc/stat, so :class:`CpuSampler` keeps the
previous one; the first reading gives the use since boot. On a system without /proc the
figures are None and the pages say "n/a".

Network use is not sampled here: the node's alarm sampler (signaling.observe.system) keeps the
latest throughput of each interface, and the web manager is handed a callable returning it
(:data:`NetworkSource`); :func:`network_use` turns that into Mb/s and the reference's band
(§7.9: 0-50 % of capacity normal, 50-75 % warning, above critical). An interface whose capacity
is unknown (no link speed, no configured capacity) has its throughput and no band.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

Band = Literal["normal", "warning", "critical"]

#: Upper bounds of the normal and warning bands, percent (reference §7.9: CPU 60/80, RAM 70/85,
#: disk 70/85, network bandwidth 50/75 of the capacity).
BANDS: dict[str, tuple[float, float]] = {
    "cpu": (60.0, 80.0),
    "ram": (70.0, 85.0),
    "disk": (70.0, 85.0),
    "network": (50.0, 75.0),
}


def band(kind: str, percent: float | None) -> Band:
    if percent is None:
        return "normal"
    normal, warning = BANDS[kind]
    if percent <= normal:
        return "normal"
    return "warning" if percent <= warning else "critical"


class LinkThroughput(Protocol):
    """One interface between two samples, as signaling.observe.system.Throughput gives it."""

    @property
    def rx_bps(self) -> float: ...

    @property
    def tx_bps(self) -> float: ...

    @property
    def capacity_mbps(self) -> float | None: ...

    @property
    def percent(self) -> float | None: ...


#: The latest throughput per interface (empty before the sampler's second reading).
NetworkSource = Callable[[], Mapping[str, LinkThroughput]]


@dataclass(frozen=True, slots=True)
class NetworkUse:
    """An interface on the dashboard: Mb/s each way; percent of capacity and band when known."""

    interface: str
    rx_mbps: float
    tx_mbps: float
    capacity_mbps: float | None
    percent: float | None
    band: Band | None


def network_use(latest: Mapping[str, LinkThroughput]) -> tuple[NetworkUse, ...]:
    """The interfaces by name, throughput rounded to 0.1 Mb/s and percent to 0.1."""
    out = []
    for name in sorted(latest):
        t = latest[name]
        percent = None if t.percent is None else round(t.percent, 1)
        out.append(
            NetworkUse(
                interface=name,
                rx_mbps=round(t.rx_bps / 1e6, 1),
                tx_mbps=round(t.tx_bps / 1e6, 1),
                capacity_mbps=t.capacity_mbps,
                percent=percent,
                band=None if percent is None else band("network", percent),
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SystemStats:
    cpu_percent: float | None
    cores: int
    ram_percent: float | None
    ram_used_mb: int | None
    ram_total_mb: int | None
    disk_percent: float | None
    disk_free_gb: float | None
    disk_path: str
    network: tuple[NetworkUse, ...] = ()


class CpuSampler:
    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc
        self._last: tuple[int, int] | None = None

    def _read(self) -> tuple[int, int] | None:
        """(busy, total) jiffies of all CPUs."""
        try:
            first = (self._proc / "stat").read_text().split("\n", 1)[0].split()
        except OSError:
            return None
        if not first or first[0] != "cpu":
            return None
        values = [int(v) for v in first[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        total = sum(values[:8])  # guest time is already in user
        return total - idle, total

    def percent(self) -> float | None:
        reading = self._read()
        if reading is None:
            return None
        last, self._last = self._last, reading
        busy, total = reading
        if last is not None and total > last[1]:
            busy, total = busy - last[0], total - last[1]
        return round(100.0 * busy / total, 1) if total else None


def memory(proc: Path = Path("/proc")) -> tuple[float, int, int] | None:
    """(percent used, used MiB, total MiB) from /proc/meminfo (used = total - available)."""
    try:
        lines = (proc / "meminfo").read_text().splitlines()
    except OSError:
        return None
    info: dict[str, int] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            info[name] = int(parts[0])  # kB
    total, available = info.get("MemTotal"), info.get("MemAvailable")
    if not total or available is None:
        return None
    used = total - available
    return round(100.0 * used / total, 1), used // 1024, total // 1024


def disk(path: str) -> tuple[float, float] | None:
    """(percent used, free GiB) of the filesystem holding ``path``."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    if not total:
        return None
    free = st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    # as df reports it: used / (used + available to users)
    percent = 100.0 * used / (used + free) if used + free else 0.0
    return round(percent, 1), round(free / 2**30, 1)


def read_system(cpu: CpuSampler, disk_path: str = "/", network: NetworkSource | None = None) -> SystemStats:
    mem = memory()
    dsk = disk(disk_path)
    return SystemStats(
        cpu_percent=cpu.percent(),
        cores=os.cpu_count() or 1,
        ram_percent=mem[0] if mem else None,
        ram_used_mb=mem[1] if mem else None,
        ram_total_mb=mem[2] if mem else None,
        disk_percent=dsk[0] if dsk else None,
        disk_free_gb=dsk[1] if dsk else None,
        disk_path=disk_path,
        network=network_use(network()) if network is not None else (),
    )
