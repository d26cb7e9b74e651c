"""The client's address behind a known number of proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR blocks (``"127.0.0.1/32, 10.0.0.0/8"``).

    Raises ``ValueError`` naming the first entry that is neither.
    """
    return tuple(
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in text.split(",")
        if entry.strip()
    )


def _is_trusted(peer: str | None, trusted_proxies: Sequence[Network] | None) -> bool:
    if trusted_proxies is None:
        return True
    if peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted_proxies)


def client_address(
    forwarded_for: str | None,
    peer: str | None,
    *,
    trusted_hops: int,
    trusted_proxies: Sequence[Network] | None = None,
) -> str:
    """The address the nearest untrusted hop connected from.

    Each of the ``trusted_hops`` proxies in front of the service (the gateway)
    *appends* the address it received the request from to ``X-Forwarded-For``, so
    the entry ``trusted_hops`` from the end was written by a trusted proxy; entries
    further left are client-supplied and ignored. ``X-Forwarded-For`` is read only
    when the socket peer is one of ``trusted_proxies`` (``None``: any peer): a
    client that reaches the service directly cannot pick its own address. Without
    enough (valid) entries, or with ``trusted_hops == 0``, the socket peer is used.
    """
    fallback = peer or "unknown"
    if trusted_hops <= 0 or not forwarded_for or not _is_trusted(peer, trusted_proxies):
        return fallback
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    if len(entries) < trusted_hops:
        return fallback
    candidate = entries[-trusted_hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return fallback
