"""The chapters' papermill parameters, checked before a chapter does anything with them.

Every chapter declares the same four parameters in its `parameters` cell: `budget`, `device`, `data`
and `results_dir` (papermill's `-p NAME VALUE` replaces them). Papermill itself only warns about a
name the chapter does not declare and passes any value on, so each chapter's first call into the
package (`book.open_chapter`) calls `check_parameters`, and `ci/run_notebooks.py` calls it before
executing anything. A bad name or value fails with one line that says what is allowed (in a notebook
too: no traceback).
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Iterable
from pathlib import Path

from resnet_repro.runs.config import BUDGETS as TRAINING_BUDGETS
from resnet_repro.runs.config import DEVICES, device_unavailable

NAMES = ("budget", "device", "data", "results_dir")
READ_ONLY = "results"  # the budget that trains nothing: every figure is drawn from results_dir
BUDGETS = (READ_ONLY, *TRAINING_BUDGETS)
INJECTED_HEADER = "# Parameters"  # the first line of the cell papermill injects (its Python translator)


class ParameterError(ValueError):
    """A parameter the chapters do not take. IPython shows it as its one line, without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's own rendering
        return [f"{type(self).__name__}: {self}"]


def check_names(names: Iterable[str], declared: Iterable[str] = NAMES) -> None:
    """Refuse a parameter name that is not declared (a misspelling gets a suggestion)."""
    declared = list(declared)
    for name in names:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(f"unknown parameter {name!r}{hint}: the chapters take {', '.join(declared)}")


def injected_names() -> list[str]:
    """Names papermill injected into this IPython kernel (its `# Parameters` cell); [] outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    if shell is None:
        return []
    names: list[str] = []
    for source in shell.user_ns.get("In", []):
        if source.splitlines()[:1] != [INJECTED_HEADER]:
            continue
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign):
                names += [target.id for target in node.targets if isinstance(target, ast.Name)]
    return names


def _choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ParameterError(f"{name} {value!r} is not allowed: use one of {', '.join(allowed)}")


def _path(name: str, value, base: Path | None) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterError(f"{name} must be a path (a string), got {value!r}")
    path = Path(value).expanduser()
    return path if base is None or path.is_absolute() else Path(base) / path


def check_parameters(
    budget: str, device: str, data: str | None, results_dir: str, *, base: str | os.PathLike | None = None
) -> None:
    """Raise ParameterError (one line: what is wrong, what is allowed) for a bad chapter parameter.

    In a kernel papermill ran, the names it injected are checked too. Relative paths mean `base`
    (default: the current folder, the chapter's own). A results folder that does not exist is an
    error unless the budget trains into it.
    """
    check_names(injected_names())
    _choice("budget", budget, BUDGETS)
    _choice("device", device, DEVICES)
    unavailable = device_unavailable(device)
    if unavailable:
        raise ParameterError(f'{unavailable}: use device = "auto" or "cpu"')
    base = None if base is None else Path(base)
    if data is not None:
        path = _path("data", data, base)
        if not path.exists():
            raise ParameterError(
                f"data {str(data)!r} does not exist ({path.absolute()}): use None for the official CIFAR-10 "
                "download, or a folder or .tar.gz of images"
            )
    folder = _path("results_dir", results_dir, base)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"results_dir {str(results_dir)!r} is not a folder ({folder.absolute()})")
    if budget == READ_ONLY and not folder.is_dir():
        raise ParameterError(
            f"results_dir {str(results_dir)!r} does not exist ({folder.absolute()}): budget {READ_ONLY!r} "
            f"only reads runs from it; pass an existing folder, or a budget that trains into it "
            f"({', '.join(TRAINING_BUDGETS)})"
        )
