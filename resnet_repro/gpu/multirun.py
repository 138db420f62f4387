"""Several runs in one process, each in its own thread and, on CUDA, on its own stream.

Separate processes only take turns on a GPU: one device session measured 8 processes at ~2.3 TFLOPS
each, whatever the depth, ~2% of an H200 in all. Within one process, kernels launched on different
streams can run at the same time; with whole-step CUDA graphs (fast_step.py) a thread needs little of
the GIL per step (a replay and three small launches), so a few threads keep the GPU fed. One process
also compiles each network once and has one compile cache to load and save (compile_cache.py).

Each run is `trainer.train`, unchanged: its files, checkpoints, eval points and ResNet-110's warm-up are
those of a run trained alone, and on the CPU its numbers are bit for bit those of a run trained alone
(the tests check the history rows). What is shared, and how it is kept apart:
- torch's global random generator (initial weights, checkpoint restore): `train` holds a lock while it
  seeds and draws from it;
- cudnn.benchmark, a process-wide flag that `train` sets and restores: set here once, for all runs, to
  the value every run picks, so no run's restore changes it under another;
- graph captures: one at a time (fast_step's lock), in thread-local capture mode;
- Ctrl-C and the time limit: the main thread asks every running run to stop at its next step with a
  checkpoint (`GracefulInterrupt.request_all`, in `runs.queue.Threads`); runs not started yet are not
  started.

Runs start longest first, so that the last ones to finish are short and the GPU is not left with one run.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from resnet_repro.cifar.data import CifarData
from resnet_repro.cifar.loop import resolve_speed
from resnet_repro.cifar.trainer import train
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.folders import run_name
from resnet_repro.runs.queue import Outcome, Threads, run_queue, run_size
from resnet_repro.runs.runtime import cudnn_benchmark, resolve_device


def train_concurrently(
    configs: Sequence[RunConfig],
    results_dir: str | Path | None = None,
    data: CifarData | None = None,
    at_once: int | None = None,
    seconds: float | None = None,
    fits: Callable[[RunConfig, float], bool] | None = None,
    force: bool = False,
    report: Callable[[str], None] | None = print,
) -> list[Outcome]:
    """Train `configs` in this process, at most `at_once` at a time (default: all); outcomes in their order.

    data: CIFAR-10 already loaded (each run takes its subset/validation split as `train` does); None
    loads it in every run. The time limit (`seconds`, `fits(config, seconds left)`), Ctrl-C and failures
    are `runs.queue.run_queue`'s rules.
    """
    configs = list(configs)
    order = sorted(range(len(configs)), key=lambda i: run_size(configs[i]), reverse=True)
    launcher = Threads(
        functools.partial(_train_on_own_stream, results_dir=results_dir, data=data, force=force), run_name
    )
    first = configs[0] if configs else None
    benchmark = first is not None and resolve_speed(first, resolve_device(first.device), 1).cudnn_benchmark
    with cudnn_benchmark(benchmark):
        outcomes = run_queue(
            [configs[i] for i in order],
            launcher,
            places=("thread",),
            per_place=max(1, min(at_once or len(configs), len(configs))),
            seconds=seconds,
            fits=None if fits is None else lambda index, left: fits(configs[order[index]], left),
            report=report,
        )
    by_input = dict(zip(order, outcomes, strict=True))
    return [by_input[i] for i in range(len(configs))]


def _train_on_own_stream(config: RunConfig, results_dir, data, force) -> None:
    device = resolve_device(config.device)
    stream = torch.cuda.Stream(device) if device.type == "cuda" else None
    with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
        train(config, results_dir, progress=False, force=force, data=data)
        if stream is not None:
            stream.synchronize()
