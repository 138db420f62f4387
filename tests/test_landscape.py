"""The loss landscape (resnet_repro.analyses.landscape, Li et al.'s method) on a tiny trained net, its
command, and its reading and verdict (readings, claims) on made-up surfaces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from fakes import EMPTY_RUNS, bowl, fake_cifar, run_row, saddle, toy_landscapes, toy_runs

from resnet_repro.analyses import landscape
from resnet_repro.analyses.landscape import FP32_CHECK, SLICE, SURFACE, LandscapeSettings
from resnet_repro.book import claims, figure_runs, notes, plots, readings
from resnet_repro.cifar.trainer import train
from resnet_repro.commands.cli import main
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.folders import LANDSCAPE_COLUMNS, LANDSCAPE_FILE
from resnet_repro.runs.loaders import load_landscapes, load_runs
from resnet_repro.runs.weights import load_trained_model

CPU = torch.device("cpu")
TINY_GRID = LandscapeSettings(points=3, slice_points=3, images=40)  # 9 + 3 points on 40 images


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """ResNet-8 trained for 6 iterations on toy data: (results folder, its run folder)."""
    root = tmp_path_factory.mktemp("results")
    config = RunConfig(arch="resnet8", budget="smoke", iterations=6, eval_points=2, device="cpu")
    train(config, root, progress=False, data=fake_cifar())
    return root, load_runs(root).path.iloc[0]


def subset(folder, count=40):
    return landscape.training_subset(folder, count, fake_cifar())


# ---- the directions ---------------------------------------------------------------------------


def test_each_direction_filter_has_the_norm_of_its_weight_filter_and_vectors_get_no_direction(trained):
    model = load_trained_model(trained[1])
    delta, eta = landscape.random_directions(model, seed=0)
    for name, weight in model.named_parameters():
        for direction in (delta, eta):
            if weight.dim() > 1:  # convolution and linear weights: one norm per output filter
                torch.testing.assert_close(
                    direction[name].flatten(1).norm(dim=1), weight.detach().flatten(1).norm(dim=1)
                )
            else:  # batch-norm weights and biases, the linear bias
                assert not direction[name].any(), name
    assert any(weight.dim() == 1 for weight in model.parameters())  # there were vectors to leave alone


def test_the_same_seed_gives_the_same_directions_and_another_seed_others(trained):
    model = load_trained_model(trained[1])
    first, again, other = (landscape.random_directions(model, seed) for seed in (3, 3, 4))
    for name in first[0]:
        assert torch.equal(first[0][name], again[0][name]) and torch.equal(first[1][name], again[1][name])
    assert not torch.equal(first[0]["conv1.weight"], first[1]["conv1.weight"])  # delta is not eta
    assert not torch.equal(first[0]["conv1.weight"], other[0]["conv1.weight"])


def test_moving_on_the_plane_leaves_batch_norm_and_biases_and_puts_the_weights_back(trained):
    model = load_trained_model(trained[1])
    before = {name: value.clone() for name, value in model.state_dict().items()}
    delta, eta = landscape.random_directions(model, seed=0)
    with landscape.on_plane(model, delta, eta) as move:
        move(0.7, -0.3)
        state = model.state_dict()
        for name, weight in model.named_parameters():
            expected = before[name] + 0.7 * delta[name] - 0.3 * eta[name]
            torch.testing.assert_close(weight.detach(), expected)
            assert torch.equal(weight.detach(), before[name]) == (weight.dim() == 1), name
        for name, _ in model.named_buffers():  # batch norm's running statistics: the trained ones
            assert torch.equal(state[name], before[name]), name
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


# ---- the surface ------------------------------------------------------------------------------


def test_the_surface_at_the_trained_weights_is_the_trained_models_loss(trained):
    model = load_trained_model(trained[1])
    images, labels = subset(trained[1])
    with torch.no_grad():
        logits = model(images)
    rows = landscape.evaluate_points(model, [(SURFACE, 0.0, 0.0), (SURFACE, 0.5, 0.5)], images, labels,
                                     seed=0, device=CPU, amp=False)  # fmt: skip
    assert rows[0]["loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    assert rows[0]["error"] == pytest.approx(100.0 * (logits.argmax(1) != labels).float().mean().item())
    assert rows[1]["loss"] != pytest.approx(rows[0]["loss"], rel=1e-3)  # moving changes the loss


def test_the_subset_is_the_first_images_of_each_class_and_doubling_it_keeps_them():
    labels = torch.tensor([0, 1, 0, 2, 1, 2, 0, 1, 2, 0, 1, 2])
    chosen = landscape.balanced_subset(labels, 6, classes=3)
    assert chosen.tolist() == [0, 1, 2, 3, 4, 5]
    assert set(chosen.tolist()) <= set(landscape.balanced_subset(labels, 12, classes=3).tolist())
    with pytest.raises(ValueError, match="multiple of the 3 classes"):
        landscape.balanced_subset(labels, 7, classes=3)
    with pytest.raises(ValueError, match="only 4 training images of class 0"):
        landscape.balanced_subset(labels, 15, classes=3)


def test_settings_put_the_trained_weights_on_the_grid():
    assert TINY_GRID.axis() == [-1.0, 0.0, 1.0]
    kinds = [kind for kind, _, _ in LandscapeSettings(points=5, slice_points=7, check_fp32=True).wanted()]
    assert (kinds.count(SURFACE), kinds.count(SLICE), kinds.count(FP32_CHECK)) == (25, 7, 5)
    with pytest.raises(ValueError, match="odd"):
        LandscapeSettings(points=4)


# ---- the command and the cached landscape.csv -------------------------------------------------


def test_analyze_writes_landscape_csv_reuses_its_points_and_adds_only_what_is_missing(trained):
    folder = trained[1]
    path, evaluated = landscape.analyze_run(folder, TINY_GRID, data=fake_cifar(), device="cpu", amp="off")
    assert evaluated == 12 and path.name == LANDSCAPE_FILE
    table = pd.read_csv(path)
    assert list(table.columns) == LANDSCAPE_COLUMNS and len(table) == 12
    assert list(table.kind.value_counts().sort_index()) == [3, 9]  # slice, surface
    assert (table.amp == "fp32").all() and table.seconds.gt(0).all() and table.images.eq(40).all()
    assert not (path.parent / landscape.PARTIAL_FILE).exists()
    before = path.stat().st_mtime_ns
    assert landscape.analyze_run(folder, TINY_GRID, data=fake_cifar(), device="cpu", amp="off") == (path, 0)
    assert path.stat().st_mtime_ns == before
    # asking for the fp32 check evaluates its row only; an interrupted run's points are not evaluated again
    checked = LandscapeSettings(points=3, slice_points=3, images=40, check_fp32=True)
    assert landscape.analyze_run(folder, checked, data=fake_cifar(), device="cpu", amp="off")[1] == 3
    table = pd.read_csv(path)
    table.iloc[:5].to_csv(path.parent / landscape.PARTIAL_FILE, index=False)
    path.unlink()
    assert landscape.analyze_run(folder, checked, data=fake_cifar(), device="cpu", amp="off")[1] == 10
    pd.testing.assert_frame_equal(
        *(frame.drop(columns=["seconds", "cpu_seconds"]) for frame in (pd.read_csv(path), table)),
        check_exact=False,
    )
    # the subset check: every other grid point from theta* outward, again on twice the images
    doubled = LandscapeSettings(points=5, slice_points=3, images=40, check_subset=True)
    assert doubled.coarse_axis() == [-1.0, 0.0, 1.0]
    landscape.analyze_run(folder, doubled, data=fake_cifar(), device="cpu", amp="off")
    table = pd.read_csv(path)
    check = table[table.kind == landscape.SUBSET_CHECK]
    assert len(check) == 9 and check.images.eq(80).all()
    assert table[table.kind != landscape.SUBSET_CHECK].images.eq(40).all()
    center = table[(table.alpha == 0) & (table.beta == 0)].set_index("kind").loss
    images, labels = subset(folder, 80)
    with torch.no_grad():
        expected = F.cross_entropy(load_trained_model(folder)(images), labels).item()
    assert center["subset check"] == pytest.approx(expected, rel=1e-5)
    assert readings.subset_gap(table).points == 9
    # another seed is another landscape
    reseeded = LandscapeSettings(points=3, slice_points=3, images=40, seed=1)
    assert landscape.analyze_run(folder, reseeded, data=fake_cifar(), device="cpu", amp="off")[1] == 12


def test_the_command_analyzes_run_folders_and_load_landscapes_reads_them(trained, capsys):
    root, folder = trained
    checked = LandscapeSettings(points=3, slice_points=3, images=40, check_fp32=True)
    landscape.analyze_run(folder, checked, data=fake_cifar(), device="cpu", amp="on")  # toy data: no path
    arguments = ["--points", "3", "--slice-points", "3", "--images", "40", "--check-fp32", "--amp", "on"]
    assert main(["analyze", "landscape", folder, *arguments, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resnet8-A-seed0: loss at theta*" in out and "3x3 grid" in out and "cached, not recomputed" in out
    assert "bf16 against fp32 on 3 points" in out
    assert main(["analyze", "landscape", folder, "--points", "4"]) == 2
    assert "points must be odd" in capsys.readouterr().err
    loaded = load_landscapes(root)
    assert set(loaded.run) == {"resnet8-A-seed0"} and len(loaded) == 15


# ---- the reading: curvature on the grid, bf16 against fp32 ------------------------------------


def test_the_hessian_of_a_quadratic_is_read_exactly_from_the_grid():
    axis = np.linspace(-1, 1, 9)
    a, b = np.meshgrid(axis, axis)
    smaller, larger = readings.hessian_eigenvalues(2 * a**2 + 0.5 * b**2 + a * b, axis[1] - axis[0])
    expected = np.linalg.eigvalsh([[4.0, 1.0], [1.0, 1.0]])
    assert np.allclose(smaller, expected[0]) and np.allclose(larger, expected[1])


def test_a_convex_bowl_never_curves_downward_a_saddle_always_and_a_flat_valley_is_not_noise():
    axis = np.linspace(-1, 1, 9)
    a, b = np.meshgrid(axis, axis)
    step = axis[1] - axis[0]
    assert not readings.curves_downward(bowl(a, b), step).any()
    assert readings.curves_downward(saddle(a, b), step).all()
    noise = 1e-5 * np.random.default_rng(0).standard_normal(a.shape)
    assert not readings.curves_downward(a**2 + noise, step).any()  # below NEGATIVE_CURVATURE of the valley


FOUR = ("plain20", "plain56", "resnet20", "resnet56")


def four_runs(budget="quick"):
    return toy_runs(*(run_row(arch, budget=budget) for arch in FOUR))


def four_surfaces(resnet56=bowl, plain56=saddle) -> dict:
    return {"plain20": bowl, "resnet20": bowl, "plain56": plain56, "resnet56": resnet56}


def test_the_reading_counts_downward_points_near_the_trained_weights_and_over_the_grid():
    runs = four_runs()
    table = toy_landscapes(runs, four_surfaces())
    found = readings.landscapes(table, claims.select_figure(runs, "landscape"))
    assert list(found) == ["plain-20", "plain-56", "ResNet-20", "ResNet-56"]
    plain = found["plain-56"]
    assert plain.non_convex_share(near=True) == 1.0 and found["ResNet-56"].non_convex_share(near=False) == 0
    assert plain.near().sum() == 5 * 5 and plain.center == (3.0, 30.0)
    assert list(plain.slice.alpha) == sorted(plain.slice.alpha) and len(plain.slice) == 9


@pytest.mark.parametrize(
    ("resnet", "plain", "status"),
    [(bowl, saddle, claims.HOLDS), (saddle, bowl, claims.FAILS), (bowl, bowl, claims.FAILS)],
)
def test_li_et_als_claim_holds_only_where_the_resnet_curves_downward_less_than_the_plain_net(
    resnet, plain, status
):
    runs = four_runs()
    table = toy_landscapes(runs, four_surfaces(resnet, plain))
    check = claims.check_landscape(runs, table)
    assert check.status == status and check.source == "Li, Xu, Taylor, Studer and Goldstein (2018)"
    smoke = four_runs("smoke")
    smoke_table = toy_landscapes(smoke, four_surfaces(resnet, plain))
    assert claims.check_landscape(smoke, smoke_table).status == claims.TOO_SHORT


def test_without_a_landscape_the_claim_and_the_page_give_the_command():
    runs = four_runs()
    empty = pd.DataFrame(columns=toy_landscapes(EMPTY_RUNS, {}).columns)
    check = claims.check_landscape(runs, empty)
    assert check.status == claims.NO_RUN and "analyze landscape" in check.note
    status = claims.claims_status(runs, toy_runs(), landscape=empty)
    assert status.source.iloc[-1] == "Li, Xu, Taylor, Studer and Goldstein (2018), not He et al."
    assert status.status.iloc[-1] == claims.NO_RUN
    selection = claims.select_figure(runs, "landscape")
    note = notes.landscape_notes(selection, {}, LandscapeSettings())
    assert "**No landscape yet** for plain-20 (about" in note and "analyze landscape" in note
    assert "ResNet-110 is added when it has a run" in note
    assert "has not run on these nets yet" in notes.landscape_closing_note(runs, empty)
    assert "**not computed yet**. Run `python -m resnet_repro" in claims.literature_check_markdown(check)
    assert notes.landscape_notes(claims.select_figure(EMPTY_RUNS, "landscape"), {}, LandscapeSettings())


def test_bf16_is_compared_with_the_fp32_check_on_its_row():
    runs = toy_runs(run_row("resnet56", budget="quick"))
    gap = readings.precision_gap(toy_landscapes(runs, {"resnet56": bowl}, check=True))
    assert gap.points == 9 and gap.max_relative_gap == pytest.approx(0.01 / 1.01)
    assert gap.same_curvature_sign == gap.interior == 7 and gap.agrees
    assert readings.precision_gap(toy_landscapes(runs, {"resnet56": bowl})) is None
    assert "within the 1% tolerance" in readings.precision_gap_text(gap)


def test_doubling_the_subset_is_compared_at_the_shared_grid_points():
    runs = toy_runs(run_row("resnet56", budget="quick"))
    table = toy_landscapes(runs, {"resnet56": bowl})
    shared = table[
        (table.kind == "surface") & table.alpha.isin([-1.0, 0.0, 1.0]) & table.beta.isin([-1.0, 0.0, 1.0])
    ]
    doubled = shared.assign(kind="subset check", loss=1.02 * shared.loss, images=400)
    gap = readings.subset_gap(pd.concat([table, doubled], ignore_index=True))
    assert gap.points == 9 and (gap.images, gap.doubled) == (200, 400)
    assert gap.max_relative_gap == pytest.approx(0.02) and gap.max_relative_gap_near == pytest.approx(0.02)
    band = (2.1 / 0.1) ** (1 / 23)  # the bowl's loss runs from 0.1 to 2.1: 24 levels span 23 bands
    assert gap.band == pytest.approx(band) and gap.agrees == (band**0.5 >= 1.02)
    assert gap.downward_near == (0.0, 0.0)  # a bowl curves up everywhere, on either subset
    assert readings.subset_gap(table) is None
    selection = figure_runs.select_figure(runs, "landscape")
    assert "--check-subset" in notes.subset_note(table, selection)
    assert "400 training images instead of 200" in notes.subset_note(pd.concat([table, doubled]), selection)


def test_the_figures_draw_each_net_and_mark_the_downward_points():
    runs = four_runs()
    table = toy_landscapes(runs, four_surfaces())
    found = readings.landscapes(table, claims.select_figure(runs, "landscape"))
    contours = plots.landscape_contours(found)
    panels = [ax for ax in contours.axes if ax.get_title()]
    dots = {ax.get_title().split(":")[0]: len(ax.get_lines()[0].get_xdata()) for ax in panels}
    assert list(dots) == ["plain-20", "ResNet-20", "plain-56", "ResNet-56"]  # by depth, plain left
    assert dots == {"plain-20": 0, "ResNet-20": 0, "plain-56": 49, "ResNet-56": 0}  # 7 x 7 inner points
    slices = plots.landscape_slices(found)
    assert [line.get_label() for line in slices.axes[0].get_lines()[:4]] == list(found)
    surface = plots.landscape_surface({name: found[name] for name in ("plain-56", "ResNet-56")})
    assert [ax.get_title() for ax in surface.axes] == ["plain-56", "ResNet-56"]
    for fig in (contours, slices, surface):
        plots.plt.close(fig)
