"""Errors as RFC 9457 problem+json — never a stack trace, never a 500 for bad input."""

from __future__ import annotations

import re
from functools import lru_cache
from http import HTTPMethod, HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from handwritten.runtime.failures import CONNECTION_ERROR_TYPES, connection_lost
from handwritten.runtime.logging import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)

#: Bounds of the Problem schema (specs/openapi/common.yaml): an error never breaks the contract.
MAX_INSTANCE_LENGTH = 2048
MAX_FIELD_ERRORS = 100
MAX_FIELD_LENGTH = 500
MAX_MESSAGE_LENGTH = 1000
#: RFC 3986 path characters left as they are; everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_HTTP_METHODS = frozenset(HTTPMethod)


class ProblemError(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def request_instance(request: Request) -> str | None:
    """The problem's ``instance``: the request path as a URI reference.

    Starlette hands over the percent-decoded path, which may hold any character a
    client encoded (spaces, control characters, non-ASCII); encoded again it is a
    valid ``uri-reference``. A path too long for the contract is left out (the
    member is optional) rather than cut into a reference to something else.
    """
    instance = quote(request.url.path, safe=_PATH_SAFE, errors="replace")
    return instance if len(instance) <= MAX_INSTANCE_LENGTH else None


def allowed_methods(request: Request) -> str | None:
    """``Allow`` for a 405: every method the app's OpenAPI document lists for the path.

    Starlette answers 405 with the methods of the first route whose path matches,
    but each operation is its own route, so ``GET`` and ``POST`` on one path would
    each hide the other (RFC 9110 §15.5.6 wants every supported method). ``None``
    when the path is not in the document (Starlette's own header then stands).
    """
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    methods = {
        method.upper()
        for template, item in paths.items()
        if _path_template(template).fullmatch(request.url.path)
        for method in item
        if method.upper() in _HTTP_METHODS
    }
    return ", ".join(sorted(methods)) or None


@lru_cache(maxsize=256)
def _path_template(template: str) -> re.Pattern[str]:
    # /api/orders/{orderId}/cancel → ^/api/orders/[^/]+/cancel$
    parts = re.split(r"\{[^{}/]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(location: tuple[Any, ...]) -> str:
    # ("body", "items", 0, "quantity") → "items[0].quantity"
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or ".".join(str(p) for p in location)


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """One ``{field, message}`` per problem, in request terms, within the Problem schema's
    bounds: at most 100 entries, and field names (an unknown property's name is the
    client's) and messages cut to their maximum length."""
    return [
        {
            "field": _bounded(_field(tuple(error.get("loc", ()))) or "request", MAX_FIELD_LENGTH),
            "message": _bounded(str(error.get("msg", "invalid")) or "invalid", MAX_MESSAGE_LENGTH),
        }
        for error in exc.errors()[:MAX_FIELD_ERRORS]
    ]


#: Seconds a client is told to wait after a 503 for a lost connection.
CONNECTION_LOST_RETRY_AFTER = "1"


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error — validation, HTTP, domain, unexpected — as problem+json."""

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422,
            "The request is not valid.",
            instance=request_instance(request),
            errors=validation_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers) if exc.headers else None
        allow = allowed_methods(request) if exc.status_code == 405 else None
        if allow is not None:
            others = {k: v for k, v in (headers or {}).items() if k.lower() != "allow"}
            headers = {**others, "Allow": allow}
        return problem_response(
            exc.status_code, detail, instance=request_instance(request), headers=headers
        )

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            instance=request_instance(request),
            headers=exc.headers,
            **exc.extra,
        )

    def unreachable(request: Request, exc: Exception) -> JSONResponse:
        # Not a bug in the request or the service: the same request may succeed a
        # moment later (found by the chaos tests' PostgreSQL resets).
        log.warning("dependency unreachable", path=request.url.path, error=repr(exc))
        return problem_response(
            503,
            "The service cannot reach a dependency (its database) right now; retry shortly.",
            instance=request_instance(request),
            headers={"Retry-After": CONNECTION_LOST_RETRY_AFTER},
        )

    async def on_connection_error(request: Request, exc: Exception) -> JSONResponse:
        # Handled here rather than by the catch-all below, which Starlette re-raises
        # to the server: access log and metrics then record the 503 actually sent.
        if connection_lost(exc):
            return unreachable(request, exc)
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return problem_response(
            500, "An unexpected error occurred.", instance=request_instance(request)
        )

    for error_type in CONNECTION_ERROR_TYPES:
        app.add_exception_handler(error_type, on_connection_error)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if connection_lost(exc):
            return unreachable(request, exc)
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return problem_response(
            500, "An unexpected error occurred.", instance=request_instance(request)
        )
