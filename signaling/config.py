"""The node's configuration file (TOML, or YAML with the same keys), checked at start with
messages that name the file and the bad key's path (``node.toml: parameters.SS_X: unknown
parameter (did you mean SS_Y?)``). ``softswitch check-config FILE`` runs the same checks.

```toml
[sip]
listen = "0.0.0.0:5060"          # UDP and TCP
advertise = "203.0.113.5"        # address put in Via/Contact when listening on a wildcard
local_ips = ["10.0.0.5"]         # more local IPs (same port) a routing gateway may send from
max_calls = 2000                 # the node's concurrent-call capacity (none by default): over it
                                 # a new INVITE gets 503 + Retry-After, "capacity_limit" alarm

[media]
engine = "in-process"            # or "ng" to drive a media node (ours or rtpengine)
ng = "127.0.0.1:2223"            # with engine = "ng"
interface = "127.0.0.1"          # in-process: where RTP ports are opened
interfaces = ["10.0.0.5"]        # further media IPs: a carrier sending from one gets media there

[parameters]                     # system parameters by their VOS3000 names (SS_*, SERVER_*)
SS_SIP_TIMEOUT_INVITE = 10
SERVER_BILLING_HOLD_TIME_PRECISION = 1000

[[mapping_gateway]]              # a customer (ingress)
name = "customer-1"
addresses = ["127.0.0.1"]        # source IP, or IP:port
max_calls = 100
max_cps = 20

[[routing_gateway]]              # a carrier (egress)
name = "carrier-a"
address = "127.0.0.1:5080"
prefixes = [""]
priority = 1
source_ip = "10.0.0.5"           # its calls leave from this local IP ("" = the listen address)
codecs = ["G729"]                # codec settings, on either gateway table (docs/b2bua.md "Codecs"):
codec_mode = "auto"              #   allowed codecs in preference order (empty = any); "auto" or
allow_transcoding = true         #   "specified" (the first of codecs); "Allow codec conversion";
g729_mode = "auto"               #   "G729 negotiation mode": auto, g729, g729a or both

[store]                          # routing and billing from the store instead of the tables above
url = "sqlite:///var/softswitch.db"   # or "postgresql://user@host/db"
node = "sbc-1"                   # this node's name on a shared database (default: the host name)

[api]                            # the REST API (docs/api.md), on the node's loop
listen = "127.0.0.1:8080"        # loopback unless configured
tls_cert = "api.crt"             # HTTPS when both are given (PEM)
tls_key = "api.key"
session_ttl = 28800              # seconds a login session lasts
max_failures_user = 5            # failed logins of one name within failure_window lock it...
max_failures_ip = 20             # ...and of one source address, for lockout_time seconds
failure_window = 900
lockout_time = 900
challenge_after = 3              # failures before the web manager shows its challenge
allow = ["127.0.0.1/32"]         # Web Access Control: source networks allowed (default: any)

[defence]                        # the SIP scanner defence (docs/defence.md has every key)
trusted_sip_ips = ["203.0.113.10", "198.51.100.0/24"]

[alarms]                         # alarm thresholds (docs/observability.md has every key)
duration_too_long = 7200

[overload]                       # the overload guard (docs/sip-auth-registrar-limits.md has every key)
cpu_high = 0.90                  # the loop thread's share of a core that starts shedding new calls
cpu_target = 0.85                # the share admission then steers to

[backup]                         # scheduled backups of the store (signaling/store/backup_schedule.py)
directory = "/var/backups/softswitch"
at = "03:00"                     # daily at this local time; or every_minutes = 360
keep = 7                         # the newest archives kept

[log]
format = "json"                  # or "text" (the default); --log-format overrides
```

Gateways here are the static table the SIP layer runs on (:class:`signaling.routing.StaticRouter`);
with ``[store] url`` set, the store-backed router of signaling.callproc serves accounts, gateways,
rates and CDRs from the database instead, and the gateway tables must be left out.

A file named ``*.yaml`` or ``*.yml`` is read as YAML (PyYAML's safe loader): the same sections as
mappings, ``[[routing_gateway]]`` as a list of mappings. SERVER_* parameters in the file are the
node's defaults for the billing parameters; an override stored in the database wins (as for SS_*).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from signaling import params
from signaling.billing.money import parse_decimal
from signaling.media.codec_policy import CODEC_MODES, policy_from_settings
from signaling.observe.alarms import AlarmConfig
from signaling.sip.blacklist import parse_network
from signaling.sip.defence import DefenceConfig
from signaling.sip.limits import OverloadConfig
from signaling.store import parameters as server_parameters
from signaling.store.backup_schedule import BackupConfig


class ConfigError(ValueError):
    """The configuration is not usable; the message names the key and says what is wrong."""


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or (with a default) a bare address → (ip, port)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{text!r} is not HOST:PORT")
        port = default_port
    elif not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: bad port")
    else:
        port = int(port_text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return str(ip), port


@dataclass(slots=True)
class MappingGateway:
    """A customer's SIP peer: who may send us calls."""

    name: str
    #: (ip, port or None for any port)
    addresses: list[tuple[str, int | None]] = field(default_factory=list)
    #: Digest credentials when the peer authenticates by password instead of by address.
    username: str | None = None
    password: str | None = None
    #: Callee prefixes this customer may call ("" = anything).
    prefixes: list[str] = field(default_factory=lambda: [""])
    max_calls: int | None = None
    max_cps: float | None = None
    media_proxy: str | None = None
    dtmf: str = "auto"
    #: RFC 4028 on this leg.
    session_timer: bool = True
    #: "Caller": the field giving the caller number: from, rpid (Remote-Party-ID), display
    caller_source: str = "from"
    #: "Support Privacy": let the caller's Privacy header through to carriers in passthrough
    support_privacy: bool = False
    #: codec settings of the caller leg (as the store's; docs/b2bua.md "Codecs")
    codecs: list[str] = field(default_factory=list)
    codec_mode: str = "auto"
    allow_transcoding: bool = False
    g729_mode: str = "auto"
    #: DTMF "RFC2833 Payload" (None: offers keep the offerer's number) and "Use peer RFC2833
    #: ability" of the offers sent to this gateway (docs/decisions.md "DTMF")
    rfc2833_payload: int | None = None
    use_peer_rfc2833: bool = True


