"""A matched route's plugins, run as Kong runs them.

Access phase: plugins in descending priority (pre-function 1000000, jwt 1450,
rate-limiting 910, request-transformer 801, correlation-id 1); the first that answers
ends the request. They all read and write one header list — the request headers as the
upstream will see them, as ``kong.request.get_header`` reads them after an earlier
plugin's ``kong.service.request.set_header``. Response phase: every plugin of the route
adds its headers (rate-limit counters, the echoed correlation id), also to a response
the gateway wrote itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from handwritten.gateway.adapters.jwt_keys import verify_rs256
from handwritten.gateway.adapters.rate_counter import RateStoreError
from handwritten.gateway.domain.config import (
    CorrelationIdPlugin,
    JwtPlugin,
    Plugin,
    RateLimitingPlugin,
    RequestTransformerPlugin,
    Route,
    UserIdFromTokenPlugin,
    kong_entity_id,
)
from handwritten.gateway.domain.errors import GatewayResponse, kong_error
from handwritten.gateway.domain.headers import HeaderList
from handwritten.gateway.domain.jwt_rules import (
    JwtRejected,
    check_algorithm,
    check_claims,
    credential_key,
    invalid_signature,
    no_credentials,
    parse_token,
    retrieve_token,
    user_id_from_token,
)
from handwritten.gateway.domain.rate_limit import EXPIRATION, counter_key, decide
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)

# Headers Kong's jwt plugin sets for the upstream once a token is verified.
CONSUMER_ID = "X-Consumer-ID"
CONSUMER_CUSTOM_ID = "X-Consumer-Custom-ID"
CONSUMER_USERNAME = "X-Consumer-Username"
CREDENTIAL_IDENTIFIER = "X-Credential-Identifier"
ANONYMOUS_CONSUMER = "X-Anonymous-Consumer"


class KeySource(Protocol):
    """Public keys by ``kid`` (None when there is no such credential)."""

    async def find(self, kid: str) -> Any | None: ...


class CounterStore(Protocol):
    """Window counters: count this request, return the count before it."""

    async def usage(self, key: str, expire_seconds: int, *, timeout_ms: int) -> int: ...


@dataclass
class RequestContext:
    """One request on its way through the plugins."""

    route: Route
    request_id: str
    method: str
    #: The path as the client sent it, and normalised (what routes match).
    raw_path: str
    path: str
    query: list[tuple[str, str]]
    cookies: dict[str, str]
    client_ip: str
    accept: str | None
    #: Epoch seconds for this request (Kong's ``ngx.time()``).
    now: int
    #: The request headers as the upstream will receive them.
    headers: HeaderList
    #: The id a ``uuid`` correlation generator hands out for this request.
    fresh_correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str | None = None
    #: ``sub`` of the bearer token (pre-function) and, once jwt verified it, the user.
    claimed_user: str | None = None
    user_id: str | None = None
    consumer_id: str | None = None
    credential: str | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)


class Pipeline:
    """Runs plugins against a request; holds what they need (keys, counters)."""

    def __init__(self, keys: KeySource, counters: CounterStore, consumer: str | None) -> None:
        self._keys = keys
        self._counters = counters
        #: The consumer every verified token maps to (Kong: the jwt_secret's consumer).
        self._consumer = consumer
        self._consumer_id = kong_entity_id("consumers", consumer) if consumer else None
        self._worker_uuid = str(uuid.uuid4())
        self._counter = 0

    async def access(self, ctx: RequestContext) -> GatewayResponse | None:
        """Run the access phase; a response means the request stops here."""
        for plugin in ctx.route.plugins:
            response = await self._access(plugin, ctx)
            if response is not None:
                return response
        return None

    def response_headers(self, ctx: RequestContext) -> list[tuple[str, str]]:
        """What the plugins add to the response (header_filter phase)."""
        headers = list(ctx.response_headers)
        correlation = ctx.route.plugin(CorrelationIdPlugin)
        if correlation is not None and correlation.echo_downstream:
            value = (
                ctx.correlation_id
                or ctx.headers.get(correlation.header_name)
                or self._correlation_id(correlation, ctx)
            )
            ctx.correlation_id = value
            headers.append((correlation.header_name, value))
        return headers

    async def _access(self, plugin: Plugin, ctx: RequestContext) -> GatewayResponse | None:
        if isinstance(plugin, UserIdFromTokenPlugin):
            return self._user_id_from_token(plugin, ctx)
        if isinstance(plugin, JwtPlugin):
            return await self._jwt(plugin, ctx)
        if isinstance(plugin, RateLimitingPlugin):
            return await self._rate_limit(plugin, ctx)
        if isinstance(plugin, RequestTransformerPlugin):
            ctx.headers.remove(*plugin.remove_headers)
        elif isinstance(plugin, CorrelationIdPlugin):
            value = ctx.headers.get(plugin.header_name)
            if not value:
                value = self._correlation_id(plugin, ctx)
                ctx.headers.set(plugin.header_name, value)
            ctx.correlation_id = value
        return None  # prometheus: its work is in the log phase

    def _user_id_from_token(
        self, plugin: UserIdFromTokenPlugin, ctx: RequestContext
    ) -> GatewayResponse | None:
        ctx.headers.remove(plugin.header_name)
        outcome = user_id_from_token(plugin, ctx.method, ctx.headers.get("authorization"))
        if outcome.rejected is not None:
            return outcome.rejected
        if outcome.user_id is not None:
            ctx.headers.set(plugin.header_name, outcome.user_id)
            ctx.claimed_user = outcome.user_id
        return None

    async def _jwt(self, plugin: JwtPlugin, ctx: RequestContext) -> GatewayResponse | None:
        if not plugin.run_on_preflight and ctx.method == "OPTIONS":
            return None
        try:
            token = retrieve_token(
                plugin, query=ctx.query, cookies=ctx.cookies, headers=ctx.headers
            )
            parsed = parse_token(plugin, token)
            kid = credential_key(plugin, parsed)
            key = await self._keys.find(kid)
            if key is None:
                raise no_credentials(plugin)
            check_algorithm(plugin, parsed)
            if not verify_rs256(parsed.signing_input, parsed.signature, key):
                raise invalid_signature(plugin)
            check_claims(plugin, parsed, ctx.now)
        except JwtRejected as rejected:
            return rejected.response
        ctx.credential = kid
        ctx.user_id = ctx.claimed_user
        ctx.consumer_id = self._consumer_id
        if self._consumer is not None and self._consumer_id is not None:
            ctx.headers.set(CONSUMER_ID, self._consumer_id)
            ctx.headers.set(CONSUMER_USERNAME, self._consumer)
        ctx.headers.remove(CONSUMER_CUSTOM_ID, ANONYMOUS_CONSUMER)
        ctx.headers.set(CREDENTIAL_IDENTIFIER, kid)
        return None

    async def _rate_limit(
        self, plugin: RateLimitingPlugin, ctx: RequestContext
    ) -> GatewayResponse | None:
        identifier = self._identifier(plugin, ctx)
        usage: dict[str, int] = {}
        try:
            for period, _ in plugin.limits:
                key = counter_key(plugin.route_id, plugin.service_id, identifier, ctx.now, period)
                usage[period] = await self._counters.usage(
                    key, EXPIRATION[period], timeout_ms=plugin.redis_timeout_ms
                )
        except RateStoreError as exc:
            if not plugin.fault_tolerant:
                return kong_error(500, None, request_id=ctx.request_id, accept=ctx.accept)
            # fault_tolerant: let the request through, without rate-limit headers (Kong).
            log.error("rate_limit_store_unavailable", route=ctx.route.name, error=str(exc))
            return None
        decision = decide(
            plugin.limits, usage, ctx.now, hide_client_headers=plugin.hide_client_headers
        )
        ctx.response_headers.extend(decision.headers)
        if decision.exceeded:
            message, request_id = plugin.error_message, ctx.request_id
            return kong_error(plugin.error_code, message, request_id=request_id, accept=ctx.accept)
        return None

    def _identifier(self, plugin: RateLimitingPlugin, ctx: RequestContext) -> str:
        """Kong's ``get_identifier``: the client's address when the chosen one is absent."""
        identifier: str | None = None
        if plugin.limit_by == "header" and plugin.header_name:
            identifier = ctx.headers.get(plugin.header_name)
        elif plugin.limit_by == "consumer":
            identifier = ctx.consumer_id or ctx.credential
        elif plugin.limit_by == "credential":
            identifier = ctx.credential
        elif plugin.limit_by == "service":
            identifier = ctx.route.service.id
        elif plugin.limit_by == "path" and ctx.path == plugin.path:
            identifier = ctx.path
        return identifier or ctx.client_ip

    def _correlation_id(self, plugin: CorrelationIdPlugin, ctx: RequestContext) -> str:
        if plugin.generator == "uuid#counter":
            self._counter += 1
            return f"{self._worker_uuid}#{self._counter}"
        return ctx.fresh_correlation_id
