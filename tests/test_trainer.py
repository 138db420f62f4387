"""The trainer: the recipe's bookkeeping, resuming bit-for-bit, never losing or reusing work wrongly.

Most runs here are ResNet-8 (the smallest 6n+2 net) for 12 iterations on random pixels, so they take a
second or two on a CPU; one smoke run trains on the real shared archive.
"""

import importlib.util
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision.datasets
from fakes import TINY, FakeCIFAR10, fake_cifar, make_tar, make_tree
from PIL import Image

import resnet_repro.cifar.data as data_module
from resnet_repro.cifar import trainer
from resnet_repro.cifar.data import CACHE_ENV, CifarData
from resnet_repro.cifar.evaluation import Moments
from resnet_repro.cifar.loop import SpeedOptions, TrainingLoop, resolve_speed
from resnet_repro.cifar.trainer import train
from resnet_repro.commands.cli import main
from resnet_repro.models import build_cifar, response_layers
from resnet_repro.paper.counting import count_params
from resnet_repro.runs.config import SPEED_FIELDS, RunConfig
from resnet_repro.runs.files import read_run_record
from resnet_repro.runs.folders import (
    CHECKPOINT_FILE,
    DEFAULT_RESULTS_DIR,
    HISTORY_FILE,
    LAYER_STD_FILE,
    RUN_FILE,
)
from resnet_repro.runs.lock import LOCK_FILE, RunLockedError, run_lock
from resnet_repro.runs.runtime import GracefulInterrupt, resolve_device


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """TINY trained without interruption."""
    return train(TINY, tmp_path_factory.mktemp("reference"), progress=False, data=fake_cifar())


def copy_run(folder, results_dir):
    target = results_dir.joinpath(*folder.parts[-3:])  # <dataset>/<budget label>/<run>
    shutil.copytree(folder, target)
    return target


def read(folder, name):
    return (folder / name).read_text()


def test_history_has_the_eval_points_and_the_schedule(reference):
    lines = read(reference, HISTORY_FILE).splitlines()
    assert lines[0] == "iteration,lr,train_loss,train_error,test_error"
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == [4, 8, 12]
    assert [float(r[1]) for r in rows] == [0.1, 0.01, 0.001]  # drops at 6 and 9 (50%, 75%)
    assert all(0 <= float(r[3]) <= 100 and 0 <= float(r[4]) <= 100 for r in rows)


def test_layer_std_has_every_response_layer_in_order(reference):
    lines = read(reference, LAYER_STD_FILE).splitlines()
    assert lines[0] == "layer,name,std"
    rows = [line.split(",") for line in lines[1:]]
    expected = [name for name, _ in response_layers(build_cifar("resnet8"))]
    assert [r[1] for r in rows] == expected
    assert [int(r[0]) for r in rows] == list(range(1, len(expected) + 1))
    assert all(float(r[2]) > 0 for r in rows)