@dataclass(slots=True)
class RoutingGateway:
    """A carrier: where calls go."""

    name: str
    address: tuple[str, int]
    transport: str = "udp"
    prefixes: list[str] = field(default_factory=lambda: [""])
    priority: int = 0
    #: Digits removed from the front of the callee number, and the prefix put in their place.
    strip: int = 0
    add: str = ""
    #: SIP codes after which no other gateway is tried.
    stop_switch_codes: frozenset[int] = frozenset()
    max_calls: int | None = None
    max_cps: float | None = None
    media_proxy: str | None = None
    dtmf: str = "auto"
    session_timer: bool = True
    username: str | None = None
    password: str | None = None
    #: caller rewriting: digits removed from the front, then this prefix added
    caller_strip: int = 0
    caller_add: str = ""
    #: identity headers toward this carrier (reference §8.2)
    pai: str = "none"
    privacy: str = "passthrough"
    ppi: str = "none"
    #: "none", "all", or a list of extra header names forwarded from the caller's INVITE
    extra_headers: str | tuple[str, ...] = "none"
    #: caller number pool (From and PAI), each number used by at most ``caller_pool_multiplex`` calls
    caller_pool: list[str] = field(default_factory=list)
    caller_pool_multiplex: int = 1
    #: codec settings of the callee leg (as the store's; docs/b2bua.md "Codecs")
    codecs: list[str] = field(default_factory=list)
    codec_mode: str = "auto"
    allow_transcoding: bool = False
    g729_mode: str = "auto"
    #: DTMF "RFC2833 Payload" (None: offers keep the offerer's number) and "Use peer RFC2833
    #: ability" of the offers sent to this gateway (docs/decisions.md "DTMF")
    rfc2833_payload: int | None = None
    use_peer_rfc2833: bool = True
    #: the local IP this gateway's calls (and OPTIONS probes) leave from, one of the node's
    #: local IPs (:meth:`Config.local_ip_set`); "" = the main SIP listener
    source_ip: str = ""


