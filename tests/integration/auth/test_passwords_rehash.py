"""argon2id parameters: hashes made with older parameters are upgraded at login."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.auth.conftest import login, make_settings, register, running

pytestmark = pytest.mark.infra


async def stored_hash(db: asyncpg.Connection, email: str) -> str:
    value: str = await db.fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    return value


async def test_login_rehashes_when_parameters_change(db: asyncpg.Connection) -> None:
    async with running(make_settings(argon2_time_cost=1)) as (_, cheap):
        email, _ = await register(cheap)
    before = await stored_hash(db, email)
    assert before.startswith("$argon2id$v=19$m=1024,t=1,p=1$")

    async with running(make_settings(argon2_time_cost=2)) as (_, stronger):
        assert (await login(stronger, email)).status_code == 200
        after = await stored_hash(db, email)
        assert after != before
        assert after.startswith("$argon2id$v=19$m=1024,t=2,p=1$")
        # Upgraded once: the next login keeps the hash.
        assert (await login(stronger, email)).status_code == 200
        assert await stored_hash(db, email) == after
        # A wrong password never rewrites anything.
        assert (await login(stronger, email, "Wrong-Passw0rd!")).status_code == 401
        assert await stored_hash(db, email) == after
