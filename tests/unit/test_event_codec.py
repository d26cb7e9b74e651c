"""Encoding an event for Kafka and decoding it back, and refusing poison records."""

from __future__ import annotations

import json

import pytest

from generated.events.registry import ORDERS_CREATED, PAYMENTS_REQUESTED
from generated.models.events import OrderCreatedPayload
from handwritten.runtime.events import EventRecord, InvalidEventError, decode, encode, new_headers
from tests.samples import order_created_data


def _record() -> tuple[OrderCreatedPayload, EventRecord]:
    payload = OrderCreatedPayload.model_validate(order_created_data())
    headers = new_headers(ORDERS_CREATED, producer="orders", correlation_id="corr-1")
    return payload, encode(ORDERS_CREATED, payload, headers)


def test_encode_then_decode_gives_the_same_event() -> None:
    payload, record = _record()
    event = decode(record.topic, record.value, record.headers)
    assert event.payload == payload
    assert event.spec is ORDERS_CREATED
    assert event.headers.correlation_id == "corr-1"
    assert record.key == str(payload.order_id).encode()


def test_every_header_travels_as_bytes() -> None:
    _, record = _record()
    names = {name for name, _ in record.headers}
    assert {
        "event-id",
        "event-type",
        "correlation-id",
        "occurred-at",
        "schema-version",
        "producer",
    } <= names


def test_event_on_the_wrong_topic_is_poison() -> None:
    _, record = _record()
    with pytest.raises(InvalidEventError, match="does not belong"):
        decode(PAYMENTS_REQUESTED.topic, record.value, record.headers)


def test_invalid_payload_is_poison() -> None:
    _, record = _record()
    bad = json.loads(record.value)
    bad["totalAmount"] = "lots"
    with pytest.raises(InvalidEventError, match="invalid OrderCreated payload"):
        decode(record.topic, json.dumps(bad).encode(), record.headers)


def test_missing_headers_are_poison() -> None:
    _, record = _record()
    with pytest.raises(InvalidEventError, match="invalid headers"):
        decode(record.topic, record.value, [])


def test_payload_of_another_model_is_refused_on_encode() -> None:
    headers = new_headers(PAYMENTS_REQUESTED, producer="orders", correlation_id="c")
    payload = OrderCreatedPayload.model_validate(order_created_data())
    with pytest.raises(TypeError):
        encode(PAYMENTS_REQUESTED, payload, headers)
