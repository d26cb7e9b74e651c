"""Users, the admin and products for driving traffic through the gateway.

The gateway allows each user 100 requests a minute on the order routes and as many
on the GraphQL route (fixed windows per calendar minute, counted per route). Traffic
is therefore spread over a pool of users, and ``RateBudget`` mirrors the gateway's
windows on the client side so that a benchmark never measures 429s it caused itself.

Registering and logging in cost an argon2id hash each (deliberately slow), so the
pool is cached in ``.local/bench/users.json`` with its refresh tokens: later runs
refresh tokens (cheap) and only log in or register when that fails. Products are
cached the same way; their stock is topped up before a run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.stack import SCRATCH_DIR
from generated import catalog

PASSWORD = "Bench-Passw0rd!2026"  # noqa: S105 - bench users of the local stack
USERS_CACHE = SCRATCH_DIR / "users.json"
PRODUCTS_CACHE = SCRATCH_DIR / "products.json"
#: How long to wait in all when logins from this address are throttled.
THROTTLE_WAIT_SECONDS = 360.0
#: Refresh an access token that expires within this many seconds.
REFRESH_MARGIN_SECONDS = 120.0
#: Requests per user and minute the pool hands out, below the gateway's limit so
#: that clock skew at a window's edge cannot tip a user over it.
DEFAULT_BUDGET = catalog.RATE_LIMIT_PER_MINUTE - 10
#: Which gateway rate-limit counter a path falls under (None: not rate limited).
ORDERS, GRAPHQL = "orders", "graphql"


def rate_limited_route(path: str) -> str | None:
    if path.startswith("/api/orders"):
        return ORDERS
    if path.startswith("/graphql"):
        return GRAPHQL
    return None


class AuthFlowError(RuntimeError):
    """The auth service refused to register, log in or refresh a bench user."""


class LoginThrottledError(AuthFlowError):
    """Logins from this address are refused for ``retry_after`` seconds."""

    def __init__(self, email: str, retry_after: float) -> None:
        super().__init__(
            f"login {email} throttled for {retry_after:g} s: too many failed logins from"
            " this address (every local client shares it)"
        )
        self.retry_after = retry_after


class RateBudget:
    """Client-side mirror of the gateway's per-user, per-route, per-minute windows."""

    def __init__(self, per_minute: int = DEFAULT_BUDGET, clock: Callable[[], float] = time.time):
        self.per_minute = per_minute
        self._clock = clock
        self._used: dict[tuple[str, str], tuple[int, int]] = {}

    def _window(self) -> int:
        return int(self._clock() // 60)

    def remaining(self, user: str, route: str) -> int:
        window, used = self._used.get((user, route), (self._window(), 0))
        return self.per_minute - (used if window == self._window() else 0)

    def try_take(self, user: str, route: str, count: int = 1) -> bool:
        """Reserve ``count`` requests of ``user`` on ``route`` in this minute, if left."""
        window = self._window()
        seen, used = self._used.get((user, route), (window, 0))
        if seen != window:
            used = 0
        if used + count > self.per_minute:
            return False
        self._used[(user, route)] = (window, used + count)
        return True

    def seconds_to_next_window(self) -> float:
        now = self._clock()
        return 60.0 - now % 60.0


#: The budget every pool of this process shares unless given its own.
PROCESS_BUDGET = RateBudget()


@dataclass
class User:
    """A bench user and its current tokens (``expires_at``: epoch seconds)."""

    email: str
    password: str = PASSWORD
    user_id: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_lock")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(
            email=str(data["email"]),
            password=str(data.get("password", PASSWORD)),
            user_id=data.get("user_id"),
            access_token=data.get("access_token"),
            refresh_token=data.get("refresh_token"),
            expires_at=float(data.get("expires_at", 0.0)),
        )


def new_email(prefix: str = "bench") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


