"""Idempotency keys shared by every service: claim atomically, store, replay.

``IdempotencyStore`` holds the keys in the service's own database (apply the
table with ``migrate_idempotency(connection)``); ``run_idempotent`` applies the
``Idempotency-Key`` rules to a FastAPI handler; gRPC entrypoints call the store
directly. See ``store`` for the protocol and its guarantees.
"""

from handwritten.runtime.idempotency.http import (
    REPLAYED_HEADER,
    replay,
    request_fingerprint,
    run_idempotent,
    stored,
)
from handwritten.runtime.idempotency.store import (
    COMPONENT,
    MIGRATIONS,
    Claim,
    ClaimLostError,
    IdempotencyError,
    IdempotencyStore,
    KeyInFlightError,
    KeyReusedError,
    StoredResponse,
    canonical_json,
    fingerprint,
    migrate_idempotency,
)

__all__ = [
    "COMPONENT",
    "MIGRATIONS",
    "REPLAYED_HEADER",
    "Claim",
    "ClaimLostError",
    "IdempotencyError",
    "IdempotencyStore",
    "KeyInFlightError",
    "KeyReusedError",
    "StoredResponse",
    "canonical_json",
    "fingerprint",
    "migrate_idempotency",
    "replay",
    "request_fingerprint",
    "run_idempotent",
    "stored",
]
