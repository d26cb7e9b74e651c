"""The REST catalogue: public reads, admin-only writes, exact prices, problem+json."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from handwritten.inventory.adapters.seed import DEMO_PRODUCTS
from tests.integration.inventory.conftest import (
    PRODUCTS,
    Inventory,
    TokenIssuer,
    assert_problem,
)


def unique_name(prefix: str = "Produto") -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


async def create(inventory: Inventory, issuer: TokenIssuer, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": unique_name(),
        "description": "Teste.",
        "price": "19.90",
        "availableQuantity": 7,
    }
    response = await inventory.http.post(
        PRODUCTS, json={**body, **overrides}, headers=issuer.admin_headers()
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    inventory.created.append(uuid.UUID(created["productId"]))
    return created


async def test_demo_products_are_seeded_with_stable_ids(inventory: Inventory) -> None:
    for demo in DEMO_PRODUCTS:
        response = await inventory.http.get(f"{PRODUCTS}/{demo.product_id}")
        assert response.status_code == 200
        assert response.json()["name"] == demo.name


async def test_admin_creates_a_product_with_an_exact_price(
    inventory: Inventory, issuer: TokenIssuer
) -> None:
    name = unique_name("Cadeira")
    response = await inventory.http.post(
        PRODUCTS,
        json={"name": name, "price": "1234.50", "availableQuantity": 3},
        headers=issuer.admin_headers(),
    )
    assert response.status_code == 201, response.text
    product = response.json()
    inventory.created.append(uuid.UUID(product["productId"]))
    assert response.headers["location"] == f"{PRODUCTS}/{product['productId']}"
    assert product["name"] == name
    assert product["description"] == ""
    assert product["price"] == "1234.50"
    assert (product["availableQuantity"], product["reservedQuantity"]) == (3, 0)
    assert datetime.fromisoformat(product["createdAt"]).tzinfo is not None
    stored = await inventory.db.fetchval(
        "SELECT price::text FROM products WHERE product_id = $1", uuid.UUID(product["productId"])
    )
    assert stored == "1234.50"
    fetched = await inventory.http.get(response.headers["location"])
    assert fetched.json() == product


async def test_get_unknown_or_malformed_product(inventory: Inventory) -> None:
    body = assert_problem(await inventory.http.get(f"{PRODUCTS}/{uuid.uuid4()}"), 404)
    assert "does not exist" in body["detail"]
    assert_problem(await inventory.http.get(f"{PRODUCTS}/not-a-uuid"), 422)


async def test_the_catalogue_pages_in_creation_order(
    inventory: Inventory, issuer: TokenIssuer
) -> None:
    mine = [(await create(inventory, issuer))["productId"] for _ in range(3)]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = await inventory.http.get(PRODUCTS, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
        assert pages < 10_000
    ids = [p["productId"] for p in seen]
    assert len(ids) == len(set(ids)), "a product appeared on two pages"
    keys = [(datetime.fromisoformat(p["createdAt"]), uuid.UUID(p["productId"])) for p in seen]
    assert keys == sorted(keys)
    assert [i for i in ids if i in mine] == mine
    assert {str(d.product_id) for d in DEMO_PRODUCTS} <= set(ids)


async def test_malformed_cursor_and_limit_are_422(inventory: Inventory) -> None:
    body = assert_problem(await inventory.http.get(PRODUCTS, params={"cursor": "bm9wZQ"}), 422)
    assert body["errors"][0]["field"] == "cursor"
    assert_problem(await inventory.http.get(PRODUCTS, params={"limit": 0}), 422)
    assert_problem(await inventory.http.get(PRODUCTS, params={"limit": 101}), 422)


async def test_writes_need_a_valid_token(inventory: Inventory, issuer: TokenIssuer) -> None:
    body = {"name": unique_name(), "price": "5.00", "availableQuantity": 1}
    missing = assert_problem(await inventory.http.post(PRODUCTS, json=body), 401)
    assert "token" in missing["detail"]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (
        issuer.token(roles=["admin"], key=other_key),  # forged signature
        issuer.token(roles=["admin"], expires_in=-60),  # expired
        issuer.token(roles=["admin"], audience="someone-else"),
        issuer.token(roles=["admin"], issuer="someone-else"),
    ):
        response = await inventory.http.post(
            PRODUCTS, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    some_id = DEMO_PRODUCTS[0].product_id
    assert_problem(await inventory.http.patch(f"{PRODUCTS}/{some_id}", json={"price": "1.00"}), 401)
    count = await inventory.db.fetchval(
        "SELECT count(*) FROM products WHERE name = $1", body["name"]
    )
    assert count == 0
    # Authentication comes before validation: an anonymous caller learns nothing more.
    assert_problem(await inventory.http.post(PRODUCTS, json={"price": 1}), 401)
    forbidden = await inventory.http.post(
        PRODUCTS, json={"price": 1}, headers=issuer.customer_headers()
    )
    assert_problem(forbidden, 403)


async def test_writes_need_the_admin_role(inventory: Inventory, issuer: TokenIssuer) -> None:
    body = {"name": unique_name(), "price": "5.00", "availableQuantity": 1}
    response = await inventory.http.post(PRODUCTS, json=body, headers=issuer.customer_headers())
    assert "admin" in assert_problem(response, 403)["detail"]
    product = await create(inventory, issuer)
    response = await inventory.http.patch(
        f"{PRODUCTS}/{product['productId']}",
        json={"price": "0.50"},
        headers=issuer.customer_headers(),
    )
    assert_problem(response, 403)
    assert (await inventory.http.get(f"{PRODUCTS}/{product['productId']}")).json()["price"] == (
        "19.90"
    )


async def test_invalid_products_are_rejected_with_the_fields(
    inventory: Inventory, issuer: TokenIssuer
) -> None:
    base = {"name": unique_name(), "price": "5.00", "availableQuantity": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "price": "0.00"}, "price"),
        ({**base, "price": "-3.00"}, "price"),
        ({**base, "price": "5.5"}, "price"),
        ({**base, "price": 5.5}, "price"),
        ({**base, "availableQuantity": -1}, "availableQuantity"),
        ({**base, "name": ""}, "name"),
        ({**base, "extra": True}, "extra"),
        ({"name": base["name"], "price": "5.00"}, "availableQuantity"),
    ]
    for body, field in cases:
        response = await inventory.http.post(PRODUCTS, json=body, headers=issuer.admin_headers())
        problem = assert_problem(response, 422)
        assert field in {error["field"] for error in problem["errors"]}, (body, problem)
    count = await inventory.db.fetchval(
        "SELECT count(*) FROM products WHERE name = $1", base["name"]
    )
    assert count == 0


async def test_admin_patches_only_the_given_fields(
    inventory: Inventory, issuer: TokenIssuer
) -> None:
    product = await create(inventory, issuer, availableQuantity=10)
    product_id = uuid.UUID(product["productId"])
    # Some stock is held by a reservation: PATCH must not touch it.
    await inventory.db.execute(
        "UPDATE products SET available_quantity = 6, reserved_quantity = 4 WHERE product_id = $1",
        product_id,
    )
    response = await inventory.http.patch(
        f"{PRODUCTS}/{product_id}",
        json={"price": "49.90", "availableQuantity": 20},
        headers=issuer.admin_headers(),
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["price"] == "49.90"
    assert (changed["availableQuantity"], changed["reservedQuantity"]) == (20, 4)
    assert changed["name"] == product["name"]
    assert changed["description"] == product["description"]
    assert datetime.fromisoformat(changed["updatedAt"]) > datetime.fromisoformat(
        product["updatedAt"]
    )
    renamed = await inventory.http.patch(
        f"{PRODUCTS}/{product_id}", json={"name": "Novo nome"}, headers=issuer.admin_headers()
    )
    assert renamed.json()["name"] == "Novo nome"
    assert renamed.json()["price"] == "49.90"


async def test_invalid_patches(inventory: Inventory, issuer: TokenIssuer) -> None:
    product = await create(inventory, issuer)
    url = f"{PRODUCTS}/{product['productId']}"
    admin = issuer.admin_headers()
    assert_problem(await inventory.http.patch(url, json={}, headers=admin), 422)
    nulls = assert_problem(
        await inventory.http.patch(url, json={"name": None, "price": None}, headers=admin), 422
    )
    assert {e["field"] for e in nulls["errors"]} == {"name", "price"}
    assert_problem(await inventory.http.patch(url, json={"price": "0.00"}, headers=admin), 422)
    assert_problem(
        await inventory.http.patch(
            f"{PRODUCTS}/{uuid.uuid4()}", json={"price": "1.00"}, headers=admin
        ),
        404,
    )
    assert (await inventory.http.get(url)).json()["price"] == "19.90"
