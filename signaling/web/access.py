"""Web Access Control: the management plane's IP whitelist (reference A.12, F.2-13).

When enabled (``SERVER_WEB_ACCESS_CONTROL = On``), an HTTP request to the web manager or the
REST API is served only if its source address is in ``SERVER_WEB_ACCESS_LIST`` (single
addresses and CIDR ranges, IPv4 and IPv6, comma-separated); everything else is refused with 403
(default deny). SIP is not affected: the list guards the HTTP application only.

The source address is the TCP peer's. ``X-Forwarded-For`` is not believed: behind a reverse
proxy on the same host every request would come from the proxy, so put the list on the proxy
instead (docs/web-manager.md).

Both settings are system parameters in the store, so every node sharing a database applies the
same list; a change made on another node takes effect here within :data:`REFRESH_SECONDS`, one
made here at once, without a restart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: How often the middleware re-reads the settings from the store, seconds.
REFRESH_SECONDS = 1.0


def parse_access_list(text: str) -> tuple[IpNetwork, ...]:
    """``"10.0.0.0/24, 192.0.2.7, 2001:db8::/32"`` → networks; ValueError naming a bad entry."""
    networks: list[IpNetwork] = []
    for raw in text.replace("\n", ",").replace(" ", ",").split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    enabled: bool = False
    networks: tuple[IpNetwork, ...] = ()

    def allows(self, address: str | None) -> bool:
        """Whether a request from ``address`` may be served (default deny when enabled)."""
        if not self.enabled:
            return True
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == n.version and ip in n for n in self.networks)

    def describe(self) -> str:
        return ", ".join(str(n) for n in self.networks)


class AccessControlMiddleware:
    """ASGI middleware refusing HTTP (and WebSocket) requests the policy does not allow.

    ``policy`` is called for the policy in force at each request (cheap: the web manager keeps
    it cached, signaling.web.app)."""

    def __init__(self, app: ASGIApp, policy: Callable[[], AccessPolicy]) -> None:
        self.app = app
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else None
        if self._policy().allows(address):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = f"Web Access Control: {address} is not on the whitelist\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
