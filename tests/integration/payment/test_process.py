"""``python -m handwritten.payment`` as a real process: ``migrate`` applies the
migrations; ``serve`` becomes ready, answers a command through Kafka, serves
metrics, and exits 0 on SIGTERM after a graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from handwritten.runtime.kafka import KafkaEventProducer
from tests.integration.payment.conftest import (
    ReplyReader,
    charge_record,
    eventually,
    order_of,
    start_group_at_end,
    throwaway_schema,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with throwaway_schema("test_payment_proc") as url:
        yield url


def run_module(log: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """Start the module with its output in ``log`` (a file: a pipe nobody reads could
    fill up and block the service)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "handwritten.payment", *args],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def finished(process: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    code = await asyncio.to_thread(process.wait, 60)
    return code, await asyncio.to_thread(log.read_text, errors="replace")


async def test_migrate_applies_the_payment_outbox_and_inbox_migrations(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "migrate.log"
    code, output = await finished(run_module(log, {"DATABASE_URL": database_url}, "migrate"), log)
    assert code == 0, output
    assert "001_payments.sql" in output
    code, output = await finished(run_module(log, {"DATABASE_URL": database_url}, "migrate"), log)
    assert code == 0 and "none pending" in output


async def test_serve_answers_commands_and_stops_cleanly_on_sigterm(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    group = f"test-payment-{uuid.uuid4().hex[:12]}"
    await start_group_at_end(kafka_bootstrap, group)
    port = free_port()
    replies = ReplyReader(kafka_bootstrap)
    await replies.start()
    producer = KafkaEventProducer(kafka_bootstrap, service="orders")
    await producer.start()
    log = tmp_path / "serve.log"
    process = run_module(
        log,
        {
            "DATABASE_URL": database_url,
            "HTTP_PORT": str(port),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PAYMENT_CONSUMER_GROUP": group,
            "PAYMENT_GATEWAY_DELAY_MS": "5",
            "SHUTDOWN_GRACE_SECONDS": "2",
        },
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                assert process.poll() is None, "the service exited early"
                try:
                    response = await http.get("/health/ready")
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await eventually(ready, what="the payment process to be ready", within=60)
            checks = (await http.get("/health/ready")).json()["checks"]
            assert checks == {"consumer": "ok", "postgres": "ok"}

            command = charge_record("tok_visa")
            await producer.send_record(command)
            db = await asyncpg.connect(database_url)
            try:
                ours = {row["event_id"] for row in await db.fetch("SELECT event_id FROM outbox")}

                async def answered() -> bool:
                    nonlocal ours
                    ours = {
                        row["event_id"] for row in await db.fetch("SELECT event_id FROM outbox")
                    }
                    return any(
                        event.headers.event_id in ours
                        for event in replies.by_order[order_of(command)]
                    )

                await eventually(answered, what="the process's payments.processed reply")
            finally:
                await db.close()

            metrics = (await http.get("/metrics")).text
            assert 'payments_total{outcome="succeeded"} 1.0' in metrics
            assert "payment_gateway_duration_seconds_bucket" in metrics
            assert (await http.get("/docs")).status_code == 200

        process.send_signal(signal.SIGTERM)
        code, output = await finished(process, log)
        assert code == 0, output[-2000:]
        assert '"level": "error"' not in output, output[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        await producer.stop()
        await replies.stop()
