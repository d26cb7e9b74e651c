"""A typed async client of the chaos proxy's control API (tests and the CLI use it)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from handwritten.chaos.faults import Fault, RouteView


class ChaosControlError(RuntimeError):
    """The control API refused a request or could not be reached."""


class ChaosControl:
    """``async with ChaosControl("http://127.0.0.1:18199") as chaos: await chaos.set_fault(…)``."""

    def __init__(self, base_url: str, *, timeout_seconds: float = 5.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_seconds)

    async def __aenter__(self) -> ChaosControl:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def healthy(self) -> bool:
        """Whether the proxy answers (False while it starts or after it stopped)."""
        try:
            return (await self._http.get("/health")).status_code == 200
        except httpx.TransportError:
            return False

    async def routes(self) -> list[RouteView]:
        body = await self._call("GET", "/routes")
        return [RouteView.model_validate(item) for item in body]

    async def route(self, name: str) -> RouteView:
        return RouteView.model_validate(await self._call("GET", f"/routes/{name}"))

    async def set_fault(self, name: str, fault: Fault) -> RouteView:
        body = await self._call("PUT", f"/routes/{name}/fault", fault.model_dump(mode="json"))
        return RouteView.model_validate(body)

    async def clear(self, name: str) -> RouteView:
        return RouteView.model_validate(await self._call("DELETE", f"/routes/{name}/fault"))

    async def clear_all(self) -> list[RouteView]:
        body = await self._call("DELETE", "/faults")
        return [RouteView.model_validate(item) for item in body]

    async def reset(self, name: str) -> int:
        """Reset the route's open connections once; how many there were."""
        return int((await self._call("POST", f"/routes/{name}/reset"))["reset"])

    async def _call(self, method: str, path: str, body: object = None) -> Any:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ChaosControlError(f"chaos control unreachable: {exc!r}") from exc
        if response.status_code >= 400:
            raise ChaosControlError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()
