"""The paper's CIFAR-10 experiments as named sets of runs, and `reproduce` to train what is missing.

Runs are shared: every experiment's run of, say, ResNet-56-A at the quick budget with seed 0 is the one
folder <results_dir>/<dataset>/quick/resnet56-A-seed0/ (see `runs/folders.py`), so Figure 6, Table 6, the
shortcut comparison and Figure 7 never train it twice; on other data it is another run, in another folder.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from resnet_repro.runs.config import PLAIN_SHORTCUT, RunConfig
from resnet_repro.runs.folders import DEFAULT_RESULTS_DIR, is_finished, run_folder
from resnet_repro.runs.lock import RunLockedError, check_writable
from resnet_repro.sweeps.spread import CPU, INTERRUPTED_EXITS, LOCKED_EXIT

STOP_GRACE_S = 30.0  # at a time limit, how long runs may take to write their checkpoints

_PLAIN_DEPTHS = (20, 32, 44, 56)
_RESNET_DEPTHS = (20, 32, 44, 56, 110)

# name -> the (arch, shortcut) specs it needs; "-" = a plain net.
EXPERIMENTS: dict[str, list[tuple[str, str]]] = {
    "fig1": [("plain20", PLAIN_SHORTCUT), ("plain56", PLAIN_SHORTCUT)],
    "fig6": [(f"plain{d}", PLAIN_SHORTCUT) for d in _PLAIN_DEPTHS]
    + [(f"resnet{d}", "A") for d in _RESNET_DEPTHS],
    "table6": [(f"resnet{d}", "A") for d in _RESNET_DEPTHS],
    "shortcuts": [(f"resnet{d}", option) for d in (20, 56) for option in ("A", "B", "C")],
    "fig7": [("plain20", PLAIN_SHORTCUT), ("plain56", PLAIN_SHORTCUT)]
    + [(f"resnet{d}", "A") for d in (20, 56, 110)],
}
DESCRIPTIONS = {
    "fig1": "plain-20 and plain-56: the degradation problem",
    "fig6": "plain-20/32/44/56 and ResNet-20/32/44/56/110 curves (+ ResNet-1202 with --include-1202)",
    "table6": "ResNet-20/32/44/56/110 test errors (+ ResNet-1202 with --include-1202)",
    "shortcuts": "ResNet-20 and ResNet-56 with shortcut options A, B and C",
    "fig7": "layer responses of plain-20/56 and ResNet-20/56/110 (reuses finished runs)",
}
WITH_1202 = ("fig6", "table6")  # ResNet-1202 (19.4M parameters, ~10x ResNet-110's time) only when asked


def experiment_specs(experiment: str, include_1202: bool = False) -> list[tuple[str, str]]:
    """The (arch, shortcut) specs of `experiment`."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}: allowed are {', '.join(EXPERIMENTS)}")
    specs = list(EXPERIMENTS[experiment])
    if include_1202 and experiment in WITH_1202:
        specs.append(("resnet1202", "A"))
    return specs


