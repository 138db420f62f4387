"""The book's figures (resnet_repro.book.plots): the lines, labels and styles they draw from toy frames."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fakes import EMPTY_RUNS, run_row, toy_histories, toy_layer_std, toy_runs

from resnet_repro.book import figure_runs, page, plots
from resnet_repro.models.blocks import BasicBlock


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_with_label(ax, label: str):
    return [line for line in ax.get_lines() if line.get_label() == label]


def test_figure1_draws_each_plain_net_in_both_panels_against_iterations_in_1e4():
    runs = toy_runs(run_row("plain20", train=5.0, test=9.0), run_row("plain56", train=8.0, test=12.0))
    fig = plots.figure1(toy_histories(runs))
    train_ax, test_ax = fig.axes
    assert train_ax.get_title() == "training error" and test_ax.get_title() == "test error"
    for ax, final in (
        (train_ax, {"plain-20": 5.0, "plain-56": 8.0}),
        (test_ax, {"plain-20": 9.0, "plain-56": 12.0}),
    ):
        for name, value in final.items():
            (line,) = lines_with_label(ax, name)
            assert line.get_linestyle() == "-"  # Figure 1 uses solid lines in both panels
            assert line.get_xdata()[-1] == 64000 / 1e4 and line.get_ydata()[-1] == value
    assert train_ax.get_xlabel() == "iter. (1e4)"


def test_curves_figure_draws_dashed_training_and_bold_test_per_net_with_a_style_key():
    runs = toy_runs(run_row("resnet20", train=3.0, test=8.0), run_row("resnet56", train=1.0, test=7.0))
    fig = plots.curves_figure({"ResNets": toy_histories(runs)})
    (ax,) = fig.axes
    assert ax.get_title() == "ResNets" and len(ax.get_lines()) == 4
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert len(dashed) == len(solid) == 2
    assert max(line.get_linewidth() for line in dashed) < min(line.get_linewidth() for line in solid)
    assert {line.get_label() for line in solid} == {"ResNet-20", "ResNet-56"}
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["ResNet-20", "ResNet-56", "training (dashed)", "test (bold)"]


def test_error_axis_zooms_on_the_end_of_training_but_never_past_the_data():
    curves = {"a": pd.DataFrame({"test_error": [90.0, 8.0]})}
    assert plots.error_axis_top(curves, ["test_error"]) == pytest.approx(1.05 * plots.Y_ZOOM * 8.0)
    flat = {"a": pd.DataFrame({"test_error": [90.0, 88.0]})}
    assert plots.error_axis_top(flat, ["test_error"]) == pytest.approx(1.05 * 90.0)


def test_seeds_are_averaged_into_one_curve():
    runs = toy_runs(run_row("plain20", test=8.0), run_row("plain20", test=10.0, seed=1))
    curves = plots.mean_curves(toy_histories(runs))
    assert list(curves) == ["plain-20"] and curves["plain-20"].test_error.iloc[-1] == 9.0


def test_figure7_draws_layer_order_on_top_and_sorted_descending_below():
    runs = toy_runs(run_row("plain20"), run_row("resnet20"))
    layer_std = toy_layer_std(runs, {"plain20": 1.0, "resnet20": 0.5})
    top, bottom = plots.figure7(layer_std).axes
    (plain_top,) = lines_with_label(top, "plain-20")
    (plain_sorted,) = lines_with_label(bottom, "plain-20")
    assert list(plain_top.get_xdata()) == list(range(1, 20))  # 19 3x3 layers, in order
    assert np.all(np.diff(plain_sorted.get_ydata()) <= 0)
    assert sorted(plain_sorted.get_ydata()) == sorted(plain_top.get_ydata())
    assert top.get_yscale() == "linear"


def test_figure7_switches_to_a_log_axis_when_one_net_diverged():
    runs = toy_runs(run_row("plain20"), run_row("resnet20"))
    layer_std = toy_layer_std(runs, {"plain20": 1e6, "resnet20": 0.5})
    assert all(ax.get_yscale() == "log" for ax in plots.figure7(layer_std).axes)


def test_cost_bars_show_counts_and_the_papers_values_as_markers():
    costs = pd.DataFrame(
        {"name": ["VGG-19", "ResNet-34 B"], "params": [1.4e8, 2.2e7], "macs": [1.9e10, 3.6e9]}
    ).assign(paper_macs=[2.0e10, np.nan])
    macs_ax, params_ax = plots.cost_bars(costs).axes
    assert [bar.get_width() for bar in macs_ax.patches] == [19.0, 3.6]
    assert [bar.get_width() for bar in params_ax.patches] == [140.0, 22.0]
    (markers,) = macs_ax.collections
    assert markers.get_offsets()[0][0] == 20.0
    assert [label.get_text() for label in macs_ax.get_yticklabels()] == ["VGG-19", "ResNet-34 B"]


def test_block_is_described_from_its_modules():
    block = BasicBlock(16, 32, 2, "B")
    before, shortcut, after = plots.block_path(block)
    assert [name for name, _ in before] == ["conv1", "bn1", "relu1", "conv2", "bn2"]
    assert [name for name, _ in after] == ["relu2"]
    assert plots.describe(block.conv1) == "3x3 conv, 16→32, stride 2"
    assert plots.describe(shortcut).startswith("1x1 conv, 16→32")
    assert "zero-pad +16" in plots.describe(BasicBlock(16, 32, 2, "A").shortcut)
    assert plots.output_shape(block, (16, 32, 32)) == (32, 16, 16)
    assert next(block.parameters()).device.type == "cpu"  # measured on a copy


def test_shortcut_options_figure_has_plain_a_b_c_for_both_kinds_of_block():
    fig = plots.shortcut_options_figure()
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 8
    assert [t.split("\n")[0] for t in titles[:4]] == [
        "plain (no shortcut)",
        "option A",
        "option B",
        "option C",
    ]
    # option A adds nothing to the plain block; B adds the projection only where the shape changes
    assert titles[0].split("\n")[-1] == titles[1].split("\n")[-1]
    assert titles[4].split("\n")[-1] == titles[6].split("\n")[-1] != titles[7].split("\n")[-1]


def test_markdown_table_formats_numbers_dashes_missing_and_escapes_pipes():
    table = pd.DataFrame({"net": ["a|b", "c"], "error": [1.234, np.nan]})
    text = page.markdown_table(table, {"error": "{:.1f}"})
    assert text.splitlines() == ["| net | error |", "|---|---|", "| a\\|b | 1.2 |", "| c | – |"]


def test_show_figure1_without_runs_draws_nothing_and_its_note_gives_the_command(monkeypatch):
    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    selection = page.show_figure1(EMPTY_RUNS, toy_histories(toy_runs(run_row("plain20"))))
    assert selection.empty and shown == []
    note = page.figure_notes({"fig1": selection})
    assert "No run yet" in note and figure_runs.reproduce_command("fig1") in note


def test_show_figure6_draws_the_panels_that_have_runs_and_notes_each(monkeypatch):
    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    runs = toy_runs(run_row("plain20", dataset="cifar10-jpeg"), run_row("plain56", dataset="cifar10-jpeg"))
    selections = page.show_figure6(runs, toy_histories(runs))
    (figure,) = shown
    assert [ax.get_title() for ax in figure.axes] == ["plain nets"]
    plain_note, resnet_note = page.figure_notes(selections).split("\n\n")
    assert plain_note.startswith("*Plain nets:*") and "lossy JPEG" in plain_note and "plain-32" in plain_note
    assert resnet_note.startswith("*ResNets:*") and "No run yet" in resnet_note


def test_glue_turns_numpy_scalars_into_plain_numbers(monkeypatch):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    page.glue("ratio", np.float64(6.5))
    page.glue("count", np.int64(5))
    assert type(glued["ratio"]) is float and type(glued["count"]) is int


def test_panels_with_the_same_runs_are_described_once_and_each_names_what_it_lacks(monkeypatch):
    monkeypatch.setattr(page, "show", lambda fig: None)
    quick = {"budget": "quick", "dataset": "cifar10-jpeg"}
    runs = toy_runs(
        *(run_row(a, **quick) for a in ("plain20", "plain56", "resnet20", "resnet56", "resnet110"))
    )
    notes = page.figure_notes(page.show_figure6(runs, toy_histories(runs))).split("\n\n")
    assert len(notes) == 3 and notes[0].startswith("Shown: budget **quick**") and "Shown" not in notes[1]
    assert notes[1].startswith("*Plain nets:* **Not run yet:** plain-32, plain-44.")
    assert notes[2].startswith("*ResNets:* **Not run yet:** ResNet-32, ResNet-44.")
    assert "`python -m resnet_repro reproduce fig6 --budget quick`" in notes[2]


def test_figures_carry_their_budget_data_and_device_under_the_axes(monkeypatch):
    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    quick = {"budget": "quick", "dataset": "cifar10-jpeg"}
    runs = toy_runs(run_row("plain20", **quick), run_row("plain56", **quick))
    page.show_figure1(runs, toy_histories(runs))
    (figure,) = shown
    assert [text.get_text() for text in figure.texts] == [
        "budget quick (8,000 it., 1/8 of the paper's schedule) · cifar10-jpeg (lossy JPEG copy) · test device"
    ]


def test_nets_of_different_budgets_drawn_together_say_their_budget_in_the_legend():
    runs = toy_runs(run_row("resnet20", budget="full"), run_row("resnet56", budget="quick"))
    assert list(plots.mean_curves(toy_histories(runs))) == ["ResNet-20 (full)", "ResNet-56 (quick)"]
    assert list(plots.mean_curves(toy_histories(runs.iloc[:1]))) == ["ResNet-20"]


def test_shared_columns_are_named_once_above_a_table():
    table = pd.DataFrame({"run": ["a", "b"], "device": ["H100", "H100"], "minutes": [1.0, 2.0]})
    rest, note = page.shared_columns(table, keep=["run"])
    assert list(rest.columns) == ["run", "minutes"] and note == "Every run: device **H100**."
    one_row, note = page.shared_columns(table.iloc[:1])
    assert one_row.equals(table.iloc[:1]) and note == ""  # one run: nothing is "shared"


def test_figures_are_drawn_in_the_books_style_without_restyling_the_callers_matplotlib():
    import subprocess
    import sys

    # A fresh interpreter: importing the book's modules must leave matplotlib's settings as they were.
    code = (
        "import matplotlib as mpl; before = dict(mpl.rcParams); "
        "import resnet_repro.book.page, resnet_repro.book.explorer, resnet_repro.book.why; "
        "print(sorted(k for k, v in mpl.rcParams.items() if before[k] != v))"
    )
    changed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert changed.stdout.strip() == "[]"
    before = dict(plt.rcParams)
    fig = plots.figure1(toy_histories(toy_runs(run_row("plain20"), run_row("plain56"))))
    assert dict(plt.rcParams) == before  # drawing in the book's style leaves the caller's settings
    with plots.book_style():
        fig.canvas.draw()
    assert any(line.get_visible() for line in fig.axes[0].yaxis.get_gridlines())  # seaborn's whitegrid
    plt.close(fig)


def test_tables_keep_snake_case_keys_and_the_page_shows_the_readers_headers():
    table = pd.DataFrame(
        {"net": ["ResNet-20", "ResNet-56"], "our_error": [8.5, 7.0], "our_budget": ["q", "q"]}
    )
    text = page.markdown_table(table, {"our_error": "{:.1f}"})
    assert (
        text.splitlines()[0] == "| net | our error (%) | our budget |" and "| ResNet-20 | 8.5 | q |" in text
    )
    rest, sentence = page.shared_columns(table)
    assert list(rest.columns) == ["net", "our_error"] and sentence == "Every run: our budget **q**."
    assert list(page.for_display(table).columns) == ["net", "our error (%)", "our budget"]
