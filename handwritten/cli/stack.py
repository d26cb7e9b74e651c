"""``mc up|down|status|logs``: the local runner (infrastructure/local) with a live view."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from handwritten.cli.errors import CliError
from handwritten.cli.render import log_line, log_matches

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_SCRIPT = REPO_ROOT / "infrastructure" / "local" / "infra.sh"


def local_runner() -> ModuleType:
    """``infrastructure/local/services.py`` (a script, not a package), loaded once."""
    name = "mc_local_services"
    if name not in sys.modules:
        path = REPO_ROOT / "infrastructure" / "local" / "services.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise CliError(
                f"local runner missing at {path}", "run mc from a MicroCommerce checkout"
            )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def state_of(runner: ModuleType, process: Any) -> tuple[str, str]:
    """(state, pid) of one local process: stopped, starting or ready."""
    pid = runner.running_pid(process)
    if pid is None:
        return "stopped", ""
    return ("ready" if runner.is_ready(process) else "starting"), str(pid)


def status_table(runner: ModuleType) -> Table:
    """Every local process with its state, pid and URL."""
    table = Table(title="MicroCommerce local stack")
    for column in ("process", "state", "pid", "url"):
        table.add_column(column)
    colours = {"ready": "green", "starting": "yellow", "stopped": "red"}
    for process in runner.processes():
        state, pid = state_of(runner, process)
        table.add_row(process.name, f"[{colours[state]}]{state}[/]", pid, process.public_url)
    return table


def infra(action: str) -> None:
    """PostgreSQL, Redis and Kafka (installed the first time)."""
    result = subprocess.run(["bash", str(INFRA_SCRIPT), action], check=False)  # noqa: S603, S607
    if result.returncode != 0:
        raise CliError(
            f"infrastructure {action} failed (exit {result.returncode})",
            "see the [infra] lines above; docs/troubleshooting.md lists the usual causes",
        )


def up(console: Console) -> None:
    """Infrastructure, then every service and the gateway, with a live table until ready."""
    infra("up")
    runner = local_runner()
    failure: list[BaseException] = []

    def start_all() -> None:
        try:
            for process in runner.processes():
                runner.start(process)
                runner.wait_ready(process)
        except BaseException as exc:  # reported by the main thread (SystemExit included)
            failure.append(exc)

    worker = threading.Thread(target=start_all, daemon=True)
    # The runner prints one line per process; the table says the same, live.
    with Live(status_table(runner), console=console, refresh_per_second=4) as live:
        worker.start()
        while worker.is_alive():
            worker.join(timeout=0.5)
            live.update(status_table(runner))
    if failure:
        raise CliError(
            f"the stack did not start: {failure[0]}",
            "mc logs SERVICE shows why; mc status shows what runs",
        )
    console.print(f"gateway ready at {runner.processes()[-1].public_url}")


def down() -> None:
    """Every service and the gateway, then the infrastructure."""
    local_runner().down()
    infra("down")


def status(console: Console) -> None:
    """What runs now."""
    console.print(status_table(local_runner()))


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as log:
        yield from log


def logs(service: str, *, follow: bool, needle: str | None, lines: int) -> Iterator[str]:
    """A service's log lines, pretty-printed, filtered by ``needle``; the last ``lines``
    first, then new ones when ``follow``."""
    runner = local_runner()
    known = {process.name: process for process in runner.processes()}
    if service not in known:
        raise CliError(f"unknown service {service!r}", f"one of: {', '.join(sorted(known))}")
    path: Path = known[service].log_file
    if not path.exists():
        raise CliError(f"no log yet for {service} at {path}", "start it: mc up")
    matching = (line for line in _lines(path) if log_matches(line, needle))
    backlog = list(matching)[-lines:] if lines > 0 else []
    yield from (log_line(line) for line in backlog)
    if follow:
        for line in _tail_new(path):
            if log_matches(line, needle):
                yield log_line(line)


def _tail_new(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as log:
        log.seek(0, 2)
        while True:
            line = log.readline()
            if line:
                yield line
            else:
                time.sleep(0.25)
