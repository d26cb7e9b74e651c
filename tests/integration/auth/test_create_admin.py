"""``python -m handwritten.auth create-admin``: admins are added by an operator, never
through the API, and the command never changes or promotes an existing account."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import httpx
import pytest

from handwritten.auth.settings import AuthSettings
from tests.integration.auth.conftest import login, register, unique_email, verify_with_jwks

pytestmark = pytest.mark.infra

PASSWORD = "0perator-Passw0rd!"


def last_line(text: str) -> str:
    """The command's answer: the last line of its output (JSON log lines come before)."""
    return text.strip().splitlines()[-1]


def create_admin(email: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handwritten.auth", "create-admin", email, "--name", "Operator"],
        env={**os.environ, "MC_NEW_ADMIN_PASSWORD": password, "ARGON2_TIME_COST": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_new_admin_logs_in_with_the_admin_role(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    email = unique_email("operator")
    result = create_admin(email)
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == f"admin {email}: created"
    response = await login(client, email, PASSWORD)
    assert response.status_code == 200, response.text
    claims = await verify_with_jwks(client, response.json()["access_token"], settings)
    assert claims["roles"] == ["admin", "customer"]


async def test_running_it_again_changes_nothing(db: asyncpg.Connection) -> None:
    email = unique_email("operator")
    assert create_admin(email).returncode == 0
    before = await db.fetchrow("SELECT id, password_hash FROM users WHERE email = $1", email)
    again = create_admin(email, "An0ther-Passw0rd!")
    assert (again.returncode, last_line(again.stdout)) == (0, f"admin {email}: exists")
    after = await db.fetchrow("SELECT id, password_hash FROM users WHERE email = $1", email)
    assert tuple(after) == tuple(before)


async def test_a_customer_is_never_promoted(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    email, _ = await register(client)
    result = create_admin(email)
    assert result.returncode == 1
    assert last_line(result.stdout) == f"admin {email}: taken by a customer"
    assert await db.fetchval("SELECT roles FROM users WHERE email = $1", email) == ["customer"]


async def test_a_weak_password_is_refused_and_nothing_stored(db: asyncpg.Connection) -> None:
    email = unique_email("operator")
    result = create_admin(email, "password")
    assert result.returncode == 2
    assert last_line(result.stderr).startswith("error: password:")
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0
