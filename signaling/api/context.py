"""What the API works on: the store, its users, and (when it runs inside a node) the node.

``create_app(context)`` takes one :class:`ApiContext`. The store is required; the node's live
calls (:class:`LiveCalls`) and the store router (gateway status, routing analysis with live
counters) are optional, so the same API runs against a bare store (tests, a management-only
process). The clock is the wall clock the API stamps and compares with (tests inject one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from signaling.api.auth import Users
from signaling.store import Store, ValidationError

if TYPE_CHECKING:
    from signaling.callproc.router import StoreRouter

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class LiveCall:
    """A call in progress on the running node."""

    call_id: str
    #: The mapping gateway it came in on, and its billing account (None with static routing).
    ingress: str
    account_id: int | None
    caller: str
    callee: str
    source: str
    #: The routing gateway tried or answering now ("" before the first attempt).
    gateway: str
    attempts: int
    state: str  # "routing", "ringing" or "answered"
    start_time: datetime
    answer_time: datetime | None
    #: Seconds since the answer (0 before it).
    duration: float
    #: Per leg (the reference's Current Call "Caller DTMF" / "Callee DTMF" and codecs,
    #: behaviour 30): the DTMF mode of the caller's and of the carrier's leg ("" before there is
    #: a carrier leg), and the codec each leg talks ("" until the answer tells it).
    caller_dtmf: str = ""
    callee_dtmf: str = ""
    caller_codec: str = ""
    callee_codec: str = ""


class LiveCalls(Protocol):
    """The running node's calls. Both methods are called on the node's event loop."""

    def calls(self) -> list[LiveCall]: ...

    def hangup(self, call_id: str) -> bool:
        """End the call (BYE both legs, CDR "Operator hangup"); False when no such call."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class ApiContext:
    store: Store
    users: Users
    live: LiveCalls | None = None
    router: StoreRouter | None = None
    clock: Callable[[], datetime] = _utc_now
    #: Web Access Control (security A.12): only these source networks reach the API and the web
    #: manager; empty = every address (the listener itself is loopback unless configured).
    allow: tuple[Network, ...] = field(default_factory=tuple)
    #: Set the session cookie with ``Secure`` (the API is served over HTTPS).
    secure_cookie: bool = False
    #: Inside a node: the local IPs a routing gateway's ``source_ip`` may name (a write naming
    #: another is refused); None: not known here (the node skips such a gateway at call time).
    local_ips: frozenset[str] | None = None

    def check_source_ip(self, source_ip: str) -> None:
        """A routing gateway's ``source_ip`` must be one of the node's local IPs (reference
        behaviour 80) when they are known here; ValidationError naming ``source_ip`` if not."""
        allowed = self.local_ips
        if source_ip and allowed is not None and source_ip not in allowed:
            known = ", ".join(sorted(allowed)) or "none: set [sip] local_ips"
            raise ValidationError("source_ip", f"{source_ip} is not one of this node's local IPs ({known})")
