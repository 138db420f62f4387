"""Run folders, atomic writes, the book's readers and the experiments' shared runs."""

import errno
import json
import os
from pathlib import Path

import pytest
from fakes import fake_cifar

from resnet_repro.cifar.trainer import train
from resnet_repro.commands.cli import main
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.files import DiskFullError, atomic_write, atomic_write_text
from resnet_repro.runs.folders import (
    DEFAULT_RESULTS_DIR,
    HISTORY_FILE,
    RUN_FILE,
    dataset_name,
    is_finished,
    run_folder,
)
from resnet_repro.runs.loaders import load_histories, load_layer_std, load_runs
from resnet_repro.runs.lock import run_lock
from resnet_repro.sweeps import experiments
from resnet_repro.sweeps.experiments import EXPERIMENTS, experiment_configs, experiment_folders, reproduce

RUN_COLUMNS = [
    "experiment",
    "run",
    "arch",
    "family",
    "depth",
    "shortcut",
    "seed",
    "budget",
    "iterations",
    "dataset",
    "device_name",
    "final_test_error",
    "final_train_error",
    "params",
    "wall_time_s",
    "path",
]
RUN_KEYS = ["run", "arch", "family", "depth", "shortcut", "seed", "budget", "dataset"]
HISTORY_COLUMNS = RUN_KEYS + ["iteration", "lr", "train_loss", "train_error", "test_error"]
LAYER_STD_COLUMNS = RUN_KEYS + ["layer", "name", "std"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two finished runs (ResNet-8 and plain-8, 2 iterations) and one unfinished folder."""
    root = tmp_path_factory.mktemp("results")
    for arch in ("resnet8", "plain8"):
        config = RunConfig(arch=arch, budget="smoke", iterations=2, eval_points=2, device="cpu")
        train(config, root, progress=False, data=fake_cifar())
    (root / "cifar10" / "smoke-2it" / "resnet14-A-seed0").mkdir()  # a run still training: a checkpoint
    (root / "cifar10" / "smoke-2it" / "resnet14-A-seed0" / "checkpoint.pt").write_bytes(b"")
    return root


def test_readers_of_an_empty_results_folder_return_empty_frames_with_the_columns(tmp_path):
    for where in (tmp_path, tmp_path / "missing"):
        assert list(load_runs(where).columns) == RUN_COLUMNS and load_runs(where).empty
        assert list(load_histories(where).columns) == HISTORY_COLUMNS and load_histories(where).empty
        assert list(load_layer_std(where).columns) == LAYER_STD_COLUMNS and load_layer_std(where).empty


def test_load_runs_has_one_row_per_finished_run(results):
    runs = load_runs(results).sort_values("arch")
    assert list(runs.columns) == RUN_COLUMNS
    assert list(runs.run) == ["plain8-seed0", "resnet8-A-seed0"]  # the unfinished one is not listed
    assert list(runs.shortcut) == ["-", "A"]
    assert list(runs.family) == ["plain", "resnet"]
    assert set(runs.experiment) == set(runs.budget) == {"smoke-2it"}
    assert list(runs.depth) == [8, 8] and list(runs.iterations) == [2, 2] and set(runs.dataset) == {"fake"}
    assert (runs.params > 0).all() and runs.final_test_error.between(0, 100).all()


def test_load_histories_is_tidy_with_the_run_keys(results):
    histories = load_histories(results)
    assert list(histories.columns) == HISTORY_COLUMNS
    assert len(histories) == 2 * 2  # two runs, two eval points each
    assert sorted(histories.iteration.unique()) == [1, 2]
    assert histories.train_error.between(0, 100).all() and histories.test_error.between(0, 100).all()


def test_load_layer_std_numbers_layers_from_one(results):
    stds = load_layer_std(results)
    assert list(stds.columns) == LAYER_STD_COLUMNS
    resnet = stds[stds.arch == "resnet8"]
    assert list(resnet.layer) == list(range(1, 8))  # conv1 + 2 blocks x 3 stages
    assert resnet.name.iloc[0] == "bn1" and (resnet["std"] > 0).all()


def test_readers_name_a_run_whose_history_and_run_json_disagree_or_are_damaged(results, tmp_path):
    """What two writers on one folder left behind (issue 15): a cut curve beside the whole run's run.json."""
    import shutil

    root = tmp_path / "results"
    shutil.copytree(results, root)
    folder = root / "cifar10" / "smoke-2it" / "resnet8-A-seed0"
    history = (folder / HISTORY_FILE).read_text()
    (folder / HISTORY_FILE).write_text("".join(history.splitlines(keepends=True)[:2]))  # header + 1 row
    with pytest.raises(ValueError, match=f"^{folder}: history.csv and run.json disagree .*iteration 1 "):
        load_histories(root)
    (folder / HISTORY_FILE).write_text(history)
    record = (folder / RUN_FILE).read_text()
    (folder / RUN_FILE).write_text(record[:100])  # truncated
    for reader in (load_runs, load_histories, load_layer_std):
        with pytest.raises(ValueError, match=f"^{folder / RUN_FILE}: unreadable run.json .*--force"):
            reader(root)


def test_default_results_dir_is_data_results_in_the_repository():
    assert DEFAULT_RESULTS_DIR.parts[-2:] == ("data", "results")
    assert (DEFAULT_RESULTS_DIR.parents[1] / "pyproject.toml").is_file()


def test_run_folders_are_named_by_dataset_budget_label_arch_shortcut_seed(tmp_path):
    official = tmp_path / "cifar10"
    assert run_folder(RunConfig(arch="resnet56"), tmp_path) == official / "quick" / "resnet56-A-seed0"
    assert (
        run_folder(RunConfig(arch="plain20", budget="full", seed=2, data="official"), tmp_path)
        == official / "full" / "plain20-seed2"
    )
    validation = RunConfig(arch="resnet110", shortcut="B", iterations=1000, val_split=5000)
    assert run_folder(validation, tmp_path) == official / "quick-1000it" / "resnet110-B-seed0-val5000"


def test_the_dataset_folder_is_the_name_the_data_records_known_before_loading(tmp_path, shared_archive):
    assert dataset_name(None) == dataset_name("official") == "cifar10"
    assert dataset_name(shared_archive) == "cifar10-jpeg"  # by its sha256, whatever the file is called
    renamed = tmp_path / "mine.tgz"
    renamed.symlink_to(shared_archive)
    assert dataset_name(renamed) == "cifar10-jpeg"
    (tmp_path / "tree").mkdir()
    assert (
        dataset_name(tmp_path / "tree") == "tree" and dataset_name(tmp_path / "missing.tar.gz") == "missing"
    )
    # A copy of one's own named like the official files or ours is neither, and keeps out of their folders.
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10-jpeg.tar.gz").write_bytes(b"not our archive")
    assert dataset_name(tmp_path / "cifar10") == "cifar10-own"
    assert dataset_name(tmp_path / "cifar10-jpeg.tar.gz") == "cifar10-jpeg-own"
    jpeg = RunConfig(arch="plain20", data=str(shared_archive))
    assert run_folder(jpeg, tmp_path) == tmp_path / "cifar10-jpeg" / "quick" / "plain20-seed0"


COMMITTED_RUNS = ["plain20-seed0", "plain32-seed0", "plain56-seed0", "resnet20-A-seed0", "resnet56-A-seed0"]


def test_load_runs_finds_every_committed_run_in_its_dataset_folder():
    runs = load_runs()  # data/results: <dataset>/<budget label>/<run>/
    committed = {path.parent for path in DEFAULT_RESULTS_DIR.glob(f"**/{RUN_FILE}")}  # at any depth
    assert {Path(path) for path in runs.path} == committed and set(COMMITTED_RUNS) <= set(runs.run)
    for run in runs.itertuples():
        assert Path(run.path).relative_to(DEFAULT_RESULTS_DIR).parts == (run.dataset, run.experiment, run.run)
    jpeg = runs[runs.dataset == "cifar10-jpeg"]
    assert set(COMMITTED_RUNS) <= set(jpeg[jpeg.budget == "quick"].run)


def dry_run_lines(capsys, *options) -> list[str]:
    assert main(["reproduce", "fig1", "--budget", "quick", "--dry-run", *options]) == 0
    return capsys.readouterr().out.splitlines()


def test_dry_run_on_the_official_data_lists_the_committed_jpeg_runs_nets_as_to_train(capsys):
    official = DEFAULT_RESULTS_DIR / "cifar10" / "quick"
    assert dry_run_lines(capsys) == [
        f"to train  {official / 'plain20-seed0'}",
        f"to train  {official / 'plain56-seed0'}",
    ]


def test_dry_run_on_the_jpeg_archive_reports_the_committed_runs_done(capsys, shared_archive):
    jpeg = DEFAULT_RESULTS_DIR / "cifar10-jpeg" / "quick"
    lines = dry_run_lines(capsys, "--data", str(shared_archive))
    assert lines == [f"done     {jpeg / 'plain20-seed0'}", f"done     {jpeg / 'plain56-seed0'}"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "run.json"
    atomic_write_text(target, "complete old record")

    def write_half_then_die(tmp):
        tmp.write_text("half a new rec")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, write_half_then_die)
    assert target.read_text() == "complete old record"
    assert os.listdir(tmp_path) == ["run.json"]  # no temporary file left behind


TORCH_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 146688 vs 146584"


@pytest.mark.parametrize(
    "failure", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError(TORCH_FULL_DISK)]
)
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_the_old_file_whole(tmp_path, failure):
    target = tmp_path / "weights.pt"
    atomic_write_text(target, "the old weights")

    def write_some_then_fill_the_disk(tmp):
        tmp.write_text("half of the new")
        raise failure

    with pytest.raises(DiskFullError) as raised:
        atomic_write(target, write_some_then_fill_the_disk)
    message = str(raised.value)
    assert message.startswith(f"{target}: not written") and "\n" not in message
    assert "free space" in message and "run the same command again" in message
    assert target.read_text() == "the old weights" and os.listdir(tmp_path) == ["weights.pt"]


