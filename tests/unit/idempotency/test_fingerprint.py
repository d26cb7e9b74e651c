"""Request fingerprints: canonical JSON bodies, unambiguous boundaries."""

from __future__ import annotations

from starlette.responses import JSONResponse

from handwritten.runtime.idempotency import (
    REPLAYED_HEADER,
    canonical_json,
    fingerprint,
    replay,
    request_fingerprint,
    stored,
)


def test_key_order_and_whitespace_do_not_change_the_request() -> None:
    a = b'{"items": [{"productId": "p", "quantity": 1}], "x": "S\xc3\xa3o"}'
    b = b'{"x":"S\\u00e3o","items":[{"quantity":1,"productId":"p"}]}'
    assert canonical_json(a) == canonical_json(b)
    assert request_fingerprint("POST", "/api/orders", a) == request_fingerprint(
        "post", "/api/orders", b
    )


def test_any_other_body_method_or_path_is_another_request() -> None:
    body = b'{"items": [{"productId": "p", "quantity": 1}]}'
    other = b'{"items": [{"productId": "p", "quantity": 2}]}'
    base = request_fingerprint("POST", "/api/orders", body)
    assert base != request_fingerprint("POST", "/api/orders", other)
    assert base != request_fingerprint("PUT", "/api/orders", body)
    assert base != request_fingerprint("POST", "/api/orders/x", body)


def test_parts_cannot_shift_across_boundaries() -> None:
    assert fingerprint("ab", "c") != fingerprint("a", "bc")


def test_non_json_bodies_are_fingerprinted_as_they_are() -> None:
    assert canonical_json(b"\xff not json") == b"\xff not json"


def test_stored_responses_replay_status_body_and_location_only() -> None:
    response = JSONResponse(
        {"orderId": "1"},
        status_code=201,
        headers={"Location": "/api/orders/1", "X-Correlation-ID": "abc"},
    )
    kept = stored(response)
    assert kept.status == 201
    assert kept.body == b'{"orderId":"1"}'
    assert dict(kept.headers) == {
        "content-type": "application/json",
        "location": "/api/orders/1",
    }
    again = replay(kept)
    assert again.status_code == 201
    assert again.body == kept.body
    assert again.headers["location"] == "/api/orders/1"
    assert again.headers[REPLAYED_HEADER] == "true"
    assert "x-correlation-id" not in again.headers
