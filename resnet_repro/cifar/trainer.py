"""Train one CIFAR-10 network with the paper's recipe (section 4.2), fast, resumable, with its results.

The recipe: per-pixel mean subtraction; pad 4 + random 32x32 crop + random horizontal flip; SGD with
momentum 0.9, weight decay 1e-4 (on every parameter), mini-batch 128; the schedule of `paper/recipe.py`.
The reported error is the test error at the end of training, never the best one seen.

The step and the speed options that make it fast without changing it are `loop.py`'s; here
the loop is run through the schedule, with its eval points, checkpoints and results.

Never lose work: a checkpoint (model, optimizer, RNG states, data-order position, partial sums, history)
is written atomically at every eval point, every `checkpoint_minutes`, and on Ctrl-C; rerunning the same
call resumes from it, and on the CPU the resumed run is bit-for-bit the uninterrupted one.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from resnet_repro.cifar.data import CifarData, load_cifar10, source_sha256, split_validation, take_subset
from resnet_repro.cifar.loop import SpeedOptions, TrainingLoop, resolve_speed
from resnet_repro.models import response_layers
from resnet_repro.paper.counting import count_macs, count_params
from resnet_repro.paper.recipe import (
    BATCH_SIZE,
    MOMENTUM,
    PAD,
    WARMUP_UNTIL_TRAIN_ERROR,
    WEIGHT_DECAY,
    eval_iterations,
    learning_rate,
)
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.files import damaged_file, read_history, read_run_record, write_csv, write_json
from resnet_repro.runs.folders import (
    CHECKPOINT_FILE,
    GRAD_NORM_COLUMNS,
    GRAD_NORM_FILE,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    LAYER_STD_COLUMNS,
    LAYER_STD_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    dataset_label,
    is_finished,
    is_official_source,
    run_folder,
    run_name,
)
from resnet_repro.runs.lock import run_lock
from resnet_repro.runs.runtime import (
    Clock,
    GracefulInterrupt,
    check_same_run,
    cudnn_benchmark,
    load_checkpoint,
    resolve_device,
    run_provenance,
    run_record,
    save_checkpoint,
)
from resnet_repro.runs.weights import build_model, save_weights

# ---------------------------------------------------------------------------------------------------------
# How the recipe (section 4.2, `paper/recipe.py`) is run
# ---------------------------------------------------------------------------------------------------------

WARMUP_CHECK_EVERY = 10  # iterations: warm-up ends when these mini-batches' error is below 80%
CHECKPOINT_FORMAT = 1
_GLOBAL_RNG_LOCK = threading.Lock()  # held while a run seeds torch's global generator and draws from it


def loop_class(speed: SpeedOptions) -> type[TrainingLoop]:
    """TrainingLoop, or gpu.fast_step.GraphedTrainingLoop when speed.cuda_graph is on (one graph a step)."""
    if speed.cuda_graph == "off":
        return TrainingLoop
    from resnet_repro.gpu.fast_step import GraphedTrainingLoop  # the GPU path loads only when asked for

    return GraphedTrainingLoop


# ---------------------------------------------------------------------------------------------------------
# Data for a run
# ---------------------------------------------------------------------------------------------------------


def prepare_data(config: RunConfig, data: CifarData | None = None, progress: bool = True) -> CifarData:
    """The images a run trains and tests on: loaded (unless given), the smoke subset, the validation split."""
    subset = config.plan().subset
    if data is None:
        data = load_cifar10(config.data, subset=subset, progress=progress)
    elif subset is not None and data.identity.get("subset") != list(subset):
        data = take_subset(data, subset)
    if config.val_split:
        data = split_validation(data, size=config.val_split, seed=0)  # the same held-out set for every seed
    return data


def finished_run_data(folder: Path, data: str | Path | CifarData | None = None, progress: bool = False):
    """The images a finished run trained and tested on, as prepare_data gave them to it, checked against
    the dataset its run.json records. data: where the dataset is now, if not at the path the run recorded,
    or the dataset already in memory."""
    record = read_run_record(folder)
    config = RunConfig.from_dict(record["config"])
    if isinstance(data, str | Path):
        config = replace(config, data=str(data))
    loaded = prepare_data(config, data if isinstance(data, CifarData) else None, progress=progress)
    recorded = record["provenance"]["dataset"]
    if dataset_key(loaded.identity) != dataset_key(recorded):
        raise ValueError(
            f"{folder}: the run was trained on {dataset_label(recorded)} (sha256 "
            f"{str(recorded.get('sha256'))[:12]}), but {config.data or 'the official download'} is "
            f"{dataset_label(loaded.identity)} (sha256 {str(loaded.identity.get('sha256'))[:12]}); "
            "pass --data with the run's dataset"
        )
    return loaded


def dataset_key(identity: dict) -> dict:
    """What must match for two runs to have seen the same images."""
    subset = identity.get("subset")
    return {
        "sha256": identity.get("sha256"),
        "subset": list(subset) if subset else None,
        "validation": identity.get("validation"),
    }


# ---------------------------------------------------------------------------------------------------------
# A run's bookkeeping: history, warm-up, times (what the checkpoint holds besides the loop)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RunState:
    history: list[dict] = field(default_factory=list)
    warmup_ended_at: int | None = None  # first iteration at the full rate (None: no warm-up, or not yet)
    train_time_s: float = 0.0  # in the training loop (steps and test passes), over all sessions
    wall_time_s: float = 0.0  # in train(), including data loading and compilation, over all sessions
    sessions: int = 0  # how many train() calls this run took (1 + resumptions)
    eval_time_s: float = 0.0  # of train_time_s: in test passes and gradient-norm probes
    grad_norms: list[dict] = field(default_factory=list)  # rows of grad_norm.csv


@dataclass
class Session:
    """One train() call of a run: its folder, what it trains on, the loop and the run's bookkeeping."""

    folder: Path
    config: RunConfig
    data: CifarData
    loop: TrainingLoop
    state: RunState
    clock: Clock  # started when train() was called