def test_other_write_errors_pass_through_unchanged(tmp_path):
    def fail(tmp):
        raise RuntimeError("a bug, not a full disk")

    with pytest.raises(RuntimeError, match="^a bug, not a full disk$"):
        atomic_write(tmp_path / "x.pt", fail)
    assert os.listdir(tmp_path) == []


def test_experiments_are_the_papers_sets():
    assert EXPERIMENTS["fig1"] == [("plain20", "-"), ("plain56", "-")]
    assert len(EXPERIMENTS["fig6"]) == 9 and len(EXPERIMENTS["table6"]) == 5
    assert sorted(EXPERIMENTS["shortcuts"]) == [(f"resnet{d}", o) for d in (20, 56) for o in "ABC"]
    assert ("resnet1202", "A") in experiments.experiment_specs("table6", include_1202=True)
    assert ("resnet1202", "A") not in experiments.experiment_specs("table6")


def test_experiments_share_their_runs(tmp_path):
    def folders(name):
        return set(experiment_folders(name, "quick", tmp_path))

    assert folders("fig7") <= folders("fig1") | folders("fig6")  # Figure 7 trains nothing new
    assert folders("table6") <= folders("fig6")
    assert tmp_path / "cifar10" / "quick" / "resnet56-A-seed0" in folders("shortcuts") & folders("fig6")


