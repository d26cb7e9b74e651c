"""Spec diffs for code review: each change classified as breaking or compatible.

``run_spec_diff(base, allow_breaking=..., fmt=...)`` compares the working tree's
``specs/`` with those of a git ref and prints a Markdown (or JSON) summary; see
docs/spec-diff.md for the rules.
"""

from generator.specdiff.gitsource import default_base
from generator.specdiff.model import Change, Severity, SpecDiffError
from generator.specdiff.report import DiffResult
from generator.specdiff.run import (
    allow_breaking_from_env,
    compare_trees,
    run_spec_diff,
    spec_diff,
)

__all__ = [
    "Change",
    "DiffResult",
    "Severity",
    "SpecDiffError",
    "allow_breaking_from_env",
    "compare_trees",
    "default_base",
    "run_spec_diff",
    "spec_diff",
]
