"""The book's own namespace, as ``d2l`` is Dive into Deep Learning's: what a chapter calls to train its
runs, draw its figures with what they show, and display tables, Markdown and glued numbers.

A chapter imports this and the modules it reads from (``figure_runs``, ``claims``, ``notes``, ``tables``);
the functions below pick the runs (``figure_runs.select_figure``), draw (``plots``) and say which budget,
data and device are shown, or that no run exists yet (``notes``).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from resnet_repro.book import figure_runs, notes, plots, readings
from resnet_repro.book.notebook_parameters import READ_ONLY, check_parameters
from resnet_repro.book.tables import (  # the chapters call them as book.<name>
    DISPLAY_NAMES,  # noqa: F401
    for_display,  # noqa: F401
    markdown_table,
    shared_columns,  # noqa: F401
)


def open_chapter(
    budget: str,
    device: str,
    data: str | None,
    results_dir: str | os.PathLike,
    trains: Sequence[str] = (),
) -> list[Path]:
    """A chapter's first call, right after its imports: check its papermill parameters (a bad name or value
    stops the chapter with one line saying what is allowed), then, at a training budget, train the runs of
    the experiments ``trains`` names (finished runs are skipped) and return their folders; at budget
    "results", or where the chapter trains nothing, []. ``ci/run_notebooks.py`` reads ``trains`` from this
    call in the chapter (``notebook_parameters.chapter_trains``) to run the training chapters first."""
    check_parameters(budget, device, data, results_dir)
    if budget == READ_ONLY or not trains:
        return []
    from resnet_repro.sweeps.experiments import (
        reproduce,  # the trainer's imports (torch's data pipeline) only when training
    )

    folders: list[Path] = []
    for experiment in trains:
        folders += reproduce(experiment, budget=budget, data=data, results_dir=results_dir, device=device)
    return folders


# ---------------------------------------------------------------------------------------------------------
# Displaying in a notebook
# ---------------------------------------------------------------------------------------------------------


def show(fig: Figure) -> None:
    """Display a figure once (closing it, so the inline backend does not draw it a second time), rendered
    in the book's style it was drawn in."""
    from IPython.display import display

    with plots.book_style():
        display(fig)
    plt.close(fig)


def show_markdown(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's glue for numbers the prose cites; a no-op where myst-nb is absent (e.g. on Colab)."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if isinstance(value, numbers.Integral):
        value = int(value)  # numpy scalars' repr ("np.int64(5)") would reach the page otherwise
    elif isinstance(value, numbers.Real):
        value = float(value)
    myst_glue(name, value, display=display)


# ---------------------------------------------------------------------------------------------------------
# The paper's figures on the pages: pick the runs, draw, and say what is shown
# ---------------------------------------------------------------------------------------------------------


def show_figure1(runs: pd.DataFrame, histories: pd.DataFrame) -> figure_runs.Selection:
    """Draw Figure 1 when its runs exist (the captioned cell shows only the figure; see figure_notes)."""
    selection = figure_runs.select_figure(runs, "fig1")
    if not selection.empty:
        show(plots.stamp(plots.figure1(figure_runs.rows_of(histories, selection)), [selection]))
    return selection


FIGURE6_PANELS = {"fig6_plain": "plain nets", "fig6_resnet": "ResNets", "fig6_1202": "ResNet-110 vs 1202"}


def _has_1202(selection: figure_runs.Selection) -> bool:
    return any(arch == "resnet1202" for arch, _ in selection.present)


def show_figure6(runs: pd.DataFrame, histories: pd.DataFrame) -> dict[str, figure_runs.Selection]:
    """Draw Figure 6's panels that have runs (the right one only when ResNet-1202 was trained)."""
    selections = {figure: figure_runs.select_figure(runs, figure) for figure in FIGURE6_PANELS}
    shown = {
        figure: selection
        for figure, selection in selections.items()
        if not selection.empty and (figure != "fig6_1202" or _has_1202(selection))
    }
    if shown:
        panels = {FIGURE6_PANELS[f]: figure_runs.rows_of(histories, s) for f, s in shown.items()}
        show(plots.stamp(plots.curves_figure(panels), shown.values()))
    return selections


def show_figure7(runs: pd.DataFrame, layer_std: pd.DataFrame) -> figure_runs.Selection:
    """Draw Figure 7 when the runs have layer responses."""
    selection = figure_runs.select_figure(runs, "fig7")
    rows = figure_runs.rows_of(layer_std, selection)
    if not rows.empty:
        show(plots.stamp(plots.figure7(rows), [selection]))
    return selection


def _deepest_pair(found: dict) -> dict:
    """The surfaces of the deepest depth that has both a plain net and a ResNet (else all of them)."""
    for depth in (110, 56, 20):
        pair = {name: f for name, f in found.items() if name in (f"plain-{depth}", f"ResNet-{depth}")}
        if len(pair) == 2:
            return dict(sorted(pair.items(), key=lambda item: not item[0].startswith("plain")))
    return found


LANDSCAPE_VIEWS = {
    "contours": plots.landscape_contours,
    "slices": plots.landscape_slices,
    "surface": lambda found: plots.landscape_surface(_deepest_pair(found)),  # the deepest pair only
}


def show_landscape(runs: pd.DataFrame, landscape: pd.DataFrame, view: str) -> dict:
    """Draw one view of the loss landscapes (LANDSCAPE_VIEWS) of the nets that have a landscape.csv;
    returns them by label (readings.Landscape), empty when there are none."""
    selection = figure_runs.select_figure(runs, "landscape")
    found = readings.landscapes(landscape, selection)
    if found:
        show(plots.stamp(LANDSCAPE_VIEWS[view](found), [selection]))
    return found


def figure_notes(selections: dict[str, figure_runs.Selection]) -> str:
    """Markdown under a figure: which budget, data and device it shows (once when every panel shares them),
    and per panel what is missing, with the command that trains it."""
    panels = {
        figure: selection
        for figure, selection in selections.items()
        # the optional right panel: not mentioned until ResNet-1202 is trained
        if figure != "fig6_1202" or _has_1202(selection)
    }

    def prefix(figure: str) -> str:
        return f"*{figure_runs.sentence_case(FIGURE6_PANELS[figure])}:* " if figure in FIGURE6_PANELS else ""

    shown = {notes.shown_note(s) for s in panels.values() if not s.empty}
    if len(panels) > 1 and len(shown) == 1 and not any(s.empty for s in panels.values()):
        gaps = [prefix(f) + notes.gaps_note(s, f) for f, s in panels.items() if notes.gaps_note(s, f)]
        return "\n\n".join([shown.pop(), *gaps])
    return "\n\n".join(prefix(f) + notes.provenance_note(s, f) for f, s in panels.items())


# ---------------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------------


def show_table(table: pd.DataFrame, formats: dict | None = None) -> None:
    show_markdown(markdown_table(table, formats))


def show_side_by_side(tables: dict[str, str]) -> None:
    """HTML tables (e.g. ``DataFrame.to_html()``) next to each other, each under its title."""
    from IPython.display import HTML, display

    columns = "".join(f"<div><p><b>{title}</b></p>{html}</div>" for title, html in tables.items())
    display(
        HTML(f'<div style="display:flex;flex-wrap:wrap;gap:2.5em;align-items:flex-start">{columns}</div>')
    )
