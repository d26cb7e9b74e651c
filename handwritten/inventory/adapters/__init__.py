"""Adapters behind the service layer's ports: PostgreSQL, Redis, domain events."""
