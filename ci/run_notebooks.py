"""Execute every chapter of a book with papermill, in place, at one budget.

    python ci/run_notebooks.py --root _build/source   # what ci/build_book.sh does, on its copy of the book
    python ci/run_notebooks.py                  # the checkout's own chapters (--clear strips them again)
    python ci/run_notebooks.py --results-dir /tmp/results --jobs 2   # another results folder, 2 at once
    python ci/run_notebooks.py --budget smoke --data ../shared/data/cifar10-jpeg.tar.gz
    python ci/run_notebooks.py --budget full --device cuda --log-output   # the GPU job
    python ci/run_notebooks.py -p budget smoke  # papermill's form of a parameter (NAME VALUE)
    python ci/run_notebooks.py --clear                # back to committed form: no outputs, no injected cell

The chapters are the notebooks `_toc.yml` lists, executed in that order with cwd = their folder (book/),
so relative paths in them mean the same as in Colab and Binder. Each gets the four papermill parameters
budget, device, data and results_dir. Before anything runs, a name a chapter does not declare (papermill
only warns) or a bad value is refused with one line and exit status 2
(resnet_repro.book.notebook_parameters, which each chapter also calls first). The injected-parameters
cell is tagged `remove-cell` so the book hides it.
Every chapter runs even when one fails; the exit status is 1 when any cell raised.

The chapters run in the kernel `resnet-repro`, installed into this interpreter's environment (its
sys.prefix) and bound to this interpreter, the one that has the package: never whatever kernel happens
to be called `python3`.

--jobs N runs up to N chapters at once, each in its own kernel (most of a chapter's time at budget
"results" is starting Python and importing torch). At a training budget the chapters that train run
first, one after another (they share run folders: Figure 6's ResNet-20 is Table 6's), and the others,
which read what they stored, then run N at a time.
"""

from __future__ import annotations

import argparse
import ast
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
import papermill
from book_toc import REPO_ROOT, toc_notebooks
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from resnet_repro.sweeps.chapters import chapter_trains

KERNEL = "resnet-repro"  # the kernel spec the chapters run in, bound to this interpreter (ensure_kernel)
INJECTED_TAG = "injected-parameters"  # papermill's tag on the cell it adds
ERROR_MARKER_TAG = "papermill-error-cell-tag"  # papermill's tag on the "An Exception was encountered" cells
HIDE_TAG = "remove-cell"  # myst-nb leaves cells with this tag out of the page


def bound_here(argv0: str) -> bool:
    """Whether a kernel spec's interpreter is this one: the same file in the same environment's bin/."""
    return os.path.isabs(argv0) and Path(argv0).parent == Path(sys.executable).parent and Path(argv0).exists()


