"""The book's plumbing: papermill parameters, the chapter runner, smoke execution, build and browser check.

The slow tests work on a copy of the book in tmp_path, so the checkout's notebooks stay output-free.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_notebook

REPO_ROOT = Path(__file__).resolve().parents[1]
CI = REPO_ROOT / "ci"
sys.path.insert(0, str(CI))
from book_toc import toc_docnames, toc_notebooks  # noqa: E402

PARAMETERS = {"budget": '"results"', "device": '"auto"', "data": "None", "results_dir": '"../data/results"'}
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"  # git-ignored; CI keeps it as output


def run(*command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a ci script from the repo root; its combined output lands in the assertion message on failure."""
    return subprocess.run(
        command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )


def copy_book(destination: Path) -> Path:
    """The book's sources (and vendored JS, when present) without build output or executed state."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, destination / name)
    shutil.copytree(REPO_ROOT / "_ext", destination / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO_ROOT / "book",
        destination / "book",
        ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"),
    )
    return destination


def error_outputs(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [
        f"{notebook.name} cell {index}: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(nb.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]


# ---- every chapter's papermill parameters ------------------------------------------------------


@pytest.mark.parametrize("docname", toc_docnames())
def test_chapter_has_one_parameters_cell_with_the_four_parameters(docname):
    notebook = REPO_ROOT / f"{docname}.ipynb"
    assert notebook.is_file(), f"_toc.yml lists {docname}, but {notebook} does not exist"
    nb = nbformat.read(notebook, as_version=4)
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name} has {len(tagged)} cells tagged 'parameters', expected 1"
    # papermill only warns about a misspelled name, so compare what it infers from that cell
    inferred = papermill.inspect_notebook(str(notebook))
    assert {name: info["default"] for name, info in inferred.items()} == PARAMETERS


def test_every_chapter_notebook_is_in_the_table_of_contents():
    # only_build_toc_files drops a notebook missing from _toc.yml without a word
    listed = {path.resolve() for path in toc_notebooks()}
    assert {path.resolve() for path in (REPO_ROOT / "book").glob("*.ipynb")} <= listed


# ---- ci/run_notebooks.py on throwaway chapters ------------------------------------------------


def tiny_book(root: Path, body: str) -> Path:
    """A one-chapter book whose chapter prints its parameters and then runs `body`."""
    (root / "book").mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/only\n")
    parameters = new_code_cell("\n".join(f"{name} = {default}" for name, default in PARAMETERS.items()))
    parameters.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[parameters, new_code_cell("print(budget, device, data, results_dir)"), new_code_cell(body)]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "book" / "only.ipynb")
    return root / "book" / "only.ipynb"


def test_runner_passes_parameters_hides_the_injected_cell_and_clears(tmp_path):
    notebook = tiny_book(tmp_path, "import os; print(os.getcwd())")
    result = run(
        sys.executable,
        "ci/run_notebooks.py",
        "--root",
        str(tmp_path),
        "--budget",
        "smoke",
        "--results-dir",
        str(tmp_path / "results"),
    )
    assert result.returncode == 0, result.stdout + result.stderr

    nb = nbformat.read(notebook, as_version=4)
    injected = [cell for cell in nb.cells if "injected-parameters" in cell.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata.tags
    printed = "".join(output.get("text", "") for cell in nb.cells for output in cell.get("outputs", []))
    assert f"smoke auto None {tmp_path / 'results'}" in printed
    assert str(tmp_path / "book") in printed  # ran with cwd = the chapter's folder

    assert run(sys.executable, "ci/run_notebooks.py", "--root", str(tmp_path), "--clear").returncode == 0
    cleared = nbformat.read(notebook, as_version=4)
    assert len(cleared.cells) == 3 and not any(cell.get("outputs") for cell in cleared.cells)
    assert "papermill" not in cleared.metadata


def test_runner_fails_and_names_the_error(tmp_path):
    notebook = tiny_book(tmp_path, "raise ValueError('chapter broke')")
    result = run(sys.executable, "ci/run_notebooks.py", "--root", str(tmp_path))
    assert result.returncode == 1
    assert "book/only.ipynb" in result.stdout and "ValueError: chapter broke" in result.stdout
    assert error_outputs(notebook)  # the error stays in the notebook for the reader of the CI log


# ---- the real chapters, end to end ------------------------------------------------------------


@pytest.mark.slow
def test_chapters_execute_at_budget_smoke(tmp_path, shared_archive):
    book = copy_book(tmp_path / "book_copy")
    results = tmp_path / "results"
    result = run(
        sys.executable,
        "ci/run_notebooks.py",
        "--root",
        str(book),
        "--budget",
        "smoke",
        "--data",
        str(shared_archive),
        "--results-dir",
        str(results),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    notebooks = toc_notebooks(book)
    assert [problem for notebook in notebooks for problem in error_outputs(notebook)] == []
    assert list(results.rglob("run.json")), "budget smoke trained nothing into results_dir"


@pytest.mark.slow
def test_book_builds_at_budget_results_and_every_page_works_in_a_browser(tmp_path):
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        pytest.skip(f"no Chromium at {chromium} (apt-get install -y chromium, or set CHROMIUM)")
    book = copy_book(tmp_path / "book_copy")
    built = run(
        "bash",
        "ci/build_book.sh",
        "results",
        env={"BOOK_ROOT": str(book), "RESULTS_DIR": str(REPO_ROOT / "data" / "results")},
    )
    assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-4000:]

    checked = run(
        sys.executable, "ci/browser_check.py", "--root", str(book), "--screenshots", str(SCREENSHOTS)
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(list(SCREENSHOTS.glob("*.png"))) >= len(toc_docnames(book))
