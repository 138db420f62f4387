"""The book's plumbing: papermill parameters, the chapter runner, smoke execution, build and browser check.

The slow tests work on a copy of the book in tmp_path, so the checkout's notebooks stay output-free.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from resnet_repro.sweeps.chapters import OPENING_CALL, chapter_trains
from resnet_repro.sweeps.experiments import EXPERIMENTS, experiment_specs

REPO_ROOT = Path(__file__).resolve().parents[1]
CI = REPO_ROOT / "ci"
sys.path.insert(0, str(CI))
from book_toc import toc_docnames, toc_notebooks  # noqa: E402
from run_notebooks import KERNEL, ensure_kernel, phases, trains  # noqa: E402
from stage_book import stage  # noqa: E402

PARAMETERS = {"budget": '"results"', "device": '"auto"', "data": "None", "results_dir": '"../data/results"'}
HIDDEN_INPUT = {
    "hide-input",
    "remove-input",
    "remove-cell",
}  # myst-nb tags that keep a cell's code off the page
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"  # git-ignored; CI keeps it as output


def run(*command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a ci script from the repo root; its combined output lands in the assertion message on failure."""
    return subprocess.run(
        command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )


def copy_book(destination: Path) -> Path:
    """The book's sources, as committed, with the checkout's .gitignore (what ci/build_book.sh copies)."""
    stage(REPO_ROOT, destination)
    shutil.copy(REPO_ROOT / ".gitignore", destination / ".gitignore")
    return destination


def git(folder: Path, *arguments: str) -> str:
    """Output of a git command in `folder` (its identity set here, so a commit works on any machine)."""
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *arguments]
    return subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True).stdout


INSTALL_TEST = 'importlib.util.find_spec("resnet_repro") is None'  # the install cell's condition


def install_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The chapter's cell that installs the package where it is not importable (a hosted notebook)."""
    return next((cell for cell in nb.cells if INSTALL_TEST in cell.source), None)


def opening_call(source: str) -> ast.Call | None:
    """The ``book.open_chapter(...)`` call in a cell's code, if any."""
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    return next((call for call in calls if getattr(call.func, "attr", None) == OPENING_CALL), None)


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


@pytest.mark.parametrize("docname", toc_docnames())
def test_chapter_opens_with_its_title_then_the_hidden_parameters_cell(docname):
    # papermill injects its cell right after the parameters cell: both then sit under the title, hidden
    nb = nbformat.read(REPO_ROOT / f"{docname}.ipynb", as_version=4)
    title, parameters = nb.cells[:2]
    assert title.cell_type == "markdown" and title.source.startswith("# "), "the first cell is the title"
    assert "parameters" in parameters.metadata.get("tags", []), "the parameters cell follows the title"
    assert HIDDEN_INPUT & set(parameters.metadata.tags), "the parameters cell is hidden in the book"


