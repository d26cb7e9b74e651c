"""aiokafka adapters: an idempotent event producer and a consumer-group reader."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import BaseModel

from generated.events.registry import Event, EventSpec
from handwritten.runtime.context import current_correlation_id
from handwritten.runtime.events import EventRecord, decode, encode, new_headers
from handwritten.runtime.tracing.messaging import publishing


class KafkaEventProducer:
    """Publishes events with the idempotent producer (acks=all, ordered retries).

    Implements the generated ``EventSender`` protocol, so a service's typed
    ``<Service>EventPublisher`` can send through it.
    """

    def __init__(self, bootstrap_servers: str, *, service: str) -> None:
        self.service = service
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=f"{service}-producer",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
        )

    @property
    def producer_id(self) -> int | None:
        """The id the broker assigned to this idempotent producer (once it has sent)."""
        manager = self._producer._txn_manager  # aiokafka exposes no public accessor
        if manager is None or not manager.has_pid():
            return None
        producer_id: int = manager.producer_id
        return producer_id

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(
        self, spec: EventSpec[Any], payload: BaseModel, *, causation_id: str | None = None
    ) -> None:
        """Build headers from the current context and publish one event."""
        headers = new_headers(
            spec,
            producer=self.service,
            correlation_id=current_correlation_id(),
            causation_id=causation_id,
        )
        await self.send_record(encode(spec, payload, headers))

    async def send_record(self, record: EventRecord) -> None:
        """Publish an already encoded record and wait for the broker's ack.

        The send is a PRODUCER span, child of the context the record carries (the
        span that recorded an outbox event) or of the current one; the record
        leaves with that span's ``traceparent``.
        """
        with publishing(
            record.topic, record.key, record.headers, client_id=f"{self.service}-producer"
        ) as publication:
            metadata = await self._producer.send_and_wait(
                record.topic, value=record.value, key=record.key, headers=list(publication.headers)
            )
            publication.sent(metadata.partition, metadata.offset)


def event_consumer(
    bootstrap_servers: str, *, group_id: str, topics: Iterable[str], client_id: str
) -> AIOKafkaConsumer:
    """A consumer-group member that commits only what it has handled."""
    return AIOKafkaConsumer(
        *sorted(topics),
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


def decode_record(record: ConsumerRecord[bytes, bytes]) -> Event[Any]:
    """Validate a consumed record into a typed event (``InvalidEventError`` if not)."""
    return decode(record.topic, record.value, list(record.headers))
