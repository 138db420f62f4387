"""Write ci/constraints.txt: the installed version of everything requirements.txt pulls in.

    python ci/freeze_constraints.py           # after upgrading the environment on purpose

`pip freeze` would also pin whatever else the machine has; this walks only the dependency closure of
requirements.txt (extras and environment markers evaluated for this interpreter), so the file holds
one set of versions known to resolve and work together for the book build and the tests.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# Versions that resolve together for the book build and the tests, frozen from a working environment
# by `python ci/freeze_constraints.py` (the dependency closure of requirements.txt). Use as
#   pip install -r requirements.txt -c ci/constraints.txt -e .
# Requirement ranges stay in requirements.txt; Colab and Binder do not use this file. A CPU-only torch
# from https://download.pytorch.org/whl/cpu (2.14.1+cpu) satisfies torch==2.14.1.
"""


def requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def closure(roots: list[Requirement]) -> dict[str, str]:
    """Canonical name -> installed version for `roots` and everything they require, transitively."""
    pinned: dict[str, str] = {}
    todo = [(requirement, set(requirement.extras)) for requirement in roots]
    seen: set[tuple[str, frozenset]] = set()
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is required but not installed: install requirements.txt first")
        pinned[name] = dist.version
        for child in map(Requirement, dist.requires or []):
            environments = [{"extra": extra} for extra in extras or {""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                todo.append((child, set(child.extras)))
    return pinned


def main() -> None:
    roots = requirements(REPO_ROOT / "requirements.txt")
    own = canonicalize_name("resnet-repro")
    pinned = {name: version for name, version in closure(roots).items() if name != own}
    lines = [f"{name}=={version.split('+')[0]}" for name, version in sorted(pinned.items())]
    (REPO_ROOT / "ci" / "constraints.txt").write_text(HEADER + "\n".join(lines) + "\n")
    print(f"pinned {len(lines)} packages in ci/constraints.txt")


if __name__ == "__main__":
    main()
