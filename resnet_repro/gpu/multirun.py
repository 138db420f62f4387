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
  checkpoint (`GracefulInterrupt.request_all`); runs not started yet are not started.

Runs start longest first, so that the last ones to finish are short and the GPU is not left with one run.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from resnet_repro.cifar.data import CifarData
from resnet_repro.cifar.loop import resolve_speed
from resnet_repro.cifar.trainer import train
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.runtime import GracefulInterrupt, cudnn_benchmark, resolve_device

POLL_S = 0.2


@dataclass(frozen=True)
class RunOutcome:
    config: RunConfig
    status: str  # "done", "stopped" (checkpoint saved), "failed", "skipped" (cannot finish in time),
    # "not started" (time limit or Ctrl-C came first)
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"


def run_size(config: RunConfig) -> int:
    """iterations x depth: what a run's length is roughly proportional to."""
    return config.plan().iterations * config.depth


def longest_first(configs: Sequence[RunConfig]) -> list[RunConfig]:
    """The runs ordered by `run_size`, the largest first (a stable sort: ties keep their order)."""
    return sorted(configs, key=run_size, reverse=True)


def train_concurrently(
    configs: Sequence[RunConfig],
    results_dir: str | Path | None = None,
    data: CifarData | None = None,
    at_once: int | None = None,
    seconds: float | None = None,
    fits: Callable[[RunConfig, float], bool] | None = None,
    force: bool = False,
    report: Callable[[str], None] | None = print,
) -> list[RunOutcome]:
    """Train `configs` in this process, at most `at_once` at a time (default: all); outcomes in their order.

    data: CIFAR-10 already loaded (each run takes its subset/validation split as `train` does); None
    loads it in every run. seconds: a time limit, after which running runs stop with a checkpoint (the
    same call resumes them) and waiting ones never start; fits(config, seconds left) may skip a run that
    cannot finish in the time left. A failed run does not stop the others. Ctrl-C stops all (each saves
    its checkpoint) and is raised again.
    """
    say = report or (lambda _message: None)
    configs = list(configs)
    order = longest_first(configs)
    number = {id(config): i for i, config in enumerate(configs)}
    waiting: queue.SimpleQueue[RunConfig] = queue.SimpleQueue()
    for config in order:
        waiting.put(config)
    outcomes: dict[int, RunOutcome] = {}
    stop = threading.Event()
    deadline = None if seconds is None else time.monotonic() + seconds
    workers = max(1, min(at_once or len(configs), len(configs)))

    def work() -> None:
        stream = None
        while True:
            try:
                config = waiting.get_nowait()
            except queue.Empty:
                return
            index = number[id(config)]
            name = f"[{index + 1}/{len(configs)}] {config.arch}-{config.shortcut}-seed{config.seed}"
            left = float("inf") if deadline is None else deadline - time.monotonic()
            if stop.is_set() or left <= 0:
                outcomes[index] = RunOutcome(config, "not started")
                continue
            if fits is not None and not fits(config, left):
                say(f"{name}: skipped, cannot finish in {left:.0f} s")
                outcomes[index] = RunOutcome(config, "skipped")
                continue
            device = resolve_device(config.device)
            if device.type == "cuda" and stream is None:
                stream = torch.cuda.Stream(device)  # this thread's runs go on their own stream
            say(f"{name}: started")
            began = time.monotonic()
            try:
                with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                    train(config, results_dir, progress=False, force=force, data=data)
                    if stream is not None:
                        stream.synchronize()
                outcome = RunOutcome(config, "done", time.monotonic() - began)
            except KeyboardInterrupt:
                outcome = RunOutcome(config, "stopped", time.monotonic() - began)
            except Exception as err:  # one failed run must not end the others
                message = f"{type(err).__name__}: {' '.join(str(err).split())[:500]}"
                outcome = RunOutcome(config, "failed", time.monotonic() - began, message)
            outcomes[index] = outcome
            detail = f" ({outcome.error})" if outcome.error else ""
            say(f"{name}: {outcome.status} in {outcome.seconds:.0f} s{detail}")

    first = configs[0] if configs else None
    benchmark = first is not None and resolve_speed(first, resolve_device(first.device), 1).cudnn_benchmark
    threads = [threading.Thread(target=work, name=f"run-{i}", daemon=True) for i in range(workers)]
    with cudnn_benchmark(benchmark):
        for thread in threads:
            thread.start()
        interrupted = False
        try:
            while any(thread.is_alive() for thread in threads):
                if not stop.is_set() and deadline is not None and time.monotonic() >= deadline:
                    say("time limit reached: stopping the running runs (they save checkpoints)")
                    stop.set()
                if stop.is_set():
                    GracefulInterrupt.request_all()  # again each poll: a run may have just started
                for thread in threads:
                    thread.join(timeout=POLL_S / len(threads))
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            while any(thread.is_alive() for thread in threads):
                GracefulInterrupt.request_all()
                for thread in threads:
                    thread.join(timeout=POLL_S)
    if interrupted:
        raise KeyboardInterrupt
    return [outcomes.get(i, RunOutcome(config, "not started")) for i, config in enumerate(configs)]
