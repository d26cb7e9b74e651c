"""The Order repository: the runtime's event-sourced unit of work, wired for orders.

One transaction per command appends the events, writes their integration events
to the outbox, snapshots every ``snapshot_every`` events and updates the
``orders_view`` row.
"""

from __future__ import annotations

from generated.services.orders.events import SERVICE_NAME
from handwritten.orders.adapters.integration_events import integration_messages
from handwritten.orders.adapters.orders_view import project
from handwritten.orders.domain.order import ORDER, OrderState
from handwritten.runtime.eventstore import AggregateRepository


def order_repository(*, snapshot_every: int) -> AggregateRepository[OrderState]:
    return AggregateRepository(
        ORDER,
        service=SERVICE_NAME,
        snapshot_every=snapshot_every,
        messages=integration_messages,
        project=project,
    )
