"""Request bodies over the limit answer 413 before the app parses them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from handwritten.runtime.body_limit import BodySizeLimitMiddleware
from handwritten.runtime.problems import install_problem_handlers

LIMIT = 1000


def _app() -> tuple[FastAPI, list[Any]]:
    app = FastAPI()
    seen: list[Any] = []
    install_problem_handlers(app)

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, int]:
        seen.append(body)
        return {"keys": len(body)}

    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=LIMIT)
    return app, seen


async def _post(app: FastAPI, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.post("/echo", headers={"content-type": "application/json"}, **kwargs)


async def test_a_body_within_the_limit_reaches_the_handler() -> None:
    app, seen = _app()
    response = await _post(app, content=b'{"a": "' + b"x" * 500 + b'"}')
    assert response.status_code == 200
    assert len(seen) == 1


async def test_a_declared_length_over_the_limit_is_413_and_never_parsed() -> None:
    app, seen = _app()
    response = await _post(app, content=b'{"a": "' + b"x" * LIMIT + b'"}')
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert seen == []


async def test_a_chunked_body_over_the_limit_is_413() -> None:
    app, seen = _app()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = await _post(app, content=chunks())
    assert response.status_code == 413
    assert seen == []
