"""Which address a web request came from, believing X-Forwarded-For only from our own proxies.

Anyone can send an X-Forwarded-For header. Only a proxy listed in TRUSTED_PROXIES appends the
address it saw, at the right end; so the client is the rightmost entry that is not itself one
of our proxies. From any other peer the header changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address

Networks = Sequence[IPv4Network | IPv6Network]


def is_proxy(address: str, proxies: Networks) -> bool:
    """Whether `address` is one of our own proxies (TRUSTED_PROXIES)."""
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in proxies)


def _is_ip(address: str) -> bool:
    try:
        ip_address(address)
    except ValueError:
        return False
    return True


def client_address(peer: str | None, forwarded_for: Iterable[str], proxies: Networks) -> str | None:
    """The client's address: the socket's `peer`, unless that is a trusted proxy."""
    if peer is None or not is_proxy(peer, proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if not is_proxy(hop, proxies):
            # Our proxy wrote this entry; if it is not an address, count the proxy itself.
            return hop if _is_ip(hop) else peer
    return peer
