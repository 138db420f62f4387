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

# Column headers as the pages show them; the tables themselves keep snake_case keys.
DISPLAY_NAMES = {
    "source": "paper's figure/table",
    "paper": "paper's number",
    "status": "holds?",
    "test_error": "test error (%)",
    "top1_error": "top-1 error (%)",
    "top5_error": "top-5 error (%)",
    "paper_params_m": "paper params (M)",
    "our_params_m": "our params (M)",
    "paper_error": "paper error (%)",
    "paper_mean_std": "paper mean ± std",
    "our_error": "our error (%)",
    "our_std": "our std",
    "our_budget": "our budget",
    "added_over_plain": "added over plain",
    "wall_time_min": "wall time (min)",
    "train_time_min": "train time (min)",
    "dataset_sha256": "dataset sha256",
}


def for_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the headers a reader sees (DISPLAY_NAMES)."""
    return table.rename(columns=DISPLAY_NAMES)


def markdown_table(table: pd.DataFrame, formats: dict | None = None) -> str:
    """A pipe table for Markdown (so code and bold in cells render), numbers formatted per column (``formats``
    keyed by the table's columns), headers as DISPLAY_NAMES says."""
    formats = formats or {}

    def cell(column, value) -> str:
        if not isinstance(value, str) and pd.isna(value):
            return "–"
        text = formats[column].format(value) if column in formats else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    headers = [str(DISPLAY_NAMES.get(column, column)) for column in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row, strict=True)) + " |")
    return "\n".join(lines)


def shared_columns(table: pd.DataFrame, keep=()) -> tuple[pd.DataFrame, str]:
    """The table without the columns whose value is the same in every row (except ``keep``), and a
    Markdown sentence naming those values once, so a long table does not repeat them row after row."""
    if len(table) < 2:
        return table, ""
    shared = [c for c in table.columns if c not in keep and table[c].astype(str).nunique() == 1]
    if not shared:
        return table, ""
    values = "; ".join(
        f"{DISPLAY_NAMES.get(column, column)} **{table[column].iloc[0]}**" for column in shared
    )
    return table.drop(columns=shared), f"Every run: {values}."


def show_table(table: pd.DataFrame, formats: dict | None = None) -> None:
    show_markdown(markdown_table(table, formats))


def show_side_by_side(tables: dict[str, str]) -> None:
    """HTML tables (e.g. ``DataFrame.to_html()``) next to each other, each under its title."""
    from IPython.display import HTML, display

    columns = "".join(f"<div><p><b>{title}</b></p>{html}</div>" for title, html in tables.items())
    display(
        HTML(f'<div style="display:flex;flex-wrap:wrap;gap:2.5em;align-items:flex-start">{columns}</div>')
    )
