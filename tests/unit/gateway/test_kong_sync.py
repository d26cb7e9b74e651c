"""The JWKS → Kong credentials transformation, and when the sync job reconfigures Kong
(Kong's admin API played by an httpx MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from handwritten.gateway.domain.config import parse_kong_config
from handwritten.gateway.kong_sync import (
    SyncError,
    SyncSettings,
    jwk_to_pem,
    jwt_secrets,
    key_set,
    sync_once,
    with_jwt_secrets,
)
from tests.gateway.support import TestKeys

ROOT = Path(__file__).resolve().parents[3]
KONG_YML = ROOT / "infrastructure" / "gateway" / "kong.yml"


@pytest.fixture(scope="module")
def keys() -> tuple[TestKeys, TestKeys]:
    return TestKeys("kid-a"), TestKeys("kid-b")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(KONG_YML.read_text())
    return data


def test_a_jwk_becomes_the_same_key_in_pem(keys: tuple[TestKeys, TestKeys]) -> None:
    pem = jwk_to_pem(keys[0].jwk())
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    loaded = serialization.load_pem_public_key(pem.encode())
    assert isinstance(loaded, rsa.RSAPublicKey)
    assert loaded.public_numbers() == keys[0].private_key.public_key().public_numbers()
    assert pem.encode() == keys[0].public_pem()


def test_only_rs256_signing_keys_become_credentials(keys: tuple[TestKeys, TestKeys]) -> None:
    jwks = {
        "keys": [
            keys[1].jwk(),
            keys[0].jwk(),
            {**keys[0].jwk(), "kid": "enc", "use": "enc"},
            {**keys[0].jwk(), "kid": "ps", "alg": "PS256"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"},
            {**keys[0].jwk(), "kid": ""},
            "junk",
        ]
    }
    secrets = jwt_secrets(jwks)
    assert [s["key"] for s in secrets] == ["kid-a", "kid-b"]  # sorted by kid
    assert secrets[0] == {
        "key": "kid-a",
        "algorithm": "RS256",
        "rsa_public_key": keys[0].public_pem().decode(),
    }


def test_the_config_gets_the_credentials_on_its_consumer(
    config: dict[str, Any], keys: tuple[TestKeys, TestKeys]
) -> None:
    secrets = jwt_secrets({"keys": [k.jwk() for k in keys]})
    updated = with_jwt_secrets(config, "microcommerce-users", secrets)
    assert updated["consumers"] == [{"username": "microcommerce-users", "jwt_secrets": secrets}]
    assert "jwt_secrets" not in config["consumers"][0]  # the original is untouched
    assert updated["services"] == config["services"]
    assert json.loads(json.dumps(updated)) == updated  # what POST /config sends
    with pytest.raises(SyncError, match="no consumer 'nobody'"):
        with_jwt_secrets(config, "nobody", secrets)


def test_the_updated_config_is_still_valid_kong_config(
    config: dict[str, Any], keys: tuple[TestKeys, TestKeys]
) -> None:
    """Our gateway refuses static jwt_secrets (it reads the JWKS) — everything else in
    the pushed config must still parse as the same routes."""
    updated = with_jwt_secrets(
        config, "microcommerce-users", jwt_secrets({"keys": [keys[0].jwk()]})
    )
    without = {**updated, "consumers": [{"username": "microcommerce-users"}]}
    assert parse_kong_config(without).routes == parse_kong_config(config).routes


class FakeKongAdmin:
    """Kong's admin API (DB-less) as far as the sync job uses it."""

    def __init__(self) -> None:
        self.secrets: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.jwks: dict[str, Any] = {"keys": []}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json=self.jwks)
        if request.method == "GET" and request.url.path == "/consumers/microcommerce-users/jwt":
            return httpx.Response(200, json={"data": self.secrets, "next": None})
        if request.method == "POST" and request.url.path == "/config":
            body = json.loads(request.content)
            self.posted.append(body)
            consumer = body["consumers"][0]
            self.secrets = [
                {**s, "id": "generated", "consumer": {"id": "c"}} for s in consumer["jwt_secrets"]
            ]
            return httpx.Response(201, json={})
        return httpx.Response(404, json={"message": "Not found"})


async def test_kong_is_reconfigured_only_when_its_keys_differ(
    config: dict[str, Any], keys: tuple[TestKeys, TestKeys]
) -> None:
    kong = FakeKongAdmin()
    settings = SyncSettings(
        kong_admin_url="http://kong:8001", jwks_url="http://auth/.well-known/jwks.json"
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(kong.handler)) as client:
        kong.jwks = {"keys": [keys[0].jwk()]}
        assert await sync_once(client, settings, config) is True
        assert await sync_once(client, settings, config) is False  # in step: nothing posted
        kong.jwks = {"keys": [keys[0].jwk(), keys[1].jwk()]}  # rotation: a new key
        assert await sync_once(client, settings, config) is True
        kong.secrets = []  # Kong restarted and reloaded kong.yml
        assert await sync_once(client, settings, config) is True
        kong.jwks = {"keys": []}  # the JWKS lost its keys: Kong keeps what it has
        with pytest.raises(SyncError, match="no RS256 key"):
            await sync_once(client, settings, config)
    assert len(kong.posted) == 3
    assert key_set(kong.secrets) == key_set(jwt_secrets({"keys": [k.jwk() for k in keys]}))


async def test_a_refused_config_is_an_error(
    config: dict[str, Any], keys: tuple[TestKeys, TestKeys]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json={"keys": [keys[0].jwk()]})
        if request.url.path == "/config":
            return httpx.Response(400, json={"message": "declarative config is invalid"})
        return httpx.Response(404)

    settings = SyncSettings(
        kong_admin_url="http://kong:8001", jwks_url="http://auth/.well-known/jwks.json"
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SyncError, match="400"):
            await sync_once(client, settings, config)
