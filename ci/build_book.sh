#!/usr/bin/env bash
# Builds the book: executes every chapter with papermill, then renders the HTML with Jupyter Book.
#
#   bash ci/build_book.sh              # budget "results": draw every figure from data/results, train nothing
#   bash ci/build_book.sh smoke        # train the tiny smoke runs first (or BUDGET=smoke), then build
#   DATA=../shared/data/cifar10-jpeg.tar.gz RESULTS_DIR=/tmp/r bash ci/build_book.sh smoke
#
# Environment: BUDGET (results|smoke|quick|full), DEVICE (auto|cpu|cuda), DATA and RESULTS_DIR (the
# notebooks' papermill parameters; RESULTS_DIR defaults to the book's data/results, where training budgets
# add their runs), BOOK_ROOT (a copy of the book to build instead of this checkout, as the tests do), JOBS
# (chapters executed at once; default: the CPU count, at most 4; chapters that train always run one at a
# time). The checkout stays as committed: the chapters are executed in a copy, _build/source/ (ignored),
# and the HTML is built from it into _build/html/. Only a training budget writes outside _build/: its runs.
# Warnings fail the build (-W): a missing figure or a broken cross-reference is an error, not a log line.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "${BOOK_ROOT:-$repo}" && pwd)"
budget="${1:-${BUDGET:-results}}"
started=$SECONDS

echo "== environment"
bash "$repo/ci/setup.sh"  # installs what is missing (requirements with ci/constraints.txt, the package)
python="${PYTHON:-python3}"  # the interpreter setup.sh installed into

echo "== vendoring the pages' JavaScript (widgets, MathJax)"
bash "$repo/ci/vendor_js.sh" "$root/_build/vendored-js"

echo "== copying the book's sources to $root/_build/source"
"$python" "$repo/ci/stage_book.py" "$root" "$root/_build/source" --widgets "$root/_build/vendored-js"

echo "== executing the chapters at budget '$budget'"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 1)}"
[ "$jobs" -gt 4 ] && [ -z "${JOBS:-}" ] && jobs=4  # each chapter is a kernel with torch loaded
run_args=(--root "$root/_build/source" --budget "$budget" --device "${DEVICE:-auto}" --jobs "$jobs")
run_args+=(--results-dir "${RESULTS_DIR:-$root/data/results}")
[ -n "${DATA:-}" ] && run_args+=(--data "$DATA")
"$python" "$repo/ci/run_notebooks.py" "${run_args[@]}"

echo "== building the HTML"
# --all: re-read every page, so a warning from an unchanged page still fails this build
jupyter_book=(-c 'from jupyter_book.cli.main import main; main(prog_name="jupyter-book")')  # this interpreter's
"$python" "${jupyter_book[@]}" build "$root/_build/source" --path-output "$root" \
  --all --warningiserror --nitpick --keep-going

echo "== done in $((SECONDS - started)) s: open $root/_build/html/index.html"
echo "   check it in a browser: python3 ci/browser_check.py --root $root"
