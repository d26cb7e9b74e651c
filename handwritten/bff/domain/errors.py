"""Errors a GraphQL client sees, each with a stable ``extensions.code``.

Messages are written for the client: they never carry a downstream's internals
(addresses, stack traces, raw gRPC details). ``extensions`` adds machine-readable
detail (which service is unavailable, which products are out of stock).
"""

from __future__ import annotations

from typing import Any, ClassVar


class BffError(Exception):
    """Base of the errors reported in a GraphQL response's ``errors``."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions

    def as_extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.extensions}


class NotFoundError(BffError):
    """Unknown, or not visible to the caller (the two are indistinguishable on purpose)."""

    code = "NOT_FOUND"


class ForbiddenError(BffError):
    code = "FORBIDDEN"


class BadUserInputError(BffError):
    code = "BAD_USER_INPUT"


class ConflictError(BffError):
    """The request conflicts with the order's state (e.g. canceling a shipped order)."""

    code = "CONFLICT"


class InsufficientStockError(BffError):
    code = "INSUFFICIENT_STOCK"


class ServiceUnavailableError(BffError):
    """A downstream did not answer (down, too slow, or its circuit breaker is open)."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, service: str, *, reason: str) -> None:
        super().__init__(
            f"The {service} service is unavailable right now; try again shortly.",
            service=service,
            reason=reason,
        )
        self.service = service
        self.reason = reason
