"""The analytics SQL: one set of ClickHouse statements for chdb and for a server.

Tables (in the service's database, ``analytics`` by default):

- ``events_raw`` (ReplacingMergeTree by ``dedupe_key``): every distinct event applied,
  with its payload. Consulted to skip duplicates before projecting a batch.
- ``orders_analytics`` (AggregatingMergeTree by ``order_id``): one row per order once
  merged. Each column is ``SimpleAggregateFunction(min|max, Nullable(…))`` with the
  rule of ``domain.orders.JOIN_RULES``, so rows holding partial facts merge into the
  order's state however often and in whatever order they were inserted. Derived
  columns (status, payment_status, shipping_status, counts_as_sale…) are ``ALIAS``
  expressions: evaluated on the merged row by every ``FINAL`` read.
- ``order_items`` (ReplacingMergeTree by order and product): units and revenue per
  product per order, for the top-products report.
- ``users`` (ReplacingMergeTree by ``user_id``): e-mail and name for the order rows.
- ``sales_by_day`` (a view): confirmed sales per UTC day, grouped from the
  deduplicated order state at read time, so nothing can be counted twice.

Every ``FINAL`` read sets ``optimize_move_to_prewhere_if_final = 0`` (the default):
with it on, a filter could run on unmerged partial rows and see half an order.
"""

# S608: the only text pasted into these statements is the database name, checked
# against a plain-identifier pattern by ``database_name``; every value is a bound
# ``{name:Type}`` parameter or JSONEachRow data.
# ruff: noqa: S608
from __future__ import annotations

import re

from handwritten.analytics.domain.orders import JOIN_RULES

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TS = "DateTime64(3, 'UTC')"
FINAL_SETTINGS = "SETTINGS optimize_move_to_prewhere_if_final = 0"

#: ClickHouse type of each joined order field (inside Nullable).
ORDER_FIELD_TYPES: dict[str, str] = {
    "user_id": "UUID",
    "user_email": "String",
    "total_amount": "Decimal(12, 2)",
    "created_at": _TS,
    "confirmed_at": _TS,
    "shipped_at": _TS,
    "delivered_at": _TS,
    "canceled_at": _TS,
    "cancel_reason": "String",
    "payment_id": "UUID",
    "paid_at": _TS,
    "payment_failed_at": _TS,
    "refunded_at": _TS,
    "payment_voided_at": _TS,
    "tracking_code": "String",
    "shipment_scheduled_at": _TS,
    "shipment_in_transit_at": _TS,
    "shipment_delivered_at": _TS,
    "shipment_canceled_at": _TS,
    "estimated_delivery_date": "Date32",
}

#: Columns computed from the merged facts; the same rules as ``OrderFacts``' properties.
ORDER_ALIASES: dict[str, str] = {
    "status": (
        "String ALIAS multiIf(canceled_at IS NOT NULL, 'CANCELED', "
        "delivered_at IS NOT NULL, 'DELIVERED', shipped_at IS NOT NULL, 'SHIPPED', "
        "confirmed_at IS NOT NULL, 'CONFIRMED', 'PENDING')"
    ),
    "furthest_stage": (
        "UInt8 ALIAS multiIf(delivered_at IS NOT NULL, 3, shipped_at IS NOT NULL, 2, "
        "confirmed_at IS NOT NULL, 1, 0)"
    ),
    "payment_status": (
        "String ALIAS multiIf(refunded_at IS NOT NULL, 'REFUNDED', "
        "paid_at IS NOT NULL, 'PROCESSED', payment_failed_at IS NOT NULL, 'FAILED', "
        "payment_voided_at IS NOT NULL, 'VOIDED', 'PENDING')"
    ),
    "shipping_status": (
        "Nullable(String) ALIAS multiIf(shipment_canceled_at IS NOT NULL, 'CANCELED', "
        "shipment_delivered_at IS NOT NULL, 'DELIVERED', "
        "shipment_in_transit_at IS NOT NULL, 'IN_TRANSIT', "
        "shipment_scheduled_at IS NOT NULL, 'SCHEDULED', NULL)"
    ),
    "placed_at": f"Nullable({_TS}) ALIAS coalesce(created_at, confirmed_at, canceled_at)",
    "counts_as_sale": (
        "UInt8 ALIAS confirmed_at IS NOT NULL AND canceled_at IS NULL AND refunded_at IS NULL"
    ),
}

ORDER_COLUMNS: tuple[str, ...] = ("order_id", *JOIN_RULES)
ITEM_COLUMNS = ("order_id", "product_id", "product_name", "quantity", "revenue")
USER_COLUMNS = ("user_id", "email", "name", "registered_at")
RAW_COLUMNS = (
    "dedupe_key",
    "event_id",
    "event_type",
    "topic",
    "record_key",
    "occurred_at",
    "payload",
)


