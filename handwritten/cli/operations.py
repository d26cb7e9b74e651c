"""``mc replay`` (rebuild read models) and ``mc topics`` (consumer lag)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.consumer import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from rich.console import Console

from handwritten.cli.errors import CliError
from handwritten.cli.stack import REPO_ROOT, local_runner


def _run_module(console: Console, title: str, *command: str) -> None:
    with console.status(title):
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", *command], cwd=REPO_ROOT, capture_output=True, text=True
        )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        last = output.splitlines()[-1] if output else f"exit {result.returncode}"
        raise CliError(
            f"{' '.join(command)} failed: {last}",
            "is the infrastructure up? mc status",
        )
    if output:
        console.print(output)


def replay_projections(console: Console) -> None:
    """Rebuild the orders read model (orders_view) from the event store."""
    _run_module(
        console, "rebuilding orders projections…", "handwritten.orders", "rebuild-projections"
    )


def replay_analytics(console: Console) -> None:
    """Rebuild the analytics tables from the topics. The embedded ClickHouse has one owner,
    so the analytics service is stopped for the rebuild and started again after it."""
    runner = local_runner()
    analytics = next((p for p in runner.processes() if p.name == "analytics"), None)
    was_running = analytics is not None and runner.running_pid(analytics) is not None
    if was_running:
        console.print("stopping the analytics service (its embedded ClickHouse has one owner)")
        runner.stop(analytics)
    try:
        _run_module(
            console,
            "re-consuming every topic from the beginning…",
            "handwritten.analytics",
            "rebuild",
        )
    finally:
        if was_running:
            runner.start(analytics)
            runner.wait_ready(analytics)
            console.print("analytics service started again")


@dataclass(frozen=True)
class GroupLag:
    """Committed offset vs end offset of one consumer group on one topic."""

    group: str
    topic: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)


async def consumer_lag(bootstrap: str) -> list[GroupLag]:
    """Lag per consumer group and topic (partitions summed), sorted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await probe.start()
        groups = sorted(str(group[0]) for group in await admin.list_consumer_groups())
        found: list[GroupLag] = []
        for group in groups:
            offsets: dict[TopicPartition, object] = await admin.list_consumer_group_offsets(group)
            if not offsets:
                continue
            ends = await probe.end_offsets(list(offsets))
            per_topic: dict[str, tuple[int, int]] = {}
            for partition, metadata in offsets.items():
                committed = max(int(getattr(metadata, "offset", 0)), 0)
                done, end = per_topic.get(partition.topic, (0, 0))
                per_topic[partition.topic] = (done + committed, end + int(ends[partition]))
            found += [GroupLag(group, topic, c, e) for topic, (c, e) in sorted(per_topic.items())]
        return found
    except (KafkaError, OSError) as exc:
        raise CliError(
            f"Kafka not reachable at {bootstrap} ({type(exc).__name__})", "start it: mc up"
        ) from exc
    finally:
        await probe.stop()
        await admin.close()


def topics(bootstrap: str) -> list[GroupLag]:
    return asyncio.run(consumer_lag(bootstrap))
