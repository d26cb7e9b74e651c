"""Who is asking, and which orders they may see.

The rule: a customer sees only their own orders; an admin sees every order. The
orders service enforces it too (its gRPC methods take a ``user_id`` scope); the BFF
decides which scope to send, and refuses outright what no scope could allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from handwritten.bff.domain.errors import ForbiddenError

#: The orders service's "no scope" (admin callers only).
UNSCOPED = ""


@dataclass(frozen=True)
class Caller:
    """The verified bearer of the request's access token."""

    user_id: str
    is_admin: bool = False

    @property
    def scope(self) -> str:
        """The ``user_id`` to send with orders' read and cancel calls."""
        return UNSCOPED if self.is_admin else self.user_id


def listing_scope(caller: Caller, user_id: str | None) -> str:
    """The ``user_id`` of ``ListOrders`` for ``orders(userId:)``.

    Admins list anyone's orders (everyone's without ``userId``); a customer lists
    their own, and asking for someone else's is refused rather than silently
    answered with the caller's own orders.
    """
    if caller.is_admin:
        return user_id or UNSCOPED
    if user_id is None or user_id == caller.user_id:
        return caller.user_id
    raise ForbiddenError("You can only list your own orders.")
