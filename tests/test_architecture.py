"""ARCHITECTURE.md's layers, checked: a module imports only from its own layer or the layers below it, and
no module imports one that imports it back (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "resnet_repro"

# Bottom to top, as ARCHITECTURE.md lists them: each layer is some of the package's folders.
LAYERS = {
    "the paper": ("models", "paper"),
    "runs": ("runs",),
    "training": ("cifar", "imagenet", "gpu", "analyses"),
    "sweeps": ("sweeps",),
    "the book": ("book",),
    "commands": ("commands", "__main__"),
}
LAYER_OF = {folder: rank for rank, folders in enumerate(LAYERS.values()) for folder in folders}
GPU = "gpu"  # the speed paths: other layers import them only inside the function that needs one


def layer(module: str) -> int | None:
    return LAYER_OF.get(module.split(".")[0])


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _nodes(node: ast.AST, into_functions: bool):
    yield node
    for child in ast.iter_child_nodes(node):
        if into_functions or not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _nodes(child, into_functions)


def imports_of(path: Path, top_level_only: bool = False) -> set[str]:
    """The package's modules that ``path`` imports, at the top or (unless ``top_level_only``) in functions."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in _nodes(ast.parse(path.read_text(encoding="utf-8")), into_functions=not top_level_only):
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
FACADES = {"", "models", "imagenet", "book"}  # __init__ files that re-export their modules, nothing more


def test_every_module_sits_in_a_layers_folder():
    strays = [module for module in ALL_MODULES - FACADES if layer(module) is None]
    assert strays == []  # a new module goes into its layer's folder (a new folder: name it here)


def test_modules_import_only_from_their_layer_or_below():
    upward = [
        f"{module} ({list(LAYERS)[layer(module)]}) imports {target} ({list(LAYERS)[layer(target)]})"
        for module, targets in GRAPH.items()
        if module not in FACADES
        for target in targets
        if target not in FACADES and layer(target) > layer(module)
    ]
    assert upward == []


def test_only_the_gpu_folder_imports_the_gpu_speed_paths_at_module_level():
    eager = [
        f"{module_name(path)} imports {target}"
        for path in PACKAGE.rglob("*.py")
        if module_name(path).split(".")[0] != GPU
        for target in imports_of(path, top_level_only=True)
        if target.split(".")[0] == GPU
    ]
    assert eager == []


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
