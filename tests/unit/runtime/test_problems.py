"""Problem documents stay within the Problem schema whatever the client sends.

Found by contract fuzzing (tests/contract): a path parameter with non-ASCII or control
characters came back as an ``instance`` that is not a URI reference, and a body with
many or long unknown properties could exceed the schema's bounds on ``errors``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import jsonschema_rs
import pytest
import yaml
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict

from handwritten.runtime.problems import (
    MAX_FIELD_ERRORS,
    MAX_FIELD_LENGTH,
    ProblemError,
    install_problem_handlers,
)

COMMON = Path(__file__).resolve().parents[3] / "specs/openapi/common.yaml"
# The Problem schema refers to its siblings as #/components/schemas/…: keep them there.
PROBLEM = jsonschema_rs.Draft202012Validator(
    {
        "$ref": "#/components/schemas/Problem",
        "components": yaml.safe_load(COMMON.read_text())["components"],
    },
    validate_formats=True,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things/{thing_id}")
    async def get_thing(thing_id: uuid.UUID) -> dict[str, str]:
        raise ProblemError(404, "No such thing.")

    @app.post("/things")
    async def create_thing(body: list[Strict]) -> None:
        return None

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_valid_problem(body: object) -> None:
    PROBLEM.validate(body)


async def test_the_instance_of_a_path_with_non_ascii_and_control_characters_is_percent_encoded(
    client: httpx.AsyncClient,
) -> None:
    raw = "Ãé\x02 100%😀"
    response = await client.get("/things/" + quote(raw, safe=""))
    assert response.status_code == 422
    body = response.json()
    assert body["instance"] == "/things/%C3%83%C3%A9%02%20100%25%F0%9F%98%80"
    assert body["instance"].isascii()
    assert_valid_problem(body)


async def test_the_instance_of_a_domain_problem_is_the_encoded_path(
    client: httpx.AsyncClient,
) -> None:
    thing = uuid.uuid4()
    response = await client.get(f"/things/{thing}")
    assert response.status_code == 404
    assert response.json()["instance"] == f"/things/{thing}"


async def test_a_path_too_long_for_the_contract_leaves_the_instance_out(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/things/" + "é" * 1000)  # 6,000 characters once encoded
    assert response.status_code == 422
    body = response.json()
    assert "instance" not in body
    assert_valid_problem(body)


async def test_validation_errors_are_capped_to_the_schemas_item_count_and_lengths(
    client: httpx.AsyncClient,
) -> None:
    long_name = "x" * 5000
    body = [{"name": "ok", long_name: 1} for _ in range(MAX_FIELD_ERRORS + 20)]
    response = await client.post("/things", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert len(problem["errors"]) == MAX_FIELD_ERRORS
    assert all(len(error["field"]) <= MAX_FIELD_LENGTH for error in problem["errors"])
    assert problem["errors"][0]["field"].startswith("[0].xxx")
    assert_valid_problem(problem)


async def test_a_405_allows_every_method_of_the_path_not_only_the_first_routes() -> None:
    # As the services are built: the generated router included in the app.
    router = APIRouter()

    @router.post("/orders")
    async def create() -> None:
        return None

    @router.get("/orders")
    async def list_them() -> None:
        return None

    @router.get("/orders/{order_id}")
    async def get_one(order_id: str) -> None:
        return None

    app = FastAPI()
    app.include_router(router)
    install_problem_handlers(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for method in ("OPTIONS", "DELETE", "PUT"):
            response = await client.request(method, "/orders")
            assert response.status_code == 405
            assert response.headers["allow"] == "GET, POST"
            assert_valid_problem(response.json())
        one = await client.delete("/orders/o-1")
        assert one.status_code == 405
        assert one.headers["allow"] == "GET"
