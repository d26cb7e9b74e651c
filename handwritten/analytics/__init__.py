"""The analytics service: the CQRS read side on ClickHouse, fed by every domain event.

It consumes users.registered and every orders.* / payments.* / shipping.* topic in
its own consumer group, keeps a denormalised row per order in ClickHouse, and
answers admin reports over REST (``/api/analytics/...``) and gRPC (AnalyticsService),
caching results in Redis. One set of ClickHouse SQL runs on either engine: a server
through clickhouse-connect when CLICKHOUSE_URL is set (docker compose, production),
else chdb in-process, persisted in ANALYTICS_CHDB_PATH (``.local/analytics/chdb``).

Correctness under at-least-once delivery
----------------------------------------
Kafka may deliver any record more than once (redelivery after a crash or a
rebalance), topics are read in no particular order relative to each other, and the
payment service re-publishes its replies under new event ids for the same
paymentId. The design makes all of that harmless, in three layers:

1. The order state is a join, not a counter. Every event contributes a partial row
   of facts about its order (``domain.orders.OrderFacts``: created_at,
   confirmed_at, canceled_at, paid_at, refunded_at, shipment times, amount…).
   ``orders_analytics`` is an ``AggregatingMergeTree`` keyed by order id whose
   columns are ``SimpleAggregateFunction(min|max, Nullable(…))``: the earliest
   timestamp, the greatest value. That join is commutative, associative and
   idempotent, so the merged row is the same whatever the arrival order and however
   many copies arrive. Status, payment status and shipping status are ``ALIAS``
   columns computed from the merged facts (e.g. canceled wins, else the furthest
   stage reached), read with ``FINAL``. No read-modify-write happens on the write
   path, so replicas consuming different partitions cannot race.
2. Aggregates are computed from the deduplicated state, never accumulated.
   ``sales_by_day`` is a view grouping ``orders_analytics FINAL`` by day: a
   SummingMergeTree of increments would double count on every duplicate that slips
   past a dedupe check, and ClickHouse has no transaction to tie "seen" marks and
   increments together. Top products join ``order_items`` (ReplacingMergeTree by
   order and product) with the order state.
3. Duplicates are also skipped up front: ``events_raw`` (ReplacingMergeTree) keeps
   every applied event under its dedupe key — the event id, or for payment replies
   the paymentId plus the event type. A batch first drops the keys already there,
   writes its row changes, then its ``events_raw`` rows; only after that are its
   Kafka offsets committed. A crash in between replays writes that are no-ops
   (layer 1), so the marks save work but correctness never depends on them.

Revenue rule: an order counts as a sale once confirmed (OrderConfirmed), on the UTC
day of its ``confirmedAt`` (the business time in the payload, not the time it was
consumed), with its ``totalAmount``; if it is canceled (OrderCanceled) or its
payment refunded (PaymentRefunded, outcome REFUNDED) at any time after, it stops
counting: the day's order count and revenue both drop (the past day is restated,
i.e. net sales by confirmation day). ``avgOrderValue`` is revenue / orders, rounded
half-even. Money is ``Decimal(12, 2)`` in ClickHouse and ``Decimal`` in Python.

Reports by creation day (funnel, top products) use the order's ``createdAt`` (or,
if its OrderCreated was never seen, its first later timestamp).

Rebuild: ``python -m handwritten.analytics rebuild`` drops and recreates the tables
and replays every topic from its beginning (no consumer group), giving the numbers
the live consumer reaches — as far as the topics' retention still holds the history.
"""
