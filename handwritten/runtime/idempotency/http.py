"""``Idempotency-Key`` for FastAPI handlers, over the ``IdempotencyStore``.

``run_idempotent`` wraps a handler's work: the first request with a key runs it
and its response is stored (2xx and 4xx outcomes; 5xx and unexpected errors
release the key so a retry can run); a repeat of the same request gets the stored
status and body with ``Idempotency-Replayed: true``; the same key with another
body gets 422, and a repeat while the first is still running gets 409.

The fingerprint is method + path + canonical JSON body, and the scope is chosen
by the caller (the verified user id), so two users never share a key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from handwritten.runtime.backoff import Backoff
from handwritten.runtime.failures import connection_lost
from handwritten.runtime.idempotency.store import (
    Claim,
    ClaimLostError,
    IdempotencyStore,
    KeyInFlightError,
    KeyReusedError,
    StoredResponse,
    canonical_json,
    fingerprint,
)
from handwritten.runtime.logging import get_logger
from handwritten.runtime.problems import ProblemError, problem_response

REPLAYED_HEADER = "Idempotency-Replayed"
#: Response headers that are part of the stored response (the rest are per-request:
#: correlation id, rate limits, dates…).
REPLAYED_HEADERS = ("content-type", "location")
#: Seconds a client is told to wait before retrying a request still in flight.
IN_FLIGHT_RETRY_AFTER = "1"
#: Tries to release a failed request's claim while the database connection is lost
#: (about 3 s in all with the backoff below).
RELEASE_ATTEMPTS = 5
_RELEASE_BACKOFF = Backoff(initial=0.2, maximum=1.5)
log = get_logger(__name__)

#: The work of a request: gets the claim (to complete it inside its own transaction)
#: and returns the response.
Work = Callable[[Claim], Awaitable[Response]]


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's identity for idempotency: method, path, canonical JSON body."""
    return fingerprint(method.upper(), path, canonical_json(body))


def stored(response: Response) -> StoredResponse:
    """What to keep of a (non-streaming) response."""
    headers = tuple(
        (name, value)
        for name, value in response.headers.items()
        if name.lower() in REPLAYED_HEADERS
    )
    return StoredResponse(status=response.status_code, body=bytes(response.body), headers=headers)


def replay(response: StoredResponse) -> Response:
    """The stored response again, marked as a replay."""
    headers = dict(response.headers)
    headers[REPLAYED_HEADER] = "true"
    return Response(content=response.body, status_code=response.status, headers=headers)


def _in_flight(path: str) -> Response:
    return problem_response(
        409,
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        instance=path,
        headers={"Retry-After": IN_FLIGHT_RETRY_AFTER},
    )


async def run_idempotent(
    store: IdempotencyStore, request: Request, *, scope: str, key: str, work: Work
) -> Response:
    """Run ``work`` at most once per ``(scope, key)`` (see the module docstring)."""
    path = request.url.path
    identity = request_fingerprint(request.method, path, await request.body())
    try:
        outcome = await store.begin(scope, key, identity)
    except KeyReusedError:
        return problem_response(
            422,
            "This Idempotency-Key was already used with a different request.",
            instance=path,
            errors=[{"field": "Idempotency-Key", "message": "already used for another request"}],
        )
    except KeyInFlightError:
        return _in_flight(path)
    if isinstance(outcome, StoredResponse):
        return replay(outcome)
    claim = outcome
    try:
        response = await work(claim)
    except ProblemError as exc:
        if exc.status >= 500:
            await _release(store, claim)
            raise
        # A deterministic answer to this request (e.g. 409 out of stock): stored.
        response = problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            instance=path,
            headers=exc.headers,
            **exc.extra,
        )
    except ClaimLostError:
        await _release(store, claim)
        return _in_flight(path)
    except BaseException:
        await _release(store, claim)
        raise
    if not claim.completed:
        if response.status_code >= 500:
            await _release(store, claim)
            return response
        try:
            await store.complete(claim, stored(response))
        except ClaimLostError:
            return _in_flight(path)
    response.headers[REPLAYED_HEADER] = "false"
    return response


async def _release(store: IdempotencyStore, claim: Claim) -> None:
    """Release the claim even while the request is being cancelled (client gone)."""
    try:
        await asyncio.shield(_release_retrying(store, claim))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # Not fatal: the claim becomes stale and a retry takes it over later.
        log.warning("idempotency claim could not be released", key=claim.key, error=repr(exc))


async def _release_retrying(store: IdempotencyStore, claim: Claim) -> None:
    """``store.release``, again on a lost connection: a request usually fails because
    the database went away, and a claim left in flight refuses every retry of the
    request (409) until the in-flight timeout (found by tests/chaos: PostgreSQL
    connections reset)."""
    for attempt in range(1, RELEASE_ATTEMPTS + 1):
        try:
            await store.release(claim)
            return
        except Exception as exc:
            if attempt == RELEASE_ATTEMPTS or not connection_lost(exc):
                raise
            await asyncio.sleep(_RELEASE_BACKOFF.delay(attempt - 1))