@dataclass(slots=True)
class Config:
    sip_listen: tuple[str, int] = ("0.0.0.0", 5060)
    sip_advertise: str | None = None
    #: ``[sip] local_ips``: more local IPs the node listens on (same port as ``sip_listen``)
    #: and that routing gateways may send from (their ``source_ip``); docs/b2bua.md
    sip_local_ips: list[str] = field(default_factory=list)
    #: ``[sip] max_calls``: calls the node holds at once (None: no node-wide cap); a new INVITE
    #: over it is refused 503 + Retry-After before any call state (docs/b2bua.md, behaviour 66)
    sip_max_calls: int | None = None
    #: SIP over TLS: listen address, certificate chain and key (PEM); toward carriers, whether
    #: their certificates are checked (against ``sip_tls_ca`` or the system's trust store)
    sip_tls_listen: tuple[str, int] | None = None
    sip_tls_cert: str | None = None
    sip_tls_key: str | None = None
    sip_tls_verify: bool = False
    sip_tls_ca: str | None = None
    media_engine: str = "in-process"
    media_ng: tuple[str, int] | None = None
    media_interface: str = "127.0.0.1"
    #: ``[media] interfaces``: further local IPs the in-process engine (or the media node) has
    #: media on; a carrier whose gateway sends from one of them (its ``source_ip``), or a caller
    #: that reached the node on one, gets its media there (docs/b2bua.md "Local IPs")
    media_interfaces: list[str] = field(default_factory=list)
    media_advertise: str | None = None
    media_workers: int | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: params.resolve({}))
    mapping_gateways: list[MappingGateway] = field(default_factory=list)
    routing_gateways: list[RoutingGateway] = field(default_factory=list)
    trace: TraceConfig = field(default_factory=lambda: TraceConfig())  # noqa: PLW0108 (defined below)
    #: ``[store] url``: routing and billing from this store (None: the static tables above).
    store_url: str | None = None
    #: ``[store] node``: this node's name in the store's reservations (None: the host name).
    store_node: str | None = None
    #: ``[defence]``: the SIP scanner defence (signaling/sip/defence.py).
    defence: DefenceConfig = field(default_factory=DefenceConfig)
    #: ``[alarms]``: alarm thresholds (signaling/observe/alarms.py).
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    #: ``[overload]``: the overload guard's marks (signaling/sip/limits.py).
    overload: OverloadConfig = field(default_factory=OverloadConfig)
    #: ``[backup]``: scheduled backups of the store (None: none).
    backup: BackupConfig | None = None
    #: ``[log] format``: "text" or "json"; ``[log] level`` (None: the command line's).
    log_format: str = "text"
    log_level: str | None = None
    #: ``[api]``: the REST API; None = not served.
    api: ApiConfig | None = None

    def local_ip_set(self) -> frozenset[str]:
        """The IPs a routing gateway's ``source_ip`` may name: ``[sip] local_ips`` and the
        listen address's IP, unless that is a wildcard (0.0.0.0, ::), which names no one IP."""
        listen = self.sip_listen[0]
        implicit = () if _is_wildcard(listen) else (_canonical_ip(listen),)
        return frozenset((*self.sip_local_ips, *implicit))


@dataclass(slots=True)
class ApiConfig:
    """``[api]``: the REST API (signaling/api, docs/api.md), served on the node's loop."""

    listen: tuple[str, int] = ("127.0.0.1", 8080)
    tls_cert: str | None = None
    tls_key: str | None = None
    session_ttl: int = 8 * 3600
    max_failures_user: int = 5
    max_failures_ip: int = 20
    failure_window: int = 900
    lockout_time: int = 900
    challenge_after: int = 3
    #: Web Access Control (security A.12): CIDR networks allowed to reach it; empty = any.
    allow: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TraceConfig:
    """``[trace]``: the debug trace at start (the admin API turns it on and off at run time)."""

    enabled: bool = False
    all_calls: bool = False
    numbers: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    registrations: bool = False
    length_minutes: float | None = None
    directory: str = "trace"


