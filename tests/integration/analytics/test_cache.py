"""The Redis report cache: a repeated query does not reach ClickHouse, applying
events invalidates it at once (long before the TTL), and TTL 0 turns it off."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from handwritten.analytics.adapters.cache import NoResultCache
from handwritten.analytics.adapters.clickhouse import ChdbClickHouse
from tests.integration.analytics.conftest import Analytics, Producer, running, unique_day
from tests.support.jwks import TokenIssuer
from tests.unit.analytics.factory import Item, OrderStory

pytestmark = pytest.mark.infra  # Kafka, Redis

SALES = "/api/analytics/sales-by-day"


@pytest.fixture
async def quiet(
    jwks_url: str, kafka_bootstrap: str, chdb_engine: ChdbClickHouse
) -> AsyncIterator[Analytics]:
    """An app without a consumer: nothing can invalidate its cache behind the test."""
    async with running(
        jwks_url=jwks_url, kafka_bootstrap=kafka_bootstrap, consumer_enabled=False
    ) as app:
        yield app


def reads(app: Analytics) -> int:
    assert app.runtime.store is not None
    return app.runtime.store.reads


async def test_the_second_query_is_served_by_redis(quiet: Analytics, issuer: TokenIssuer) -> None:
    day = unique_day().isoformat()
    params = {"from": day, "to": day}
    first = await quiet.http.get(SALES, params=params, headers=issuer.admin_headers())
    after_first = reads(quiet)
    second = await quiet.http.get(SALES, params=params, headers=issuer.admin_headers())
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert after_first >= 1
    assert reads(quiet) == after_first  # ClickHouse was not asked again
    assert quiet.runtime.reader is not None and quiet.runtime.reader.hits >= 1


async def test_new_events_invalidate_the_cache(
    analytics: Analytics, producer: Producer, issuer: TokenIssuer
) -> None:
    day = unique_day()
    params = {"from": day.isoformat(), "to": day.isoformat()}
    empty = await analytics.http.get(SALES, params=params, headers=issuer.admin_headers())
    assert empty.json()[0]["totalOrders"] == 0  # now cached, for 60 s

    story = OrderStory(
        dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
        [Item(uuid.uuid4(), "Kettle", 1, Decimal("80.00"))],
    )
    await producer.publish(story.confirmed_journey())
    await producer.consumed(analytics.group)

    fresh = await analytics.http.get(SALES, params=params, headers=issuer.admin_headers())
    assert fresh.json()[0] == {
        "date": day.isoformat(),
        "totalOrders": 1,
        "totalRevenue": "80.00",
        "avgOrderValue": "80.00",
    }


async def test_ttl_zero_disables_the_cache(
    jwks_url: str, kafka_bootstrap: str, chdb_engine: ChdbClickHouse, issuer: TokenIssuer
) -> None:
    async with running(
        jwks_url=jwks_url,
        kafka_bootstrap=kafka_bootstrap,
        consumer_enabled=False,
        analytics_cache_ttl_seconds=0,
    ) as app:
        assert isinstance(app.runtime.cache, NoResultCache)
        day = unique_day().isoformat()
        for expected_reads in (1, 2):
            response = await app.http.get(
                SALES, params={"from": day, "to": day}, headers=issuer.admin_headers()
            )
            assert response.status_code == 200
            assert reads(app) == expected_reads
