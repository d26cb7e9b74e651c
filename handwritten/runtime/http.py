"""The FastAPI app every service starts from: ids, logs, metrics, errors, health, docs."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handwritten.runtime.body_limit import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware
from handwritten.runtime.context import correlation_id
from handwritten.runtime.health import Probe, run_probes
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import MetricsMiddleware, metrics_endpoint, route_label
from handwritten.runtime.problems import install_problem_handlers
from handwritten.runtime.tracing import configure_tracing, instrument_fastapi

CORRELATION_HEADER = "x-correlation-id"
_VALID_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = get_logger("access")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class RequestContextMiddleware:
    """Correlation id in (or new), echoed out, and one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(CORRELATION_HEADER.encode(), b"").decode("latin-1")
        value = sent if _VALID_CORRELATION_ID.match(sent) else str(uuid.uuid4())
        token = correlation_id.set(value)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[CORRELATION_HEADER] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            state = scope.get("state") or {}
            access_log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route_label(scope),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                user_id=state.get("user_id"),
            )
            correlation_id.reset(token)


SCALAR_PAGE = """<!doctype html>
<html>
  <head>
    <title>{title}</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1.76.0"></script>
  </body>
</html>
"""


def create_app(
    *,
    service: str,
    title: str,
    version: str,
    description: str,
    routers: Sequence[APIRouter],
    lifespan: Lifespan,
    probes: Callable[[FastAPI], Mapping[str, Probe]],
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """A service app with the platform's cross-cutting behaviour built in.

    ``probes(app)`` names the dependencies checked by ``/health/ready`` (resources
    are opened by ``lifespan``, so the probes are looked up per request). Request
    bodies over ``max_body_bytes`` answer 413 before they are parsed.
    """
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    for router in routers:
        app.include_router(router)
    install_problem_handlers(app)

    @app.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        checks = await run_probes(probes(app))
        ok = all(result == "ok" for result in checks.values())
        body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(SCALAR_PAGE.format(title=title))

    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    # Outermost first: context (ids, access log) wraps metrics wraps the body cap
    # wraps the app.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, service=service)
    app.add_middleware(RequestContextMiddleware)
    # Tracing (off unless OTEL_EXPORTER_OTLP_ENDPOINT is set) wraps everything: the
    # access-log line is written inside the request's server span.
    configure_tracing(service)
    instrument_fastapi(app)
    return app
