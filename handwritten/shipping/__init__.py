"""The shipping service: schedules a shipment for every confirmed order and advances it.

Consumes ``orders.confirmed`` / ``orders.canceled`` (idempotently, through the
runtime's consumer runner and inbox), advances shipments SCHEDULED → IN_TRANSIT →
DELIVERED on a timer, publishes ``shipping.scheduled`` / ``shipping.updated``
through the transactional outbox, and answers REST and gRPC queries.
"""
