"""The depth explorer (chapter 6): pick n (depth 6n+2) and plain or residual, see what that net is.

Two layers, so the hosted page works without a kernel and Colab/Binder add training on top:

- ``static_explorer`` pre-renders one view per (family, n) into ``Output`` widgets inside ``Stack``s.
  The slider and the family toggle are ``jslink``ed to the stacks' ``selected_index``: the browser
  switches views by itself, from the widget state that papermill saved in the notebook.
- ``training_panel`` adds a button that trains the chosen net briefly on a small subset (a kernel is
  needed for that) and draws its curves.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import HTML, Image, Markdown
from ipywidgets.widgets.widget_link import Link

from resnet_repro.book import figure_runs, notes, page, plots
from resnet_repro.models import cifar_plain, cifar_resnet
from resnet_repro.paper.counting import CIFAR_INPUT, count_macs, count_params

N_VALUES = range(1, 19)  # depth 8 to 110 (n = 18 is ResNet-110); n = 200 (1202 layers) is too big to slide
FAMILIES = {"plain": "plain", "residual": "resnet"}  # toggle label -> arch prefix


def arch_name(family: str, n: int) -> str:
    return f"{FAMILIES[family]}{6 * n + 2}"


# ---------------------------------------------------------------------------------------------------------
# What a net is: counts and the paper's layer listing, read off the model
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetSummary:
    arch: str
    n: int
    depth: int
    params: int
    macs: int
    listing: pd.DataFrame


# The rows of the paper's CIFAR-10 table, each a group of the model's modules (the last one gives the output).
GROUPS = {
    "conv1": ("conv1", "bn1"),
    "stage1": ("stage1",),
    "stage2": ("stage2",),
    "stage3": ("stage3",),
    "pool, fc": ("pool", "fc"),
}


def architecture_listing(model: torch.nn.Module, input_shape=CIFAR_INPUT) -> pd.DataFrame:
    """Per group of layers: output map size, weighted layers, filters and parameters (forward hooks)."""
    shapes = {}
    hooks = [
        getattr(model, modules[-1]).register_forward_hook(
            lambda module, inputs, output, name=name: shapes.__setitem__(name, tuple(output.shape[1:]))
        )
        for name, modules in GROUPS.items()
    ]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    rows = []
    for name, modules in GROUPS.items():
        group = torch.nn.ModuleList(getattr(model, module) for module in modules)
        layers = [m for m in group.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        main_path = [m for m in layers if not (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1))]
        shape = shapes[name]
        rows.append(
            {
                "layers": name,
                "output": "x".join(map(str, shape[1:])) if len(shape) == 3 else f"{shape[0]}-way",
                "weighted layers": len(
                    main_path
                ),  # 1x1 projection shortcuts are not counted, as in the paper
                "filters": shape[0],
                "params": count_params(group),
            }
        )
    return pd.DataFrame(rows)


def summarize(family: str, n: int) -> NetSummary:
    """Parameters, multiply-adds and layer listing of the CIFAR-10 net of depth 6n+2 (built on meta)."""
    depth = 6 * n + 2
    with torch.device("meta"):
        model = cifar_plain(depth) if family == "plain" else cifar_resnet(depth)
    return NetSummary(
        arch_name(family, n), n, depth, count_params(model), count_macs(model), architecture_listing(model)
    )


# ---------------------------------------------------------------------------------------------------------
# Stored curves of the nearest trained net
# ---------------------------------------------------------------------------------------------------------


def nearest_trained(runs: pd.DataFrame, family: str, depth: int) -> figure_runs.Selection | None:
    """The runs of the trained net of this family (ResNets: option A) closest in depth; None if none."""
    prefix = FAMILIES[family]
    candidates = runs[(runs.family == prefix) & runs.shortcut.isin([figure_runs.PLAIN, "A"])]
    if candidates.empty:
        return None
    depths = sorted(set(candidates.depth))
    closest = min(depths, key=lambda d: (abs(d - depth), d))
    return figure_runs.select_runs(runs, [figure_runs.net(f"{prefix}{closest}")])


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    with plots.book_style():  # rendered in the style it was drawn in
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def curves_image(selection: figure_runs.Selection, histories: pd.DataFrame) -> Image:
    """The stored curves of the selected net, drawn like Figure 6, as a PNG."""
    title = f"{figure_runs.label(*selection.nets[0])} (stored, budget {selection.budget})"
    fig = plots.curves_figure({title: figure_runs.rows_of(histories, selection)})
    fig.set_size_inches(6, 3.4)
    return Image(figure_png(fig))


def curves_note(selection: figure_runs.Selection | None, family: str, depth: int) -> Markdown:
    """What the curves are: which depth they come from and the data it was trained on, or how to get some."""
    if selection is None or selection.empty:
        command = figure_runs.reproduce_command("fig6_plain" if family == "plain" else "fig6_resnet")
        return Markdown(f"No stored run of a {family} net yet: `{command}` trains them.")
    trained = int(selection.runs.depth.iloc[0])
    nearest = (
        f"No run of depth {depth}: the nearest trained depth ({trained}) is shown. "
        if trained != depth
        else ""
    )
    shown = f"Stored run: {notes.budget_note(selection)}, {notes.device_note(selection)}; "
    return Markdown(nearest + shown + notes.dataset_note(selection.dataset) + ".")


def summary_html(summary: NetSummary, family: str) -> HTML:
    header = (
        f"<p><b>{figure_runs.label(summary.arch, 'A')}</b>: n = {summary.n}, {summary.depth} weighted layers "
        f"({family}). <b>{summary.params:,}</b> parameters, <b>{summary.macs / 1e6:,.1f} M</b> "
        "multiply-adds per 32x32 image.</p>"
    )
    listing = summary.listing.to_html(index=False, border=0, formatters={"params": "{:,}".format})
    return HTML(header + listing)


# ---------------------------------------------------------------------------------------------------------
# The static explorer: every view pre-rendered, switched in the browser
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Explorer:
    widget: widgets.Widget
    slider: widgets.IntSlider
    family: widgets.ToggleButtons
    stacks: dict[str, widgets.Stack]  # family -> Stack; child n is the view of depth 6n+2
    links: list[Link]  # the browser-side links that make it work without a kernel


def render_view(family: str, n: int, runs: pd.DataFrame, histories: pd.DataFrame, images: dict):
    """One pre-rendered view: counts, listing and stored curves, in an Output widget."""
    summary = summarize(family, n)
    selection = nearest_trained(runs, family, summary.depth)
    view = widgets.Output()
    view.append_display_data(summary_html(summary, family))
    if selection is not None:
        key = tuple(zip(selection.runs.budget, selection.runs.run, strict=True))
        if key not in images:  # many depths share the same nearest run: draw it once
            images[key] = curves_image(selection, histories)
        view.append_display_data(images[key])
    view.append_display_data(curves_note(selection, family, summary.depth))
    return view


def static_explorer(runs: pd.DataFrame, histories: pd.DataFrame, n_values=N_VALUES) -> Explorer:
    """A slider over n and a plain/residual toggle, linked in the browser to pre-rendered views."""
    n_values = list(n_values)
    slider = widgets.IntSlider(
        value=3 if 3 in n_values else n_values[0],
        min=n_values[0],
        max=n_values[-1],
        description="n (6n+2)",
        continuous_update=True,
    )
    family = widgets.ToggleButtons(options=list(FAMILIES), value="residual", description="net")
    cache: dict = {}
    stacks, links = {}, []
    for name in FAMILIES:
        # Stack children are indexed 0..max: the slider's value n selects child n directly, so the
        # indices below min are empty placeholders the slider never reaches.
        views = [widgets.Output() for _ in range(n_values[0])]
        views += [render_view(name, n, runs, histories, cache) for n in n_values]
        stacks[name] = widgets.Stack(views, selected_index=slider.value)
        links.append(widgets.jslink((slider, "value"), (stacks[name], "selected_index")))
    both = widgets.Stack(list(stacks.values()), selected_index=family.index)
    links.append(widgets.jslink((family, "index"), (both, "selected_index")))
    box = widgets.VBox([widgets.HBox([family, slider]), both])
    return Explorer(box, slider, family, stacks, links)


# ---------------------------------------------------------------------------------------------------------
# Live training (needs a kernel: Colab, Binder, a local Jupyter)
# ---------------------------------------------------------------------------------------------------------

TRAIN_EVAL_POINTS = 10


def train_briefly(
    arch: str,
    iterations: int,
    data: str | None = None,
    device: str = "auto",
    results_dir: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train ``arch`` for ``iterations`` on the smoke subset; return its history (load_histories rows)."""
    from resnet_repro.cifar.trainer import train
    from resnet_repro.runs.config import RunConfig
    from resnet_repro.runs.folders import parse_dataset_label
    from resnet_repro.runs.loaders import load_histories

    results_dir = results_dir or tempfile.mkdtemp(prefix="resnet_repro_explorer_")
    config = RunConfig(
        arch=arch,
        budget="smoke",  # the smoke budget's small class-balanced subset: CPU-friendly
        iterations=iterations,
        eval_points=min(TRAIN_EVAL_POINTS, iterations),
        data=data,
        device=device,
    )
    folder = train(config, results_dir, progress=progress)
    histories = load_histories(results_dir)
    # <dataset>/<budget label>/<run>: the dataset column adds "-val<N>" to the folder's name if held out.
    dataset = histories.dataset.map(lambda label: parse_dataset_label(label)[0])
    same = (histories.run == folder.name) & (histories.budget == folder.parent.name)
    return histories[same & (dataset == folder.parent.parent.name)]


def training_panel(
    explorer: Explorer, data: str | None = None, device: str = "auto", results_dir: str | None = None
) -> widgets.VBox:
    """A button that trains the net chosen in ``explorer`` briefly, with a progress bar and its curves."""
    iterations = widgets.IntSlider(value=100, min=20, max=1000, step=20, description="iterations")
    button = widgets.Button(description="Train briefly", icon="play", button_style="primary")
    output = widgets.Output()

    def on_click(_):
        arch = arch_name(explorer.family.value, explorer.slider.value)
        button.disabled = True
        output.clear_output()
        with output:
            try:
                print(f"training {arch} for {iterations.value} iterations on a small subset ...")
                rows = train_briefly(arch, iterations.value, data, device, results_dir)
                page.show(plots.curves_figure({f"{figure_runs.label(arch, 'A')}, just trained": rows}))
            finally:
                button.disabled = False

    button.on_click(on_click)
    return widgets.VBox([widgets.HBox([iterations, button]), output])
