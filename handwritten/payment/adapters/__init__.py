"""Adapters of the payment ports: PostgreSQL, the outbox replies, the simulated gateway."""
