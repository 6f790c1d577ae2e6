"""Who is asking: the client address (trusting only configured proxies) and the client key."""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

from coordhub.config import IPNetwork, parse_networks
from operations.models import Operation

IPV6_PREFIX = 64  # one IPv6 subscriber usually owns a whole /64
# RFC 6052's well-known prefix: a NAT64 gateway shows each IPv4 host as 64:ff9b::<its IPv4>.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
UNPARSEABLE = "unparseable:"
REMEMBERED_FORWARDED_CHARS = 256


@lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[IPNetwork, ...]:
    """The networks of TRUSTED_PROXIES (whose other items coordhub.E009 reports at start)."""
    networks, _ = parse_networks(spec)
    return networks


def is_trusted_proxy(address: str) -> bool:
    """Whether `address`, a direct peer, is one of TRUSTED_PROXIES."""
    return is_trusted(address, trusted_networks(settings.COORDHUB.trusted_proxies))


def is_trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """Return the client's IP address.

    X-Forwarded-For is read only when the direct peer is a trusted proxy, and
    then from the right: the first address not itself a trusted proxy is the
    one a proxy of ours saw, which a client cannot forge. A port on a hop is
    dropped. A hop that is no address at all answers `unparseable:<digest>`:
    falling back to the proxy's own address would put every such stranger on
    the proxy's budget, and the raw value does not belong in a cache key.
    """
    return address_behind_proxies(
        request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", "")
    )


def address_behind_proxies(peer: str, forwarded: str) -> str:
    """The client's address from the direct `peer` and the X-Forwarded-For it sent."""
    address = peer or "0.0.0.0"
    networks = trusted_networks(settings.COORDHUB.trusted_proxies)
    if not networks or not is_trusted(address, networks):
        return address
    for hop in reversed([hop.strip() for hop in forwarded.split(",") if hop.strip()]):
        hop_address = without_port(hop)
        if not is_trusted(hop_address, networks):
            return hop_address if valid_ip(hop_address) else unparseable(hop)
    return address


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def without_port(hop: str) -> str:
    """`203.0.113.7:1001` → `203.0.113.7`, `[2001:db8::1]:443` → `2001:db8::1`; else `hop`."""
    if hop.startswith("["):
        host, bracket, _ = hop[1:].partition("]")
        return host if bracket else hop
    host, colon, port = hop.partition(":")
    if colon and port.isdigit() and ":" not in port:  # one colon: IPv4 (or a name) and a port
        return host
    return hop


def unparseable(hop: str) -> str:
    """Name a forwarded value that is no address by a digest of it, never by the value."""
    return UNPARSEABLE + hashlib.sha256(hop.encode(errors="replace")).hexdigest()[:16]


def client_key(request: HttpRequest) -> str:
    """Key the client's limits and operations by user, else by address (IPv6 by /64)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    # A request asks several times (its limits, then each operation it may control):
    # its address does not change, so it is worked out once.
    if not hasattr(request, "coordhub_address_key"):
        request.coordhub_address_key = peer_key(
            request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", "")
        )
    return request.coordhub_address_key


def peer_key(peer: str, forwarded: str) -> str:
    """The key of the client behind the direct `peer` and the X-Forwarded-For it sent.

    Each request would parse the same few addresses again: the key of a pair seen
    lately is remembered, unless the header is long enough to make a memory of it.
    """
    if len(forwarded) > REMEMBERED_FORWARDED_CHARS:
        return address_key(address_behind_proxies(peer, forwarded))
    return remembered_peer_key(peer, forwarded, settings.COORDHUB.trusted_proxies)


@lru_cache(maxsize=4096)
def remembered_peer_key(peer: str, forwarded: str, trusted_proxies: str) -> str:
    """`peer_key`, worked out under TRUSTED_PROXIES == `trusted_proxies` (read again inside)."""
    return address_key(address_behind_proxies(peer, forwarded))


def address_key(address: str) -> str:
    """Key an address: IPv6 by its /64, IPv4-mapped and NAT64 ones by their IPv4 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"ip:{address}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        if ip in NAT64_PREFIX:
            return f"ip:{ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)}"
        return f"ip:{ipaddress.ip_network(f'{ip}/{IPV6_PREFIX}', strict=False)}"
    return f"ip:{ip}"


def may_control(request: HttpRequest, operation: Operation) -> bool:
    """Whether this client may cancel `operation`: its starter, its user, or staff."""
    user = request.user
    if user.is_authenticated and (user.is_staff or operation.user_id == user.pk):
        return True
    return operation.client_key == client_key(request)
