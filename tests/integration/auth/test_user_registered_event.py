"""Registering a user publishes users.registered through the transactional outbox."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
from aiokafka import ConsumerRecord

from generated.events.registry import USERS_REGISTERED
from handwritten.runtime.kafka import decode_record, event_consumer
from tests.integration.auth.conftest import register, unique_email

DEADLINE_SECONDS = 30


async def test_registration_reaches_kafka_once_with_the_user_as_key(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    email = unique_email("event")
    _, user = await register(client, email=email)
    user_id = str(user["id"])
    group = f"test-users-registered-{uuid.uuid4()}"
    consumer = event_consumer(
        kafka_bootstrap, group_id=group, topics=[USERS_REGISTERED.topic], client_id=group
    )
    await consumer.start()
    try:

        async def ours() -> ConsumerRecord[bytes, bytes]:
            async for record in consumer:
                if record.key == user_id.encode():
                    return record
            raise AssertionError("consumer stopped")

        record = await asyncio.wait_for(ours(), DEADLINE_SECONDS)
    finally:
        await consumer.stop()
    event = decode_record(record)
    assert str(event.payload.user_id) == user_id
    assert event.payload.email == email.lower()
    assert event.headers.producer == "auth"


async def test_a_failed_registration_leaves_no_event(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    email = unique_email("dup")
    await register(client, email=email)
    before = await db.fetchval("SELECT count(*) FROM outbox WHERE topic = 'users.registered'")
    duplicate = await client.post(
        "/api/auth/register",
        json={"email": email, "password": "Sturdy-Passw0rd!", "name": "Twice"},
    )
    assert duplicate.status_code == 409
    after = await db.fetchval("SELECT count(*) FROM outbox WHERE topic = 'users.registered'")
    assert after == before
