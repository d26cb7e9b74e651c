"""Admin accounts: the one seeded at start-up and any an operator adds.

Admins are never made through the public API (no client chooses its own role): the
service seeds ``ADMIN_EMAIL`` when it starts, and ``python -m handwritten.auth
create-admin`` adds more (a second operator, or a test suite's own admin so that it
never shares, or locks, the seeded one).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from handwritten.auth.domain.errors import EmailAlreadyRegisteredError, InvalidRegistrationError
from handwritten.auth.domain.users import ADMIN_ROLES, Role, account_violations, normalise_email
from handwritten.auth.ports import PasswordHasher, UnitOfWork
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


class AdminOutcome(enum.Enum):
    CREATED = "created"
    #: The e-mail already belongs to an admin: nothing changed.
    EXISTS = "exists"
    #: The e-mail belongs to a customer: nothing changed (never promoted).
    TAKEN_BY_CUSTOMER = "taken by a customer"


async def create_admin(
    unit_of_work: Callable[[], UnitOfWork],
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    name: str,
    strict: bool = True,
) -> AdminOutcome:
    """Create an admin unless the e-mail exists. Idempotent, safe with concurrent callers.

    ``strict`` refuses an address, name or password the registration rules would refuse
    (``InvalidRegistrationError``); the start-up seed is lenient and only warns, so a
    weak configured password never stops the service.
    """
    email = normalise_email(email)
    violations = account_violations(email, password, name)
    if violations and strict:
        raise InvalidRegistrationError(violations)
    async with unit_of_work() as uow:
        existing = await uow.users.get_by_email(email)
    if existing is not None:
        if Role.ADMIN in existing.roles:
            return AdminOutcome.EXISTS
        log.warning("the admin e-mail belongs to an account without the admin role")
        return AdminOutcome.TAKEN_BY_CUSTOMER
    if violations:
        log.warning("the admin account does not meet the registration rules; change it")
    password_hash = await hasher.hash(password)
    try:
        async with unit_of_work() as uow:
            user = await uow.users.add(
                email=email, name=name, password_hash=password_hash, roles=ADMIN_ROLES
            )
    except EmailAlreadyRegisteredError:
        return AdminOutcome.EXISTS  # a concurrent caller (another replica) created it
    log.info("admin account created", user_id=str(user.id))
    return AdminOutcome.CREATED