@pytest.mark.parametrize("docname", toc_docnames())
def test_chapter_checks_its_parameters_before_it_uses_the_package(docname):
    # the first code cell after the install cell opens the chapter (book.open_chapter checks the four
    # parameters) right after its imports, before anything else runs
    nb = nbformat.read(REPO_ROOT / f"{docname}.ipynb", as_version=4)
    install = install_cell(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code" and "parameters" not in cell.metadata.tags]
    assert code[0] is install
    statements = ast.parse(code[1].source).body
    first = next(node for node in statements if not isinstance(node, (ast.Import, ast.ImportFrom)))
    call = opening_call(ast.unparse(first))
    assert call is not None, f"{docname}: the first statement after the imports is not book.open_chapter"
    assert [ast.unparse(argument) for argument in call.args] == ["budget", "device", "data", "results_dir"]
    assert sum(opening_call(cell.source) is not None for cell in code[1:]) == 1


def test_every_chapter_installs_the_package_where_it_is_missing_from_the_books_own_repository():
    # one install cell, the same in every chapter, cloning the repository _config.yml names (whose URL
    # also makes the book's Colab, Binder and repository links)
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
    cells = {
        name: install_cell(nbformat.read(REPO_ROOT / f"{name}.ipynb", as_version=4))
        for name in toc_docnames()
    }
    assert None not in cells.values(), [name for name, cell in cells.items() if cell is None]
    sources = {cell.source for cell in cells.values()}
    assert len(sources) == 1, "the chapters' install cells differ"
    (source,) = sources
    assert re.findall(r'repository = "([^"]+)"', source) == [config["repository"]["url"]]
    assert (
        '"pip", "install", "--quiet", "-e"' in source
    )  # editable: results stay in the clone, git commit known


@pytest.mark.parametrize(
    "docname", [name for name in toc_docnames() if not trains(REPO_ROOT / f"{name}.ipynb")]
)
def test_chapters_that_train_nothing_do_not_depend_on_the_budget(docname):
    # why the smoke test below executes only the training chapters at budget smoke: for the others, every
    # budget runs the same code, which the book build executes at budget "results"
    notebook = REPO_ROOT / f"{docname}.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    code = [
        c.source
        for c in nb.cells
        if c.cell_type == "code"
        and "parameters" not in c.metadata.get("tags", [])
        and c is not install_cell(nb)
    ]
    names = set()
    for source in code:
        tree = ast.parse(source)
        opening = [node for node in ast.walk(tree) if getattr(node, "func", None) is not None]
        opening = [call for call in opening if getattr(call.func, "attr", None) == OPENING_CALL]
        inside = {id(node) for call in opening for node in ast.walk(call)}
        names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in inside}
    assert "budget" not in names  # only book.open_chapter, which checks it and trains nothing here


# ---- ci/run_notebooks.py on throwaway chapters ------------------------------------------------


def tiny_chapter(path: Path, body: str) -> Path:
    """A chapter with a title, a parameters cell, a cell printing the parameters, and then `body`."""
    parameters = new_code_cell("\n".join(f"{name} = {default}" for name, default in PARAMETERS.items()))
    parameters.metadata["tags"] = ["parameters"]
    cells = [new_markdown_cell(f"# {path.stem}"), parameters]
    cells += [new_code_cell("print(budget, device, data, results_dir)"), new_code_cell(body)]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def tiny_book(root: Path, *bodies: str) -> list[Path]:
    """A book of one chapter per body (book/c1, book/c2, ...)."""
    (root / "book").mkdir()
    names = [f"c{index}" for index in range(1, len(bodies) + 1)]
    toc = f"format: jb-book\nroot: book/{names[0]}\n"
    if len(names) > 1:
        toc += "chapters:\n" + "".join(f"  - file: book/{name}\n" for name in names[1:])
    (root / "_toc.yml").write_text(toc)
    return [
        tiny_chapter(root / "book" / f"{name}.ipynb", body) for name, body in zip(names, bodies, strict=True)
    ]


