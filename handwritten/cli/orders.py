"""``mc order create|show|cancel``, ``mc saga show``, ``mc events``: the orders API."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

from handwritten.cli.client import Gateway
from handwritten.cli.render import event_row, saga_timeline

#: A valid Brazilian address for demos (the API validates state and zip code).
DEMO_ADDRESS = {
    "street": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "zipCode": "01310-100",
}


def create(gateway: Gateway, items: list[dict[str, Any]], token: str) -> dict[str, Any]:
    """Place an order (with a fresh Idempotency-Key) and return it."""
    body = {"items": items, "shippingAddress": DEMO_ADDRESS, "paymentMethod": {"token": token}}
    order: dict[str, Any] = gateway.request(
        "POST", "/api/orders", json_body=body, idempotent_post=True
    )
    return order


def show(gateway: Gateway, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = gateway.request("GET", f"/api/orders/{order_id}")
    return order


def cancel(gateway: Gateway, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = gateway.request("POST", f"/api/orders/{order_id}/cancel")
    return order


def saga(gateway: Gateway, order_id: str) -> dict[str, Any]:
    state: dict[str, Any] = gateway.request("GET", f"/api/orders/{order_id}/saga")
    return state


def events(gateway: Gateway, order_id: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = gateway.request("GET", f"/api/orders/{order_id}/events")
    return list(body["events"])


def order_table(order: dict[str, Any]) -> Table:
    """Status, money, payment, shipping and items of one order."""
    table = Table(title=f"order {order['orderId']}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("status", str(order.get("status")))
    table.add_row("total", str(order.get("totalAmount")))
    if order.get("cancelReason"):
        table.add_row("cancel reason", str(order["cancelReason"]))
    payment = order.get("payment") or {}
    shipping = order.get("shipping") or {}
    table.add_row("payment", str(payment.get("status", "-")))
    table.add_row(
        "shipping", f"{shipping.get('status', '-')} {shipping.get('trackingCode') or ''}".strip()
    )
    for item in order.get("items", []):
        table.add_row(
            "item", f"{item['productId']} × {item['quantity']} @ {item.get('unitPrice', '?')}"
        )
    table.add_row("created", str(order.get("createdAt")))
    return table


def saga_table(state: dict[str, Any]) -> Table:
    """The saga as a timeline: forward steps, then compensations (last undone first)."""
    table = Table(title=f"saga {state['sagaId']} — {state['state']}")
    for column in ("step", "phase", "status", "started", "duration", "attempts"):
        table.add_column(column, no_wrap=True)
    table.add_column("error", overflow="fold")
    for row in saga_timeline(state):
        table.add_row(
            row.step, row.phase, row.status, row.started, row.duration, str(row.attempts), row.error
        )
    return table


def events_table(order_id: str, history: list[dict[str, Any]]) -> Table:
    table = Table(title=f"events of order {order_id}")
    for column in ("seq", "type", "occurred at", "data"):
        table.add_column(column, overflow="fold")
    for event in history:
        table.add_row(*event_row(event))
    return table


def follow_events(
    gateway: Gateway, order_id: str, console: Console, *, interval: float, until_idle: float
) -> None:
    """Print new events as they arrive; stop after ``until_idle`` seconds without one
    once the order is terminal (0 = forever)."""
    seen = 0
    last_news = time.monotonic()
    terminal = {"DELIVERED", "CANCELED"}
    while True:
        history = events(gateway, order_id)
        for event in history[seen:]:
            sequence, kind, occurred, data = event_row(event)
            console.print(f"{sequence:>3} {occurred} [bold]{kind}[/] {data}")
            last_news = time.monotonic()
        seen = max(seen, len(history))
        idle = time.monotonic() - last_news
        if until_idle and idle > until_idle and show(gateway, order_id)["status"] in terminal:
            return
        time.sleep(interval)
