"""The generated event models accept valid payloads and reject invalid ones."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from generated import catalog
from generated.events.registry import EVENTS, ORDERS_CREATED
from generated.models.events import EventHeaders, OrderCreatedPayload
from tests.samples import order_created_data


def test_valid_payload_round_trips_by_alias() -> None:
    data = order_created_data()
    payload = OrderCreatedPayload.model_validate(data)
    assert payload.model_dump(mode="json", by_alias=True) == data
    assert ORDERS_CREATED.key_of(payload) == data["orderId"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"orderId": "not-a-uuid"},
        {"totalAmount": "699.8"},
        {"totalAmount": 699.80},
        {"currency": "USD"},
        {"items": []},
        {"unexpected": "field"},
        {"createdAt": "2026-11-28T12:00:00"},
        {"shippingAddress": {"street": "x", "city": "y", "state": "sp", "zipCode": "01310-100"}},
        {"shippingAddress": {"street": "x", "city": "y", "state": "SP", "zipCode": "01310100"}},
    ],
    ids=[
        "bad-uuid",
        "one-decimal",
        "float-money",
        "currency",
        "no-items",
        "extra-field",
        "naive-datetime",
        "lowercase-state",
        "zip-without-dash",
    ],
)
def test_invalid_payload_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OrderCreatedPayload.model_validate(order_created_data(**overrides))


def test_missing_required_field_is_rejected() -> None:
    data = order_created_data()
    del data["userId"]
    with pytest.raises(ValidationError):
        OrderCreatedPayload.model_validate(data)


def test_headers_reject_a_malformed_traceparent() -> None:
    with pytest.raises(ValidationError):
        EventHeaders.model_validate(
            {
                "event-id": "7d3f7a3e-6f1e-4f7e-9a51-0c5b4f0d2d6a",
                "event-type": "OrderCreated",
                "correlation-id": "abc",
                "occurred-at": "2026-11-28T12:00:00+00:00",
                "schema-version": "1",
                "producer": "orders",
                "traceparent": "not-a-traceparent",
            }
        )


def test_registry_has_one_spec_per_topic_with_a_key_in_its_payload() -> None:
    assert len({spec.topic for spec in EVENTS}) == len(EVENTS) == len(catalog.TOPICS)
    for spec in EVENTS:
        aliases = {field.alias or name for name, field in spec.payload_model.model_fields.items()}
        assert spec.key_field in aliases, spec.topic
