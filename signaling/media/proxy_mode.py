"""Whether a call attempt's media is anchored by the engine or passes between the parties
(``SS_MEDIAPROXYMODE`` and the gateways' "media proxy"; docs/b2bua.md "Media proxy").

The rules, in order:

1. The system's ``must-on``: anchored, whatever a gateway says.
2. A gateway's own ``on`` or ``must-on`` (mapping or routing): anchored.
3. ``auto`` on a side (its gateway's, else the system's) whose party needs the relay: anchored.
   The caller needs it when its SDP ``c=`` is not the address its INVITE came from (NAT) or is
   a private/reserved one; the carrier (whose ``c=`` is unknown before the offer is sent to it)
   when its signalling address is private/reserved.
4. Otherwise a gateway's own ``off`` or ``auto`` lets the media bypass the node (the other
   side, with no setting of its own, follows it); with no gateway setting, the system's mode:
   ``on`` anchors, ``off`` and ``auto`` bypass.
"""

from __future__ import annotations

import ipaddress

#: a gateway's settings that demand the relay on its side
REQUIRED = ("on", "must-on")

#: addresses another network cannot reach: RFC 1918, CGNAT (RFC 6598), link-local, IPv6 ULA and
#: link-local. Loopback is not among them (a test on 127.0.0.1 is a reachable party).
_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None  # a host name: not judged
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def private(address: str) -> bool:
    """``address`` is private/reserved (a host name is not: it is judged reachable)."""
    ip = _ip(address)
    return ip is not None and any(ip in net for net in _PRIVATE)


def connection_address(sdp: bytes) -> str | None:
    """The first ``c=`` address of an SDP (the session's, else the first stream's)."""
    for line in sdp.splitlines():
        if line.startswith(b"c="):
            parts = line[2:].split()
            return parts[2].split(b"/")[0].decode("ascii", "replace") if len(parts) >= 3 else None
    return None


def behind_nat(sdp: bytes, source: str) -> bool:
    """A party whose media address is not where its signalling comes from, or is private."""
    media = connection_address(sdp)
    if media is None:
        return False  # no offer (or no c=) yet: nothing to judge
    ip = _ip(media)
    if ip is None or ip.is_unspecified:
        return False  # a host name, or 0.0.0.0 (on hold): no address to compare
    return ip != _ip(source) or private(media)


def anchored(system: str, caller: str, carrier: str, *, offer: bytes, source: str, host: str) -> bool:
    """Whether the engine anchors an attempt: ``system`` is SS_MEDIAPROXYMODE, ``caller`` and
    ``carrier`` the mapping and routing gateways' own settings ("" = none), ``offer`` the
    caller's SDP, ``source`` the IP its INVITE came from, ``host`` the carrier's address."""
    if system == "must-on" or caller in REQUIRED or carrier in REQUIRED:
        return True
    if (caller or system) == "auto" and behind_nat(offer, source):
        return True
    if (carrier or system) == "auto" and private(host):
        return True
    if caller or carrier:
        return False  # a gateway's own off / auto (its party needing no relay)
    return system == "on"
