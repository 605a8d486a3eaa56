"""The one small interface between the SIP layer and routing/billing.

The B2BUA asks :meth:`Router.admit` once per new call (who is calling, from where, to which
number) and gets either a rejection (a SIP code and a termination reason for the CDR) or the
ordered routes to try plus the longest the call may last. It reports the attempt's progress,
the answer and the end (:class:`CallRecord`), and the router may later ask for a hang-up (credit
exhausted) through the callback the B2BUA registers.

:class:`StaticRouter` serves the gateways of the configuration file: ingress by source address,
egress by longest prefix, then priority (lower first, the VOS3000 rule), then name. The store-
backed router (:class:`signaling.callproc.StoreRouter`, docs/routing.md) replaces it behind the
same interface when the node is configured with a store.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from signaling.config import Config, MappingGateway, RoutingGateway
from signaling.media.codec_policy import GatewayCodecPolicy, policy_from_settings
from signaling.sip.identity import IdentityPolicy

#: Termination reasons (CDR), the ones the reference names verbatim first.
NO_MATCHING_RATE = "No Matching Rate"
NO_AVAILABLE_ROUTER = "NoAvailableRouter"
ALL_GATEWAY_BUSY = "AllGatewayBusy"
UNKNOWN_GATEWAY = "UnknownGateway"
NOT_ALLOWED = "CalleeNotAllowed"
#: The callee is a phone of this node that is not registered (timers-trace §2.6, behaviour 64).
CALLED_NOT_ONLINE = "The called not online"
#: A phone's REGISTER or INVITE from outside its account's IP whitelist (403, behaviour 60; the
#: reference's "source IP not allowed (IP whitelist)").
IP_NOT_ALLOWED = "IP not allowed"
#: A gateway without codec settings: auto negotiation, any codec, no conversion.
NO_CODEC_SETTINGS = GatewayCodecPolicy()
#: The header of an INVITE one node of a database forwards to another for a phone registered
#: there (signaling/callproc/cluster.py: who sends it, its HMAC; docs/routing.md).
NODE_HOP_HEADER = "X-Softswitch-Hop"


@dataclass(frozen=True, slots=True)
class InboundCall:
    call_id: str
    source: tuple[str, int]
    transport: str
    caller: str
    callee: str
    #: The digest user name, when the request was authenticated by password.
    auth_user: str | None = None
    #: Other caller sources a mapping gateway may choose ("Caller" = Remote-Party-ID / Display).
    caller_rpid: str = ""
    caller_display: str = ""
    #: The INVITE's node-hop header (NODE_HOP_HEADER), "" when it has none: the router
    #: authenticates it, never trusts it.
    hop: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    gateway: str
    host: str
    port: int
    transport: str
    callee: str
    caller: str
    stop_switch_codes: frozenset[int] = frozenset()
    #: the routing gateway's own media proxy setting, "" = none (signaling/media/proxy_mode.py)
    media_proxy: str = ""
    dtmf: str = "auto"
    session_timer: bool = True
    username: str | None = None
    password: str | None = None
    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    #: the caller number pool to draw From/PAI from (kept by the node, per gateway), if any
    caller_pool: tuple[str, ...] = ()
    caller_pool_multiplex: int = 1
    #: the pool's order, FORWARD_SIGNAL_REWRITE_SEQUENCE (0 random, 1 in turn), as the router
    #: read it (the store's, at its last refresh); None: the node's own parameter
    caller_pool_sequence: int | None = None
    #: caller rewriting applied after the pool (the gateway's "caller dial plan")
    caller_strip: int = 0
    caller_add: str = ""
    #: the Request-URI to send (a registered phone's Contact); None: ``sip:callee@host:port``
    uri: str | None = None
    #: the routing gateway's codec settings (the callee leg's), docs/b2bua.md "Codecs"
    codecs: GatewayCodecPolicy = NO_CODEC_SETTINGS
    #: headers the INVITE carries for this route (a node hop's proof, NODE_HOP_HEADER)
    headers: tuple[tuple[str, str], ...] = ()
    #: the local IP the gateway's messages leave from ("" = the main listener's); one the
    #: node does not have makes the route unusable (reference behaviour 80)
    source_ip: str = ""


@dataclass(frozen=True, slots=True)
class PhoneContact:
    """Where a registered phone is reached: its Contact URI, and the address and transport its
    REGISTER came from (behind NAT the Contact names a private address)."""

    uri: str
    host: str
    port: int
    transport: str
    #: the node of the database holding the registration, "" for this node: host and port are
    #: then that node's SIP address, where the call is forwarded (docs/routing.md)
    node: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    status: int
    reason: str
    termination: str


@dataclass(slots=True)
class Admission:
    ingress: str
    routes: list[Route] = field(default_factory=list)
    rejection: Rejection | None = None
    #: Longest the call may last, seconds (balance, limits); None = no limit from routing.
    max_duration: float | None = None
    #: the mapping gateway's own media proxy setting, "" = none: the system's SS_MEDIAPROXYMODE
    #: (signaling/media/proxy_mode.py decides per attempt with the route's)
    media_proxy: str = ""
    dtmf: str = "auto"
    session_timer: bool = True
    #: True when the ingress authenticates by password and this request carried none yet.
    needs_auth: bool = False
    #: the caller's Privacy header may reach carriers in passthrough ("Support Privacy")
    support_privacy: bool = False
    #: the mapping gateway's codec settings (the caller leg's), docs/b2bua.md "Codecs"
    codecs: GatewayCodecPolicy = NO_CODEC_SETTINGS


@dataclass(slots=True)
class CallRecord:
    """What the SIP layer knows at the end of a call: the CDR's signalling half."""

    call_id: str
    ingress: str
    caller: str
    callee: str
    source: tuple[str, int]
    start: float
    ring: float | None = None
    answer: float | None = None
    end: float | None = None
    gateway: str | None = None
    attempts: int = 0
    final_status: int | None = None
    termination: str = ""
    #: "caller", "callee" or "switch"
    ended_by: str = ""
    #: RTP packets the media engine received from each party ("caller", "callee")
    media_packets: dict[str, int] = field(default_factory=dict)
    #: The caller acknowledged the answer (ACK of our 200 OK): the call connected end to end.
    #: An answered call that never did is billed with the rate of response (docs/billing.md).
    established: bool = False
    #: what the engine measured of each party's stream: (expected, lost, jitter ms)
    media_quality: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    #: the answered call's codecs on the caller's leg and on the carrier's (transcoding when
    #: they differ); empty when unknown (no SDP, no audio)
    codec_in: str = ""
    codec_out: str = ""

    @property
    def duration(self) -> float:
        if self.answer is None or self.end is None:
            return 0.0
        return max(0.0, self.end - self.answer)


