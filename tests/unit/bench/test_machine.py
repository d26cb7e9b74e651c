"""Machine facts parsed from /proc and /etc text, and pgbench's report."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.machine import cpu_model, describe, kafka_version, memory_gib, os_name
from bench.postgres import PostgresToolError, parse_pgbench

PGBENCH = """\
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 10
query mode: prepared
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 20 s
number of transactions actually processed: 61234
number of failed transactions: 0 (0.000%)
latency average = 2.611 ms
initial connection time = 12.345 ms
tps = 3061.234567 (without initial connection time)
"""


def test_cpu_memory_and_os() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7763\n") == "AMD EPYC 7763"
    assert cpu_model("") == "unknown"
    assert memory_gib("MemTotal:       24615116 kB\n") == 23.5
    assert os_name('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == (
        "Debian GNU/Linux 12 (bookworm)"
    )


def test_kafka_version_from_the_broker_jar(tmp_path: Path) -> None:
    (tmp_path / "kafka-clients-3.9.1.jar").touch()
    (tmp_path / "kafka_2.13-3.9.1.jar").touch()
    assert kafka_version(tmp_path) == "3.9.1"
    assert kafka_version(tmp_path / "missing") is None


def test_describe_names_the_machine_and_commit() -> None:
    line = describe(
        {
            "cpu": "CPU",
            "cores": 2,
            "memory_gib": 23.5,
            "os": "Debian",
            "kernel": "6.1",
            "python": "3.11.7",
            "postgresql": "15.18",
            "redis": "7.0",
            "kafka": "3.9.1",
            "commit": "abc",
            "dirty": True,
            "load_average": [1.0, 1.0, 1.0],
        }
    )
    assert line.startswith("CPU, 2 cores, 23.5 GiB")
    assert "commit abc (with local changes)" in line


def test_pgbench_report() -> None:
    result = parse_pgbench(PGBENCH, clients=8, threads=2, seconds=20, scale=10)
    assert result.tps == pytest.approx(3061.234567)
    assert result.transactions == 61234
    assert result.latency_ms == pytest.approx(2.611)


def test_unexpected_pgbench_output_is_an_error() -> None:
    with pytest.raises(PostgresToolError):
        parse_pgbench("connection refused", clients=1, threads=1, seconds=1, scale=1)