def experiment_configs(
    experiments: str | Sequence[str],
    budget: str = "quick",
    seeds: int = 1,
    include_1202: bool = False,
    **overrides,
) -> list[RunConfig]:
    """One RunConfig per spec and seed (seeds 0..seeds-1) of one or several experiments, each run once
    (experiments share runs). overrides: any other RunConfig field."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer (runs use seeds 0..K-1), got {seeds!r}")
    for key in ("arch", "shortcut", "seed", "budget"):
        if key in overrides:
            raise ValueError(f"{key} is set by the experiment; it cannot be overridden")
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    specs = dict.fromkeys(spec for name in names for spec in experiment_specs(name, include_1202))
    return [
        RunConfig.from_dict({"arch": arch, "shortcut": shortcut, "budget": budget, "seed": seed, **overrides})
        for arch, shortcut in specs
        for seed in range(seeds)
    ]


def reproduce(
    experiments: str | Sequence[str],
    budget: str = "quick",
    data: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    device: str = "auto",
    seeds: int = 1,
    include_1202: bool = False,
    progress: bool = True,
    force: bool = False,
    per_gpu: int | None = 1,
    shard: str | None = None,
    minutes: float | None = None,
    in_process: bool = False,
    compile_cache: str | os.PathLike | None = None,
    **overrides,
) -> list[Path]:
    """Train every run of `experiments` that is not finished yet; return all their run folders, in order.

    Finished runs are skipped (without even loading the data); the data is loaded once for the rest.
    per_gpu: train this many runs at once on each visible GPU (or on the CPU if there is none, each on
    its share of the cores), as subprocesses (with several GPUs they are always spread over all of them);
    None: 1 on a GPU, and on the CPU what its committed benchmark shows to be fastest
    (`spread.runs_per_cpu`).
    shard: "K/N", train only the K-th of N disjoint slices of the runs (one per node of a cluster).
    minutes: a time limit; runs still training then are stopped with a checkpoint (the same call resumes
    them), and runs that cannot finish in the time left (judged from finished runs of the same network)
    are not started.
    in_process: train the runs in this process instead, per_gpu at a time, each in its own thread and
    CUDA stream (multirun.py): their kernels overlap on the GPU, which separate processes' do not.
    compile_cache: a file of torch.compile's caches (compile_cache.py), loaded first if it is there and
    written at the end (in_process only: subprocesses would each write their own).
    overrides: other RunConfig fields (iterations, eval_points, val_split, speed options, ...).
    Raises RuntimeError if a run failed.
    """
    from resnet_repro.cifar.data import (
        load_cifar10,  # lazy: listing an experiment's folders needs no torch data code
    )
    from resnet_repro.sweeps.spread import parse_shard, runs_per_cpu, visible_gpus
    from resnet_repro.sweeps.spread import shard as take_shard

    if per_gpu is not None and per_gpu < 1:
        raise ValueError(f"per_gpu must be a positive integer, got {per_gpu!r}")
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    configs = experiment_configs(
        experiments, budget, seeds, include_1202, data=data, device=device, **overrides
    )
    if shard is not None:
        configs = take_shard(configs, *parse_shard(shard))  # of the full list, so nodes never overlap
    folders = [run_folder(config, results_dir) for config in configs]
    pairs = zip(configs, folders, strict=True)
    todo = [config for config, folder in pairs if force or not is_finished(folder)]
    if not todo:
        return folders
    check_writable(Path(results_dir) if results_dir is not None else DEFAULT_RESULTS_DIR)  # before the data
    loaded = load_cifar10(data, progress=progress)  # also fills the cache the subprocesses read
    gpus = visible_gpus() if device != CPU else []
    if per_gpu is None:
        per_gpu = 1 if gpus else runs_per_cpu()
    if in_process and len(gpus) <= 1:
        _train_in_process(todo, per_gpu, results_dir, force, minutes, progress, loaded, compile_cache)
    elif len(gpus) > 1 or per_gpu > 1:
        # Without a GPU, per_gpu runs share the CPU (each subprocess is hidden from any GPU).
        _train_in_parallel(todo, gpus or [CPU], per_gpu, results_dir, force, minutes, progress)
    else:
        _train_in_turn(todo, results_dir, force, minutes, progress, loaded)
    return folders


def estimated_seconds(config: RunConfig, results_dir: str | os.PathLike | None = None) -> float | None:
    """How long `config` should take, from the finished runs of the same network (any dataset, budget, seed
    or shortcut option: the data does not change the time a step takes) under results_dir: their slowest
    seconds per iteration x its iterations; None if there are none."""
    from resnet_repro.runs.loaders import load_runs

    runs = load_runs(results_dir)
    same = runs[runs["arch"] == config.arch]
    if same.empty:
        return None
    return float((same["wall_time_s"] / same["iterations"]).max() * config.plan().iterations)


def _fits(config: RunConfig, seconds_left: float, results_dir) -> bool:
    estimate = estimated_seconds(config, results_dir)
    return estimate is None or estimate <= seconds_left


def _train_in_parallel(configs, gpus, per_gpu, results_dir, force, minutes, progress) -> None:
    from resnet_repro.gpu.multirun import longest_first, run_size
    from resnet_repro.sweeps.spread import spread, train_job

    # On GPUs longest first, so the last runs to finish are short ones and no GPU idles at the end; on the
    # CPU, where a session ends long before a sweep does, shortest first, so each session lands runs.
    configs = longest_first(configs) if gpus != [CPU] else sorted(configs, key=run_size)
    root = Path(results_dir) if results_dir is not None else DEFAULT_RESULTS_DIR
    logs = root / "logs"
    if progress:
        where = f"each of {len(gpus)} GPU(s)" if gpus != [CPU] else "the CPU"
        print(f"{len(configs)} runs, {per_gpu} at a time on {where}; logs in {logs}/")
    outcomes = spread(
        [train_job(config, results_dir, force) for config in configs],
        gpus,
        per_gpu,
        log_dir=logs,
        report=print if progress else None,
        seconds=None if minutes is None else minutes * 60,
        fits=lambda number, left: _fits(configs[number], left, results_dir),
        stop_grace_s=STOP_GRACE_S,
    )
    # Stopped on Ctrl-C, never started, or being trained by another process: the same call resumes them.
    unfinished = (*INTERRUPTED_EXITS, LOCKED_EXIT, None)
    failed = [o for o in outcomes if not o.ok and not o.stopped and o.returncode not in unfinished]
    if failed:
        listing = "; ".join(f"{o.job.name} (exit {o.returncode}, log {o.log})" for o in failed)
        raise RuntimeError(f"{len(failed)} of {len(outcomes)} runs failed: {listing}")


def _train_in_process(configs, at_once, results_dir, force, minutes, progress, data, cache) -> None:
    """All runs in this process, `at_once` at a time, each in a thread of its own (multirun.py)."""
    from resnet_repro.gpu import compile_cache
    from resnet_repro.gpu.multirun import train_concurrently

    say = print if progress else (lambda _message: None)
    if cache is not None:
        try:
            say(compile_cache.load(cache))
        except Exception as err:  # a cache that does not load costs compile time, never the sweep
            say(f"compile cache {cache} not loaded ({type(err).__name__}: {err}): compiling from scratch")
    say(f"{len(configs)} runs in this process, {at_once} at a time")
    try:
        outcomes = train_concurrently(
            configs,
            results_dir,
            data,
            at_once=at_once,
            seconds=None if minutes is None else minutes * 60,
            fits=lambda config, left: _fits(config, left, results_dir),
            force=force,
            report=say,
        )
    finally:
        if cache is not None:
            try:
                say(compile_cache.save(cache))
            except Exception as err:
                say(f"compile cache not saved ({type(err).__name__}: {err})")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        listing = "; ".join(
            f"{o.config.arch}-{o.config.shortcut}-seed{o.config.seed} ({o.error})" for o in failed
        )
        raise RuntimeError(f"{len(failed)} of {len(outcomes)} runs failed: {listing}")


def _train_in_turn(configs, results_dir, force, minutes, progress, data) -> None:
    """One run after another in this process; a time limit acts as a Ctrl-C when it is up."""
    from resnet_repro.cifar.trainer import train

    deadline = None if minutes is None else time.monotonic() + minutes * 60
    timer = None
    if deadline is not None and threading.current_thread() is threading.main_thread():
        timer = threading.Timer(minutes * 60, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()
    try:
        for number, config in enumerate(configs, start=1):
            folder = run_folder(config, results_dir)
            if deadline is not None and not _fits(config, deadline - time.monotonic(), results_dir):
                if progress:
                    print(f"[{number}/{len(configs)}] {folder}: skipped, cannot finish in the time left")
                continue
            if progress:
                print(f"[{number}/{len(configs)}] {folder}")
            try:
                train(config, results_dir, progress=progress, force=force, data=data)
            except RunLockedError as err:  # another sweep or command has it: not ours to fail on
                print(f"[{number}/{len(configs)}] skipped: {err}")
    finally:
        if timer is not None:
            timer.cancel()


def experiment_folders(
    experiment: str | Sequence[str],
    budget: str = "quick",
    results_dir: str | os.PathLike | None = None,
    seeds: int = 1,
    include_1202: bool = False,
    **overrides,
) -> list[Path]:
    """Where `experiment`'s runs live (finished or not): for the book to pick its runs from results."""
    configs = experiment_configs(experiment, budget, seeds, include_1202, **overrides)
    return [run_folder(config, results_dir) for config in configs]