_TOP_KEYS = (
    "sip",
    "media",
    "parameters",
    "mapping_gateway",
    "routing_gateway",
    "trace",
    "store",
    "api",
    "defence",
    "alarms",
    "overload",
    "backup",
    "log",
)
_API_KEYS = (
    "enabled",
    "listen",
    "tls_cert",
    "tls_key",
    "session_ttl",
    "max_failures_user",
    "max_failures_ip",
    "failure_window",
    "lockout_time",
    "challenge_after",
    "allow",
)
_STORE_KEYS = ("url", "node")
_TRACE_KEYS = ("enabled", "all_calls", "numbers", "gateways", "registrations", "length_minutes", "directory")
_SIP_KEYS = (
    "listen",
    "advertise",
    "local_ips",
    "max_calls",
    "tls_listen",
    "tls_cert",
    "tls_key",
    "tls_verify",
    "tls_ca",
)
_MEDIA_KEYS = ("engine", "ng", "interface", "interfaces", "advertise", "workers")
#: A gateway's codec settings, named as the store's fields (signaling/store/gateways.py).
_CODEC_KEYS = (
    "codecs",
    "codec_mode",
    "allow_transcoding",
    "g729_mode",
    "rfc2833_payload",
    "use_peer_rfc2833",
)
_MAPPING_KEYS = (
    "name",
    "addresses",
    "username",
    "password",
    "prefixes",
    "max_calls",
    "max_cps",
    "media_proxy",
    "dtmf",
    "session_timer",
    "caller_source",
    "support_privacy",
    *_CODEC_KEYS,
)
_ROUTING_KEYS = (
    "name",
    "address",
    "transport",
    "prefixes",
    "priority",
    "strip",
    "add",
    "stop_switch_codes",
    "max_calls",
    "max_cps",
    "media_proxy",
    "dtmf",
    "session_timer",
    "username",
    "password",
    "caller_strip",
    "caller_add",
    "pai",
    "privacy",
    "ppi",
    "extra_headers",
    "caller_pool",
    "caller_pool_multiplex",
    "source_ip",
    *_CODEC_KEYS,
)
_DTMF_MODES = ("auto", "rfc2833", "info", "inband")
_PROXY_MODES = ("off", "on", "auto", "must-on")


def _check_keys(table: Mapping[str, object], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if not isinstance(key, str):  # YAML: `on:` or `1:` as a key
            raise ConfigError(f"{where}{key!r}: keys must be text (quote it)")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}{key}: unknown key{hint}")


class _Table:
    """Typed reads from one TOML table, each error naming ``where + key``."""

    def __init__(self, table: object, where: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{where.rstrip('.')}: expected a table")
        self.table: dict[str, object] = table
        self.where = where

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.where}{key}: {why}")

    def text(self, key: str, default: str | None = None, *, choices: Sequence[str] = ()) -> str | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, "expected text")
        if choices and value.lower() not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}")
        return value.lower() if choices else value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise self.fail(key, "required")
        return value

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, f"expected an integer in {lo}..{hi}")
        return value

    def number(self, key: str) -> float | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(key, "expected a positive number")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value

    def strings(self, key: str, default: list[str]) -> list[str]:
        value = self.table.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        return list(value)

    def address(self, key: str, default_port: int | None = None) -> tuple[str, int]:
        value = self.required_text(key)
        try:
            return parse_host_port(value, default_port)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None


def _prefixes(t: _Table) -> list[str]:
    prefixes = t.strings("prefixes", [""])
    for p in prefixes:
        if p and not all(c.isdigit() or c in "*#+" for c in p):
            raise t.fail("prefixes", f"{p!r} is not a number prefix")
    return prefixes


def _mapping(raw: object, where: str) -> MappingGateway:
    t = _Table(raw, where)
    _check_keys(t.table, _MAPPING_KEYS, where)
    addresses: list[tuple[str, int | None]] = []
    for text in t.strings("addresses", []):
        try:
            if text.count(":") == 1 or text.startswith("["):
                host, port = parse_host_port(text)
                addresses.append((host, port))
            else:
                addresses.append((str(ipaddress.ip_address(text)), None))
        except ValueError as exc:
            raise t.fail("addresses", str(exc)) from None
    gw = MappingGateway(
        name=t.required_text("name"),
        addresses=addresses,
        username=t.text("username"),
        password=t.text("password"),
        prefixes=_prefixes(t),
        max_calls=t.integer("max_calls", 0, 10_000_000),
        max_cps=t.number("max_cps"),
        media_proxy=t.text("media_proxy", choices=_PROXY_MODES),
        dtmf=t.text("dtmf", "auto", choices=_DTMF_MODES) or "auto",
        session_timer=t.boolean("session_timer", True),
        caller_source=t.text("caller_source", "from", choices=("from", "rpid", "display")) or "from",
        support_privacy=t.boolean("support_privacy", False),
        **_codec_settings(t),
    )
    if not gw.addresses and gw.password is None:
        raise t.fail("addresses", "a mapping gateway needs addresses or a password")
    return gw


