"""The ``analytics.v1.AnalyticsService`` gRPC service (internal; callers restrict it
to admins, as the proto says).

Status codes: INVALID_ARGUMENT for a date that is not ``YYYY-MM-DD``, a reversed or
too long range, or a limit outside 0..100 (0 means the default, 10); UNAVAILABLE
when ClickHouse cannot answer. GetSalesByDay lists only the days with sales.
"""

from __future__ import annotations

import datetime as dt

from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.analytics.v1 import (
    AnalyticsServiceBase,
    CancellationCount,
    DailySales,
    GetOrderFunnelRequest,
    GetOrderFunnelResponse,
    GetSalesByDayRequest,
    GetSalesByDayResponse,
    GetTopProductsRequest,
    GetTopProductsResponse,
    OrderFunnel,
    ProductSales,
)
from handwritten.analytics.adapters.clickhouse import ClickHouseError
from handwritten.analytics.domain.reports import DEFAULT_TOP_LIMIT, InvalidRangeError, money
from handwritten.analytics.service_layer.queries import AnalyticsQueries
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


def parse_date(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise GRPCError(Status.INVALID_ARGUMENT, f"{field} is not a YYYY-MM-DD date") from None


class AnalyticsGrpcService(AnalyticsServiceBase):
    """Implements the generated service base on the analytics queries."""

    def __init__(self, queries: AnalyticsQueries) -> None:
        self._queries = queries

    async def get_sales_by_day(self, message: GetSalesByDayRequest) -> GetSalesByDayResponse:
        first = parse_date(message.from_date, "from_date")
        last = parse_date(message.to_date, "to_date")
        try:
            days = await self._queries.sales_by_day(first, last, include_empty_days=False)
        except InvalidRangeError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc
        except ClickHouseError as exc:
            log.error("analytics store unavailable", error=str(exc))
            raise GRPCError(Status.UNAVAILABLE, "The analytics store is unavailable.") from exc
        return GetSalesByDayResponse(
            days=[
                DailySales(
                    date=day.date.isoformat(),
                    total_orders=day.orders,
                    total_revenue=str(money(day.revenue)),
                    avg_order_value=str(day.average),
                )
                for day in days
            ]
        )

    async def get_top_products(self, message: GetTopProductsRequest) -> GetTopProductsResponse:
        first = parse_date(message.from_date, "from_date")
        last = parse_date(message.to_date, "to_date")
        try:
            products = await self._queries.top_products(
                first, last, message.limit or DEFAULT_TOP_LIMIT
            )
        except InvalidRangeError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc
        except ClickHouseError as exc:
            log.error("analytics store unavailable", error=str(exc))
            raise GRPCError(Status.UNAVAILABLE, "The analytics store is unavailable.") from exc
        return GetTopProductsResponse(
            products=[
                ProductSales(
                    product_id=product.product_id,
                    product_name=product.product_name,
                    units_sold=product.units_sold,
                    revenue=str(money(product.revenue)),
                )
                for product in products
            ]
        )

    async def get_order_funnel(self, message: GetOrderFunnelRequest) -> GetOrderFunnelResponse:
        first = parse_date(message.from_date, "from_date")
        last = parse_date(message.to_date, "to_date")
        try:
            funnel = await self._queries.order_funnel(first, last)
        except InvalidRangeError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc
        except ClickHouseError as exc:
            log.error("analytics store unavailable", error=str(exc))
            raise GRPCError(Status.UNAVAILABLE, "The analytics store is unavailable.") from exc
        return GetOrderFunnelResponse(
            funnel=OrderFunnel(
                created=funnel.created,
                paid=funnel.paid,
                confirmed=funnel.confirmed,
                shipped=funnel.shipped,
                delivered=funnel.delivered,
                canceled=funnel.canceled,
                canceled_by_reason=[
                    CancellationCount(reason=c.reason, count=c.count)
                    for c in funnel.canceled_by_reason
                ],
            )
        )
