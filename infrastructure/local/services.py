"""Run the platform's own processes locally: every implemented service, then the gateway.

    python infrastructure/local/services.py up|down|status|migrate

A service is implemented once ``handwritten/<name>/__main__.py`` exists, so services
join ``make up`` as they land. Each runs as ``python -m handwritten.<name>`` with the
catalog's local defaults; logs go to ``.local/logs/<name>.log`` and pid files to
``.local/run/``. ``up`` is idempotent and waits until every process reports ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from generated import catalog  # noqa: E402 - needs the repo root on sys.path first

LOCAL_DIR = Path(os.environ.get("MC_LOCAL_DIR", REPO_ROOT / ".local"))
RUN_DIR = LOCAL_DIR / "run"
LOG_DIR = LOCAL_DIR / "logs"
READY_TIMEOUT_SECONDS = float(os.environ.get("MC_READY_TIMEOUT", "90"))
STOP_TIMEOUT_SECONDS = 15.0
GATEWAY_STATUS_PORT = int(os.environ.get("GATEWAY_STATUS_PORT", "8100"))
#: What every local process gets unless its environment says otherwise: saga fault
#: flags are on here (docs/fault-flags.md), never in production manifests.
LOCAL_DEFAULTS = {"MC_FAULTS_ENABLED": "true"}


@dataclass(frozen=True)
class Process:
    """One local process and how to tell that it is ready."""

    name: str
    ready_url: str
    public_url: str

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOG_DIR / f"{self.name}.log"


def implemented(name: str) -> bool:
    """Built and selected: ``MC_SERVICES=auth,inventory`` limits a run to those (and the
    gateway, which always fronts them)."""
    selected = os.environ.get("MC_SERVICES", "").strip()
    if selected and name != "gateway" and name not in selected.split(","):
        return False
    return (REPO_ROOT / "handwritten" / name / "__main__.py").is_file()


def processes() -> list[Process]:
    """Implemented services in catalog order, then the gateway (it fronts them)."""
    found = [
        Process(
            name,
            f"http://127.0.0.1:{service.http_port}/health/ready",
            f"http://127.0.0.1:{service.http_port}",
        )
        for name, service in catalog.SERVICES.items()
        if implemented(name)
    ]
    if implemented("gateway"):
        found.append(
            Process(
                "gateway",
                f"http://127.0.0.1:{GATEWAY_STATUS_PORT}/status",
                f"http://127.0.0.1:{catalog.GATEWAY_PORT}",
            )
        )
    return found


def running_pid(process: Process) -> int | None:
    """The pid of a live process we started, or None (stale pid files are removed)."""
    try:
        pid = int(process.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        process.pid_file.unlink(missing_ok=True)
        return None
    # A zombie (exited, not yet reaped) counts as stopped.
    status = Path(f"/proc/{pid}/status")
    if status.exists() and "\nState:\tZ" in status.read_text():
        process.pid_file.unlink(missing_ok=True)
        return None
    return pid


def is_ready(process: Process) -> bool:
    try:
        with urllib.request.urlopen(process.ready_url, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start(process: Process, env: Mapping[str, str] | None = None) -> None:
    """Start ``process`` unless it runs; ``env`` replaces the inherited environment
    (the chaos tests point a service at a fault-injecting proxy this way)."""
    if running_pid(process) is not None:
        print(f"[services] {process.name}: already running")
        return
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with process.log_file.open("ab") as log:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", f"handwritten.{process.name}"],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**LOCAL_DEFAULTS, **(os.environ if env is None else env)},
        )
    process.pid_file.write_text(f"{child.pid}\n")
    print(f"[services] {process.name}: started (pid {child.pid}, log {process.log_file})")


def wait_ready(process: Process) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not is_ready(process):
        if running_pid(process) is None:
            raise SystemExit(
                f"[services] {process.name} exited during start-up; last log lines:\n"
                f"{tail(process.log_file)}"
            )
        if time.monotonic() > deadline:
            raise SystemExit(
                f"[services] {process.name} not ready after {READY_TIMEOUT_SECONDS:.0f} s "
                f"({process.ready_url}); last log lines:\n{tail(process.log_file)}"
            )
        time.sleep(0.2)


def stop(process: Process) -> None:
    pid = running_pid(process)
    if pid is None:
        print(f"[services] {process.name}: not running")
        return
    os.killpg(pid, signal.SIGTERM)  # graceful: drain, close pools
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while running_pid(process) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_pid(process) is not None:
        os.killpg(pid, signal.SIGKILL)
        print(f"[services] {process.name}: killed after {STOP_TIMEOUT_SECONDS:.0f} s")
    process.pid_file.unlink(missing_ok=True)
    print(f"[services] {process.name}: stopped")


def migrate() -> None:
    for name, service in catalog.SERVICES.items():
        if service.database is not None and implemented(name):
            subprocess.run(  # noqa: S603
                [sys.executable, "-m", f"handwritten.{name}", "migrate"], cwd=REPO_ROOT, check=True
            )


def up() -> None:
    for process in processes():
        start(process)
        wait_ready(process)
        print(f"[services] {process.name}: ready at {process.public_url}")
    print("[services] MicroCommerce is up:")
    print(f"  gateway        http://127.0.0.1:{catalog.GATEWAY_PORT}")
    for process in processes():
        if process.name != "gateway":
            print(f"  {process.name:<14} {process.public_url}/docs  (API reference)")
    admin = dict((v.name, v.default) for v in catalog.SERVICES["auth"].env)
    print(f"  admin login    {admin['ADMIN_EMAIL']} / {admin['ADMIN_PASSWORD']}")


def down() -> None:
    for process in reversed(processes()):
        stop(process)


def status() -> None:
    for process in processes():
        pid = running_pid(process)
        state = "stopped" if pid is None else ("ready" if is_ready(process) else "starting")
        print(f"  {process.name:<10} {state:<9} {'' if pid is None else f'pid {pid}'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=["up", "down", "status", "migrate"])
    action = parser.parse_args().action
    {"up": up, "down": down, "status": status, "migrate": migrate}[action]()


if __name__ == "__main__":
    main()
