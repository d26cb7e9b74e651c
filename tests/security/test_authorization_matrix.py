"""Who may call what: every operation of specs/openapi/*.yaml, through the gateway.

The operations are read from the specs (``security`` at operation or document level,
``x-roles`` for role-restricted ones), and ``EXPECTED`` names the access rule of each.
``test_every_operation_has_an_expectation`` fails when a spec gains an operation this
matrix does not know, or when the spec and the matrix disagree about it, so a new
route cannot ship without its authorization being tested. For each operation:

- no token → 401 (unless public);
- a customer token on an admin-only operation → 403;
- a customer token on another user's resource → 404 (DESIGN.md §4: another user's
  order is not found, whether or not it exists);
- the rightful caller is let through (not 401/403/404), so the 401/403/404 above are
  the access rule and not a broken request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import REPO_ROOT, Account, register_and_login, wait_for
from tests.e2e.saga_support import new_product, order_body
from tests.security.support import create_order

SPECS = REPO_ROOT / "specs" / "openapi"
METHODS = ("get", "put", "post", "patch", "delete")


class Access(Enum):
    PUBLIC = "public"  #: no token needed
    USER = "user"  #: any signed-in user, about themselves
    OWNED = "owned"  #: a signed-in user, about a resource of theirs (path param)
    ADMIN = "admin"  #: the admin role


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    secured: bool
    roles: tuple[str, ...]


def spec_operations() -> dict[tuple[str, str], Operation]:
    """Every operation of every OpenAPI document, with its security declarations."""
    found: dict[tuple[str, str], Operation] = {}
    for spec in sorted(SPECS.glob("*.yaml")):
        document: dict[str, Any] = yaml.safe_load(Path(spec).read_text())
        default_security = document.get("security", [])
        for path, item in (document.get("paths") or {}).items():
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                security = operation.get("security", default_security)
                found[(method.upper(), path)] = Operation(
                    method.upper(), path, bool(security), tuple(operation.get("x-roles", ()))
                )
    return found


#: The access rule of every operation. A new operation fails the suite until it is here.
EXPECTED: dict[tuple[str, str], Access] = {
    ("POST", "/api/auth/register"): Access.PUBLIC,
    ("POST", "/api/auth/login"): Access.PUBLIC,
    ("POST", "/api/auth/refresh"): Access.PUBLIC,
    ("POST", "/api/auth/logout"): Access.PUBLIC,
    ("GET", "/.well-known/jwks.json"): Access.PUBLIC,
    ("GET", "/api/auth/me"): Access.USER,
    ("POST", "/graphql"): Access.USER,
    ("POST", "/graphql/mobile"): Access.USER,
    ("GET", "/api/inventory/products"): Access.PUBLIC,
    ("GET", "/api/inventory/products/{productId}"): Access.PUBLIC,
    ("POST", "/api/inventory/products"): Access.ADMIN,
    ("PATCH", "/api/inventory/products/{productId}"): Access.ADMIN,
    ("GET", "/api/inventory/admin/faults"): Access.ADMIN,
    ("PUT", "/api/inventory/admin/faults/{point}"): Access.ADMIN,
    ("DELETE", "/api/inventory/admin/faults/{point}"): Access.ADMIN,
    ("POST", "/api/orders"): Access.USER,
    ("GET", "/api/orders"): Access.USER,
    ("GET", "/api/orders/{orderId}"): Access.OWNED,
    ("POST", "/api/orders/{orderId}/cancel"): Access.OWNED,
    ("GET", "/api/orders/{orderId}/events"): Access.OWNED,
    ("GET", "/api/orders/{orderId}/saga"): Access.OWNED,
    ("GET", "/api/orders/admin/faults"): Access.ADMIN,
    ("PUT", "/api/orders/admin/faults/{point}"): Access.ADMIN,
    ("DELETE", "/api/orders/admin/faults/{point}"): Access.ADMIN,
    ("GET", "/api/payments/orders/{orderId}"): Access.ADMIN,
    ("GET", "/api/payments/admin/faults"): Access.ADMIN,
    ("PUT", "/api/payments/admin/faults/{point}"): Access.ADMIN,
    ("DELETE", "/api/payments/admin/faults/{point}"): Access.ADMIN,
    ("GET", "/api/shipping/orders/{orderId}"): Access.OWNED,
    ("GET", "/api/analytics/sales-by-day"): Access.ADMIN,
    ("GET", "/api/analytics/top-products"): Access.ADMIN,
    ("GET", "/api/analytics/order-funnel"): Access.ADMIN,
}

#: Fault points by the service that owns them (a real one each, so only access differs).
FAULT_POINTS = {
    "inventory": "create_order.reserve_inventory",
    "orders": "create_order.confirm_order",
    "payments": "create_order.process_payment",
}
DAYS = {"from": "2026-01-01", "to": "2026-01-31"}


def test_every_operation_has_an_expectation() -> None:
    operations = spec_operations()
    assert len(operations) >= 30, "the specs were not read"
    missing = sorted(set(operations) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(operations))
    assert not missing, f"operations without an authorization expectation: {missing}"
    assert not stale, f"expectations for operations the specs no longer have: {stale}"
    for key, operation in operations.items():
        access = EXPECTED[key]
        assert operation.secured == (access is not Access.PUBLIC), (key, "security", access)
        assert ("admin" in operation.roles) == (access is Access.ADMIN), (key, "x-roles", access)


@dataclass
class World:
    """Real resources to fill path parameters: an order of ``owner``'s, a product."""

    owner: Account
    intruder: Account
    admin: Account
    order_id: str
    product_id: str


