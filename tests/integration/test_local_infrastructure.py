"""The local infrastructure (infrastructure/local/infra.sh up) matches stack.json.

Assumes `infrastructure/local/infra.sh up` has been run: PostgreSQL, Redis and
Kafka are expected on the host/ports of infrastructure/local/stack.json.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.infra

STACK_PATH = Path(__file__).parents[2] / "infrastructure/local/stack.json"
STACK: dict[str, Any] = json.loads(STACK_PATH.read_text(encoding="utf-8"))
PG = STACK["postgres"]
DATABASES: list[dict[str, str]] = PG["databases"]
REDIS = STACK["redis"]
KAFKA = STACK["kafka"]
BOOTSTRAP = f"{KAFKA['host']}:{KAFKA['port']}"


def _require_listening(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"{name} is not reachable on {host}:{port} ({exc}); "
            "run `bash infrastructure/local/infra.sh up` first"
        )


async def _pg_connect(user: str, password: str, database: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG["host"],
        port=PG["port"],
        user=user,
        password=password,
        database=database,
        timeout=10,
        ssl=False,
    )


# ---------------------------------------------------------------- PostgreSQL


@pytest.mark.parametrize("db", DATABASES, ids=[d["name"] for d in DATABASES])
async def test_service_role_owns_and_uses_its_database(db: dict[str, str]) -> None:
    _require_listening("PostgreSQL", PG["host"], PG["port"])
    conn = await _pg_connect(db["user"], db["password"], db["name"])
    try:
        assert await conn.fetchval("SELECT current_user") == db["user"]
        assert await conn.fetchval("SELECT current_database()") == db["name"]
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        )
        assert owner == db["user"]
        schema_owner = await conn.fetchval(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'"
        )
        assert schema_owner == db["user"]
        assert not await conn.fetchval(
            "SELECT rolsuper OR rolcreatedb OR rolcreaterole FROM pg_roles "
            "WHERE rolname = current_user"
        )

        table = f"infra_probe_{uuid.uuid4().hex[:12]}"
        async with conn.transaction():
            await conn.execute(f"CREATE TABLE public.{table} (id int PRIMARY KEY, v text)")
            await conn.execute(f"INSERT INTO public.{table} VALUES (1, 'x')")
            assert await conn.fetchval(f"SELECT v FROM public.{table} WHERE id = 1") == "x"
            await conn.execute(f"DROP TABLE public.{table}")
        await conn.execute("CREATE TEMP TABLE infra_probe_tmp (id int)")
        await conn.execute("INSERT INTO infra_probe_tmp VALUES (1), (2)")
        assert await conn.fetchval("SELECT count(*) FROM infra_probe_tmp") == 2
        await conn.execute("DROP TABLE infra_probe_tmp")
    finally:
        await conn.close()


@pytest.mark.parametrize("db", DATABASES, ids=[d["name"] for d in DATABASES])
async def test_service_role_cannot_connect_to_other_databases(db: dict[str, str]) -> None:
    _require_listening("PostgreSQL", PG["host"], PG["port"])
    others = [d["name"] for d in DATABASES if d["name"] != db["name"]] + ["postgres"]
    for other in others:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            conn = await _pg_connect(db["user"], db["password"], other)
            await conn.close()


async def test_wrong_password_is_rejected() -> None:
    _require_listening("PostgreSQL", PG["host"], PG["port"])
    db = DATABASES[0]
    with pytest.raises(asyncpg.InvalidPasswordError):
        conn = await _pg_connect(db["user"], db["password"] + "-wrong", db["name"])
        await conn.close()


# --------------------------------------------------------------------- Redis


async def test_redis_round_trip() -> None:
    _require_listening("Redis", REDIS["host"], REDIS["port"])
    client = aioredis.Redis(host=REDIS["host"], port=REDIS["port"], db=0, socket_timeout=5)
    try:
        assert await client.ping() is True
        key, value = f"infra-probe:{uuid.uuid4().hex}", uuid.uuid4().hex
        assert await client.set(key, value, ex=30) is True
        assert await client.get(key) == value.encode()
        assert await client.delete(key) == 1
        assert await client.get(key) is None
    finally:
        await client.aclose()


# --------------------------------------------------------------------- Kafka


async def test_every_declared_topic_exists_with_its_partitions() -> None:
    _require_listening("Kafka", KAFKA["host"], KAFKA["port"])
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
    await admin.start()
    try:
        declared = {t["name"]: t for t in KAFKA["topics"]}
        assert declared, "stack.json declares no topics"
        assert set(declared) <= set(await admin.list_topics())
        described = await admin.describe_topics(list(declared))
    finally:
        await admin.close()
    actual = {t["topic"]: t for t in described}
    for name, spec in declared.items():
        assert actual[name]["error_code"] == 0, name
        partitions = actual[name]["partitions"]
        assert len(partitions) == spec["partitions"], name
        assert all(len(p["replicas"]) == spec["replication_factor"] for p in partitions), name


async def test_kafka_produce_consume_round_trip() -> None:
    """The broker really serves traffic (on a throw-away topic; auto-create is off)."""
    _require_listening("Kafka", KAFKA["host"], KAFKA["port"])
    topic = f"infra-probe-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=10000)
        await producer.start()
        payload = uuid.uuid4().bytes
        metadata = await producer.send_and_wait(topic, payload, key=b"k")
        await consumer.start()
        partition = TopicPartition(topic, metadata.partition)
        consumer.assign([partition])
        consumer.seek(partition, metadata.offset)
        batch = await consumer.getmany(partition, timeout_ms=10000)
        assert [m.value for m in batch.get(partition, [])][:1] == [payload]
    finally:
        await consumer.stop()
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()
