"""The rules of Kong 3.8's ``jwt`` plugin and of the generated ``pre-function``.

Every check, its order and its 401 body follow ``kong/plugins/jwt/handler.lua`` and
``jwt_parser.lua`` of Kong 3.8.1, so a forged token gets the same answer from this
gateway as from Kong. The signature itself is checked by the caller (it needs the
key), between ``parse_token`` and ``check_claims``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from handwritten.gateway.domain.config import JwtPlugin, UserIdFromTokenPlugin
from handwritten.gateway.domain.errors import UNAUTHORIZED, GatewayResponse, kong_exit
from handwritten.gateway.domain.headers import HeaderList

#: Algorithms Kong's parser knows (``alg_verify``); any other ``alg`` (``none`` in any
#: casing included) is "Bad token; invalid alg" before a key is even looked up.
KONG_ALGORITHMS = frozenset(
    {
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "RS384",
        "RS512",
        "ES256",
        "ES384",
        "ES512",
        "PS256",
        "PS384",
        "PS512",
        "EdDSA",
    }
)
#: The algorithm of every credential this gateway holds (JWKS RSA keys).
CREDENTIAL_ALGORITHM = "RS256"

_BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class ParsedToken:
    """A JWT split and decoded as Kong's parser does (nothing verified yet)."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signature: bytes
    signing_input: bytes


class JwtRejected(Exception):  # noqa: N818 - a control-flow outcome, like Kong's exit
    """The jwt plugin answers 401 with ``response``."""

    def __init__(self, response: GatewayResponse) -> None:
        super().__init__(response.body.decode())
        self.response = response


def _www_authenticate(conf: JwtPlugin, *, with_error: bool) -> str:
    base = f'Bearer realm="{conf.realm}"' if conf.realm else "Bearer"
    return base + ' error="invalid_token"' if with_error else base


def unauthorized(
    conf: JwtPlugin, body: Mapping[str, Any], *, with_error: bool = True
) -> JwtRejected:
    """Kong's ``kong.response.exit(401, body, {WWW-Authenticate: …})``."""
    header = ("WWW-Authenticate", _www_authenticate(conf, with_error=with_error))
    return JwtRejected(kong_exit(401, body, (header,)))


def retrieve_token(
    conf: JwtPlugin,
    *,
    query: Iterable[tuple[str, str]],
    cookies: Mapping[str, str],
    headers: HeaderList,
) -> str:
    """The one token of the request (query params, then cookies, then headers).

    Raises ``JwtRejected``: "Unauthorized" when there is none, "Multiple tokens
    provided" when they differ.
    """
    found: dict[str, None] = {}
    params = list(query)
    for name in conf.uri_param_names:
        for key, value in params:
            if key == name and value:
                found[value] = None
    for name in conf.cookie_names:
        cookie = cookies.get(name)
        if cookie:
            found[cookie] = None
    for header_name in conf.header_names:
        header = headers.get(header_name)
        if header is not None:
            match = _BEARER.search(header)
            if match and match.group(1):
                found[match.group(1)] = None
    if not found:
        raise unauthorized(conf, {"message": UNAUTHORIZED}, with_error=False)
    if len(found) > 1:
        raise unauthorized(conf, {"message": "Multiple tokens provided"})
    return next(iter(found))


def _kong_base64url(part: str) -> bytes | None:
    """``ngx.base64.decode_base64url`` after Kong pads the part: None when invalid."""
    data = part.split("=", 1)[0]  # nginx stops at the first padding character
    if not _BASE64URL.fullmatch(data) or len(data) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def parse_token(conf: JwtPlugin, token: str) -> ParsedToken:
    """Kong's ``jwt_decoder:new``: three parts, JSON header and claims, known alg."""
    parts = token.split(".", 2)
    if len(parts) < 3:
        raise unauthorized(conf, {"message": "Bad token; invalid JSON"})
    header_bytes, claims_bytes = _kong_base64url(parts[0]), _kong_base64url(parts[1])
    try:
        header = json.loads(header_bytes) if header_bytes is not None else None
        claims = json.loads(claims_bytes) if claims_bytes is not None else None
    except ValueError:
        header = claims = None
    # Kong answers 500 when the JSON is not an object; a 401 is the honest answer.
    if not isinstance(header, dict) or header_bytes is None or claims_bytes is None:
        raise unauthorized(conf, {"message": "Bad token; invalid JSON"})
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in KONG_ALGORITHMS:
        raise unauthorized(conf, {"message": "Bad token; invalid alg"})
    if not isinstance(claims, dict):
        raise unauthorized(conf, {"message": "Bad token; invalid claims"})
    signature = _kong_base64url(parts[2])
    if signature is None:
        raise unauthorized(conf, {"message": "Bad token; invalid signature"})
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    return ParsedToken(header, claims, signature, signing_input)


