"""The SIP scanner defence, sans-IO: which received messages are dropped before any parsing.

The reference (part 2 §A) builds this as an iptables pipeline in front of VOS3000; we run the
same pipeline as the first thing the node does with a datagram or a framed TCP message, so it
needs no root, no kernel modules and follows the node's own configuration (the gateways it
knows are trusted without being listed twice).

Theory of operation. Every message is judged by its source IP, in the reference's order (§A.9):

1. **Trusted** sources pass untouched and uncounted (A.5: they "bypass all scanner and rate-limit
   rules"): the ``trusted_sip_ips`` whitelist (single addresses and CIDR ranges, the reference's
   ``TRUSTED_SIP_IPS``), every configured mapping and routing gateway address, and loopback
   unless ``trust_loopback`` is off (A.9 step 2 accepts ``-i lo``). A customer gateway sending
   100 calls per second is therefore never limited here; its own ``max_cps`` applies later.
   Sources that have just passed digest authentication (a phone's REGISTER, a password
   customer's INVITE) are *authenticated* for ``authenticated_seconds`` and pass the same way,
   except through the blacklist.
2. Everything else is **untrusted**, and goes through, in turn: the **blacklist** (manual
   entries, CIDR allowed, and automatic temporary blocks); the **junk** rule (a message whose
   first line is neither a SIP request line nor a status line); the **string rules** of
   ``SIP_SCANNER_BLOCK`` (A.4: ``OPTIONS`` requests, and known scanner signatures in the
   User-Agent header, matched case-insensitively); **connlimit** (A.6: at most ``connlimit_above`` concurrent
   flows — source ports seen within the UDP conntrack timeout — per IP, and
   ``connlimit_subnet_above`` per /24); the **recent** sliding window (A.7: a source with
   ``recent_hitcount`` packets within ``recent_seconds`` is dropped from the threshold on, and
   every packet counts, so a flood stays dropped until it pauses for the window); and the
   **hashlimit** token bucket (A.8: ``hashlimit``/s with ``hashlimit_burst``, idle entries
   forgotten after ``hashlimit_htable_expire`` ms).
3. **Automatic blocks**: a scanner signature, ``block_after_drops`` rate-limit drops within one
   window, or ``auth_failures`` wrong passwords within ``recent_seconds`` put the source on the
   blacklist for ``block_seconds``.

A drop produces no response and no log line (A.3), only counters (:attr:`Defence.drops`,
:attr:`Defence.signature_drops`). While judging, the defence also watches every untrusted
source for the reference's detection thresholds (A.2, F.1-12: ``scanner_options_per_minute``
OPTIONS per minute or ``scanner_packets_per_second`` packets per second from one IP) and keeps
a *sighting* per such IP for the scanner alarm (:meth:`Defence.sightings`).

Memory is bounded: at most ``max_sources`` untrusted sources are tracked (idle ones expire after
the longest window); when the table is full a new untrusted source is dropped ("table_full")
rather than evicting a tracked one, so a spoofed-address flood cannot push a known scanner out.
Time is injected (``now``: the node's monotonic clock, seconds); nothing here reads a clock or
the network.
"""

from __future__ import annotations

import ipaddress
import math
import re
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .blacklist import Blacklist, BlacklistEntry, IpAddress, Network, parse_network

__all__ = [
    "DEFAULT_SCANNER_USER_AGENTS",
    "Blacklist",
    "BlacklistEntry",
    "Defence",
    "DefenceConfig",
    "DropReason",
    "Sighting",
    "parse_network",
]

#: The reference's signatures (A.4, the SIP_SCANNER_BLOCK chain of A.9), plus two tools seen in
#: the wild since; matched case-insensitively anywhere in the User-Agent header (F.1-3).
DEFAULT_SCANNER_USER_AGENTS = (
    "friendly-scanner",
    "VaxSIPUserAgent",
    "sipvicious",
    "SIPScan",
    "sipcli",
    "sip-scan",
    "iWar",
)


