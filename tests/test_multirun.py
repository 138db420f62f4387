"""Several runs in one process, in threads (multirun.py): the same files as the runs trained alone."""

import threading
import time
from dataclasses import replace

import pytest
import torch
from fakes import fake_cifar

from resnet_repro.cifar.loop import TrainingLoop
from resnet_repro.cifar.trainer import train
from resnet_repro.gpu import multirun
from resnet_repro.gpu.multirun import train_concurrently
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.folders import (
    CHECKPOINT_FILE,
    GRAD_NORM_FILE,
    HISTORY_FILE,
    LAYER_STD_FILE,
    run_folder,
)
from resnet_repro.runs.queue import longest_first
from resnet_repro.runs.runtime import GracefulInterrupt
from resnet_repro.sweeps import experiments

RUNS = [
    RunConfig(arch="resnet8", device="cpu", iterations=6, eval_points=2, seed=seed, compile="off")
    for seed in (0, 1)
]
FILES = (HISTORY_FILE, LAYER_STD_FILE, GRAD_NORM_FILE)


@pytest.fixture(scope="module", autouse=True)
def one_thread_each():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # several runs' thread pools on two busy cores mostly wait for each other
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return fake_cifar(n_train=300, n_test=100)


@pytest.fixture(scope="module")
def alone(data, tmp_path_factory):
    """RUNS trained one after the other, each by itself."""
    results = tmp_path_factory.mktemp("alone")
    return [train(config, results, progress=False, data=data) for config in RUNS]


def same_files(folders, results):
    for folder, config in zip(folders, RUNS, strict=True):
        other = run_folder(config, results)
        for name in FILES:
            assert (other / name).read_text() == (folder / name).read_text(), f"{other.name}/{name}"


def test_runs_in_threads_give_the_files_of_runs_alone(alone, data, tmp_path):
    lines = []
    outcomes = train_concurrently(RUNS, tmp_path, data, report=lines.append)
    assert [o.status for o in outcomes] == ["done", "done"]
    same_files(alone, tmp_path)
    assert sum("started" in line for line in lines) == 2


def test_a_stop_request_checkpoints_every_run_and_the_same_call_resumes_them(
    alone, data, tmp_path, monkeypatch
):
    original = TrainingLoop.step

    def step(self, lr, track_window=False):
        original(self, lr, track_window)
        if self.iteration == 3:
            GracefulInterrupt.request_all()  # as the main thread does at the time limit

    monkeypatch.setattr(TrainingLoop, "step", step)
    outcomes = train_concurrently(RUNS, tmp_path, data, at_once=2, report=None)
    assert "stopped" in [o.status for o in outcomes]
    for config, outcome in zip(RUNS, outcomes, strict=True):
        if outcome.status == "stopped":
            assert (run_folder(config, tmp_path) / CHECKPOINT_FILE).is_file()
    monkeypatch.undo()
    outcomes = train_concurrently(RUNS, tmp_path, data, report=None)
    assert [o.status for o in outcomes] == ["done", "done"]
    same_files(alone, tmp_path)


def test_at_the_time_limit_running_runs_stop_with_a_checkpoint(data, tmp_path, monkeypatch):
    original = TrainingLoop.step

    def slow_step(self, lr, track_window=False):
        time.sleep(0.5)
        original(self, lr, track_window)

    monkeypatch.setattr(TrainingLoop, "step", slow_step)
    lines = []
    outcomes = train_concurrently(RUNS, tmp_path, data, seconds=1.0, report=lines.append)
    assert [o.status for o in outcomes] == ["stopped", "stopped"]
    assert "time limit reached" in " ".join(lines)
    for config in RUNS:
        assert (run_folder(config, tmp_path) / CHECKPOINT_FILE).is_file()


def test_longest_first_orders_by_iterations_times_depth():
    configs = [
        RunConfig(arch="resnet20", iterations=100),
        RunConfig(arch="resnet110", iterations=10),
        RunConfig(arch="resnet56", iterations=100),
        RunConfig(arch="resnet20", iterations=100, seed=1),
    ]
    assert [(c.arch, c.seed) for c in longest_first(configs)] == [
        ("resnet56", 0),
        ("resnet20", 0),
        ("resnet20", 1),
        ("resnet110", 0),
    ]


def test_runs_start_longest_first_a_failure_stops_no_other_and_a_spent_limit_starts_none(monkeypatch):
    started = []

    def fake_train(config, results_dir, progress, force, data):
        started.append(config.arch)
        if config.arch == "resnet20":
            raise RuntimeError("out of memory")

    monkeypatch.setattr(multirun, "train", fake_train)
    configs = [
        RunConfig(arch=arch, iterations=10, device="cpu") for arch in ("resnet8", "resnet20", "resnet14")
    ]
    outcomes = train_concurrently(configs, at_once=1, report=None)
    assert started == ["resnet20", "resnet14", "resnet8"]
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert "out of memory" in outcomes[1].detail
    started.clear()
    outcomes = train_concurrently(configs, seconds=0, report=None)
    assert started == [] and {o.status for o in outcomes} == {"not started"}
    fits = lambda config, left: config.arch != "resnet14"  # noqa: E731
    outcomes = train_concurrently(configs, seconds=3600, fits=fits, report=None)
    assert [o.status for o in outcomes] == ["done", "failed", "skipped"]


def test_reproduce_in_process_loads_and_saves_the_compile_cache(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr("resnet_repro.cifar.data.load_cifar10", lambda *args, **kwargs: "the data")
    monkeypatch.setattr(
        multirun, "train", lambda config, results_dir, progress, force, data: calls.append(data)
    )
    monkeypatch.setattr(
        "resnet_repro.gpu.compile_cache.load", lambda path: calls.append(("load", path)) or "loaded"
    )
    monkeypatch.setattr(
        "resnet_repro.gpu.compile_cache.save", lambda path: calls.append(("save", path)) or "saved"
    )
    cache = tmp_path / "cache.bin"
    experiments.reproduce(
        "fig1",
        budget="smoke",
        results_dir=tmp_path,
        device="cpu",
        in_process=True,
        compile_cache=cache,
        progress=False,
    )
    assert calls == [("load", cache), "the data", "the data", ("save", cache)]


def test_several_threads_seeding_at_once_get_each_their_own_initial_weights(data, tmp_path):
    """train() holds a lock while it seeds the global generator and draws the initial weights."""
    configs = [replace(RUNS[0], iterations=1, eval_points=1, seed=seed) for seed in range(4)]
    threads = [
        threading.Thread(target=train, args=(c, tmp_path), kwargs={"progress": False, "data": data})
        for c in configs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    alone = tmp_path / "alone"
    for config in configs:
        train(config, alone, progress=False, data=data)
        first = (run_folder(config, alone) / GRAD_NORM_FILE).read_text()
        assert (run_folder(config, tmp_path) / GRAD_NORM_FILE).read_text() == first
