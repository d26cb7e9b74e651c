"""The local stack's processes for chaos scenarios: restart with env, kill -9, the broker.

Services are (re)started with the local runner's own ``start`` (infrastructure/local/
services.py), optionally with environment overrides that point them at a chaos proxy.
Every override is recorded in ``.local/chaos/overrides.json`` until the service runs
with its default environment again, so a run that died half-way (a killed pytest)
is repaired by the next one (``restore_leftovers``) instead of leaving a service
wired to a proxy that no longer exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.e2e.saga_support import LOCAL_DIR, REPO_ROOT, _services_module, poll

OVERRIDES_FILE = LOCAL_DIR / "chaos" / "overrides.json"
KAFKA_PIDFILE = LOCAL_DIR / "kafka" / "kafka.pid"
INFRA = ["bash", str(REPO_ROOT / "infrastructure/local/infra.sh")]
READY_SECONDS = 120.0


def _process(name: str) -> Any:
    services = _services_module()
    matches = [p for p in services.processes() if p.name == name]
    if not matches:
        raise LookupError(f"{name} is not a process of the local stack")
    return matches[0]


def is_ready(name: str) -> bool:
    """Whether the process (a service or the gateway) answers its readiness URL."""
    return bool(_services_module().is_ready(_process(name)))


def pid_of(name: str) -> int | None:
    return _services_module().running_pid(_process(name))  # type: ignore[no-any-return]


def _read_overrides() -> dict[str, dict[str, str]]:
    try:
        data: dict[str, dict[str, str]] = json.loads(OVERRIDES_FILE.read_text())
        return data
    except (FileNotFoundError, ValueError):
        return {}


def _write_overrides(name: str, overrides: Mapping[str, str] | None) -> None:
    current = _read_overrides()
    if overrides:
        current[name] = dict(overrides)
    else:
        current.pop(name, None)
    OVERRIDES_FILE.parent.mkdir(parents=True, exist_ok=True)
    OVERRIDES_FILE.write_text(json.dumps(current, indent=2, sort_keys=True))


async def wait_ready(name: str, *, seconds: float = READY_SECONDS) -> None:
    async def ready() -> bool:
        return await asyncio.to_thread(is_ready, name)

    await poll(ready, seconds=seconds, what=f"{name} to be ready", interval=0.3)


async def wait_all_ready(*, seconds: float = READY_SECONDS) -> None:
    """Every process of the stack answers ready (others may be restarting it)."""
    names = [p.name for p in _services_module().processes()]

    async def all_ready() -> bool:
        return all(await asyncio.gather(*(asyncio.to_thread(is_ready, n) for n in names)))

    await poll(all_ready, seconds=seconds, what=f"the stack ({', '.join(names)})", interval=1.0)


async def start(name: str, overrides: Mapping[str, str] | None = None) -> None:
    """Start ``name`` (with ``overrides`` on top of this process's env) and wait until ready."""
    services = _services_module()
    env = None if not overrides else {**os.environ, **overrides}
    _write_overrides(name, overrides)
    await asyncio.to_thread(services.start, _process(name), env)
    await wait_ready(name)


async def stop(name: str) -> None:
    """Stop ``name`` gracefully (SIGTERM, then SIGKILL after the runner's timeout)."""
    await asyncio.to_thread(_services_module().stop, _process(name))


async def restart(name: str, overrides: Mapping[str, str] | None = None) -> None:
    await stop(name)
    await start(name, overrides)


@asynccontextmanager
async def rewired(services: Mapping[str, Mapping[str, str]]) -> AsyncIterator[None]:
    """Run each service with its overrides inside the block (restarted together), and
    with its default environment after it, whatever happens."""
    try:
        await asyncio.gather(*(restart(name, env) for name, env in services.items()))
        yield
    finally:
        results = await asyncio.gather(
            *(restart(name) for name in services), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]


async def restore_leftovers() -> list[str]:
    """Restart with the default env every service a dead run left rewired."""
    names = sorted(_read_overrides())
    for name in names:
        await restart(name)
    return names


def kill_hard(name: str) -> int:
    """SIGKILL the process (no drain, no cleanup) and wait until it is gone; its pid."""
    pid = pid_of(name)
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, name)
    return pid


def _wait_gone(pid: int, what: str) -> None:
    deadline = time.monotonic() + 15
    while _alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (pid {pid}) survived SIGKILL")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


# --- the Kafka broker ---------------------------------------------------------------------


def kafka_pid() -> int | None:
    try:
        pid = int(KAFKA_PIDFILE.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def kill_kafka_hard() -> int:
    """SIGKILL the local broker; its pid."""
    pid = kafka_pid()
    if pid is None:
        raise RuntimeError("the local Kafka broker is not running")
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, "kafka")
    return pid


def _infra(action: str, component: str) -> None:
    done = subprocess.run(
        [*INFRA, action, component], capture_output=True, text=True, timeout=240, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"infra.sh {action} {component} failed:\n{done.stdout}{done.stderr}")


async def kafka_up() -> None:
    """``infra.sh up kafka``: start the broker if it is down, (re)create topics."""
    await asyncio.to_thread(_infra, "up", "kafka")


async def kafka_down() -> None:
    """``infra.sh down kafka``: stop the broker gracefully."""
    await asyncio.to_thread(_infra, "down", "kafka")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
