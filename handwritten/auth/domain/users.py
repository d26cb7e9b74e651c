"""Users and e-mail addresses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from handwritten.auth.domain.errors import FieldViolation
from handwritten.auth.domain.passwords import password_violations

MAX_EMAIL_LENGTH = 254


class Role(StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"


#: Roles of a self-registered account and of the seeded administrator.
CUSTOMER_ROLES: tuple[Role, ...] = (Role.CUSTOMER,)
ADMIN_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.CUSTOMER)


@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    name: str
    roles: tuple[str, ...]
    password_hash: str
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles


def normalise_email(email: str) -> str:
    """The canonical form accounts are keyed by: trimmed and lower-cased.

    Lower-casing the local part too is deliberate: ``Ana@x.com`` and ``ana@x.com``
    must not become two accounts, whatever RFC 5321 allows.
    """
    return email.strip().lower()


def email_violations(email: str) -> list[FieldViolation]:
    """Shape checks of an already normalised e-mail (the API also validates syntax)."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return [FieldViolation("email", "must be an e-mail address such as ana@example.com")]
    if len(email) > MAX_EMAIL_LENGTH:
        return [FieldViolation("email", f"must be at most {MAX_EMAIL_LENGTH} characters long")]
    if any(ch.isspace() for ch in email) or "." not in domain:
        return [FieldViolation("email", "must be an e-mail address such as ana@example.com")]
    return []


def name_violations(name: str) -> list[FieldViolation]:
    if not name.strip():
        return [FieldViolation("name", "must not be blank")]
    return []


def account_violations(email: str, password: str, name: str) -> list[FieldViolation]:
    """Every rule a new account breaks (customer or admin), for a normalised e-mail."""
    return [
        *email_violations(email),
        *password_violations(password, email=email),
        *name_violations(name),
    ]
