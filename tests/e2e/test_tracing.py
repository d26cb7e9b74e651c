"""One order, ONE trace: the acceptance test of distributed tracing and log correlation.

A real OTLP/HTTP receiver runs in the test; the stack's order-path processes (the
gateway, orders, inventory, payment, shipping, analytics) are restarted with
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at it, and restarted again with their default
environment (tracing off) afterwards. One order is placed through the gateway with an
``X-Correlation-ID`` and followed until DELIVERED; then its spans must form one tree
rooted at the gateway's server span, and every service's log lines for it must carry
the same trace id and that correlation id.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LOG_DIR, REPO_ROOT, Account
from tests.e2e.saga_support import new_product, order_body, wait_status
from tests.support.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver

#: The processes an order goes through (the gateway is always restarted with them).
ORDER_PATH = ("orders", "inventory", "payment", "shipping", "analytics")
SERVICES = ("gateway", *ORDER_PATH)
RESTART_TIMEOUT = 300
#: Exporter settings for the test: export quickly, sample everything.
TRACING_ENV = {
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_TRACES_SAMPLER": "parentbased_always_on",
}


def _run_services(command: str, env: Mapping[str, str], *, attempts: int = 1) -> None:
    """``services.py <command>`` for the order path. ``up`` is idempotent, so it is
    tried again when a process died while starting (the stack is shared: another
    suite may stop a service at that moment)."""
    for _ in range(attempts):
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "infrastructure/local/services.py"), command],
            cwd=REPO_ROOT,
            env={**env, "MC_SERVICES": ",".join(ORDER_PATH)},
            capture_output=True,
            text=True,
            timeout=RESTART_TIMEOUT,
            check=False,
        )
        if done.returncode == 0:
            return
    raise AssertionError(
        f"services.py {command} failed {attempts} times:\n{done.stdout}\n{done.stderr}"
    )


def restart_order_path(extra_env: Mapping[str, str] | None = None) -> None:
    """Restart the order path's processes with the default environment plus ``extra_env``
    (any OTEL_* inherited from this process is dropped first)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    _run_services("down", env)
    _run_services("up", {**env, **(extra_env or {})}, attempts=3)


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_stack(receiver: OtlpReceiver) -> Iterator[OtlpReceiver]:
    """The order path exporting its spans to ``receiver`` for the module, then back to
    the default environment (tracing off) even if a test failed."""
    try:
        restart_order_path({**TRACING_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
        yield receiver
    finally:
        restart_order_path()


@pytest.fixture
def log_marks() -> dict[str, int]:
    """Where each service's log ends now: the test reads only what comes after."""
    return {name: _size(LOG_DIR / f"{name}.log") for name in SERVICES}


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def log_lines(name: str, since: int) -> list[dict[str, Any]]:
    """The JSON log lines ``name`` wrote after offset ``since``."""
    with (LOG_DIR / f"{name}.log").open("rb") as log:
        log.seek(since)
        data = log.read().decode("utf-8", "replace")
    lines = []
    for text in data.splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return lines


async def eventually(
    check: Callable[[], Any], *, seconds: float, what: str, interval: float = 0.5
) -> Any:
    """Poll ``check()`` until it returns something truthy without failing an
    assertion; then return that, else fail with its last complaint."""
    deadline = time.monotonic() + seconds
    complaint = ""
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError as error:
            complaint = str(error)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}: {complaint}")
        await asyncio.sleep(interval)


def order_trace_id(receiver: OtlpReceiver, order_id: str) -> str:
    """The one trace of the spans tagged with ``order.id`` (failing if there are several)."""
    tagged = [s for s in receiver.spans() if s.attributes.get("order.id") == order_id]
    traces: dict[str, list[str]] = {}
    for span in tagged:
        traces.setdefault(span.trace_id, []).append(f"{span.service}: {span.name}")
    # Spans in several traces mean a hop lost the context (or ran in an untraced
    # process, e.g. a replica another suite started): say which.
    assert len(traces) == 1, f"spans of order {order_id} are in {len(traces)} traces: {traces}"
    return next(iter(traces))


def complete_trace(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan]:
    """The trace once it has every expected part and no span misses its parent."""
    spans = receiver.trace(trace_id)
    ids = {s.span_id for s in spans}
    missing = [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]
    assert not missing, f"parents not (yet) received: {[(s.service, s.name) for s in missing]}"
    have = {(s.service, s.kind) for s in spans}
    wanted = {
        ("gateway", "SERVER"),
        ("orders", "SERVER"),
        ("inventory", "SERVER"),
        ("payment", "CONSUMER"),
        ("shipping", "CONSUMER"),
        ("analytics", "CONSUMER"),
    }
    assert wanted <= have, f"still missing {sorted(wanted - have)}"
    statuses = {s.attributes.get("shipment.status") for s in spans if s.service == "shipping"}
    assert "DELIVERED" in statuses, "the delivery span has not arrived yet"
    return spans


def assert_one_tree(spans: list[ReceivedSpan], trace_id: str, correlation_id: str) -> None:
    """The order's trace is one tree rooted at the gateway, with the expected hops."""
    by_id = {s.span_id: s for s in spans}

    def parent(span: ReceivedSpan) -> ReceivedSpan:
        assert span.parent_span_id is not None, f"{span.service} {span.name} is a root"
        return by_id[span.parent_span_id]

    # ONE root: the gateway's server span for the client's request, with its id.
    roots = [s for s in spans if s.parent_span_id is None]
    assert [(r.service, r.kind) for r in roots] == [("gateway", "SERVER")], roots
    assert roots[0].attributes["http.request.header.x_correlation_id"] == [correlation_id]
    # Every span of the trace hangs under it (no orphan), every link is in the trace.
    for span in spans:
        for linked_trace, linked_span in span.links:
            if linked_trace == trace_id:
                assert linked_span in by_id, f"{span.service} {span.name} links outside"

    # gateway → orders over HTTP: the orders server span is the child of the gateway's
    # client span.
    orders_request = next(
        s for s in spans if s.service == "orders" and s.kind == "SERVER" and "POST" in s.name
    )
    assert (parent(orders_request).service, parent(orders_request).kind) == ("gateway", "CLIENT")

    # orders → inventory over gRPC, with the rpc.* conventions.
    reserve = next(
        s for s in spans if s.service == "inventory" and s.name.endswith("/ReserveProducts")
    )
    assert reserve.kind == "SERVER"
    assert reserve.attributes["rpc.system"] == "grpc"
    assert reserve.attributes["rpc.service"] == "inventory.v1.InventoryService"
    assert reserve.attributes["rpc.grpc.status_code"] == 0
    caller = parent(reserve)
    assert (caller.service, caller.kind) == ("orders", "CLIENT")
    assert parent(caller).name == "saga step reserve_inventory"
    assert parent(caller).attributes["saga.step"] == "reserve_inventory"

    # orders → payment over Kafka, through the outbox: producer then consumer span.
    charge = next(
        s for s in spans if s.service == "payment" and s.name == "process payments.requested"
    )
    assert charge.kind == "CONSUMER"
    sent = parent(charge)
    assert (sent.service, sent.kind, sent.name) == ("orders", "PRODUCER", "send payments.requested")
    assert (trace_id, sent.span_id) in charge.links  # and linked to it, as conventions say
    assert parent(sent).name == "saga step process_payment"

    # Every saga step (and no compensation) is a span of this trace.
    steps = {s.attributes.get("saga.step") for s in spans if s.name.startswith("saga step")}
    assert {"reserve_inventory", "process_payment", "commit_reservation", "confirm_order"} <= steps

    # shipping: scheduled by its consumer; the timer's status changes continue from there.
    scheduled = next(
        s for s in spans if s.service == "shipping" and s.name == "process orders.confirmed"
    )
    for status in ("IN_TRANSIT", "DELIVERED"):
        change = next(
            s
            for s in spans
            if s.service == "shipping" and s.attributes.get("shipment.status") == status
        )
        assert parent(change).span_id == scheduled.span_id

    # analytics reads events of this order, each a consumer span under its producer.
    analytics = [s for s in spans if s.service == "analytics" and s.kind == "CONSUMER"]
    assert analytics
    assert all(parent(s).kind == "PRODUCER" for s in analytics)
    assert {s.service for s in spans} >= set(SERVICES)


async def test_one_order_is_one_trace_across_every_service_and_its_logs(
    traced_stack: OtlpReceiver,
    gateway: httpx.AsyncClient,
    account: Account,
    admin: Account,
    log_marks: dict[str, int],
) -> None:
    receiver = traced_stack
    product = await new_product(gateway, admin, stock=5)
    correlation_id = f"trace-e2e-{uuid.uuid4()}"
    created = await gateway.post(
        "/api/orders",
        json=order_body(product),
        headers={**account.bearer, "X-Correlation-ID": correlation_id},
    )
    assert created.status_code == 201, created.text
    order_id = str(created.json()["orderId"])
    await wait_status(gateway, account, order_id, {"DELIVERED"}, seconds=120)

    trace_id = await eventually(
        lambda: order_trace_id(receiver, order_id), seconds=30, what="the order's spans"
    )
    spans: list[ReceivedSpan] = await eventually(
        lambda: complete_trace(receiver, trace_id), seconds=60, what="the whole trace"
    )
    assert_one_tree(spans, trace_id, correlation_id)

    # Logs: every line with the client's correlation id is in this trace, and every
    # service on the order's path wrote some; the order's background work (saga,
    # consumers, shipping timer) logs with that correlation id and trace id too.
    seen: Counter[str] = Counter()
    for name in SERVICES:
        for line in log_lines(name, log_marks[name]):
            if line.get("correlation_id") == correlation_id:
                assert line.get("trace_id") == trace_id, (name, line)
                assert line.get("span_id"), (name, line)
                seen[name] += 1
            elif line.get("order_id") == order_id:
                raise AssertionError(f"{name} logged for the order without its ids: {line}")
    assert set(seen) == set(SERVICES), f"log lines per service: {dict(seen)}"


async def test_the_gateway_continues_a_trace_the_client_started(
    traced_stack: OtlpReceiver, gateway: httpx.AsyncClient
) -> None:
    receiver = traced_stack
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    answered = await gateway.get(
        "/api/inventory/products", headers={"traceparent": f"00-{trace_id}-{client_span}-01"}
    )
    assert answered.status_code == 200, answered.text

    def arrived() -> list[ReceivedSpan]:
        spans = receiver.trace(trace_id)
        assert {"gateway", "inventory"} <= {s.service for s in spans}, spans
        return spans

    spans = await eventually(arrived, seconds=30, what="the request's spans")
    entry = next(s for s in spans if s.service == "gateway" and s.kind == "SERVER")
    assert entry.parent_span_id == client_span
    served = next(s for s in spans if s.service == "inventory" and s.kind == "SERVER")
    upstream_call = next(s for s in spans if s.span_id == served.parent_span_id)
    assert (upstream_call.service, upstream_call.kind) == ("gateway", "CLIENT")