class DropReason:
    """Why a message was dropped (the label of the drop counters)."""

    BLACKLIST = "blacklist"
    NOT_SIP = "not_sip"
    OPTIONS = "options"
    SCANNER_USER_AGENT = "scanner_user_agent"
    CONNLIMIT_IP = "connlimit_ip"
    CONNLIMIT_SUBNET = "connlimit_subnet"
    RECENT = "rate_recent"
    HASHLIMIT = "rate_hashlimit"
    TABLE_FULL = "table_full"

    ALL = (
        BLACKLIST,
        NOT_SIP,
        OPTIONS,
        SCANNER_USER_AGENT,
        CONNLIMIT_IP,
        CONNLIMIT_SUBNET,
        RECENT,
        HASHLIMIT,
        TABLE_FULL,
    )


@dataclass(frozen=True, slots=True)
class DefenceConfig:
    """``[defence]`` (signaling/config.py); defaults as docs/defence.md explains."""

    enabled: bool = True
    #: TRUSTED_SIP_IPS: addresses and CIDR ranges that bypass every rule
    trusted_sip_ips: tuple[str, ...] = ()
    #: configured mapping/routing gateway addresses are trusted
    trust_gateways: bool = True
    #: 127.0.0.0/8 and ::1 are trusted (the reference accepts ``-i lo`` first)
    trust_loopback: bool = True
    #: seconds a source that passed digest authentication passes like a trusted one
    authenticated_seconds: float = 3600.0
    #: the "OPTIONS sip:" string rule, for untrusted sources
    drop_options: bool = True
    scanner_user_agents: tuple[str, ...] = DEFAULT_SCANNER_USER_AGENTS
    #: drop untrusted messages that are not SIP at all (CRLF keep-alives are SIP)
    drop_not_sip: bool = True
    #: recent: ``--hitcount`` packets within ``--seconds`` (0 turns the rule off)
    recent_hitcount: int = 20
    recent_seconds: float = 60.0
    #: hashlimit: packets per second and burst per source (0 turns the rule off)
    hashlimit: float = 10.0
    hashlimit_burst: int = 20
    hashlimit_htable_expire: int = 30_000  # ms
    #: connlimit: concurrent flows per source IP (mask 32) and per /24 (0 turns a rule off)
    connlimit_above: int = 10
    connlimit_subnet_above: int = 30
    #: seconds a flow (source IP and port) counts as concurrent: nf_conntrack_udp_timeout
    flow_timeout: float = 30.0
    #: automatic temporary blocks: how long, and what earns one (0 turns a trigger off)
    block_seconds: float = 600.0
    block_scanners: bool = True
    block_after_drops: int = 200
    auth_failures: int = 10
    #: detection thresholds of the scanner alarm (A.2)
    scanner_options_per_minute: int = 50
    scanner_packets_per_second: int = 100
    #: untrusted sources tracked at most
    max_sources: int = 20_000
    #: permanent blacklist entries from the file, and where manual changes are kept
    blacklist: tuple[str, ...] = ()
    blacklist_file: str | None = None

    def __post_init__(self) -> None:
        for text in (*self.trusted_sip_ips, *self.blacklist):
            parse_network(text)
        if self.recent_hitcount < 0 or self.recent_seconds <= 0:
            raise ValueError("recent_hitcount must be >= 0 and recent_seconds > 0")
        if self.hashlimit < 0 or (self.hashlimit > 0 and self.hashlimit_burst < 1):
            raise ValueError("hashlimit must be >= 0 with a burst of at least 1")
        if self.max_sources < 1:
            raise ValueError("max_sources must be at least 1")

    @property
    def idle_expiry(self) -> float:
        """Seconds after which an idle source has nothing left to remember."""
        return max(self.recent_seconds, self.hashlimit_htable_expire / 1000.0, self.flow_timeout, 60.0, 2.0)


# --------------------------------------------------------------------------- per-source state


@dataclass(slots=True)
class Sighting:
    """An untrusted source that crossed a detection threshold (the scanner alarm's subject)."""

    ip: str
    first_seen: float
    last_seen: float
    #: the estimates when last over a threshold
    options_per_minute: float = 0.0
    packets_per_second: float = 0.0
    reason: str = ""

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "seen_for": round(self.last_seen - self.first_seen, 3),
            "last_seen_ago": round(now - self.last_seen, 3),
            "options_per_minute": round(self.options_per_minute, 1),
            "packets_per_second": round(self.packets_per_second, 1),
            "reason": self.reason,
        }


