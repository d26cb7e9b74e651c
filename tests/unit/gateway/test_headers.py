"""Header lists and what a proxy forwards."""

from __future__ import annotations

from handwritten.gateway.domain.headers import (
    HeaderList,
    strip_hop_by_hop,
    upstream_request_headers,
)


def test_header_list_is_case_insensitive_and_keeps_repeats() -> None:
    headers = HeaderList.from_raw([(b"x-user-id", b"a"), (b"Accept", b"*/*"), (b"X-User-ID", b"b")])
    assert headers.get("X-USER-ID") == "a"
    assert headers.get_all("x-user-id") == ["a", "b"]
    headers.set("X-User-ID", "c")
    assert headers.get_all("x-user-id") == ["c"]
    headers.remove("X-USER-ID", "accept")
    assert len(headers) == 0
    assert "x-user-id" not in headers


def test_hop_by_hop_headers_are_dropped() -> None:
    headers = HeaderList(
        [
            ("Connection", "keep-alive, X-Private"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("X-Private", "1"),
            ("Content-Type", "text/plain"),
        ]
    )
    assert list(strip_hop_by_hop(headers)) == [("Content-Type", "text/plain")]


def test_upstream_headers_carry_the_forwarding_facts() -> None:
    client = HeaderList(
        [
            ("Host", "shop.example.com:8000"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Real-IP", "1.1.1.1"),
            ("Expect", "100-continue"),
            ("Authorization", "Bearer t"),
        ]
    )
    headers = upstream_request_headers(
        client,
        client_ip="192.0.2.1",
        scheme="http",
        server_port=8000,
        original_path="/api/orders",
        upstream_host="orders:8102",
    )
    assert headers.get("Host") == "orders:8102"
    assert headers.get("X-Forwarded-For") == "203.0.113.7, 192.0.2.1"
    assert headers.get("X-Forwarded-Proto") == "http"
    assert headers.get("X-Forwarded-Host") == "shop.example.com"
    assert headers.get("X-Forwarded-Port") == "8000"
    assert headers.get("X-Forwarded-Path") == "/api/orders"
    assert headers.get("X-Real-IP") == "192.0.2.1"
    assert headers.get("Expect") is None
    assert headers.get("Authorization") == "Bearer t"
    preserved = upstream_request_headers(
        client,
        client_ip="192.0.2.1",
        scheme="http",
        server_port=8000,
        original_path="/",
        upstream_host=None,
    )
    assert preserved.get("Host") == "shop.example.com:8000"
