"""The gateway as the CLI sees it: stored credentials, token refresh, errors as ``CliError``."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from generated import catalog
from handwritten.cli.errors import CliError

DEFAULT_GATEWAY = f"http://127.0.0.1:{catalog.GATEWAY_PORT}"


def gateway_url() -> str:
    """``MC_GATEWAY_URL`` or the local gateway."""
    return os.environ.get("MC_GATEWAY_URL", DEFAULT_GATEWAY).rstrip("/")


def credentials_path() -> Path:
    """Where ``mc login`` keeps the token pair (``MC_CREDENTIALS`` overrides)."""
    explicit = os.environ.get("MC_CREDENTIALS")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "microcommerce" / "credentials.json"


def demo_admin() -> tuple[str, str]:
    """The seeded development admin (the auth service's documented defaults)."""
    defaults = {variable.name: variable.default for variable in catalog.SERVICES["auth"].env}
    return str(defaults["ADMIN_EMAIL"]), str(defaults["ADMIN_PASSWORD"])


@dataclass
class Credentials:
    """A stored token pair and whose it is."""

    email: str
    access_token: str
    refresh_token: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created private before the secret is written into it.
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(self.__dict__), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Credentials | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(data["email"]), str(data["access_token"]), str(data["refresh_token"]))
        except (FileNotFoundError, KeyError, json.JSONDecodeError, TypeError):
            return None


def problem_message(response: httpx.Response) -> str:
    """The most useful one-line text of an error response (problem+json, Kong, other)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "title"):
            if body.get(key):
                return str(body[key])
    return json.dumps(body)[:200]


HINTS = {
    401: "log in first: mc login EMAIL (or mc --as-admin … for the local demo admin)",
    403: "this needs an admin: mc --as-admin …",
    404: "check the id; users only see their own orders",
    429: "rate limited by the gateway: wait a minute",
}


class Gateway:
    """Calls through the gateway with the stored (or demo admin) credentials."""

    def __init__(self, *, as_admin: bool = False, timeout: float = 15.0) -> None:
        self.base_url = gateway_url()
        self.as_admin = as_admin
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._credentials: Credentials | None = None

    def close(self) -> None:
        self._http.close()

    def login(self, email: str, password: str) -> Credentials:
        """Log in, keep the pair in memory (``mc login`` also saves it)."""
        response = self._send(
            "POST", "/api/auth/login", json={"email": email, "password": password}
        )
        if response.status_code != 200:
            raise CliError(
                f"login failed for {email}: {problem_message(response)}",
                "check the email and password (register at POST /api/auth/register)",
            )
        body = response.json()
        self._credentials = Credentials(email, body["access_token"], body["refresh_token"])
        return self._credentials

    def request(
        self, method: str, path: str, *, json_body: Any = None, idempotent_post: bool = False
    ) -> Any:
        """An authenticated call; the JSON body of a 2xx answer, else ``CliError``."""
        credentials = self._current_credentials()
        headers = {"authorization": f"Bearer {credentials.access_token}"}
        if idempotent_post:
            headers["idempotency-key"] = str(uuid.uuid4())
        response = self._send(method, path, json=json_body, headers=headers)
        if response.status_code == 401 and self._refresh(credentials):
            headers["authorization"] = f"Bearer {self._current_credentials().access_token}"
            response = self._send(method, path, json=json_body, headers=headers)
        if response.is_success:
            return response.json() if response.content else None
        raise CliError(
            f"{method} {path} → {response.status_code}: {problem_message(response)}",
            HINTS.get(response.status_code),
        )

    def _current_credentials(self) -> Credentials:
        if self._credentials is not None:
            return self._credentials
        if self.as_admin:
            return self.login(*demo_admin())
        stored = Credentials.load(credentials_path())
        if stored is None:
            raise CliError("not logged in", HINTS[401])
        self._credentials = stored
        return stored

    def _refresh(self, credentials: Credentials) -> bool:
        response = self._send(
            "POST", "/api/auth/refresh", json={"refresh_token": credentials.refresh_token}
        )
        if response.status_code != 200:
            return False
        body = response.json()
        self._credentials = Credentials(
            credentials.email, body["access_token"], body["refresh_token"]
        )
        if not self.as_admin:
            self._credentials.save(credentials_path())
        return True

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"gateway not reachable at {self.base_url} ({type(exc).__name__})",
                "start the stack: mc up (or set MC_GATEWAY_URL)",
            ) from exc
