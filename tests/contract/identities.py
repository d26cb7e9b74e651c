"""Who the fuzzer is: an admin of its own and a pool of fresh customers.

The admin is created with the auth service's ``create-admin`` command (admins are never
made through the API), not the seeded one: the fuzzer must not share an account that
every other test, the demo and people use, nor risk locking it.

The gateway limits every user to 100 requests per minute on the order and GraphQL
routes (fixed windows aligned to the UTC minute, as Kong counts them). One customer
would spend that in seconds, and the rest of the run would only see 429. The pool
registers customers as they are needed and hands each request to a customer with
quota left in the current minute, keeping a margin for the requests some checks
send on their own (a 429 that still happens is a documented answer of those routes).

A stateful scenario creates an order and then reads or cancels it, so all of its
steps must be the same customer (another user's order is a 404): ``scenario()`` pins
one customer with enough quota for a whole scenario.

The identities log in from their own loopback address (``MC_FUZZ_IDENTITY_ADDRESS``,
default 127.0.0.3): they only ever log in successfully, so no failed login of the
fuzzer (random 127.x.y.z addresses) or of anyone else (127.0.0.1) can throttle them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from generator.catalog import Catalog
from tests.contract.budget import SCENARIO_STEPS

PASSWORD = "Contract-Fuzz-2026!"
ADMIN_EMAIL = "contract-fuzz-admin@example.com"
#: Tokens live 900 s; log in again well before that.
TOKEN_REFRESH_SECONDS = 600
#: Requests per user and minute the pool hands out, out of the gateway's limit.
QUOTA_MARGIN = 20
#: Least wait after a failed login before the account is tried again.
LOGIN_RETRY_SECONDS = 60.0

_CATALOG = Catalog.from_data(
    yaml.safe_load((Path(__file__).resolve().parents[2] / "specs/services.yaml").read_text())
)
RATE_LIMIT_PER_MINUTE = _CATALOG.platform.rate_limit.per_minute
#: Path prefixes of the routes the gateway rate limits per user.
RATE_LIMITED_PREFIXES = tuple(
    path
    for service in _CATALOG.services.values()
    if service.gateway is not None
    for route in service.gateway.routes
    if "rate-limiting" in route.plugins
    for path in route.paths
)


def is_rate_limited(path: str) -> bool:
    """Whether the gateway counts requests to ``path`` against the caller's quota."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RATE_LIMITED_PREFIXES)


@dataclass
class Identity:
    """One account the fuzzer acts as, with its current access token."""

    email: str
    password: str
    token: str = ""
    logged_in_at: float = 0.0
    #: UTC minute (epoch seconds // 60) the count below belongs to.
    window: int = -1
    spent: int = 0
    pinned: bool = False
    #: Why the last login failed, and when the next attempt may be made.
    failure: str | None = None
    retry_at: float = 0.0

    def left(self, minute: int, quota: int) -> int:
        return quota if self.window != minute else quota - self.spent

    def spend(self, minute: int) -> None:
        if self.window != minute:
            self.window, self.spent = minute, 0
        self.spent += 1


@dataclass
class IdentityPool:
    """The admin and the customers of one contract run (thread-safe)."""

    gateway_url: str
    client_address: str
    quota: int = RATE_LIMIT_PER_MINUTE - QUOTA_MARGIN
    clock: Callable[[], float] = time.time
    _customers: list[Identity] = field(default_factory=list)
    _admin: Identity | None = None
    _scenario: Identity | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------------ tokens

    def admin_token(self) -> str:
        """A fresh access token of the fuzzer's own admin (created on first use)."""
        with self._lock:
            if self._admin is None:
                create_admin(ADMIN_EMAIL, PASSWORD)
                self._admin = Identity(ADMIN_EMAIL, PASSWORD)
            return self._fresh_token(self._admin)

    def customer_token(self, path: str) -> str:
        """A customer's token for a request to ``path``, counted against its quota
        when the gateway rate limits ``path``."""
        with self._lock:
            minute = int(self.clock()) // 60
            customer = self._scenario or self._customer_with_quota(minute, 1)
            if is_rate_limited(path):
                customer.spend(minute)
            return self._fresh_token(customer)

    @contextmanager
    def scenario(self) -> Iterator[Identity]:
        """Pin one customer, with quota for a whole scenario, for every request inside."""
        with self._lock:
            # Each step may be followed by the checks' own requests (a re-read of what
            # was created): budget twice the steps.
            customer = self._customer_with_quota(int(self.clock()) // 60, 2 * SCENARIO_STEPS)
            customer.pinned = True
            self._scenario = customer
        try:
            yield customer
        finally:
            with self._lock:
                customer.pinned = False
                self._scenario = None

    # ------------------------------------------------------------------ internals

    def _client(self) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=self.client_address)
        return httpx.Client(base_url=self.gateway_url, transport=transport, timeout=30)

    def _customer_with_quota(self, minute: int, requests: int) -> Identity:
        for customer in self._customers:
            usable = customer.failure is None or self.clock() >= customer.retry_at
            if usable and not customer.pinned and customer.left(minute, self.quota) >= requests:
                return customer
        customer = self._register()
        self._customers.append(customer)
        return customer

    def _register(self) -> Identity:
        email = f"contract-{uuid.uuid4().hex[:16]}@example.com"
        with self._client() as client:
            response = client.post(
                "/api/auth/register",
                json={"email": email, "password": PASSWORD, "name": "Contract Fuzzer"},
            )
        if response.status_code != 201:
            raise RuntimeError(f"cannot register: {response.status_code} {response.text}")
        return Identity(email, PASSWORD)

    def _fresh_token(self, identity: Identity) -> str:
        if identity.token and self.clock() - identity.logged_in_at <= TOKEN_REFRESH_SECONDS:
            return identity.token
        # One failed login stops every further attempt for a while: each attempt counts
        # against the account's and the address's login throttle, and retrying per
        # request would lock the account (the shared admin!) for everyone.
        if identity.failure is not None and self.clock() < identity.retry_at:
            raise RuntimeError(identity.failure)
        with self._client() as client:
            response = client.post(
                "/api/auth/login", json={"email": identity.email, "password": identity.password}
            )
        if response.status_code != 200:
            identity.failure = (
                f"cannot log {identity.email} in: {response.status_code} {response.text}"
            )
            identity.retry_at = self.clock() + _retry_after(response)
            raise RuntimeError(identity.failure)
        identity.failure = None
        identity.token = response.json()["access_token"]
        identity.logged_in_at = self.clock()
        return identity.token


def create_admin(email: str, password: str) -> None:
    """``python -m handwritten.auth create-admin`` (idempotent), on the auth service's
    database as the local stack configures it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "handwritten.auth",
            "create-admin",
            email,
            "--name",
            "Contract Fuzzer",
        ],
        env={**os.environ, "MC_NEW_ADMIN_PASSWORD": password},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cannot create the fuzz admin: {result.stdout}{result.stderr}")


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(LOGIN_RETRY_SECONDS, float(response.headers.get("Retry-After", 0)))
    except ValueError:
        return LOGIN_RETRY_SECONDS