def ensure_kernel(name: str = KERNEL) -> None:
    """Install kernel `name` into this interpreter's environment unless it is there and bound to it.

    Raises SystemExit when a kernel of that name elsewhere (a user-wide one) shadows it."""
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        spec = None
    if spec is None or not bound_here(spec.argv[0]):
        print(f"installing kernel {name!r} for {sys.executable} into {sys.prefix}")
        command = [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", name]
        command += ["--display-name", f"Python ({name})"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        spec = KernelSpecManager().get_kernel_spec(name)
    if not bound_here(spec.argv[0]):
        raise SystemExit(
            f"kernel {name!r} in {spec.resource_dir} runs {spec.argv[0]}, not this interpreter "
            f"{sys.executable}, and is found before the one in {sys.prefix}: remove it "
            f"(jupyter kernelspec remove {name})"
        )


def warm_matplotlib() -> None:
    """Build matplotlib's font cache now, so 'building the font cache' never lands in a chapter's stderr."""
    import matplotlib.font_manager  # noqa: F401  (the import builds the cache)


def absolute(path: str | None) -> str | None:
    """Command-line paths mean the caller's cwd; the notebooks run in book/, so pass them absolute."""
    return None if path is None else str(Path(path).expanduser().resolve())


def hide_injected_cell(notebook: Path) -> None:
    """Tag papermill's injected-parameters cell `remove-cell` so the book does not show it."""
    nb = nbformat.read(notebook, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if INJECTED_TAG in tags and HIDE_TAG not in tags:
            tags.append(HIDE_TAG)
            changed = True
    if changed:
        nbformat.write(nb, notebook)


def clear_notebook(notebook: Path) -> None:
    """Undo an execution: drop outputs, execution counts, injected and error-marker cells, run metadata."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [
        cell for cell in nb.cells if not {INJECTED_TAG, ERROR_MARKER_TAG} & set(cell.metadata.get("tags", []))
    ]
    for cell in nb.cells:
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    nbformat.write(nb, notebook)


def execute(
    notebook: Path, parameters: dict, progress_bar: bool, log_output: bool, timeout: int | None
) -> str:
    """Run one chapter in place; return "" on success, else a one-line description of what failed."""
    try:
        papermill.execute_notebook(
            str(notebook),
            str(notebook),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(notebook.parent),
            progress_bar=progress_bar,
            log_output=log_output,
            execution_timeout=timeout,
        )
    except papermill.PapermillExecutionError as error:
        return f"cell {error.cell_index} (In [{error.exec_count}]) raised {error.ename}: {error.evalue}"
    except Exception as error:  # a kernel that died or never started: still a failed chapter
        return f"{type(error).__name__}: {error}"
    finally:
        if notebook.exists():
            hide_injected_cell(notebook)
    return ""


def check(notebooks: list[Path], parameters: dict) -> str:
    """One line saying what is wrong and what is allowed, or "" when every chapter takes these parameters.

    The names each chapter declares come from its parameters cell (papermill.inspect_notebook); the
    values, with each chapter's defaults for those not given, go through the chapters' own check.
    """
    from resnet_repro.book.notebook_parameters import ParameterError, check_names, check_parameters

    try:
        for notebook in notebooks:
            declared = papermill.inspect_notebook(str(notebook))
            check_names(parameters, declared)
            values = {name: ast.literal_eval(info["default"]) for name, info in declared.items()}
            check_parameters(**{**values, **parameters}, base=notebook.parent)
    except ParameterError as error:
        return str(error)
    return ""


def trains(notebook: Path) -> bool:
    """Whether a chapter trains at a training budget: its ``book.open_chapter`` call names experiments."""
    return bool(chapter_trains(notebook))


def phases(notebooks: list[Path], budget: str) -> list[list[Path]]:
    """The chapters in the order they may run: each phase finishes before the next starts, and the chapters
    of a phase may run at the same time. At a training budget, one phase per training chapter first."""
    if budget == "results":
        return [notebooks]
    training = [notebook for notebook in notebooks if trains(notebook)]
    rest = [notebook for notebook in notebooks if notebook not in training]
    return [[notebook] for notebook in training] + ([rest] if rest else [])


def timed_execute(notebook: Path, parameters: dict, progress_bar: bool, log_output: bool, timeout):
    """execute() and its duration in seconds (for a worker process of the pool)."""
    started = time.perf_counter()
    problem = execute(notebook, parameters, progress_bar, log_output, timeout)
    return problem, time.perf_counter() - started


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", default="results", help="papermill parameter `budget` (default: results)")
    parser.add_argument(
        "--device", default="auto", help='papermill parameter `device`: "auto", "cpu", "cuda"'
    )
    parser.add_argument(
        "--data", default=None, help="papermill parameter `data` (default None: official download)"
    )
    parser.add_argument(
        "--results-dir", default=None, help="papermill parameter `results_dir` (default: the notebooks' own)"
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a papermill parameter, as papermill takes it (VALUE None means None); repeatable",
    )
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="book root holding _toc.yml (default: repo)"
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="run only chapters whose file name contains these"
    )
    parser.add_argument(
        "--timeout", type=int, default=None, help="seconds one cell may run (default: no limit)"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="chapters executed at once, each in its own kernel (default 1)"
    )
    parser.add_argument("--log-output", action="store_true", help="stream the cells' output to this terminal")
    parser.add_argument(
        "--clear", action="store_true", help="strip outputs and injected cells; execute nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    notebooks = toc_notebooks(args.root)
    if args.only:
        notebooks = [nb for nb in notebooks if any(part in nb.name for part in args.only)]
        if not notebooks:
            print(f"no chapter matches {args.only}", file=sys.stderr)
            return 2
    if args.clear:
        for notebook in notebooks:
            clear_notebook(notebook)
            print(f"cleared {notebook}")
        return 0

    parameters = {"budget": args.budget, "device": args.device, "data": args.data}
    if args.results_dir is not None:
        parameters["results_dir"] = args.results_dir
    parameters.update({name: None if value == "None" else value for name, value in args.parameter})
    for name in ("data", "results_dir"):
        if name in parameters:
            parameters[name] = absolute(parameters[name])
    problem = check(notebooks, parameters)
    if problem:
        print(f"run_notebooks.py: {problem}", file=sys.stderr)
        return 2
    if args.log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    ensure_kernel()
    warm_matplotlib()

    jobs = max(1, args.jobs)
    print(
        f"executing {len(notebooks)} chapters with {parameters}" + (f", {jobs} at a time" if jobs > 1 else "")
    )
    failures, started, done = {}, time.perf_counter(), 0

    def report(notebook: Path, problem: str, seconds: float) -> None:
        nonlocal done
        done += 1
        name = notebook.relative_to(args.root)
        if problem:
            failures[name] = problem
            print(f"[{done}/{len(notebooks)}] {name} FAILED after {seconds:.1f} s: {problem}", flush=True)
        else:
            print(f"[{done}/{len(notebooks)}] {name} ok in {seconds:.1f} s", flush=True)

    def run_phase(phase: list[Path], pool: ProcessPoolExecutor | None) -> None:
        if pool is None or len(phase) == 1:
            for notebook in phase:
                print(f"{notebook.relative_to(args.root)} ...", flush=True)
                tty = sys.stderr.isatty()
                report(notebook, *timed_execute(notebook, parameters, tty, args.log_output, args.timeout))
            return
        print(f"{', '.join(str(nb.relative_to(args.root)) for nb in phase)} ...", flush=True)
        running = {
            pool.submit(timed_execute, nb, parameters, False, args.log_output, args.timeout): nb
            for nb in phase
        }
        for future in as_completed(running):
            report(running[future], *future.result())

    # spawn, not fork: a forked copy of this process would share its ZeroMQ state with the kernels' clients
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) if jobs > 1 else None
    try:
        for phase in phases(notebooks, args.budget):
            run_phase(phase, pool)
    finally:
        if pool is not None:
            pool.shutdown()

    total = time.perf_counter() - started
    if failures:
        print(f"\n{len(failures)} of {len(notebooks)} chapters failed ({total:.0f} s); each keeps its error:")
        for name, problem in failures.items():
            print(f"  {name}: {problem}")
        return 1
    print(f"all {len(notebooks)} chapters executed at budget {args.budget!r} in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
