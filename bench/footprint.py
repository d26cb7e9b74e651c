"""Resident memory of the local stack's processes, read from ``/proc`` (Linux).

The stack is: every service and the gateway (``.local/run/*.pid``), PostgreSQL (its
postmaster and every backend), Redis and the Kafka broker, each with its child
processes. Two sums are reported: RSS (what ``ps`` shows; counts shared pages once
per process, so PostgreSQL's shared buffers many times) and PSS (proportional set
size: shared pages split among the processes sharing them — the honest total).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.stack import LOCAL_DIR, local_pid

PROC = Path("/proc")


@dataclass(frozen=True)
class Memory:
    """Memory of a group of processes, in KiB."""

    processes: int
    rss_kib: int
    pss_kib: int

    def __add__(self, other: Memory) -> Memory:
        return Memory(
            self.processes + other.processes,
            self.rss_kib + other.rss_kib,
            self.pss_kib + other.pss_kib,
        )


NONE = Memory(0, 0, 0)


def parent_map(proc: Path = PROC) -> dict[int, int]:
    """pid → parent pid of every visible process."""
    parents: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8")
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = parse_ppid(stat)
    return parents


def parse_ppid(stat: str) -> int:
    """The parent pid from ``/proc/<pid>/stat`` (the command may contain spaces and ')')."""
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def with_descendants(roots: Iterable[int], parents: Mapping[int, int]) -> set[int]:
    """``roots`` (those alive) and every process below them."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, parent in parents.items():
        children[parent].append(pid)
    found: set[int] = set()
    stack = [pid for pid in roots if pid in parents]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, ()))
    return found


def kib_field(text: str, name: str) -> int:
    """The ``<name>: <n> kB`` value of a ``/proc`` status-like text (0 when absent)."""
    match = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def memory_of(pids: Iterable[int], proc: Path = PROC) -> Memory:
    total = NONE
    for pid in pids:
        try:
            status = (proc / str(pid) / "status").read_text(encoding="utf-8")
            rollup = (proc / str(pid) / "smaps_rollup").read_text(encoding="utf-8")
        except OSError:
            continue  # exited meanwhile, or a kernel without smaps_rollup
        total = total + Memory(1, kib_field(status, "VmRSS"), kib_field(rollup, "Pss"))
    return total


def stack_roots(local_dir: Path = LOCAL_DIR) -> dict[str, list[int]]:
    """The root pids of each component of the local stack that is running."""
    roots: dict[str, list[int]] = {}
    for pid_file in sorted((local_dir / "run").glob("*.pid")):
        pid = local_pid(pid_file)
        if pid is not None:
            roots[pid_file.stem] = [pid]
    for name, pid_file in {
        "postgresql": local_dir / "postgres" / "data" / "postmaster.pid",
        "redis": local_dir / "redis" / "redis.pid",
        "kafka": local_dir / "kafka" / "kafka.pid",
    }.items():
        pid = local_pid(pid_file)
        if pid is not None:
            roots[name] = [pid]
    return roots


def stack_memory(local_dir: Path = LOCAL_DIR, proc: Path = PROC) -> dict[str, Memory]:
    """Memory by component (each with its descendants), plus ``total``."""
    parents = parent_map(proc)
    result: dict[str, Memory] = {}
    total = NONE
    seen: set[int] = set()
    for name, roots in stack_roots(local_dir).items():
        pids = with_descendants(roots, parents) - seen
        seen |= pids
        result[name] = memory_of(pids, proc)
        total = total + result[name]
    result["total"] = total
    return result
