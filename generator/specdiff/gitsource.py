"""The ``specs/`` tree as it is at a git ref, copied into a directory.

Only git plumbing is used (``rev-parse``, ``ls-tree``, ``cat-file --batch``): the
working tree, the index and the checked-out branch are never touched.
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

from generator.specdiff.model import SpecDiffError

SPECS_DIR = "specs"
_REGULAR_FILE_MODES = ("100644", "100755")


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    command = ["git", "-C", str(root), *args]
    try:
        result = subprocess.run(  # noqa: S603 - fixed git plumbing commands
            command, input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise SpecDiffError("git is not installed") from exc
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise SpecDiffError(f"git {' '.join(args[:2])} failed: {message}")
    return result.stdout


def resolve_commit(root: Path, ref: str) -> str:
    """The commit id ``ref`` names in the repository at ``root``."""
    if not ref or ref.startswith("-"):
        raise SpecDiffError(f"not a git ref: {ref!r}")
    try:
        output = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except SpecDiffError as exc:
        raise SpecDiffError(f"unknown git ref {ref!r} in {root}") from exc
    return output.decode().strip()


def default_base(root: Path) -> str:
    """``origin/main`` when the repository has it, else ``main``."""
    try:
        resolve_commit(root, "origin/main")
    except SpecDiffError:
        return "main"
    return "origin/main"


def export_specs(root: Path, ref: str, destination: Path) -> str:
    """Write ``specs/`` of ``ref`` under ``destination``; returns the commit id.

    ``destination`` then looks like a repository root holding only the specs, which
    is what the spec loader expects.
    """
    commit = resolve_commit(root, ref)
    listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", commit, "--", SPECS_DIR)
    blobs: list[tuple[str, PurePosixPath]] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        header, _, raw_path = entry.partition(b"\t")
        mode, kind, object_id = header.decode().split()
        path = PurePosixPath(raw_path.decode())
        # Symlinks and submodules are no spec files; ".." never occurs in git paths
        # but is refused anyway so nothing is written outside ``destination``.
        if kind != "blob" or mode not in _REGULAR_FILE_MODES or ".." in path.parts:
            continue
        blobs.append((object_id, path))
    if not blobs:
        raise SpecDiffError(f"{ref} ({commit[:12]}) has no {SPECS_DIR}/ directory")
    batch = _git(
        root, "cat-file", "--batch", stdin="".join(f"{oid}\n" for oid, _ in blobs).encode()
    )
    offset = 0
    for object_id, path in blobs:
        newline = batch.index(b"\n", offset)
        got_id, _, size = batch[offset:newline].decode().split()
        if got_id != object_id:
            raise SpecDiffError(f"git cat-file answered {got_id} for {object_id}")
        start = newline + 1
        content = batch[start : start + int(size)]
        offset = start + int(size) + 1  # the content is followed by a newline
        target = destination.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return commit
