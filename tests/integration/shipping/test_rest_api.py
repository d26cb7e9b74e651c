"""GET /api/shipping/orders/{orderId}: the service verifies the bearer token itself;
customers see their own orders' shipments, admins all, everyone else a 404."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.shipping.conftest import (
    Orders,
    Shipping,
    TokenIssuer,
    assert_problem,
)


@pytest.fixture(scope="module")
async def scheduled_order(shipping: Shipping, orders: Orders) -> tuple[uuid.UUID, uuid.UUID]:
    """(order id, owner id) of an order with a SCHEDULED shipment."""
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    await orders.send(orders.confirmed(order_id, user_id))
    await shipping.shipment_id(order_id)
    return order_id, user_id


def path(order_id: uuid.UUID | str) -> str:
    return f"/api/shipping/orders/{order_id}"


async def test_owner_sees_the_shipment(
    shipping: Shipping, issuer: TokenIssuer, scheduled_order: tuple[uuid.UUID, uuid.UUID]
) -> None:
    order_id, user_id = scheduled_order
    response = await shipping.http.get(path(order_id), headers=issuer.headers(user_id))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"orderId", "trackingCode", "status", "estimatedDeliveryDate", "history"}
    assert body["status"] == "SCHEDULED"


async def test_admin_sees_any_shipment(
    shipping: Shipping, issuer: TokenIssuer, scheduled_order: tuple[uuid.UUID, uuid.UUID]
) -> None:
    order_id, _ = scheduled_order
    response = await shipping.http.get(path(order_id), headers=issuer.admin_headers())
    assert response.status_code == 200, response.text
    assert response.json()["orderId"] == str(order_id)


async def test_another_customer_gets_404_like_a_missing_order(
    shipping: Shipping, issuer: TokenIssuer, scheduled_order: tuple[uuid.UUID, uuid.UUID]
) -> None:
    order_id, _ = scheduled_order
    missing_id = uuid.uuid4()
    stranger = await shipping.http.get(path(order_id), headers=issuer.headers(uuid.uuid4()))
    missing = await shipping.http.get(path(missing_id), headers=issuer.headers(uuid.uuid4()))
    hidden, absent = assert_problem(stranger, 404), assert_problem(missing, 404)
    # Nothing tells "someone else's" from "no such shipment" apart but the echoed id.
    assert {**hidden, "detail": "", "instance": ""} == {**absent, "detail": "", "instance": ""}
    assert hidden["detail"].replace(str(order_id), "ID") == absent["detail"].replace(
        str(missing_id), "ID"
    )


async def test_x_user_id_is_never_trusted(
    shipping: Shipping, issuer: TokenIssuer, scheduled_order: tuple[uuid.UUID, uuid.UUID]
) -> None:
    order_id, user_id = scheduled_order
    response = await shipping.http.get(
        path(order_id), headers={**issuer.headers(uuid.uuid4()), "X-User-ID": str(user_id)}
    )
    assert_problem(response, 404)


async def test_without_a_valid_token_401(
    shipping: Shipping, issuer: TokenIssuer, scheduled_order: tuple[uuid.UUID, uuid.UUID]
) -> None:
    order_id, user_id = scheduled_order
    forged = issuer.token(
        user_id, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    for headers in (
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Basic {forged}"},
        {"Authorization": f"Bearer {forged}"},
    ):
        response = await shipping.http.get(path(order_id), headers=headers)
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert body["title"] == "Unauthorized"


async def test_authentication_comes_before_validation(
    shipping: Shipping, issuer: TokenIssuer
) -> None:
    assert_problem(await shipping.http.get(path("not-a-uuid")), 401)
    body = assert_problem(
        await shipping.http.get(path("not-a-uuid"), headers=issuer.headers()), 422
    )
    assert body["errors"][0]["field"] == "orderId"
