"""The chapter "Why do residual nets train?" (resnet_repro.book.why, its checks in claims) on toy frames."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fakes import EMPTY_RUNS, resnet56_errors, run_row, toy_layer_std, toy_lesions, toy_runs
from golden import assert_golden
from ipywidgets.widgets.widget_link import Link

from resnet_repro.book import claims, figure_runs, notes, readings, why
from resnet_repro.runs.folders import GRAD_NORM_COLUMNS, RUN_KEYS

FOUR = ("plain20", "plain56", "resnet20", "resnet56")


def toy_grad_norms(runs: pd.DataFrame, decay: dict[str, float], iterations=(0, 2000, 4000, 6000, 8000)):
    """Gradient norm 0.01 at the last layer, multiplied by decay[arch] over the whole way to the first."""
    frames = []
    for run in runs.itertuples():
        layers = np.arange(1, run.depth)
        keys = {key: getattr(run, key) for key in RUN_KEYS}
        norms = 0.01 * decay[run.arch] ** ((run.depth - 1 - layers) / (run.depth - 2))
        for iteration in iterations:
            frames.append(
                pd.DataFrame(
                    {
                        **keys,
                        "iteration": iteration,
                        "layer": layers,
                        "name": [f"l{i}" for i in layers],
                        "grad_norm": norms,
                    }
                )  # fmt: skip
            )
    return pd.concat(frames, ignore_index=True)[RUN_KEYS + GRAD_NORM_COLUMNS]


def four_runs(budget="quick"):
    return toy_runs(*(run_row(arch, budget=budget) for arch in FOUR))


# ---- section 4.1: gradients and forward signals ------------------------------------------------


def test_gradients_are_healthy_when_the_first_layers_keep_a_hundredth_of_the_last_layers_norm():
    runs = four_runs()
    healthy = toy_grad_norms(runs, dict.fromkeys(FOUR, 0.5))
    check = claims.check_gradients(runs, healthy)
    assert check.status == claims.HOLDS and check.source == "Section 4.1"
    assert "plain-56: first/last 0.5" in check.ours
    summary = notes.gradient_summary(runs, healthy)
    assert "| plain-20 |" in summary and "| ResNet-56 |" in summary


def test_gradients_vanish_when_plain56s_first_layers_get_a_thousandth_and_the_text_says_so():
    runs = four_runs()
    norms = toy_grad_norms(runs, {"plain20": 0.5, "plain56": 1e-3, "resnet20": 1.0, "resnet56": 1.0})
    check = claims.check_gradients(runs, norms)
    assert check.status == claims.PARTLY  # plain-20 fine, plain-56 not
    exploding = toy_grad_norms(runs, {"plain20": 1.0, "plain56": 1e3, "resnet20": 1.0, "resnet56": 1.0})
    assert claims.check_gradients(runs, exploding).status == claims.HOLDS  # not vanishing (the page
    # says it explodes: see test_the_why_chapters_prose_is_the_reviewed_page)


def test_gradient_checks_without_runs_or_on_smoke_runs():
    empty = pd.DataFrame(columns=RUN_KEYS + GRAD_NORM_COLUMNS)
    check = claims.check_gradients(EMPTY_RUNS, empty)
    assert check.status == claims.NO_RUN and "reproduce fig7" in check.note
    smoke = four_runs("smoke")
    assert (
        claims.check_gradients(smoke, toy_grad_norms(smoke, dict.fromkeys(FOUR, 0.5))).status
        == claims.TOO_SHORT
    )


def test_forward_signals_vanish_only_when_a_layer_falls_far_below_the_median():
    runs = four_runs()
    std = toy_layer_std(runs, dict.fromkeys(FOUR, 1.0))
    assert claims.check_forward_signals(runs, std).status == claims.HOLDS
    dead = std.copy()
    dead.loc[(dead.arch == "plain56") & (dead.layer == 3), "std"] = 1e-4
    check = claims.check_forward_signals(runs, dead)
    assert check.status == claims.PARTLY and "plain-56: lowest std 0.0001" in check.ours


def test_chosen_iterations_are_the_start_the_first_point_the_middle_and_the_end():
    assert why.chosen_iterations([0, 160, 320, 480, 640, 800, 960]) == [0, 160, 480, 960]
    assert why.chosen_iterations([0, 5, 10]) == [0, 5, 10]


def test_gradient_figure_has_a_column_per_net_with_a_line_per_chosen_iteration():
    runs = four_runs()
    norms = toy_grad_norms(runs, dict.fromkeys(FOUR, 0.5))
    fig = why.gradient_figure(
        norms, toy_layer_std(runs, dict.fromkeys(FOUR, 1.0)), figure_runs.FIGURES["gradients"][0]
    )
    top, bottom = fig.axes[:4], fig.axes[4:]
    assert [ax.get_title() for ax in top] == ["plain-20", "plain-56", "ResNet-20", "ResNet-56"]
    assert all(len(ax.get_lines()) == 4 for ax in top) and all(len(ax.get_lines()) == 1 for ax in bottom)
    assert top[0].get_yscale() == "log"
    assert [t.get_text() for t in top[0].get_legend().get_texts()][:2] == [
        "initialisation",
        "iteration 2,000",
    ]
    plt.close(fig)


def test_gradient_notes_name_the_runs_without_gradient_norms():
    runs = four_runs()
    norms = toy_grad_norms(runs.iloc[:3], dict.fromkeys(FOUR, 0.5))
    note = why.gradient_notes(figure_runs.select_figure(runs, "gradients"), norms)
    assert "ResNet-56" in note and "--force" in note  # the command that records them
    assert "ResNet-20" not in note


# ---- the lesion figure, notes and slider -------------------------------------------------------


@pytest.fixture
def lesioned():
    runs = toy_runs(run_row("resnet56", budget="quick"), run_row("plain56", budget="quick"))
    return runs, toy_lesions(runs, {"resnet56": resnet56_errors(8.0, 30.0), "plain56": [9.0] + [88.0] * 25})


def test_lesion_figure_draws_each_net_against_the_removed_block(lesioned):
    runs, lesions = lesioned
    pairs = why.lesion_pairs(readings.lesion_effects(lesions, figure_runs.select_figure(runs, "lesion")))
    assert list(pairs) == [56] and list(pairs[56]) == ["ResNet-56", "plain-56"]
    fig = why.lesion_figure(pairs)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "ResNet-56 without one block" in labels and "plain-56 intact (9.00%)" in labels
    resnet = ax.get_lines()[labels.index("ResNet-56 without one block")]
    plain = ax.get_lines()[labels.index("plain-56 without one block")]
    assert np.isfinite(resnet.get_ydata()).sum() == 27
    assert np.isnan(plain.get_ydata()).nonzero()[0].tolist() == [9, 18]  # blocks 10 and 19 change the shape
    plt.close(fig)


def test_lesion_notes_say_how_long_it_took_and_what_is_missing(lesioned):
    runs, lesions = lesioned
    only_resnet = lesions[lesions.arch == "resnet56"]
    note = why.lesion_notes(figure_runs.select_figure(runs, "lesion"), only_resnet)
    assert "`python -m resnet_repro analyze lesion /nonexistent/cifar10/quick/plain56-seed0`" in note
    assert 14 < why.lesion_passes("resnet56") < 15.5  # 1 + about half a pass for each of 27 blocks
    seconds, where = why.estimated_seconds("resnet110", lesions.iloc[:0])  # nothing measured: the reference
    assert 3 * why.REFERENCE_TIME[1] < seconds < 5 * why.REFERENCE_TIME[1] and "AMD EPYC" in where


def test_the_slider_switches_prerendered_views_in_the_browser(lesioned):
    runs, lesions = lesioned
    explorer = why.lesion_explorer(runs, lesions)
    slider, stack = explorer.sliders[56], explorer.stacks[56]
    assert (slider.min, slider.max, slider.value) == (0, 27, 0)
    assert len(stack.children) == 28 and stack.selected_index == 0
    assert all("image/png" in view.outputs[0]["data"] for view in stack.children)
    assert all(isinstance(link, Link) for link in explorer.links)  # jslink: no kernel needed
    assert {(link.source[1], link.target[1]) for link in explorer.links} == {("value", "selected_index")}
    assert why.lesion_explorer(EMPTY_RUNS, lesions) is None
    assert "analyze lesion" in why.explorer_note(None, figure_runs.select_figure(runs, "lesion")).data


def test_class_figure_says_where_the_plain_net_cannot_lose_a_block(lesioned):
    runs, lesions = lesioned
    tables = {name: why.class_errors(lesions, *figure_runs.net(arch)) for name, arch in
              (("ResNet-56", "resnet56"), ("plain-56", "plain56"))}  # fmt: skip
    fig = why.class_figure(56, 10, tables)  # block 10 = stage2.0: the shape changes
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("ResNet-56") and "30.00%" in titles[0]  # its error without the block
    assert titles[1].startswith("plain-56") and "%" not in titles[1]  # no error: it cannot lose the block
    plt.close(fig)


def test_the_why_chapters_prose_is_the_reviewed_page(lesioned):
    """Every note of the chapter, on the toy runs above, as tests/golden/why_notes.md holds it."""
    runs = four_runs()
    healthy = toy_grad_norms(runs, dict.fromkeys(FOUR, 0.5))
    vanishing = toy_grad_norms(runs, {"plain20": 0.5, "plain56": 1e-3, "resnet20": 1.0, "resnet56": 1.0})
    exploding = toy_grad_norms(runs, {"plain20": 1.0, "plain56": 1e3, "resnet20": 1.0, "resnet56": 1.0})
    no_norms = pd.DataFrame(columns=RUN_KEYS + GRAD_NORM_COLUMNS)
    gradients = figure_runs.select_figure(runs, "gradients")
    three_with_norms = toy_grad_norms(runs.iloc[:3], dict.fromkeys(FOUR, 0.5))
    no_gradient_runs = figure_runs.select_figure(EMPTY_RUNS, "gradients")
    lesion_runs, lesions = lesioned
    lesion_selection = figure_runs.select_figure(lesion_runs, "lesion")
    tables = {name: why.class_errors(lesions, *figure_runs.net(arch)) for name, arch in
              (("ResNet-56", "resnet56"), ("plain-56", "plain56"))}  # fmt: skip
    fig = why.class_figure(56, 10, tables)
    titles = "\n\n".join(ax.get_title() for ax in fig.axes)
    plt.close(fig)
    closing = why.closing_note(
        lesion_runs, no_norms, toy_layer_std(lesion_runs, {"resnet56": 1, "plain56": 1}), lesions
    )
    assert_golden(
        "why_notes",
        {
            "gradient summary: healthy": notes.gradient_summary(runs, healthy),
            "gradient summary: plain-56 vanishing": notes.gradient_summary(runs, vanishing),
            "gradient summary: plain-56 exploding": notes.gradient_summary(runs, exploding),
            "gradient summary: no norms": notes.gradient_summary(EMPTY_RUNS, no_norms),
            "gradient notes: ResNet-56 without norms": why.gradient_notes(gradients, three_with_norms),
            "gradient notes: no run": why.gradient_notes(no_gradient_runs, healthy),
            "lesion notes": why.lesion_notes(lesion_selection, lesions),
            "lesion notes: plain-56 not lesioned": why.lesion_notes(
                lesion_selection, lesions[lesions.arch == "resnet56"]
            ),
            "class figure titles: block 10": titles,
            "closing note": closing,
        },
    )
