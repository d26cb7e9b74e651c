"""Load → validate → cross-check → emit → format: the whole generator run."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from generator.crossref import cross_check
from generator.emit import GENERATED_DIR, MANAGED_DIRS, MANAGED_FILES, Output, header
from generator.emit.docs import emit_docs
from generator.emit.events import emit_events
from generator.emit.grpc import emit_grpc
from generator.emit.infra import emit_infrastructure
from generator.emit.kubernetes import emit_kubernetes
from generator.emit.models import emit_models
from generator.emit.observability import emit_observability
from generator.emit.routers import emit_routers
from generator.emit.sagas import emit_sagas
from generator.errors import InvalidSpecsError
from generator.specset import SpecSet, load_specset
from generator.validate import validate_structure

Emitter = Callable[[SpecSet, Output], None]
EMITTERS: tuple[Emitter, ...] = (
    emit_models,
    emit_grpc,
    emit_events,
    emit_routers,
    emit_sagas,
    emit_infrastructure,
    emit_kubernetes,
    emit_observability,
    emit_docs,
)
RUFF_ARGS = ("--isolated", "--line-length", "100", "--target-version", "py311")


def load_and_check(root: Path) -> SpecSet:
    """A fully validated spec set, or ``InvalidSpecsError`` naming every problem."""
    specset = load_specset(root)
    errors = validate_structure(specset)
    if errors:
        raise InvalidSpecsError(errors)
    errors = cross_check(specset)
    if errors:
        raise InvalidSpecsError(errors)
    return specset


def _ensure_packages(out: Output) -> None:
    """Every folder under ``generated/`` holding Python code is a package."""
    folders = {
        parent
        for path in out.files
        if path.endswith(".py")
        for parent in Path(path).parents
        if parent.parts[:1] == (GENERATED_DIR,)
    }
    for folder in sorted(folders):
        init = (folder / "__init__.py").as_posix()
        if init not in out.files:
            out.add(init, header(["specs/"]))


def _format_python(out: Output) -> None:
    """ruff (isolated settings, so the result never depends on local config)."""
    python = {path: text for path, text in out.files.items() if path.endswith(".py")}
    with tempfile.TemporaryDirectory() as tmp:
        for path, text in python.items():
            target = Path(tmp) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        ruff = [sys.executable, "-m", "ruff"]
        for command in (
            [
                *ruff,
                "check",
                *RUFF_ARGS,
                "--select",
                "I,F401",
                "--fix",
                "--quiet",
                "--exit-zero",
                tmp,
            ],
            [*ruff, "format", *RUFF_ARGS, "--quiet", tmp],
        ):
            subprocess.run(command, check=True)  # noqa: S603
        for path in python:
            out.files[path] = (Path(tmp) / path).read_text(encoding="utf-8")


def build(root: Path) -> Output:
    """Generate every output in memory."""
    specset = load_and_check(root)
    out = Output()
    for emit in EMITTERS:
        emit(specset, out)
    _ensure_packages(out)
    _format_python(out)
    return out


def _on_disk(root: Path) -> dict[str, str]:
    files = {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((root / GENERATED_DIR).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    for managed in MANAGED_FILES:
        if (root / managed).is_file():
            files[managed] = (root / managed).read_text(encoding="utf-8")
    for folder in MANAGED_DIRS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    return files


def write(out: Output, root: Path) -> list[str]:
    """Bring the working tree in line with ``out``; returns the paths changed."""
    current = _on_disk(root)
    changed = []
    for path, text in sorted(out.files.items()):
        if current.get(path) != text:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in sorted(set(current) - set(out.files)):
        (root / path).unlink()
        changed.append(path)
    for folder in sorted((root / GENERATED_DIR).rglob("*"), reverse=True):
        if folder.is_dir() and not any(p for p in folder.iterdir() if p.name != "__pycache__"):
            shutil.rmtree(folder)
    for managed in MANAGED_DIRS:
        for folder in sorted((root / managed).rglob("*"), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return changed


def diff(out: Output, root: Path) -> str:
    """Unified diff from the working tree to freshly generated output ('' when clean)."""
    current = _on_disk(root)
    chunks: list[str] = []
    for path in sorted(set(current) | set(out.files)):
        old, new = current.get(path), out.files.get(path)
        if old == new:
            continue
        chunks.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"a/{path}" if old is not None else "/dev/null",
                tofile=f"b/{path}" if new is not None else "/dev/null",
            )
        )
    return "".join(chunks)
