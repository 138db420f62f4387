"""Whole pages of prose held as reviewed files, instead of sentences pinned one by one in asserts.

A test renders a page's prose (its notes, on toy runs) as sections and compares them with
tests/golden/<name>.md. Rewording a note then changes one reviewed file, not a dozen asserts: rerun the
test with UPDATE_GOLDEN=1 to rewrite it, and read `git diff tests/golden` before committing it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def assert_golden(name: str, sections: dict[str, str]) -> None:
    """The sections (title -> Markdown) as one page, equal to tests/golden/<name>.md."""
    text = "".join(f"## {title}\n\n{body.strip()}\n\n" for title, body in sections.items())
    path = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"{path} is missing: write it with UPDATE_GOLDEN=1, then review it")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True), str(path), "rendered now"
        )
        pytest.fail(f"the page's prose differs from {path} (UPDATE_GOLDEN=1 rewrites it):\n{''.join(diff)}")
