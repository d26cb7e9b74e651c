"""The client's address behind a known number of proxies."""

from __future__ import annotations

import ipaddress


def client_address(forwarded_for: str | None, peer: str | None, *, trusted_hops: int) -> str:
    """The address the nearest untrusted hop connected from.

    Each of the ``trusted_hops`` proxies in front of the service (the gateway)
    *appends* the address it received the request from to ``X-Forwarded-For``, so
    the entry ``trusted_hops`` from the end was written by a trusted proxy; entries
    further left are client-supplied and ignored. Without enough (valid) entries,
    or with ``trusted_hops == 0``, the socket peer is used.
    """
    fallback = peer or "unknown"
    if trusted_hops <= 0 or not forwarded_for:
        return fallback
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    if len(entries) < trusted_hops:
        return fallback
    candidate = entries[-trusted_hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return fallback
