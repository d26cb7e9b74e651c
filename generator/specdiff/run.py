"""The spec diff end to end: export the base specs, compare, acknowledge, report."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from generator.errors import InvalidSpecsError
from generator.specdiff.acknowledgements import apply_acknowledgements, load_acknowledgements
from generator.specdiff.asyncapi import diff_asyncapi
from generator.specdiff.gitsource import export_specs
from generator.specdiff.model import Change, SpecDiffError, merge_duplicates, sort_key
from generator.specdiff.openapi import diff_openapi
from generator.specdiff.proto import diff_protos
from generator.specdiff.report import (
    EXIT_FAILED,
    DiffResult,
    exit_code,
    render_json,
    render_markdown,
)
from generator.specdiff.saga import diff_sagas
from generator.specset import SpecSet, load_specset

REPO_ROOT = Path(__file__).resolve().parents[2]
FORMATS = ("markdown", "json")


def allow_breaking_from_env() -> bool:
    """``ALLOW_BREAKING=1`` (or true/yes) in the environment."""
    return os.environ.get("ALLOW_BREAKING", "").strip().lower() in {"1", "true", "yes"}


def _load(root: Path, label: str) -> SpecSet:
    try:
        return load_specset(root)
    except InvalidSpecsError as exc:
        raise SpecDiffError(f"the specs of {label} do not load:\n{exc}") from exc


def compare_trees(base_root: Path, head_root: Path, *, base_label: str = "base") -> list[Change]:
    """Every change from the specs under ``base_root`` to those under ``head_root``.

    Upcasters named by the head's AsyncAPI document are imported from ``head_root``.
    """
    base = _load(base_root, base_label)
    head = _load(head_root, "the working tree")
    try:
        protos = diff_protos(base_root, head_root)
    except InvalidSpecsError as exc:
        raise SpecDiffError(f"the protos do not compile:\n{exc}") from exc
    return [
        *diff_openapi(base, head),
        *diff_asyncapi(base, head, head_root),
        *protos,
        *diff_sagas(base, head),
    ]


def spec_diff(root: Path, base: str) -> DiffResult:
    """Compare ``root/specs`` with the specs of git ref ``base`` of that repository."""
    acknowledgements = load_acknowledgements(root)  # a malformed file fails before the work
    with tempfile.TemporaryDirectory(prefix="spec-diff-") as tmp:
        base_root = Path(tmp)
        commit = export_specs(root, base, base_root)
        changes = compare_trees(base_root, root, base_label=f"{base} ({commit[:12]})")
    acknowledged = apply_acknowledgements(merge_duplicates(changes), acknowledgements)
    return DiffResult(base, commit, tuple(sorted(acknowledged, key=sort_key)))


def run_spec_diff(
    base: str,
    *,
    allow_breaking: bool,
    fmt: str,
    root: Path = REPO_ROOT,
    out: TextIO | None = None,
) -> int:
    """Print the diff of the working tree's specs against ``base``; the exit code.

    0: no breaking change (or all allowed / acknowledged); 1: errors or breaking
    changes; 2: the diff could not be computed (unknown ref, specs that do not load).
    """
    stream = out if out is not None else sys.stdout
    if fmt not in FORMATS:
        print(f"spec-diff: unknown format {fmt!r} (use {' or '.join(FORMATS)})", file=sys.stderr)
        return EXIT_FAILED
    try:
        result = spec_diff(root.resolve(), base)
    except SpecDiffError as exc:
        print(f"spec-diff: {exc}", file=sys.stderr)
        return EXIT_FAILED
    render = render_json if fmt == "json" else render_markdown
    stream.write(render(result, allow_breaking=allow_breaking))
    return exit_code(result, allow_breaking=allow_breaking)