# ---------------------------------------------------------------------------------------------------------
# train(): the public entry point
# ---------------------------------------------------------------------------------------------------------


def train(
    config: RunConfig,
    results_dir=None,
    progress: bool = True,
    force: bool = False,
    *,
    data: CifarData | None = None,
    stop_after: int | None = None,
) -> Path:
    """Train `config` into its run folder (see `runs/folders.py`) and return the folder.

    A finished run is returned as it is unless `force`; a checkpointed one resumes. data: CIFAR-10
    already in memory (it must be the source `config.data` names; the smoke subset and the validation
    split are still applied). stop_after: stop as if Ctrl-C was pressed once this many iterations are
    done (saves a checkpoint, raises KeyboardInterrupt): for tests and for splitting a long run.

    One writer per run folder: the folder's lock (`runs/lock.py`) is held throughout, taken before anything
    there is read; RunLockedError if another process holds it.
    """
    folder = run_folder(config, results_dir)
    with run_lock(folder):
        return _train_holding_lock(folder, config, progress, force, data, stop_after)


def _train_holding_lock(folder, config, progress, force, data, stop_after) -> Path:
    if is_finished(folder) and not force:
        _check_finished_run(folder, config, data)
        print(f"{folder}: finished already (force=True or --force trains it again)")
        return folder
    if force:
        for name in (RUN_FILE, HISTORY_FILE, LAYER_STD_FILE, GRAD_NORM_FILE, WEIGHTS_FILE, CHECKPOINT_FILE):
            (folder / name).unlink(missing_ok=True)
    clock = Clock()
    device = resolve_device(config.device)
    data = prepare_data(config, data, progress)
    checkpoint = _load_checkpoint(folder, config, data, device)
    speed = resolve_speed(config, device, config.plan().iterations)
    with cudnn_benchmark(speed.cudnn_benchmark):
        with _GLOBAL_RNG_LOCK:  # runs in threads (multirun.py) must not reseed each other's initial weights
            torch.manual_seed(config.seed)  # the initial weights
            loop = loop_class(speed)(build_model(config), data, device, speed, config.seed)
            state = RunState()
            if checkpoint is not None:
                loop.load_state_dict(checkpoint["loop"])  # also restores the global RNG state
                state = RunState(**checkpoint["state"])
                print(f"{folder}: resuming from iteration {loop.iteration:,} of {config.plan().iterations:,}")
        state.sessions += 1
        _run(Session(folder, config, data, loop, state, clock), progress, stop_after)
    return folder


