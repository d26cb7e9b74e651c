"""Our gateway in-process (uvicorn on a thread) on the generated kong.yml, with real
Redis, a real JWKS server and a real echo upstream recording what reaches it."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from handwritten.gateway.app import Gateway, load_kong_config, status_app
from handwritten.gateway.domain.config import kong_entity_id
from handwritten.gateway.settings import GatewaySettings
from handwritten.runtime.logging import configure_logging
from tests.gateway.support import (
    FORGED_CASES,
    EchoApp,
    JwksApp,
    TestKeys,
    ThreadedServer,
    bind_free_port,
    claims,
    header_values,
    wait_for,
)

pytestmark = pytest.mark.infra  # Redis

ROOT = Path(__file__).resolve().parents[3]
KONG_YML = ROOT / "infrastructure" / "gateway" / "kong.yml"
REDIS_URL = "redis://127.0.0.1:6379/0"
SERVICES = ("analytics", "auth", "bff", "inventory", "orders", "payment", "shipping")


@pytest.fixture(scope="module", autouse=True)
def json_logs() -> None:
    """Configure logging before any gateway logger is first used (structlog caches it)."""
    configure_logging("gateway", "INFO")


@pytest.fixture(scope="module")
def keys() -> TestKeys:
    return TestKeys()


@pytest.fixture(scope="module")
def jwks(keys: TestKeys) -> Iterator[tuple[JwksApp, str]]:
    app = JwksApp(keys)
    server = ThreadedServer(app).start()
    yield app, f"{server.url}/.well-known/jwks.json"
    server.stop()


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[EchoApp, str]]:
    app = EchoApp()
    server = ThreadedServer(app).start()
    yield app, server.url
    server.stop()


StartGateway = Callable[..., str]


@pytest.fixture
def start_gateway(jwks: tuple[JwksApp, str], echo: tuple[EchoApp, str]) -> Iterator[StartGateway]:
    """Start a gateway with settings overrides; returns its URL. Stopped at teardown."""
    servers: list[ThreadedServer] = []

    def start(**overrides: Any) -> str:
        values: dict[str, Any] = {
            "kong_config": KONG_YML,
            "jwks_url": jwks[1],
            "jwks_min_refetch_seconds": 0,
            "redis_url": REDIS_URL,
            "gateway_upstream_overrides": ",".join(f"{s}={echo[1]}" for s in SERVICES),
        }
        settings = GatewaySettings(**{**values, **overrides})
        gateway = Gateway(settings, load_kong_config(settings.kong_config))
        server = ThreadedServer(gateway, lifespan="on").start()
        status = ThreadedServer(status_app(gateway)).start()
        servers.extend([server, status])
        start.status_url = status.url  # type: ignore[attr-defined]
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway_url(start_gateway: StartGateway) -> str:
    return start_gateway()


def probe() -> str:
    return uuid.uuid4().hex


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------ security


def test_forged_tokens_never_reach_the_upstream(
    gateway_url: str, echo: tuple[EchoApp, str], keys: TestKeys
) -> None:
    marker = probe()
    with httpx.Client(base_url=gateway_url) as client:
        for case in FORGED_CASES:
            authorization = case.authorization(keys)
            headers = {"Authorization": authorization} if authorization else {}
            response = client.get("/api/orders", params={"probe": marker}, headers=headers)
            assert response.status_code == 401, case.name
            assert response.json() == case.body, case.name
    assert echo[0].records(marker) == []


def test_a_spoofed_user_header_is_replaced_by_the_token_subject(
    gateway_url: str, echo: tuple[EchoApp, str], keys: TestKeys
) -> None:
    subject, marker = user(), probe()
    response = httpx.get(
        f"{gateway_url}/api/orders",
        params={"probe": marker},
        headers=[
            ("Authorization", f"Bearer {keys.sign(claims(subject))}"),
            ("X-User-ID", "admin"),
            ("X-USER-ID", "root"),
        ],
    )
    assert response.status_code == 200
    [seen] = echo[0].records(marker)
    assert header_values(seen, "x-user-id") == [subject]
    assert header_values(seen, "x-credential-identifier") == [keys.kid]
    assert header_values(seen, "x-consumer-id") == [
        kong_entity_id("consumers", "microcommerce-users")
    ]


def test_dot_segments_cannot_reach_a_protected_route_through_a_public_one(
    gateway_url: str, echo: tuple[EchoApp, str]
) -> None:
    marker = probe()
    # GET /api/inventory is public; /api/inventory/../orders is /api/orders (jwt).
    for path in ("/api/inventory/../orders", "/api/inventory/%2e%2e/orders", "//api//orders"):
        response = httpx.get(f"{gateway_url}{path}", params={"probe": marker})
        assert response.status_code == 401, path
    assert echo[0].records(marker) == []


def test_a_key_rotated_into_the_jwks_works_on_first_use(
    gateway_url: str, jwks: tuple[JwksApp, str], keys: TestKeys
) -> None:
    token = keys.sign(claims(user()))
    assert httpx.get(f"{gateway_url}/api/orders", headers=bearer(token)).status_code == 200
    rotated = TestKeys()
    jwks[0].add(rotated)
    response = httpx.get(f"{gateway_url}/api/orders", headers=bearer(rotated.sign(claims(user()))))
    assert response.status_code == 200


def test_unknown_kids_cannot_flood_the_jwks(
    start_gateway: StartGateway, jwks: tuple[JwksApp, str], keys: TestKeys
) -> None:
    url = start_gateway(jwks_min_refetch_seconds=60)
    with httpx.Client(base_url=url) as client:
        assert (
            client.get("/api/orders", headers=bearer(keys.sign(claims(user())))).status_code == 200
        )
        before = jwks[0].fetches
        for _ in range(20):
            stranger = TestKeys(kid=f"unknown-{uuid.uuid4().hex}")
            response = client.get("/api/orders", headers=bearer(stranger.sign(claims(user()))))
            assert response.status_code == 401
    assert jwks[0].fetches - before <= 1


# ------------------------------------------------------------------ upstream failures


def test_a_dead_upstream_is_502(start_gateway: StartGateway, keys: TestKeys) -> None:
    with bind_free_port() as sock:  # bound, never listening: connections are refused
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        url = start_gateway(gateway_upstream_overrides=f"inventory={dead}")
        response = httpx.get(
            f"{url}/api/inventory/products", headers={"X-Correlation-ID": "dead-upstream"}
        )
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json; charset=utf-8"  # Accept: */*
    assert response.json()["message"] == "An invalid response was received from the upstream server"
    assert response.json()["request_id"] == response.headers["X-Kong-Request-Id"]
    assert response.headers["X-Correlation-ID"] == "dead-upstream"


def test_a_slow_upstream_is_504(
    start_gateway: StartGateway, echo: tuple[EchoApp, str], tmp_path: Path
) -> None:
    """kong.yml's per-service read_timeout (ms) bounds the wait, as in Kong."""
    config = yaml.safe_load(KONG_YML.read_text())
    (inventory,) = [s for s in config["services"] if s["name"] == "inventory"]
    inventory["read_timeout"] = 500
    fast = tmp_path / "kong.yml"
    fast.write_text(yaml.safe_dump(config))
    url = start_gateway(kong_config=fast)
    started = time.monotonic()
    response = httpx.get(f"{url}/api/inventory/products", params={"echo_delay": "3"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["message"] == "The upstream server is timing out"
    assert 0.5 <= elapsed < 2.5


# ------------------------------------------------------------------ streaming, pooling


def test_a_large_request_body_is_streamed_to_the_upstream(
    gateway_url: str, echo: tuple[EchoApp, str], keys: TestKeys
) -> None:
    chunk = b"0123456789abcdef" * 65536  # 1 MiB
    chunks = 24
    last_sent_at: list[float] = []

    def body() -> Iterator[bytes]:
        for index in range(chunks):
            if index == chunks - 1:
                time.sleep(0.5)  # the upstream must already have bytes by now
                last_sent_at.append(time.monotonic())
            yield chunk

    marker = probe()
    response = httpx.post(
        f"{gateway_url}/graphql",
        params={"probe": marker},
        content=body(),
        headers=bearer(keys.sign(claims(user()))),
        timeout=30,
    )
    assert response.status_code == 200
    [seen] = echo[0].records(marker)
    assert seen["body_length"] == len(chunk) * chunks
    assert seen["body_sha256"] == hashlib.sha256(chunk * chunks).hexdigest()
    assert seen["first_chunk_at"] < last_sent_at[0]


def test_a_sized_request_body_keeps_its_length(
    gateway_url: str, echo: tuple[EchoApp, str], keys: TestKeys
) -> None:
    data = uuid.uuid4().bytes * 500_000  # 8 MB with a Content-Length
    marker = probe()
    response = httpx.post(
        f"{gateway_url}/api/orders",
        params={"probe": marker},
        content=data,
        headers=bearer(keys.sign(claims(user()))),
        timeout=30,
    )
    assert response.status_code == 200
    [seen] = echo[0].records(marker)
    assert header_values(seen, "content-length") == [str(len(data))]
    assert seen["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_a_large_response_is_streamed_to_the_client(gateway_url: str) -> None:
    params = {"echo_chunks": "5", "echo_interval": "0.4", "echo_size": str(5 * 1024)}
    started = time.monotonic()
    with httpx.stream("GET", f"{gateway_url}/api/inventory/products", params=params) as response:
        assert response.status_code == 200
        arrivals = [time.monotonic() - started for _ in response.iter_raw()]
    assert arrivals[0] < 1.0  # before the upstream finished (>= 1.6 s)
    assert arrivals[-1] >= 1.6

    size = 20 * 1024 * 1024
    with httpx.stream(
        "GET", f"{gateway_url}/api/inventory/products", params={"echo_size": str(size)}
    ) as response:
        assert sum(len(part) for part in response.iter_raw()) == size


def test_a_client_that_leaves_stops_the_upstream_stream(
    gateway_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    params = {"echo_chunks": "20", "echo_interval": "0.2", "probe": probe()}
    started = time.monotonic()
    with httpx.stream("GET", f"{gateway_url}/api/inventory/products", params=params) as response:
        next(response.iter_raw())
    # the upstream would stream for 4 s more; the gateway lets go as soon as it notices

    def logged(event: str) -> bool:
        return any(isinstance(r.msg, dict) and r.msg.get("event") == event for r in caplog.records)

    wait_for(lambda: logged("client_disconnected") and logged("request"), 3, "the gateway to stop")
    assert time.monotonic() - started < 3


def test_upstream_connections_are_kept_alive(gateway_url: str, echo: tuple[EchoApp, str]) -> None:
    marker = probe()
    with httpx.Client(base_url=gateway_url) as client:
        for _ in range(30):
            assert client.get("/api/inventory/products", params={"probe": marker}).is_success
    seen = echo[0].records(marker)
    connections = {tuple(record["client"]) for record in seen}
    assert len(seen) == 30
    assert len(connections) < 5


def test_hop_by_hop_headers_stay_and_forwarded_headers_are_set(
    gateway_url: str, echo: tuple[EchoApp, str]
) -> None:
    marker = probe()
    httpx.get(
        f"{gateway_url}/api/inventory/products",
        params={"probe": marker},
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "connection-scoped",
            "Keep-Alive": "timeout=5",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
        },
    )
    [seen] = echo[0].records(marker)
    echo_host = echo[1].removeprefix("http://")
    assert header_values(seen, "x-private") == []
    assert header_values(seen, "keep-alive") == []
    assert header_values(seen, "host") == [echo_host]
    assert header_values(seen, "x-forwarded-for") == ["203.0.113.7, 127.0.0.1"]
    assert header_values(seen, "x-forwarded-proto") == ["http"]  # not the client's claim
    assert header_values(seen, "x-real-ip") == ["127.0.0.1"]
    assert header_values(seen, "x-forwarded-path") == ["/api/inventory/products"]
    assert len(header_values(seen, "x-kong-request-id")[0]) == 32


# ------------------------------------------------------------------ rate limiting


def test_counters_live_in_redis_under_kongs_keys(gateway_url: str, keys: TestKeys) -> None:
    subject = user()
    response = httpx.get(f"{gateway_url}/api/orders", headers=bearer(keys.sign(claims(subject))))
    assert response.headers["X-RateLimit-Remaining-Minute"] == "99"
    store = redis.Redis.from_url(REDIS_URL)
    try:
        route_id = kong_entity_id("routes", "orders")
        found = list(store.scan_iter(f"ratelimit:{route_id}:*:{subject}:*:minute"))
        assert len(found) == 1
        assert found[0].decode().split(":")[2] == "00000000-0000-0000-0000-000000000000"
        assert store.get(found[0]) == b"1"
        assert 0 < store.ttl(found[0]) <= 60
    finally:
        store.close()


def test_without_redis_requests_pass_unlimited(start_gateway: StartGateway, keys: TestKeys) -> None:
    with bind_free_port() as sock:  # nothing answers there
        url = start_gateway(redis_url=f"redis://127.0.0.1:{sock.getsockname()[1]}/0")
        response = httpx.get(f"{url}/api/orders", headers=bearer(keys.sign(claims(user()))))
    assert response.status_code == 200  # fault_tolerant: true
    assert "X-RateLimit-Limit-Minute" not in response.headers


# ------------------------------------------------------------------ observability


def test_status_listener_serves_health_and_kong_metrics(
    start_gateway: StartGateway, keys: TestKeys
) -> None:
    url = start_gateway()
    status_url = start_gateway.status_url  # type: ignore[attr-defined]
    httpx.get(f"{url}/api/orders", headers=bearer(keys.sign(claims(user()))))
    httpx.get(f"{url}/api/orders")
    assert httpx.get(f"{status_url}/status").json()["database"] == {"reachable": True}
    assert httpx.get(f"{status_url}/status/ready").status_code == 200
    expected = (
        'kong_http_requests_total{code="200",consumer="",route="orders",',
        'kong_http_requests_total{code="401",consumer="",route="orders",',
        "kong_upstream_latency_ms_bucket",
    )

    def exposed() -> bool:  # recorded in the log phase, after the response went out
        metrics = httpx.get(f"{status_url}/metrics").text
        return all(sample in metrics for sample in expected)

    wait_for(exposed, 5, "the requests in /metrics")
    assert httpx.get(f"{url}/metrics").status_code == 404  # not on the proxy listener


def test_one_json_log_line_per_request(
    gateway_url: str, keys: TestKeys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    subject = user()
    httpx.get(
        f"{gateway_url}/api/orders",
        headers={**bearer(keys.sign(claims(subject))), "X-Correlation-ID": "log-line"},
    )

    def lines() -> list[dict[str, Any]]:
        return [
            record.msg
            for record in caplog.records
            if isinstance(record.msg, dict)
            and record.msg.get("event") == "request"
            and record.msg.get("user_id") == subject
        ]

    # The line is written once the response is out: wait for it.
    wait_for(lambda: bool(lines()), 5, "the request's log line")
    [line] = lines()
    assert line["method"] == "GET"
    assert line["path"] == "/api/orders"
    assert line["route"] == "orders"
    assert line["upstream_service"] == "orders"
    assert line["status"] == 200
    assert line["correlation_id"] == "log-line"
    assert isinstance(line["duration_ms"], int)


async def test_a_bug_of_ours_is_kongs_500_not_a_stack_trace(
    jwks: tuple[JwksApp, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = GatewaySettings(kong_config=KONG_YML, jwks_url=jwks[1], redis_url=REDIS_URL)
    gateway = Gateway(settings, load_kong_config(KONG_YML))

    async def broken(*_: Any) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(gateway._pipeline, "access", broken)
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/api/orders")
    await gateway.aclose()
    assert response.status_code == 500
    assert response.json()["message"] == "An unexpected error occurred"
    assert "internal detail" not in response.text
