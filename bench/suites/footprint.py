"""Footprint: the local stack's memory idle and under load, and ``make up`` time warm.

``make up`` time (``BENCH_UP_TIME``): ``services`` (the default of a full run) stops
the services and gateway and times ``make up`` until every process reports ready,
with the infrastructure already running; ``full`` stops everything (``make down``)
first; ``skip`` (the default of ``--quick``) leaves the stack alone. Either restart
disturbs anyone else using the stack at that moment.

Memory (see ``bench.footprint``): sampled idle (after the restart, if any, once the
stack has settled), then every two seconds while the load generator drives
traffic through the gateway.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from bench.context import Context, require_stack
from bench.footprint import Memory, stack_memory
from bench.load import LoadConfig, run_load
from bench.results import SuiteResult, Table, mib, per_second
from bench.stack import REPO_ROOT, SCRATCH_DIR

TITLE = "Footprint: memory of the whole local stack, and make up time"
UP_MODES = ("services", "full", "skip")


async def time_make_up(mode: str) -> dict[str, Any]:
    """Stop part of the stack, then time ``make up`` (output in .local/bench)."""
    log_path = SCRATCH_DIR / "make-up.log"
    with log_path.open("wb") as log:
        stop = (
            ["make", "down"]
            if mode == "full"
            else [".venv/bin/python", "infrastructure/local/services.py", "down"]
        )
        await _run(stop, log)
        started = time.monotonic()
        try:
            await _run(["make", "up"], log)
        except RuntimeError:
            # Leave the stack up for whoever uses it (e.g. a port briefly held by
            # another process): one more `make up`, then report the failed timing.
            await _run(["make", "up"], log)
            raise
        seconds = time.monotonic() - started
    return {"mode": mode, "seconds": round(seconds, 1), "log": log_path.name}


async def _run(argv: list[str], log: Any) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO_ROOT, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
    )
    if await process.wait() != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode} (see {log.name})")


def _mib(kib: float) -> float:
    return round(kib / 1024, 1)


def snapshot_json(memory: dict[str, Memory]) -> dict[str, Any]:
    return {
        name: {"processes": m.processes, "rss_mib": _mib(m.rss_kib), "pss_mib": _mib(m.pss_kib)}
        for name, m in memory.items()
    }


async def sample_idle(samples: int, interval: float) -> dict[str, Memory]:
    """The mean of a few idle samples, per component."""
    taken = []
    for index in range(samples):
        if index:
            await asyncio.sleep(interval)
        taken.append(stack_memory())
    names = taken[-1].keys()
    return {
        name: Memory(
            taken[-1][name].processes,
            int(statistics.mean(s[name].rss_kib for s in taken if name in s)),
            int(statistics.mean(s[name].pss_kib for s in taken if name in s)),
        )
        for name in names
    }


async def sample_under_load(config: LoadConfig) -> tuple[list[dict[str, Memory]], dict[str, Any]]:
    """Memory samples every 2 s while the load generator runs; and its summary."""
    samples: list[dict[str, Memory]] = []
    load = asyncio.create_task(run_load(config))
    while not load.done():
        samples.append(stack_memory())
        await asyncio.wait({load}, timeout=2.0)
    return samples, load.result()


async def run(ctx: Context) -> SuiteResult:
    mode = os.environ.get("BENCH_UP_TIME", "skip" if ctx.quick else "services")
    if mode not in UP_MODES:
        raise ValueError(f"BENCH_UP_TIME is one of {UP_MODES}, not {mode!r}")
    up: dict[str, Any] = {"mode": "skip"}
    if mode != "skip":
        ctx.log(f"footprint: timing make up ({mode})")
        up = await time_make_up(mode)
        await asyncio.sleep(ctx.pick(15.0, 5.0))  # let start-up work (seeds, consumers) settle
    await require_stack()
    ctx.log("footprint: idle memory")
    idle = await sample_idle(samples=3, interval=2.0)
    config = LoadConfig(
        rate=ctx.pick(10.0, 4.0), duration=ctx.pick(40.0, 10.0), settle_seconds=0.0, seed=11
    )
    ctx.log(f"footprint: memory under load ({config.rate:g}/s for {config.duration:g} s)")
    samples, load = await sample_under_load(config)
    peak = max(samples, key=lambda s: s["total"].pss_kib)
    components = sorted(name for name in idle if name != "total")
    rows = [
        [
            name,
            str(idle[name].processes),
            mib(_mib(idle[name].pss_kib)),
            mib(_mib(idle[name].rss_kib)),
            mib(_mib(peak.get(name, idle[name]).pss_kib)),
            mib(_mib(peak.get(name, idle[name]).rss_kib)),
        ]
        for name in [*components, "total"]
    ]
    totals = [
        ["make up (warm, " + up["mode"] + ")", f"{up['seconds']} s" if "seconds" in up else "–"],
        ["stack memory idle (PSS)", mib(_mib(idle["total"].pss_kib))],
        ["stack memory under load, peak (PSS)", mib(_mib(peak["total"].pss_kib))],
        [
            f"traffic meanwhile (make load RATE={config.rate:g})",
            f"{per_second(load['totals']['requests_per_second'])} requests/s",
        ],
    ]
    return SuiteResult(
        suite="footprint",
        title=TITLE,
        parameters={
            "up_mode": mode,
            "load_rate": config.rate,
            "load_seconds": config.duration,
            "quick": ctx.quick,
        },
        results={
            "make_up": up,
            "idle": snapshot_json(idle),
            "under_load_peak": snapshot_json(peak),
            "under_load_samples_total_pss_mib": [_mib(s["total"].pss_kib) for s in samples],
            "load": {k: load[k] for k in ("config", "totals", "orders", "arrivals")},
        },
        tables=[
            Table("Budgets", ["what", "measured"], totals),
            Table(
                "Memory by process group (PSS: shared pages split; RSS: as ps shows it)",
                ["component", "processes", "idle PSS", "idle RSS", "load PSS", "load RSS"],
                rows,
            ),
        ],
        notes=[
            "Idle is the stack just after the restart (when make up was timed) or as it was;"
            " memory grows with caches, connections and JIT warm-up, so a long-running stack"
            " sits above a fresh one.",
        ],
    )
