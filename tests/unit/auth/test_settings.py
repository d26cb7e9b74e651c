"""Auth settings: catalog defaults, production-grade argon2, env overrides."""

from __future__ import annotations

import ipaddress

import pytest

from handwritten.auth.settings import DEV_KEY_ENCRYPTION_SECRET, AuthSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADMIN_EMAIL", "ADMIN_PASSWORD", "DATABASE_URL", "HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = AuthSettings()
    assert settings.service_name == "auth"
    assert settings.http_port == 8101
    assert settings.database_url == "postgresql://auth:auth@127.0.0.1:5432/auth"
    assert settings.admin_email == "admin@microcommerce.local"
    assert settings.admin_password.get_secret_value() == "MicroCommerce#2026"
    assert "MicroCommerce#2026" not in repr(settings)
    assert settings.access_token_ttl_seconds == 900
    assert settings.refresh_token_ttl_seconds == 7 * 24 * 3600
    assert settings.key_rotation_seconds == 30 * 24 * 3600
    assert settings.auth_key_encryption_secret.get_secret_value() == DEV_KEY_ENCRYPTION_SECRET
    assert settings.trusted_proxy_hops == 1
    # X-Forwarded-For only from the local gateway's address or private networks.
    assert settings.trusted_proxy_networks()[0] == ipaddress.ip_network("127.0.0.1/32")
    assert not any(
        ipaddress.ip_address("203.0.113.7") in net for net in settings.trusted_proxy_networks()
    )
    # argon2id: RFC 9106's second recommended option (t=3, 64 MiB, p=4).
    assert (
        settings.argon2_time_cost,
        settings.argon2_memory_cost_kib,
        settings.argon2_parallelism,
    ) == (3, 65536, 4)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCESS_TOKEN_TTL_SECONDS", "300")
    monkeypatch.setenv("KEY_ROTATION_SECONDS", "3600")
    monkeypatch.setenv("AUTH_KEY_ENCRYPTION_SECRET", "prod-secret")
    monkeypatch.setenv("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")
    settings = AuthSettings()
    assert settings.access_token_ttl_seconds == 300
    assert settings.key_rotation_seconds == 3600
    assert settings.auth_key_encryption_secret.get_secret_value() == "prod-secret"
    assert settings.login_max_failures_per_account == 3
