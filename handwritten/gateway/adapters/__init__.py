"""The gateway's I/O: JWKS keys, Redis counters, the upstream HTTP pool, metrics."""
