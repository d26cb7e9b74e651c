"""Products the fuzzer orders from.

Random product ids never exist, so every generated order would stop at 409
(insufficient stock) and the saga, the order reads and the cancel links would never
run. A few products with plenty of stock, found by name (or created once) and topped
up at the start of each run, give the fuzzer real orders without touching the demo
products other tests and people use.

Schemathesis generates part of its cases while pytest collects the tests, when the
stack must not be needed yet, so generated orders name the products by placeholder
ids; ``resolve()`` swaps in the real ids when the request is sent (a UUID for a
UUID: the body keeps its length).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PRODUCT_NAMES = tuple(f"Contract fuzz stock {n}" for n in range(1, 4))
#: What generated orders carry instead of the real ids, one per product.
PLACEHOLDERS = tuple(f"00000000-0000-4000-8000-00000000f00{n}" for n in range(1, 4))
#: The most the inventory API accepts (CreateProductRequest.availableQuantity).
STOCK = 1_000_000
PRICE = "10.00"


@dataclass
class FuzzStock:
    """The ids of the fuzz products, looked up or created on first use."""

    gateway_url: str
    admin_token: Callable[[], str]
    _ids: tuple[str, ...] = ()
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def product_ids(self) -> tuple[str, ...]:
        with self._lock:
            if not self._ids:
                self._ids = self._prepare()
            return self._ids

    def resolve(self, body: bytes) -> bytes:
        """``body`` with every placeholder replaced by its product's real id."""
        if not any(placeholder.encode() in body for placeholder in PLACEHOLDERS):
            return body
        for placeholder, product_id in zip(PLACEHOLDERS, self.product_ids(), strict=True):
            body = body.replace(placeholder.encode(), product_id.encode())
        return body

    def _prepare(self) -> tuple[str, ...]:
        with httpx.Client(base_url=self.gateway_url, timeout=30) as client:
            existing = _products_by_name(client)
            headers = {"Authorization": f"Bearer {self.admin_token()}"}
            ids = []
            for name in PRODUCT_NAMES:
                if name in existing:
                    response = client.patch(
                        f"/api/inventory/products/{existing[name]}",
                        json={"availableQuantity": STOCK, "price": PRICE},
                        headers=headers,
                    )
                else:
                    response = client.post(
                        "/api/inventory/products",
                        json={"name": name, "price": PRICE, "availableQuantity": STOCK},
                        headers=headers,
                    )
                if response.status_code not in (200, 201):
                    raise RuntimeError(
                        f"cannot stock {name!r}: {response.status_code} {response.text}"
                    )
                ids.append(str(response.json()["productId"]))
            return tuple(ids)


def _products_by_name(client: httpx.Client) -> dict[str, str]:
    found: dict[str, str] = {}
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = client.get("/api/inventory/products", params=params)
        page.raise_for_status()
        body = page.json()
        for product in body["items"]:
            if product["name"] in PRODUCT_NAMES:
                found.setdefault(product["name"], product["productId"])
        if not body["nextCursor"]:
            return found
        params = {"limit": 100, "cursor": body["nextCursor"]}
