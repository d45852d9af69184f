"""Which addresses the http_get tool may reach: public unicast only, checked on the
address each socket actually connects to (IP literals and resolved names alike)."""

from __future__ import annotations

import ipaddress
import socket

# IPv6 ranges that carry an IPv4 address in their last 32 bits (NAT64, IPv4-compatible).
_EMBEDS_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"),
                ipaddress.ip_network("::/96"))


class NonPublicAddress(OSError):
    """A connection to a private, loopback, link-local, reserved or unspecified address."""


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def public_address(address: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved and unspecified addresses,
    also when written as IPv4 inside IPv6 (mapped, compatible, 6to4, Teredo, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        embedded += [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) for net in _EMBEDS_IPV4 if ip in net]
        if any(v4 is not None and not _public(v4) for v4 in embedded):
            return False
        if ip.ipv4_mapped is not None:
            return True   # the mapped address decided
    return _public(ip)


def public_socket(addr_info: tuple) -> socket.socket:
    """aiohttp's socket_factory: called with the very address about to be connected to, after
    any DNS (and for IP literals, which aiohttp never resolves); refuses non-public ones."""
    family, type_, proto, _, sockaddr = addr_info
    if not public_address(str(sockaddr[0])):
        raise NonPublicAddress(f"{sockaddr[0]} is not a public address; refused")
    return socket.socket(family=family, type=type_, proto=proto)