@pytest.fixture(scope="module")
async def world(gateway: httpx.AsyncClient, admin: Account) -> World:
    owner = await register_and_login(gateway)
    intruder = await register_and_login(gateway)
    product_id = await new_product(gateway, admin, stock=50)
    order_id = await create_order(gateway, owner, product_id)
    return World(owner, intruder, admin, order_id, product_id)


def _request(key: tuple[str, str], world: World) -> dict[str, Any]:
    """URL, query and body of a well-formed call of the operation ``key``."""
    method, template = key
    service = template.split("/")[2] if template.startswith("/api/") else ""
    url = template.format(
        orderId=world.order_id,
        productId=world.product_id,
        point=FAULT_POINTS.get(service, "create_order.reserve_inventory"),
    )
    params: dict[str, Any] = {}
    body: Any = None
    headers: dict[str, str] = {}
    if template.startswith("/api/analytics/"):
        params = dict(DAYS)
    if template.endswith("/faults/{point}"):
        # Scoped to an order nobody has: harmless should it ever be accepted.
        params = {"orderId": str(uuid.uuid4())} if method == "DELETE" else {}
        body = {"mode": "fail", "match": {"orderId": str(uuid.uuid4())}, "ttlSeconds": 5}
    elif key == ("POST", "/api/inventory/products"):
        body = {"name": "Authz", "description": "matrix", "price": "1.00", "availableQuantity": 1}
    elif key == ("PATCH", "/api/inventory/products/{productId}"):
        body = {"description": "matrix patch"}
    elif key == ("POST", "/api/orders"):
        body = order_body(world.product_id)
        headers["Idempotency-Key"] = str(uuid.uuid4())
    elif template.startswith("/graphql"):
        body = {"query": "{ orders { id } }"}
    elif key == ("POST", "/api/auth/register"):
        body = {"email": f"authz-{uuid.uuid4().hex[:10]}@example.com", "password": "x", "name": "A"}
    elif template.startswith("/api/auth/") and method == "POST":
        body = {"email": "nobody@example.com", "password": "x", "refresh_token": "x"}
    if method in ("DELETE",) or body is None:
        return {"url": url, "params": params, "headers": headers}
    return {"url": url, "params": params, "json": body, "headers": headers}


async def _call(
    gateway: httpx.AsyncClient, key: tuple[str, str], world: World, who: Account | None
) -> httpx.Response:
    request = _request(key, world)
    headers = {**request.pop("headers"), **(who.bearer if who else {})}
    return await gateway.request(key[0], headers=headers, **request)


SECURED = sorted(k for k, a in EXPECTED.items() if a is not Access.PUBLIC)
ADMIN_ONLY = sorted(k for k, a in EXPECTED.items() if a is Access.ADMIN)
OWNED = sorted(k for k, a in EXPECTED.items() if a is Access.OWNED)
PUBLIC = sorted(k for k, a in EXPECTED.items() if a is Access.PUBLIC)


def _id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


@pytest.mark.parametrize("key", SECURED, ids=_id)
async def test_no_token_is_401(
    gateway: httpx.AsyncClient, world: World, key: tuple[str, str]
) -> None:
    response = await _call(gateway, key, world, None)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("key", PUBLIC, ids=_id)