class Auth:
    """The auth flows of bench users, through ``client`` (the gateway)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def register(self, user: User) -> bool:
        """Register ``user``; ``False`` when the e-mail exists already."""
        response = await self.client.post(
            "/api/auth/register",
            json={"email": user.email, "password": user.password, "name": "Bench User"},
        )
        if response.status_code == 409:
            return False
        if response.status_code != 201:
            raise AuthFlowError(f"register {user.email}: {response.status_code} {response.text}")
        user.user_id = str(response.json()["id"])
        return True

    async def login(self, user: User) -> bool:
        """Log ``user`` in; ``False`` on wrong credentials (e.g. the database was reset)."""
        response = await self.client.post(
            "/api/auth/login", json={"email": user.email, "password": user.password}
        )
        if response.status_code == 401:
            return False
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after", "60")
            raise LoginThrottledError(
                user.email, float(retry_after if retry_after.isdigit() else 60)
            )
        if response.status_code != 200:
            raise AuthFlowError(f"login {user.email}: {response.status_code} {response.text}")
        self.take_tokens(user, response.json())
        return True

    async def refresh(self, user: User) -> bool:
        """Rotate ``user``'s refresh token; ``False`` when it is no longer valid."""
        if not user.refresh_token:
            return False
        response = await self.client.post(
            "/api/auth/refresh", json={"refresh_token": user.refresh_token}
        )
        if response.status_code in (400, 401, 422):
            return False
        if response.status_code != 200:
            raise AuthFlowError(f"refresh {user.email}: {response.status_code} {response.text}")
        self.take_tokens(user, response.json())
        return True

    async def ensure_fresh(self, user: User, *, margin: float = REFRESH_MARGIN_SECONDS) -> None:
        """Make ``user`` hold an access token valid for at least ``margin`` seconds.

        Serialized per user: two concurrent refreshes of one refresh token would look
        like token theft to the auth service, which then revokes the whole family.
        """
        async with user._lock:
            if user.access_token and user.expires_at - time.time() > margin:
                return
            if await self.refresh(user):
                return
            # A failed login counts against the whole address's login throttle (shared
            # with everything else on this machine): register a new user first, and
            # try to log in blindly only a user registered before.
            if user.user_id is None:
                await self.register(user)  # False: it exists already (a lost cache)
            if await self.login(user):
                return
            if not await self.register(user):
                raise AuthFlowError(f"{user.email} exists but its password is not ours")
            if not await self.login(user):
                raise AuthFlowError(f"{user.email} was registered but cannot log in")

    def take_tokens(self, user: User, body: dict[str, Any]) -> None:
        """Store a token response (login or refresh) on ``user``."""
        user.access_token = str(body["access_token"])
        user.refresh_token = str(body["refresh_token"])
        user.expires_at = time.time() + float(body.get("expires_in", 900))
        if user.user_id is None:
            user.user_id = _subject(user.access_token)


def _subject(token: str) -> str | None:
    """The ``sub`` of a JWT, unverified (only to label the user; the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    subject = claims.get("sub")
    return str(subject) if subject else None


class UserPool:
    """Bench users handed out round-robin among those with rate budget left."""

    def __init__(self, auth: Auth, users: Sequence[User], budget: RateBudget | None = None):
        self.auth = auth
        self.users = list(users)
        # One budget per process by default: pools of several suites share the users
        # (from the cache), and the gateway counts per user whoever asks.
        self.budget = budget or PROCESS_BUDGET
        self._next = 0
        #: Users not written to the cache (e.g. the load generator's sign-ups).
        self._transient: set[str] = set()

    @classmethod
    async def prepare(
        cls,
        client: httpx.AsyncClient,
        size: int,
        *,
        cache: Path = USERS_CACHE,
        concurrency: int = 4,
        budget: RateBudget | None = None,
        throttle_wait: float | None = None,
    ) -> UserPool:
        """``size`` users with fresh tokens: cached ones first, new ones registered.

        When the auth service throttles logins from this address (failed logins of
        other clients on the machine count too), wait for the window to pass, up to
        ``throttle_wait`` seconds in all.
        """
        cached = load_users(cache)
        users = cached[:size] + [User(new_email()) for _ in range(size - len(cached[:size]))]
        pool = cls(Auth(client), users, budget)
        semaphore = asyncio.Semaphore(concurrency)

        deadline = time.monotonic() + (throttle_wait or THROTTLE_WAIT_SECONDS)

        async def ready(user: User) -> None:
            async with semaphore:
                while True:
                    try:
                        await pool.auth.ensure_fresh(user, margin=600.0)
                        return
                    except LoginThrottledError as exc:
                        # Someone else's failed logins: wait for the window, within reason.
                        if time.monotonic() + exc.retry_after > deadline:
                            raise
                        await asyncio.sleep(exc.retry_after + 1)

        try:
            await asyncio.gather(*(ready(user) for user in users))
        finally:
            save_users(cache, users + cached[size:])
        return pool

    def take(self, route: str, count: int = 1) -> User | None:
        """The next user who may still send ``count`` requests on ``route`` this minute."""
        for offset in range(len(self.users)):
            user = self.users[(self._next + offset) % len(self.users)]
            if self.budget.try_take(user.email, route, count):
                self._next = (self._next + offset + 1) % len(self.users)
                return user
        return None

    async def take_waiting(self, route: str, count: int = 1, *, deadline: float) -> User | None:
        """``take``, waiting for the next minute's window while ``deadline`` allows."""
        while True:
            user = self.take(route, count)
            if user is not None or time.monotonic() >= deadline:
                return user
            await asyncio.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def add(self, user: User, *, persist: bool = True) -> None:
        """A user joins the pool; ``persist=False`` keeps it out of the cache."""
        self.users.append(user)
        if not persist:
            self._transient.add(user.email)

    def save(self, cache: Path = USERS_CACHE) -> None:
        """Write the pool's tokens back, keeping cached users this pool did not use."""
        kept = [user for user in self.users if user.email not in self._transient]
        known = {user.email for user in kept}
        save_users(cache, kept + [u for u in load_users(cache) if u.email not in known])