class _Window:
    """Events per fixed window with the sliding estimate ``previous * (1 - elapsed) + current``
    (bounded memory, no per-event list)."""

    __slots__ = ("_current", "_previous", "_start", "length")

    def __init__(self, length: float, now: float) -> None:
        self.length = length
        self._start = now
        self._current = 0
        self._previous = 0

    def add(self, now: float) -> float:
        """Count one event; the estimate of events in the last ``length`` seconds."""
        elapsed = now - self._start
        if elapsed >= self.length:
            windows = int(elapsed // self.length)
            self._previous = self._current if windows == 1 else 0
            self._current = 0
            self._start += windows * self.length
            elapsed = now - self._start
        self._current += 1
        return self._previous * (1.0 - elapsed / self.length) + self._current


@dataclass(slots=True)
class _Source:
    ip: str
    last: float
    #: recent: the last ``recent_hitcount`` packet times, a ring (oldest at ``hit_index``)
    hits: array[float]
    pps: _Window
    options: _Window
    hit_index: int = 0
    tokens: float = 0.0
    token_time: float = 0.0
    flows: int = 0
    #: rate-limit drops in the current recent window, and when that window began
    drops: int = 0
    drops_since: float = 0.0
    auth_failures: int = 0
    auth_since: float = 0.0
    parsed: IpAddress | None = None


def _subnet(ip: str) -> str:
    """The /24 of an IPv4 address (string work only), the /64 of an IPv6 one."""
    if ":" not in ip:
        return ip.rpartition(".")[0]
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


#: the User-Agent header's value (the name is case-insensitive; SIP has no compact form for it)
_USER_AGENT = re.compile(rb"\nuser-agent[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


def _is_sip_start(data: bytes) -> bool:
    """A SIP status line or request line start (``METHOD sip:`` / ``sips:`` / ``tel:``...)."""
    if data.startswith(b"SIP/2.0 "):
        return True
    space = data.find(b" ", 0, 32)
    if space <= 0:
        return False
    method = data[:space]
    return method.isalpha() and method.isupper() and data.find(b":", space, space + 12) > space


class Defence:
    """The pipeline of the module docstring, with its counters."""

    def __init__(self, config: DefenceConfig | None = None, *, wall_offset: float = 0.0) -> None:
        self.config = config or DefenceConfig()
        self.blacklist = Blacklist(self.config.blacklist_file, wall_offset=wall_offset)
        #: drops by reason, and scanner-signature drops by signature (the per-rule counters of F.7)
        self.drops: dict[str, int] = dict.fromkeys(DropReason.ALL, 0)
        self.signature_drops: dict[str, int] = {}
        #: untrusted messages judged (the node's message count minus this = trusted ones)
        self.inspected = 0
        self.accepted_untrusted = 0
        self.accepted_authenticated = 0
        #: automatic blocks decided, by trigger
        self.auto_blocks: dict[str, int] = {"scanner": 0, "rate": 0, "auth": 0}
        self._gateways: frozenset[str] = frozenset()
        self._exact: frozenset[str] = frozenset()
        self._ranges: tuple[Network, ...] = ()
        self._trusted_cache: dict[str, bool] = {}
        self._authenticated: OrderedDict[str, float] = OrderedDict()
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._flows: OrderedDict[tuple[str, int], float] = OrderedDict()
        self._subnet_flows: dict[str, int] = {}
        self._sightings: OrderedDict[str, Sighting] = OrderedDict()
        self._signatures: tuple[tuple[bytes, str], ...] = ()
        self.reconfigure(self.config)

    # -- configuration ------------------------------------------------------------------------

    def reconfigure(self, config: DefenceConfig, now: float = 0.0) -> None:
        """New settings (what is tracked stays; the permanent blacklist entries are re-added)."""
        self.config = config
        exact: set[str] = set()
        ranges: list[Network] = []
        for text in config.trusted_sip_ips:
            net = parse_network(text)
            if net.num_addresses == 1:
                exact.add(str(net.network_address))
            else:
                ranges.append(net)
        self._exact = frozenset(exact)
        self._ranges = tuple(ranges)
        self._trusted_cache.clear()
        self._signatures = tuple((s.lower().encode(), s) for s in config.scanner_user_agents if s)
        for text in config.blacklist:
            self.blacklist.add(text, now, reason="configuration", origin="config")

    def set_gateway_addresses(self, addresses: Iterable[str]) -> None:
        """The IPs of the configured mapping and routing gateways (trusted with trust_gateways)."""
        gateways = frozenset(addresses)
        if gateways != self._gateways:
            self._gateways = gateways
            self._trusted_cache.clear()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    # -- trust ----------------------------------------------------------------------------------

    def is_trusted(self, ip: str) -> bool:
        """Static trust (whitelist, gateways, loopback): one dict lookup once an IP was seen."""
        known = self._trusted_cache.get(ip)
        if known is not None:
            return known
        trusted = self._classify(ip)
        if len(self._trusted_cache) >= 4 * self.config.max_sources:
            self._trusted_cache.clear()  # a spoofed flood of addresses: start over, stay bounded
        self._trusted_cache[ip] = trusted
        return trusted

    def _classify(self, ip: str) -> bool:
        c = self.config
        if ip in self._exact or (c.trust_gateways and ip in self._gateways):
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if c.trust_loopback and address.is_loopback:
            return True
        return any(address in net for net in self._ranges)

    def authenticated(self, ip: str, now: float) -> None:
        """``ip`` just passed digest authentication: it passes like a trusted source for
        ``authenticated_seconds`` (a dynamic-IP customer's calls are never rate limited)."""
        table = self._authenticated
        table[ip] = now + self.config.authenticated_seconds
        table.move_to_end(ip)
        while len(table) > self.config.max_sources:
            table.popitem(last=False)
        source = self._sources.get(ip)
        if source is not None:
            source.auth_failures = 0

    def auth_failed(self, ip: str, now: float) -> bool:
        """A wrong password (or unknown user) from ``ip``; True when that earned it a block."""
        c = self.config
        if c.auth_failures <= 0 or self.is_trusted(ip):
            return False
        source = self._sources.get(ip)
        if source is None:
            return False
        if now - source.auth_since >= c.recent_seconds:
            source.auth_since, source.auth_failures = now, 0
        source.auth_failures += 1
        if source.auth_failures >= c.auth_failures:
            self._block(ip, now, "auth", f"{source.auth_failures} failed authentications")
            return True
        return False

    # -- judging --------------------------------------------------------------------------------

    def inspect(self, data: bytes, addr: tuple[str, int], now: float) -> str | None:
        """The drop reason for one message from ``addr``, or None to accept it."""
        ip = addr[0]
        if not self.config.enabled or self.is_trusted(ip):
            return None
        self.inspected += 1
        known = self._known(ip, now)
        if known is not None:
            return known or None
        source = self._source(ip, now)
        if source is None:
            return self._drop(
                DropReason.BLACKLIST if self.blacklist.match(ip, now, None) else DropReason.TABLE_FULL
            )
        is_options = data.startswith(b"OPTIONS ")
        self._watch(source, now, is_options)
        if self.blacklist.match(ip, now, source.parsed):
            return self._drop(DropReason.BLACKLIST)
        reason = self._content(data, source, now, is_options)
        if reason is None:
            reason = self._limits(source, addr[1], now)
        if reason is None:
            self.accepted_untrusted += 1
            return None
        return self._drop(reason)

    def _known(self, ip: str, now: float) -> str | None:
        """For a source authenticated until later than ``now``: "" to accept it, or the
        blacklist drop; None for any other source."""
        until = self._authenticated.get(ip)
        if until is None:
            return None
        if until <= now:
            del self._authenticated[ip]
            return None
        if self.blacklist.match(ip, now, None):
            return self._drop(DropReason.BLACKLIST)
        self.accepted_authenticated += 1
        return ""

    def _drop(self, reason: str) -> str:
        self.drops[reason] += 1
        return reason

    def _source(self, ip: str, now: float) -> _Source | None:
        sources = self._sources
        source = sources.get(ip)
        if source is not None:
            sources.move_to_end(ip)
            source.last = now
            return source
        self._expire(now)
        if len(sources) >= self.config.max_sources:
            return None
        c = self.config
        source = _Source(
            ip=ip,
            last=now,
            hits=array("d", [-math.inf] * max(c.recent_hitcount, 1)),
            pps=_Window(1.0, now),
            options=_Window(60.0, now),
            tokens=float(c.hashlimit_burst),
            token_time=now,
            drops_since=now,
            auth_since=now,
        )
        if self._ranges or self.blacklist.has_ranges:  # parsed once, for CIDR matching
            try:
                source.parsed = ipaddress.ip_address(ip)
            except ValueError:
                source.parsed = None
        sources[ip] = source
        return source

    def _expire(self, now: float) -> None:
        """Forget sources and flows idle past their windows (oldest first: O(expired))."""
        horizon = now - self.config.idle_expiry
        sources = self._sources
        while sources:
            ip, source = next(iter(sources.items()))
            if source.last > horizon:
                break
            del sources[ip]
        self._expire_flows(now)

    def _watch(self, source: _Source, now: float, is_options: bool) -> None:
        """The detection counters of the scanner alarm (A.2), before any rule decides."""
        c = self.config
        pps = source.pps.add(now)
        opm = source.options.add(now) if is_options else 0.0
        over_pps = c.scanner_packets_per_second > 0 and pps >= c.scanner_packets_per_second
        over_opm = c.scanner_options_per_minute > 0 and opm >= c.scanner_options_per_minute
        if not (over_pps or over_opm):
            return
        sighting = self._sightings.get(source.ip)
        if sighting is None:
            sighting = Sighting(source.ip, now, now)
            self._sightings[source.ip] = sighting
            while len(self._sightings) > 1000:
                self._sightings.popitem(last=False)
        else:
            self._sightings.move_to_end(source.ip)
        sighting.last_seen = now
        sighting.packets_per_second = pps
        if is_options:
            sighting.options_per_minute = opm
        sighting.reason = f"{opm:.0f} OPTIONS per minute" if over_opm else f"{pps:.0f} packets per second"

    def _content(self, data: bytes, source: _Source, now: float, is_options: bool) -> str | None:
        c = self.config
        if c.drop_not_sip and not _is_sip_start(data) and data.strip(b"\r\n"):
            return DropReason.NOT_SIP
        found = _USER_AGENT.search(data) if self._signatures else None
        if found is not None:
            agent = found.group(1).lower()
            for needle, name in self._signatures:
                if needle in agent:
                    self.signature_drops[name] = self.signature_drops.get(name, 0) + 1
                    if c.block_scanners:
                        self._block(source.ip, now, "scanner", f"scanner signature {name!r}")
                    return DropReason.SCANNER_USER_AGENT
        if is_options and c.drop_options:
            return DropReason.OPTIONS
        return None

    def _limits(self, source: _Source, port: int, now: float) -> str | None:
        reason = self._connlimit(source, port, now)
        if reason is None:
            reason = self._recent(source, now)
        if reason is None:
            reason = self._hashlimit(source, now)
        if reason is not None and reason != DropReason.CONNLIMIT_SUBNET:
            c = self.config
            if now - source.drops_since >= c.recent_seconds:
                source.drops_since, source.drops = now, 0
            source.drops += 1
            if c.block_after_drops > 0 and source.drops >= c.block_after_drops:
                self._block(source.ip, now, "rate", f"{source.drops} messages over the rate limits")
        return reason

    def _recent(self, source: _Source, now: float) -> str | None:
        """xt_recent ``--set`` then ``--update --hitcount N --seconds S``: every packet is
        recorded, and one whose N-th most recent predecessor-or-self is within S is dropped."""
        c = self.config
        if c.recent_hitcount <= 0:
            return None
        hits = source.hits
        i = source.hit_index
        hits[i] = now
        i = (i + 1) % len(hits)
        source.hit_index = i
        return DropReason.RECENT if hits[i] > now - c.recent_seconds else None

    def _hashlimit(self, source: _Source, now: float) -> str | None:
        c = self.config
        if c.hashlimit <= 0:
            return None
        burst = float(c.hashlimit_burst)
        if now - source.token_time >= c.hashlimit_htable_expire / 1000.0:
            tokens = burst  # the entry had expired: a fresh, full bucket
        else:
            tokens = min(burst, source.tokens + (now - source.token_time) * c.hashlimit)
        source.token_time = now
        if tokens < 1.0 - 1e-9:
            source.tokens = tokens
            return DropReason.HASHLIMIT
        source.tokens = tokens - 1.0
        return None

    def _connlimit(self, source: _Source, port: int, now: float) -> str | None:
        """A new flow (source port) is refused past the per-IP or per-/24 count of flows seen
        within ``flow_timeout``; packets of a known flow pass (connlimit counts connections)."""
        c = self.config
        if c.connlimit_above <= 0 and c.connlimit_subnet_above <= 0:
            return None
        key = (source.ip, port)
        flows = self._flows
        if key in flows:
            flows[key] = now
            flows.move_to_end(key)
            return None
        self._expire_flows(now)
        if c.connlimit_above > 0 and source.flows >= c.connlimit_above:
            return DropReason.CONNLIMIT_IP
        subnet = _subnet(source.ip)
        if c.connlimit_subnet_above > 0 and self._subnet_flows.get(subnet, 0) >= c.connlimit_subnet_above:
            return DropReason.CONNLIMIT_SUBNET
        if len(flows) >= 4 * c.max_sources:
            return DropReason.TABLE_FULL
        flows[key] = now
        source.flows += 1
        self._subnet_flows[subnet] = self._subnet_flows.get(subnet, 0) + 1
        return None

    def _expire_flows(self, now: float) -> None:
        horizon = now - self.config.flow_timeout
        flows = self._flows
        while flows:
            (ip, port), last = next(iter(flows.items()))
            if last > horizon:
                return
            del flows[(ip, port)]
            source = self._sources.get(ip)
            if source is not None and source.flows > 0:
                source.flows -= 1
            subnet = _subnet(ip)
            left = self._subnet_flows.get(subnet, 0) - 1
            if left > 0:
                self._subnet_flows[subnet] = left
            else:
                self._subnet_flows.pop(subnet, None)

    def _block(self, ip: str, now: float, trigger: str, reason: str) -> None:
        if self.config.block_seconds <= 0:
            return
        self.blacklist.add(ip, now, seconds=self.config.block_seconds, reason=reason, origin="auto")
        self.auto_blocks[trigger] += 1

    # -- inspection -----------------------------------------------------------------------------

    def accept_connection(self, ip: str, now: float) -> bool:
        """Whether a TCP/TLS connection from ``ip`` may be accepted (blacklisted: no)."""
        if not self.config.enabled or self.is_trusted(ip):
            return True
        return not self.blacklist.match(ip, now, None)

    def sightings(self, now: float, within: float = 60.0) -> list[Sighting]:
        """Sources over a detection threshold within the last ``within`` seconds."""
        return [s for s in self._sightings.values() if now - s.last_seen <= within]

    def sources(self, now: float, limit: int = 1000) -> Iterator[dict[str, Any]]:
        """The per-source rate state (the reference's /proc/net/xt_recent and hashlimit
        tables, F.7-76), most recently active first, at most ``limit``. Each rule's part is
        None once that rule has forgotten the source (recent: no hit within its window;
        hashlimit: idle past ``hashlimit_htable_expire``); the whole entry goes once every
        rule and the detection window (60 s) have."""
        self._expire(now)
        c = self.config
        burst = float(c.hashlimit_burst)
        for i, source in enumerate(reversed(self._sources.values())):
            if i >= limit:
                return
            hits = sum(1 for t in source.hits if t > now - c.recent_seconds) if c.recent_hitcount else 0
            idle = now - source.token_time
            live_bucket = c.hashlimit > 0 and idle < c.hashlimit_htable_expire / 1000.0
            tokens = min(burst, source.tokens + idle * c.hashlimit) if live_bucket else None
            yield {
                "ip": source.ip,
                "idle": round(now - source.last, 3),
                "recent": {"hits": hits} if hits else None,
                "hashlimit": {"tokens": round(tokens, 2)} if tokens is not None else None,
                "flows": source.flows,
                "drops": source.drops,
            }

    def tracked(self) -> int:
        """Untrusted sources tracked now (for the table-occupancy metric and alarm)."""
        return len(self._sources)

    def purge(self, now: float) -> None:
        """Periodic housekeeping (the node's observer calls it): expired entries go."""
        self._expire(now)
        self.blacklist.purge(now)
        while self._authenticated:
            ip, until = next(iter(self._authenticated.items()))
            if until > now:
                break
            del self._authenticated[ip]

    def counters(self) -> dict[str, Any]:
        """The per-rule counters as plain data (API, metrics)."""
        return {
            "inspected": self.inspected,
            "accepted_untrusted": self.accepted_untrusted,
            "accepted_authenticated": self.accepted_authenticated,
            "dropped": dict(self.drops),
            "signatures": dict(self.signature_drops),
            "auto_blocks": dict(self.auto_blocks),
            "blacklist_entries": len(self.blacklist),
            "sources_tracked": len(self._sources),
        }
