"""Adapters of the auth ports: PostgreSQL, Redis, argon2 and the signing-key store."""
