"""Test doubles for gateway tests: an RSA test key pair and token forging, a JWKS server,
and an echo upstream that records every request it receives.

Both servers are real HTTP servers (uvicorn in a background thread, on a port bound
here), so any gateway — ours in-process or as a subprocess, or a real Kong — talks to
them over TCP. The echo exposes what it received at ``/__echo__/requests``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.types import Receive, Scope, Send

ISSUER = "microcommerce-auth"
AUDIENCE = "microcommerce"
ECHO_PREFIX = "/__echo__"


# ----------------------------------------------------------------------- keys and tokens


class TestKeys:
    """An RSA key pair with a kid, as the auth service has (never leaves the tests)."""

    __test__ = False  # not a test class

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or f"test-{uuid.uuid4().hex[:12]}"
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        """The public JWK, as GET /.well-known/jwks.json publishes it."""
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        """A valid RS256 token with this key's kid (``headers`` may override it)."""
        return jwt.encode(
            dict(claims),
            self.private_key,
            algorithm="RS256",
            headers={"kid": self.kid, **(headers or {})},
        )


def claims(sub: str, *, ttl: int = 300, now: int | None = None, **extra: Any) -> dict[str, Any]:
    """Access-token claims as the auth service issues them (``extra`` overrides)."""
    issued = int(time.time()) if now is None else now
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
        "roles": ["customer"],
        **extra,
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unsigned_token(alg: str, kid: str, payload: Mapping[str, Any]) -> str:
    """``alg: none`` style: header and claims, empty signature."""
    return f"{b64json({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{b64json(payload)}."


