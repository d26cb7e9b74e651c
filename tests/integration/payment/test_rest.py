"""GET /api/payments/orders/{orderId}: admins read the payment of an order.

Payments are created through the real flow (commands over Kafka, handled by the
app's consumer in its throw-away schema, see ``conftest``); the service verifies the
bearer token itself against a local JWKS server publishing a test key.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.payment.conftest import Payments, order_of, running_payments
from tests.support.jwks import TokenIssuer, jwks_server

PROBLEM_JSON = "application/problem+json"
PAYMENT_FIELDS = {
    "paymentId",
    "orderId",
    "userId",
    "amount",
    "currency",
    "status",
    "paymentMethod",
    "gatewayTransactionId",
    "failureReason",
    "processedAt",
    "closedAt",
    "createdAt",
    "updatedAt",
}


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer(kid="payment-rest-test")


@pytest.fixture(scope="module")
def jwks_url(issuer: TokenIssuer) -> Iterator[str]:
    with jwks_server(issuer) as url:
        yield url


@pytest.fixture(scope="module")
async def payments(kafka_bootstrap: str, jwks_url: str) -> AsyncIterator[Payments]:
    async with running_payments(kafka_bootstrap, "test_payment_rest", jwks_url=jwks_url) as app:
        yield app


@pytest.fixture(scope="module")
async def http(payments: Payments) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=payments.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://payment.test") as client:
        yield client


@pytest.fixture(scope="module")
async def charged_order(payments: Payments) -> uuid.UUID:
    """An order charged with tok_visa (SUCCEEDED) through the consumer."""
    command = payments.charge("tok_visa", amount="249.90")
    await payments.send(command)
    await payments.wait_handled(command)
    return order_of(command)


def path(order_id: uuid.UUID | str) -> str:
    return f"/api/payments/orders/{order_id}"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


async def test_admin_reads_a_charged_payment(
    payments: Payments, http: httpx.AsyncClient, issuer: TokenIssuer, charged_order: uuid.UUID
) -> None:
    response = await http.get(path(charged_order), headers=issuer.admin_headers())

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == PAYMENT_FIELDS
    [row] = await payments.payment_rows(charged_order)
    assert body["paymentId"] == str(row["payment_id"])
    assert body["orderId"] == str(charged_order)
    assert body["userId"] == str(row["user_id"])
    assert body["amount"] == "249.90"
    assert body["currency"] == "BRL"
    assert body["status"] == "SUCCEEDED"
    assert body["paymentMethod"] == "tok_visa"
    assert body["gatewayTransactionId"] == row["gateway_transaction_id"] is not None
    assert body["failureReason"] is None
    assert body["processedAt"] is not None
    assert body["closedAt"] is None
    assert body["createdAt"] and body["updatedAt"]


async def test_admin_reads_a_declined_payment(
    payments: Payments, http: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    command = payments.charge("tok_chargeDeclined", amount="10.00")
    await payments.send(command)
    await payments.wait_handled(command)

    response = await http.get(path(order_of(command)), headers=issuer.admin_headers())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "FAILED"
    assert body["failureReason"] == "DECLINED"
    assert body["gatewayTransactionId"] is None
    assert body["amount"] == "10.00"


async def test_admin_reads_an_order_closed_before_any_charge(
    payments: Payments, http: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    order_id = uuid.uuid4()
    command = payments.refund(order_id)
    await payments.send(command)
    await payments.wait_handled(command)

    response = await http.get(path(order_id), headers=issuer.admin_headers())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "VOIDED"
    assert body["userId"] is None
    assert body["paymentMethod"] is None
    assert body["closedAt"] is not None


async def test_customer_token_403(
    http: httpx.AsyncClient, issuer: TokenIssuer, charged_order: uuid.UUID
) -> None:
    response = await http.get(path(charged_order), headers=issuer.headers(roles=["customer"]))
    assert_problem(response, 403)


async def test_role_is_checked_before_the_path(
    http: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    response = await http.get(path("not-a-uuid"), headers=issuer.headers(roles=["customer"]))
    assert_problem(response, 403)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer not.a.jwt"}, id="garbage"),
        pytest.param({"X-User-ID": str(uuid.uuid4())}, id="x-user-id-only"),
    ],
)
async def test_without_a_valid_token_401(
    http: httpx.AsyncClient, charged_order: uuid.UUID, headers: dict[str, str]
) -> None:
    response = await http.get(path(charged_order), headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_token_of_another_key_401(
    http: httpx.AsyncClient, issuer: TokenIssuer, charged_order: uuid.UUID
) -> None:
    stranger = TokenIssuer(kid=issuer.kid)  # same kid, different key: bad signature
    response = await http.get(path(charged_order), headers=stranger.admin_headers())
    assert_problem(response, 401)


async def test_unknown_order_404(http: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    order_id = uuid.uuid4()
    response = await http.get(path(order_id), headers=issuer.admin_headers())
    body = assert_problem(response, 404)
    assert str(order_id) in body["detail"]


async def test_bad_uuid_422(http: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    response = await http.get(path("not-a-uuid"), headers=issuer.admin_headers())
    body = assert_problem(response, 422)
    assert [error["field"] for error in body["errors"]] == ["orderId"]