def _routing(raw: object, where: str) -> RoutingGateway:
    t = _Table(raw, where)
    _check_keys(t.table, _ROUTING_KEYS, where)
    codes = t.table.get("stop_switch_codes", [])
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 300 <= c <= 699 for c in codes
    ):
        raise t.fail("stop_switch_codes", "expected a list of SIP codes 300..699")
    return RoutingGateway(
        name=t.required_text("name"),
        address=t.address("address", 5060),
        transport=t.text("transport", "udp", choices=("udp", "tcp", "tls")) or "udp",
        prefixes=_prefixes(t),
        priority=t.integer("priority", -1_000_000, 1_000_000, 0) or 0,
        strip=t.integer("strip", 0, 64, 0) or 0,
        add=t.text("add", "") or "",
        stop_switch_codes=frozenset(codes),
        max_calls=t.integer("max_calls", 0, 10_000_000),
        max_cps=t.number("max_cps"),
        media_proxy=t.text("media_proxy", choices=_PROXY_MODES),
        dtmf=t.text("dtmf", "auto", choices=_DTMF_MODES) or "auto",
        session_timer=t.boolean("session_timer", True),
        username=t.text("username"),
        password=t.text("password"),
        caller_strip=t.integer("caller_strip", 0, 64, 0) or 0,
        caller_add=t.text("caller_add", "") or "",
        pai=_identity_mode(t, "pai"),
        privacy=t.text("privacy", "passthrough", choices=("none", "passthrough", "id")) or "passthrough",
        ppi=_identity_mode(t, "ppi"),
        extra_headers=_extra_headers(t),
        caller_pool=t.strings("caller_pool", []),
        caller_pool_multiplex=t.integer("caller_pool_multiplex", 1, 100_000, 1) or 1,
        source_ip=_ip(t, "source_ip"),
        **_codec_settings(t),
    )