class Router(Protocol):
    def admit(self, call: InboundCall, now: float) -> Admission: ...

    def attempt_started(self, call_id: str, route: Route, now: float) -> bool | None:
        """The node is about to send the INVITE to ``route``; False: do not, try the next
        (its lines are all taken)."""
        ...

    def attempt_progress(self, call_id: str, route: Route, status: int, now: float) -> None:
        """The attempt on ``route`` alerted: a 180 or 183."""
        ...

    def attempt_ended(self, call_id: str, route: Route, status: int, now: float) -> None: ...

    def call_answered(self, call_id: str, route: Route, now: float) -> None: ...

    def call_ended(self, record: CallRecord) -> None: ...

    def on_hangup_request(self, callback: Callable[[str, str], object]) -> None:
        """The router calls ``callback(call_id, termination)`` to end a call (credit gone)."""
        ...

    def on_locate(self, lookup: Callable[[str], PhoneContact | None]) -> None:
        """The node's registrar: ``lookup(number)`` is where a registered phone is (None:
        not registered), for calls to phones."""
        ...

    def may_register(self, username: str, aor: str, now: float) -> bool:
        """Whether the digest user ``username`` may register the address-of-record ``aor``
        (the user part of its To URI) at node time ``now``."""
        ...


#: The codec keys of a gateway that has none in the file.
_NO_SETTINGS: tuple[object, ...] = ((), "auto", False, "auto", None, True)


def _matches(prefixes: list[str], number: str) -> int | None:
    """Length of the longest prefix matching ``number``, or None."""
    best: int | None = None
    for p in prefixes:
        if number.startswith(p) and (best is None or len(p) > best):
            best = len(p)
    return best


