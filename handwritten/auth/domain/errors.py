"""Typed domain errors; ``api`` maps each to one problem+json answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class FieldViolation:
    """One reason a submitted field is not acceptable."""

    field: str
    message: str


class AuthError(Exception):
    """Base class of the auth domain errors."""


class InvalidRegistrationError(AuthError):
    """The e-mail or password does not meet the policy."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = tuple(violations)


class EmailAlreadyRegisteredError(AuthError):
    """Another account uses this (normalised) e-mail."""


class InvalidCredentialsError(AuthError):
    """Unknown e-mail or wrong password (deliberately indistinguishable)."""


class LoginThrottledError(AuthError):
    """Too many failed logins for the account or the client address."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"login throttled for {retry_after_seconds}s")
        self.retry_after_seconds = retry_after_seconds


class RefreshRejection(StrEnum):
    """Why a refresh token was refused."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    #: A rotated token was presented again: its family is revoked.
    REUSED = "reused"


class RefreshTokenRejectedError(AuthError):
    def __init__(self, reason: RefreshRejection) -> None:
        super().__init__(f"refresh token rejected: {reason}")
        self.reason = reason


class UnknownUserError(AuthError):
    """A verified token names a user that no longer exists."""
