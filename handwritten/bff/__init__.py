"""The BFF (backend for frontend): one GraphQL API over orders, inventory and shipping.

Layers, outermost first:

- ``entrypoints``: the HTTP handlers of ``POST /graphql`` (web shape) and
  ``POST /graphql/mobile`` (minimal shape), and the two strawberry schemas. Both
  schemas are thin typed views over one resolver layer (``entrypoints.graphql.resolvers``).
- ``service_layer``: what a request can ask for (``OrderQueries``), the per-request
  context with its DataLoaders (one batched gRPC call per downstream), and the ports.
- ``adapters``: the gRPC clients (deadline + circuit breaker on every call), the
  breaker state shared through Redis, the short Redis cache of ``orderSummary``.
- ``domain``: the read models the BFF aggregates, the caller and its access rule,
  and the errors a GraphQL client can see (each with an ``extensions.code``).
"""
