"""Who is asking: the client address (trusting only configured proxies) and the client key."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

from coordhub.config import IPNetwork, parse_networks
from operations.models import Operation

IPV6_PREFIX = 64  # one IPv6 subscriber usually owns a whole /64


@lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[IPNetwork, ...]:
    """The networks of TRUSTED_PROXIES (whose other items coordhub.E009 reports at start)."""
    networks, _ = parse_networks(spec)
    return networks


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
    one a proxy of ours saw, which a client cannot forge.
    """
    address = request.META.get("REMOTE_ADDR", "") or "0.0.0.0"
    networks = trusted_networks(settings.COORDHUB.trusted_proxies)
    if not networks or not is_trusted(address, networks):
        return address
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([hop.strip() for hop in forwarded.split(",") if hop.strip()]):
        if not is_trusted(hop, networks):
            return hop if valid_ip(hop) else address
    return address


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def client_key(request: HttpRequest) -> str:
    """Key the client's limits and operations by user, else by address (IPv6 by /64)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"ip:{address}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{ip}/{IPV6_PREFIX}', strict=False)}"
    return f"ip:{ip}"


def may_control(request: HttpRequest, operation: Operation) -> bool:
    """Whether this client may cancel `operation`: its starter, its user, or staff."""
    user = request.user
    if user.is_authenticated and (user.is_staff or operation.user_id == user.pk):
        return True
    return operation.client_key == client_key(request)
