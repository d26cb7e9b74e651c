"""PostgreSQL, Redis, Kafka (outbox) and inventory-gRPC implementations of the ports."""
