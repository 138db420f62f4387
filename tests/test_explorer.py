"""The depth explorer (resnet_repro.book.explorer): counts, layer listing, and the static Stack of views."""

from __future__ import annotations

import ipywidgets as widgets
import pytest
from fakes import EMPTY_RUNS, run_row, toy_histories, toy_runs
from ipywidgets.widgets.widget_link import Link

from resnet_repro.book import explorer
from resnet_repro.models import cifar_plain, cifar_resnet
from resnet_repro.paper.counting import count_macs, count_params


@pytest.mark.parametrize(("family", "n"), [("plain", 1), ("residual", 3), ("residual", 9)])
def test_summary_counts_match_the_real_model_and_the_listing_adds_up(family, n):
    summary = explorer.summarize(family, n)
    model = (cifar_plain if family == "plain" else cifar_resnet)(6 * n + 2)
    assert summary.depth == 6 * n + 2 and summary.params == count_params(model)
    assert summary.macs == count_macs(model)
    listing = summary.listing
    assert listing["weighted layers"].sum() == summary.depth  # 6n+2, the paper's count
    assert listing.params.sum() == summary.params
    assert list(listing.output) == ["32x32", "32x32", "16x16", "8x8", "10-way"]
    assert list(listing.filters) == [16, 16, 32, 64, 10]


def test_nearest_trained_prefers_the_closest_depth_then_the_shallower_one():
    runs = toy_runs(
        run_row("resnet20"), run_row("resnet44"), run_row("resnet56", shortcut="B"), run_row("plain56")
    )
    assert explorer.nearest_trained(runs, "residual", 32).runs.arch.tolist() == ["resnet20"]  # tie: 20 vs 44
    assert explorer.nearest_trained(runs, "residual", 56).runs.arch.tolist() == ["resnet44"]  # B is not A
    assert explorer.nearest_trained(runs, "plain", 8).runs.arch.tolist() == ["plain56"]
    assert explorer.nearest_trained(EMPTY_RUNS, "plain", 20) is None


def outputs_of(view: widgets.Output) -> list[dict]:
    return [output["data"] for output in view.outputs]


def test_static_explorer_has_one_prerendered_view_per_n_linked_in_the_browser():
    runs = toy_runs(run_row("resnet20"), run_row("plain20"))
    ex = explorer.static_explorer(runs, toy_histories(runs), n_values=range(1, 5))
    assert (ex.slider.min, ex.slider.max, ex.slider.value) == (1, 4, 3)
    for family, stack in ex.stacks.items():
        assert len(stack.children) == 5  # child n shows depth 6n+2; child 0 is never selected
        assert stack.selected_index == ex.slider.value
        for n in range(1, 5):
            data = outputs_of(stack.children[n])
            assert f"n = {n}, {6 * n + 2} weighted layers" in data[0]["text/html"]
            assert f"({family})" in data[0]["text/html"]
            assert "image/png" in data[1]  # the stored curves of the nearest trained net
            nearest = "nearest trained depth (20)" in data[2]["text/markdown"]
            assert nearest == (n != 3)
    linked = {(link.source[1], link.target[1]) for link in ex.links}
    assert linked == {("value", "selected_index"), ("index", "selected_index")}
    assert all(isinstance(link, Link) for link in ex.links)  # jslink: the browser links them, no kernel


def test_static_explorer_without_runs_says_how_to_train_them():
    ex = explorer.static_explorer(
        EMPTY_RUNS, toy_histories(toy_runs(run_row("plain20"))).iloc[:0], range(1, 3)
    )
    data = outputs_of(ex.stacks["plain"].children[1])
    assert "No stored run of a plain net yet" in data[1]["text/markdown"]
    assert "reproduce fig6" in data[1]["text/markdown"]


@pytest.mark.slow
def test_train_briefly_trains_the_chosen_net_on_the_shared_archive(shared_archive, tmp_path):
    data, out = str(shared_archive), str(tmp_path)
    rows = explorer.train_briefly("plain8", 4, data=data, device="cpu", results_dir=out, progress=False)
    assert list(rows.iteration) == [1, 2, 3, 4] and set(rows.arch) == {"plain8"}
    assert rows.test_error.between(0, 100).all()


def test_the_stored_curves_say_their_budget_device_and_data():
    runs = toy_runs(run_row("resnet20", budget="quick", dataset="cifar10-jpeg"))
    note = explorer.curves_note(explorer.nearest_trained(runs, "residual", 20), "residual", 20).data
    assert note.startswith("Stored run: budget **quick** (8,000 iterations, 1/8 of the paper's")
    assert "on test device; trained on **cifar10-jpeg**, a lossy JPEG copy" in note
