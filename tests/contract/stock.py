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

The fuzzer also changes products (``update_product`` with random names, prices and
stock), and links lead it to products it did not create: the first page of the
catalogue holds the seeded demo products, later pages other tests' products.
``ProductGuard`` keeps it to its own: a change aimed at a product it has only seen
goes to a scratch product of its own instead (same operation, same body), while
random ids still reach the service and get their 404.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import requests

PRODUCT_NAMES = tuple(f"Contract fuzz stock {n}" for n in range(1, 4))
#: The product a change to someone else's product is redirected to.
SCRATCH_NAME = "Contract fuzz scratch"
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
    _scratch: str = ""
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

    def scratch_id(self) -> str:
        """The id of the scratch product (looked up or created on first use)."""
        with self._lock:
            if not self._scratch:
                (self._scratch,) = self._prepare((SCRATCH_NAME,))
            return self._scratch

    def _prepare(self, names: tuple[str, ...] = PRODUCT_NAMES) -> tuple[str, ...]:
        with httpx.Client(base_url=self.gateway_url, timeout=30) as client:
            existing = _products_by_name(client, names)
            headers = {"Authorization": f"Bearer {self.admin_token()}"}
            ids = []
            for name in names:
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


def _products_by_name(client: httpx.Client, names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = client.get("/api/inventory/products", params=params)
        page.raise_for_status()
        body = page.json()
        for product in body["items"]:
            if product["name"] in names:
                found.setdefault(product["name"], product["productId"])
        if not body["nextCursor"]:
            return found
        params = {"limit": 100, "cursor": body["nextCursor"]}


PRODUCT_PATH = re.compile(r"^/api/inventory/products/(?P<id>[^/]+)$")
CHANGES = frozenset({"PATCH", "PUT", "DELETE"})


@dataclass
class ProductGuard:
    """Keeps the fuzzer's product changes on products of its own (thread-safe)."""

    stock: FuzzStock
    #: Products no fuzz request may change (the seeded demo products).
    protected: frozenset[str] = frozenset()
    _own: set[str] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def redirect(self, request: requests.PreparedRequest) -> None:
        """Aim a change to a product the fuzzer did not create at the scratch product."""
        if request.method not in CHANGES:
            return
        url = urlsplit(request.url or "")
        match = PRODUCT_PATH.match(url.path)
        if match is None:
            return
        product_id = match["id"]
        with self._lock:
            foreign = product_id in self.protected or (
                product_id in self._seen and product_id not in self._own
            )
        if foreign and product_id not in self.stock.product_ids():
            path = f"/api/inventory/products/{self.stock.scratch_id()}"
            request.url = urlunsplit(url._replace(path=path))

    def observe(self, response: requests.Response) -> None:
        """Learn product ids from inventory answers: created (own) or only seen."""
        path = urlsplit(response.request.url or "").path
        if not path.startswith("/api/inventory/products") or response.status_code >= 300:
            return
        try:
            body = response.json()
        except ValueError:  # not JSON (requests' JSONDecodeError is a ValueError)
            return
        items = body.get("items") if isinstance(body, dict) else None
        found = [
            str(item["productId"])
            for item in (items if isinstance(items, list) else [body])
            if isinstance(item, dict) and "productId" in item
        ]
        with self._lock:
            if response.request.method == "POST" and response.status_code == 201:
                self._own.update(found)
            else:
                self._seen.update(found)
