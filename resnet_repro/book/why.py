"""The chapter "Why do residual nets train?": gradient norms beside layer responses (section 4.1), the
lesion study (test error with one block removed), and a slider over the removed block.

Like ``plots``, each ``*_figure`` takes the rows it draws and returns a Figure; the ``show_*`` helpers pick
the runs, draw and return the selection; the verdicts are ``claims.check_gradients`` and
``claims.check_lesion``. The slider is pre-rendered like the depth explorer (``explorer``): a ``Stack`` of
``Output`` widgets ``jslink``ed to an ``IntSlider``, so it works on the static page without a kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Image, Markdown
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from resnet_repro.analyses import lesion
from resnet_repro.book import claims, figure_runs, notes, page, plots, readings
from resnet_repro.book.cost_tables import cifar_macs
from resnet_repro.book.explorer import figure_png
from resnet_repro.models import build_cifar

ITERATION_LINES = 4  # iterations drawn per net: initialisation, the first eval point, mid-training, the end
LESION_DEPTHS = (56, 110)  # a panel per depth with a lesion.csv; the verdict reads depth 56
TEST_IMAGES = 10_000


# ---------------------------------------------------------------------------------------------------------
# Section 4.1: gradient norms along training, layer responses after it
# ---------------------------------------------------------------------------------------------------------


def chosen_iterations(iterations, count: int = ITERATION_LINES) -> list[int]:
    """Initialisation, the first eval point, the one nearest mid-training and the last (fewer if fewer)."""
    recorded = sorted({int(i) for i in iterations})
    if len(recorded) <= count:
        return recorded
    last = recorded[-1]
    middle = min(recorded, key=lambda i: (abs(i - last / 2), i))
    return sorted(dict.fromkeys([recorded[0], recorded[1], middle, last]))


@plots.book_style()
def gradient_figure(grad_norms: pd.DataFrame, layer_std: pd.DataFrame, nets) -> Figure:
    """One column per net: the gradient norm of each 3x3 layer's response at a few iterations (top, log
    scale; lighter = earlier) and the trained net's response std per layer, Figure 7's data (bottom)."""
    nets = [
        n for n in nets if not grad_norms[(grad_norms.arch == n[0]) & (grad_norms.shortcut == n[1])].empty
    ]
    fig, axes = plt.subplots(2, len(nets), figsize=(2.7 * len(nets), 5.4), squeeze=False, sharey="row")
    for column, (arch, shortcut) in enumerate(nets):
        top, bottom = axes[0][column], axes[1][column]
        rows = grad_norms[(grad_norms.arch == arch) & (grad_norms.shortcut == shortcut)]
        mean = rows.groupby(["iteration", "layer"]).grad_norm.mean()
        iterations = chosen_iterations(rows.iteration)
        palette = sns.color_palette("crest", len(iterations))
        for color, iteration in zip(palette, iterations, strict=True):
            line = mean.loc[iteration]
            name = "initialisation" if iteration == 0 else f"iteration {iteration:,}"
            top.plot(line.index, line.values, color=color, linewidth=1.6, marker=".", label=name)
        layers = sorted(set(rows.layer))
        for edge in (layers[: readings.EDGE_LAYERS], layers[-readings.EDGE_LAYERS :]):  # the layers compared
            top.axvspan(edge[0] - 0.5, edge[-1] + 0.5, color="0.9", zorder=0)
        top.set_yscale("log")
        top.set_title(figure_runs.label(arch, shortcut))
        std = layer_std[(layer_std.arch == arch) & (layer_std.shortcut == shortcut)]
        std = std.groupby("layer")["std"].mean()
        color = plots.net_colors([figure_runs.label(arch, shortcut)])[figure_runs.label(arch, shortcut)]
        bottom.plot(std.index, std.values, color=color, linewidth=1.6, marker=".")
        bottom.set_xlabel("layer index")
        for ax in (top, bottom):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(left=0)
    axes[0][0].legend(fontsize="x-small", loc="best")  # the same iterations' shades in every panel
    axes[0][0].set_ylabel("gradient norm at the layer")
    axes[1][0].set_ylabel("response std (trained)")
    stds = [line.get_ydata() for ax in axes[1] for line in ax.get_lines()]
    if stds and max(map(max, stds)) > plots.LOG_SCALE_SPREAD * min(map(np.median, stds)):
        axes[1][0].set_yscale("log")  # one net's responses dwarf the others' (e.g. a barely trained net)
    else:
        axes[1][0].set_ylim(bottom=0)
    fig.tight_layout()
    return fig


def show_gradients(
    runs: pd.DataFrame, grad_norms: pd.DataFrame, layer_std: pd.DataFrame
) -> figure_runs.Selection:
    """Draw the gradient figure for the nets that have gradient norms; returns the selection."""
    selection = figure_runs.select_figure(runs, "gradients")
    rows = figure_runs.rows_of(grad_norms, selection)
    if not rows.empty:
        fig = gradient_figure(rows, figure_runs.rows_of(layer_std, selection), selection.nets)
        page.show(plots.stamp(fig, [selection]))
    return selection


def gradient_notes(selection: figure_runs.Selection, grad_norms: pd.DataFrame) -> str:
    """Which runs the gradient figure shows, and which have no gradient norms (and how to get them)."""
    if selection.empty:
        return notes.missing_note("gradients")
    note = notes.provenance_note(selection, "gradients")
    have = set(figure_runs.rows_of(grad_norms, selection).run)
    without = selection.runs[~selection.runs.run.isin(have)]
    if not without.empty:
        names = ", ".join(
            figure_runs.label(a, s) for a, s in zip(without.arch, without.shortcut, strict=True)
        )
        runs, them = ("this run", "it") if len(without) == 1 else ("these runs", "them")
        note += (
            f" **No gradient norms recorded** for {names}: {runs} finished before gradient norms were "
            f"recorded; train {them} again with `--force` to get them."
        )
    return note


# ---------------------------------------------------------------------------------------------------------
# The lesion study
# ---------------------------------------------------------------------------------------------------------


def lesion_pairs(effects: dict[str, readings.LesionEffect]) -> dict[int, dict[str, readings.LesionEffect]]:
    """The nets with lesions, grouped by depth (ResNet first), for the depths of LESION_DEPTHS."""
    pairs: dict[int, dict[str, readings.LesionEffect]] = {}
    for depth in LESION_DEPTHS:
        found = {name: e for name, e in effects.items() if name in (f"ResNet-{depth}", f"plain-{depth}")}
        if found:
            pairs[depth] = dict(sorted(found.items(), key=lambda item: item[0].startswith("plain")))
    return pairs


def _stage_starts(depth: int) -> list[int]:
    n = (depth - 2) // 6
    return [n + 1, 2 * n + 1]  # the first blocks of stages 2 and 3: they halve the map, double the filters


@plots.book_style()
def lesion_figure(pairs: dict[int, dict[str, readings.LesionEffect]]) -> Figure:
    """Test error with one block removed against the block's position, one panel per depth. Dashed: the
    intact nets; dotted lines: the shape-changing blocks, where a plain net has no point."""
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.2 * len(pairs), 4.0), squeeze=False)
    for ax, (depth, effects) in zip(axes[0], pairs.items(), strict=True):
        colors = plots.net_colors(effects)
        for name, effect in effects.items():
            marker = "s" if name.startswith("plain") else "o"
            blocks = range(1, 3 * (depth - 2) // 6 + 1)  # NaN where a block cannot go: the line breaks there
            table = effect.table.set_index("block").reindex(blocks).reset_index()
            ax.plot(table.block, table.test_error, marker=marker, markersize=4, linewidth=1.2,
                    color=colors[name], label=f"{name} without one block")  # fmt: skip
            ax.axhline(effect.intact, color=colors[name], linestyle="--", linewidth=1.0,
                       label=f"{name} intact ({effect.intact:.2f}%)")  # fmt: skip
        for start in _stage_starts(depth):
            ax.axvline(start, color="0.6", linestyle=":", linewidth=1.0)
        ax.axhline(readings.chance_error(), color="0.4", linestyle=":", linewidth=1.0, label="chance (90%)")
        ax.set_xlim(0.5, 3 * (depth - 2) // 6 + 0.5)
        ax.set_ylim(0, 100)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("removed block (position in the net; dotted: the shape changes)")
        ax.set_ylabel("test error (%)")
        ax.set_title(f"{depth} layers: one block removed at a time")
        # Below the axes: inside, any corner hides points (the ResNet's worst removal sits mid-right).
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def show_lesions(runs: pd.DataFrame, lesions: pd.DataFrame) -> figure_runs.Selection:
    """Draw the lesion figure for the nets with a lesion.csv; returns the selection."""
    selection = figure_runs.select_figure(runs, "lesion")
    pairs = lesion_pairs(readings.lesion_effects(lesions, selection))
    if pairs:
        page.show(plots.stamp(lesion_figure(pairs), [selection]))
    return selection


def lesion_passes(arch: str) -> float:
    """Passes over the test set that `analyze lesion` makes for a net: the intact one, plus for each removable
    block the part of the net from that block on."""
    with torch.device("meta"):
        model = build_cifar(arch)
    sites = lesion.sites(model)
    return 1 + sum((len(sites) - site.block + 1) / len(sites) for site in sites if site.removable)


def lesion_times(lesions: pd.DataFrame, selection: figure_runs.Selection) -> pd.DataFrame:
    """Per net with a lesion.csv: seconds `analyze lesion` computed (mean over seeds), device, precision."""
    rows = figure_runs.rows_of(lesions, selection)
    if rows.empty:
        return pd.DataFrame(columns=["arch", "shortcut", "label", "seconds", "device", "amp"])
    per_run = rows.groupby(["arch", "shortcut", "run"], as_index=False).agg(
        seconds=("seconds", "sum"), device=("device", "first"), amp=("amp", "first")
    )
    table = per_run.groupby(["arch", "shortcut"], as_index=False, sort=False).agg(
        seconds=("seconds", "mean"), device=("device", "first"), amp=("amp", "first")
    )
    table.insert(
        2, "label", [figure_runs.label(a, s) for a, s in zip(table.arch, table.shortcut, strict=True)]
    )
    order = {net: i for i, net in enumerate(selection.nets)}  # the figure's order
    keys = [order[net] for net in zip(table.arch, table.shortcut, strict=True)]
    return table.iloc[np.argsort(keys, kind="stable")].reset_index(drop=True)


# When no lesion.csv says how fast this machine is: ResNet-56's 27 lesions on the 10,000 test images took
# about 710 s on a 2-core AMD EPYC in bf16, shared with a training run (measured on 2,000 images, x5).
REFERENCE_TIME = ("resnet56", 710.0, "a 2-core AMD EPYC (bf16) shared with a training run")


def estimated_seconds(arch: str, times: pd.DataFrame) -> tuple[float, str]:
    """How long `analyze lesion` would take for `arch`, and on what: scaled by passes x multiply-adds from the
    nets measured here (their lesion.csv), else from REFERENCE_TIME."""
    if times.empty:
        measured, seconds, where = REFERENCE_TIME
        return seconds * lesion_passes(arch) * cifar_macs(arch) / (
            lesion_passes(measured) * cifar_macs(measured)
        ), where
    work = sum(lesion_passes(a) * cifar_macs(a) for a in times.arch)
    where = " / ".join(dict.fromkeys(times.device)) + " at the speed measured above"
    return float(times.seconds.sum() * lesion_passes(arch) * cifar_macs(arch) / work), where


def lesion_notes(selection: figure_runs.Selection, lesions: pd.DataFrame) -> str:
    """Markdown under the lesion figure: which runs, the check that the intact net reproduces the run's
    recorded error, how long each lesion study took, and what is missing with the command for it."""
    if selection.empty:
        return notes.missing_note("lesion")
    parts = [notes.shown_note(selection)]
    effects = readings.lesion_effects(lesions, selection)
    times = lesion_times(lesions, selection).set_index("label")
    recorded = figure_runs.net_results(selection).set_index("label").test_mean
    for name, effect in effects.items():
        took = times.loc[name]
        parts.append(
            f"{name}: intact {effect.intact:.2f}% from the stored weights ({took.amp}; the run recorded "
            f"{recorded[name]:.2f}% at the end of training); {len(effect.table)} lesions in "
            f"{notes.minutes(took.seconds)} on {took.device}."
        )
    optional = figure_runs.net("resnet110")
    needed = [n for n in selection.nets if figure_runs.label(*n) not in effects and n != optional]
    if needed:
        estimates = []
        for arch, shortcut in needed:
            name = figure_runs.label(arch, shortcut)
            estimate, where = estimated_seconds(arch, lesion_times(lesions, selection))
            passes = f"{lesion_passes(arch):.0f} passes over the test set"
            when = f"about {notes.minutes(estimate)} on {where}, {passes}"
            estimates.append(
                f"{name} ({when})" if (arch, shortcut) in selection.present else f"{name} (no run yet)"
            )
        command = figure_runs.analyze_command(selection, [figure_runs.label(*n) for n in needed], "lesion")
        parts.append(f"**No lesion yet** for {', '.join(estimates)}: {command}.")
    if figure_runs.label(*optional) not in effects:
        parts.append(f"{figure_runs.label(*optional)} is added when it has a run and a lesion.csv.")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# The slider: pick the removed block, see each class's error
# ---------------------------------------------------------------------------------------------------------


@dataclass
class LesionExplorer:
    widget: widgets.Widget
    sliders: dict[int, widgets.IntSlider]  # depth -> slider over the removed block (0: none)
    stacks: dict[int, widgets.Stack]  # depth -> Stack; child k shows the nets without block k
    links: list  # browser-side links: the slider works without a kernel


def class_errors(lesions: pd.DataFrame, arch: str, shortcut: str) -> pd.DataFrame:
    """Per block (0 = intact): name, changes_shape, test_error and each class's error (mean over seeds)."""
    rows = lesions[(lesions.arch == arch) & (lesions.shortcut == shortcut)]
    classes = lesion.class_columns(rows)
    return rows.groupby(["block", "name", "changes_shape"], as_index=False)[["test_error", *classes]].mean()


