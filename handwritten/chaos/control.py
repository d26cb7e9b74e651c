"""The chaos proxy's control API: HTTP/JSON over the routes of one proxy process.

    GET    /health                   liveness
    GET    /routes                   every route with its fault and counters
    GET    /routes/{name}            one route
    PUT    /routes/{name}/fault      set the route's fault (a ``Fault`` as JSON)
    DELETE /routes/{name}/fault      clear it
    POST   /routes/{name}/reset      reset (RST) its open connections once
    DELETE /faults                   clear every route's fault

The app's lifespan starts the routes' listeners and stops them (dropping every
connection) on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from handwritten.chaos.faults import NO_FAULT, Fault, RouteView
from handwritten.chaos.proxy import ChaosProxy


class ResetAnswer(BaseModel):
    """How many connections a one-shot reset dropped."""

    route: str
    reset: int


def build_control_app(proxies: Sequence[ChaosProxy]) -> FastAPI:
    """The control API over ``proxies`` (route names must be unique)."""
    routes = {proxy.name: proxy for proxy in proxies}
    if len(routes) != len(proxies):
        raise ValueError("chaos route names must be unique")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for proxy in proxies:
                await proxy.start()
                stack.push_async_callback(proxy.stop)
            yield

    app = FastAPI(
        title="MicroCommerce chaos proxy",
        description="Fault injection between services and their dependencies.",
        lifespan=lifespan,
    )

    def route(name: str) -> ChaosProxy:
        proxy = routes.get(name)
        if proxy is None:
            raise HTTPException(404, f"no chaos route named {name!r}")
        return proxy

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/routes")
    async def list_routes() -> list[RouteView]:
        return [proxy.view() for proxy in proxies]

    @app.get("/routes/{name}")
    async def get_route(name: str) -> RouteView:
        return route(name).view()

    @app.put("/routes/{name}/fault")
    async def set_fault(name: str, fault: Fault) -> RouteView:
        proxy = route(name)
        proxy.set_fault(fault)
        return proxy.view()

    @app.delete("/routes/{name}/fault")
    async def clear_fault(name: str) -> RouteView:
        proxy = route(name)
        proxy.set_fault(NO_FAULT)
        return proxy.view()

    @app.post("/routes/{name}/reset")
    async def reset_connections(name: str) -> ResetAnswer:
        return ResetAnswer(route=name, reset=route(name).reset_connections())

    @app.delete("/faults")
    async def clear_all() -> list[RouteView]:
        for proxy in proxies:
            proxy.set_fault(NO_FAULT)
        return [proxy.view() for proxy in proxies]

    return app
