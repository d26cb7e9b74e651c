"""The generated FastAPI routers: emitted from the real specs, imported and served."""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request, Response

from generator.crossref import openapi_operations
from generator.emit import Output
from generator.emit.models import emit_models
from generator.emit.routers import emit_routers, py_text, snake_case
from generator.errors import InvalidSpecsError
from generator.specset import SpecSet, load_specset

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCT_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
ORDER_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
VALID_ORDER = {
    "items": [{"productId": PRODUCT_ID, "quantity": 2}],
    "shippingAddress": {
        "street": "Rua das Flores, 123",
        "city": "São Paulo",
        "state": "SP",
        "zipCode": "01234-567",
    },
    "paymentMethod": {"token": "tok_visa"},
}


def _purge_generated() -> None:
    """Forget every ``generated.*`` module so imports come from the current sys.path."""
    for name in list(sys.modules):
        if name == "generated" or name.startswith("generated."):
            del sys.modules[name]


@pytest.fixture(scope="module")
def specset() -> SpecSet:
    return load_specset(REPO_ROOT)


@pytest.fixture(scope="module")
def emitted(specset: SpecSet) -> Output:
    out = Output()
    emit_models(specset, out)
    emit_routers(specset, out)
    return out


@pytest.fixture(scope="module")
def generated_root(emitted: Output, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The emitted files on disk, importable as the ``generated`` package (and nothing else)."""
    root = tmp_path_factory.mktemp("routers")
    files = dict(emitted.files)
    files.setdefault("generated/__init__.py", "")
    for relpath, text in files.items():
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    # Other tests hold the repo's own generated modules: put them back afterwards, or
    # pydantic can no longer resolve their forward references.
    saved = {
        name: module
        for name, module in sys.modules.items()
        if name == "generated" or name.startswith("generated.")
    }
    _purge_generated()
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        _purge_generated()
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def orders_api(generated_root: Path) -> ModuleType:
    module = importlib.import_module("generated.services.orders.api")
    assert module.__file__ is not None and module.__file__.startswith(str(generated_root))
    return module


@pytest.fixture(scope="module")
def orders_models(orders_api: ModuleType) -> ModuleType:
    return importlib.import_module("generated.models.orders")


class FakeOrders:
    """Records every call; answers with a fixed order (or a 404 for a magic id)."""

    def __init__(self, models: ModuleType) -> None:
        self.models = models
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def order(self, order_id: UUID | str = ORDER_ID) -> Any:
        return self.models.Order.model_validate(
            {
                "orderId": str(order_id),
                "userId": "00000000-0000-4000-8000-000000000001",
                "status": "PENDING",
                "totalAmount": "20.00",
                "currency": "BRL",
                "items": [{"productId": PRODUCT_ID, "quantity": 2, "unitPrice": "10.00"}],
                "shippingAddress": VALID_ORDER["shippingAddress"],
                "payment": None,
                "shipping": None,
                "cancelReason": None,
                "createdAt": "2024-05-01T12:00:00Z",
                "updatedAt": "2024-05-01T12:00:00Z",
            }
        )

    async def create_order(
        self, request: Request, *, body: Any, idempotency_key: str | None
    ) -> Any:
        self.calls.append(("create_order", {"body": body, "idempotency_key": idempotency_key}))
        return self.order()

    async def list_orders(self, request: Request, *, limit: int, cursor: str | None) -> Any:
        self.calls.append(("list_orders", {"limit": limit, "cursor": cursor}))
        return self.models.OrderPage(items=[self.order()], next_cursor=None)

    async def get_order(self, request: Request, *, order_id: UUID) -> Any:
        self.calls.append(("get_order", {"order_id": order_id}))
        if order_id.int == 0:
            return Response(
                status_code=404,
                media_type="application/problem+json",
                content=b'{"title": "Not Found", "status": 404}',
            )
        return self.order(order_id)

    async def cancel_order(self, request: Request, *, order_id: UUID) -> Any:
        raise AssertionError("not called")

    async def get_order_events(self, request: Request, *, order_id: UUID) -> Any:
        raise AssertionError("not called")

    async def get_order_saga(self, request: Request, *, order_id: UUID) -> Any:
        raise AssertionError("not called")


@pytest.fixture
def fake(orders_models: ModuleType) -> FakeOrders:
    return FakeOrders(orders_models)


@pytest.fixture
async def client(orders_api: ModuleType, fake: FakeOrders) -> Any:
    app = FastAPI()
    app.include_router(orders_api.build_router(fake))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http:
        yield http


async def test_valid_order_reaches_handler_typed(
    client: httpx.AsyncClient, fake: FakeOrders, orders_models: ModuleType
) -> None:
    response = await client.post(
        "/api/orders", json=VALID_ORDER, headers={"Idempotency-Key": "key-123"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["orderId"] == ORDER_ID
    assert response.json()["totalAmount"] == "20.00"
    [(name, arguments)] = fake.calls
    assert name == "create_order"
    assert arguments["idempotency_key"] == "key-123"
    body = arguments["body"]
    assert isinstance(body, orders_models.CreateOrderRequest)
    assert body.items[0].product_id == UUID(PRODUCT_ID)
    assert body.items[0].quantity == 2
    assert body.shipping_address.zip_code == "01234-567"


async def test_idempotency_key_is_optional(client: httpx.AsyncClient, fake: FakeOrders) -> None:
    response = await client.post("/api/orders", json=VALID_ORDER)
    assert response.status_code == 201, response.text
    assert fake.calls[0][1]["idempotency_key"] is None


def _with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID_ORDER)
    node: Any = body
    for token in path[:-1]:
        node = node[token]
    node[path[-1]] = value
    return body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_with(("shippingAddress", "zipCode"), "01234567"), id="bad-zip"),
        pytest.param(_with(("shippingAddress", "state"), "São Paulo"), id="bad-state"),
        pytest.param(_with(("couponCode",), "FREE"), id="extra-field"),
        pytest.param(_with(("items", 0, "quantity"), 0), id="quantity-0"),
        pytest.param(_with(("items",), []), id="no-items"),
        pytest.param(_with(("items", 0, "productId"), "nope"), id="bad-product-id"),
    ],
)
async def test_invalid_body_is_422_before_handler(
    client: httpx.AsyncClient, fake: FakeOrders, body: dict[str, Any]
) -> None:
    response = await client.post("/api/orders", json=body)
    assert response.status_code == 422, response.text
    assert fake.calls == []


async def test_invalid_idempotency_key_is_422(client: httpx.AsyncClient, fake: FakeOrders) -> None:
    response = await client.post(
        "/api/orders", json=VALID_ORDER, headers={"Idempotency-Key": "x" * 256}
    )
    assert response.status_code == 422
    assert fake.calls == []


async def test_path_uuid(client: httpx.AsyncClient, fake: FakeOrders) -> None:
    assert (await client.get("/api/orders/not-a-uuid")).status_code == 422
    assert fake.calls == []
    response = await client.get(f"/api/orders/{ORDER_ID}")
    assert response.status_code == 200, response.text
    assert fake.calls == [("get_order", {"order_id": UUID(ORDER_ID)})]


async def test_handler_response_passes_through(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/orders/{UUID(int=0)}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_query_limits(client: httpx.AsyncClient, fake: FakeOrders) -> None:
    assert (await client.get("/api/orders", params={"limit": 101})).status_code == 422
    assert (await client.get("/api/orders", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/orders", params={"cursor": "bad cursor!"})).status_code == 422
    assert fake.calls == []
    response = await client.get("/api/orders")
    assert response.status_code == 200, response.text
    assert response.json()["nextCursor"] is None
    response = await client.get("/api/orders", params={"limit": 5, "cursor": "abc"})
    assert response.status_code == 200
    assert fake.calls == [
        ("list_orders", {"limit": 20, "cursor": None}),
        ("list_orders", {"limit": 5, "cursor": "abc"}),
    ]


@pytest.mark.parametrize("service", ["auth", "orders", "inventory", "shipping", "analytics", "bff"])
async def test_served_openapi_lists_every_operation(
    generated_root: Path, specset: SpecSet, service: str
) -> None:
    assert service in specset.openapi
    api = importlib.import_module(f"generated.services.{service}.api")
    app = FastAPI()
    app.include_router(api.build_router(object()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as http:
        served = (await http.get("/openapi.json")).json()
    spec = yaml.safe_load((REPO_ROOT / "specs" / "openapi" / f"{service}.yaml").read_text())
    expected = {op.operation_id for op in openapi_operations(service, specset.openapi[service])}
    served_ops = {
        operation["operationId"]: (path, method, operation)
        for path, item in served["paths"].items()
        for method, operation in item.items()
    }
    assert expected <= set(served_ops)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            served_path, served_method, served_op = served_ops[operation["operationId"]]
            assert (served_path, served_method) == (path, method)
            assert set(served_op["responses"]) == {str(code) for code in operation["responses"]}


def test_handler_protocol_matches_operations(orders_api: ModuleType) -> None:
    protocol = orders_api.OrdersHandlers
    names = [name for name in vars(protocol) if not name.startswith("_")]
    assert names == [
        "create_order",
        "list_orders",
        "get_order",
        "cancel_order",
        "get_order_events",
        "get_order_saga",
        "list_orders_fault_flags",
        "set_orders_fault_flag",
        "clear_orders_fault_flag",
    ]


def test_emit_is_deterministic(specset: SpecSet) -> None:
    first, second = Output(), Output()
    emit_routers(specset, first)
    emit_routers(specset, second)
    assert first.files == second.files
    assert "generated/services/orders/api.py" in first.files


def test_existing_package_markers_are_kept(specset: SpecSet) -> None:
    out = Output()
    out.add("generated/services/__init__.py", "# from events\n")
    out.add("generated/services/orders/__init__.py", "# from events\n")
    emit_routers(specset, out)
    assert out.files["generated/services/orders/__init__.py"] == "# from events\n"
    assert "generated/services/orders/api.py" in out.files


def test_inline_body_schema_is_an_error(specset: SpecSet) -> None:
    document = specset.openapi["orders"]
    data = copy.deepcopy(document.data)
    media = data["paths"]["/api/orders"]["post"]["requestBody"]["content"]["application/json"]
    media["schema"] = {"type": "object", "properties": {"note": {"type": "string"}}}
    broken = dataclasses.replace(
        specset, openapi={"orders": dataclasses.replace(document, data=data)}
    )
    with pytest.raises(InvalidSpecsError) as raised:
        emit_routers(broken, Output())
    [error] = raised.value.errors
    assert error.file == "specs/openapi/orders.yaml"
    assert error.pointer == "/paths/~1api~1orders/post/requestBody/content/application~1json/schema"
    assert error.line is not None


@pytest.mark.parametrize(
    "text",
    [
        "short",
        "quotes \" and ' and a backslash \\d{5}",
        "a long paragraph " * 12 + "\n\nsecond → paragraph\n",
        "x" * 150,
    ],
)
def test_py_text_round_trips(text: str) -> None:
    source = py_text(text, 8, 12)
    assert ast.literal_eval(source) == text
    assert all(len(line) <= 8 + 4 + 100 for line in source.splitlines())


@pytest.mark.parametrize(
    ("name", "python"),
    [
        ("orderId", "order_id"),
        ("Idempotency-Key", "idempotency_key"),
        ("X-User-ID", "x_user_id"),
        ("HTTPStatus", "http_status"),
        ("from", "from_"),
        ("body", "body_"),
        ("limit", "limit"),
    ],
)
def test_snake_case(name: str, python: str) -> None:
    assert snake_case(name) == python
