"""``python -m bench [suite ...]``: run benchmark suites and write their results.

    python -m bench                  # every suite (make bench), ~12 minutes on 2 cores
    python -m bench eventstore grpc  # some suites
    python -m bench --quick          # short phases (BENCH_QUICK=1), for development

Results go to ``bench/results/<suite>.json`` and ``bench/results/summary.md``
(``--out`` or ``BENCH_RESULTS`` elsewhere; quick runs default to
``.local/bench/results-quick`` so they never replace the reference run). The stack
must be up (``make up``); suites create and drop their own scratch databases, schemas
and topics. Only one benchmark runs at a time (a lock file in ``.local/bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.context import Context
from bench.machine import describe, machine_info
from bench.results import SuiteResult, write_suite, write_summary
from bench.stack import REPO_ROOT, SCRATCH_DIR, wait_for_stack

#: Suites in the order they run (and appear in the summary).
SUITES = ("orders", "eventstore", "outbox", "gateway", "grpc", "footprint")
REFERENCE_RESULTS = REPO_ROOT / "bench" / "results"
QUICK_RESULTS = SCRATCH_DIR / "results-quick"
#: How long to wait for a stack that is (re)starting before giving up.
READY_SECONDS = 90.0


async def run_suites(names: Sequence[str], ctx: Context, out: Path) -> list[str]:
    """Run ``names`` in order, writing each result; the names of the suites that failed."""
    down = await wait_for_stack(READY_SECONDS)
    if down:
        ctx.log(f"not ready: {', '.join(down)} — start the stack with `make up`")
        return list(names)
    machine = await machine_info()
    ctx.log(f"machine: {describe(machine)}")
    failed = []
    for name in names:
        ctx.log(f"== {name} ==")
        started = time.monotonic()
        at_start = await _now()  # this suite's date and load average
        try:
            module = importlib.import_module(f"bench.suites.{name}")
            result: SuiteResult = await module.run(ctx)
        except Exception:
            traceback.print_exc()
            ctx.log(f"{name} FAILED")
            failed.append(name)
            continue
        result.duration_seconds = time.monotonic() - started
        suite_machine = {**machine, **at_start}
        path = write_suite(out, result, suite_machine)
        ctx.log(f"{name}: {result.duration_seconds:.0f} s → {path}")
    return failed


async def _now() -> dict[str, object]:
    """Per-suite date and load average (the machine facts are the run's)."""
    info = await machine_info()
    return {"date": info["date"], "load_average": info["load_average"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "suites",
        nargs="*",
        metavar="suite",
        help=f"all by default, or some of: {', '.join(SUITES)}",
    )
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suites {unknown}; known: {', '.join(SUITES)}")
    names = [name for name in SUITES if name in args.suites] if args.suites else list(SUITES)
    out = args.out or Path(
        os.environ.get("BENCH_RESULTS") or (QUICK_RESULTS if args.quick else REFERENCE_RESULTS)
    )
    ctx = Context(quick=args.quick)
    SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    with (SCRATCH_DIR / "bench.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            ctx.log("another benchmark is running (.local/bench/bench.lock)")
            return 2
        failed = asyncio.run(run_suites(names, ctx, out))
    command = (
        "make bench"
        if not args.suites and not args.quick
        else "python -m bench " + " ".join((["--quick"] if args.quick else []) + list(args.suites))
    )
    summary = write_summary(out, SUITES, command=command.strip())
    print(summary.read_text(encoding="utf-8"))
    ctx.log(f"summary: {summary}")
    if failed:
        ctx.log(f"failed suites: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
