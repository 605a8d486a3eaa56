"""The node's own settings from the SS_* parameters, at start and whenever the store's change.

The node's parameters are the defaults, then its file's ``[parameters]``, then the store's
overrides; a store-backed router hands the overrides over at start and again at each reload
that changes them (``StoreRouter.on_parameters``, the reload the routing configuration takes:
docs/routing.md, "Parameters"). :meth:`Settings.apply_parameters` then puts the new values in
place, each where the reference wants it (timers-trace-routing-dialplan.md §1.3, §2.6: "changes
apply immediately to new calls, and in-progress calls keep the values they started with";
behaviour 77):

- ``Node.parameters`` becomes a new dictionary (never changed in place): a call keeps the one
  it started with (``Call.parameters``), so its attempt timeouts (``SS_SIP_TIMEOUT_*``), session
  timers (``SS_SIP_SESSION_*``) and the no-timer cap are those of its start; the next call reads
  the new one.
- The transaction layer gets a new :class:`TimerConfig` (``SS_SIP_RESEND_INTERVAL``): a
  transaction keeps the one it began with.
- ``SS_QOS_SIGNAL`` re-marks the SIP sockets at once (UDP, and the TCP/TLS connections open).
- The NAT keep-alive (``SS_SIP_NAT_KEEP_ALIVE_*``) takes the new message, period and pacing
  from each device's next keep-alive on; an empty message stops it at once.
- The gateway meter's ASR/ACD windows (``SS_GATEWAY_*_RESERVE_*``) start again at new sizes, as
  the router's own do.

Values reaching here were each checked (the store refuses a bad value, and the router skips a
stored one that does not parse, keeping the previous). Should a group of them still not make
a valid setting, that group keeps its previous values, logged and counted by parameter name
(:attr:`Settings.parameter_errors`), and nothing raises into the router's reload.
A mixin of :class:`Node`; it uses only the attributes declared here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from signaling.config import Config
from signaling.observe.gateways import GatewayMeter
from signaling.sip.keepalive import KeepAliveConfig, NatKeepAlive
from signaling.sip.timers import TimerConfig
from signaling.sip.transaction import TransactionLayer
from signaling.sip.transport import SipTransport

__all__ = ["GROUPS", "Settings"]

log = logging.getLogger("softswitch.node")


def _dscp(p: Mapping[str, Any]) -> int:
    value = int(p["SS_QOS_SIGNAL"])
    if not 0 <= value <= 63:
        raise ValueError(f"{value} is outside 0..63")
    return value


#: The parameters that make one setting of the node, and how each setting is built: a group
#: whose values do not build keeps its previous values together.
GROUPS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], object]]] = {
    "timers": (("SS_SIP_RESEND_INTERVAL",), TimerConfig.from_parameters),
    "keepalive": (
        (
            "SS_SIP_NAT_KEEP_ALIVE_MESSAGE",
            "SS_SIP_NAT_KEEP_ALIVE_PERIOD",
            "SS_SIP_NAT_KEEP_ALIVE_SEND_INTERVAL",
            "SS_SIP_NAT_KEEP_ALIVE_SEND_ONE_TIME",
        ),
        KeepAliveConfig.from_parameters,
    ),
    "dscp": (("SS_QOS_SIGNAL",), _dscp),
    "meter": (
        (
            "SS_GATEWAY_ASR_RESERVE_TIME",
            "SS_GATEWAY_ASR_RESERVE_SEPARATE",
            "SS_GATEWAY_ACD_RESERVE_TIME",
            "SS_GATEWAY_ACD_RESERVE_SEPARATE",
        ),
        GatewayMeter.sizes,
    ),
}


class Settings:
    config: Config
    parameters: dict[str, Any]
    layer: TransactionLayer
    transport: SipTransport
    keepalive: NatKeepAlive
    gateways: GatewayMeter
    #: node settings refused (their group kept its previous values), by parameter name
    parameter_errors: dict[str, int]

    if TYPE_CHECKING:

        def now(self) -> float: ...

        def _reschedule(self) -> None: ...

    def apply_parameters(self, overrides: Mapping[str, Any]) -> None:
        """The store's SS_* ``overrides`` over the node's file: new calls and transactions use
        them, running ones keep theirs (the module doc). Never raises."""
        merged = dict(self.config.parameters)
        merged.update(overrides)
        old = self.parameters
        if merged == old:
            return
        built: dict[str, object] = {}
        for group, (names, build) in GROUPS.items():
            if all(merged.get(n) == old.get(n) for n in names):
                continue
            try:
                built[group] = build(merged)
            except (ValueError, TypeError, KeyError) as exc:
                for name in names:
                    if merged.get(name) != old.get(name):
                        self.parameter_errors[name] = self.parameter_errors.get(name, 0) + 1
                        log.error(
                            "parameter %s = %r not applied (%s): the node keeps %r",
                            name,
                            merged.get(name),
                            exc,
                            old.get(name),
                        )
                    merged[name] = old.get(name)
        self.parameters = merged  # a new dictionary: running calls keep theirs
        timers = built.get("timers")
        if isinstance(timers, TimerConfig):
            self.layer.timers = timers  # running transactions keep theirs
        dscp = built.get("dscp")
        if isinstance(dscp, int):
            self.transport.set_dscp(dscp)
        keepalive = built.get("keepalive")
        if isinstance(keepalive, KeepAliveConfig):
            try:
                now = self.now()
            except RuntimeError:  # before the node runs (no loop): nothing registered to move
                now = 0.0
            self.keepalive.configure(keepalive, now)
            self._reschedule()
        sizes = built.get("meter")
        if isinstance(sizes, tuple):
            self.gateways.resize(*sizes)
        changed = sorted(n for n in merged if merged[n] != old.get(n))
        log.info("parameters changed: %s", ", ".join(f"{n} = {merged[n]!r}" for n in changed))
