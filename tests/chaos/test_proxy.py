"""The chaos proxy itself, on real sockets: relaying, each fault, recovery, control API.

An echo server plays the upstream; then PostgreSQL (a real reset seen by asyncpg)
and the Kafka broker's chaos listener (a real producer through the proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from handwritten.chaos import NO_FAULT, ChaosControl, ChaosProxy, Direction, Endpoint, Fault, Mode
from tests.chaos.conftest import Proxy, spawn_proxy, stop_proxy
from tests.e2e.saga_support import REPO_ROOT, poll

LOCAL = "127.0.0.1"
#: A read that must NOT complete waits this long before the test calls it silence.
SILENCE_SECONDS = 0.5


@dataclass
class Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def roundtrip(self, data: bytes) -> bytes:
        self.writer.write(data)
        await self.writer.drain()
        return await asyncio.wait_for(self.reader.readexactly(len(data)), 5.0)

    def close(self) -> None:
        self.writer.transport.abort()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[Endpoint]:
    server = await asyncio.start_server(_echo, LOCAL, 0)
    port = server.sockets[0].getsockname()[1]
    yield Endpoint(LOCAL, port)
    server.close()


@pytest.fixture
async def route(echo: Endpoint) -> AsyncIterator[ChaosProxy]:
    proxy = ChaosProxy("echo", Endpoint(LOCAL, 0), echo)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def connect(proxy: ChaosProxy) -> Client:
    reader, writer = await asyncio.open_connection(proxy.address.host, proxy.address.port)
    return Client(reader, writer)


async def test_bytes_are_relayed_both_ways_and_counted(route: ChaosProxy) -> None:
    client = await connect(route)
    assert await client.roundtrip(b"hello") == b"hello"
    payload = bytes(range(256)) * 2048  # 512 KiB: many chunks, back-pressure included
    assert await client.roundtrip(payload) == payload
    view = route.view()
    assert view.stats.accepted == 1 and view.stats.active == 1
    assert view.stats.bytes_upstream == view.stats.bytes_downstream == 5 + len(payload)
    client.close()
    await poll(_no_active(route), seconds=5, what="the link to close", interval=0.05)


def _no_active(proxy: ChaosProxy) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return proxy.stats.active == 0

    return check


async def test_latency_delays_each_chunk_without_serialising_them(route: ChaosProxy) -> None:
    client = await connect(route)
    route.set_fault(Fault(latency_ms=300, direction=Direction.DOWNSTREAM))
    started = time.monotonic()
    assert await client.roundtrip(b"ping") == b"ping"
    assert time.monotonic() - started >= 0.3
    # Ten chunks 50 ms apart: pipelined they all arrive ~300 ms after they were sent,
    # not 10 x 300 ms later (a generous bound: half of the serialised time).
    started = time.monotonic()
    for index in range(10):
        client.writer.write(b"%02d" % index)
        await client.writer.drain()
        await asyncio.sleep(0.05)
    echoed = await asyncio.wait_for(client.reader.readexactly(20), 10)
    assert echoed == b"".join(b"%02d" % i for i in range(10))
    assert 0.3 <= time.monotonic() - started < 1.5
    route.set_fault(NO_FAULT)
    assert await client.roundtrip(b"fast again") == b"fast again"
    client.close()


async def test_latency_per_connection_delays_only_the_opening(route: ChaosProxy) -> None:
    route.set_fault(Fault(latency_ms=400, latency_per="connection"))
    started = time.monotonic()
    client = await connect(route)
    assert await client.roundtrip(b"first") == b"first"
    assert time.monotonic() - started >= 0.4
    route.set_fault(NO_FAULT)
    client.close()


async def test_reset_resets_open_connections_and_every_new_one(route: ChaosProxy) -> None:
    before = await connect(route)
    assert await before.roundtrip(b"up") == b"up"
    route.set_fault(Fault(mode=Mode.RESET))
    with pytest.raises(ConnectionResetError):
        await before.roundtrip(b"again")
    during = await connect(route)  # accepted by the kernel, then reset by the proxy
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await during.roundtrip(b"new")
    assert route.stats.resets >= 2
    route.set_fault(NO_FAULT)
    after = await connect(route)
    assert await after.roundtrip(b"recovered") == b"recovered"
    after.close()


async def test_a_one_shot_reset_drops_open_connections_only(route: ChaosProxy) -> None:
    first, second = await connect(route), await connect(route)
    assert await first.roundtrip(b"1") == b"1" and await second.roundtrip(b"2") == b"2"
    assert route.reset_connections() == 2
    for client in (first, second):
        with pytest.raises(ConnectionResetError):
            await client.roundtrip(b"x")
    fresh = await connect(route)
    assert await fresh.roundtrip(b"fresh") == b"fresh"
    fresh.close()


async def test_a_black_hole_holds_traffic_until_cleared(route: ChaosProxy) -> None:
    open_before = await connect(route)
    assert await open_before.roundtrip(b"before") == b"before"
    route.set_fault(Fault(mode=Mode.BLACKHOLE))
    open_before.writer.write(b"held")
    opened_during = await connect(route)  # accepted, but nothing reaches the upstream
    opened_during.writer.write(b"queued")
    for client, size in ((open_before, 4), (opened_during, 6)):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.reader.readexactly(size), SILENCE_SECONDS)
    route.set_fault(NO_FAULT)  # the partition heals: the held bytes go through
    assert await asyncio.wait_for(open_before.reader.readexactly(4), 5) == b"held"
    assert await asyncio.wait_for(opened_during.reader.readexactly(6), 5) == b"queued"
    open_before.close()
    opened_during.close()


async def test_close_new_refuses_new_connections_but_keeps_open_ones(route: ChaosProxy) -> None:
    open_before = await connect(route)
    route.set_fault(Fault(mode=Mode.CLOSE_NEW))
    refused = await connect(route)
    assert await asyncio.wait_for(refused.reader.read(10), 5) == b""  # FIN at once
    assert await open_before.roundtrip(b"still here") == b"still here"
    assert route.stats.closed_new == 1
    route.set_fault(NO_FAULT)
    again = await connect(route)
    assert await again.roundtrip(b"welcome") == b"welcome"
    for client in (open_before, again):
        client.close()


async def test_an_unreachable_upstream_resets_the_client() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind((LOCAL, 0))
        dead = Endpoint(LOCAL, probe.getsockname()[1])
    proxy = ChaosProxy("dead", Endpoint(LOCAL, 0), dead)
    await proxy.start()
    try:
        client = await connect(proxy)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await client.roundtrip(b"anyone?")
        assert proxy.stats.upstream_failures == 1
    finally:
        await proxy.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCAL, 0))
        return int(probe.getsockname()[1])


async def test_the_cli_proxy_is_driven_through_its_control_api(echo: Endpoint) -> None:
    listen, control_port = _free_port(), _free_port()
    control = ["--control", f"{LOCAL}:{control_port}"]
    # The documented command line.
    process = spawn_proxy(
        [*control, "proxy", "--listen", f"{LOCAL}:{listen}", "--upstream", str(echo)]
    )
    try:
        async with ChaosControl(f"http://{LOCAL}:{control_port}") as chaos:
            await poll(chaos.healthy, seconds=30, what="the proxy's control API", interval=0.2)
            reader, writer = await asyncio.open_connection(LOCAL, listen)
            client = Client(reader, writer)
            assert await client.roundtrip(b"via cli") == b"via cli"
            view = await chaos.set_fault("default", Fault(mode=Mode.BLACKHOLE))
            assert view.fault.mode is Mode.BLACKHOLE and view.upstream == str(echo)
            writer.write(b"held")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readexactly(4), SILENCE_SECONDS)
            await chaos.clear("default")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
            assert await chaos.reset("default") == 1
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                await client.roundtrip(b"x")
            (route,) = await chaos.routes()
            assert route.stats.accepted == 1 and route.stats.resets == 1
            status = await asyncio.to_thread(_cli, [*control, "status"])
            assert status.returncode == 0 and '"name": "default"' in status.stdout, status
    finally:
        await asyncio.to_thread(stop_proxy, process)
    assert process.returncode == 0  # a clean exit on SIGTERM


def _cli(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handwritten.chaos", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_postgres_clients_see_the_reset_and_reconnect() -> None:
    proxy = ChaosProxy("postgres", Endpoint(LOCAL, 0), Endpoint(LOCAL, 5432))
    await proxy.start()
    url = f"postgresql://orders:orders@{proxy.address}/orders"
    try:
        connection = await asyncpg.connect(url)
        assert await connection.fetchval("SELECT 1") == 1
        proxy.set_fault(Fault(mode=Mode.RESET))
        with pytest.raises((asyncpg.ConnectionDoesNotExistError, ConnectionResetError)):
            await connection.fetchval("SELECT 1")
        with pytest.raises((ConnectionResetError, asyncpg.ConnectionDoesNotExistError, OSError)):
            await asyncpg.connect(url, timeout=5)
        proxy.set_fault(NO_FAULT)
        again = await asyncpg.connect(url)
        assert await again.fetchval("SELECT 2") == 2
        await again.close()
    finally:
        await proxy.stop()


async def test_kafka_clients_reach_the_broker_through_its_chaos_listener(
    kafka_chaos_listener: None, clear_faults: Proxy
) -> None:
    chaos = clear_faults.control
    await _probe_topic()
    before = (await chaos.route("kafka")).stats
    producer = AIOKafkaProducer(
        bootstrap_servers=clear_faults.kafka, acks="all", request_timeout_ms=3000
    )
    try:
        await producer.start()
        marker = uuid.uuid4().hex.encode()
        sent = await producer.send_and_wait(PROBE_TOPIC, value=b"first", key=marker)
        after = (await chaos.route("kafka")).stats
        # Bootstrap AND the advertised address both lead through the proxy.
        assert after.accepted > before.accepted and after.bytes_downstream > 0
        await chaos.set_fault("kafka", Fault(mode=Mode.BLACKHOLE))
        pending = await producer.send(PROBE_TOPIC, value=b"second", key=marker)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pending), 1.0)
        await chaos.clear("kafka")
        late = await asyncio.wait_for(pending, 30)
        assert (late.topic, late.partition) == (sent.topic, sent.partition)
        assert late.offset > sent.offset
    finally:
        await producer.stop()
    # Both records are on the topic: read them back directly (not through the proxy).
    consumer = AIOKafkaConsumer(bootstrap_servers=f"{LOCAL}:9092", enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(sent.topic, sent.partition)
        consumer.assign([tp])
        consumer.seek(tp, sent.offset)
        batch = await consumer.getmany(tp, timeout_ms=5000)
        values = [r.value for r in batch.get(tp, []) if r.key == marker]
        assert values == [b"first", b"second"]
    finally:
        await consumer.stop()


PROBE_TOPIC = "chaos.probe"


async def _probe_topic() -> None:
    """A topic of the chaos tests' own (the broker does not auto-create topics)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=f"{LOCAL}:9092")
    await admin.start()
    try:
        if PROBE_TOPIC not in await admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(PROBE_TOPIC, 1, 1)])
    finally:
        await admin.close()
