"""The lesion study (resnet_repro.analyses.lesion) on tiny trained nets, its command, reader and verdict."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch
from fakes import fake_cifar, resnet56_errors, run_row, toy_lesions, toy_runs

from resnet_repro.analyses import lesion
from resnet_repro.book import claims
from resnet_repro.cifar.evaluation import predict
from resnet_repro.cifar.trainer import train
from resnet_repro.commands.cli import main
from resnet_repro.models import build_cifar
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.folders import RUN_KEYS, WEIGHTS_FILE
from resnet_repro.runs.loaders import load_runs
from resnet_repro.runs.weights import load_trained_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """ResNet-14 and plain-14 (2 blocks per stage) trained for 6 iterations on toy data: results folder."""
    root = tmp_path_factory.mktemp("results")
    for arch in ("resnet14", "plain14"):
        config = RunConfig(arch=arch, budget="smoke", iterations=6, eval_points=2, device="cpu")
        train(config, root, progress=False, data=fake_cifar())
    return root


def folder_of(root, arch):
    runs = load_runs(root)
    return runs[runs.arch == arch].path.iloc[0]


def images(n=64, seed=1):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# ---- which blocks, and removing one ------------------------------------------------------------


def test_every_resnet_block_is_offered_but_a_plain_one_only_where_the_identity_fits():
    resnet, plain = build_cifar("resnet14").eval(), build_cifar("plain14").eval()
    names = ["stage1.0", "stage1.1", "stage2.0", "stage2.1", "stage3.0", "stage3.1"]
    assert [site.name for site in lesion.sites(resnet)] == names
    assert [site.name for site in lesion.removable_sites(resnet)] == names
    assert {site.removed for site in lesion.removable_sites(resnet)} == {lesion.SHORTCUT_ONLY}
    # the first blocks of stages 2 and 3 halve the map and double the filters: no identity fits there
    assert [site.name for site in lesion.removable_sites(plain)] == [
        "stage1.0",
        "stage1.1",
        "stage2.1",
        "stage3.1",
    ]
    for (name, block), site in zip(lesion.blocks(plain), lesion.sites(plain), strict=True):
        x = torch.randn(2, block.conv1.in_channels, 16, 16)
        with torch.no_grad():
            assert (block(x).shape != x.shape) == site.changes_shape, name  # the real shapes agree
    with pytest.raises(ValueError, match="changes the shape"), lesion.without_block(plain, "stage2.0"):
        pass
    with pytest.raises(ValueError, match="cannot remove"):
        lesion.lesion_predictions(plain, images(4), ["stage3.0"], CPU, amp=False)
    with pytest.raises(ValueError, match="no block named"), lesion.without_block(plain, "stage4.0"):
        pass


@pytest.mark.parametrize("arch", ["resnet14", "plain14"])
def test_removing_a_block_changes_the_outputs_and_removing_nothing_reproduces_them_exactly(trained, arch):
    model = load_trained_model(folder_of(trained, arch))
    x = images()
    with torch.inference_mode():
        intact = model(x)
        with lesion.without_block(model, None) as same:
            assert torch.equal(same(x), intact)
        for site in lesion.removable_sites(model):
            with lesion.without_block(model, site.name) as lesioned:
                assert not torch.allclose(lesioned(x), intact), site.name
            assert torch.equal(model(x), intact), f"{site.name} was not put back"


def test_a_resnet_block_without_its_residual_branch_passes_its_input_through(trained):
    model = load_trained_model(folder_of(trained, "resnet14"))
    block = model.stage1[1]  # identity shortcut: ReLU(0 + x) = x, as x is a ReLU's output already
    x = torch.relu(torch.randn(2, 16, 8, 8))
    removed = lesion.Removed(block)
    assert torch.equal(removed(x), x)
    signed = torch.randn(2, 16, 8, 8)
    before = signed.clone()
    assert torch.equal(removed(signed), torch.relu(before)) and torch.equal(signed, before)  # not in place
    zero_padded = lesion.Removed(model.stage2[0])(x)  # option A: subsample, zero-pad the new channels
    assert zero_padded.shape == (2, 32, 4, 4) and torch.equal(zero_padded[:, :16], x[:, :, ::2, ::2])
    assert zero_padded[:, 16:].abs().sum() == 0


@pytest.mark.parametrize("amp", [False, True])
def test_the_shared_prefix_evaluation_equals_evaluating_each_lesioned_net(trained, amp):
    model = load_trained_model(folder_of(trained, "resnet14"))
    x = images(40)
    names = [None] + [site.name for site in lesion.removable_sites(model)]
    predicted, seconds = lesion.lesion_predictions(model, x, names, CPU, amp)
    assert set(seconds) == set(names) and all(s >= 0 for s in seconds.values())
    assert torch.equal(predicted[None], predict(model, x, CPU, amp))
    for name in names[1:]:
        with lesion.without_block(model, name) as lesioned:
            assert torch.equal(predicted[name], predict(lesioned, x, CPU, amp)), name


# ---- the command and the cached lesion.csv -----------------------------------------------------


def test_analyze_writes_lesion_csv_with_a_row_per_removable_block_and_caches_it(trained):
    folder = folder_of(trained, "plain14")
    path, computed = lesion.analyze_run(folder, data=fake_cifar(), device="cpu")
    assert computed and path.name == lesion.LESION_FILE
    table = pd.read_csv(path, keep_default_na=False)
    assert list(table.columns[: len(lesion.LESION_COLUMNS)]) == lesion.LESION_COLUMNS
    assert lesion.class_columns(table) == [f"error_class{i}" for i in range(10)]
    assert list(table.block) == [0, 1, 2, 4, 6] and table.name.iloc[0] == ""
    assert list(table.removed) == [lesion.INTACT] + [lesion.IDENTITY] * 4
    assert table.test_error.between(0, 100).all() and table.weights_sha256.nunique() == 1
    # the intact net is the trained one: its error is the run's final test error (same images, same pass)
    final = load_runs(trained).set_index("arch").final_test_error["plain14"]
    assert table.test_error.iloc[0] == pytest.approx(final, abs=1.0)
    before = path.stat().st_mtime_ns
    assert lesion.analyze_run(folder, data=fake_cifar(), device="cpu") == (path, False)
    assert path.stat().st_mtime_ns == before
    assert lesion.analyze_run(folder, data=fake_cifar(), device="cpu", force=True)[1]


@pytest.mark.parametrize("damage", ["truncated", "empty", "not a net's"])
def test_damaged_weights_are_one_line_naming_the_file_and_the_remedy(trained, tmp_path, capsys, damage):
    folder = tmp_path / "resnet14-A-seed0"
    shutil.copytree(folder_of(trained, "resnet14"), folder)
    weights = folder / WEIGHTS_FILE
    whole = weights.read_bytes()
    if damage == "not a net's":
        torch.save({"conv1.weight": torch.zeros(3)}, weights)  # a whole file, but not these weights
    else:
        weights.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else b"")
    assert main(["analyze", "lesion", str(folder), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {weights}: unreadable weights.pt ("), err
    assert "train the run again" in err and "--force" in err
    assert "PytorchStreamReader" not in err and "weights_only" not in err


def test_analyze_refuses_another_dataset_than_the_runs(trained):
    with pytest.raises(ValueError, match="pass --data with the run's dataset"):
        lesion.analyze_run(folder_of(trained, "resnet14"), data=fake_cifar(seed=3), device="cpu", force=True)


def test_the_command_analyzes_run_folders_and_says_what_it_did(trained, capsys):
    folder = folder_of(trained, "resnet14")
    lesion.analyze_run(folder, data=fake_cifar(), device="cpu")  # toy data lives in memory, at no path
    assert main(["analyze", "lesion", folder, "--no-progress"]) == 0  # cached: nothing to load
    out = capsys.readouterr().out
    assert "resnet14-A-seed0: intact" in out and "6 lesions" in out and "cached, not recomputed" in out
    assert main(["analyze", "lesion", str(trained / "nothing-here")]) == 2
    assert "not a finished run folder" in capsys.readouterr().err


def test_load_lesions_reads_every_lesion_csv_with_the_run_keys(trained):
    for arch in ("resnet14", "plain14"):
        lesion.analyze_run(folder_of(trained, arch), data=fake_cifar(), device="cpu")
    table = lesion.load_lesions(trained)
    assert list(table.columns[: len(RUN_KEYS)]) == RUN_KEYS
    assert table.groupby("arch").size().to_dict() == {"plain14": 5, "resnet14": 7}
    assert lesion.load_lesions(trained / "empty").empty


# ---- the verdict (the literature's, not the paper's) -------------------------------------------


def test_lesion_check_holds_when_the_resnet_shrugs_and_the_plain_net_breaks():
    runs = toy_runs(run_row("resnet56", budget="quick"), run_row("plain56", budget="quick"))
    lesions = toy_lesions(runs, {"resnet56": resnet56_errors(8.0, 30.0), "plain56": [9.0] + [88.0] * 25})
    check = claims.check_lesion(runs, lesions)
    assert check.status == claims.HOLDS and check.source == claims.LITERATURE_LESION
    assert "median without one block 8.00%" in check.ours and "worst 30.00% without stage2.0" in check.ours
    text = claims.literature_check_markdown(check)
    assert (
        "reported by Veit, Wilber and Belongie (2016), not by He et al." in text and "The paper" not in text
    )
    broken = toy_lesions(runs, {"resnet56": resnet56_errors(60.0, 30.0), "plain56": [9.0] + [12.0] * 25})
    assert claims.check_lesion(runs, broken).status == claims.FAILS


def test_lesion_check_without_a_lesion_gives_the_command_that_makes_it():
    runs = toy_runs(run_row("resnet56", budget="quick"), run_row("plain56", budget="quick"))
    check = claims.check_lesion(runs, toy_lesions(runs.iloc[:1], {"resnet56": resnet56_errors(8.0, 9.0)}))
    assert check.status == claims.NO_RUN
    assert check.note == "`python -m resnet_repro analyze lesion /nonexistent/cifar10/quick/plain56-seed0`"
    assert "reproduce fig7" in claims.check_lesion(toy_runs(), toy_lesions(toy_runs(), {})).note