def database_name(name: str) -> str:
    """``name`` if it is a plain identifier (it is pasted into the SQL)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid ClickHouse database name: {name!r}")
    return name


def _order_columns_ddl() -> str:
    facts = [
        f"    {name} SimpleAggregateFunction({rule}, Nullable({ORDER_FIELD_TYPES[name]}))"
        for name, rule in JOIN_RULES.items()
    ]
    aliases = [f"    {name} {definition}" for name, definition in ORDER_ALIASES.items()]
    return ",\n".join(["    order_id UUID", *facts, *aliases])


def tables(db: str) -> list[str]:
    """``CREATE … IF NOT EXISTS`` of every table and view, in dependency order."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"""CREATE TABLE IF NOT EXISTS {db}.events_raw (
    dedupe_key String,
    event_id UUID,
    event_type LowCardinality(String),
    topic LowCardinality(String),
    record_key String,
    occurred_at {_TS},
    payload String,
    applied_at {_TS} DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY dedupe_key""",
        f"""CREATE TABLE IF NOT EXISTS {db}.orders_analytics (
{_order_columns_ddl()}
) ENGINE = AggregatingMergeTree
ORDER BY order_id""",
        f"""CREATE TABLE IF NOT EXISTS {db}.order_items (
    order_id UUID,
    product_id UUID,
    product_name String,
    quantity UInt32,
    revenue Decimal(12, 2)
) ENGINE = ReplacingMergeTree
ORDER BY (order_id, product_id)""",
        f"""CREATE TABLE IF NOT EXISTS {db}.users (
    user_id UUID,
    email String,
    name String,
    registered_at {_TS}
) ENGINE = ReplacingMergeTree(registered_at)
ORDER BY user_id""",
        f"""CREATE VIEW IF NOT EXISTS {db}.sales_by_day AS
SELECT
    toDate(confirmed_at) AS date,
    count() AS total_orders,
    sum(total_amount) AS total_revenue
FROM {db}.orders_analytics FINAL
WHERE counts_as_sale
GROUP BY date
{FINAL_SETTINGS}""",
    ]


def drops(db: str) -> list[str]:
    """Drop every table and view (the view first)."""
    return [
        f"DROP VIEW IF EXISTS {db}.sales_by_day",
        *(
            f"DROP TABLE IF EXISTS {db}.{table}"
            for table in ("orders_analytics", "order_items", "users", "events_raw")
        ),
    ]


def insert(db: str, table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {db}.{table} ({', '.join(columns)}) FORMAT JSONEachRow"


def seen(db: str) -> str:
    return f"SELECT dedupe_key FROM {db}.events_raw WHERE dedupe_key IN {{keys:Array(String)}}"


def link_emails(db: str) -> str:
    """Copy users' e-mails onto their orders, for the orders and users just written.

    Both directions are needed: a user's registration and their orders arrive on
    different topics, in any order (a rebuild interleaves topics arbitrarily).
    """
    return f"""INSERT INTO {db}.orders_analytics (order_id, user_email)
SELECT o.order_id, u.email
FROM (
    SELECT order_id, user_id FROM {db}.orders_analytics FINAL
    WHERE order_id IN {{orders:Array(UUID)}} OR user_id IN {{users:Array(UUID)}}
) AS o
INNER JOIN (
    SELECT user_id, email FROM {db}.users FINAL
    WHERE user_id IN {{users:Array(UUID)}} OR user_id IN (
        SELECT user_id FROM {db}.orders_analytics FINAL WHERE order_id IN {{orders:Array(UUID)}}
    )
) AS u ON o.user_id = u.user_id
{FINAL_SETTINGS}"""


def sales_by_day(db: str) -> str:
    return f"""SELECT toString(date), total_orders, total_revenue
FROM {db}.sales_by_day
WHERE date BETWEEN {{first:Date}} AND {{last:Date}}
ORDER BY date"""


def top_products(db: str) -> str:
    # Product ids compare as text: ClickHouse orders UUIDs by their halves, not as
    # the API's string form.
    return f"""SELECT
    toString(i.product_id) AS product,
    argMax(i.product_name, o.placed_at) AS product_name,
    sum(i.quantity) AS units_sold,
    count() AS order_count,
    sum(i.revenue) AS revenue
FROM {db}.order_items AS i FINAL
INNER JOIN (
    SELECT order_id, placed_at FROM {db}.orders_analytics FINAL
    WHERE counts_as_sale AND toDate(placed_at) BETWEEN {{first:Date}} AND {{last:Date}}
) AS o ON i.order_id = o.order_id
GROUP BY i.product_id
ORDER BY units_sold DESC, revenue DESC, product ASC
LIMIT {{limit:UInt32}}
{FINAL_SETTINGS}"""


def order_funnel(db: str) -> str:
    return f"""SELECT
    count(),
    countIf(paid_at IS NOT NULL OR furthest_stage >= 1),
    countIf(furthest_stage >= 1),
    countIf(furthest_stage >= 2),
    countIf(furthest_stage >= 3),
    countIf(canceled_at IS NOT NULL),
    countIf(status = 'PENDING'),
    countIf(status = 'CONFIRMED'),
    countIf(status = 'SHIPPED'),
    countIf(status = 'DELIVERED'),
    countIf(status = 'CANCELED')
FROM {db}.orders_analytics FINAL
WHERE toDate(placed_at) BETWEEN {{first:Date}} AND {{last:Date}}
{FINAL_SETTINGS}"""


def cancellations(db: str) -> str:
    return f"""SELECT coalesce(cancel_reason, 'UNKNOWN') AS reason, count() AS orders
FROM {db}.orders_analytics FINAL
WHERE canceled_at IS NOT NULL AND toDate(placed_at) BETWEEN {{first:Date}} AND {{last:Date}}
GROUP BY reason
ORDER BY orders DESC, reason ASC
{FINAL_SETTINGS}"""


def delivery_times(db: str) -> str:
    return f"""SELECT count(), avg(dateDiff('millisecond', placed_at, delivered_at))
FROM {db}.orders_analytics FINAL
WHERE delivered_at IS NOT NULL AND placed_at IS NOT NULL
    AND toDate(delivered_at) BETWEEN {{first:Date}} AND {{last:Date}}
{FINAL_SETTINGS}"""


def orders_state(db: str) -> str:
    """Every fact column of some orders, merged (inspection and tests)."""
    return f"""SELECT {", ".join(ORDER_COLUMNS)}
FROM {db}.orders_analytics FINAL
WHERE order_id IN {{orders:Array(UUID)}}
{FINAL_SETTINGS}"""
