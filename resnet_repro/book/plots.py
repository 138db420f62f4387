"""The book's figures, drawn like the paper's, from the tidy frames of ``resnet_repro.runs.loaders``.

Each ``figure*`` function takes the rows it draws and returns a matplotlib Figure, so tests can count
lines and read labels. The ``show_*`` helpers are what the notebooks call: they pick the runs
(``figure_runs.select_runs``), draw, and say which budget and data are shown, or that no run exists yet.
"""

from __future__ import annotations

import contextlib
import copy
import textwrap

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle
from matplotlib.ticker import LogLocator, MaxNLocator
from torch import nn

from resnet_repro import models
from resnet_repro.book import figure_runs, notes, readings
from resnet_repro.models.blocks import BasicBlock, ProjectionShortcut, ZeroPadShortcut
from resnet_repro.paper.counting import count_params

ITERATION_UNIT = 1e4  # the paper's x axis: iterations in units of 10^4
TRAIN_STYLE = {"linestyle": "--", "linewidth": 1.0}  # the paper's dashed training error
TEST_STYLE = {"linestyle": "-", "linewidth": 2.4}  # and bold test error
FIGURE1_STYLE = {"linestyle": "-", "linewidth": 1.8}  # Figure 1 draws both panels with solid lines
# The paper's error axes stop well below the early errors so the end of training is legible; ours stop at
# this multiple of the largest final error (never above the largest error drawn).
Y_ZOOM = 2.5
# Figure 7's axis turns logarithmic when the largest response is this many times a net's median one.
LOG_SCALE_SPREAD = 100
# The provenance line under a figure: 7-point text, about 18 characters to the inch.
STAMP_FONT_SIZE, STAMP_CHARS_PER_INCH = 7, 18


def _book_rc() -> dict:
    """The matplotlib settings seaborn's theme makes (whitegrid, notebook), read without keeping them."""
    with mpl.rc_context():
        before = dict(mpl.rcParams)
        sns.set_theme(style="whitegrid", context="notebook")
        return {key: value for key, value in mpl.rcParams.items() if before.get(key) != value}


BOOK_RC = _book_rc()


def book_style() -> contextlib.AbstractContextManager:
    """The book's look for drawing and for rendering: a figure drawn inside it must be rendered inside it
    too (tick labels are made at drawing time). Also a decorator."""
    return mpl.rc_context(BOOK_RC)


# ---------------------------------------------------------------------------------------------------------
# Training curves: Figures 1 and 6
# ---------------------------------------------------------------------------------------------------------


def run_label(arch: str, shortcut: str, budget: str, mixed: bool) -> str:
    """The paper's name of a net, with its budget when the nets drawn together differ in budget."""
    return figure_runs.label(arch, shortcut) + (f" ({budget})" if mixed else "")