def _is_wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def _canonical_ip(text: str) -> str:
    """An IP address as the node compares them (``::0:1`` and ``::1`` are one); a host name
    is kept as written."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _ip(t: _Table, key: str) -> str:
    """An optional IP address (canonical form), "" when absent."""
    text = t.text(key, "") or ""
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise t.fail(key, f"{text!r} is not an IP address") from None


def _codec_settings(t: _Table) -> dict[str, Any]:
    """``codecs``, ``codec_mode``, ``allow_transcoding``, ``g729_mode`` and the DTMF
    ``rfc2833_payload``, ``use_peer_rfc2833``: checked together (a
    specified codec needs ``codecs``), each error naming its key."""
    settings: dict[str, Any] = {
        "codecs": t.strings("codecs", []),
        "codec_mode": t.text("codec_mode", "auto", choices=tuple(CODEC_MODES)) or "auto",
        "allow_transcoding": t.boolean("allow_transcoding", False),
        "g729_mode": t.text("g729_mode", "auto", choices=("auto", "g729", "g729a", "both")) or "auto",
        "rfc2833_payload": t.integer("rfc2833_payload", 96, 127),
        "use_peer_rfc2833": t.boolean("use_peer_rfc2833", True),
    }
    try:
        policy_from_settings(**settings)
    except ValueError as exc:
        key, _, why = str(exc).partition(": ")
        raise t.fail(key, why) from None
    return settings


def _identity_mode(t: _Table, key: str) -> str:
    value = t.text(key, "none", choices=("none", "passthrough", "pass through", "caller")) or "none"
    return "passthrough" if value == "pass through" else value


def _extra_headers(t: _Table) -> str | tuple[str, ...]:
    value = t.table.get("extra_headers", "none")
    if value in ("none", "all"):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise t.fail("extra_headers", 'expected "none", "all" or a list of header names')


def _trace(raw: object) -> TraceConfig:
    t = _Table(raw, "trace.")
    _check_keys(t.table, _TRACE_KEYS, "trace.")
    return TraceConfig(
        enabled=t.boolean("enabled", True),
        all_calls=t.boolean("all_calls", False),
        numbers=t.strings("numbers", []),
        gateways=t.strings("gateways", []),
        registrations=t.boolean("registrations", False),
        length_minutes=t.number("length_minutes"),
        directory=t.text("directory", "trace") or "trace",
    )


def _sip(cfg: Config, raw: object) -> None:
    t = _Table(raw, "sip.")
    _check_keys(t.table, _SIP_KEYS, "sip.")
    if "listen" in t.table:
        cfg.sip_listen = t.address("listen", 5060)
    cfg.sip_advertise = t.text("advertise")
    local_ips: list[str] = []
    for text in t.strings("local_ips", []):
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            raise t.fail("local_ips", f"{text!r} is not an IP address") from None
        if _is_wildcard(ip):
            raise t.fail("local_ips", f"{text!r} is a wildcard, not one local IP")
        if ip not in local_ips:
            local_ips.append(ip)
    cfg.sip_local_ips = local_ips
    cfg.sip_max_calls = t.integer("max_calls", 1, 10_000_000)
    if "tls_listen" in t.table:
        cfg.sip_tls_listen = t.address("tls_listen", 5061)
        cfg.sip_tls_cert = t.required_text("tls_cert")
        cfg.sip_tls_key = t.required_text("tls_key")
        for key in ("tls_cert", "tls_key"):
            if not Path(t.table[key]).is_file():  # type: ignore[arg-type]
                raise t.fail(key, "no such file")
    cfg.sip_tls_verify = t.boolean("tls_verify", False)
    cfg.sip_tls_ca = t.text("tls_ca")


def _media(cfg: Config, raw: object) -> None:
    t = _Table(raw, "media.")
    _check_keys(t.table, _MEDIA_KEYS, "media.")
    cfg.media_engine = t.text("engine", "in-process", choices=("in-process", "ng")) or "in-process"
    if "ng" in t.table:
        cfg.media_ng = t.address("ng")
    if cfg.media_engine == "ng" and cfg.media_ng is None:
        raise t.fail("ng", 'required when engine = "ng"')
    cfg.media_interface = t.text("interface", "127.0.0.1") or "127.0.0.1"
    interfaces: list[str] = []
    for text in t.strings("interfaces", []):
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            raise t.fail("interfaces", f"{text!r} is not an IP address") from None
        if _is_wildcard(ip):
            raise t.fail("interfaces", f"{text!r} is a wildcard, not one local IP")
        if ip not in interfaces and ip != _canonical_ip(cfg.media_interface):
            interfaces.append(ip)
    cfg.media_interfaces = interfaces
    cfg.media_advertise = t.text("advertise")
    cfg.media_workers = t.integer("workers", 1, 256)


def _store(cfg: Config, raw: object) -> None:
    t = _Table(raw, "store.")
    _check_keys(t.table, _STORE_KEYS, "store.")
    url = t.required_text("url")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path or path == ":memory:":
            raise t.fail("url", "SQLite needs a file path (sqlite:///var/softswitch.db)")
    elif not url.startswith(("postgresql://", "postgres://")):
        raise t.fail("url", f"{url!r}: expected sqlite:///PATH or postgresql://...")
    cfg.store_url = url
    node = t.text("node")
    if node is not None and (not node or any(c.isspace() for c in node)):
        raise t.fail("node", "expected a name without spaces")
    cfg.store_node = node


def _api(raw: object) -> ApiConfig | None:
    t = _Table(raw, "api.")
    _check_keys(t.table, _API_KEYS, "api.")
    if not t.boolean("enabled", True):
        return None
    api = ApiConfig()
    if "listen" in t.table:
        api.listen = t.address("listen", 8080)
    api.tls_cert = t.text("tls_cert")
    api.tls_key = t.text("tls_key")
    if (api.tls_cert is None) != (api.tls_key is None):
        raise t.fail(
            "tls_key" if api.tls_key is None else "tls_cert", "HTTPS needs both tls_cert and tls_key"
        )
    for key in ("tls_cert", "tls_key"):
        value = t.table.get(key)
        if isinstance(value, str) and not Path(value).is_file():
            raise t.fail(key, "no such file")
    api.session_ttl = t.integer("session_ttl", 60, 30 * 86400, api.session_ttl) or api.session_ttl
    api.max_failures_user = t.integer("max_failures_user", 1, 1000, 5) or 5
    api.max_failures_ip = t.integer("max_failures_ip", 1, 100_000, 20) or 20
    api.failure_window = t.integer("failure_window", 1, 86400, 900) or 900
    api.lockout_time = t.integer("lockout_time", 1, 86400, 900) or 900
    api.challenge_after = t.integer("challenge_after", 1, 1000, 3) or 3
    api.allow = t.strings("allow", [])
    for text in api.allow:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise t.fail("allow", f"{text!r} is not an IP address or CIDR network") from None
    return api


def _parameters(raw: object) -> dict[str, Any]:
    """``[parameters]``: SS_* (and IVR_*) by signaling.params, SERVER_* by the store's table."""
    if not isinstance(raw, dict):
        raise ConfigError("parameters: expected a table")
    _check_keys(raw, [*raw], "parameters.")  # text keys only
    softswitch = {k: v for k, v in raw.items() if not k.startswith("SERVER_")}
    try:
        out = params.resolve(softswitch, "parameters.")
        for name, value in raw.items():
            if name.startswith("SERVER_"):
                out[name] = server_parameters.parse_server(name, value, "parameters.")
    except params.ParameterError as exc:
        raise ConfigError(str(exc)) from None
    return out


