"""The upstream side of the proxy: one keep-alive httpx pool, bodies streamed both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from handwritten.gateway.domain.headers import HeaderList


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, and between bytes read/written, for one upstream call."""

    connect: float
    read: float
    write: float


class UpstreamError(Exception):
    """No usable upstream response: 502 (refused, reset, garbled) or 504 (timed out)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def upstream_error(exc: httpx.HTTPError) -> UpstreamError:
    """Kong's mapping: any timeout is 504, any other transport failure 502."""
    status = 504 if isinstance(exc, httpx.TimeoutException) else 502
    return UpstreamError(status, f"{type(exc).__name__}: {exc}".rstrip(": "))


class UpstreamPool:
    """Sends requests upstream over pooled keep-alive connections (HTTP/1.1)."""

    def __init__(
        self,
        *,
        max_connections: int = 512,
        max_keepalive_connections: int = 128,
        keepalive_expiry: float = 60.0,
    ) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
                keepalive_expiry=keepalive_expiry,
            ),
            follow_redirects=False,
            trust_env=False,  # proxies from the environment must not redirect upstream calls
        )

    async def open(
        self,
        method: str,
        url: str,
        headers: HeaderList,
        body: AsyncIterator[bytes] | None,
        timeouts: Timeouts,
    ) -> httpx.Response:
        """Send the request (streaming ``body``) and return once the response head is in.

        The caller streams the response with ``aiter_raw`` and must ``aclose`` it (that
        returns the connection to the pool). Raises ``UpstreamError``.
        """
        request = self._client.build_request(
            method,
            url,
            headers=headers.raw(),
            content=body,
            timeout=httpx.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.write,
                pool=timeouts.connect,
            ),
        )
        try:
            return await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise upstream_error(exc) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