def mean_curves(histories: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each net's curves (mean over its seeds), keyed by the paper's name, shallowest first."""
    curves = {}
    mixed = histories.budget.nunique() > 1
    keys = histories[["arch", "shortcut", "depth", "budget"]].drop_duplicates()
    for arch, shortcut, _, budget in keys.sort_values(["depth", "arch"]).itertuples(index=False):
        rows = histories[
            (histories.arch == arch) & (histories.shortcut == shortcut) & (histories.budget == budget)
        ]
        mean = rows.groupby("iteration")[["train_error", "test_error"]].mean().reset_index()
        curves[run_label(arch, shortcut, budget, mixed)] = mean
    return curves


def net_colors(labels) -> dict[str, tuple]:
    """One colour per net, ordered so deeper nets are darker within each family."""
    labels = list(dict.fromkeys(labels))
    plain = [name for name in labels if name.startswith("plain")]
    residual = [name for name in labels if not name.startswith("plain")]
    colors = dict(zip(plain, sns.color_palette("flare", max(len(plain), 1)), strict=False))
    colors.update(zip(residual, sns.color_palette("crest", max(len(residual), 1)), strict=False))
    return colors


def error_axis_top(curves: dict[str, pd.DataFrame], columns) -> float:
    """Where the error axis ends: a multiple of the largest final error, capped by the largest error."""
    finals = [curve[c].iloc[-1] for curve in curves.values() for c in columns]
    highest = max(curve[c].max() for curve in curves.values() for c in columns)
    return 1.05 * min(highest, Y_ZOOM * max(finals))


def _style_error_axis(ax) -> None:
    ax.set_xlabel("iter. (1e4)")
    ax.set_ylabel("error (%)")
    ax.set_xlim(left=0)


def draw_curves(
    ax, histories: pd.DataFrame, columns=("train_error", "test_error"), colors=None, style=None
) -> None:
    """Each net's error curves on one axis: dashed training, bold test (the paper's Figure 6 style)."""
    curves = mean_curves(histories)
    colors = colors or net_colors(curves)
    styles = {"train_error": TRAIN_STYLE, "test_error": TEST_STYLE}
    for name, curve in curves.items():
        for column in columns:
            # the test curve carries the net's legend entry; the dashed one is explained by a style key
            legend = name if column == columns[-1] else "_nolegend_"
            x = curve.iteration / ITERATION_UNIT
            ax.plot(x, curve[column], color=colors[name], label=legend, **(style or styles[column]))
    _style_error_axis(ax)
    ax.set_ylim(0, error_axis_top(curves, columns))


def _style_legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="gray", **TRAIN_STYLE), Line2D([], [], color="gray", **TEST_STYLE)]
    labels += ["training (dashed)", "test (bold)"]
    ax.legend(handles, labels, fontsize="small", loc="best")


@book_style()
def figure1(histories: pd.DataFrame) -> Figure:
    """Figure 1: plain nets' training error (left) and test error (right) against iterations."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = net_colors(mean_curves(histories))
    for ax, column, title in zip(
        axes, ("train_error", "test_error"), ("training error", "test error"), strict=True
    ):
        draw_curves(ax, histories, columns=(column,), colors=colors, style=FIGURE1_STYLE)
        ax.set_title(title)
        ax.legend(fontsize="small", loc="best")
    axes[0].set_ylabel("training error (%)")
    axes[1].set_ylabel("test error (%)")
    fig.tight_layout()
    return fig


