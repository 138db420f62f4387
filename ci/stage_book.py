"""Copy a book's sources to the folder it is executed and built from, so the checkout stays as committed.

    python ci/stage_book.py ROOT DEST [--widgets DIR]

Copies ROOT's `_config.yml`, `_toc.yml`, `_ext/` and `book/` (without build output, vendored JavaScript,
checkpoints or caches) into DEST, replacing what an earlier build left there. ci/build_book.sh stages the
checkout into `_build/source/` (git-ignored), executes the chapters there and builds the HTML from them:
the committed `book/*.ipynb`, which the Colab and Binder buttons open, never get outputs. `--widgets DIR`
copies the JavaScript that ci/vendor_js.sh fetched to DEST/book/_widgets, where `_config.yml` looks.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

FILES = ("_config.yml", "_toc.yml")
FOLDERS = ("_ext", "book")
SKIP = ("_build", "_widgets", ".ipynb_checkpoints", "__pycache__", "*.pyc")
WIDGETS = Path("book") / "_widgets"  # html_static_path in _config.yml


def stage(root: Path, dest: Path, widgets: Path | None = None) -> Path:
    """DEST holding a fresh copy of ROOT's book sources (and the vendored JavaScript, when given)."""
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if root == dest or root in dest.parents and dest.relative_to(root).parts[0] != "_build":
        raise ValueError(f"the copy must go outside the book's sources (or under its _build/): {dest}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(root / name, dest / name)
    for name in FOLDERS:
        shutil.copytree(root / name, dest / name, ignore=shutil.ignore_patterns(*SKIP))
    if widgets is not None:
        shutil.copytree(widgets, dest / WIDGETS)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", type=Path, help="the book's sources (holding _toc.yml)")
    parser.add_argument("dest", type=Path, help="where to copy them (replaced)")
    parser.add_argument("--widgets", type=Path, default=None, help="vendored JavaScript (ci/vendor_js.sh)")
    args = parser.parse_args(argv)
    dest = stage(args.root, args.dest, args.widgets)
    print(f"copied the book's sources to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
