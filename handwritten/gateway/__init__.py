"""The docker-less stack's API gateway, driven by Kong's declarative ``kong.yml``.

Kong cannot run here, so this gateway enforces the same file's routes and plugins
(jwt, pre-function, rate-limiting, correlation-id, prometheus, request-transformer)
with Kong 3.x's observable behaviour: status codes, error bodies and headers. The
conformance suite in ``tests/gateway`` runs against either gateway.
"""
