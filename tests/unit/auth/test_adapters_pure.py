"""Adapter pieces without I/O: client address, key sealing, argon2 parameters."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography.hazmat.primitives import serialization

from handwritten.auth.adapters.client_ip import client_address, parse_networks
from handwritten.auth.adapters.keystore import (
    KeyDecryptionError,
    KeyEncryptor,
    generate_key,
    jwk_thumbprint,
)
from handwritten.auth.adapters.passwords import Argon2PasswordHasher


@pytest.mark.parametrize(
    ("forwarded", "peer", "hops", "expected"),
    [
        (None, "10.0.0.9", 1, "10.0.0.9"),
        ("203.0.113.7", "10.0.0.9", 1, "203.0.113.7"),
        # A client-sent entry on the left is ignored: the gateway appended the last one.
        ("6.6.6.6, 203.0.113.7", "10.0.0.9", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7, 10.1.1.1", "10.0.0.9", 2, "203.0.113.7"),
        ("203.0.113.7", "10.0.0.9", 0, "10.0.0.9"),
        ("203.0.113.7", "10.0.0.9", 2, "10.0.0.9"),  # fewer entries than trusted hops
        ("not-an-ip", "10.0.0.9", 1, "10.0.0.9"),
        (" 2001:db8::1 ", None, 1, "2001:db8::1"),
        (None, None, 1, "unknown"),
    ],
)
def test_client_address(forwarded: str | None, peer: str | None, hops: int, expected: str) -> None:
    assert client_address(forwarded, peer, trusted_hops=hops) == expected


GATEWAY_ONLY = parse_networks("127.0.0.1/32, 10.0.0.0/8")


@pytest.mark.parametrize(
    ("forwarded", "peer", "expected"),
    [
        # The gateway (a trusted peer) appended the client's address: believed.
        ("203.0.113.7", "127.0.0.1", "203.0.113.7"),
        ("203.0.113.7", "10.4.0.2", "203.0.113.7"),
        # A client reaching the service directly cannot choose its address.
        ("203.0.113.7", "127.0.0.2", "127.0.0.2"),
        ("203.0.113.7", "198.51.100.9", "198.51.100.9"),
        ("203.0.113.7", None, "unknown"),
        ("203.0.113.7", "not-an-address", "not-an-address"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    forwarded: str, peer: str | None, expected: str
) -> None:
    found = client_address(forwarded, peer, trusted_hops=1, trusted_proxies=GATEWAY_ONLY)
    assert found == expected


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert parse_networks(" ::1/128 ,, 192.168.1.7") == (
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("192.168.1.7/32"),
    )
    with pytest.raises(ValueError, match="gateway"):
        parse_networks("127.0.0.1, gateway")


def test_private_keys_are_sealed_and_bound_to_their_kid() -> None:
    key = generate_key()
    assert key.kid == jwk_thumbprint(key.public_jwk)
    assert set(key.public_jwk) == {"kty", "kid", "use", "alg", "n", "e"}
    sealed = KeyEncryptor("secret one")
    nonce, ciphertext = sealed.encrypt(key.private_der, kid=key.kid)
    assert len(nonce) == 12
    assert key.private_der not in ciphertext
    with pytest.raises(ValueError):
        serialization.load_der_private_key(ciphertext, password=None)
    assert sealed.decrypt(ciphertext, nonce, kid=key.kid) == key.private_der
    with pytest.raises(KeyDecryptionError):
        sealed.decrypt(ciphertext, nonce, kid="another-kid")
    with pytest.raises(KeyDecryptionError):
        KeyEncryptor("secret two").decrypt(ciphertext, nonce, kid=key.kid)
    # A fresh nonce each time: the same key never seals to the same bytes.
    assert sealed.encrypt(key.private_der, kid=key.kid)[1] != ciphertext


async def test_argon2id_hashes_and_spots_old_parameters() -> None:
    cheap = Argon2PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1)
    stronger = Argon2PasswordHasher(time_cost=2, memory_cost_kib=1024, parallelism=1)
    stored = await cheap.hash("Tr0ub4dor&3x")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await cheap.verify(stored, "Tr0ub4dor&3x")
    assert not await cheap.verify(stored, "Tr0ub4dor&3y")
    assert not await cheap.verify("not a hash", "Tr0ub4dor&3x")
    assert not cheap.needs_rehash(stored)
    assert stronger.needs_rehash(stored)
    assert await stronger.verify(stored, "Tr0ub4dor&3x")  # old hashes still verify
