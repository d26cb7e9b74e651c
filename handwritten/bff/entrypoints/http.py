"""``POST /graphql`` and ``POST /graphql/mobile``: implements the generated ``BffHandlers``.

The generated router validates the body against the spec's ``GraphQLRequest``
(422 problem+json otherwise) and only POST is routed, so the contract is exactly
the OpenAPI one; the document itself is executed here by the shape's strawberry
schema. Authentication is a router dependency: every route needs a verified
bearer token (401 problem+json before anything else runs), and the caller it
names is the only identity the resolvers know.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response
from starlette.responses import JSONResponse

from generated.models.bff import GraphQLRequest, GraphQLResponse
from handwritten.bff.domain.access import Caller
from handwritten.bff.entrypoints.graphql.response import response_body
from handwritten.bff.entrypoints.graphql.schema import BffSchema
from handwritten.bff.service_layer.loaders import Downstreams
from handwritten.bff.service_layer.ports import SummaryCache
from handwritten.bff.service_layer.queries import OrderQueries
from handwritten.runtime.auth import RequestAuthenticator

_CALLER = "bff_caller"


@dataclass(frozen=True)
class Components:
    """What the handlers use, opened by the app's lifespan."""

    authenticator: RequestAuthenticator
    downstreams: Downstreams
    cache: SummaryCache


class GraphqlApi:
    """The handlers; ``attach`` hands them the components once the app has started."""

    def __init__(self, web: BffSchema, mobile: BffSchema) -> None:
        self.web = web
        self.mobile = mobile
        self._components: Components | None = None

    def attach(self, components: Components | None) -> None:
        self._components = components

    @property
    def components(self) -> Components:
        if self._components is None:
            raise RuntimeError("the bff app has not started (lifespan not run)")
        return self._components

    async def authenticate(self, request: Request) -> None:
        """Router dependency: the verified caller (401 otherwise), kept for the handler."""
        claims = await self.components.authenticator.user(request)
        setattr(request.state, _CALLER, Caller(user_id=claims.user_id, is_admin=claims.is_admin))

    async def graphql_web(
        self, request: Request, *, body: GraphQLRequest
    ) -> GraphQLResponse | Response:
        return await self._execute(self.web, request, body)

    async def graphql_mobile(
        self, request: Request, *, body: GraphQLRequest
    ) -> GraphQLResponse | Response:
        return await self._execute(self.mobile, request, body)

    async def _execute(self, schema: BffSchema, request: Request, body: GraphQLRequest) -> Response:
        caller: Caller = getattr(request.state, _CALLER)
        components = self.components
        # A fresh context per request: its DataLoaders batch and cache this request only.
        context = OrderQueries(components.downstreams, components.cache, caller)
        result = await schema.run(
            body.query,
            variables=body.variables,
            context=context,
            operation_name=body.operation_name,
        )
        return JSONResponse(response_body(result, context.degradations))
