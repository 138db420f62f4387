"""The book's pages in reading order, read from `_toc.yml` (one reader for every ci script and test)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE_SUFFIXES = (".ipynb", ".md")


def toc_docnames(root: Path = REPO_ROOT) -> list[str]:
    """Docnames ("book/01_introduction") in the order the table of contents lists them."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            # parts hold chapters, chapters may hold sections
            walk(entry.get("chapters", []))
            walk(entry.get("sections", []))

    walk(toc.get("chapters", []))
    walk(toc.get("parts", []))
    return [str(Path(name).with_suffix("")) if Path(name).suffix in PAGE_SUFFIXES else name for name in names]


def toc_files(root: Path = REPO_ROOT) -> list[Path]:
    """Source file of every page in the table of contents; a listed page with no file raises."""
    root = Path(root)
    files = []
    for name in toc_docnames(root):
        found = [root / f"{name}{suffix}" for suffix in PAGE_SUFFIXES if (root / f"{name}{suffix}").is_file()]
        if not found:
            raise FileNotFoundError(f"_toc.yml lists {name!r} but neither {name}.ipynb nor {name}.md exists")
        files.append(found[0])
    return files


def toc_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """The chapters that papermill executes: the .ipynb pages of the table of contents."""
    return [path for path in toc_files(root) if path.suffix == ".ipynb"]