@book_style()
def curves_figure(panels: dict[str, pd.DataFrame]) -> Figure:
    """Figure 6: one panel per group of nets, dashed training and bold test error each."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, (title, histories) in zip(axes[0], panels.items(), strict=True):
        draw_curves(ax, histories)
        ax.set_title(title)
        _style_legend(ax)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# Figure 7: layer responses
# ---------------------------------------------------------------------------------------------------------


def mean_responses(layer_std: pd.DataFrame) -> dict[str, pd.Series]:
    """Each net's response std per layer (mean over seeds), keyed by the paper's name."""
    responses = {}
    mixed = layer_std.budget.nunique() > 1
    keys = layer_std[["arch", "shortcut", "depth", "family", "budget"]].drop_duplicates()
    for arch, shortcut, _, _, budget in keys.sort_values(["family", "depth"]).itertuples(index=False):
        rows = layer_std[
            (layer_std.arch == arch) & (layer_std.shortcut == shortcut) & (layer_std.budget == budget)
        ]
        responses[run_label(arch, shortcut, budget, mixed)] = rows.groupby("layer")["std"].mean().sort_index()
    return responses


@book_style()
def figure7(layer_std: pd.DataFrame) -> Figure:
    """Figure 7: std of each 3x3 layer's response, in layer order (top) and sorted descending (bottom)."""
    responses = mean_responses(layer_std)
    colors = net_colors(responses)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5))
    for name, std in responses.items():
        top.plot(std.index, std.values, color=colors[name], label=name, linewidth=1.6)
        ordered = std.sort_values(ascending=False).to_numpy()
        bottom.plot(range(1, len(ordered) + 1), ordered, color=colors[name], label=name, linewidth=1.6)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    # a log axis when one net's responses dwarf another's (e.g. a diverged net), so the rest stay visible
    spread = max(std.max() for std in responses.values()) / min(std.median() for std in responses.values())
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.set_xlim(left=0)
        ax.legend(fontsize="small", ncol=2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if spread > LOG_SCALE_SPREAD:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# Costs
# ---------------------------------------------------------------------------------------------------------


@book_style()
def cost_bars(costs: pd.DataFrame) -> Figure:
    """Multiply-adds (with the paper's values as markers) and parameters of each net, side by side."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.55 * len(costs) + 1.6), sharey=True)
    y = range(len(costs))
    palette = sns.color_palette("deep")
    left.barh(y, costs.macs / 1e9, color=palette[0], label="counted here")
    if "paper_macs" in costs and costs.paper_macs.notna().any():
        left.scatter(costs.paper_macs / 1e9, y, marker="D", color="black", zorder=3, label="the paper's")
    left.set_xlabel("multiply-adds (billions)")
    left.legend(fontsize="small", loc="lower right")
    right.barh(y, costs.params / 1e6, color=palette[1])
    right.set_xlabel("parameters (millions)")
    left.set_yticks(list(y), costs.name)
    left.invert_yaxis()
    for ax, column, unit in ((left, "macs", 1e9), (right, "params", 1e6)):
        for i, value in enumerate(costs[column] / unit):
            ax.annotate(f"{value:.2f}", (value, i), xytext=(7, 0), textcoords="offset points", va="center",
                        fontsize="small")  # fmt: skip
        ax.margins(x=0.15)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# A block drawn from its modules (chapter 3)
# ---------------------------------------------------------------------------------------------------------


def describe(module: nn.Module | None) -> str:
    """A one-line description of a block's module, read from its attributes."""
    if module is None:
        return "no shortcut"
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        stride = f", stride {module.stride[0]}" if module.stride[0] > 1 else ""
        return f"{k}x{k} conv, {module.in_channels}→{module.out_channels}{stride}"
    if isinstance(module, nn.BatchNorm2d):
        return f"batch norm ({module.num_features})"
    if isinstance(module, nn.ReLU):
        return "ReLU"
    if isinstance(module, nn.Identity):
        return "identity"
    if isinstance(module, ZeroPadShortcut):
        return f"subsample /{module.stride},\nzero-pad +{module.extra_channels} channels"
    if isinstance(module, ProjectionShortcut):
        return "\n+ ".join(describe(m).replace(", stride", ",\nstride") for m in module)
    return type(module).__name__


def block_path(block: nn.Module) -> tuple[list[tuple[str, nn.Module]], nn.Module | None, list]:
    """The block's main path before the addition, its shortcut, and what follows the addition."""
    children = list(block.named_children())
    names = [name for name, _ in children]
    split = names.index("shortcut") if "shortcut" in names else len(children) - 1
    before = [(n, m) for n, m in children[:split] if n != "shortcut"]
    after = [(n, m) for n, m in children[split:] if n != "shortcut"]
    return before, getattr(block, "shortcut", None), after


def output_shape(block: nn.Module, input_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The block's output shape for one input of ``input_shape``, run on a copy on the meta device."""
    with torch.no_grad():
        shapes_only = copy.deepcopy(block).to("meta")
        return tuple(shapes_only(torch.empty(1, *input_shape, device="meta")).shape[1:])


def _box(ax, x, y, text, color, width=0.54, height=0.075) -> None:
    ax.add_patch(
        FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.008",
                       facecolor=color, edgecolor="0.3", linewidth=0.8)
    )  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize=7.5)


def _arrow(ax, start, end) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3", "linewidth": 0.9})


BOX_COLORS = {nn.Conv2d: "#cfe2f3", nn.BatchNorm2d: "#fff2cc", nn.ReLU: "#d9ead3"}
SHORTCUT_COLOR = "#f4cccc"


