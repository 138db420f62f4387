"""The paper's CIFAR-10 experiments as named sets of runs, and `reproduce` to train what is missing.

Runs are shared: every experiment's run of, say, ResNet-56-A at the quick budget with seed 0 is the one
folder <results_dir>/<dataset>/quick/resnet56-A-seed0/ (see `runs/folders.py`), so Figure 6, Table 6, the
shortcut comparison and Figure 7 never train it twice; on other data it is another run, in another folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from resnet_repro.runs.config import PLAIN_SHORTCUT, RunConfig
from resnet_repro.runs.folders import DEFAULT_RESULTS_DIR, is_finished, run_folder
from resnet_repro.runs.lock import check_writable
from resnet_repro.runs.queue import Inline, Outcome, longest_first, raise_if_failed, run_queue, run_size
from resnet_repro.sweeps.spread import CPU

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


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep trains its runs; none of these changes a run's result.

    results_dir: where the run folders go (default data/results). force: train finished runs again.
    per_gpu: this many runs at once on each visible GPU (or on the CPU without one, each on its share of
    the cores), as subprocesses with logs in <results_dir>/logs/ (with several GPUs they always spread
    over all of them); None: 1 on a GPU, and on the CPU what its committed benchmark shows to be fastest
    (`spread.runs_per_cpu`). shard: "K/N", only the K-th of N disjoint slices of the runs (one per node).
    minutes: the time limit (`runs.queue`'s stop rule); runs that cannot finish in the time left, judged
    from finished runs of the same network, are not started. in_process: the runs in this process instead,
    per_gpu at a time, each in its own thread and CUDA stream (`gpu.multirun`: their kernels overlap on
    the GPU, which separate processes' do not). compile_cache: a file of torch.compile's caches
    (`gpu.compile_cache`), loaded first if it is there and written at the end (in_process only).
    """

    results_dir: str | os.PathLike | None = None
    progress: bool = True
    force: bool = False
    per_gpu: int | None = 1
    shard: str | None = None
    minutes: float | None = None
    in_process: bool = False
    compile_cache: str | os.PathLike | None = None

    def __post_init__(self):
        if self.per_gpu is not None and (isinstance(self.per_gpu, bool) or self.per_gpu < 1):
            raise ValueError(f"per_gpu must be a positive integer or None (auto), got {self.per_gpu!r}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes!r}")
        if self.shard is not None:
            from resnet_repro.sweeps.spread import parse_shard

            parse_shard(self.shard)

    @property
    def seconds(self) -> float | None:
        return None if self.minutes is None else self.minutes * 60


SWEEP_OPTIONS = tuple(field.name for field in fields(SweepOptions))


def reproduce(
    experiments: str | Sequence[str],
    budget: str = "quick",
    seeds: int = 1,
    include_1202: bool = False,
    sweep: SweepOptions | None = None,
    **settings,
) -> list[Path]:
    """Train every run of `experiments` that is not finished yet; return all their run folders, in order.

    Finished runs are skipped (without even loading the data); the data is loaded once for the rest.
    sweep: how the runs are trained (`SweepOptions`); its fields may also be passed by name among
    `settings`. The other settings are RunConfig fields of every run (data, device, iterations,
    eval_points, val_split, speed options, ...). Raises RuntimeError if a run failed.
    """
    from resnet_repro.cifar.data import (
        load_cifar10,  # lazy: listing an experiment's folders needs no torch data code
    )
    from resnet_repro.sweeps.spread import parse_shard, runs_per_cpu, visible_gpus
    from resnet_repro.sweeps.spread import shard as take_shard

    named = {key: settings.pop(key) for key in SWEEP_OPTIONS if key in settings}
    options = replace(sweep or SweepOptions(), **named)
    configs = experiment_configs(experiments, budget, seeds, include_1202, **settings)
    if options.shard is not None:  # of the full list, so nodes never overlap
        configs = take_shard(configs, *parse_shard(options.shard))
    folders = [run_folder(config, options.results_dir) for config in configs]
    pairs = zip(configs, folders, strict=True)
    todo = [config for config, folder in pairs if options.force or not is_finished(folder)]
    if not todo:
        return folders
    results = Path(options.results_dir) if options.results_dir is not None else DEFAULT_RESULTS_DIR
    check_writable(results)  # before the data
    data = load_cifar10(todo[0].data, progress=options.progress)  # also fills the subprocesses' cache
    gpus = visible_gpus() if todo[0].device != CPU else []
    at_once = options.per_gpu or (1 if gpus else runs_per_cpu())
    if options.in_process and len(gpus) <= 1:
        outcomes = _train_in_process(todo, at_once, options, data)
    elif len(gpus) > 1 or at_once > 1:
        # Without a GPU, the runs share the CPU (each subprocess is hidden from any GPU).
        outcomes = _train_in_subprocesses(todo, gpus or [CPU], at_once, options)
    else:
        outcomes = _train_in_turn(todo, options, data)
    raise_if_failed(outcomes)
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


