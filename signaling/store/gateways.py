"""Mapping gateways (ingress, customers), routing gateways (egress, carriers) and gateway groups.

Field names follow the reference (architecture CAP-2.2/2.3, part 2 §A.13/§D, caller-ID §8); the
SIP and media layers read the DTMF, codec, media-proxy and session-timer settings as they are.
Dial plans are stored as text in the reference's syntax and compiled by the dial-plan module;
an empty one changes nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from signaling.media.codec_policy import policy_from_settings
from signaling.store.errors import ValidationError
from signaling.store.record import Link, Record, Ref, at_least, between, digit_prefixes, not_blank

AuthMode = Literal["ip", "ip_port", "password"]
DtmfMode = Literal["auto", "rfc2833", "info", "inband"]
MediaProxy = Literal["off", "on", "auto", "must-on"]
CodecMode = Literal["auto", "specified"]
G729Mode = Literal["auto", "g729", "g729a", "both"]
CallerSource = Literal["from", "rpid", "display"]
Transport = Literal["udp", "tcp", "tls"]
IdentityHeader = Literal["none", "passthrough", "caller"]
PrivacyMode = Literal["none", "passthrough", "id"]
MappingGatewayMode = Literal["all", "allow", "deny"]

_RTP_DYNAMIC = (96, 127)
_SIP_FAILURE = (300, 699)


def parse_address(text: str) -> tuple[str, int | None]:
    """``203.0.113.10``, ``203.0.113.10:5062`` or ``[2001:db8::1]:5062`` → (ip, port or None)."""
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    ip = str(ipaddress.ip_address(host))
    if not port_text:
        return ip, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r}")
    return ip, int(port_text)


def _common_media_checks(gw: MappingGateway | RoutingGateway) -> None:
    between("rfc2833_payload", gw.rfc2833_payload, *_RTP_DYNAMIC)
    for codec in gw.codecs:
        if not codec.strip():
            raise ValidationError("codecs", "a codec name is blank")
    if gw.codec_mode == "specified" and not gw.codecs:
        raise ValidationError("codecs", "codec_mode 'specified' needs at least one codec")
    try:  # what the call path will make of them (signaling/media/codec_policy.py)
        policy_from_settings(
            gw.codecs,
            gw.codec_mode,
            gw.allow_transcoding,
            gw.g729_mode,
            rfc2833_payload=gw.rfc2833_payload,
            use_peer_rfc2833=gw.use_peer_rfc2833,
        )
    except ValueError as exc:
        key, _, why = str(exc).partition(": ")
        raise ValidationError(key, why) from None
    at_least("max_calls", gw.max_calls, 0)
    at_least("max_cps", gw.max_cps, 0)
    at_least("max_duration", gw.max_duration, 1)


@dataclass(frozen=True, slots=True)
class GatewayGroup(Record):
    """Routing gateways sharing a line budget; ``reserved_lines`` of it are kept for protect
    routes (ordinary traffic is refused once ``active >= max_calls - reserved_lines``)."""

    TABLE: ClassVar[str] = "gateway_group"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("name",),)

    name: str
    #: Total lines of the group; None = no group limit.
    max_calls: int | None = None
    reserved_lines: int = 0
    memo: str = ""
    id: int = 0

    def check(self) -> None:
        not_blank("name", self.name)
        at_least("max_calls", self.max_calls, 0)
        at_least("reserved_lines", self.reserved_lines, 0)
        if self.max_calls is not None and self.reserved_lines > self.max_calls:
            raise ValidationError("reserved_lines", "exceeds max_calls")


@dataclass(frozen=True, slots=True)
class MappingGateway(Record):
    TABLE: ClassVar[str] = "mapping_gateway"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("name",), ("username",))

    name: str
    #: The billing account ("who pays you").
    account_id: Annotated[int, Ref("account")]
    auth_mode: AuthMode = "ip"
    #: Source addresses, "IP" or "IP:port" (ip_port mode needs the port).
    addresses: tuple[str, ...] = ()
    #: Digest user and password (password mode).
    username: str | None = None
    password: str = ""
    #: The client rate table; None = the account's rate group.
    rate_group_id: Annotated[int | None, Ref("rate_group")] = None
    #: Callee prefixes this gateway may send; empty = all.
    prefixes: tuple[str, ...] = ()
    #: Routing gateway groups the calls may use, in order; empty = any routing gateway.
    routing_groups: Annotated[
        tuple[int, ...],
        Link(
            "mapping_gateway_routing_group",
            "mapping_gateway_id",
            "gateway_group_id",
            "gateway_group",
            ordered=True,
        ),
    ] = ()
    callee_dial_plan: str = ""
    caller_dial_plan: str = ""
    #: Where the caller number is read: From, Remote-Party-ID or the From display name.
    caller_source: CallerSource = "from"
    #: "Support Privacy": keep the caller's Privacy header for the routing gateway.
    support_privacy: bool = False
    #: Caller number prefixes: only these may call (empty = anyone), these may not.
    caller_whitelist: tuple[str, ...] = ()
    caller_blacklist: tuple[str, ...] = ()
    max_calls: int | None = None
    max_cps: int | None = None
    #: Longest call, seconds ("Conversation Limitation"); None = no limit.
    max_duration: int | None = None
    dtmf: DtmfMode = "auto"
    #: "RFC2833 Payload": telephone-event's payload type in the offers sent to the gateway.
    rfc2833_payload: int = 101
    #: "Use peer RFC2833 ability": unchecked, those offers always carry telephone-event.
    use_peer_rfc2833: bool = True
    codecs: tuple[str, ...] = ()
    codec_mode: CodecMode = "auto"
    allow_transcoding: bool = False
    g729_mode: G729Mode = "auto"
    #: None = the system's SS_MEDIAPROXYMODE.
    media_proxy: MediaProxy | None = None
    session_timer: bool = True
    locked: bool = False
    memo: str = ""
    id: int = 0

    def check(self) -> None:
        not_blank("name", self.name)
        for text in self.addresses:
            try:
                _, port = parse_address(text)
            except ValueError as exc:
                raise ValidationError("addresses", f"{text!r}: {exc}") from None
            if self.auth_mode == "ip_port" and port is None:
                raise ValidationError("addresses", f"{text!r}: ip_port authentication needs IP:port")
        if self.auth_mode in ("ip", "ip_port") and not self.addresses:
            raise ValidationError("addresses", f"{self.auth_mode} authentication needs an address")
        if self.auth_mode == "password":
            if not self.username:
                raise ValidationError("username", "password authentication needs a user name")
            not_blank("password", self.password)
        if self.username is not None and (not self.username or any(c in " @:;" for c in self.username)):
            raise ValidationError("username", "must be non-empty, without spaces, '@', ':' or ';'")
        digit_prefixes("prefixes", self.prefixes)
        digit_prefixes("caller_whitelist", self.caller_whitelist)
        digit_prefixes("caller_blacklist", self.caller_blacklist)
        _common_media_checks(self)


@dataclass(frozen=True, slots=True)
class RoutingGateway(Record):
    TABLE: ClassVar[str] = "routing_gateway"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("name",),)

    name: str
    host: str = ""
    port: int = 5060
    transport: Transport = "udp"
    #: Local address calls to this gateway leave from; "" = the default.
    source_ip: str = ""
    #: Destination prefixes served; empty = every destination.
    prefixes: tuple[str, ...] = ()
    #: Lower is tried first.
    priority: int = 1
    #: Share of traffic among gateways of equal rank.
    weight: int = 100
    #: The clearing (vendor) account ("who you pay").
    account_id: Annotated[int | None, Ref("account")] = None
    #: The vendor rate table (cost side).
    rate_group_id: Annotated[int | None, Ref("rate_group")] = None
    max_calls: int | None = None
    max_cps: int | None = None
    max_duration: int | None = None
    #: Digits removed from the front of the callee, then ``add_prefix`` put in their place.
    strip_digits: int = 0
    add_prefix: str = ""
    #: "Gateway prefix": prepended last, for the carrier to recognise and strip (e.g. "*99").
    tech_prefix: str = ""
    callee_dial_plan: str = ""
    caller_dial_plan: str = ""
    #: Caller number pool (replaces the caller in From and PAI); order per
    #: FORWARD_SIGNAL_REWRITE_SEQUENCE.
    caller_pool: tuple[str, ...] = ()
    #: Concurrent uses of one pool number ("Multiplexes"); 0 = unlimited.
    caller_pool_multiplex: int = 0
    pai: IdentityHeader = "caller"
    privacy: PrivacyMode = "passthrough"
    ppi: IdentityHeader = "none"
    forward_all_headers: bool = False
    forward_headers: tuple[str, ...] = ()
    #: SIP codes after which no further gateway is tried.
    stop_switch_codes: tuple[int, ...] = ()
    #: "Switch gateway until connect": fail over to the next gateway on failure.
    switch_until_connect: bool = True
    #: "Set to protect route": tried only when every normal gateway failed or is full.
    protect: bool = False
    #: "Extension mode": after the longest-prefix gateways fail, try shorter prefixes.
    extension_mode: bool = False
    #: "Mapping gateway name": all customers, only ``mapping_gateways``, or all but them.
    mapping_gateway_mode: MappingGatewayMode = "all"
    mapping_gateways: Annotated[
        tuple[int, ...],
        Link(
            "routing_gateway_mapping_gateway", "routing_gateway_id", "mapping_gateway_id", "mapping_gateway"
        ),
    ] = ()
    #: Gateway groups the gateway belongs to.
    groups: Annotated[
        tuple[int, ...],
        Link("gateway_group_member", "routing_gateway_id", "gateway_group_id", "gateway_group"),
    ] = ()
    #: "Calculate routing quality in real time" (ASR/ACD sorting).
    calculate_quality: bool = True
    dtmf: DtmfMode = "auto"
    #: "RFC2833 Payload": telephone-event's payload type in the offers sent to the gateway.
    rfc2833_payload: int = 101
    #: "Use peer RFC2833 ability": unchecked, those offers always carry telephone-event.
    use_peer_rfc2833: bool = True
    codecs: tuple[str, ...] = ()
    codec_mode: CodecMode = "auto"
    allow_transcoding: bool = False
    g729_mode: G729Mode = "auto"
    media_proxy: MediaProxy | None = None
    session_timer: bool = True
    #: Outbound registration to the carrier, when it wants one.
    register_username: str = ""
    register_password: str = ""
    register_server: str = ""
    locked: bool = False
    memo: str = ""
    id: int = 0

    def check(self) -> None:
        not_blank("name", self.name)
        not_blank("host", self.host)
        between("port", self.port, 1, 65535)
        if self.source_ip:
            try:
                ipaddress.ip_address(self.source_ip)
            except ValueError:
                raise ValidationError("source_ip", f"{self.source_ip!r} is not an IP address") from None
        digit_prefixes("prefixes", self.prefixes)
        at_least("priority", self.priority, 0)
        at_least("weight", self.weight, 0)
        at_least("strip_digits", self.strip_digits, 0)
        for name in ("add_prefix", "tech_prefix"):
            value = getattr(self, name)
            if value:
                digit_prefixes(name, (value,))
        digit_prefixes("caller_pool", self.caller_pool)
        at_least("caller_pool_multiplex", self.caller_pool_multiplex, 0)
        for header in self.forward_headers:
            if not header or any(c.isspace() or c == ":" for c in header):
                raise ValidationError("forward_headers", f"{header!r} is not a header name")
        for code in self.stop_switch_codes:
            if not _SIP_FAILURE[0] <= code <= _SIP_FAILURE[1]:
                raise ValidationError("stop_switch_codes", f"{code} is not a SIP failure code (300-699)")
        if self.mapping_gateway_mode == "all" and self.mapping_gateways:
            raise ValidationError("mapping_gateways", "set mapping_gateway_mode to allow or deny")
        _common_media_checks(self)