@plots.book_style()
def class_figure(depth: int, block: int, tables: dict[str, pd.DataFrame]) -> Figure:
    """Each class's test error with block `block` removed (colour) against the intact net (grey), one panel
    per net; a panel says so where the block cannot be removed."""
    fig, axes = plt.subplots(1, len(tables), figsize=(5.0 * len(tables), 3.3), squeeze=False, sharey=True)
    for ax, (name, table) in zip(axes[0], tables.items(), strict=True):
        classes = lesion.class_columns(table)
        intact = table[table.block == 0].iloc[0]
        x = np.arange(len(classes))
        ax.bar(x - 0.2, intact[classes].astype(float), width=0.4, color="0.75", label="intact")
        removed = table[table.block == block]
        if block == 0:
            title = f"{name}, intact: {intact.test_error:.2f}%"
        elif removed.empty:
            title = f"{name}: block {block} changes the shape,\nno identity can replace it"
        else:
            row = removed.iloc[0]
            color = plots.net_colors([name])[name]
            ax.bar(
                x + 0.2, row[classes].astype(float), width=0.4, color=color, label=f"without {row['name']}"
            )
            title = f"{name} without block {block} ({row['name']}):\n"
            title += f"{row.test_error:.2f}% (intact {intact.test_error:.2f}%)"
        ax.set_title(title, fontsize=9)
        ax.set_xticks(x, [c.removeprefix(lesion.CLASS_PREFIX) for c in classes], rotation=45, ha="right",
                      fontsize=8)  # fmt: skip
        ax.set_ylim(0, 100)
        ax.legend(fontsize="x-small", loc="upper left")
    axes[0][0].set_ylabel("test error of the class (%)")
    fig.tight_layout()
    return fig