def fits_in(configs: Sequence[RunConfig], results_dir) -> Callable[[int, float], bool]:
    """The queue's `fits`: whether run number i can finish in the seconds left (unknown: it may start)."""

    def fits(index: int, seconds_left: float) -> bool:
        estimate = estimated_seconds(configs[index], results_dir)
        return estimate is None or estimate <= seconds_left

    return fits


def _train_in_turn(configs, options: SweepOptions, data) -> list[Outcome]:
    """One run after another in this thread, with its progress bar."""
    from resnet_repro.cifar.trainer import train

    def train_one(config):
        train(config, options.results_dir, progress=options.progress, force=options.force, data=data)

    launcher = Inline(train_one, name=lambda config: str(run_folder(config, options.results_dir)))
    return run_queue(
        configs,
        launcher,
        places=(configs[0].device,),
        seconds=options.seconds,
        fits=fits_in(configs, options.results_dir),
        report=print if options.progress else None,
    )


def _train_in_subprocesses(configs, gpus, per_gpu, options: SweepOptions) -> list[Outcome]:
    from resnet_repro.sweeps.spread import spread, train_job

    # On GPUs longest first, so the last runs to finish are short ones and no GPU idles at the end; on the
    # CPU, where a session ends long before a sweep does, shortest first, so each session lands runs.
    configs = longest_first(configs) if gpus != [CPU] else sorted(configs, key=run_size)
    root = Path(options.results_dir) if options.results_dir is not None else DEFAULT_RESULTS_DIR
    logs = root / "logs"
    if options.progress:
        where = f"each of {len(gpus)} GPU(s)" if gpus != [CPU] else "the CPU"
        print(f"{len(configs)} runs, {per_gpu} at a time on {where}; logs in {logs}/")
    return spread(
        [train_job(config, options.results_dir, options.force) for config in configs],
        gpus,
        per_gpu,
        log_dir=logs,
        report=print if options.progress else None,
        seconds=options.seconds,
        fits=fits_in(configs, options.results_dir),
    )


def _train_in_process(configs, at_once, options: SweepOptions, data) -> list[Outcome]:
    """All runs in this process, `at_once` at a time, each in a thread of its own (gpu.multirun)."""
    from resnet_repro.gpu import compile_cache
    from resnet_repro.gpu.multirun import train_concurrently

    say = print if options.progress else (lambda _message: None)
    cache = options.compile_cache
    if cache is not None:
        try:
            say(compile_cache.load(cache))
        except Exception as err:  # a cache that does not load costs compile time, never the sweep
            say(f"compile cache {cache} not loaded ({type(err).__name__}: {err}): compiling from scratch")
    say(f"{len(configs)} runs in this process, {at_once} at a time")
    estimate = fits_in(configs, options.results_dir)
    position = {id(config): index for index, config in enumerate(configs)}
    try:
        return train_concurrently(
            configs,
            options.results_dir,
            data,
            at_once=at_once,
            seconds=options.seconds,
            fits=lambda config, left: estimate(position[id(config)], left),
            force=options.force,
            report=say,
        )
    finally:
        if cache is not None:
            try:
                say(compile_cache.save(cache))
            except Exception as err:
                say(f"compile cache not saved ({type(err).__name__}: {err})")


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
