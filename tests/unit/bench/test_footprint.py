"""Memory of the stack's process trees, read from a /proc-like folder."""

from __future__ import annotations

from pathlib import Path

from bench.footprint import (
    kib_field,
    memory_of,
    parent_map,
    parse_ppid,
    stack_memory,
    with_descendants,
)


def fake_process(proc: Path, pid: int, ppid: int, name: str, rss: int, pss: int) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "stat").write_text(f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1\n")
    (folder / "status").write_text(f"Name:\t{name}\nVmRSS:\t  {rss} kB\nThreads:\t1\n")
    (folder / "smaps_rollup").write_text(f"Rss:\t{rss} kB\nPss:\t{pss} kB\n")


def test_parent_pid_survives_odd_command_names() -> None:
    assert parse_ppid("42 (postgres: orders (idle)) S 7 42 42 0 -1") == 7


def test_descendants_are_found_through_every_level() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1}
    assert with_descendants([10], parents) == {10, 11, 12}
    assert with_descendants([99], parents) == set()  # not running


def test_kib_fields() -> None:
    assert kib_field("VmRSS:\t  2048 kB\n", "VmRSS") == 2048
    assert kib_field("Name: x\n", "VmRSS") == 0


def test_stack_memory_sums_each_component_with_its_children(tmp_path: Path) -> None:
    proc, local = tmp_path / "proc", tmp_path / "local"
    fake_process(proc, 1, 0, "init", 10, 10)
    fake_process(proc, 100, 1, "python", 100_000, 80_000)  # orders
    fake_process(proc, 200, 1, "postgres", 30_000, 5_000)  # postmaster
    fake_process(proc, 201, 200, "postgres: orders", 20_000, 3_000)
    fake_process(proc, 202, 200, "postgres: walwriter", 10_000, 1_000)
    fake_process(proc, 300, 1, "java", 400_000, 390_000)  # kafka
    (local / "run").mkdir(parents=True)
    (local / "run" / "orders.pid").write_text("100\n")
    (local / "run" / "payment.pid").write_text("999\n")  # stale: not running
    (local / "postgres" / "data").mkdir(parents=True)
    (local / "postgres" / "data" / "postmaster.pid").write_text("200\n/data\n")
    (local / "kafka").mkdir()
    (local / "kafka" / "kafka.pid").write_text("300")

    memory = stack_memory(local, proc)

    assert memory["orders"].processes == 1
    assert memory["postgresql"].processes == 3
    assert memory["postgresql"].rss_kib == 60_000
    assert memory["postgresql"].pss_kib == 9_000
    assert memory["payment"].processes == 0
    assert memory["total"].processes == 5
    assert memory["total"].pss_kib == 80_000 + 9_000 + 390_000
    assert "redis" not in memory  # no pid file
    assert parent_map(proc)[201] == 200
    assert memory_of([12345], proc).processes == 0
