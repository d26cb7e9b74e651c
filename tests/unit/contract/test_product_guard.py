"""The fuzzer changes only products of its own (tests/contract/stock.py)."""

from __future__ import annotations

import json

import requests

from tests.contract.stock import SCRATCH_NAME, FuzzStock, ProductGuard

DEMO = "d7039768-be97-5394-bf5e-6b1018f67fdb"
SEEN = "11111111-1111-4111-8111-111111111111"
OWN = "22222222-2222-4222-8222-222222222222"
RANDOM = "33333333-3333-4333-8333-333333333333"
SCRATCH = "44444444-4444-4444-8444-444444444444"
STOCK_IDS = ("55555555-5555-4555-8555-555555555555",)
BASE = "http://127.0.0.1:8000/api/inventory/products"


class PreparedStock(FuzzStock):
    """Fuzz products with known ids, no gateway."""

    def _prepare(self, names: tuple[str, ...] = ()) -> tuple[str, ...]:
        return (SCRATCH,) if names == (SCRATCH_NAME,) else STOCK_IDS


def guard() -> ProductGuard:
    return ProductGuard(PreparedStock("http://gateway.invalid", lambda: ""), frozenset({DEMO}))


def answer(method: str, url: str, status: int, body: object) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.request = requests.Request(method, url).prepare()
    return response


def sent(products: ProductGuard, method: str, product_id: str) -> str:
    request = requests.Request(method, f"{BASE}/{product_id}", json={"name": "x"}).prepare()
    products.redirect(request)
    return str(request.url).rsplit("/", 1)[-1]


def test_a_change_to_a_seeded_demo_product_goes_to_the_scratch_product() -> None:
    assert sent(guard(), "PATCH", DEMO) == SCRATCH


def test_a_change_to_a_product_only_seen_in_a_listing_goes_to_the_scratch_product() -> None:
    products = guard()
    products.observe(answer("GET", BASE, 200, {"items": [{"productId": SEEN}], "nextCursor": None}))
    assert sent(products, "PATCH", SEEN) == SCRATCH
    assert sent(products, "GET", SEEN) == SEEN  # reading it is fine


def test_changes_to_its_own_products_and_to_random_ids_are_sent_as_generated() -> None:
    products = guard()
    products.observe(answer("POST", BASE, 201, {"productId": OWN}))
    products.observe(answer("GET", f"{BASE}/{OWN}", 200, {"productId": OWN}))
    assert sent(products, "PATCH", OWN) == OWN
    assert sent(products, "PATCH", STOCK_IDS[0]) == STOCK_IDS[0]
    assert sent(products, "PATCH", RANDOM) == RANDOM  # unknown: the service answers 404