def _section(raw: object, where: str, defaults: object, money: Sequence[str] = ()) -> dict[str, Any]:
    """The keys of a table checked against the fields of the frozen dataclass ``defaults``: each
    value must have the default's type (ints are accepted for floats, lists for tuples, money as
    text or an integer); returns the fields set."""
    t = _Table(raw, where)
    names = [f.name for f in dataclasses.fields(defaults)]  # type: ignore[arg-type]
    _check_keys(t.table, names, where)
    return {key: _field_value(t, key, getattr(defaults, key), key in money) for key in t.table}


def _field_value(t: _Table, key: str, default: object, money: bool) -> object:
    value = t.table[key]
    if money:
        if value is False:
            return None
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        amount = parse_decimal(text) if isinstance(text, str) else None
        if amount is None:
            raise t.fail(key, 'expected an amount as text ("10.00") or an integer, or false')
        return amount
    if isinstance(default, bool):
        return t.boolean(key, default)
    if isinstance(default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise t.fail(key, "expected a number >= 0")
        if isinstance(default, int) and not isinstance(value, int):
            raise t.fail(key, "expected a whole number >= 0")
        return float(value) if isinstance(default, float) else value
    if isinstance(default, tuple):
        return tuple(t.strings(key, []))
    if value is not None and not isinstance(value, str):
        raise t.fail(key, "expected text")
    return value


def _defence(raw: object) -> DefenceConfig:
    values = _section(raw, "defence.", DefenceConfig())
    for key in ("trusted_sip_ips", "blacklist"):
        for text in values.get(key, ()):
            try:
                parse_network(text)
            except ValueError as exc:
                raise ConfigError(f"defence.{key}: {exc}") from None
    try:
        return DefenceConfig(**values)
    except ValueError as exc:
        raise ConfigError(f"defence: {exc}") from None


def _alarms(raw: object) -> AlarmConfig:
    values = _section(raw, "alarms.", AlarmConfig(), money=("balance_low",))
    try:
        return AlarmConfig(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"alarms: {exc}") from None


#: the guard's defaults with its optional message-rate marks as numbers, so that the file's
#: values for them are checked as numbers (they stay None, unwatched, unless set)
_OVERLOAD_TYPES = dataclasses.replace(OverloadConfig(), rate_high=1.0, rate_low=1.0)


def _overload(raw: object) -> OverloadConfig:
    values = _section(raw, "overload.", _OVERLOAD_TYPES)
    try:
        return OverloadConfig(**values)
    except ValueError as exc:
        raise ConfigError(f"overload: {exc}") from None


def _backup(raw: object) -> BackupConfig:
    t = _Table(raw, "backup.")
    _check_keys(t.table, ("directory", "at", "every_minutes", "keep"), "backup.")
    directory = t.required_text("directory")
    at = time(3, 0)
    text = t.text("at")
    if text is not None:
        hour, sep, minute = text.partition(":")
        if not (sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise t.fail("at", f'{text!r} is not a time of day HH:MM (e.g. "03:00")')
        at = time(int(hour), int(minute))
    every = t.table.get("every_minutes")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int | float) or not every > 0):
        raise t.fail("every_minutes", "expected a number of minutes > 0")
    if every is not None and text is not None:
        raise t.fail("every_minutes", "give either at (daily) or every_minutes, not both")
    keep = t.table.get("keep", 7)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise t.fail("keep", "expected a whole number of archives >= 1")
    return BackupConfig(directory, at, None if every is None else float(every), keep)


