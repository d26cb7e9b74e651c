"""The shared app factory: ids, problem+json errors, health, metrics and docs."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from handwritten.runtime.health import Probe
from handwritten.runtime.http import create_app
from handwritten.runtime.logging import configure_logging
from handwritten.runtime.problems import ProblemError

router = APIRouter()


class Widget(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    size: int = Field(ge=1)


@router.post("/widgets/{widget_id}")
async def make_widget(widget_id: uuid.UUID, widget: Widget) -> dict[str, str]:
    return {"id": str(widget_id), "name": widget.name}


@router.get("/conflict")
async def conflict() -> None:
    raise ProblemError(409, "Already there.", existing="w-1")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def failing_probe() -> None:
    raise ConnectionError("db down")


async def passing_probe() -> None:
    return None


def make_app(probes: Mapping[str, Probe]) -> FastAPI:
    return create_app(
        service="widgets",
        title="Widgets",
        version="1.0.0",
        description="test app",
        routers=[router],
        lifespan=lifespan,
        probes=lambda _: probes,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app({"db": passing_probe})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        yield http


async def test_sent_correlation_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Correlation-ID": "abc-123"})
    assert response.headers["x-correlation-id"] == "abc-123"


async def test_missing_or_unsafe_correlation_id_is_replaced_by_a_uuid(
    client: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"X-Correlation-ID": "bad id\twith spaces"}):
        response = await client.get("/health/live", headers=headers)
        assert uuid.UUID(response.headers["x-correlation-id"])


async def test_invalid_input_is_422_problem_json_with_field_messages(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(f"/widgets/{uuid.uuid4()}", json={"name": "", "size": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert {error["field"] for error in body["errors"]} == {"name", "size"}


async def test_bad_path_parameter_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/widgets/not-a-uuid", json={"name": "a", "size": 1})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "widget_id"


async def test_domain_problem_keeps_its_status_and_extra_fields(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/conflict")
    assert response.status_code == 409
    assert response.json()["existing"] == "w-1"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_unexpected_error_is_500_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["title"] == "Internal Server Error"


async def test_readiness_reports_each_dependency() -> None:
    app = make_app({"db": failing_probe, "redis": passing_probe})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        response = await http.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"] == "ok"
    assert checks["db"].startswith("error: ConnectionError")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.post(f"/widgets/{uuid.uuid4()}", json={"name": "a", "size": 1})
    text = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="POST",route="/widgets/{widget_id}",'
        'service="widgets",status="200"}' in text
    )
    assert "http_request_duration_seconds_bucket" in text


async def test_docs_serve_scalar_over_the_openapi_document(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert "@scalar/api-reference" in page.text
    spec = (await client.get("/openapi.json")).json()
    assert "/widgets/{widget_id}" in spec["paths"]


async def test_access_log_line_is_json_with_the_correlation_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("widgets", "INFO")
    await client.get("/health/live", headers={"X-Correlation-ID": "log-me-42"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    (access,) = [line for line in lines if line.get("correlation_id") == "log-me-42"]
    assert access["event"] == "request"
    assert access["service"] == "widgets"
    assert access["status"] == 200
    assert access["route"] == "/health/live"
