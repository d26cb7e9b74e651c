"""argon2id password hashing (argon2-cffi), off the event loop."""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


class Argon2PasswordHasher:
    """Hashes with the configured argon2id cost; ``needs_rehash`` spots older costs.

    Hashing is CPU- and memory-bound and runs in the default thread pool (the C
    library releases the GIL), which also bounds how many run at once.
    """

    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError) as exc:
            log.warning("stored password hash is unusable", error=type(exc).__name__)
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
