"""``python -m generator {generate,check,validate,spec-diff}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from generator.errors import InvalidSpecsError
from generator.pipeline import build, diff, load_and_check, write
from generator.specdiff import allow_breaking_from_env, default_base, run_spec_diff

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="generator", description=__doc__)
    parser.add_argument("command", choices=["generate", "check", "validate", "spec-diff"])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    spec_diff = parser.add_argument_group("spec-diff (see docs/spec-diff.md)")
    spec_diff.add_argument(
        "--base", help="git ref to compare the specs with (default: origin/main, else main)"
    )
    spec_diff.add_argument(
        "--allow-breaking",
        action="store_true",
        default=allow_breaking_from_env(),
        help="exit 0 despite breaking changes (also ALLOW_BREAKING=1)",
    )
    spec_diff.add_argument("--format", choices=["markdown", "json"], default="markdown")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if args.command == "spec-diff":
        base = args.base or default_base(root)
        return run_spec_diff(base, allow_breaking=args.allow_breaking, fmt=args.format, root=root)
    try:
        if args.command == "validate":
            load_and_check(root)
            print("specs are valid")
            return 0
        out = build(root)
    except InvalidSpecsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "check":
        stale = diff(out, root)
        if stale:
            sys.stdout.write(stale)
            print("\ngenerated output is stale: run `make generate`", file=sys.stderr)
            return 1
        print(f"generated output is up to date ({len(out.files)} files)")
        return 0
    changed = write(out, root)
    for path in changed:
        print(f"  wrote {path}")
    print(f"{len(out.files)} files generated, {len(changed)} changed")
    return 0
