"""How bench users get tokens: cheap refreshes, and never a failed login for a new user
(every failed login counts against the login throttle of the whole local address)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from bench.accounts import Auth, AuthFlowError, User


def token(subject: str) -> str:
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'sub': subject})}.signature"


class AuthServer:
    """A stand-in auth API that records the calls it gets."""

    def __init__(self, registered: set[str], throttled: bool = False) -> None:
        self.registered = registered
        self.throttled = throttled
        self.calls: list[str] = []
        self.valid_refresh: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        path = request.url.path.rsplit("/", 1)[-1]
        self.calls.append(path)
        if path == "register":
            if body["email"] in self.registered:
                return httpx.Response(409)
            self.registered.add(body["email"])
            return httpx.Response(201, json={"id": "u-1", "email": body["email"]})
        if path == "login":
            if self.throttled:
                return httpx.Response(429, headers={"Retry-After": "120"})
            if body["email"] not in self.registered:
                return httpx.Response(401)
            return self.tokens()
        if path == "refresh":
            if body["refresh_token"] not in self.valid_refresh:
                return httpx.Response(401)
            self.valid_refresh.discard(body["refresh_token"])  # rotation
            return self.tokens()
        return httpx.Response(404)

    def tokens(self) -> httpx.Response:
        refresh = f"r{len(self.calls)}"
        self.valid_refresh.add(refresh)
        return httpx.Response(
            200,
            json={"access_token": token("u-1"), "refresh_token": refresh, "expires_in": 900},
        )


def client(server: AuthServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(server), base_url="http://auth")


async def test_a_new_user_registers_before_any_login() -> None:
    server = AuthServer(registered=set())
    async with client(server) as http:
        user = User("new@example.com")
        await Auth(http).ensure_fresh(user)
    assert server.calls == ["register", "login"]  # no failed login on the way
    assert user.user_id == "u-1"
    assert user.access_token and user.expires_at > time.time() + 800


async def test_a_cached_user_refreshes_instead_of_logging_in() -> None:
    server = AuthServer(registered={"ana@example.com"})
    async with client(server) as http:
        auth = Auth(http)
        user = User("ana@example.com", user_id="u-1")
        await auth.ensure_fresh(user)  # login (no refresh token yet)
        user.expires_at = time.time() + 10  # about to expire
        await auth.ensure_fresh(user)
        await auth.ensure_fresh(user)  # still fresh: no call
    assert server.calls == ["login", "refresh"]


async def test_a_user_lost_by_a_reset_database_registers_again() -> None:
    server = AuthServer(registered=set())
    async with client(server) as http:
        user = User("gone@example.com", user_id="u-0", refresh_token="stale")
        await Auth(http).ensure_fresh(user)
    assert server.calls == ["refresh", "login", "register", "login"]


async def test_a_throttled_login_says_why() -> None:
    server = AuthServer(registered={"ana@example.com"}, throttled=True)
    async with client(server) as http:
        with pytest.raises(AuthFlowError, match="throttled for 120 s"):
            await Auth(http).ensure_fresh(User("ana@example.com", user_id="u-1"))
