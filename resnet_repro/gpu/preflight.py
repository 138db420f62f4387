"""Preflight: in the first minute of a device session, run every fast path briefly against the plain path.

A fast path that fails, or whose numbers disagree with the plain path's, is switched off for the session
with one line saying why, and the sweep goes on with what works. `python -m resnet_repro preflight
--flags` prints the `reproduce` options for the paths that passed (ci/gpu_reproduce.sh uses them).

The paths, each checked on learnable synthetic images (a class pattern under noise, so the loss falls and
a wrong step shows), at the same seed as the plain path:
- compile-cache: the compile cache of an earlier session loads (compile_cache.py);
- graph: the whole step as one CUDA graph (fast_step.py), eager kernels inside. Checked: the graph is
  captured; the per-step loss curve is the plain path's within the noise measured between two plain runs
  (bf16 and cuDNN are not bit-exact on a GPU; on the CPU both are exact); one replay gives what the same
  step run eagerly gives; the learning rate is read from its tensor at every replay (a step at lr 0
  leaves the weights bit for bit as they were, the next at lr 0.1 does not); the crops differ between
  steps; no host sync in a step (torch.cuda.set_sync_debug_mode: a sync only slows, so it is reported,
  not switched off). The plain and graph steps' times are recorded;
- graph-compile: the same with torch.compile's kernels inside the graph (compiling costs ~30-60 s: off
  unless asked for);
- multirun: two short runs in one process (multirun.py), each in its own thread and stream, against the
  same two trained one after the other: same initial gradient norms (the global generator was not raced)
  and the same losses within tolerance; their wall times are recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from resnet_repro.cifar.data import CifarData
from resnet_repro.cifar.loop import TrainingLoop, resolve_speed
from resnet_repro.cifar.trainer import loop_class
from resnet_repro.runs.config import DEVICES, RunConfig
from resnet_repro.runs.files import write_json
from resnet_repro.runs.folders import GRAD_NORM_FILE, HISTORY_FILE, run_folder
from resnet_repro.runs.runtime import cudnn_benchmark, device_name, git_commit, resolve_device
from resnet_repro.runs.weights import build_model

PATHS = ("compile-cache", "graph", "graph-compile", "multirun")
DEFAULT_PATHS = ("compile-cache", "graph", "multirun")
FIRST_STEP_TOLERANCE = 0.02  # |loss difference| at the first step: same weights, same mini-batch
CURVE_TOLERANCE = 0.03  # + 3x the plain path's own run-to-run noise: mean |loss difference| per step
REPLAY_TOLERANCE = 1e-3  # one replay against the same step run eagerly: max |weight difference|
GRAD_NORM_TOLERANCE = 0.02  # relative: initial gradient norms of a run alone and among others


class Disagrees(Exception):
    """The fast path ran, but its numbers are not the plain path's."""


@dataclass
class Verdict:
    path: str
    ok: bool
    line: str  # one line: what was checked, or why the path is off for this session
    seconds: float = 0.0
    details: dict = field(default_factory=dict)


@dataclass
class Context:
    device: torch.device
    arch: str
    steps: int
    data: CifarData
    workdir: Path
    cache: Path | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def passed(self, path: str) -> bool:
        return path in self.verdicts and self.verdicts[path].ok


