"""ARCHITECTURE.md's layers, checked: a module imports only from its own layer or the layers below it, and
no module imports one that imports it back (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "resnet_repro"

# Bottom to top, as ARCHITECTURE.md lists them.
LAYERS = {
    "foundation": "paper schedule models models.blocks models.cifar models.imagenet flops data augment "
    "evaluation runlock config results weights parameters chapters",
    "training": "runtime training_loop fast_step trainer multirun stacked devices compile_cache experiments "
    "preflight lesion landscape cli_types imagenet.config imagenet.data imagenet.distributed imagenet.train",
    "reading": "cost_tables provenance figures signals claims precision",
    "pages": "notes tables plots book explorer why",
    "commands": "cli analyze __main__ imagenet.cli",
}
LAYER_OF = {module: rank for rank, names in enumerate(LAYERS.values()) for module in names.split()}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, at the top or inside functions."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("resnet_repro"):
            base = node.module.split(".")[1:]
        else:
            continue
        for alias in node.names:  # `from . import plots` names a module, `from .plots import show` does not
            candidate = ".".join([*base, alias.name])
            found.add(candidate if candidate in ALL_MODULES else ".".join(base))
    return {module for module in found if module and module != name}


ALL_MODULES = {module_name(path) for path in PACKAGE.rglob("*.py")}
GRAPH = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}
FACADES = {"", "models", "imagenet"}  # package __init__ files: they re-export their modules, nothing more


def test_every_module_has_a_layer():
    assert sorted(ALL_MODULES - FACADES - set(LAYER_OF)) == []  # a new module: name its layer here and there


def test_modules_import_only_from_their_layer_or_below():
    upward = [
        f"{module} ({list(LAYERS)[LAYER_OF[module]]}) imports {target} ({list(LAYERS)[LAYER_OF[target]]})"
        for module, targets in GRAPH.items()
        if module not in FACADES
        for target in targets
        if target in LAYER_OF and LAYER_OF[target] > LAYER_OF[module]
    ]
    assert upward == []


def test_no_module_imports_one_that_imports_it_back():
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo += [t for t in GRAPH.get(module, ()) if t not in FACADES]
        return False

    cycles = [(a, b) for a, targets in GRAPH.items() for b in targets if b not in FACADES and reaches(b, a)]
    assert cycles == []
