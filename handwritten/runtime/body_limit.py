"""A cap on request body size: larger bodies answer 413 before they are parsed.

Without it a service reads and JSON-parses whatever arrives (a 20 MB string, a
million-item array) before validation rejects it, which costs memory and CPU that
any client can make it spend. A declared ``Content-Length`` over the limit is
refused without reading a byte; a body without one (chunked) is counted as it
arrives and refused as soon as it goes over.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: 1 MiB: far above any legitimate request of the platform's APIs (an order with
#: the maximum number of items is a few kilobytes).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLargeError(Exception):
    """Raised from ``receive`` once a streamed body exceeds the limit."""


def _problem(limit: int, path: str) -> bytes:
    return json.dumps(
        {
            "type": "about:blank",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"The request body exceeds the limit of {limit} bytes.",
            "instance": path,
        }
    ).encode()


class BodySizeLimitMiddleware:
    """Answers ``413 application/problem+json`` to bodies over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _drain(receive)
            await self._refuse(scope, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # The framework turns an error while reading the body into its own
            # answer (FastAPI: 400); once the limit was hit, 413 is sent instead.
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(scope, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLargeError:
            if not started:
                await _drain(receive)
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = _problem(self.max_body_bytes, str(scope.get("path", "")))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


#: The most of a refused body read (and dropped) before answering; past it the
#: connection is closed mid-request.
MAX_DRAIN_BYTES = 64 * 1024 * 1024


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of the body, never holding more than one chunk.

    A proxy in front (the gateway) writes the whole body before it reads the
    answer: answering and closing while it still writes makes it report a broken
    upstream (502) instead of passing the 413 on. Draining costs bandwidth only.
    """
    drained = 0
    while drained <= MAX_DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