def test_runner_passes_parameters_hides_the_injected_cell_and_clears(tmp_path):
    notebooks = tiny_book(tmp_path, "import os; print(os.getcwd())", "print('second chapter')")
    result = run(
        sys.executable,
        "ci/run_notebooks.py",
        "--root",
        str(tmp_path),
        "--budget",
        "smoke",
        "--results-dir",
        str(tmp_path / "results"),
        "--jobs",
        "2",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 2 chapters executed" in result.stdout

    printed = []
    for notebook in notebooks:
        nb = nbformat.read(notebook, as_version=4)
        injected = [cell for cell in nb.cells if "injected-parameters" in cell.metadata.get("tags", [])]
        assert len(injected) == 1 and "remove-cell" in injected[0].metadata.tags
        printed.append("".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", [])))
        assert f"smoke auto None {tmp_path / 'results'}" in printed[-1]
    assert (
        str(tmp_path / "book") in printed[0] and "second chapter" in printed[1]
    )  # cwd = the chapter's folder

    assert run(sys.executable, "ci/run_notebooks.py", "--root", str(tmp_path), "--clear").returncode == 0
    cleared = nbformat.read(notebooks[0], as_version=4)
    assert len(cleared.cells) == 4 and not any(cell.get("outputs") for cell in cleared.cells)
    assert "papermill" not in cleared.metadata


def test_at_a_training_budget_the_training_chapters_run_first_one_at_a_time(tmp_path):
    opening = "from resnet_repro import book\nbook.open_chapter(budget, device, data, results_dir{})"
    reader, trainer_a, counter, trainer_b = tiny_book(
        tmp_path,
        opening.format(""),
        opening.format(', trains=("fig1",)'),
        "print(3)",
        opening.format(', trains=("fig6", "fig7")'),
    )
    assert chapter_trains(trainer_b) == ("fig6", "fig7") and chapter_trains(reader) == ()
    assert trains(trainer_a) and not trains(reader) and not trains(counter)
    assert phases([reader, trainer_a, counter, trainer_b], "quick") == [
        [trainer_a],
        [trainer_b],
        [reader, counter],
    ]
    assert phases([reader, trainer_a], "results") == [[reader, trainer_a]]  # all at once


def test_the_chapters_train_only_through_their_opening_call_and_together_every_experiment():
    trained = []
    for notebook in toc_notebooks():
        cells = nbformat.read(notebook, as_version=4).cells
        source = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
        assert "reproduce(" not in source, f"{notebook.name} trains outside book.open_chapter"
        trained += chapter_trains(notebook)
    assert set(trained) <= set(EXPERIMENTS), "a chapter names an experiment that does not exist"
    assert set(trained) == set(EXPERIMENTS)  # every experiment is some chapter's


def test_runner_fails_and_names_the_error(tmp_path):
    (notebook,) = tiny_book(tmp_path, "raise ValueError('chapter broke')")
    result = run(
        sys.executable, "ci/run_notebooks.py", "--root", str(tmp_path), "--results-dir", str(tmp_path)
    )
    assert result.returncode == 1
    assert "book/c1.ipynb" in result.stdout and "ValueError: chapter broke" in result.stdout
    assert error_outputs(notebook)  # the error stays in the notebook for the reader of the CI log


def test_runner_runs_the_chapters_in_the_projects_kernel_bound_to_this_interpreter(tmp_path):
    (notebook,) = tiny_book(tmp_path, "import sys; print(sys.executable)")
    result = run(
        sys.executable, "ci/run_notebooks.py", "--root", str(tmp_path), "--results-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    nb = nbformat.read(notebook, as_version=4)  # its metadata still names `python3`, as committed
    assert nb.cells[-1].outputs[0]["text"].strip() == sys.executable  # not whatever `python3` is


# The three cases of issue 15: each refused before anything runs, in one line that says what is allowed
BAD_PARAMETERS = {
    ("budjet", "smoke"): "unknown parameter 'budjet' (did you mean 'budget'?): the chapters take budget, "
    "device, data, results_dir",
    ("results_dir", "/nonexistent"): "results_dir '/nonexistent' does not exist (/nonexistent): budget "
    "'results' only reads runs from it; pass an existing folder, or a budget that trains into it "
    "(smoke, quick, full)",
    ("budget", "fast"): "budget 'fast' is not allowed: use one of results, smoke, quick, full",
}


@pytest.mark.parametrize(("parameter", "message"), BAD_PARAMETERS.items(), ids=lambda p: "-".join(p)[:20])
def test_runner_refuses_a_bad_parameter_before_executing_anything(tmp_path, parameter, message):
    (notebook,) = tiny_book(tmp_path, "print('ran')")
    result = run(sys.executable, "ci/run_notebooks.py", "--root", str(tmp_path), "-p", *parameter)
    assert (result.returncode, result.stderr) == (2, f"run_notebooks.py: {message}\n"), result.stdout
    assert not any(cell.get("outputs") for cell in nbformat.read(notebook, as_version=4).cells)


@pytest.mark.parametrize(("parameter", "message"), BAD_PARAMETERS.items(), ids=lambda p: "-".join(p)[:20])
def test_a_chapter_run_by_papermill_refuses_a_bad_parameter_in_its_first_cells(tmp_path, parameter, message):
    # papermill itself only warns about `budjet` and passes any value on: the chapter's check stops it
    ensure_kernel()
    chapter = next(path for path in toc_notebooks() if not trains(path))
    (tmp_path / "data" / "results").mkdir(parents=True)  # where its default results_dir points
    copy = shutil.copy(chapter, (tmp_path / "book").mkdir() or tmp_path / "book" / chapter.name)
    name, value = parameter
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            copy, tmp_path / "out.ipynb", parameters={name: value}, kernel_name=KERNEL, cwd=copy.parent
        )
    error = raised.value
    assert "open_chapter(" in error.source
    assert (error.ename, error.evalue, error.traceback) == (
        "ParameterError",
        message,
        [f"ParameterError: {message}"],  # one line, no traceback
    )


# ---- the real chapters, end to end ------------------------------------------------------------
#
# One copy of the book for both tests: the chapters that train run at budget smoke on the shared archive
# (each run trained once, into one results folder), then the book is built at budget "results" from
# those runs, so the browser sees real figures, not only "no run yet" notes.


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory, shared_archive) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """(book copy, results folder, the runner's result) after the training chapters ran at budget smoke."""
    root = tmp_path_factory.mktemp("smoke")
    book, results = copy_book(root / "training_copy"), root / "results"
    training = [notebook.stem for notebook in toc_notebooks(book) if trains(notebook)]
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
        "--only",
        *training,
    )
    return book, results, result