def test_seeds_k_means_seeds_0_to_k_minus_1():
    assert [c.seed for c in experiment_configs("fig1", seeds=3)] == [0, 1, 2, 0, 1, 2]
    with pytest.raises(ValueError, match="seeds"):
        experiment_configs("fig1", seeds=0)
    with pytest.raises(ValueError, match="fig1, fig6"):
        experiment_configs("fig8")


def test_reproduce_trains_only_what_is_missing_and_loads_the_data_once(tmp_path, monkeypatch):
    loads, trained = [], []
    monkeypatch.setattr(
        "resnet_repro.cifar.data.load_cifar10", lambda source, **kw: loads.append(source) or "DATA"
    )

    def fake_train(config, results_dir, progress, force, data):
        trained.append((config.arch, data))
        folder = run_folder(config, results_dir)
        if data is not None:  # "train" it
            folder.mkdir(parents=True)
            (folder / RUN_FILE).write_text("{}")
        return folder

    monkeypatch.setattr("resnet_repro.cifar.trainer.train", fake_train)
    first = reproduce("fig1", "smoke", data="x.tar.gz", results_dir=tmp_path, progress=False)
    assert loads == ["x.tar.gz"] and trained == [("plain20", "DATA"), ("plain56", "DATA")]
    loads.clear(), trained.clear()
    again = reproduce("fig7", "smoke", data="x.tar.gz", results_dir=tmp_path, progress=False)
    assert loads == ["x.tar.gz"]  # only for the three runs fig1 did not have
    assert [arch for arch, data in trained if data is not None] == ["resnet20", "resnet56", "resnet110"]
    assert again[:2] == first