def credential_key(conf: JwtPlugin, token: ParsedToken) -> str:
    """The credential id (``kid``): from the claims first, then the header, as Kong."""
    value = token.claims.get(conf.key_claim_name)
    if value is None or value is False:
        value = token.header.get(conf.key_claim_name)
    if value is None or value is False:
        raise unauthorized(conf, {"message": f"No mandatory '{conf.key_claim_name}' in claims"})
    if value == "":
        raise unauthorized(conf, {"message": f"Invalid '{conf.key_claim_name}' in claims"})
    if not isinstance(value, str):
        raise no_credentials(conf)
    return value


def no_credentials(conf: JwtPlugin) -> JwtRejected:
    message = f"No credentials found for given '{conf.key_claim_name}'"
    return unauthorized(conf, {"message": message})


def check_algorithm(conf: JwtPlugin, token: ParsedToken) -> None:
    """The token's ``alg`` must be the credential's (RS256): HS256 signed with the
    public key as secret stops here."""
    if token.header.get("alg") != CREDENTIAL_ALGORITHM:
        raise unauthorized(conf, {"message": "Invalid algorithm"})


def invalid_signature(conf: JwtPlugin) -> JwtRejected:
    return unauthorized(conf, {"message": "Invalid signature"})


def check_claims(conf: JwtPlugin, token: ParsedToken, now: int) -> None:
    """``verify_registered_claims`` then ``check_maximum_expiration`` (``now``: epoch s)."""
    errors: dict[str, str] = {}
    for name in conf.claims_to_verify:
        value = token.claims.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors[name] = "must be a number"
        elif name == "exp" and value <= now:
            errors[name] = "token expired"
        elif name == "nbf" and value > now:
            errors[name] = "token not valid yet"
    if errors:
        raise unauthorized(conf, errors)
    if conf.maximum_expiration > 0:
        exp = token.claims.get("exp")
        if not isinstance(exp, int | float) or exp - now > conf.maximum_expiration:
            raise unauthorized(conf, {"exp": "exceeds maximum allowed expiration"})


# ----------------------------------------------------------------------- pre-function

_LUA_BEARER = re.compile(rb"[Bb]earer\s+(.+)", re.S)
_LUA_PAYLOAD = re.compile(rb"[^.]+\.([^.]+)\.[^.]*", re.S)
_LUA_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LUA_ISS = re.compile(rb'"iss"\s*:\s*"([^"\\]*)"')
_LUA_AUD = re.compile(rb'"aud"\s*:\s*"([^"\\]*)"')
_LUA_AUD_LIST = re.compile(rb'"aud"\s*:\s*\[')
_LUA_SUB = re.compile(rb'"sub"\s*:\s*"([^"\\]+)"')


@dataclass(frozen=True)
class PreFunctionOutcome:
    """What the generated pre-function decided: a 401, or the user header's value."""

    rejected: GatewayResponse | None = None
    user_id: str | None = None


def user_id_from_token(
    conf: UserIdFromTokenPlugin, method: str, authorization: str | None
) -> PreFunctionOutcome:
    """The generated Lua, step by step (Lua patterns on bytes, its base64url decoder).

    The caller has already removed the client's user header. No identity for a CORS
    preflight or a request without a decodable bearer payload (jwt answers those).
    """
    if method == "OPTIONS" or authorization is None:
        return PreFunctionOutcome()
    bearer = _LUA_BEARER.search(authorization.encode("latin-1"))
    payload = _LUA_PAYLOAD.fullmatch(bearer.group(1)) if bearer else None
    if payload is None:
        return PreFunctionOutcome()
    json_bytes = _lua_base64url(payload.group(1))
    if json_bytes is None:
        return PreFunctionOutcome()
    iss = _LUA_ISS.search(json_bytes)
    aud_match = _LUA_AUD.search(json_bytes)
    aud = aud_match.group(1) if aud_match else None
    expected_aud = conf.audience.encode()
    if aud is None:
        audiences = _balanced_list(json_bytes)
        if audiences is not None and b'"' + expected_aud + b'"' in audiences:
            aud = expected_aud
    if iss is None or iss.group(1) != conf.issuer.encode() or aud != expected_aud:
        return PreFunctionOutcome(rejected=kong_exit(401, {"message": UNAUTHORIZED}))
    sub = _LUA_SUB.search(json_bytes)
    return PreFunctionOutcome(user_id=sub.group(1).decode("latin-1") if sub else None)


def _lua_base64url(payload: bytes) -> bytes | None:
    """The Lua decoder: None at the first byte outside the alphabet; leftover bits
    are dropped."""
    out = bytearray()
    buffer = bits = 0
    for byte in payload:
        value = _LUA_ALPHABET.find(bytes([byte]))
        if value < 0:
            return None
        buffer = (buffer << 6) | value
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append(buffer >> bits)
            buffer &= (1 << bits) - 1
    return bytes(out)


def _balanced_list(data: bytes) -> bytes | None:
    """Lua's ``'"aud"%s*:%s*(%b[])'``: the first ``"aud": [...]`` with balanced brackets."""
    for match in _LUA_AUD_LIST.finditer(data):
        start = match.end() - 1
        depth = 0
        for index in range(start, len(data)):
            if data[index] == ord("["):
                depth += 1
            elif data[index] == ord("]"):
                depth -= 1
                if depth == 0:
                    return data[start : index + 1]
    return None
