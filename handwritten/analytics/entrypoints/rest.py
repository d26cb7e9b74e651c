"""The analytics REST API: implements the generated ``AnalyticsHandlers``.

Every route needs a verified bearer token with the ``admin`` role: 401 without a
valid token, 403 without the role. That check is a router dependency, so it runs
before the query is validated and protects any route added later. A range that
breaks the rules is a 422 problem with the offending field; ClickHouse unavailable
is a 503 (the request had no effect and may be retried).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

from fastapi import Request, Response

from generated.models.analytics import DailySales, OrderStatusCount, TopProduct
from generated.models.analytics import OrderFunnel as ApiOrderFunnel
from generated.models.analytics import OrderStatus as ApiOrderStatus
from handwritten.analytics.adapters.clickhouse import ClickHouseError
from handwritten.analytics.domain.orders import OrderStatus
from handwritten.analytics.domain.reports import InvalidRangeError, money
from handwritten.analytics.service_layer.queries import AnalyticsQueries
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.logging import get_logger
from handwritten.runtime.problems import ProblemError

log = get_logger(__name__)


@dataclass(frozen=True)
class RestComponents:
    """What the handlers use, opened by the app's lifespan."""

    queries: AnalyticsQueries
    authenticator: RequestAuthenticator


def _invalid(exc: InvalidRangeError, field: str) -> ProblemError:
    return ProblemError(
        422, "The request is not valid.", errors=[{"field": field, "message": str(exc)}]
    )


def _unavailable(exc: ClickHouseError) -> ProblemError:
    log.error("analytics store unavailable", error=str(exc))
    return ProblemError(503, "The analytics store is unavailable; try again shortly.")


class AnalyticsApi:
    """The handlers; ``attach`` hands them the components once the app has started."""

    def __init__(self) -> None:
        self._components: RestComponents | None = None

    def attach(self, components: RestComponents | None) -> None:
        self._components = components

    @property
    def components(self) -> RestComponents:
        if self._components is None:
            raise RuntimeError("the analytics app has not started (lifespan not run)")
        return self._components

    async def authenticate(self, request: Request) -> None:
        """Router dependency: a verified admin (401/403 problem otherwise)."""
        await self.components.authenticator.admin(request)

    async def get_sales_by_day(
        self, request: Request, *, from_: dt.date, to: dt.date
    ) -> list[DailySales] | Response:
        try:
            days = await self.components.queries.sales_by_day(from_, to, include_empty_days=True)
        except InvalidRangeError as exc:
            raise _invalid(exc, "to") from exc
        except ClickHouseError as exc:
            raise _unavailable(exc) from exc
        return [
            DailySales(
                date=day.date,
                total_orders=day.orders,
                total_revenue=str(money(day.revenue)),
                avg_order_value=str(day.average),
            )
            for day in days
        ]

    async def get_top_products(
        self, request: Request, *, limit: int, from_: dt.date, to: dt.date
    ) -> list[TopProduct] | Response:
        try:
            products = await self.components.queries.top_products(from_, to, limit)
        except InvalidRangeError as exc:
            raise _invalid(exc, "to") from exc
        except ClickHouseError as exc:
            raise _unavailable(exc) from exc
        return [
            TopProduct(
                product_id=UUID(product.product_id),
                units_sold=product.units_sold,
                order_count=product.order_count,
                revenue=str(money(product.revenue)),
            )
            for product in products
        ]

    async def get_order_funnel(
        self, request: Request, *, from_: dt.date, to: dt.date
    ) -> ApiOrderFunnel | Response:
        try:
            funnel = await self.components.queries.order_funnel(from_, to)
        except InvalidRangeError as exc:
            raise _invalid(exc, "to") from exc
        except ClickHouseError as exc:
            raise _unavailable(exc) from exc
        return ApiOrderFunnel(
            from_=from_,
            to=to,
            total_orders=funnel.created,
            statuses=[
                OrderStatusCount(
                    status=ApiOrderStatus(status.value), count=funnel.by_status.get(status, 0)
                )
                for status in OrderStatus
            ],
        )
