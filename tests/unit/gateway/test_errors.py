"""The responses the gateway writes itself, byte for byte as Kong 3.8."""

from __future__ import annotations

import json

import pytest

from handwritten.gateway.domain.errors import (
    HTML_TYPE,
    JSON_TYPE,
    PLAIN_TYPE,
    XML_TYPE,
    cjson,
    kong_error,
    kong_exit,
    response_type,
)


def test_kong_error_json_template() -> None:
    response = kong_error(404, "no Route matched with those values", request_id="abc", accept=None)
    assert response.status == 404
    assert response.content_type == "application/json; charset=utf-8"
    assert response.body == (
        b'{\n  "message":"no Route matched with those values",\n  "request_id":"abc"\n}'
    )
    assert json.loads(response.body) == {
        "message": "no Route matched with those values",
        "request_id": "abc",
    }


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (502, "An invalid response was received from the upstream server"),
        (503, "The upstream server is currently unavailable"),
        (504, "The upstream server is timing out"),
        (429, "Too many requests"),
    ],
)
def test_default_messages(status: int, message: str) -> None:
    body = json.loads(kong_error(status, None, request_id="r", accept=None).body)
    assert body["message"] == message


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, JSON_TYPE),
        ("*/*", JSON_TYPE),
        ("application/json", JSON_TYPE),
        ("text/html", HTML_TYPE),
        ("text/plain", PLAIN_TYPE),
        ("text/*", PLAIN_TYPE),
        ("application/xml", XML_TYPE),
        ("image/png", JSON_TYPE),
        ("text/html;q=0.5, application/xml;q=0.9", XML_TYPE),
        ("text/html, application/xml", HTML_TYPE),  # first among equals
        ("text/plain;q=0", JSON_TYPE),
        ("garbage", JSON_TYPE),
    ],
)
def test_error_content_negotiation(accept: str | None, content_type: str) -> None:
    assert response_type(accept) == content_type


def test_other_templates() -> None:
    plain = kong_error(429, "API rate limit exceeded", request_id="r1", accept="text/plain")
    assert plain.body == b"API rate limit exceeded\nrequest_id: r1\n"
    html = kong_error(
        404, "no Route matched with those values", request_id="r2", accept="text/html"
    )
    assert b"<p>no Route matched with those values.</p>" in html.body
    xml = kong_error(504, None, request_id="r3", accept="application/xml")
    assert b"<message>The upstream server is timing out</message>" in xml.body


def test_kong_exit_is_compact_json() -> None:
    response = kong_exit(401, {"message": "Unauthorized"}, (("WWW-Authenticate", "Bearer"),))
    assert response.body == b'{"message":"Unauthorized"}'
    assert response.content_type == JSON_TYPE
    assert response.headers == (("WWW-Authenticate", "Bearer"),)
    # lua-cjson escapes slashes
    assert cjson({"path": "/a/b"}) == b'{"path":"\\/a\\/b"}'
