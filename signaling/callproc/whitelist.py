"""An account's IP whitelist (reference behaviour 60) as the node checks it.

Single addresses (``203.0.113.10``, ``2001:db8::1``, or a /32 or /128) are a set of canonical
strings: a phone at a listed address costs one set lookup. Wider prefixes are scanned in order
(an account lists a few); an IPv4-mapped IPv6 source (``::ffff:203.0.113.10``, a dual-stack
socket) is matched as the IPv4 address it carries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SourceWhitelist:
    __slots__ = ("hosts", "networks")

    def __init__(self, entries: Iterable[str]) -> None:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:  # validated by the store (Account.check); strict=False tolerates
            net = ipaddress.ip_network(entry, strict=False)  # a file's "10.0.0.5/24" anyway
            if net.num_addresses == 1:
                hosts.add(str(net.network_address))
            else:
                networks.append(net)
        self.hosts = frozenset(hosts)
        self.networks = tuple(networks)

    def allows(self, ip: str) -> bool:
        """Whether a request from source address ``ip`` may pass."""
        if ip in self.hosts:
            return True
        try:
            address = ipaddress.ip_address(ip.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self.allows(str(address.ipv4_mapped))
        return str(address) in self.hosts or any(address in net for net in self.networks)