class StaticRouter:
    """Routes from the configuration file; keeps the last CDRs in memory."""

    def __init__(self, config: Config, keep_records: int = 10_000) -> None:
        self.config = config
        self.records: deque[CallRecord] = deque(maxlen=keep_records)
        self._hangup: Callable[[str, str], object] | None = None
        #: each routing gateway's identity policy (frozen), built once rather than per call
        self._policies: dict[str, IdentityPolicy] = {}
        #: each gateway's codec policy, by ("mapping" | "routing", name), with its settings
        self._codecs: dict[tuple[str, str], tuple[tuple[object, ...], GatewayCodecPolicy]] = {}

    def _codec_policy(self, kind: str, gw: MappingGateway | RoutingGateway) -> GatewayCodecPolicy:
        wanted = (
            tuple(gw.codecs),
            gw.codec_mode,
            gw.allow_transcoding,
            gw.g729_mode,
            gw.rfc2833_payload,
            gw.use_peer_rfc2833,
        )
        known = self._codecs.get((kind, gw.name))
        if known is None or known[0] != wanted:
            policy = NO_CODEC_SETTINGS
            if wanted != _NO_SETTINGS:
                policy = policy_from_settings(
                    gw.codecs,
                    gw.codec_mode,
                    gw.allow_transcoding,
                    gw.g729_mode,
                    rfc2833_payload=gw.rfc2833_payload,
                    use_peer_rfc2833=gw.use_peer_rfc2833,
                )
            known = self._codecs[(kind, gw.name)] = (wanted, policy)
        return known[1]

    def _policy(self, gw: RoutingGateway) -> IdentityPolicy:
        wanted = (gw.pai, gw.privacy, gw.ppi, gw.extra_headers)
        policy = self._policies.get(gw.name)
        if policy is None or (policy.pai, policy.privacy, policy.ppi, policy.extra_headers) != wanted:
            policy = IdentityPolicy(*wanted)
            self._policies[gw.name] = policy
        return policy

    def _ingress(self, call: InboundCall) -> MappingGateway | None:
        host, port = call.source
        for gw in self.config.mapping_gateways:
            for ip, p in gw.addresses:
                if ip == host and (p is None or p == port):
                    return gw
        if call.auth_user is not None:
            for gw in self.config.mapping_gateways:
                if gw.username == call.auth_user:
                    return gw
        return None

    def gateway_addresses(self) -> set[str]:
        """The IPs of every mapping and routing gateway (the scanner defence trusts them)."""
        ips = {ip for gw in self.config.mapping_gateways for ip, _ in gw.addresses}
        ips.update(gw.address[0] for gw in self.config.routing_gateways)
        return ips

    def gateway_targets(self) -> list[tuple[str, str, int, str]]:
        """(name, host, port, transport) of every routing gateway (OPTIONS probes)."""
        return [(g.name, g.address[0], g.address[1], g.transport) for g in self.config.routing_gateways]

    def gateway_sources(self) -> dict[str, str]:
        """The ``source_ip`` of each routing gateway that has one (OPTIONS probes leave from it)."""
        return {g.name: g.source_ip for g in self.config.routing_gateways if g.source_ip}

    def password_for(self, username: str) -> str | None:
        for gw in self.config.mapping_gateways:
            if gw.username == username:
                return gw.password
        return None

    def admit(self, call: InboundCall, now: float) -> Admission:
        ingress = self._ingress(call)
        if ingress is None:
            if any(gw.password is not None for gw in self.config.mapping_gateways):
                return Admission(ingress="", needs_auth=True)
            return Admission(ingress="", rejection=Rejection(403, "Forbidden", UNKNOWN_GATEWAY))
        admission = Admission(
            ingress=ingress.name,
            media_proxy=ingress.media_proxy or "",
            dtmf=ingress.dtmf,
            session_timer=ingress.session_timer,
            support_privacy=ingress.support_privacy,
            codecs=self._codec_policy("mapping", ingress),
        )
        caller = {"rpid": call.caller_rpid, "display": call.caller_display}.get(ingress.caller_source, "")
        caller = caller or call.caller
        if _matches(ingress.prefixes, call.callee) is None:
            admission.rejection = Rejection(403, "Forbidden", NOT_ALLOWED)
            return admission
        candidates: list[tuple[int, int, str, RoutingGateway]] = []
        for gw in self.config.routing_gateways:
            length = _matches(gw.prefixes, call.callee)
            if length is not None:
                candidates.append((-length, gw.priority, gw.name, gw))
        if not candidates:
            admission.rejection = Rejection(404, "Not Found", NO_MATCHING_RATE)
            return admission
        candidates.sort(key=lambda c: c[:3])
        limit = self.config.parameters["SS_GATEWAY_SWITCH_LIMIT"]
        for _, _, _, gw in candidates[: limit or None]:
            callee = gw.add + call.callee[gw.strip :]
            admission.routes.append(
                Route(
                    gateway=gw.name,
                    host=gw.address[0],
                    port=gw.address[1],
                    transport=gw.transport,
                    callee=callee,
                    caller=caller,
                    stop_switch_codes=gw.stop_switch_codes,
                    media_proxy=gw.media_proxy or "",
                    dtmf=gw.dtmf,
                    session_timer=gw.session_timer,
                    username=gw.username,
                    password=gw.password,
                    identity=self._policy(gw),
                    caller_pool=tuple(gw.caller_pool),
                    caller_pool_multiplex=gw.caller_pool_multiplex,
                    caller_strip=gw.caller_strip,
                    caller_add=gw.caller_add,
                    codecs=self._codec_policy("routing", gw),
                    source_ip=gw.source_ip,
                )
            )
        return admission

    def attempt_started(self, call_id: str, route: Route, now: float) -> None:
        return None

    def attempt_progress(self, call_id: str, route: Route, status: int, now: float) -> None:
        return None

    def attempt_ended(self, call_id: str, route: Route, status: int, now: float) -> None:
        return None

    def call_answered(self, call_id: str, route: Route, now: float) -> None:
        return None

    def call_ended(self, record: CallRecord) -> None:
        if record.end is None:
            record.end = time.time()
        self.records.append(record)

    def on_hangup_request(self, callback: Callable[[str, str], object]) -> None:
        self._hangup = callback

    def on_locate(self, lookup: Callable[[str], PhoneContact | None]) -> None:
        return None  # the configuration file has no phones

    def may_register(self, username: str, aor: str, now: float) -> bool:
        return aor == username
