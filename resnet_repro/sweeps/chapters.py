"""What each chapter of the book trains at a training budget ("smoke", "quick", "full"; at budget
"results" nothing): the experiments its ``book.open_chapter(..., trains=(...))`` call names, read from the
notebook's code without running it. ``ci/run_notebooks.py`` runs those chapters one at a time, before the
others. Imports nothing of the package, so the runner (and each of its worker processes) reads it without
importing torch or matplotlib."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

OPENING_CALL = "open_chapter"  # book.open_chapter(budget, device, data, results_dir, trains=(...))


def chapter_trains(notebook: str | os.PathLike) -> tuple[str, ...]:
    """The experiments a chapter trains at a training budget: the ``trains`` of its ``book.open_chapter``
    call, read from the notebook's code without running it (() for a chapter that trains nothing)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    found: list[str] = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if OPENING_CALL not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == OPENING_CALL:
                found += [e for k in node.keywords if k.arg == "trains" for e in ast.literal_eval(k.value)]
    return tuple(found)