def lesion_explorer(runs: pd.DataFrame, lesions: pd.DataFrame) -> LesionExplorer | None:
    """One slider per depth with lesions (0 = nothing removed, k = block k removed), linked in the browser
    to pre-rendered per-class error charts of the ResNet and the plain net of that depth."""
    selection = figure_runs.select_figure(runs, "lesion")
    rows = figure_runs.rows_of(lesions, selection)
    pairs = lesion_pairs(readings.lesion_effects(lesions, selection))
    if not pairs:
        return None
    sliders, stacks, links, boxes = {}, {}, [], []
    for depth, effects in pairs.items():
        tables = {name: class_errors(rows, e.arch, e.shortcut) for name, e in effects.items()}
        blocks = 3 * (depth - 2) // 6
        views = []
        for block in range(blocks + 1):
            view = widgets.Output()
            view.append_display_data(Image(figure_png(class_figure(depth, block, tables))))
            views.append(view)
        slider = widgets.IntSlider(value=0, min=0, max=blocks, description="block removed")
        slider.style.description_width = "initial"
        slider.layout.width = "90%"
        stack = widgets.Stack(views, selected_index=0)
        links.append(widgets.jslink((slider, "value"), (stack, "selected_index")))
        heading = widgets.HTML(
            f"<b>{' and '.join(effects)}</b>: move the slider to remove block 1 to {blocks} "
            "(0: nothing removed)."
        )
        sliders[depth], stacks[depth] = slider, stack
        boxes.append(widgets.VBox([heading, slider, stack]))
    return LesionExplorer(widgets.VBox(boxes), sliders, stacks, links)


