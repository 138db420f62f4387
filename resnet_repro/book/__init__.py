"""The book's pages: which runs a figure shows, whether each claim holds, the readings, prose, tables,
plots and widgets. ``from resnet_repro import book`` is the chapters' namespace: ``book.show_figure1(...)``,
``book.glue(...)``, ``book.open_chapter(...)`` are `page`'s, loaded on first use so that the commands can
import a page module (claims, notes) without drawing in matplotlib."""


def __getattr__(name: str):
    from importlib import import_module
    from pathlib import Path

    if Path(__file__).with_name(f"{name}.py").exists():
        raise AttributeError(name)  # a page module not imported yet: the import system loads it itself

    page = import_module(f"{__name__}.page")  # not `from . import page`: that would ask this function again
    if name.startswith("_") or not hasattr(page, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(page, name)
