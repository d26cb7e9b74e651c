"""Finding the upcasters an AsyncAPI message declares, and checking they import.

A message whose ``x-schema-version`` is ``n`` declares one upcaster per older
version, by dotted Python path, in ``x-upcasters`` (``{1: "pkg.module.function"}``).
Each is a pure ``(dict) -> dict`` turning version ``k`` data into version ``k + 1``
(``handwritten.runtime.eventstore.upcasting.Upcaster``). They are imported in a
fresh interpreter at the repository root, so the check sees what a service would,
and the generator's own process stays clean.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_TIMEOUT_SECONDS = 120

# Runs in the child interpreter: import each path, check it is a one-argument callable.
_PROBE = """
import importlib, inspect, json, sys
results = {}
for dotted in sys.argv[1:]:
    module_name, _, attribute = dotted.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        results[dotted] = f"cannot be imported: {type(exc).__name__}: {exc}"
        continue
    if not callable(target):
        results[dotted] = "is not callable"
        continue
    try:
        inspect.signature(target).bind({})
    except TypeError:
        results[dotted] = "does not take the event data as its one argument"
    except ValueError:
        pass  # no signature to inspect (a builtin): trust it
    else:
        results[dotted] = None
    results.setdefault(dotted, None)
print(json.dumps(results))
"""


def declared_upcasters(message: Mapping[str, Any]) -> tuple[dict[int, str], list[str]]:
    """``x-upcasters`` of ``message`` as ``{from_version: dotted_path}``, and problems."""
    raw = message.get("x-upcasters")
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, ["x-upcasters must map a schema version to a dotted Python path"]
    steps: dict[int, str] = {}
    problems = []
    for key, value in raw.items():
        version = key if isinstance(key, int) else int(key) if str(key).isdigit() else None
        if version is None or version < 1:
            problems.append(f"x-upcasters key {key!r} is not a schema version (1, 2, ...)")
        elif not isinstance(value, str) or not _DOTTED.match(value):
            problems.append(f"x-upcasters[{key}] {value!r} is not a dotted path (pkg.module.fn)")
        else:
            steps[version] = value
    return steps, problems


def probe_upcasters(root: Path, paths: Iterable[str]) -> dict[str, str | None]:
    """``{dotted_path: None if usable else why not}``, imported from ``root``."""
    unique = sorted(set(paths))
    if not unique:
        return {}
    pythonpath = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    try:
        result = subprocess.run(  # noqa: S603 - our interpreter running our probe
            [sys.executable, "-c", _PROBE, *unique],
            cwd=root,
            env={**os.environ, "PYTHONPATH": pythonpath},
            capture_output=True,
            text=True,
            check=False,
            timeout=_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return dict.fromkeys(unique, f"could not be checked: import took over {_TIMEOUT_SECONDS}s")
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["the probe failed"])[-1]
        return dict.fromkeys(unique, f"could not be checked: {why}")
    # Imported modules may print; the probe's answer is its last line.
    lines = result.stdout.strip().splitlines()
    answers: dict[str, str | None] = json.loads(lines[-1]) if lines else {}
    return {path: answers.get(path, "could not be checked") for path in unique}