async def test_public_operations_need_no_token(
    gateway: httpx.AsyncClient, world: World, key: tuple[str, str]
) -> None:
    response = await _call(gateway, key, world, None)
    # The dummy credentials of login/refresh are wrong (401 of the operation itself,
    # problem+json from the service), not a missing token refused by the gateway.
    if key in {("POST", "/api/auth/login"), ("POST", "/api/auth/refresh")}:
        assert response.status_code in (401, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    else:
        assert response.status_code < 400 or response.status_code == 422, response.text


@pytest.mark.parametrize("key", ADMIN_ONLY, ids=_id)
async def test_a_customer_on_an_admin_operation_is_403(
    gateway: httpx.AsyncClient, world: World, key: tuple[str, str]
) -> None:
    for customer in (world.owner, world.intruder):
        response = await _call(gateway, key, world, customer)
        assert response.status_code == 403, (customer.email, response.status_code, response.text)


@pytest.mark.parametrize("key", ADMIN_ONLY, ids=_id)
async def test_the_admin_is_let_through(
    gateway: httpx.AsyncClient, world: World, key: tuple[str, str]
) -> None:
    response = await _call(gateway, key, world, world.admin)
    assert response.status_code not in (401, 403), response.text
    if key[1].endswith("/faults/{point}") and key[0] == "PUT":
        # Leave no flag behind (it matched a made-up order anyway).
        await gateway.delete(
            key[1].replace("{point}", _request(key, world)["url"].rsplit("/", 1)[1]),
            params={"orderId": response.json()["match"]["orderId"]},
            headers=world.admin.bearer,
        )


@pytest.mark.parametrize("key", OWNED, ids=_id)
async def test_another_users_resource_is_404(
    gateway: httpx.AsyncClient, world: World, key: tuple[str, str]
) -> None:
    response = await _call(gateway, key, world, world.intruder)
    assert response.status_code == 404, response.text
    # The same answer as for an order that does not exist: nothing to tell them apart.
    made_up = World(world.owner, world.intruder, world.admin, str(uuid.uuid4()), world.product_id)
    missing = await _call(gateway, key, made_up, world.intruder)
    assert missing.status_code == 404
    told = response.json()["detail"].replace(world.order_id, "<id>")
    assert told == missing.json()["detail"].replace(made_up.order_id, "<id>")


@pytest.mark.parametrize("key", [k for k in OWNED if k[0] == "GET"], ids=_id)
async def test_the_owner_reads_their_resource(
    gateway: httpx.AsyncClient, world: World, key: tuple[str, str]
) -> None:
    async def readable() -> bool:
        # The shipment exists once the saga got that far: wait for it.
        return (await _call(gateway, key, world, world.owner)).status_code == 200

    await wait_for(readable, seconds=60, what=f"the owner reading {_id(key)}")


@pytest.mark.parametrize("path", ["/graphql", "/graphql/mobile"])
async def test_graphql_hides_another_users_order(
    gateway: httpx.AsyncClient, world: World, path: str
) -> None:
    single = {
        "query": "query($id: ID!) { order(id: $id) { id } }",
        "variables": {"id": world.order_id},
    }
    listing = {"query": "{ orders { id } }"}
    theirs = {
        "query": "query($u: ID) { orders(userId: $u) { id } }",
        "variables": {"u": world.owner.id},
    }
    as_owner = await gateway.post(path, json=single, headers=world.owner.bearer)
    assert as_owner.status_code == 200, as_owner.text
    assert as_owner.json()["data"]["order"]["id"] == world.order_id
    as_intruder = await gateway.post(path, json=single, headers=world.intruder.bearer)
    assert as_intruder.status_code == 200, as_intruder.text
    assert as_intruder.json()["data"]["order"] is None
    listed = await gateway.post(path, json=listing, headers=world.intruder.bearer)
    assert listed.status_code == 200, listed.text
    assert world.order_id not in [o["id"] for o in listed.json()["data"]["orders"]]
    # Naming the owner's user id does not widen a customer's view either.
    named = await gateway.post(path, json=theirs, headers=world.intruder.bearer)
    assert named.status_code == 200, named.text
    orders = (named.json().get("data") or {}).get("orders") or []
    assert world.order_id not in [o["id"] for o in orders]