def checkout_commit() -> str:
    """The commit a run here must record: $RESNET_REPRO_COMMIT where set, else this checkout's HEAD."""
    from resnet_repro.runs.runtime import COMMIT_ENV

    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    head = ["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "HEAD"]
    return subprocess.run(head, capture_output=True, text=True, check=True).stdout.strip()


def test_run_json_records_result_config_and_provenance(reference):
    record = read_run_record(reference)
    history_end = read(reference, HISTORY_FILE).splitlines()[-1].split(",")
    assert record["final_test_error"] == float(history_end[4])  # the end of training, not the best
    assert record["final_train_error"] == float(history_end[3])
    assert record["params"] == count_params(build_cifar("resnet8"))
    assert record["config"] == TINY.to_dict()
    assert record["budget"] == {
        "name": "smoke",
        "label": "smoke-12it",
        "iterations": 12,
        "subset": [1000, 500],
        "eval_points": 3,
    }
    assert record["recipe"]["batch_size"] == 128 and record["recipe"]["milestones"] == [6, 9]
    provenance = record["provenance"]
    assert provenance["dataset"]["name"] == "fake" and provenance["seed"] == 0
    assert provenance["torch"] == torch.__version__
    assert provenance["git_commit"] == checkout_commit()  # not the fallback "unknown", truthy too
    assert set(record["speed"]) >= {"channels_last", "amp", "compile", "data_on_device"}
    assert record["wall_time_s"] > 0 and record["sessions"] == 1
    assert not (reference / CHECKPOINT_FILE).exists()  # deleted once the results are complete


def interrupt_at(monkeypatch, iteration, signal_it=True):
    """Make TrainingLoop.step press Ctrl-C (a real SIGINT) or crash once `iteration` steps are done."""
    original = TrainingLoop.step

    def step(self, lr, track_window=False):
        if not signal_it and self.iteration == iteration:
            raise RuntimeError("simulated crash")
        original(self, lr, track_window)
        if signal_it and self.iteration == iteration:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(TrainingLoop, "step", step)


def test_ctrl_c_saves_and_the_resumed_run_equals_the_uninterrupted_one(
    reference, tmp_path, monkeypatch, capsys
):
    interrupt_at(monkeypatch, 6)  # between eval points 4 and 8
    with pytest.raises(KeyboardInterrupt):
        train(TINY, tmp_path, progress=False, data=fake_cifar())
    folder = tmp_path / "cifar10" / "smoke-12it" / "resnet8-A-seed0"
    assert torch.load(folder / CHECKPOINT_FILE, weights_only=True)["loop"]["iteration"] == 6
    assert not (folder / RUN_FILE).exists()
    assert "Saved iteration 6" in capsys.readouterr().err
    monkeypatch.undo()

    assert train(TINY, tmp_path, progress=False, data=fake_cifar()) == folder
    assert read(folder, HISTORY_FILE) == read(reference, HISTORY_FILE)  # bit-for-bit on the CPU
    assert read(folder, LAYER_STD_FILE) == read(reference, LAYER_STD_FILE)
    assert read_run_record(folder)["sessions"] == 2
    assert not (folder / CHECKPOINT_FILE).exists()


def test_a_crash_loses_at_most_one_interval_and_resumes_identically(reference, tmp_path, monkeypatch, capsys):
    interrupt_at(monkeypatch, 10, signal_it=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(TINY, tmp_path, progress=False, data=fake_cifar())
    folder = tmp_path / "cifar10" / "smoke-12it" / "resnet8-A-seed0"
    assert (
        torch.load(folder / CHECKPOINT_FILE, weights_only=True)["loop"]["iteration"] == 8
    )  # last eval point
    assert "Saved iteration 8" in capsys.readouterr().err
    monkeypatch.undo()
    train(TINY, tmp_path, progress=False, data=fake_cifar())
    assert read(folder, HISTORY_FILE) == read(reference, HISTORY_FILE)


def test_a_finished_run_is_not_trained_again_unless_forced(reference, tmp_path, monkeypatch):
    folder = copy_run(reference, tmp_path)
    before = read(folder, RUN_FILE)
    monkeypatch.setattr(TrainingLoop, "step", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert train(TINY, tmp_path, progress=False, data=fake_cifar()) == folder
    assert read(folder, RUN_FILE) == before
    monkeypatch.undo()
    train(TINY, tmp_path, progress=False, force=True, data=fake_cifar())
    assert read(folder, RUN_FILE) != before  # new times
    assert read(folder, HISTORY_FILE) == read(reference, HISTORY_FILE)  # same seed, same result


def test_a_finished_run_of_another_config_is_not_passed_off_as_this_one(reference, tmp_path):
    copy_run(reference, tmp_path)
    other = RunConfig.from_dict({**TINY.to_dict(), "eval_points": 4})
    with pytest.raises(ValueError, match="eval_points: 3 there, 4 now.*--force"):
        train(other, tmp_path, progress=False, data=fake_cifar())


def test_a_checkpoint_on_other_data_is_not_resumed(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(TINY, tmp_path, progress=False, data=fake_cifar(seed=0), stop_after=2)
    with pytest.raises(ValueError, match="other data"):
        train(TINY, tmp_path, progress=False, data=fake_cifar(seed=1))


@pytest.mark.parametrize(
    ("threshold", "ended_at", "lrs"),
    [(101.0, 2, [0.01, 0.1, 0.01, 0.001]), (0.0, None, [0.01, 0.01, 0.01, 0.001])],
)
def test_warmup_ends_when_training_error_falls_below_the_threshold(
    tmp_path, monkeypatch, threshold, ended_at, lrs
):
    monkeypatch.setattr(
        "resnet_repro.runs.config.needs_warmup", lambda depth: True
    )  # ResNet-8 warms up like 110
    monkeypatch.setattr(trainer, "WARMUP_CHECK_EVERY", 2)
    monkeypatch.setattr(trainer, "WARMUP_UNTIL_TRAIN_ERROR", threshold)  # 101%: always below; 0%: never
    config = RunConfig(arch="resnet8", budget="smoke", iterations=8, eval_points=4, device="cpu")
    folder = train(config, tmp_path, progress=False, data=fake_cifar())
    lines = read(folder, HISTORY_FILE).splitlines()[1:]
    assert [float(line.split(",")[1]) for line in lines] == lrs  # milestones at 4 and 6
    assert read_run_record(folder)["recipe"]["warmup_ended_at"] == ended_at


def test_validation_split_tests_on_held_out_training_images(tmp_path):
    config = RunConfig(
        arch="resnet8", budget="smoke", iterations=1, eval_points=1, val_split=100, device="cpu"
    )
    folder = train(config, tmp_path, progress=False, data=fake_cifar())
    assert folder.name == "resnet8-A-seed0-val100"
    assert read_run_record(folder)["provenance"]["dataset"]["validation"] == {"size": 100, "seed": 0}


def test_moments_give_the_population_std_of_all_elements():
    batches = [torch.randn(7, 3, 4, 4) * 2 + 1, torch.randn(5, 3, 4, 4) * 0.5 - 3]
    moments = Moments(torch.device("cpu"))
    for batch in batches:
        moments.add(batch)
    expected = torch.cat(batches).double().std(correction=0).item()
    assert moments.std() == pytest.approx(expected, rel=1e-6)


def test_first_ctrl_c_is_deferred_to_the_step_boundary_and_a_second_stops_at_once():
    with GracefulInterrupt() as interrupt:
        signal.raise_signal(signal.SIGINT)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_speed_options_resolve_per_device_and_can_all_be_switched_off():
    cpu = torch.device("cpu")
    auto = resolve_speed(RunConfig(), cpu, 64_000)
    assert auto.channels_last and auto.data_on_device
    assert not auto.amp  # see test_amp_auto_trains_in_fp32_on_a_cpu_and_bf16_only_by_name
    assert (auto.compile, auto.fused_optimizer, auto.cudnn_benchmark) == ("default", False, False)
    assert resolve_speed(RunConfig(), cpu, 100).compile == "off"  # too short to repay the compile
    off = resolve_speed(RunConfig(**{name: "off" for name in SPEED_FIELDS}), cpu, 64_000)
    assert off == SpeedOptions(False, False, "off", False, False, False, compile_fallback=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_asking_for_cuda_without_it_says_what_to_do():
    with pytest.raises(ValueError, match="--device cpu"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_step_never_waits_for_the_gpu():
    config = RunConfig(arch="resnet20", device="cuda", compile="off")
    device = torch.device("cuda")
    loop = TrainingLoop(build_cifar("resnet20"), fake_cifar(), device, resolve_speed(config, device, 1000), 0)
    loop.step(0.1)  # allocations and cuDNN set-up may sync once
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(10):  # crosses an epoch boundary (1000 images = 7 batches): a new permutation
            loop.step(0.1)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.slow
def test_smoke_run_on_the_shared_archive(tmp_path, shared_archive, cifar_jpeg):
    config = RunConfig(arch="resnet20", budget="smoke", data=str(shared_archive), device="cpu")
    folder = train(config, tmp_path, progress=False, data=cifar_jpeg)
    assert folder == tmp_path / "cifar10-jpeg" / "smoke" / "resnet20-A-seed0"
    record = json.loads((folder / RUN_FILE).read_text())
    assert record["params"] == 269_722  # Table 6: 0.27M
    assert record["provenance"]["dataset"]["name"] == "cifar10-jpeg"
    assert record["provenance"]["dataset"]["lossy"] is True
    assert record["provenance"]["dataset"]["subset"] == [1000, 500]
    assert len(read(folder, HISTORY_FILE).splitlines()) == 1 + 2
    assert len(read(folder, LAYER_STD_FILE).splitlines()) == 1 + 19  # 19 3x3 layers in ResNet-20


@pytest.mark.slow
def test_the_throughput_benchmark_runs(capsys):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"
    spec = importlib.util.spec_from_file_location("train_throughput", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    argv = ["--device", "cpu", "--arch", "resnet8", "--steps", "1", "--rounds", "1", "--warmup", "0"]
    benchmark.main([*argv, "--workers", "0", "--images", "1000"])
    assert "ratio ours / baseline" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------
# What every run records besides its curves: gradient norms and its trained weights
# ---------------------------------------------------------------------------------------------------------


def test_grad_norms_are_recorded_at_initialisation_and_every_eval_point(reference):
    from resnet_repro.runs.folders import GRAD_NORM_FILE

    lines = read(reference, GRAD_NORM_FILE).splitlines()
    assert lines[0] == "iteration,layer,name,grad_norm"
    rows = [line.split(",") for line in lines[1:]]
    layers = [name for name, _ in response_layers(build_cifar("resnet8"))]
    assert sorted({int(r[0]) for r in rows}) == [0, 4, 8, 12]
    assert [r[2] for r in rows if r[0] == "0"] == layers
    assert all(float(r[3]) > 0 for r in rows)


def test_measuring_gradient_norms_changes_no_weights_statistics_or_grads():
    from resnet_repro.cifar.evaluation import gradient_norms

    torch.manual_seed(0)
    model = build_cifar("resnet8").train()
    images, labels = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = gradient_norms(model, images, labels, response_layers(model), amp=False)
    assert len(norms) == len(response_layers(model)) and all(n > 0 for n in norms)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # incl. BN statistics
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def learnable_fake_cifar(n_train: int, n_test: int) -> CifarData:
    """Toy images whose class sets their colour (plus noise): a few steps give confident predictions,
    so rounding the weights can only flip a prediction that is really a near tie."""
    g = torch.Generator().manual_seed(7)
    palette = torch.randint(0, 256, (10, 3, 1, 1), generator=g).float()

    def images(labels):
        noise = torch.randn(len(labels), 3, 32, 32, generator=g) * 40
        return (palette[labels] + noise).clamp(0, 255).to(torch.uint8)

    train_labels, test_labels = torch.arange(n_train) % 10, torch.arange(n_test) % 10
    identity = {"name": "learnable-fake", "sha256": "7" * 64, "source": "memory", "lossy": False}
    classes = [f"class{i}" for i in range(10)]
    return CifarData(images(train_labels), train_labels, images(test_labels), test_labels, classes, identity)


def test_reloaded_weights_give_the_recorded_test_error(tmp_path):
    """Half-precision conv weights change the recorded error by less than 0.1 point (here: not at all
    on 1,000 test images), and the file is about half the fp32 size."""
    from resnet_repro.cifar.evaluation import test_error
    from resnet_repro.runs.folders import WEIGHTS_FILE
    from resnet_repro.runs.weights import load_trained_model

    data = learnable_fake_cifar(n_train=1000, n_test=1000)
    config = RunConfig(arch="resnet8", budget="smoke", iterations=30, eval_points=1, device="cpu", amp="off")
    folder = train(config, tmp_path, progress=False, data=data)
    model = load_trained_model(folder)
    assert not model.training
    loop = TrainingLoop(model, data, torch.device("cpu"), resolve_speed(config, torch.device("cpu"), 1), 0)
    error, _ = test_error(model, loop.test_images, loop.test_labels, torch.device("cpu"), amp=False)
    assert abs(error - read_run_record(folder)["final_test_error"]) < 0.1
    fp32_bytes = 4 * count_params(model)
    assert (folder / WEIGHTS_FILE).stat().st_size < 0.6 * fp32_bytes + 20_000  # + the file's own overhead


def test_amp_auto_trains_in_fp32_on_a_cpu_and_bf16_only_by_name():
    cpu = torch.device("cpu")
    assert not resolve_speed(RunConfig(device="cpu"), cpu, 100).amp  # bf16 lagged fp32 there (issue 22)
    assert resolve_speed(RunConfig(device="cpu", amp="on"), cpu, 100).amp
    assert not resolve_speed(RunConfig(device="cpu", amp="off"), cpu, 100).amp


# ---------------------------------------------------------------------------------------------------------
# One writer per run folder; damaged files; SIGTERM (issue 15)
# ---------------------------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--arch", "resnet8", "--budget", "smoke", "--iterations", "12", "--eval-points", "3"]
TINY_ARGS += ["--device", "cpu", "--no-progress"]

# `python -m resnet_repro train` on fake_cifar() whose every step first sleeps argv[3] seconds and then
# prints "iteration N": a real process training a real run, slowly enough to be caught in the act.
SLOW_CLI = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from fakes import fake_cifar
from resnet_repro.commands import cli
from resnet_repro.cifar import trainer
pause = float(sys.argv[3])
prepare, step = trainer.prepare_data, trainer.TrainingLoop.step
trainer.prepare_data = lambda config, data=None, progress=True: prepare(config, fake_cifar(), progress)
def slow_step(self, lr, track_window=False):
    time.sleep(pause)
    step(self, lr, track_window)
    print(f"iteration {self.iteration}", flush=True)
trainer.TrainingLoop.step = slow_step
sys.exit(cli.main(sys.argv[4:]))
"""


def slow_cli(out: Path, pause: float) -> subprocess.Popen:
    tests = Path(__file__).resolve().parent
    command = [sys.executable, "-c", SLOW_CLI, str(REPO_ROOT), str(tests), str(pause), "train", *TINY_ARGS]
    pipe = subprocess.PIPE
    return subprocess.Popen([*command, "--out", str(out)], cwd=REPO_ROOT, stdout=pipe, stderr=pipe, text=True)


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_process_on_the_same_run_is_refused_and_a_killed_holder_does_not_block(tmp_path):
    folder = tmp_path / "cifar10" / "smoke-12it" / "resnet8-A-seed0"
    holder = slow_cli(tmp_path, pause=600)  # stuck in its first step, holding the run
    try:
        lock = folder / LOCK_FILE
        wait_for(lambda: lock.is_file() and f"pid {holder.pid} " in lock.read_text())
        second = subprocess.run(
            [sys.executable, "-m", "resnet_repro", "train", *TINY_ARGS, "--out", str(tmp_path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and second.stderr.startswith("error: "), second.stderr
        assert f"{folder}: another process is training this run (pid {holder.pid} on host" in second.stderr
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]  # the second one wrote nothing
    finally:
        holder.kill()  # kill -9: no chance to clean up
        holder.communicate()
    assert (folder / LOCK_FILE).is_file()  # left behind, but the kernel let go of the lock
    assert train(TINY, tmp_path, progress=False, data=fake_cifar()) == folder
    assert (folder / RUN_FILE).is_file() and not (folder / LOCK_FILE).exists()


def test_sigterm_saves_a_checkpoint_like_ctrl_c(reference, tmp_path, capsys):
    trainer_process = slow_cli(tmp_path, pause=0.05)
    try:
        assert trainer_process.stdout.readline().strip() == "iteration 1"
        trainer_process.send_signal(signal.SIGTERM)
        _, err = trainer_process.communicate(timeout=120)
    finally:
        trainer_process.kill()
    assert trainer_process.returncode == 130, err
    folder = tmp_path / "cifar10" / "smoke-12it" / "resnet8-A-seed0"
    saved = torch.load(folder / CHECKPOINT_FILE, weights_only=True)["loop"]["iteration"]
    assert 1 <= saved < 12 and f"Saved iteration {saved}" in err
    assert train(TINY, tmp_path, progress=False, data=fake_cifar()) == folder
    assert f"resuming from iteration {saved} of 12" in capsys.readouterr().out
    assert read(folder, HISTORY_FILE) == read(reference, HISTORY_FILE)  # nothing lost


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("empty", "empty file"),
        ("garbage", "truncated or damaged"),
        ("foreign pickle", "truncated or damaged"),
        ("truncated", "truncated or damaged"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_naming_it_and_the_remedy(tmp_path, monkeypatch, capsys, kind, says):
    with pytest.raises(KeyboardInterrupt):
        train(TINY, tmp_path, progress=False, data=fake_cifar(), stop_after=2)
    path = tmp_path / "cifar10" / "smoke-12it" / "resnet8-A-seed0" / CHECKPOINT_FILE
    whole = path.read_bytes()
    damaged = {
        "empty": b"",
        "garbage": os.urandom(2000),
        "foreign pickle": pickle.dumps(os.getcwd),  # torch's own error would say to use weights_only=False
        "truncated": whole[: len(whole) // 2],
    }
    path.write_bytes(damaged[kind])
    prepare = trainer.prepare_data
    monkeypatch.setattr(trainer, "prepare_data", lambda config, data, progress: prepare(config, fake_cifar()))
    capsys.readouterr()
    assert main(["train", *TINY_ARGS, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: unreadable checkpoint.pt ({says}"), err
    assert "train the run again from the start (its train command with --force), or delete the file" in err
    assert "weights_only" not in err
    if kind == "empty":  # the remedy works (once is enough: it trains the run)
        assert main(["train", *TINY_ARGS, "--out", str(tmp_path), "--force"]) == 0


def test_a_damaged_or_disagreeing_run_json_or_history_is_named(reference, tmp_path):
    folder = copy_run(reference, tmp_path)
    record, history = read(folder, RUN_FILE), read(folder, HISTORY_FILE)

    def refused(*fragments):
        with pytest.raises(ValueError) as caught:
            train(TINY, tmp_path, progress=False, data=fake_cifar())
        message = str(caught.value)
        assert "\n" not in message and all(f in message for f in fragments), message

    (folder / RUN_FILE).write_text(record[: len(record) // 2])  # truncated
    refused(f"{folder / RUN_FILE}: unreadable run.json (", "--force", "delete the file")
    (folder / RUN_FILE).write_text(record)
    (folder / HISTORY_FILE).write_text("")
    refused(f"{folder / HISTORY_FILE}: unreadable history.csv (empty file)", "or delete the run folder")
    (folder / HISTORY_FILE).unlink()
    refused(f"{folder / HISTORY_FILE}: unreadable history.csv (missing)", "--force")
    # What two writers left (issue 15): the curve of a run cut short beside the run.json of the whole run.
    (folder / HISTORY_FILE).write_text("".join(history.splitlines(keepends=True)[:2]))
    refused(f"{folder}: history.csv and run.json disagree", "iteration 4 ", "12 iterations", "--force")
    (folder / HISTORY_FILE).write_text(history)
    assert train(TINY, tmp_path, progress=False, data=fake_cifar()) == folder  # whole again: reused


TORCH_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 146688 vs 146584"


def test_a_full_disk_while_writing_the_results_is_one_line_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    save = torch.save

    def disk_full_for_the_weights(payload, path):  # torch.save's error when the disk fills under it
        if "weights.pt" not in str(path):
            return save(payload, path)  # the checkpoints still fit
        Path(path).write_bytes(b"the first part of the weights")
        raise RuntimeError(TORCH_FULL_DISK)

    prepare = trainer.prepare_data
    monkeypatch.setattr(trainer, "prepare_data", lambda config, data, progress: prepare(config, fake_cifar()))
    monkeypatch.setattr(torch, "save", disk_full_for_the_weights)
    assert main(["train", *TINY_ARGS, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    folder = tmp_path / "cifar10" / "smoke-12it" / "resnet8-A-seed0"
    assert err.count("\n") == 1 and err.startswith(f"error: {folder / 'weights.pt'}: not written"), err
    assert "free space" in err and "unexpected pos" in err
    left = sorted(p.name for p in folder.iterdir())
    assert "weights.pt" not in left and RUN_FILE not in left and not [n for n in left if ".tmp" in n]
    assert CHECKPOINT_FILE in left  # unfinished, so the same command goes on from the last eval point
    monkeypatch.undo()
    monkeypatch.setattr(trainer, "prepare_data", lambda config, data, progress: prepare(config, fake_cifar()))
    assert main(["train", *TINY_ARGS, "--out", str(tmp_path)]) == 0
    assert "resuming from iteration 8 of 12" in capsys.readouterr().out


def test_a_finished_run_says_so_even_without_progress(reference, tmp_path, capsys):
    folder = copy_run(reference, tmp_path)
    train(TINY, tmp_path, progress=False, data=fake_cifar())
    assert f"{folder}: finished already" in capsys.readouterr().out


def test_a_finished_run_on_an_archive_whose_content_changed_is_not_reused(tmp_path, monkeypatch, capsys):
    """Same --data path, other images: the run must not pass for one on these (small fake archives)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(data_module, "EXPECTED_PER_CLASS", {"train": 13, "test": 2})  # 130 train images
    archive = tmp_path / "mine.tar.gz"
    tree = make_tree(tmp_path / "tree", counts={"train": 13, "test": 2})
    make_tar(tree, archive)
    argv = ["train", "--arch", "resnet8", "--iterations", "1", "--eval-points", "1", "--device", "cpu"]
    argv += ["--data", str(archive), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    assert main(argv) == 0  # unchanged: reused
    assert "finished already" in capsys.readouterr().out
    Image.new("RGB", (32, 32), (9, 9, 9)).save(tree / "train" / "cat" / "0000.png")
    make_tar(tree, archive)  # the same path, other content
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its data changed since (sha256" in err and "--force" in err, err


def test_an_official_run_trains_beside_the_committed_jpeg_run_of_the_same_net(tmp_path, monkeypatch, capsys):
    """Issue 24: a reader's run on the official files (the download a stand-in here) is neither refused nor
    taken for our committed JPEG run of the same net and budget: it trains in its own folder beside it."""
    committed = DEFAULT_RESULTS_DIR / "cifar10-jpeg" / "quick" / "plain20-seed0"
    results = tmp_path / "results"
    jpeg = results / "cifar10-jpeg" / "quick" / "plain20-seed0"
    shutil.copytree(committed, jpeg)
    before = {path.name: path.read_bytes() for path in jpeg.iterdir()}
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    monkeypatch.setattr(FakeCIFAR10, "per_class", {"train": 13, "test": 2})  # 130 train images: a batch
    monkeypatch.setattr(data_module, "EXPECTED_PER_CLASS", FakeCIFAR10.per_class)
    official = RunConfig(arch="plain20", budget="quick", device="cpu", compile="off")  # data=None
    with pytest.raises(KeyboardInterrupt):  # trained (one step, then stopped as by Ctrl-C), not refused
        train(official, results, progress=False, stop_after=1)
    folder = results / "cifar10" / "quick" / "plain20-seed0"
    checkpoint = torch.load(folder / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["loop"]["iteration"] == 1 and not (folder / RUN_FILE).exists()
    assert {path.name: path.read_bytes() for path in jpeg.iterdir()} == before  # ours untouched
    argv = ["reproduce", "fig1", "--budget", "quick", "--dry-run", "--out", str(results)]
    assert main(argv) == 0  # "done" means done on the data asked for
    assert capsys.readouterr().out.splitlines() == [
        f"to train  {results / 'cifar10' / 'quick' / name}" for name in ("plain20-seed0", "plain56-seed0")
    ]


def test_an_unusable_out_is_found_before_any_data_is_read(tmp_path, monkeypatch, capsys):
    out = tmp_path / "a-file"
    out.write_text("not a folder")
    monkeypatch.setattr(trainer, "prepare_data", lambda *a, **k: pytest.fail("read data before --out"))
    assert main(["train", *TINY_ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out} is a file, not a folder" in err and "--out" in err, err


def test_the_lock_is_one_writer_per_folder_and_released_on_return(tmp_path):
    with run_lock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on host"), run_lock(tmp_path / "run"):
            pass
        with run_lock(tmp_path / "other"):  # another folder is free
            pass
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    with run_lock(tmp_path / "run"):  # free again
        pass