def hs256_with_public_key(keys: TestKeys, payload: Mapping[str, Any]) -> str:
    """The classic confusion attack: HMAC-SHA256 keyed with the RSA public key PEM."""
    import hmac

    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': keys.kid})}.{b64json(payload)}"
    mac = hmac.new(keys.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def tampered(token: str, **changes: Any) -> str:
    """The same signature over a payload with ``changes`` (e.g. another sub)."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64json({**data, **changes})}.{signature}"


@dataclass(frozen=True)
class ForgedCase:
    """A request that must be refused with 401 before reaching any upstream."""

    name: str
    authorization: Callable[[TestKeys], str | None]
    #: Kong 3.8's body for it (its jwt plugin, or the generated pre-function).
    body: dict[str, str]


def _bearer(make: Callable[[TestKeys], str]) -> Callable[[TestKeys], str]:
    return lambda keys: f"Bearer {make(keys)}"


def _unsigned(alg: str) -> Callable[[TestKeys], str]:
    return lambda keys: unsigned_token(alg, keys.kid, claims(_user()))


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


FORGED_CASES: tuple[ForgedCase, ...] = (
    ForgedCase("missing token", lambda keys: None, {"message": "Unauthorized"}),
    ForgedCase("not a bearer", lambda keys: "Basic dXNlcjpwYXNz", {"message": "Unauthorized"}),
    ForgedCase("bearer without a token", lambda keys: "Bearer", {"message": "Unauthorized"}),
    *(
        ForgedCase(
            f"alg {alg}",
            _bearer(_unsigned(alg)),
            {"message": "Bad token; invalid alg"},
        )
        for alg in ("none", "None", "NONE", "nOnE")
    ),
    ForgedCase(
        "HS256 signed with the public key",
        _bearer(lambda keys: hs256_with_public_key(keys, claims(_user()))),
        {"message": "Invalid algorithm"},
    ),
    ForgedCase(
        "expired",
        _bearer(lambda keys: keys.sign(claims(_user(), now=int(time.time()) - 600))),
        {"exp": "token expired"},
    ),
    ForgedCase(
        "not yet valid",
        _bearer(lambda keys: keys.sign(claims(_user(), nbf=int(time.time()) + 120))),
        {"nbf": "token not valid yet"},
    ),
    ForgedCase(
        "lifetime above maximum_expiration",
        _bearer(lambda keys: keys.sign(claims(_user(), ttl=3600))),
        {"exp": "exceeds maximum allowed expiration"},
    ),
    ForgedCase(
        "wrong iss",
        _bearer(lambda keys: keys.sign(claims(_user(), iss="someone-else"))),
        {"message": "Unauthorized"},
    ),
    ForgedCase(
        "wrong aud",
        _bearer(lambda keys: keys.sign(claims(_user(), aud="another-audience"))),
        {"message": "Unauthorized"},
    ),
    ForgedCase(
        "tampered payload",
        _bearer(lambda keys: tampered(keys.sign(claims(_user())), sub="admin-1")),
        {"message": "Invalid signature"},
    ),
    ForgedCase(
        "signed by another key with our kid",
        _bearer(lambda keys: TestKeys(kid=keys.kid).sign(claims(_user()))),
        {"message": "Invalid signature"},
    ),
    ForgedCase(
        "unknown kid",
        _bearer(lambda keys: TestKeys(kid=f"unknown-{uuid.uuid4().hex}").sign(claims(_user()))),
        {"message": "No credentials found for given 'kid'"},
    ),
    ForgedCase(
        "no kid",
        _bearer(lambda keys: jwt.encode(claims(_user()), keys.private_key, algorithm="RS256")),
        {"message": "No mandatory 'kid' in claims"},
    ),
    ForgedCase(
        "malformed: one part", lambda keys: "Bearer abc", {"message": "Bad token; invalid JSON"}
    ),
    ForgedCase(
        "malformed: two parts",
        _bearer(lambda keys: f"{b64json({'alg': 'RS256'})}.{b64json(claims(_user()))}"),
        {"message": "Bad token; invalid JSON"},
    ),
    ForgedCase(
        "malformed: header not JSON",
        _bearer(lambda keys: f"{b64url(b'not json')}.{b64json(claims(_user()))}.c2ln"),
        {"message": "Bad token; invalid JSON"},
    ),
    ForgedCase(
        "malformed: not base64url",
        lambda keys: "Bearer @@@.###.$$$",
        {"message": "Bad token; invalid JSON"},
    ),
)


# ----------------------------------------------------------------------- servers


def bind_free_port(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready socket on ``port`` (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def free_port() -> int:
    """A port nothing listens on right now (for a process that binds it itself)."""
    with bind_free_port() as sock:
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ThreadedServer:
    """An ASGI app served by uvicorn on its own thread and event loop."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lifespan: Literal["on", "off"] = "off",
    ) -> None:
        self._socket = bind_free_port(host, port)
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan=lifespan,
            timeout_keep_alive=60,
            server_header=False,
            date_header=False,
            proxy_headers=False,  # edge servers: the peer address is the client (as in prod)
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host == "0.0.0.0" else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ThreadedServer:
        self._thread.start()
        wait_for(lambda: self._server.started, 10, "the test server to start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()


class JwksApp:
    """Serves ``{"keys": [...]}`` at /.well-known/jwks.json; keys can be added (rotation)."""

    def __init__(self, *keys: TestKeys) -> None:
        self.keys = list(keys)
        self.fetches = 0

    def add(self, keys: TestKeys) -> None:
        self.keys.append(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/.well-known/jwks.json":
            await _send_json(send, 404, {"message": "not found"})
            return
        self.fetches += 1
        await _send_json(send, 200, {"keys": [k.jwk() for k in self.keys]})


class EchoApp:
    """An upstream that records every request and echoes it back as JSON.

    Query parameters steer it: ``echo_delay=<s>`` answers late (timeouts),
    ``echo_size=<bytes>`` answers with that many bytes, ``echo_chunks=<n>`` and
    ``echo_interval=<s>`` stream n chunks with pauses (streaming). Records are read
    at ``/__echo__/requests[?probe=<marker>]``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def records(self, probe: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self._records)
        return [r for r in found if probe is None or probe in r["query"].get("probe", [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
        if scope["path"] == f"{ECHO_PREFIX}/requests":
            probe = query.get("probe", [None])[0]
            await _send_json(send, 200, {"requests": self.records(probe)})
            return
        digest, length, first_chunk_at = hashlib.sha256(), 0, None
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            if chunk and first_chunk_at is None:
                first_chunk_at = time.monotonic()
            digest.update(chunk)
            length += len(chunk)
            if not message.get("more_body", False):
                break
        record = {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
            "query": query,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body_length": length,
            "body_sha256": digest.hexdigest(),
            "first_chunk_at": first_chunk_at,
            "body_done_at": time.monotonic(),
            "client": list(scope["client"]) if scope.get("client") else None,
        }
        with self._lock:
            self._records.append(record)
        delay = float(query.get("echo_delay", ["0"])[0])
        if delay:
            await asyncio.sleep(delay)
        if "echo_size" in query or "echo_chunks" in query:
            await self._stream(send, query)
            return
        await _send_json(send, 200, record)

    async def _stream(self, send: Send, query: Mapping[str, list[str]]) -> None:
        size = int(query.get("echo_size", ["0"])[0])
        chunks = int(query.get("echo_chunks", ["1"])[0])
        interval = float(query.get("echo_interval", ["0"])[0])
        per_chunk = max(1, size // chunks) if size else 1024
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        for index in range(chunks):
            if index and interval:
                await asyncio.sleep(interval)
            await send({"type": "http.response.body", "body": b"x" * per_chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_json(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data, "more_body": False})


def header_values(record: Mapping[str, Any], name: str) -> list[str]:
    """Every value of header ``name`` in an echo record."""
    return [value for key, value in record["headers"] if key.lower() == name.lower()]