def _run(session: Session, progress: bool, stop_after: int | None) -> None:
    """Step through the schedule from wherever the loop is: warm-up, eval points, checkpoints, Ctrl-C."""
    config, folder, loop, state = session.config, session.folder, session.loop, session.state
    schedule = config.schedule()
    points = set(eval_iterations(schedule.iterations, config.eval_points))
    checkpoint_path = folder / CHECKPOINT_FILE
    name = "/".join(folder.parts[-3:])  # <dataset>/<budget label>/<run>
    bar = tqdm(total=schedule.iterations, initial=loop.iteration, desc=name, unit="it", disable=not progress)
    if state.history:
        bar.set_postfix(_postfix(state.history[-1]), refresh=False)
    last_save, saved_at = time.monotonic(), loop.iteration if checkpoint_path.is_file() else None

    def save() -> None:
        nonlocal last_save, saved_at
        session.clock.book(state)
        _save_checkpoint(session)
        last_save, saved_at = time.monotonic(), loop.iteration

    session.clock.start_loop()
    if not state.grad_norms:
        _record_gradient_norms(loop, state)  # at initialisation
    try:
        with GracefulInterrupt() as interrupt:
            while loop.iteration < schedule.iterations:
                warming_up = schedule.warmup_lr is not None and state.warmup_ended_at is None
                lr = learning_rate(loop.iteration, schedule, state.warmup_ended_at)
                loop.step(lr, track_window=warming_up)
                bar.update(1)
                if warming_up and loop.iteration % WARMUP_CHECK_EVERY == 0:
                    _, recent_error = loop.window.pop()  # a host sync, but only while warming up
                    if recent_error < WARMUP_UNTIL_TRAIN_ERROR:
                        state.warmup_ended_at = loop.iteration
                at_point = loop.iteration in points
                if at_point and loop.iteration < schedule.iterations:
                    bar.set_postfix(_postfix(_eval_point(loop, schedule, state)[0]))
                    save()
                    write_csv(folder / HISTORY_FILE, HISTORY_COLUMNS, state.history)  # to watch a long run
                elif time.monotonic() - last_save > config.checkpoint_minutes * 60:
                    save()
                if (
                    interrupt.requested or loop.iteration == stop_after
                ) and loop.iteration < schedule.iterations:
                    if not at_point:
                        save()
                    raise KeyboardInterrupt
            stds = _final_point(loop, schedule, state)
    except BaseException as err:
        bar.close()
        if saved_at is not None:
            what = "Stopped" if isinstance(err, KeyboardInterrupt) else "Failed"
            print(
                f"\n{what} at iteration {loop.iteration:,} of {schedule.iterations:,}. Saved iteration "
                f"{saved_at:,} to {checkpoint_path}: run the same command again to resume from there.",
                file=sys.stderr,
            )
        raise
    bar.set_postfix(_postfix(state.history[-1]))
    bar.close()
    session.clock.book(state)
    _write_results(session, stds)
    checkpoint_path.unlink(missing_ok=True)  # the results are complete: the checkpoint is not kept


def _eval_point(loop: TrainingLoop, schedule, state: RunState, layers=None) -> tuple[dict, list | None]:
    """Record one point of the curves: the mini-batches since the last point, a test pass, and the
    gradient norms."""
    train_loss, train_error = loop.interval.pop()
    started = time.perf_counter()
    test_error, stds = loop.evaluate(layers)
    state.eval_time_s += time.perf_counter() - started
    _record_gradient_norms(loop, state)
    row = {
        "iteration": loop.iteration,
        "lr": learning_rate(loop.iteration - 1, schedule, state.warmup_ended_at),  # of the last step
        "train_loss": train_loss,
        "train_error": train_error,
        "test_error": test_error,
    }
    state.history.append(row)
    return row, stds


def _record_gradient_norms(loop: TrainingLoop, state: RunState) -> None:
    started = time.perf_counter()
    layers = response_layers(loop.model)
    norms = loop.gradient_norms(layers)
    state.grad_norms += [
        {"iteration": loop.iteration, "layer": i, "name": name, "grad_norm": norm}
        for i, ((name, _), norm) in enumerate(zip(layers, norms, strict=True), 1)
    ]
    state.eval_time_s += time.perf_counter() - started


def _final_point(loop: TrainingLoop, schedule, state: RunState) -> list[dict]:
    """The last eval point, whose test pass also measures Figure 7's layer responses."""
    layers = response_layers(loop.model)
    _, stds = _eval_point(loop, schedule, state, layers)
    return [
        {"layer": i, "name": name, "std": std}
        for i, ((name, _), std) in enumerate(zip(layers, stds, strict=True), 1)
    ]


def _postfix(row: dict) -> dict:
    return {
        "loss": f"{row['train_loss']:.3f}",
        "train_err": f"{row['train_error']:.1f}%",
        "test_err": f"{row['test_error']:.1f}%",
        "lr": f"{row['lr']:g}",
    }


# ---------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------


def _save_checkpoint(session: Session) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "identity": session.config.result_identity(),
        "dataset": dataset_key(session.data.identity),
        "data_device": session.loop.data_device.type,  # generator states only load on the same kind of device
        "loop": session.loop.state_dict(),
        "state": asdict(session.state),
    }
    save_checkpoint(session.folder / CHECKPOINT_FILE, payload)


