"""Every relative link and every file path named in README.md and docs/ exists.

Docs rot when code moves: a page that points at ``handwritten/runtime/outbox/relay.py``
is only useful while that file is there. Two kinds of references are checked:

- Markdown links ``[text](target)`` that are not URLs or in-page anchors, resolved
  against the page's folder (the anchor part, ``#...``, is ignored);
- inline code spans that look like a repository path: one token starting with a
  top-level folder of the project (``handwritten/``, ``tests/``, ``specs/``…),
  resolved against the repository root. Spans holding placeholders (``<service>``,
  ``{name}``, ``*``, ``…``) name a family of files and are skipped; a trailing
  ``:line`` or ``::test_name`` is dropped.

A how-to's worked example names files that do not exist until the reader creates
them; the page lists them in a comment, ``<!-- example files: a/b.py c/d.yaml -->``,
and those must NOT exist (else the example is stale or the list is wrong).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = (
    "bench",
    "deploy",
    "docs",
    "generated",
    "generator",
    "handwritten",
    "infrastructure",
    "specs",
    "templates",
    "tests",
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"[<>{}*…]|\.\.\.")
EXAMPLE_FILES = re.compile(r"<!--\s*example files:(.*?)-->", re.DOTALL)


def doc_pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _without_fences(text: str) -> str:
    return FENCE.sub("", text)


def relative_links(text: str) -> list[str]:
    """Targets of Markdown links that point inside the repository."""
    targets = []
    for match in LINK.finditer(_without_fences(text)):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return [target for target in targets if target]


def path_references(text: str) -> list[str]:
    """Inline code spans that name a file or folder of the repository."""
    paths = []
    for match in CODE_SPAN.finditer(_without_fences(text)):
        span = match.group(1).strip()
        if " " in span or PLACEHOLDER.search(span):
            continue
        if not span.startswith(tuple(f"{top}/" for top in TOP_LEVEL)) and span not in (
            "README.md",
            "Makefile",
            "docker-compose.yml",
            "pyproject.toml",
        ):
            continue
        span = span.split("::", 1)[0]
        span = re.sub(r":\d+$", "", span)
        paths.append(span)
    return paths


def test_the_checks_see_links_and_paths() -> None:
    """The extractors find what they should (and so can fail)."""
    text = (
        "See [tracing](tracing.md#files), [web](https://example.com), [top](#x), "
        "`handwritten/runtime/outbox/relay.py`, `generated/models/<service>.py`, "
        "`make up`, `tests/e2e/test_orders.py::test_x`.\n```\n`specs/nope.yaml`\n```\n"
    )
    assert relative_links(text) == ["tracing.md"]
    assert path_references(text) == [
        "handwritten/runtime/outbox/relay.py",
        "tests/e2e/test_orders.py",
    ]
    assert example_files("<!-- example files: a/b.py\n c/ -->") == {"a/b.py", "c/"}


def example_files(text: str) -> set[str]:
    """Paths a worked example creates, from ``<!-- example files: ... -->``."""
    return {path for match in EXAMPLE_FILES.finditer(text) for path in match.group(1).split()}


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_and_path_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    examples = example_files(text)
    existing_examples = sorted(path for path in examples if (ROOT / path).exists())
    assert not existing_examples, (
        f"{page.relative_to(ROOT)}: example files exist: {existing_examples}"
    )
    missing = [
        f"link {target}" for target in relative_links(text) if not (page.parent / target).exists()
    ]
    missing += [
        f"path {path}"
        for path in path_references(text)
        if path.rstrip("/") not in examples and not (ROOT / path).exists()
    ]
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"