def test_reproduce_skips_a_run_another_process_is_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("resnet_repro.cifar.data.load_cifar10", lambda source, **kw: fake_cifar())
    options = {"iterations": 1, "eval_points": 1, "device": "cpu"}
    busy = run_folder(experiment_configs("fig1", "smoke", **options)[1], tmp_path)  # plain56
    with run_lock(busy):  # as another process would hold it
        folders = reproduce("fig1", "smoke", results_dir=tmp_path, **options)
    said = capsys.readouterr().out
    assert f"[2/2] {busy}: skipped ({busy}: another process is training this run" in said
    assert [is_finished(folder) for folder in folders] == [True, False]


def test_reproduce_checks_the_results_folder_before_loading_data(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "resnet_repro.cifar.data.load_cifar10", lambda *a, **k: pytest.fail("loaded data first")
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="is a file, not a folder"):
        reproduce("fig1", "smoke", results_dir=tmp_path / "file", progress=False)


def test_several_experiments_train_their_shared_runs_once():
    configs = experiment_configs(["fig1", "fig7", "shortcuts"], "quick", seeds=2)
    names = [(c.arch, c.shortcut, c.seed) for c in configs]
    assert len(names) == len(set(names)) == 2 * (2 + 3 + 4)  # plain20/56, resnet20/56/110 A, B/C of 20/56
    assert names[:2] == [("plain20", "-", 0), ("plain20", "-", 1)]


def test_a_shard_trains_only_its_slice(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr("resnet_repro.cifar.data.load_cifar10", lambda source, **kw: "DATA")
    monkeypatch.setattr(
        "resnet_repro.cifar.trainer.train", lambda config, *a, **kw: trained.append(config.arch)
    )
    folders = reproduce("fig6", "smoke", results_dir=tmp_path, progress=False, shard="2/4", device="cpu")
    assert trained == ["plain32", "resnet32"] and len(folders) == 2  # runs 2 and 6 of the nine
    with pytest.raises(ValueError, match="K/N"):
        reproduce("fig6", "smoke", results_dir=tmp_path, shard="5/4")


def test_time_estimates_come_from_finished_runs_of_the_same_network(tmp_path):
    assert experiments.estimated_seconds(RunConfig(arch="resnet20", budget="full"), tmp_path) is None
    folder = tmp_path / "cifar10-jpeg" / "quick" / "resnet20-B-seed0"
    folder.mkdir(parents=True)
    record = {
        "arch": "resnet20", "family": "resnet", "depth": 20, "shortcut": "B", "seed": 0,
        "budget": {"label": "quick", "iterations": 8000},
        "provenance": {"dataset": {"name": "cifar10-jpeg"}, "device_name": "GPU"},
        "final_test_error": 9.0, "final_train_error": 3.0, "params": 1, "wall_time_s": 80.0,
    }  # fmt: skip
    (folder / RUN_FILE).write_text(json.dumps(record))
    full = RunConfig(arch="resnet20", budget="full")
    assert experiments.estimated_seconds(full, tmp_path) == pytest.approx(640.0)  # 8x the iterations
    assert experiments.estimated_seconds(RunConfig(arch="resnet56"), tmp_path) is None
