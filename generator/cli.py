"""``python -m generator {generate,check,validate}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from generator.errors import InvalidSpecsError
from generator.pipeline import build, diff, load_and_check, write

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="generator", description=__doc__)
    parser.add_argument("command", choices=["generate", "check", "validate"])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
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
