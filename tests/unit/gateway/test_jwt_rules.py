"""Kong 3.8's jwt plugin rules, and the generated pre-function — checked against the
real Lua, run by luajit, on the same inputs."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from handwritten.gateway.domain.config import JwtPlugin, UserIdFromTokenPlugin
from handwritten.gateway.domain.headers import HeaderList
from handwritten.gateway.domain.jwt_rules import (
    JwtRejected,
    check_algorithm,
    check_claims,
    credential_key,
    parse_token,
    retrieve_token,
    user_id_from_token,
)

ROOT = Path(__file__).resolve().parents[3]
CONF = JwtPlugin(
    header_names=("authorization",),
    uri_param_names=(),
    key_claim_name="kid",
    claims_to_verify=("exp", "nbf"),
    maximum_expiration=900,
    run_on_preflight=False,
)
NOW = 1_800_000_000


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(header: Any, claims: Any, signature: bytes = b"sig") -> str:
    return f"{b64(header)}.{b64(claims)}.{b64(signature)}"


def rejected(call: Any) -> tuple[int, dict[str, Any], str | None]:
    with pytest.raises(JwtRejected) as info:
        call()
    response = info.value.response
    return (
        response.status,
        json.loads(response.body),
        dict(response.headers).get("WWW-Authenticate"),
    )


# ------------------------------------------------------------------ retrieving


def test_no_token_is_plain_unauthorized() -> None:
    status, body, www = rejected(
        lambda: retrieve_token(CONF, query=[], cookies={}, headers=HeaderList())
    )
    assert (status, body, www) == (401, {"message": "Unauthorized"}, "Bearer")


def test_the_bearer_is_found_case_insensitively_in_the_scheme() -> None:
    for value in ("Bearer abc", "bearer abc", "  Bearer   abc"):
        headers = HeaderList([("Authorization", value)])
        assert retrieve_token(CONF, query=[], cookies={}, headers=headers) == "abc"


def test_two_different_tokens_are_refused() -> None:
    conf = JwtPlugin(uri_param_names=("jwt",), cookie_names=("session",))
    headers = HeaderList([("Authorization", "Bearer one")])
    _, body, www = rejected(
        lambda: retrieve_token(conf, query=[("jwt", "two")], cookies={}, headers=headers)
    )
    assert body == {"message": "Multiple tokens provided"}
    assert www == 'Bearer error="invalid_token"'
    # the same token twice is one token
    same = retrieve_token(conf, query=[("jwt", "one")], cookies={"session": "one"}, headers=headers)
    assert same == "one"


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "Bad token; invalid JSON"),
        ("a.b", "Bad token; invalid JSON"),
        (f"{b64(b'nope')}.{b64({})}.x", "Bad token; invalid JSON"),
        (f"{b64({'alg': 'RS256'})}.{b64(b'nope')}.x", "Bad token; invalid JSON"),
        ("@@.##.$$", "Bad token; invalid JSON"),
        (token({"alg": "none"}, {}), "Bad token; invalid alg"),
        (token({"alg": "NONE"}, {}), "Bad token; invalid alg"),
        (token({"alg": "nOnE"}, {}), "Bad token; invalid alg"),
        (token({"typ": "JWT"}, {}), "Bad token; invalid alg"),
        (token({"alg": 256}, {}), "Bad token; invalid alg"),
        (token({"alg": "RS256"}, [1, 2]), "Bad token; invalid claims"),
        (f"{b64({'alg': 'RS256'})}.{b64({})}.a", "Bad token; invalid signature"),
    ],
)
def test_malformed_tokens(raw: str, message: str) -> None:
    status, body, www = rejected(lambda: parse_token(CONF, raw))
    assert (status, body, www) == (401, {"message": message}, 'Bearer error="invalid_token"')


def test_a_well_formed_token_parses() -> None:
    parsed = parse_token(CONF, token({"alg": "RS256", "kid": "k1"}, {"sub": "u"}, b"\x01\x02"))
    assert parsed.header == {"alg": "RS256", "kid": "k1"}
    assert parsed.claims == {"sub": "u"}
    assert parsed.signature == b"\x01\x02"


def test_the_kid_comes_from_the_claims_first_then_the_header() -> None:
    assert credential_key(CONF, parse_token(CONF, token({"alg": "RS256", "kid": "h"}, {}))) == "h"
    both = parse_token(CONF, token({"alg": "RS256", "kid": "h"}, {"kid": "c"}))
    assert credential_key(CONF, both) == "c"
    _, body, _ = rejected(
        lambda: credential_key(CONF, parse_token(CONF, token({"alg": "RS256"}, {})))
    )
    assert body == {"message": "No mandatory 'kid' in claims"}
    empty = parse_token(CONF, token({"alg": "RS256", "kid": ""}, {}))
    _, body, _ = rejected(lambda: credential_key(CONF, empty))
    assert body == {"message": "Invalid 'kid' in claims"}


def test_only_rs256_matches_the_credentials() -> None:
    check_algorithm(CONF, parse_token(CONF, token({"alg": "RS256"}, {})))
    _, body, _ = rejected(
        lambda: check_algorithm(CONF, parse_token(CONF, token({"alg": "HS256"}, {})))
    )
    assert body == {"message": "Invalid algorithm"}


@pytest.mark.parametrize(
    ("claims", "errors"),
    [
        ({"exp": NOW + 60, "nbf": NOW}, None),
        ({"exp": NOW, "nbf": NOW}, {"exp": "token expired"}),
        ({"exp": NOW + 60, "nbf": NOW + 1}, {"nbf": "token not valid yet"}),
        ({"exp": NOW - 1, "nbf": NOW + 1}, {"exp": "token expired", "nbf": "token not valid yet"}),
        ({"nbf": NOW}, {"exp": "must be a number"}),
        ({"exp": "soon", "nbf": NOW}, {"exp": "must be a number"}),
        ({"exp": True, "nbf": NOW}, {"exp": "must be a number"}),
        ({"exp": NOW + 901, "nbf": NOW}, {"exp": "exceeds maximum allowed expiration"}),
        ({"exp": NOW + 900, "nbf": NOW}, None),
    ],
)
def test_registered_claims(claims: dict[str, Any], errors: dict[str, str] | None) -> None:
    parsed = parse_token(CONF, token({"alg": "RS256"}, claims))
    if errors is None:
        check_claims(CONF, parsed, NOW)
    else:
        assert rejected(lambda: check_claims(CONF, parsed, NOW))[1] == errors


# ------------------------------------------------------------------ the pre-function

PRE = UserIdFromTokenPlugin(issuer="microcommerce-auth", audience="microcommerce")
GOOD = {"iss": "microcommerce-auth", "aud": "microcommerce", "sub": "user-42"}


def bearer(payload: Any, *, spaces: str = " ") -> str:
    return f"Bearer{spaces}{b64({'alg': 'RS256'})}.{b64(payload)}.c2ln"


CASES: list[tuple[str, str | None]] = [
    ("GET", bearer(GOOD)),
    ("OPTIONS", bearer(GOOD)),
    ("GET", None),
    ("GET", "Bearer garbage"),
    ("GET", "Basic dXNlcg=="),
    ("GET", bearer(GOOD, spaces="\t ")),
    ("GET", "bearer " + bearer(GOOD).split(" ", 1)[1]),
    ("GET", "Token x, " + bearer(GOOD)),
    ("GET", bearer({**GOOD, "aud": ["other", "microcommerce"]})),
    ("GET", bearer({**GOOD, "aud": ["other"]})),
    ("GET", bearer({**GOOD, "aud": ["microcommercex"]})),
    ("GET", bearer({**GOOD, "aud": []})),
    ("GET", bearer({**GOOD, "iss": "evil"})),
    ("GET", bearer({**GOOD, "iss": "microcommerce-auth2"})),
    ("GET", bearer({**GOOD, "iss": 'microcommerce-auth\\"'})),
    ("GET", bearer({k: v for k, v in GOOD.items() if k != "iss"})),
    ("GET", bearer({k: v for k, v in GOOD.items() if k != "aud"})),
    ("GET", bearer({k: v for k, v in GOOD.items() if k != "sub"})),
    ("GET", bearer({**GOOD, "sub": 'with"quote'})),
    ("GET", bearer({**GOOD, "sub": "ünïcode-ß"})),
    ("GET", bearer({"nested": {"aud": "microcommerce"}, "iss": "microcommerce-auth", "sub": "n"})),
    ("GET", bearer(b'{"iss" :  "microcommerce-auth" ,"aud":\n"microcommerce","sub":"spaced"}')),
    ("GET", f"Bearer {b64({'alg': 'RS256'})}.{b64(GOOD)}==.c2ln"),
    ("GET", f"Bearer {b64({'alg': 'RS256'})}.{b64(GOOD)}"),
    ("GET", f"Bearer {b64({'alg': 'RS256'})}.{b64(GOOD)}.c2ln.extra"),
]


def lua_outcomes(cases: list[tuple[str, str | None]], tmp_path: Path) -> list[str]:
    """What the generated pre-function does with each case, under luajit."""
    kong = yaml.safe_load((ROOT / "infrastructure/gateway/kong.yml").read_text())
    orders = next(r for s in kong["services"] for r in s["routes"] if r["name"] == "orders")
    lua = next(p for p in orders["plugins"] if p["name"] == "pre-function")["config"]["access"][0]
    (tmp_path / "hook.lua").write_text(lua)
    harness = r"""
    local hook = assert(loadfile("hook.lua"))
    local EXIT = {}
    for line in io.lines("cases.txt") do
      -- one case per line: METHOD SPACE hex(authorization) or "-" when absent
      local method, hex = line:match("^(%u+) (.*)$")
      local auth = nil
      if hex ~= "-" then
        auth = hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
      end
      local upstream, exited = {["X-User-ID"] = "spoofed"}, nil
      local kong = {
        request = {
          get_method = function() return method end,
          get_header = function() return auth end,
        },
        service = {request = {
          clear_header = function(n) upstream[n] = nil end,
          set_header = function(n, v) upstream[n] = v end,
        }},
        response = {exit = function(status) exited = status; error(EXIT) end},
      }
      setfenv(hook, {kong = kong, string = string, math = math})
      local ok, err = pcall(hook)
      assert(ok or err == EXIT, err)
      io.write(exited and ("exit:" .. exited) or ("user:" .. tostring(upstream["X-User-ID"])), "\n")
    end
    """
    lines = [
        f"{method} {'-' if auth is None else auth.encode('latin-1').hex()}"
        for method, auth in cases
    ]
    (tmp_path / "cases.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "run.lua").write_text(harness)
    result = subprocess.run(["luajit", "run.lua"], cwd=tmp_path, capture_output=True, check=True)
    return result.stdout.decode("latin-1").splitlines()


def python_outcome(method: str, authorization: str | None) -> str:
    outcome = user_id_from_token(PRE, method, authorization)
    if outcome.rejected is not None:
        return f"exit:{outcome.rejected.status}"
    return f"user:{outcome.user_id if outcome.user_id is not None else 'nil'}"


def test_the_python_pre_function_is_the_lua_one(tmp_path: Path) -> None:
    assert shutil.which("luajit"), "luajit is missing: run `make tools`"
    expected = lua_outcomes(CASES, tmp_path)
    actual = [python_outcome(method, auth) for method, auth in CASES]
    assert actual == expected
    # and the outcomes are the intended ones
    assert actual[0] == "user:user-42"
    assert actual[1] == "user:nil"  # preflight
    assert actual[8] == "user:user-42"  # aud list containing ours
    assert actual[12] == "exit:401"  # another issuer
    assert "exit:401" in actual and "user:nil" in actual


def test_a_rejected_token_says_unauthorized() -> None:
    outcome = user_id_from_token(PRE, "GET", bearer({**GOOD, "aud": "x"}))
    assert outcome.rejected is not None
    assert outcome.rejected.status == 401
    assert outcome.rejected.body == b'{"message":"Unauthorized"}'
    assert outcome.rejected.headers == ()  # no WWW-Authenticate: it is not the jwt plugin
