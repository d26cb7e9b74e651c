"""Create the Kafka topics declared in stack.json (idempotent).

Waits until the broker answers metadata requests, creates every missing topic
with its declared partitions and replication factor, raises the partition count
of topics that have fewer partitions than declared, then waits until the
metadata shows every topic with at least the declared partitions.

Run with the project venv (needs aiokafka):

    .venv/bin/python infrastructure/local/create_topics.py [--stack PATH] [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

DEFAULT_STACK = Path(__file__).resolve().parent / "stack.json"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int


def log(message: str) -> None:
    print(f"[infra] kafka: {message}", flush=True)


def load_stack(path: Path) -> tuple[str, list[TopicSpec]]:
    stack = json.loads(path.read_text(encoding="utf-8"))
    kafka = stack["kafka"]
    topics = [
        TopicSpec(t["name"], int(t["partitions"]), int(t["replication_factor"]))
        for t in kafka.get("topics", [])
    ]
    return f"{kafka['host']}:{kafka['port']}", topics


async def connect(bootstrap: str, deadline: float) -> AIOKafkaAdminClient:
    """An admin client whose broker has answered a metadata request with brokers."""
    last_error: Exception | None = None
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="mc-infra", request_timeout_ms=10000
        )
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if cluster.get("brokers"):
                return admin
            last_error = RuntimeError("metadata lists no brokers yet")
        except (KafkaError, OSError) as exc:
            last_error = exc
        await admin.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"broker at {bootstrap} not ready: {last_error!r}")
        await asyncio.sleep(0.5)


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition count of each existing topic among `names` (absent ones omitted)."""
    existing = set(await admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    described: list[dict[str, Any]] = await admin.describe_topics(wanted)
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


def check_errors(topic_errors: list[tuple[Any, ...]], what: str) -> None:
    for entry in topic_errors:
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else ""
        if code and for_code(code) is not TopicAlreadyExistsError:
            raise for_code(code)(f"{what} {topic}: {message}")


async def ensure_topics(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> tuple[int, int]:
    counts = await partition_counts(admin, [s.name for s in specs])
    missing = [s for s in specs if s.name not in counts]
    short = [s for s in specs if s.name in counts and counts[s.name] < s.partitions]
    if missing:
        response = await admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor) for s in missing],
            timeout_ms=30000,
        )
        check_errors(response.topic_errors, "creating topic")
    if short:
        await admin.create_partitions(
            {s.name: NewPartitions(s.partitions) for s in short}, timeout_ms=30000
        )
    for s in specs:
        if s.name in counts and counts[s.name] > s.partitions:
            log(
                f"topic {s.name} has {counts[s.name]} partitions, more than the declared "
                f"{s.partitions} (partitions cannot be removed; left as is)"
            )
    return len(missing), len(short)


async def wait_visible(admin: AIOKafkaAdminClient, specs: list[TopicSpec], deadline: float) -> None:
    while True:
        counts = await partition_counts(admin, [s.name for s in specs])
        pending = [s.name for s in specs if counts.get(s.name, 0) < s.partitions]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not visible with their partitions: {pending}")
        await asyncio.sleep(0.3)


async def run(stack_path: Path, bootstrap: str | None, wait_seconds: float) -> int:
    default_bootstrap, specs = load_stack(stack_path)
    bootstrap = bootstrap or default_bootstrap
    deadline = time.monotonic() + wait_seconds
    admin = await connect(bootstrap, deadline)
    try:
        while True:
            try:
                created, extended = await ensure_topics(admin, specs)
                break
            except KafkaError as exc:
                # Retriable right after startup (e.g. controller not elected yet).
                if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        await wait_visible(admin, specs, deadline)
    finally:
        await admin.close()
    log(f"{len(specs)} topics ready on {bootstrap} ({created} created, {extended} extended)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=Path, default=DEFAULT_STACK, help="path to stack.json")
    parser.add_argument("--bootstrap", help="host:port (default: from stack.json)")
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for the broker"
    )
    args = parser.parse_args()
    # aiokafka logs every refused connection while the broker starts; the last
    # error is reported anyway if the broker never becomes ready.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(run(args.stack, args.bootstrap, args.timeout))
    except (KafkaError, TimeoutError, OSError) as exc:
        print(f"[infra] ERROR: kafka: {exc!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