def preflight_data(n_train: int = 2048, n_test: int = 512, seed: int = 0) -> CifarData:
    """Learnable synthetic CIFAR-shaped images: each class a fixed random pattern, each image that
    pattern under its own noise (balanced labels)."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randint(0, 256, (10, 3, 32, 32), generator=g).float()

    def images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 10
        noise = torch.randint(0, 256, (n, 3, 32, 32), generator=g).float()
        return (0.6 * patterns[labels] + 0.4 * noise).round().to(torch.uint8), labels

    train_images, train_labels = images(n_train)
    test_images, test_labels = images(n_test)
    identity = {"name": "preflight", "sha256": f"preflight-{seed}-{n_train}-{n_test}", "source": "memory"}
    return CifarData(
        train_images, train_labels, test_images, test_labels, [str(i) for i in range(10)], identity
    )


def preflight(
    device: str = "auto",
    arch: str = "resnet20",
    steps: int = 40,
    paths: Sequence[str] = DEFAULT_PATHS,
    cache: str | Path | None = None,
    report: Callable[[str], None] | None = print,
    checks: dict[str, Callable[[Context], tuple[str, dict]]] | None = None,
    data: CifarData | None = None,
) -> dict[str, Verdict]:
    """Check each of `paths` (in this order) and return their verdicts; never raises for a failing path.

    checks: path -> check function (default CHECKS); a check returns (one line, details) or raises.
    """
    say = report or (lambda _message: None)
    unknown = [path for path in paths if path not in PATHS]
    if unknown:
        raise ValueError(f"unknown preflight path(s) {', '.join(unknown)}; allowed: {', '.join(PATHS)}")
    checks = {**CHECKS, **(checks or {})}
    with tempfile.TemporaryDirectory(prefix="preflight-") as workdir:
        context = Context(
            resolve_device(device),
            arch,
            steps,
            data if data is not None else preflight_data(),
            Path(workdir),
            Path(cache) if cache else None,
        )
        for path in paths:
            began = time.perf_counter()
            try:
                line, details = checks[path](context)
                verdict = Verdict(path, True, f"preflight {path}: ok ({line})", details=details)
            except Exception as err:  # anything at all: the path is off, the session goes on
                what = "disagrees with the plain path" if isinstance(err, Disagrees) else "failed"
                reason = " ".join(f"{type(err).__name__}: {err}".split())[:400]
                verdict = Verdict(path, False, f"preflight {path}: OFF for this session, {what}: {reason}")
            finally:
                _reset_device(context.device)
            verdict.seconds = round(time.perf_counter() - began, 2)
            context.verdicts[path] = verdict
            say(verdict.line)
    return context.verdicts


def flags(verdicts: dict[str, Verdict], cache: str | Path | None = None) -> list[str]:
    """The `reproduce` options for the paths that passed.

    The graph goes with compile off unless graph-compile passed: compiling each of a sweep's 13
    networks costs more than a quick run's graph saves over eager kernels (to be confirmed by the
    benchmark's graph rows). "auto" rather than "on": a capture that fails in a run falls back to the
    plain step with a warning instead of ending the run.
    """
    passed = {path for path, verdict in verdicts.items() if verdict.ok}
    options: list[str] = []
    if "graph" in passed or "graph-compile" in passed:
        options += ["--cuda-graph", "auto"]
        if "graph-compile" not in passed:
            options += ["--compile", "off"]
    if "multirun" in passed:
        options += ["--in-process"]
        if cache is not None and "compile-cache" in passed:
            options += ["--compile-cache", str(cache)]
    return options


# ---------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------


def check_compile_cache(context: Context) -> tuple[str, dict]:
    from resnet_repro.gpu import compile_cache

    if context.cache is None:
        return "no cache file given", {}
    return compile_cache.load(context.cache), {"file": str(context.cache)}


def check_graph(context: Context, compile_mode: str = "off") -> tuple[str, dict]:
    from resnet_repro.gpu.fast_step import state_tensors

    device, steps = context.device, context.steps
    lrs = [0.1] * (steps - steps // 4) + [0.01] * (steps // 4)  # a schedule change inside the curve
    plain_config = RunConfig(arch=context.arch, device=device.type, compile="off", iterations=steps)
    fast_config = RunConfig(
        arch=context.arch, device=device.type, compile=compile_mode, cuda_graph="on", iterations=steps
    )
    with cudnn_benchmark(resolve_speed(plain_config, device, steps).cudnn_benchmark):
        reference = _losses(_loop(plain_config, context.data, device), lrs)
        again = _losses(_loop(plain_config, context.data, device), lrs)
        fast = _loop(fast_config, context.data, device)
        losses = _losses(fast, lrs)
        captured = fast.speed.cuda_graph
        if device.type == "cuda" and fast.graph is None:
            raise RuntimeError(f"the step was not captured ({captured})")
        noise = _mean_difference(reference, again)
        difference = compare_losses(reference, losses, noise)

        # The learning rate is read at every replay: lr 0 leaves the weights as they are, 0.1 does not.
        weights = [p.detach().clone() for p in fast.model.parameters()]
        fast.step(0.0)
        if not all(torch.equal(w, p) for w, p in zip(weights, fast.model.parameters(), strict=True)):
            raise Disagrees(
                "a step at learning rate 0 changed the weights: the rate is not read from its tensor"
            )
        fast.step(0.1)
        if all(torch.equal(w, p) for w, p in zip(weights, fast.model.parameters(), strict=True)):
            raise Disagrees("a step at learning rate 0.1 after one at 0 left the weights unchanged")

        offsets = fast.inputs.offsets.clone()
        fast.step(0.1)
        if torch.equal(offsets, fast.inputs.offsets):
            raise Disagrees("two steps drew the same crops")

        details = {"captured": captured, "plain_noise": noise, "mean_loss_difference": difference}
        if fast.graph is not None:
            details["replay_vs_eager"] = _replay_against_eager(fast, state_tensors)
        details["host_sync"] = _host_sync(fast)
        timed = max(3, min(20, steps))
        details["plain_ms_per_step"] = _ms_per_step(_loop(plain_config, context.data, device), timed)
        details["fast_ms_per_step"] = _ms_per_step(fast, timed)
    line = (
        f"{context.arch} {captured}: {steps} steps, mean |loss difference| {difference:.4f} "
        f"(plain run-to-run {noise:.4f}); {details['plain_ms_per_step']:.2f} -> "
        f"{details['fast_ms_per_step']:.2f} ms/step"
    )
    if details["host_sync"]:
        line += f"; WARNING host sync in the step: {details['host_sync']}"
    return line, details


def check_graph_compile(context: Context) -> tuple[str, dict]:
    return check_graph(context, compile_mode="default")


def check_multirun(context: Context) -> tuple[str, dict]:
    from resnet_repro.cifar.trainer import train
    from resnet_repro.gpu.multirun import train_concurrently

    graph = "on" if context.passed("graph") or context.passed("graph-compile") else "off"
    compile_mode = "default" if context.passed("graph-compile") else "off"
    configs = [
        RunConfig(
            arch=context.arch,
            device=context.device.type,
            iterations=context.steps,
            eval_points=2,
            seed=seed,
            cuda_graph=graph,
            compile=compile_mode,
        )
        for seed in (0, 1)
    ]
    alone, together = context.workdir / "alone", context.workdir / "together"
    began = time.perf_counter()
    for config in configs:
        train(config, alone, progress=False, data=context.data)
    alone_s = time.perf_counter() - began
    began = time.perf_counter()
    outcomes = train_concurrently(configs, together, context.data, report=None)
    together_s = time.perf_counter() - began
    failed = [f"{o.name}: {o.status} {o.detail or ''}" for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError("; ".join(failed))
    for config in configs:
        _compare_runs(run_folder(config, alone), run_folder(config, together))
    details = {"cuda_graph": graph, "compile": compile_mode, "alone_s": alone_s, "together_s": together_s}
    line = (
        f"2 x {context.arch} (cuda_graph {graph}, compile {compile_mode}) in threads: the same as alone; "
        f"{together_s:.1f} s together, {alone_s:.1f} s one after the other"
    )
    return line, details


CHECKS: dict[str, Callable[[Context], tuple[str, dict]]] = {
    "compile-cache": check_compile_cache,
    "graph": check_graph,
    "graph-compile": check_graph_compile,
    "multirun": check_multirun,
}


# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------


def compare_losses(reference: Sequence[float], candidate: Sequence[float], noise: float = 0.0) -> float:
    """The mean |difference| of two per-step loss curves of the same seed; raises Disagrees if they are
    not the same curve: another length, a non-finite loss, a first step apart by more than
    FIRST_STEP_TOLERANCE, or a mean difference above CURVE_TOLERANCE + 3 x `noise` (the plain path's own
    run-to-run mean difference)."""
    if len(reference) != len(candidate) or not reference:
        raise Disagrees(f"{len(candidate)} losses against the plain path's {len(reference)}")
    if not all(math.isfinite(value) for value in candidate):
        raise Disagrees(f"non-finite loss: {list(candidate)}")
    first = abs(candidate[0] - reference[0])
    if first > FIRST_STEP_TOLERANCE:
        raise Disagrees(f"first-step loss {candidate[0]:.4f} against the plain path's {reference[0]:.4f}")
    difference = _mean_difference(reference, candidate)
    allowed = CURVE_TOLERANCE + 3 * noise
    if difference > allowed:
        raise Disagrees(
            f"mean |loss difference| per step {difference:.4f} > {allowed:.4f} "
            f"(plain run-to-run {noise:.4f}); last losses {candidate[-1]:.4f} against {reference[-1]:.4f}"
        )
    return difference


def _mean_difference(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def _loop(config: RunConfig, data: CifarData, device: torch.device) -> TrainingLoop:
    """The loop `train` would make for `config` (the plain one, or the graph's as speed.cuda_graph says)."""
    speed = resolve_speed(config, device, config.plan().iterations)
    torch.manual_seed(config.seed)
    return loop_class(speed)(build_model(config), data, device, speed, config.seed)


def _losses(loop: TrainingLoop, lrs: Sequence[float]) -> list[float]:
    """The loss of every step (read after each: a host sync per step, fine for a check)."""
    losses = []
    for lr in lrs:
        loop.step(lr)
        losses.append(loop.interval.pop()[0])
    return losses


def _replay_against_eager(fast, state_tensors) -> float:
    """One replay against the same step run eagerly from the same state: their max |weight difference|."""
    fast.fill_inputs(0.1)
    saved = [t.clone() for t in state_tensors(fast)]
    fast.graph.replay()
    replayed = [p.detach().clone() for p in fast.model.parameters()]
    with torch.no_grad():
        for tensor, value in zip(state_tensors(fast), saved, strict=True):
            tensor.copy_(value)
    fast.graph_step()
    difference = max(
        (a - b).abs().max().item() for a, b in zip(replayed, fast.model.parameters(), strict=True)
    )
    if difference > REPLAY_TOLERANCE:
        raise Disagrees(f"one replay and the same step run eagerly differ by {difference:.2e} in a weight")
    return difference


def _host_sync(fast) -> str:
    """On CUDA, the first host sync in 5 steps (torch.cuda.set_sync_debug_mode), or "" if none."""
    if fast.device.type != "cuda":
        return ""  # the CPU tests check the graph step's operations instead (fast_step.host_syncs)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            fast.step(0.1)
    except RuntimeError as err:
        return " ".join(str(err).split())[:200]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return ""


def _ms_per_step(loop: TrainingLoop, steps: int) -> float:
    _sync(loop.device)
    began = time.perf_counter()
    for _ in range(steps):
        loop.step(0.1)
    _sync(loop.device)
    return (time.perf_counter() - began) / steps * 1000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_device(device: torch.device) -> None:
    if device.type == "cuda":
        with contextlib.suppress(Exception):
            torch.cuda.set_sync_debug_mode(0)
            torch.cuda.synchronize(device)


def _compare_runs(alone: Path, together: Path) -> None:
    """Same initial gradient norms (same initial weights) and the same losses, within tolerance."""
    import csv

    def rows(folder: Path, name: str) -> list[dict]:
        with open(folder / name, newline="") as file:
            return list(csv.DictReader(file))

    norms = [
        (float(a["grad_norm"]), float(b["grad_norm"]))
        for a, b in _paired(alone, together, rows, GRAD_NORM_FILE)
    ]
    for a, b in norms:
        if abs(a - b) > GRAD_NORM_TOLERANCE * max(abs(a), 1e-12):
            raise Disagrees(f"{together.name}: gradient norm {b:.4g} against {a:.4g} alone")
    for a, b in _paired(alone, together, rows, HISTORY_FILE):
        if a["iteration"] != b["iteration"]:
            raise Disagrees(f"{together.name}: history at iteration {b['iteration']}, alone {a['iteration']}")
        x, y = float(a["train_loss"]), float(b["train_loss"])
        if not math.isfinite(y) or abs(x - y) > CURVE_TOLERANCE + 0.05 * abs(x):
            raise Disagrees(
                f"{together.name}: train loss {y:.4f} at iteration {a['iteration']}, alone {x:.4f}"
            )


def _paired(alone: Path, together: Path, rows, name: str) -> list[tuple[dict, dict]]:
    first, second = rows(alone, name), rows(together, name)
    if len(first) != len(second):
        raise Disagrees(f"{together.name}/{name}: {len(second)} rows, alone {len(first)}")
    return list(zip(first, second, strict=True))


# ---------------------------------------------------------------------------------------------------------
# Command line: python -m resnet_repro preflight
# ---------------------------------------------------------------------------------------------------------


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "preflight",
        help="check the fast paths against the plain one (first thing in a device session)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--arch", default="resnet20", help="network of the checks (default resnet20)")
    parser.add_argument("--steps", type=int, default=40, help="steps per loss curve (default 40)")
    parser.add_argument(
        "--paths",
        default=",".join(DEFAULT_PATHS),
        help=f"comma-separated, from {', '.join(PATHS)} (default {','.join(DEFAULT_PATHS)})",
    )
    parser.add_argument("--compile-cache", metavar="FILE", help="the compile cache to load (if it exists)")
    parser.add_argument("--json", metavar="FILE", help="write the verdicts and their details there")
    parser.add_argument(
        "--flags",
        action="store_true",
        help="print only the reproduce options for the paths that passed on stdout (verdicts on stderr)",
    )


def run_command(args: argparse.Namespace) -> int:
    paths = tuple(path.strip() for path in args.paths.split(",") if path.strip())
    report = (lambda line: print(line, file=sys.stderr, flush=True)) if args.flags else print
    verdicts = preflight(args.device, args.arch, args.steps, paths, args.compile_cache, report)
    options = flags(verdicts, args.compile_cache)
    if args.json:
        device = resolve_device(args.device)
        commit, dirty = git_commit()
        write_json(
            Path(args.json),
            {
                "device": device_name(device),
                "torch": torch.__version__,
                "commit": commit,
                "dirty": dirty,
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "arch": args.arch,
                "steps": args.steps,
                "verdicts": [asdict(verdict) for verdict in verdicts.values()],
                "flags": options,
            },
        )
    print(" ".join(options) if args.flags else f"reproduce options: {' '.join(options) or '(none)'}")
    return 0
