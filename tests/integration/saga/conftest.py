"""The saga engine on real PostgreSQL and Kafka, with participants that are real peers.

- **Database.** A throw-away schema of the ``orders`` database with the event store,
  outbox, inbox and saga tables, plus two tables the test bindings write to:
  ``confirmations`` (the local step's effect) and ``outcomes`` (the orchestrator's
  outcome hook). Counting their rows is how "exactly once" is checked.
- **Inventory.** ``FakeInventory`` implements the generated ``InventoryServiceBase``
  and is served by grpclib on a free port; the engine's bindings call it through
  the generated stub with the step's deadline. Its effects are idempotent per order
  (like the real service) and scriptable: scripted errors, rejections, a call that
  hangs after its effect (a crash window), a call that always fails.
- **Payment.** ``PaymentResponder`` consumes payments.requested and
  payments.refund_requested from real Kafka (its own group, from the end) and
  answers on the real reply topics, per order: succeed, fail, or stay silent.
  Commands carry the token ``tok_timeout``, which a real payment service left
  running on the same broker never answers.
- **Plumbing.** The schema's ``OutboxRelay`` publishes the commands; a
  ``ConsumerRunner`` (inbox dedupe) feeds the replies to the engines by saga type.

Every test uses a saga definition with a name of its own, so workers of one test
never touch another test's instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status

from generated.events.registry import (
    EVENTS_DEADLETTER,
    PAYMENTS_FAILED,
    PAYMENTS_PROCESSED,
    PAYMENTS_REFUND_REQUESTED,
    PAYMENTS_REFUNDED,
    PAYMENTS_REQUESTED,
    Event,
)
from generated.grpc.inventory.v1 import (
    CommitReservationRequest,
    CommitReservationResponse,
    InventoryServiceBase,
    InventoryServiceStub,
    ProductQuantity,
    ReleaseReservationRequest,
    ReleaseReservationResponse,
    ReservedItem,
    ReserveProductsRequest,
    ReserveProductsResponse,
    RestoreStockRequest,
    RestoreStockResponse,
    UnavailableProduct,
    UnavailableReason,
)
from generated.models.events import (
    EventDeadLetteredPayload,
    PaymentFailedPayload,
    PaymentProcessedPayload,
    PaymentRefundedPayload,
    PaymentRefundRequestedPayload,
    PaymentRequestedPayload,
)
from generated.sagas.create_order import CREATE_ORDER
from generated.sagas.types import Backoff, GrpcAction, Outcome, SagaDefinition
from handwritten.runtime.backoff import Backoff as RuntimeBackoff
from handwritten.runtime.consumer import ConsumerRunner
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.kafka import KafkaEventProducer, decode_record, event_consumer
from handwritten.runtime.outbox import OutboxRelay
from handwritten.runtime.saga import (
    Participants,
    SagaContext,
    SagaEngine,
    SagaWorker,
    StepContext,
    StepRejectedError,
    migrate_saga,
)
from tests.integration.eventstore.database import Schema, throwaway_schema

DEADLINE = 45.0
INVENTORY = "inventory.v1.InventoryService"
RESERVE = f"{INVENTORY}/ReserveProducts"
COMMIT = f"{INVENTORY}/CommitReservation"
RELEASE = f"{INVENTORY}/ReleaseReservation"
RESTORE = f"{INVENTORY}/RestoreStock"
REPLY_TOPICS = (PAYMENTS_PROCESSED.topic, PAYMENTS_FAILED.topic, PAYMENTS_REFUNDED.topic)


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, what: str, within: float = DEADLINE
) -> None:
    """Poll ``condition`` until true; fail after ``within`` seconds."""
    until = time.monotonic() + within
    while not await condition():
        if time.monotonic() > until:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- definitions


def definition(name: str, **timeouts: int) -> SagaDefinition:
    """The generated create_order definition under a test's own name.

    ``payment_timeout_ms`` / ``reserve_timeout_ms`` / ``refund_timeout_ms`` shrink
    timeouts the way a spec edit would (the engine reads them at each transition).
    """
    steps = list(CREATE_ORDER.steps)
    reserve, payment = steps[0], steps[1]
    if "reserve_timeout_ms" in timeouts:
        steps[0] = replace(
            reserve, action=replace(reserve.action, timeout_ms=timeouts["reserve_timeout_ms"])
        )
    if "payment_timeout_ms" in timeouts:
        payment = replace(
            payment, action=replace(payment.action, timeout_ms=timeouts["payment_timeout_ms"])
        )
    if "refund_timeout_ms" in timeouts:
        assert payment.compensation is not None
        payment = replace(
            payment,
            compensation=replace(payment.compensation, timeout_ms=timeouts["refund_timeout_ms"]),
        )
    steps[1] = payment
    return replace(CREATE_ORDER, name=name, steps=tuple(steps))


def fast_backoff(step_index: int, base: SagaDefinition) -> SagaDefinition:
    """``base`` with step ``step_index`` retrying after 20-40 ms (compensations too)."""
    steps = list(base.steps)
    step = steps[step_index]
    steps[step_index] = replace(
        step,
        retry=replace(
            step.retry, backoff=Backoff(initial_ms=40, max_ms=40, multiplier=1.0, jitter=True)
        ),
    )
    return replace(base, steps=tuple(steps))


# ------------------------------------------------------------------ inventory


class FakeInventory(InventoryServiceBase):
    """Reservations per order id, idempotent like the real service, and scriptable."""

    def __init__(self) -> None:
        #: (method, order id, monotonic time) of every call, in arrival order.
        self.calls: list[tuple[str, str, float]] = []
        self.status: dict[str, str] = {}
        #: State changes actually made, per (method, order id).
        self.effects: Counter[tuple[str, str]] = Counter()
        #: Statuses to raise on the next calls of (method, order id), in order.
        self.fail_next: dict[tuple[str, str], list[Status]] = {}
        #: Orders whose reservation is refused (not enough stock).
        self.reject: set[str] = set()
        #: (method, order id) whose next call hangs after its effect (a crash window).
        self.hang_after_effect: set[tuple[str, str]] = set()
        self.hung = asyncio.Event()
        #: (method, order id) failing with UNAVAILABLE on every call.
        self.broken: set[tuple[str, str]] = set()

    def calls_of(self, method: str, order: str) -> list[float]:
        return [at for m, o, at in self.calls if (m, o) == (method, order)]

    async def _enter(self, method: str, order: str) -> None:
        self.calls.append((method, order, time.monotonic()))
        if (method, order) in self.broken:
            raise GRPCError(Status.UNAVAILABLE, "scripted outage")
        queued = self.fail_next.get((method, order))
        if queued:
            raise GRPCError(queued.pop(0), "scripted failure")

    async def _after_effect(self, method: str, order: str) -> None:
        if (method, order) in self.hang_after_effect:
            self.hang_after_effect.discard((method, order))
            self.hung.set()
            await asyncio.Event().wait()  # until the caller goes away

    async def reserve_products(self, message: ReserveProductsRequest) -> ReserveProductsResponse:
        order = message.order_id
        await self._enter("reserve", order)
        if order in self.reject:
            return ReserveProductsResponse(
                reserved=False,
                unavailable_products=[
                    UnavailableProduct(
                        product_id=item.product_id,
                        requested_quantity=item.quantity,
                        available_quantity=0,
                        reason=UnavailableReason.INSUFFICIENT_STOCK,
                    )
                    for item in message.items
                ],
            )
        current = self.status.get(order)
        if current is None:
            self.status[order] = "RESERVED"
            self.effects[("reserve", order)] += 1
        elif current not in ("RESERVED", "COMMITTED"):
            raise GRPCError(Status.FAILED_PRECONDITION, f"reservation is {current}")
        await self._after_effect("reserve", order)
        return ReserveProductsResponse(
            reserved=True,
            items=[
                ReservedItem(
                    product_id=item.product_id,
                    name="Thing",
                    quantity=item.quantity,
                    unit_price="10.00",
                )
                for item in message.items
            ],
        )

    async def commit_reservation(
        self, message: CommitReservationRequest
    ) -> CommitReservationResponse:
        order = message.order_id
        await self._enter("commit", order)
        current = self.status.get(order)
        if current is None:
            raise GRPCError(Status.NOT_FOUND, "no reservation")
        if current == "RESERVED":
            self.status[order] = "COMMITTED"
            self.effects[("commit", order)] += 1
        elif current != "COMMITTED":
            raise GRPCError(Status.FAILED_PRECONDITION, f"reservation is {current}")
        await self._after_effect("commit", order)
        return CommitReservationResponse(committed=True)

    async def release_reservation(
        self, message: ReleaseReservationRequest
    ) -> ReleaseReservationResponse:
        order = message.order_id
        await self._enter("release", order)
        current = self.status.get(order)
        if current == "COMMITTED":
            raise GRPCError(Status.FAILED_PRECONDITION, "reservation is COMMITTED")
        released = current == "RESERVED"
        if released:
            self.status[order] = "RELEASED"
            self.effects[("release", order)] += 1
        await self._after_effect("release", order)
        return ReleaseReservationResponse(released=released)

    async def restore_stock(self, message: RestoreStockRequest) -> RestoreStockResponse:
        order = message.order_id
        await self._enter("restore", order)
        restored = self.status.get(order) == "COMMITTED"
        if restored:
            self.status[order] = "RETURNED"
            self.effects[("restore", order)] += 1
        await self._after_effect("restore", order)
        return RestoreStockResponse(restored=restored)


# -------------------------------------------------------------------- payment


@dataclass
class PaymentResponder:
    """Answers payment commands of the orders it was told about, on real Kafka."""

    bootstrap: str
    #: order id -> "succeed" | "fail" | "silent"
    plans: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    refund_requests: list[PaymentRefundRequestedPayload] = field(default_factory=list)
    #: Payments made (order id -> payment id), for the refunds.
    charged: dict[str, uuid.UUID] = field(default_factory=dict)
    last_request: dict[str, PaymentRequestedPayload] = field(default_factory=dict)
    producer: KafkaEventProducer | None = None

    async def run(self, ready: asyncio.Event) -> None:
        group = f"test-saga-payment-{uuid.uuid4()}"
        consumer = AIOKafkaConsumer(
            PAYMENTS_REQUESTED.topic,
            PAYMENTS_REFUND_REQUESTED.topic,
            bootstrap_servers=self.bootstrap,
            group_id=group,
            enable_auto_commit=True,
            auto_offset_reset="latest",
        )
        self.producer = KafkaEventProducer(self.bootstrap, service="payment")
        await self.producer.start()
        await consumer.start()
        try:
            expected = PAYMENTS_REQUESTED.partitions + PAYMENTS_REFUND_REQUESTED.partitions
            while len(consumer.assignment()) < expected:
                await consumer.getmany(timeout_ms=100)
            for partition in consumer.assignment():
                await consumer.position(partition)  # resolves "latest" now
            ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    for record in records:
                        await self._answer(decode_record(record))
        finally:
            await consumer.stop()
            await self.producer.stop()

    async def _answer(self, event: Event[Any]) -> None:
        order = str(event.payload.order_id)
        plan = self.plans.get(order)
        if plan is None:
            return  # another test's (or another run's) command
        if event.spec is PAYMENTS_REQUESTED:
            self.requests[order] += 1
            self.last_request[order] = event.payload
            if plan == "succeed":
                await self.processed(event.payload)
            elif plan == "fail":
                await self.failed(event.payload)
        else:
            self.refund_requests.append(event.payload)
            await self.refunded(event.payload)

    async def processed(
        self, request: PaymentRequestedPayload, *, payment_id: uuid.UUID | None = None
    ) -> PaymentProcessedPayload:
        order = str(request.order_id)
        payment = self.charged.setdefault(order, payment_id or uuid.uuid4())
        payload = PaymentProcessedPayload.model_validate(
            {
                "sagaId": str(request.saga_id),
                "orderId": order,
                "paymentId": str(payment),
                "userId": str(request.user_id),
                "amount": request.amount,
                "currency": "BRL",
                "gatewayTransactionId": f"gw-{payment.hex[:8]}",
                "processedAt": datetime.now(UTC).isoformat(),
            }
        )
        assert self.producer is not None
        await self.producer.send(PAYMENTS_PROCESSED, payload)
        return payload

    async def failed(self, request: PaymentRequestedPayload) -> None:
        payload = PaymentFailedPayload.model_validate(
            {
                "sagaId": str(request.saga_id),
                "orderId": str(request.order_id),
                "paymentId": str(uuid.uuid4()),
                "userId": str(request.user_id),
                "amount": request.amount,
                "currency": "BRL",
                "reason": "DECLINED",
                "message": "The card was declined.",
                "failedAt": datetime.now(UTC).isoformat(),
            }
        )
        assert self.producer is not None
        await self.producer.send(PAYMENTS_FAILED, payload)

    async def refunded(self, request: PaymentRefundRequestedPayload) -> None:
        order = str(request.order_id)
        payment = self.charged.get(order)
        data: dict[str, Any] = {
            "sagaId": str(request.saga_id),
            "orderId": order,
            "outcome": "NOTHING_TO_REFUND" if payment is None else "REFUNDED",
            "amount": "0.00" if payment is None else request.amount,
            "currency": "BRL",
            "refundedAt": datetime.now(UTC).isoformat(),
        }
        if payment is not None:
            data["paymentId"] = str(payment)
        assert self.producer is not None
        await self.producer.send(PAYMENTS_REFUNDED, PaymentRefundedPayload.model_validate(data))


# -------------------------------------------------------------------- harness


def bindings(stub: InventoryServiceStub) -> Participants:
    """Test bindings of every name the create_order definition uses."""

    async def reserve(context: StepContext, deadline: float) -> Mapping[str, Any]:
        reply = await stub.reserve_products(
            ReserveProductsRequest(
                order_id=context.correlation_key,
                items=[
                    ProductQuantity(product_id=i["productId"], quantity=i["quantity"])
                    for i in context.data["items"]
                ],
            ),
            timeout=deadline,
        )
        if not reply.reserved:
            raise StepRejectedError("not enough stock")
        return {"reserved": True}

    async def commit(context: StepContext, deadline: float) -> Mapping[str, Any]:
        request = CommitReservationRequest(order_id=context.correlation_key)
        return {"committed": (await stub.commit_reservation(request, timeout=deadline)).committed}

    async def release(context: StepContext, deadline: float) -> Mapping[str, Any]:
        request = ReleaseReservationRequest(order_id=context.correlation_key)
        return {"released": (await stub.release_reservation(request, timeout=deadline)).released}

    async def restore(context: StepContext, deadline: float) -> Mapping[str, Any]:
        request = RestoreStockRequest(order_id=context.correlation_key)
        return {"restored": (await stub.restore_stock(request, timeout=deadline)).restored}

    def payment_requested(context: StepContext) -> PaymentRequestedPayload:
        return PaymentRequestedPayload.model_validate(
            {
                "sagaId": str(context.saga_id),
                "orderId": context.correlation_key,
                "userId": context.data["userId"],
                "amount": context.data["totalAmount"],
                "currency": "BRL",
                "paymentMethodToken": "tok_timeout",
                "requestedAt": datetime.now(UTC).isoformat(),
            }
        )

    def refund_requested(context: StepContext) -> PaymentRefundRequestedPayload:
        paid = context.results.get("process_payment")
        data: dict[str, Any] = {
            "sagaId": str(context.saga_id),
            "orderId": context.correlation_key,
            "amount": context.data["totalAmount"],
            "currency": "BRL",
            "reason": context.outcome.reason if context.outcome else "CUSTOMER_REQUEST",
            "requestedAt": datetime.now(UTC).isoformat(),
        }
        if paid is not None:
            data["paymentId"] = paid["paymentId"]
        return PaymentRefundRequestedPayload.model_validate(data)

    async def confirm(connection: asyncpg.Connection, context: StepContext) -> Mapping[str, Any]:
        paid = context.results["process_payment"]
        await connection.execute(
            "INSERT INTO confirmations (saga_id, payment_id) VALUES ($1, $2)",
            context.saga_id,
            paid["paymentId"],
        )
        return {"paymentId": paid["paymentId"]}

    async def outcome(
        connection: asyncpg.Connection, context: SagaContext, result: Outcome, detail: str | None
    ) -> None:
        await connection.execute(
            "INSERT INTO outcomes (saga_id, reason, detail) VALUES ($1, $2, $3)",
            context.saga_id,
            result.reason,
            detail,
        )

    return Participants(
        on_outcome=outcome,
        grpc={RESERVE: reserve, COMMIT: commit, RELEASE: release, RESTORE: restore},
        commands={
            PAYMENTS_REQUESTED.topic: payment_requested,
            PAYMENTS_REFUND_REQUESTED.topic: refund_requested,
        },
        local={"confirm_order": confirm},
        reversals={"commit_reservation": GrpcAction(method=RESTORE, timeout_ms=2000)},
    )


@dataclass
class Harness:
    schema: Schema
    pool: asyncpg.Pool
    inventory: FakeInventory
    stub: InventoryServiceStub
    payment: PaymentResponder
    bootstrap: str
    consumer_group: str
    engines: dict[str, SagaEngine] = field(default_factory=dict)

    def engine(self, saga: SagaDefinition, **options: Any) -> SagaEngine:
        options.setdefault("lease_margin_ms", 300)
        built = SagaEngine(saga, bindings(self.stub), **options)
        self.engines[saga.name] = built
        return built

    @contextlib.asynccontextmanager
    async def worker(
        self, engine: SagaEngine, *, concurrency: int = 2
    ) -> AsyncIterator[asyncio.Task[None]]:
        """A running worker; stopped gracefully on exit unless the test killed it."""
        worker = SagaWorker(
            engine,
            self.pool,
            concurrency=concurrency,
            poll_interval=0.1,
            listen=self.schema.connect,
        )
        task = asyncio.create_task(worker.run())
        try:
            yield task
        finally:
            worker.stop()
            if not task.done():
                await asyncio.wait_for(task, DEADLINE)

    async def start(
        self, engine: SagaEngine, *, plan: str = "succeed", quantity: int = 1
    ) -> tuple[uuid.UUID, str]:
        """A new order's saga (recorded like the orders service does); (saga id, order id)."""
        order = str(uuid.uuid4())
        self.payment.plans[order] = plan
        async with self.pool.acquire() as connection, connection.transaction():
            saga_id = await engine.start(
                connection,
                order,
                {
                    "orderId": order,
                    "userId": str(uuid.uuid4()),
                    "items": [{"productId": str(uuid.uuid4()), "quantity": quantity}],
                    "totalAmount": "10.00",
                    "currency": "BRL",
                },
            )
        return saga_id, order

    async def state(self, saga_id: uuid.UUID) -> str:
        value: str = await self.pool.fetchval(
            "SELECT state FROM saga_instances WHERE saga_id = $1", saga_id
        )
        return value

    async def wait_state(self, saga_id: uuid.UUID, *states: str, within: float = DEADLINE) -> str:
        async def reached() -> bool:
            return await self.state(saga_id) in states

        await eventually(reached, what=f"saga {saga_id} to reach {states}", within=within)
        return await self.state(saga_id)

    async def steps(self, saga_id: uuid.UUID) -> list[asyncpg.Record]:
        return list(
            await self.pool.fetch(
                "SELECT * FROM saga_step_executions WHERE saga_id = $1 ORDER BY step_index",
                saga_id,
            )
        )

    async def commands(self, order: str) -> list[str]:
        """Topics of the commands this order's saga wrote to the outbox, in order."""
        rows = await self.pool.fetch("SELECT topic FROM outbox WHERE key = $1 ORDER BY id", order)
        return [row["topic"] for row in rows]

    async def count(self, table: str, saga_id: uuid.UUID) -> int:
        value: int = await self.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE saga_id = $1",
            saga_id,
        )
        return value

    async def outcomes(self, saga_id: uuid.UUID) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT reason FROM outcomes WHERE saga_id = $1 ORDER BY seq", saga_id
        )
        return [row["reason"] for row in rows]


