"""A second process of a running local service: same database, Kafka and consumer group.

The local runner starts one process per service; Kubernetes runs several. A replica
here is the same ``python -m handwritten.<service>`` on other ports (HTTP_PORT,
GRPC_PORT), logging to ``.local/logs/<service>-2.log``, so the two compete for work
exactly as two pods would: saga instances (FOR UPDATE SKIP LOCKED), the outbox relay
lock, the partitions of the service's consumer group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generated import catalog
from tests.e2e.saga_support import LOCAL_DIR, REPO_ROOT

STOP_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Replica:
    """One extra process of ``service``; ``stop()`` ends it (graceful, then SIGKILL)."""

    service: str
    http_port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_SECONDS)


def start_replica(service: str) -> Replica:
    """Start a second ``service`` process on free ports (not yet ready)."""
    entry = catalog.SERVICES[service]
    http_port = free_port()
    # Like every local process (LOCAL_DEFAULTS of infrastructure/local/services.py): a
    # replica must honour the stack's saga fault flags, or it would let scoped flags
    # of tests running meanwhile (tests/e2e/test_fault_flags.py) slip through.
    env = {"MC_FAULTS_ENABLED": "true", **os.environ, "HTTP_PORT": str(http_port)}
    if entry.grpc_port is not None:
        env["GRPC_PORT"] = str(free_port())
    log_file = LOCAL_DIR / "logs" / f"{service}-2.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"handwritten.{service}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Replica(service, http_port, process, log_file)


def log_lines(path: Path, *, since: int = 0) -> Iterator[dict[str, Any]]:
    """JSON log lines of ``path`` from byte offset ``since`` (other lines are skipped)."""
    if not path.exists():
        return
    with path.open("rb") as file:
        file.seek(since)
        for raw in file:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                yield line


def log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def service_log(service: str) -> Path:
    """The local runner's log of ``service`` (the first replica)."""
    return LOCAL_DIR / "logs" / f"{service}.log"


def gauge(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or ``None`` when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, rest = sample.partition("{")
        if metric == name and ",".join(sorted(rest.rstrip("}").split(","))) == wanted:
            return float(value)
    return None


def wait_until(condition: Any, *, seconds: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(interval)
