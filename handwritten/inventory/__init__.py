"""Inventory service: products, prices and stock; reservations with expiry; no oversell.

Layers (cosmicpython): ``domain`` (pure rules, no I/O), ``service_layer`` (use cases
behind ports), ``adapters`` (PostgreSQL, Redis, events), ``entrypoints`` (REST,
gRPC, the expiry job) and ``app`` (wiring).
"""
