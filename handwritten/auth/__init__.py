"""The auth service: users, argon2id passwords, RS256 access tokens, rotating refresh
tokens and the JWKS every other component verifies tokens with.

Layout (ports and adapters): ``domain`` is pure policy (no I/O), ``ports`` names what
the application service needs, ``adapters`` implement it on PostgreSQL, Redis,
argon2 and ``cryptography``, ``service`` runs one use case per method, ``api``
maps them onto the generated FastAPI router and ``app`` wires everything.
"""