@pytest.mark.slow
def test_training_chapters_execute_at_budget_smoke_and_train_every_run_they_show(smoke_book):
    book, results, result = smoke_book
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    training = [notebook for notebook in toc_notebooks(book) if trains(notebook)]
    assert training and [problem for notebook in training for problem in error_outputs(notebook)] == []
    shown = {spec for experiment in EXPERIMENTS for spec in experiment_specs(experiment)}
    trained = {
        (r["arch"], r["shortcut"]) for r in map(json.loads, map(Path.read_text, results.rglob("run.json")))
    }
    assert trained == shown


@pytest.mark.slow
def test_book_builds_at_budget_results_leaves_its_sources_clean_and_every_page_works_in_a_browser(
    request, tmp_path
):
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        pytest.skip(f"no Chromium at {chromium} (apt-get install -y chromium, or set CHROMIUM)")
    try:  # the smoke runs when the shared archive is here; else whatever data/results holds
        _, results, _ = request.getfixturevalue("smoke_book")
    except pytest.skip.Exception:
        results = REPO_ROOT / "data" / "results"
    # the book as a fresh clone has it: committed, with the project's .gitignore
    book = copy_book(tmp_path / "book_copy")
    git(book, "init", "-q")
    git(book, "add", "-A")
    git(book, "commit", "-q", "-m", "the book as committed")
    checkout_before = git(REPO_ROOT, "status", "--porcelain", "--untracked-files=all")
    built = run(
        "bash",
        "ci/build_book.sh",
        "results",
        env={"BOOK_ROOT": str(book), "RESULTS_DIR": str(results), "JOBS": "2"},
    )
    assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-4000:]
    # the main command leaves the book as committed (executed chapters, vendored JavaScript: under _build/)
    assert git(book, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(REPO_ROOT, "status", "--porcelain", "--untracked-files=all") == checkout_before
    # the pages' Colab and Binder buttons open the committed chapters, not the executed copies
    html = (book / "_build" / "html" / "book" / "02_degradation.html").read_text(encoding="utf-8")
    launch = re.findall(r'href="(https://(?:colab|mybinder)[^"]*)"', html)
    assert len(launch) == 2 and all(url.endswith("/book/02_degradation.ipynb") for url in launch), launch
    if list(results.rglob("run.json")):  # the figures drawn from runs reached the page
        assert html.count("<img") >= 2, "Figures 1 and 6 are missing from the degradation chapter"

    checked = run(
        sys.executable, "ci/browser_check.py", "--root", str(book), "--screenshots", str(SCREENSHOTS)
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(list(SCREENSHOTS.glob("*.png"))) >= len(toc_docnames(book))
