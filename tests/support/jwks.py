"""Bearer tokens for service tests: a test RSA key, RS256 access tokens signed the
way the auth service signs them (kid, iss, aud, sub, exp, nbf, iat, jti, roles), and
a tiny local JWKS server publishing the public key, so that a service's real
``RequestAuthenticator`` / ``JwksClient`` verification runs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from generated import catalog


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class TokenIssuer:
    """Signs RS256 access tokens with ``key`` under ``kid``."""

    kid: str = "test-key"
    key: rsa.RSAPrivateKey = field(default_factory=new_rsa_key)

    def token(
        self,
        user_id: uuid.UUID | str | None = None,
        *,
        roles: Sequence[str] = ("customer",),
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """A token valid for five minutes; ``claims`` override or add claims."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": catalog.JWT_ISSUER,
            "aud": catalog.JWT_AUDIENCE,
            "sub": str(user_id or uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            "roles": list(roles),
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def headers(self, user_id: uuid.UUID | str | None = None, **options: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **options)}"}

    def admin_headers(self, user_id: uuid.UUID | str | None = None) -> dict[str, str]:
        return self.headers(user_id, roles=["admin", "customer"])

    def jwks(self) -> dict[str, Any]:
        """The JWKS document publishing the public key."""
        return jwks_document(self)


class SigningKey(Protocol):
    """Anything holding a test RSA key and its kid (every test token issuer)."""

    key: rsa.RSAPrivateKey
    kid: str


def jwks_document(signing: SigningKey) -> dict[str, Any]:
    """The JWKS document publishing ``signing``'s public key."""
    jwk = RSAAlgorithm.to_jwk(signing.key.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": signing.kid, "alg": "RS256", "use": "sig"}]}


@contextmanager
def jwks_server(issuer: SigningKey) -> Iterator[str]:
    """Serve ``issuer``'s JWKS on a free local port (in a thread); its URL."""
    body = json.dumps(jwks_document(issuer)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