def explorer_note(explorer: LesionExplorer | None, selection: figure_runs.Selection) -> Markdown:
    if explorer is None:
        first_two = [figure_runs.label(*n) for n in selection.nets[:2]]
        command = figure_runs.analyze_command(selection, first_two, "lesion")
        return Markdown(f"**No lesion yet**, so there is nothing to slide through: {command}.")
    return Markdown(
        "Grey bars: the intact net; coloured bars: the same net without the chosen block. Blocks are "
        "numbered in forward order; the first block of stages 2 and 3 halves the map and doubles the filters."
    )


# ---------------------------------------------------------------------------------------------------------
# Training budgets: the runs, then their lesion study; and the chapter's closing note
# ---------------------------------------------------------------------------------------------------------


def analyze_lesion_nets(folders, data: str | None = None, device: str = "auto") -> list:
    """Run (or reuse) the lesion study of the runs among `folders` that the lesion figure shows."""
    from resnet_repro.runs.files import read_run_record
    from resnet_repro.runs.folders import is_finished

    wanted = set(figure_runs.FIGURES["lesion"][0])
    done = []
    for folder in filter(is_finished, folders):
        record = read_run_record(folder)
        if figure_runs.net(record["arch"], record["shortcut"]) in wanted:
            done.append(lesion.analyze_run(folder, data=data, device=device)[0])
    return done


def closing_note(runs: pd.DataFrame, grad_norms: pd.DataFrame, layer_std: pd.DataFrame, lesions) -> str:
    """Markdown list: each verdict of the chapter, and how long the lesion study took per network."""
    items = []
    for check in (claims.check_gradients(runs, grad_norms), claims.check_forward_signals(runs, layer_std)):
        result = f"**{check.status}**" + (f": {check.ours}" if check.ours else f"; run {check.note}")
        items.append(f"- {check.claim} ({check.source}): {result}.")
    check = claims.check_lesion(runs, lesions)
    result = f"**{check.status}**" + (f": {check.ours}" if check.ours else f"; run {check.note}")
    items.append(f"- {check.claim} ({check.source}, not the paper): {result}.")
    selection = figure_runs.select_figure(runs, "lesion")
    times = lesion_times(lesions, selection)
    if times.empty:
        items.append("- `analyze lesion` has not run on these nets yet.")
    for row in times.itertuples():
        items.append(
            f"- `analyze lesion` on {row.label}: {notes.minutes(row.seconds)} on {row.device} ({row.amp})."
        )
    return "\n".join(items)
