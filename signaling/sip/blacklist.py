"""The dynamic blacklist of the scanner defence (signaling/sip/defence.py), sans-IO.

Single addresses live in a dict (one lookup per message), CIDR ranges in a short list scanned
only when there are any. Every entry has an optional expiry in the defence's clock (the node's
monotonic time); expired entries are dropped on the way. Manual entries (the operator's, through
the API) are written to an optional JSON file on every change, with Unix expiry times, so they
survive a restart; automatic blocks live in memory only (they are short by nature).
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Blacklist", "BlacklistEntry", "IpAddress", "Network", "parse_network"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_network(text: str) -> Network:
    """``203.0.113.10`` (one address) or ``198.51.100.0/24``; ValueError names what is wrong."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR range") from None


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    """One blocked address or range. ``until`` is in the defence's clock (None: no expiry)."""

    network: str
    until: float | None
    reason: str
    #: "manual" (operator, file) or "auto" (a block the defence decided)
    origin: str

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "network": self.network,
            "expires_in": None if self.until is None else max(0.0, round(self.until - now, 3)),
            "reason": self.reason,
            "origin": self.origin,
        }


class Blacklist:
    """The dynamic blacklist: single addresses (a dict: O(1) per message) and CIDR ranges (few,
    scanned), each with an optional expiry. Manual entries survive a restart when a ``path`` is
    given (JSON, written on every manual change; expiries stored as Unix times)."""

    def __init__(self, path: str | Path | None = None, *, wall_offset: float = 0.0) -> None:
        self.path = Path(path) if path is not None else None
        #: what to add to the defence's clock to get Unix time (for the file)
        self.wall_offset = wall_offset
        self._single: dict[str, BlacklistEntry] = {}
        self._ranges: dict[str, tuple[Network, BlacklistEntry]] = {}

    @property
    def has_ranges(self) -> bool:
        return bool(self._ranges)

    def __len__(self) -> int:
        return len(self._single) + len(self._ranges)

    def add(
        self,
        address: str,
        now: float,
        *,
        seconds: float | None = None,
        reason: str = "manual",
        origin: str = "manual",
        save: bool = True,
    ) -> BlacklistEntry:
        """Block an address or range (``seconds`` None: until removed); ValueError on bad input."""
        net = parse_network(address)
        if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError("a block lasts a positive number of seconds")
        key = str(net.network_address) if net.num_addresses == 1 else str(net)
        entry = BlacklistEntry(key, None if seconds is None else now + seconds, reason, origin)
        if net.num_addresses == 1:
            self._single[key] = entry
        else:
            self._ranges[key] = (net, entry)
        if origin == "manual" and save:
            self.save(now)
        return entry

    def remove(self, address: str, now: float = 0.0) -> bool:
        """Unblock; whether there was such an entry."""
        net = parse_network(address)
        key = str(net.network_address) if net.num_addresses == 1 else str(net)
        found = self._single.pop(key, None) or self._ranges.pop(key, (None, None))[1]
        if found is not None and found.origin == "manual":
            self.save(now)
        return found is not None

    def match(
        self, ip: str, now: float, parsed: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    ) -> bool:
        """Whether ``ip`` is blocked at ``now`` (expired entries are dropped on the way)."""
        entry = self._single.get(ip)
        if entry is not None:
            if entry.until is None or entry.until > now:
                return True
            del self._single[ip]
        if not self._ranges:
            return False
        address = parsed if parsed is not None else ipaddress.ip_address(ip)
        for key, (net, range_entry) in list(self._ranges.items()):
            if range_entry.until is not None and range_entry.until <= now:
                del self._ranges[key]
            elif address in net:
                return True
        return False

    def purge(self, now: float) -> int:
        """Forget expired entries; how many went."""
        gone = [k for k, e in self._single.items() if e.until is not None and e.until <= now]
        for k in gone:
            del self._single[k]
        ranges = [k for k, (_, e) in self._ranges.items() if e.until is not None and e.until <= now]
        for k in ranges:
            del self._ranges[k]
        return len(gone) + len(ranges)

    def entries(self, now: float) -> list[BlacklistEntry]:
        self.purge(now)
        return [*self._single.values(), *(e for _, e in self._ranges.values())]

    def save(self, now: float) -> None:
        """Write the manual entries to ``path`` (atomically: a temporary file renamed)."""
        if self.path is None:
            return
        rows = [
            {
                "network": e.network,
                "until": None if e.until is None else round(e.until + self.wall_offset, 3),
                "reason": e.reason,
            }
            for e in self.entries(now)
            if e.origin == "manual"
        ]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"blacklist": rows}, indent=1) + "\n")
        os.replace(tmp, self.path)

    def load(self, now: float) -> int:
        """Read the manual entries back (a missing file is an empty list); how many are live.
        A malformed file raises ValueError naming it."""
        if self.path is None or not self.path.exists():
            return 0
        try:
            data = json.loads(self.path.read_text())
            rows = data["blacklist"]
            count = 0
            for row in rows:
                until = row.get("until")
                remaining = None if until is None else float(until) - self.wall_offset - now
                if remaining is not None and remaining <= 0:
                    continue
                reason = str(row.get("reason", "manual"))
                self.add(str(row["network"]), now, seconds=remaining, reason=reason, save=False)
                count += 1
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a blacklist file ({exc})") from None
        return count