def load_users(path: Path) -> list[User]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [User.from_json(item) for item in data if isinstance(item, dict) and "email" in item]


def save_users(path: Path, users: Sequence[User]) -> None:
    """Write the cache atomically (it holds live refresh tokens: owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps([user.to_json() for user in users], indent=1), "utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


# ------------------------------------------------------------------ admin, products


async def admin_user(client: httpx.AsyncClient) -> User:
    """The seeded admin (``ADMIN_EMAIL`` / ``ADMIN_PASSWORD`` or the catalog defaults)."""
    defaults = {variable.name: variable.default for variable in catalog.SERVICES["auth"].env}
    admin = User(
        email=os.environ.get("ADMIN_EMAIL", defaults["ADMIN_EMAIL"]),
        password=os.environ.get("ADMIN_PASSWORD", defaults["ADMIN_PASSWORD"]),
    )
    if not await login_waiting(Auth(client), admin, max_wait=THROTTLE_WAIT_SECONDS):
        raise AuthFlowError("the admin cannot log in (ADMIN_EMAIL / ADMIN_PASSWORD?)")
    return admin


async def login_waiting(auth: Auth, user: User, *, max_wait: float) -> bool:
    """``auth.login``, waiting out the address's login throttle for up to ``max_wait`` s."""
    deadline = time.monotonic() + max_wait
    while True:
        try:
            return await auth.login(user)
        except LoginThrottledError as exc:
            if time.monotonic() + exc.retry_after > deadline:
                raise
            await asyncio.sleep(exc.retry_after + 1)


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    price: str


#: Stock the bench products are topped up to (the API's maximum), and the level under
#: which they are topped up before a run.
FULL_STOCK = 1_000_000
LOW_STOCK = 500_000
_PRICES = ("19.90", "49.90", "89.00", "129.90", "249.00", "399.99")


async def bench_products(
    client: httpx.AsyncClient, *, cache: Path = PRODUCTS_CACHE
) -> list[Product]:
    """The bench's own products (created once, cached), stocked for a long run.

    Orders consume stock; the demo products would run out and turn a benchmark into
    a stream of 409s, so benchmarks and the load generator order these instead. The
    admin logs in only when a product must be created or topped up.
    """
    admin: User | None = None

    async def as_admin() -> User:
        nonlocal admin
        if admin is None:
            admin = await admin_user(client)
        return admin

    cached = _read_products(cache)
    products: list[Product] = []
    for index, price in enumerate(_PRICES):
        known = cached[index] if index < len(cached) else None
        product = await _existing_product(client, as_admin, known) if known else None
        if product is None:
            name = f"Bench product {index + 1}"
            product = await _create_product(client, await as_admin(), name, price)
        products.append(product)
    _write_products(cache, products)
    return products


def _read_products(cache: Path) -> list[dict[str, str]]:
    try:
        data: list[dict[str, str]] = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data


def _write_products(cache: Path, products: Sequence[Product]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([asdict(p) for p in products], indent=1), encoding="utf-8")


async def _existing_product(
    client: httpx.AsyncClient, admin: Callable[[], Awaitable[User]], known: dict[str, str]
) -> Product | None:
    response = await client.get(f"/api/inventory/products/{known['product_id']}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body = response.json()
    if int(body["availableQuantity"]) < LOW_STOCK:
        topped = await client.patch(
            f"/api/inventory/products/{known['product_id']}",
            json={"availableQuantity": FULL_STOCK},
            headers=(await admin()).bearer,
        )
        topped.raise_for_status()
    return Product(str(body["productId"]), str(body["name"]), str(body["price"]))


async def _create_product(client: httpx.AsyncClient, admin: User, name: str, price: str) -> Product:
    response = await client.post(
        "/api/inventory/products",
        json={
            "name": name,
            "description": "Stocked for benchmarks and the load generator.",
            "price": price,
            "availableQuantity": FULL_STOCK,
        },
        headers=admin.bearer,
    )
    if response.status_code != 201:
        raise AuthFlowError(f"cannot create {name}: {response.status_code} {response.text}")
    body = response.json()
    return Product(str(body["productId"]), str(body["name"]), str(body["price"]))
