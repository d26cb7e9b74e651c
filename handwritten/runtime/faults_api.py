"""The fault flag endpoint of a saga participant: ``<prefix>/admin/faults[/{point}]``.

Each participant's OpenAPI spec declares the three operations (named after the
service: ``list_payment_fault_flags``, ``set_payment_fault_flag``,
``clear_payment_fault_flag``) and its API class delegates them to ``FaultFlagsApi``:

- admins only: 401 / 403 problem+json otherwise (checked first, whatever else);
- 404 while fault flags are disabled (``MC_FAULTS_ENABLED`` is not true);
- 422 for a point this service does not serve (the problem lists ``validPoints``, and
  names the service that serves it, if any), a mode or a match key the point does not
  offer, or an explicit ``null`` where the spec allows none;
- 503 when Redis, which keeps the flags, cannot be reached.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.responses import JSONResponse

from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.faults import (
    DEFAULT_TTL_SECONDS,
    STORE_ERRORS,
    FaultFlagError,
    FaultSwitchboard,
    StoredFlag,
    flag_json,
    point_json,
)
from handwritten.runtime.problems import ProblemError

_STORE_DOWN = "The fault flag store (Redis) cannot be reached; nothing was changed."


def _field(name: str) -> str:
    return name if name.startswith("path.") else f"body.{name}"


def _nulls(value: Any, path: str = "body") -> list[str]:
    """Where ``value`` (a request body as sent) holds an explicit null."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in _nulls(item, f"{path}.{key}")]
    return []


class FaultFlagsApi:
    """The three operations over one participant's ``FaultSwitchboard``."""

    def __init__(self, switchboard: FaultSwitchboard, authenticator: RequestAuthenticator) -> None:
        self._switchboard = switchboard
        self._authenticator = authenticator

    async def _admit(self, request: Request) -> None:
        await self._authenticator.admin(request)
        if not self._switchboard.enabled:
            raise ProblemError(
                404, "Fault flags are disabled on this deployment (MC_FAULTS_ENABLED)."
            )

    def _check_point(self, point: str) -> None:
        points = self._switchboard.points
        if point in points:
            return
        owner = self._switchboard.all_points.get(point)
        hint = "" if owner is None else f" It is served by {owner.participant}"
        if owner is not None and owner.admin_path is not None:
            hint += f" at {owner.admin_path}/{point}"
        valid = ", ".join(points) or "none"
        message = f"{self._switchboard.service} serves no fault point {point!r}.{hint}"
        raise ProblemError(
            422,
            message,
            errors=[{"field": "path.point", "message": f"valid points: {valid}"[:1000]}],
            validPoints=list(points),
        )

    async def list(self, request: Request) -> Response:
        await self._admit(request)
        try:
            flags = await self._switchboard.flags()
        except STORE_ERRORS as exc:
            raise ProblemError(503, _STORE_DOWN, headers={"Retry-After": "1"}) from exc
        return JSONResponse(
            {
                "points": [point_json(p) for p in self._switchboard.points.values()],
                "flags": [flag_json(s) for s in flags],
            }
        )

    async def set(self, request: Request, *, point: str, body: BaseModel) -> Response:
        await self._admit(request)
        sent = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        nulls = _nulls(sent)
        if nulls:
            raise ProblemError(
                422,
                "The request is not valid.",
                errors=[{"field": n, "message": "must not be null"} for n in nulls],
            )
        self._check_point(point)
        ttl = int(sent.get("ttlSeconds", DEFAULT_TTL_SECONDS))
        try:
            flag = await self._switchboard.put(
                point,
                str(sent["mode"]),
                {str(k): str(v) for k, v in dict(sent.get("match") or {}).items()},
                times=sent.get("times"),
                ttl_seconds=ttl,
            )
        except FaultFlagError as exc:
            raise ProblemError(
                422,
                "The fault flag is not valid.",
                errors=[{"field": _field(n), "message": m[:1000]} for n, m in exc.problems],
            ) from exc
        except STORE_ERRORS as exc:
            raise ProblemError(503, _STORE_DOWN, headers={"Retry-After": "1"}) from exc
        return JSONResponse(flag_json(StoredFlag(flag, 0)))

    async def clear(
        self,
        request: Request,
        *,
        point: str,
        correlation_id: str | None,
        order_id: UUID | None,
        user_id: UUID | None,
    ) -> Response:
        await self._admit(request)
        self._check_point(point)
        keys = (("correlationId", correlation_id), ("orderId", order_id), ("userId", user_id))
        match = {key: str(value) for key, value in keys if value is not None}
        try:
            await self._switchboard.remove(point, match)
        except STORE_ERRORS as exc:
            raise ProblemError(503, _STORE_DOWN, headers={"Retry-After": "1"}) from exc
        return Response(status_code=204)