def _load_checkpoint(folder: Path, config: RunConfig, data: CifarData, device: torch.device) -> dict | None:
    path = folder / CHECKPOINT_FILE
    keys = {"dataset", "data_device", "loop", "state"}
    checkpoint = load_checkpoint(path, CHECKPOINT_FORMAT, keys, config.result_identity())
    if checkpoint is None:
        return None
    if checkpoint["dataset"] != dataset_key(data.identity):
        raise ValueError(
            f"{path}: checkpoint of a run on other data ({checkpoint['dataset']['sha256']}); "
            "use the same --data, or --force to start over"
        )
    # The data-order and augmentation generators live where the data lives.
    data_device = device.type if config.data_on_device != "off" else "cpu"
    if checkpoint["data_device"] != data_device:
        raise ValueError(
            f"{path}: checkpoint written with the data on {checkpoint['data_device']}; resume it there "
            f"(--device {checkpoint['data_device']}) or pass --force to start over"
        )
    return checkpoint


def _check_finished_run(folder: Path, config: RunConfig, data: CifarData | None) -> None:
    """A finished run only stands for `config` if it computed the same thing on the same images, and its
    files are whole and agree (one line naming the file otherwise)."""
    record = read_run_record(folder)
    try:
        previous = RunConfig.from_dict(record["config"])
        dataset = record["provenance"]["dataset"]
        recorded = dataset["sha256"]
        read_history(folder, record)
    except (KeyError, TypeError) as err:
        raise ValueError(damaged_file(folder / RUN_FILE, f"no {err}")) from None
    check_same_run(folder / RUN_FILE, "results", previous.result_identity(), config.result_identity())
    # The data's identity is its content (the sha256 in run.json), not its path: a file can be replaced.
    if data is not None:
        now = data.identity.get("sha256")
    elif is_official_source(previous.data) or is_official_source(config.data):
        # The official download never changes (None and "official" both name it).
        now = recorded if is_official_source(previous.data) == is_official_source(config.data) else None
    else:
        now = source_sha256(config.data)
    if now != recorded:
        changed = previous.data is not None and config.data is not None and now is not None
        why = (
            f"its data changed since (sha256 {recorded[:12]}... then, {now[:12]}... now)"
            if changed and Path(previous.data).resolve() == Path(config.data).resolve()
            else f"it trained on {dataset.get('name')} data ({previous.data or 'the official download'}), "
            f"not {config.data or 'the official download'}"
        )
        raise ValueError(
            f"{folder}: finished run, but {why}; pass --force to train it again or --out to keep both"
        )


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------


def _write_results(session: Session, stds: list[dict]) -> None:
    """The curves, layer responses, gradient norms and weights, then run.json last: its presence marks the
    run as finished."""
    folder, config, loop, state = session.folder, session.config, session.loop, session.state
    write_csv(folder / HISTORY_FILE, HISTORY_COLUMNS, state.history)
    write_csv(folder / LAYER_STD_FILE, LAYER_STD_COLUMNS, stds)
    write_csv(folder / GRAD_NORM_FILE, GRAD_NORM_COLUMNS, state.grad_norms)
    save_weights(folder / WEIGHTS_FILE, loop.model)
    plan, schedule = config.plan(), config.schedule()
    last = state.history[-1]
    provenance = run_provenance(loop.device, session.data.identity, config.seed)
    record = run_record(
        config,
        run_name(config),
        provenance,
        budget={**asdict(plan), "eval_points": config.eval_points},
        recipe={
            "batch_size": BATCH_SIZE,
            "momentum": MOMENTUM,
            "weight_decay": WEIGHT_DECAY,
            "base_lr": schedule.base_lr,
            "lr_divisor": schedule.divisor,
            "milestones": list(schedule.milestones),
            "warmup_lr": schedule.warmup_lr,
            "warmup_until_train_error": WARMUP_UNTIL_TRAIN_ERROR if schedule.warmup_lr else None,
            "warmup_ended_at": state.warmup_ended_at,
            "preprocessing": "per-pixel mean subtraction",
            "augmentation": f"zero-pad {PAD}, random 32x32 crop, random horizontal flip",
        },
        final_test_error=last["test_error"],  # at the end of training, never the best seen
        final_train_error=last["train_error"],  # augmented mini-batches since the previous eval point
        final_train_loss=last["train_loss"],
        params=count_params(loop.model),
        macs=count_macs(loop.model),
        wall_time_s=state.wall_time_s,
        train_time_s=state.train_time_s,
        eval_time_s=state.eval_time_s,
        sessions=state.sessions,
        speed=asdict(loop.speed),
        checkpoint="deleted when the run finished",
        weights=f"{WEIGHTS_FILE}: conv and linear weights in fp16, batch norm in fp32 (runs/weights.py)",
    )
    write_json(folder / RUN_FILE, record)