def _log(cfg: Config, raw: object) -> None:
    t = _Table(raw, "log.")
    _check_keys(t.table, ("format", "level"), "log.")
    cfg.log_format = t.text("format", "text", choices=("text", "json")) or "text"
    cfg.log_level = t.text("level", None, choices=("debug", "info", "warning", "error"))


def _operations(cfg: Config, data: Mapping[str, object]) -> None:
    """The store, defence, alarm and log sections."""
    if "store" in data:
        _store(cfg, data["store"])
    if "defence" in data:
        cfg.defence = _defence(data["defence"])
    if "alarms" in data:
        cfg.alarms = _alarms(data["alarms"])
    if "overload" in data:
        cfg.overload = _overload(data["overload"])
    if "backup" in data:
        cfg.backup = _backup(data["backup"])
        if cfg.store_url is None:
            raise ConfigError("backup: a scheduled backup is of the store: set [store] url")
    if "log" in data:
        _log(cfg, data["log"])


def load(data: Mapping[str, object]) -> Config:
    """A checked :class:`Config` from a parsed file (TOML or YAML)."""
    _check_keys(data, _TOP_KEYS, "")
    cfg = Config()
    if "sip" in data:
        _sip(cfg, data["sip"])
    if "media" in data:
        _media(cfg, data["media"])
    if "parameters" in data:
        cfg.parameters = _parameters(data["parameters"])
    if "trace" in data:
        cfg.trace = _trace(data["trace"])
    _operations(cfg, data)
    cfg.api = _api(data["api"]) if "api" in data else None
    for key, build, out in (
        ("mapping_gateway", _mapping, cfg.mapping_gateways),
        ("routing_gateway", _routing, cfg.routing_gateways),
    ):
        items = data.get(key, [])
        if not isinstance(items, list):
            raise ConfigError(f"{key}: expected an array of tables ([[{key}]])")
        names: set[str] = set()
        for i, raw in enumerate(items):
            gw = build(raw, f"{key}[{i}].")
            if gw.name in names:
                raise ConfigError(f"{key}[{i}].name: {gw.name!r} is used twice")
            names.add(gw.name)
            out.append(gw)  # type: ignore[arg-type]
    check_source_ips(cfg)
    if cfg.store_url is not None and (cfg.mapping_gateways or cfg.routing_gateways):
        key = "mapping_gateway" if cfg.mapping_gateways else "routing_gateway"
        raise ConfigError(f"{key}: gateways come from the store when [store] url is set; remove this table")
    return cfg


def check_source_ips(cfg: Config) -> None:
    """Every routing gateway's ``source_ip`` must be one of the node's local IPs (reference
    behaviour 80: an IP outside the configured set cannot be selected)."""
    allowed = cfg.local_ip_set()
    for i, gw in enumerate(cfg.routing_gateways):
        if gw.source_ip and gw.source_ip not in allowed:
            known = ", ".join(sorted(allowed)) or "none: set [sip] local_ips"
            raise ConfigError(
                f"routing_gateway[{i}].source_ip: {gw.source_ip} (gateway {gw.name!r}) is not one "
                f"of this node's local IPs ({known})"
            )


def _is_yaml(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".yaml", ".yml")


def _read(path: str | Path) -> Mapping[str, object]:
    """The parsed file (TOML, or YAML by its suffix); ConfigError naming the file and line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if not _is_yaml(path):
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    import yaml  # noqa: PLC0415 (only for YAML files)

    try:
        data = yaml.safe_load(raw)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (sip:, media:, parameters: ...)")
    return data


def load_file(path: str | Path) -> Config:
    data = _read(path)
    try:
        return load(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
