"""Hostile input at the edge: every one answers 4xx (never 5xx, never a hang), and a
rejected request stores nothing; text that is valid is stored verbatim, never run.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Account
from tests.e2e.saga_support import ADDRESS, new_product, order_body

MIB = 1024 * 1024
INJECTIONS = [
    "' OR 1=1 --",
    "x'); DROP TABLE users; --",
    '{"$gt": ""}',
    "'; SELECT pg_sleep(30); --",
    "${jndi:ldap://127.0.0.1:9/a}",
    "<script>alert(1)</script>",
]


def _rejected(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])


async def _my_order_count(gateway: httpx.AsyncClient, account: Account) -> int:
    response = await gateway.get("/api/orders", headers=account.bearer, params={"limit": 100})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def _product_count(gateway: httpx.AsyncClient, name: str) -> int:
    """Products named ``name`` (the listing is paged; walk every page)."""
    found, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = await gateway.get("/api/inventory/products", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        found += sum(1 for p in body["items"] if p["name"] == name)
        cursor = body.get("nextCursor")
        if not cursor:
            return found


@pytest.fixture(scope="module")
async def product(gateway: httpx.AsyncClient, admin: Account) -> str:
    return await new_product(gateway, admin, stock=100)


def _order_headers(account: Account) -> dict[str, str]:
    return {
        **account.bearer,
        "Idempotency-Key": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


# -- size and shape ----------------------------------------------------------------------


def _oversized(field: str) -> bytes:
    return json.dumps({field: "a" * (2 * MIB)}).encode()


async def test_oversized_bodies_are_413(
    gateway: httpx.AsyncClient, account: Account, admin: Account, product: str
) -> None:
    json_type = {"Content-Type": "application/json"}
    calls = [
        ("POST", "/api/orders", _order_headers(account), "shippingAddress"),
        ("POST", "/api/auth/register", json_type, "name"),
        ("POST", "/api/inventory/products", {**admin.bearer, **json_type}, "name"),
        ("PATCH", f"/api/inventory/products/{product}", {**admin.bearer, **json_type}, "name"),
    ]
    for method, path, headers, field in calls:
        response = await gateway.request(method, path, content=_oversized(field), headers=headers)
        assert response.status_code == 413, (path, response.status_code, response.text[:200])
    assert await _my_order_count(gateway, account) == 0


@pytest.mark.parametrize("shape", ["arrays", "objects"])
async def test_deeply_nested_json_is_4xx(
    gateway: httpx.AsyncClient, account: Account, shape: str
) -> None:
    depth = 10_000
    body = "[" * depth + "]" * depth if shape == "arrays" else '{"a":' * depth + "1" + "}" * depth
    for path, headers in (
        ("/api/orders", _order_headers(account)),
        ("/api/auth/register", {"Content-Type": "application/json"}),
    ):
        _rejected(await gateway.post(path, content=body.encode(), headers=headers))
    assert await _my_order_count(gateway, account) == 0


async def test_huge_arrays_are_4xx(
    gateway: httpx.AsyncClient, account: Account, product: str
) -> None:
    items = [{"productId": product, "quantity": 1}] * 100_000  # under the size cap: the schema
    body = {**order_body(product), "items": items}
    response = await gateway.post("/api/orders", json=body, headers=_order_headers(account))
    assert response.status_code in (413, 422), response.text[:300]
    bare = {**order_body(product), "items": [{}] * 100_000}
    _rejected(await gateway.post("/api/orders", json=bare, headers=_order_headers(account)))
    assert await _my_order_count(gateway, account) == 0


@pytest.mark.parametrize(
    "quantity", [0, -1, 2**63, 2**31, 10**400, 1e308, "1", True, None, 1.5, "1; DROP TABLE orders"]
)
async def test_bad_quantities_are_422_and_create_nothing(
    gateway: httpx.AsyncClient, account: Account, product: str, quantity: Any
) -> None:
    body = order_body(product)
    body["items"][0]["quantity"] = quantity
    raw = json.dumps(body).encode()  # 10**400 is a JSON number too big for a float
    response = await gateway.post("/api/orders", content=raw, headers=_order_headers(account))
    assert response.status_code == 422, response.text[:300]
    assert await _my_order_count(gateway, account) == 0


@pytest.mark.parametrize("price", ["-1.00", "0", "1e308", "NaN", "Infinity", "1.001", 10**30])
async def test_bad_prices_are_422_and_create_no_product(
    gateway: httpx.AsyncClient, admin: Account, price: Any
) -> None:
    name = f"bad-price-{uuid.uuid4().hex[:8]}"
    body = {"name": name, "description": "x", "price": price, "availableQuantity": 1}
    response = await gateway.post("/api/inventory/products", json=body, headers=admin.bearer)
    assert response.status_code == 422, response.text[:300]
    assert await _product_count(gateway, name) == 0


# -- injection ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", INJECTIONS)
async def test_injection_strings_in_text_are_stored_verbatim(
    gateway: httpx.AsyncClient, admin: Account, text: str
) -> None:
    email = f"inj-{uuid.uuid4().hex[:10]}@example.com"
    created = await gateway.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": text}
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == text
    name = f"{text} {uuid.uuid4().hex[:6]}"
    product = await gateway.post(
        "/api/inventory/products",
        json={"name": name, "description": text, "price": "1.00", "availableQuantity": 1},
        headers=admin.bearer,
    )
    assert product.status_code == 201, product.text
    stored = await gateway.get(f"/api/inventory/products/{product.json()['productId']}")
    assert (stored.json()["name"], stored.json()["description"]) == (name, text)


@pytest.mark.parametrize("value", [{"$gt": ""}, {"$ne": None}, ["admin@microcommerce.local"], 1])
async def test_operator_objects_as_credentials_are_422(
    gateway: httpx.AsyncClient, value: Any
) -> None:
    for body in (
        {"email": value, "password": "x"},
        {"email": "admin@microcommerce.local", "password": value},
    ):
        response = await gateway.post("/api/auth/login", json=body)
        assert response.status_code == 422, response.text


@pytest.mark.parametrize("text", [*INJECTIONS, "../../etc/passwd", "%00", "1 OR 1=1"])
async def test_injection_strings_in_path_params_are_4xx(
    gateway: httpx.AsyncClient, account: Account, text: str
) -> None:
    for path in (
        "/api/orders/{}",
        "/api/orders/{}/events",
        "/api/shipping/orders/{}",
        "/api/inventory/products/{}",
    ):
        url = path.format(httpx.URL("/" + text).raw_path.decode()[1:].replace("/", "%2F"))
        response = await gateway.get(url, headers=account.bearer)
        assert response.status_code in (400, 404, 422), (url, response.status_code, response.text)


# -- unicode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "raw_name"),
    [
        ("nul", '"Ana\\u0000Maria"'),
        ("lone-surrogate", '"Ana\\ud800"'),
        ("lone-low-surrogate", '"\\udfffAna"'),
        ("very-long", json.dumps("A" * 100_000)),
        ("only-controls", '"\\u0001\\u0002"'),
    ],
)
async def test_bad_unicode_in_a_name_is_4xx_and_registers_nobody(
    gateway: httpx.AsyncClient, case: str, raw_name: str
) -> None:
    email = f"uni-{uuid.uuid4().hex[:10]}@example.com"
    raw = f'{{"email": "{email}", "password": "{PASSWORD}", "name": {raw_name}}}'.encode()
    response = await gateway.post(
        "/api/auth/register", content=raw, headers={"Content-Type": "application/json"}
    )
    _rejected(response)
    again = await gateway.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Ana"}
    )
    assert again.status_code == 201, f"{case}: the rejected request stored the account"


@pytest.mark.parametrize(
    "name",
    ["Ana 🛒🇧🇷", "\u202eanA", "Zoë Ω ﬁ", "مرحبا", "名前"],
    ids=["emoji", "rtl", "nfc", "ar", "ja"],
)
async def test_unusual_but_valid_unicode_is_stored_verbatim(
    gateway: httpx.AsyncClient, name: str
) -> None:
    email = f"uni-{uuid.uuid4().hex[:10]}@example.com"
    response = await gateway.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": name}
    )
    if response.status_code == 422:  # refusing e.g. a bidi override is acceptable
        return
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


async def test_nfc_and_nfd_spellings_of_an_email_are_one_account(
    gateway: httpx.AsyncClient,
) -> None:
    local = f"jos\u00e9-{uuid.uuid4().hex[:8]}"
    nfc = unicodedata.normalize("NFC", f"{local}@example.com")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    first = await gateway.post(
        "/api/auth/register", json={"email": nfc, "password": PASSWORD, "name": "José"}
    )
    if first.status_code == 422:  # internationalised addresses refused outright: also safe
        second = await gateway.post(
            "/api/auth/register", json={"email": nfd, "password": PASSWORD, "name": "José"}
        )
        assert second.status_code == 422
        return
    assert first.status_code == 201, first.text
    second = await gateway.post(
        "/api/auth/register", json={"email": nfd, "password": PASSWORD, "name": "Jose"}
    )
    assert second.status_code == 409, second.text
    login = await gateway.post("/api/auth/login", json={"email": nfd, "password": PASSWORD})
    assert login.status_code == 200, login.text


async def test_a_bad_address_creates_no_order(
    gateway: httpx.AsyncClient, account: Account, product: str
) -> None:
    for address in (
        {**ADDRESS, "state": "S\u0000"},
        {**ADDRESS, "zipCode": "01310-100' OR '1'='1"},
        {**ADDRESS, "street": "\ud800"},
        {**ADDRESS, "city": "x" * 100_000},
    ):
        body = {**order_body(product), "shippingAddress": address}
        raw = json.dumps(body).encode()  # lone surrogates survive as \ud800 escapes
        _rejected(await gateway.post("/api/orders", content=raw, headers=_order_headers(account)))
    assert await _my_order_count(gateway, account) == 0