async def dead_letters_of(bootstrap: str, group: str) -> list[EventDeadLetteredPayload]:
    """Every dead letter of consumer group ``group`` on the dead-letter topic so far."""
    reader = f"test-saga-dlq-{uuid.uuid4()}"
    consumer = event_consumer(
        bootstrap, group_id=reader, topics=[EVENTS_DEADLETTER.topic], client_id=reader
    )
    await consumer.start()
    found: list[EventDeadLetteredPayload] = []
    end: dict[TopicPartition, int] | None = None
    until = time.monotonic() + DEADLINE
    try:
        while True:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    payload = decode_record(record).payload
                    if payload.consumer_group == group:
                        found.append(payload)
            assignment = consumer.assignment()
            if end is None and len(assignment) == EVENTS_DEADLETTER.partitions:
                end = await consumer.end_offsets(list(assignment))
            if end is not None:
                positions = {tp: await consumer.position(tp) for tp in end}
                if all(positions[tp] >= offset for tp, offset in end.items()):
                    return found
            if time.monotonic() > until:
                raise AssertionError("could not read the dead-letter topic to its end")
    finally:
        await consumer.stop()


async def start_group_at_end(bootstrap: str, group: str, topics: tuple[str, ...]) -> None:
    """Commit the current end offsets for ``group``: it starts with new records only."""
    consumer = event_consumer(bootstrap, group_id=group, topics=topics, client_id=group)
    await consumer.start()
    try:
        expected = len(topics) * 3
        until = time.monotonic() + DEADLINE
        while len(consumer.assignment()) < expected:
            await consumer.getmany(timeout_ms=100)
            if time.monotonic() > until:
                raise AssertionError("no partition assignment")
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: ends[tp] for tp in partitions})
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
async def harness(kafka_bootstrap: str) -> AsyncIterator[Harness]:
    async with throwaway_schema("test_saga") as schema:
        connection = await schema.connect()
        try:
            await migrate_saga(connection)
            await connection.execute(
                "CREATE TABLE confirmations (seq serial PRIMARY KEY, saga_id uuid NOT NULL,"
                " payment_id uuid NOT NULL)"
            )
            await connection.execute(
                "CREATE TABLE outcomes (seq serial PRIMARY KEY, saga_id uuid NOT NULL,"
                " reason text NOT NULL, detail text)"
            )
        finally:
            await connection.close()
        pool = await schema.pool(min_size=2, max_size=12)
        inventory = FakeInventory()
        server = GrpcServer([inventory], service="inventory")
        await server.start("127.0.0.1", 0)
        channel = Channel("127.0.0.1", server.port)
        payment = PaymentResponder(kafka_bootstrap)
        ready = asyncio.Event()
        responder = asyncio.create_task(payment.run(ready))
        await asyncio.wait_for(ready.wait(), DEADLINE)

        group = f"test-saga-engine-{uuid.uuid4()}"
        await start_group_at_end(kafka_bootstrap, group, REPLY_TOPICS)
        harness = Harness(
            schema, pool, inventory, InventoryServiceStub(channel), payment, kafka_bootstrap, group
        )

        async def feed(connection: asyncpg.Connection, event: Event[Any]) -> None:
            saga_id = str(event.payload.saga_id)
            saga_type = await connection.fetchval(
                "SELECT saga_type FROM saga_instances WHERE saga_id = $1", uuid.UUID(saga_id)
            )
            engine = harness.engines.get(saga_type)
            if engine is not None:
                await engine.record_reply(connection, event)

        runner = ConsumerRunner(
            pool,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            topics=REPLY_TOPICS,
            handler=feed,
            service="orders",
            poll_timeout=0.1,
            backoff=RuntimeBackoff(initial=0.05, maximum=0.2),
        )
        consuming = asyncio.create_task(runner.run())
        relay = OutboxRelay(
            schema.connect, bootstrap_servers=kafka_bootstrap, service="orders", poll_interval=0.2
        )
        relaying = asyncio.create_task(relay.run())
        try:
            yield harness
        finally:
            relay.stop()
            runner.stop()
            responder.cancel()
            await asyncio.gather(relaying, consuming, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                await responder
            channel.close()
            await server.stop(grace_seconds=0.5)
            await pool.close()