def draw_block(ax, block: nn.Module, input_shape: tuple[int, int, int], title: str) -> None:
    """Boxes for the block's modules in order; the shortcut beside them, joining at the addition."""
    before, shortcut, after = block_path(block)
    steps = [module for _, module in before] + (["+"] if shortcut is not None else [])
    steps += [module for _, module in after]
    ys = [0.86 - i * (0.74 / max(len(steps) - 1, 1)) for i in range(len(steps))]
    x_main, x_side, top = 0.28, 0.78, 0.95
    ax.text(x_main, 0.97, "x: {}×{}×{}".format(*input_shape), ha="center", va="center", fontsize=8)
    previous = (x_main, top)
    for y, step in zip(ys, steps, strict=True):
        if step == "+":  # the addition: the shortcut joins here, before the last ReLU
            ax.add_patch(Circle((x_main, y), 0.03, facecolor="white", edgecolor="0.3"))
            ax.text(x_main, y, "+", ha="center", va="center", fontsize=11)
            _arrow(ax, previous, (x_main, y + 0.03))
            y_side = (top + y) / 2
            text = f"{describe(shortcut)}\n{count_params(shortcut):,} params"
            _box(ax, x_side, y_side, text, SHORTCUT_COLOR, width=0.42, height=0.15)
            # the shortcut leaves the input to the right, runs down beside the layers, and re-enters at "+"
            ax.plot([x_main, x_side, x_side], [top, top, y_side + 0.08], color="0.3", linewidth=0.9)
            ax.plot([x_side, x_side], [y_side - 0.08, y], color="0.3", linewidth=0.9)
            _arrow(ax, (x_side, y), (x_main + 0.03, y))
            previous = (x_main, y - 0.03)
            continue
        _box(ax, x_main, y, describe(step), BOX_COLORS.get(type(step), "white"))
        _arrow(ax, previous, (x_main, y + 0.04))
        previous = (x_main, y - 0.04)
    ax.text(x_main, 0.05, "out: {}×{}×{}".format(*output_shape(block, input_shape)), ha="center", va="center",
            fontsize=8)  # fmt: skip
    _arrow(ax, previous, (x_main, 0.075))
    ax.set_title(f"{title}\n{count_params(block):,} parameters in the block", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")


SHORTCUT_TITLES = {None: "plain (no shortcut)", "A": "option A", "B": "option B", "C": "option C"}


@book_style()
def shortcut_options_figure(in_channels: int = 16, out_channels: int = 32, size: int = 32) -> Figure:
    """The CIFAR basic block as plain and with options A/B/C, built from the package's own modules.

    Top row: the first block of a stage, where the shape changes (more channels, stride 2).
    Bottom row: any other block, where it does not.
    """
    options = list(SHORTCUT_TITLES)
    fig, axes = plt.subplots(2, len(options), figsize=(3.3 * len(options), 10))
    rows = (
        (in_channels, out_channels, 2, f"shape changes: {in_channels}→{out_channels} channels, /2"),
        (out_channels, out_channels, 1, f"shape kept: {out_channels}→{out_channels} channels"),
    )
    for row, (c_in, c_out, stride, what) in zip(axes, rows, strict=True):
        shape = (c_in, size, size)
        for ax, option in zip(row, options, strict=True):
            block = BasicBlock(c_in, c_out, stride, option)
            draw_block(ax, block, shape, f"{SHORTCUT_TITLES[option]}\n{what}")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# The provenance line under a figure
# ---------------------------------------------------------------------------------------------------------


@book_style()
def stamp(fig: Figure, selections) -> Figure:
    """Write under the figure which budget, data and device its runs come from, so the image says it
    wherever it ends up (one line per distinct provenance)."""
    lines = dict.fromkeys(notes.short_provenance(s) for s in selections if not s.empty)
    width = round(STAMP_CHARS_PER_INCH * fig.get_figwidth())  # wrapped to the figure's width
    text = "\n".join(textwrap.fill(line, width) for line in lines)
    fig.text(0.5, 0, text, ha="center", va="top", fontsize=STAMP_FONT_SIZE, color="0.35")
    return fig


@book_style()
def table6_figure(table: pd.DataFrame) -> Figure:
    """Test error against depth: the paper's Table 6 (markers) and ours (mean, bars = std over seeds)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    x = range(len(table))
    ax.plot(x, table.paper_error, "D", color="black", label="the paper's")
    ours = table.our_error
    if ours.notna().any():
        ax.errorbar(x, ours, yerr=table.our_std.fillna(0), fmt="o-", color=sns.color_palette("crest")[3],
                    capsize=4, label="ours (final error)")  # fmt: skip
    ax.set_xticks(list(x), table.net)
    ax.set_ylabel("test error (%)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# bf16 against fp32 (the reproducibility appendix)
# ---------------------------------------------------------------------------------------------------------


@book_style()
def precision_figure(rows: pd.DataFrame) -> Figure:
    """The precision check's errors: one panel per net and metric, each seed a point and the means joined,
    bf16 and fp32 side by side at each curve point."""
    from resnet_repro.book.precision import HIGH, LOW, METRIC_NAMES, METRICS

    archs = list(dict.fromkeys(rows.arch))
    fig, axes = plt.subplots(len(METRICS), len(archs), figsize=(4.2 * len(archs), 6), squeeze=False)
    colors = dict(zip((LOW, HIGH), sns.color_palette("deep"), strict=False))
    for column, arch in enumerate(archs):
        of_net = rows[rows.arch == arch]
        points = sorted(of_net.iteration.unique())
        for row, metric in enumerate(METRICS):
            ax = axes[row][column]
            for offset, precision in ((-0.1, LOW), (0.1, HIGH)):  # side by side at each curve point
                picked = of_net[of_net.precision == precision]
                if picked.empty:
                    continue
                x = picked.iteration.map(points.index) + offset
                ax.scatter(x, picked[metric], color=colors[precision], s=18, alpha=0.7)
                means = picked.groupby("iteration")[metric].mean()
                ax.plot(means.index.map(points.index) + offset, means.values, "-", color=colors[precision],
                        label=f"{precision} ({picked.seed.nunique()} seeds, line: mean)")  # fmt: skip
            ax.set_title(figure_runs.label(arch, "A"), fontsize="medium")
            ax.set_xticks(range(len(points)), [f"{p:,}" for p in points])
            ax.set_xlim(-0.5, len(points) - 0.5)
            ax.set_xlabel("iteration")
            ax.set_ylabel(f"{METRIC_NAMES[metric]} (%)")
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# The loss landscape (Li et al.'s method, landscape.csv): contours, slices, a surface
# ---------------------------------------------------------------------------------------------------------

LANDSCAPE_LEVELS = readings.LANDSCAPE_LEVELS  # contour levels, evenly in log(loss) over the surfaces drawn


def _loss_levels(found: dict[str, readings.Landscape]) -> np.ndarray:
    """Log-spaced levels from the lowest to the highest loss of the surfaces drawn together, so one colour
    means one loss in every panel."""
    low = min(float(np.nanmin(f.loss)) for f in found.values())
    high = max(float(np.nanmax(f.loss)) for f in found.values())
    return np.geomspace(max(low, 1e-6), max(high, 2 * low, 1e-5), LANDSCAPE_LEVELS)


def _pairs(found: dict[str, readings.Landscape]) -> dict[int, list[readings.Landscape]]:
    """The surfaces by depth, shallowest first, the plain net before the ResNet."""
    depths: dict[int, list[readings.Landscape]] = {}
    for landscape in found.values():
        depths.setdefault(models.parse_arch(landscape.arch)[1], []).append(landscape)
    return {d: sorted(depths[d], key=lambda f: not f.arch.startswith("plain")) for d in sorted(depths)}


@book_style()
def landscape_contours(found: dict[str, readings.Landscape]) -> Figure:
    """One row per depth, the plain net left and the ResNet right: contours of the training loss around the
    trained weights (star) on the plane of the two directions. Black dots: grid points where the surface
    curves downward; the dashed square: the points near the trained weights."""
    pairs = _pairs(found)
    columns = max(len(row) for row in pairs.values())
    fig, axes = plt.subplots(
        len(pairs), columns, figsize=(4.4 * columns, 3.9 * len(pairs)), squeeze=False, layout="constrained"
    )
    levels = _loss_levels(found)
    norm = LogNorm(levels[0], levels[-1])
    filled = None
    for number, (row, landscapes) in enumerate(zip(axes, pairs.values(), strict=True)):
        for column, (ax, landscape) in enumerate(zip(row, landscapes, strict=False)):
            alpha, beta = np.meshgrid(landscape.axis, landscape.axis)
            loss = np.clip(landscape.loss, levels[0], levels[-1])
            filled = ax.contourf(alpha, beta, loss, levels=levels, norm=norm, cmap="viridis")
            ax.contour(alpha, beta, loss, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.6)
            down = landscape.downward()
            ax.plot(alpha[down], beta[down], ".", color="black", markersize=2.5)
            reach = readings.NEAR_THETA * float(np.abs(landscape.axis).max())
            ax.add_patch(Rectangle((-reach, -reach), 2 * reach, 2 * reach, fill=False,
                                               linestyle="--", linewidth=0.8, edgecolor="white"))  # fmt: skip
            ax.plot([0], [0], "*", color="white", markersize=11, markeredgecolor="black")
            ax.set_title(f"{landscape.label}: curves downward at {landscape.non_convex_share():.0%}\n"
                         f"of the points near the trained weights", fontsize=9)  # fmt: skip
            ax.set_aspect("equal")
            ax.set_xlabel("α (along δ)" if number == len(axes) - 1 else "")  # outer panels: no overlaps
            ax.set_ylabel("β (along η)" if column == 0 else "")
        for ax in row[len(landscapes) :]:
            ax.set_visible(False)
    colorbar = fig.colorbar(filled, ax=axes.ravel().tolist(), shrink=0.85, label="training loss")
    colorbar.ax.yaxis.set_major_locator(LogLocator())
    return fig


@book_style()
def landscape_slices(found: dict[str, readings.Landscape]) -> Figure:
    """The loss (left, log scale) and the error (right) along δ alone, every net overlaid."""
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    colors = net_colors(found)
    for name, landscape in found.items():
        dashed = name.startswith("plain")
        style = {"color": colors[name], "linewidth": 1.6, "linestyle": "--" if dashed else "-"}
        loss_ax.plot(landscape.slice.alpha, landscape.slice.loss, label=name, **style)
        error_ax.plot(landscape.slice.alpha, landscape.slice.error, label=name, **style)
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    error_ax.set_ylabel("training error (%)")
    error_ax.set_ylim(0, 100)
    for ax in (loss_ax, error_ax):
        ax.axvline(0, color="0.6", linestyle=":", linewidth=1.0)
        ax.set_xlabel("α (along δ; 0: the trained weights)")
    loss_ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


@book_style()
def landscape_surface(found: dict[str, readings.Landscape]) -> Figure:
    """The surfaces as 3-D plots side by side, log10 of the loss on one vertical scale."""
    fig = plt.figure(figsize=(5.2 * len(found), 4.6))
    levels = _loss_levels(found)
    low, high = np.log10(levels[0]), np.log10(levels[-1])
    for index, landscape in enumerate(found.values(), start=1):
        ax = fig.add_subplot(1, len(found), index, projection="3d")
        alpha, beta = np.meshgrid(landscape.axis, landscape.axis)
        height = np.log10(np.clip(landscape.loss, levels[0], levels[-1]))
        ax.plot_surface(alpha, beta, height, cmap="viridis", vmin=low, vmax=high, linewidth=0)
        ax.set_zlim(low, high)
        ax.set_title(landscape.label)
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        ax.set_zlabel("log10 training loss")
        ax.view_init(elev=35, azim=-60)
    fig.tight_layout()
    return fig
