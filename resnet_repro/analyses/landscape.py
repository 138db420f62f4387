"""The loss landscape around a trained network, by the method of Li, Xu, Taylor, Studer and Goldstein
(NeurIPS 2018, "Visualizing the Loss Landscape of Neural Nets"): theirs, not He et al.'s.

For a CIFAR-10 run's stored weights theta* (`weights.pt`):

- two random directions delta and eta with the weights' shape, Gaussian from a seeded generator on the
  CPU (the same seed gives the same directions on every device), then *filter-normalised*: each filter of
  a direction (a convolution's or the linear layer's slice along its output dimension) is scaled to the
  norm of the same filter of theta*. Batch norm makes a net blind to the scale of the filters before it,
  so without this a step would mean more for a net with small filters than for one with large ones;
- batch-norm weights and biases, and every bias, do not move (their directions are zero), and batch
  norm keeps the trained net's running statistics (eval mode);
- the mean cross-entropy (without the weight-decay term) and the error at theta* + alpha delta + beta eta
  on a grid of alpha and beta, and along delta alone (beta = 0, more finely), on a fixed class-balanced
  subset of the run's unaugmented training images (the first ones of each class, normalised as in
  training).

`python -m resnet_repro analyze landscape RUN_FOLDER...` writes `landscape.csv` into each run folder
(results.LANDSCAPE_COLUMNS): a cache the book reads and never recomputes. Points stored for the same
weights, seed, subset and precision are not evaluated again, and the points done so far are saved after
every grid row, so an interrupted computation goes on where it stopped. Cost: (grid points^2 + slice
points) forward passes over the subset.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from resnet_repro.cifar.augment import mean_image, normalize
from resnet_repro.cifar.data import CifarData
from resnet_repro.cifar.evaluation import EVAL_BATCH, autocast
from resnet_repro.runs.files import write_csv
from resnet_repro.runs.folders import (
    FP32_CHECK,
    LANDSCAPE_COLUMNS,
    LANDSCAPE_FILE,
    SLICE,
    SUBSET_CHECK,
    SURFACE,
    WEIGHTS_FILE,
    is_finished,
)
from resnet_repro.runs.lock import run_lock
from resnet_repro.runs.weights import weights_sha256

PARTIAL_FILE = ".landscape.partial.csv"  # the points done so far, while `analyze landscape` runs
DECIMALS = 6  # coordinates as stored, so a point read back is the point asked for

Point = tuple[str, float, float]  # (kind, alpha, beta)


@dataclass(frozen=True)
class LandscapeSettings:
    """What `analyze landscape` evaluates. The defaults: Li et al.'s 25 x 25 grid over [-1, 1]^2."""

    points: int = 25  # grid points per axis, odd: theta* (0, 0) and the row beta = 0 are on the grid
    span: float = 1.0  # alpha and beta run from -span to span
    slice_points: int = 51  # along delta alone (beta = 0), odd
    images: int = 2000  # training images, as many of each class
    seed: int = 0  # of the two directions
    check_fp32: bool = False  # evaluate the grid row beta = 0 in fp32 too, to compare with bf16
    check_subset: bool = False  # every other grid point again on twice the images: does the surface move?

    def __post_init__(self):
        for name in ("points", "slice_points"):
            value = getattr(self, name)
            if value < 3 or value % 2 == 0:
                raise ValueError(f"{name} must be odd and at least 3 (theta* on the grid), got {value}")
        if self.check_subset and self.points < 5:
            raise ValueError(
                f"check_subset needs points >= 5 (a coarse grid of 3 or more), got {self.points}"
            )
        if not self.span > 0:
            raise ValueError(f"span must be positive, got {self.span}")
        if self.images < 1:
            raise ValueError(f"images must be positive, got {self.images}")

    def axis(self, points: int | None = None) -> list[float]:
        values = np.linspace(-self.span, self.span, points or self.points)
        return [round(float(v), DECIMALS) + 0.0 for v in values]  # + 0.0: no -0.0

    def wanted(self) -> list[Point]:
        """Every point to evaluate, in the order landscape.csv keeps them (the grid row by row)."""
        grid = [(SURFACE, alpha, beta) for beta in self.axis() for alpha in self.axis()]
        along = [(SLICE, alpha, 0.0) for alpha in self.axis(self.slice_points)]
        check = [(FP32_CHECK, alpha, 0.0) for alpha in self.axis()] if self.check_fp32 else []
        coarse = self.coarse_axis()
        doubled = [(SUBSET_CHECK, alpha, beta) for beta in coarse for alpha in coarse]
        return grid + along + check + (doubled if self.check_subset else [])

    def coarse_axis(self) -> list[float]:
        """Every other point of the grid's axis, counted from theta* outward (so theta* stays on it)."""
        return self.axis()[(self.points // 2) % 2 :: 2]

    def images_for(self, kind: str) -> int:
        """The subset a point is evaluated on: the subset check's is twice the others'."""
        return 2 * self.images if kind == SUBSET_CHECK else self.images


# ---------------------------------------------------------------------------------------------------------
# The two directions, and moving the weights along them
# ---------------------------------------------------------------------------------------------------------


def is_perturbed(parameter: torch.Tensor) -> bool:
    """Convolution and linear weights (one filter per output) move; batch-norm parameters and biases,
    the vectors, do not."""
    return parameter.dim() > 1


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A Gaussian direction per parameter, each filter scaled to the norm of the same filter of the model's
    weights; zero for the parameters that do not move."""
    direction = {}
    for name, weight in model.named_parameters():
        if not is_perturbed(weight):
            direction[name] = torch.zeros_like(weight)
            continue
        random = torch.randn(weight.shape, generator=generator)  # on the CPU: the same on every device
        scale = weight.detach().float().cpu().flatten(1).norm(dim=1) / random.flatten(1).norm(dim=1)
        direction[name] = (random * scale.view(-1, *[1] * (weight.dim() - 1))).to(weight.device)
    return direction


def random_directions(model: nn.Module, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """delta and eta, drawn one after the other from one generator seeded with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return filter_normalized_direction(model, generator), filter_normalized_direction(model, generator)


@contextlib.contextmanager
def on_plane(model: nn.Module, delta: dict, eta: dict) -> Iterator[Callable[[float, float], None]]:
    """A function that sets the model's parameters to theta* + alpha delta + beta eta (theta*: the ones
    it has on entering); theta* is put back on leaving."""
    parameters = dict(model.named_parameters())
    origin = {name: p.detach().clone() for name, p in parameters.items()}

    @torch.no_grad()
    def move(alpha: float, beta: float) -> None:
        for name, p in parameters.items():
            p.copy_(origin[name] + alpha * delta[name] + beta * eta[name])

    try:
        yield move
    finally:
        move(0.0, 0.0)


# ---------------------------------------------------------------------------------------------------------
# The images, and the loss at each point
# ---------------------------------------------------------------------------------------------------------


def balanced_subset(labels: torch.Tensor, count: int, classes: int) -> torch.Tensor:
    """Indices of the first count/classes images of each class, in dataset order: a fixed subset, and the
    subset twice its size holds it."""
    if count % classes:
        raise ValueError(f"images must be a multiple of the {classes} classes, got {count}")
    chosen = []
    for label in range(classes):
        found = (labels == label).nonzero().flatten()[: count // classes]
        if len(found) < count // classes:
            raise ValueError(f"only {len(found)} training images of class {label}: ask for fewer images")
        chosen.append(found)
    return torch.cat(chosen).sort().values


def training_subset(folder: Path, count: int, data: str | CifarData | None = None, progress: bool = False):
    """The run's own training images of balanced_subset, unaugmented and normalised as in training, with
    their labels (data: as trainer.finished_run_data takes it)."""
    from resnet_repro.cifar.trainer import finished_run_data

    return subset_of(finished_run_data(folder, data, progress), count)


def subset_of(loaded: CifarData, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """balanced_subset of a run's loaded data, normalised as in training, with its labels."""
    chosen = balanced_subset(loaded.train_labels, count, len(loaded.classes))
    images = normalize(loaded.train_images[chosen], mean_image(loaded.train_images))
    return images.contiguous(memory_format=torch.channels_last), loaded.train_labels[chosen]


@torch.no_grad()
def loss_and_error(forward, images: torch.Tensor, labels: torch.Tensor, device: torch.device, amp: bool):
    """Mean cross-entropy and error (%) of `forward` on the images, EVAL_BATCH at a time."""
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    wrong = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(labels), EVAL_BATCH):
        target = labels[start : start + EVAL_BATCH].to(device)
        with autocast(device, amp):
            logits = forward(images[start : start + EVAL_BATCH].to(device, non_blocking=True))
        loss_sum += F.cross_entropy(logits.float(), target, reduction="sum").double()
        wrong += (logits.argmax(dim=1) != target).sum()
    return loss_sum.item() / len(labels), 100.0 * wrong.item() / len(labels)


def evaluate_points(
    model: nn.Module,
    points: list[Point],
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    device: torch.device,
    amp: bool,
    compiled: bool = False,
    done: Callable[[list[dict]], None] | None = None,
    chunk: int = 25,
    progress: bool = False,
    doubled: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[dict]:
    """Loss, error and seconds (wall and CPU) at each point, in eval mode (FP32_CHECK points in fp32, the
    others in bf16 if `amp`), on `images` (SUBSET_CHECK points on `doubled`, the subset twice as large).
    compiled: through torch.compile (the same arithmetic, fused). done: called with the rows so far after
    every `chunk` points (a grid row), to save them."""
    model.eval()
    forward = torch.compile(model) if compiled else model
    delta, eta = random_directions(model, seed)
    rows: list[dict] = []
    with on_plane(model, delta, eta) as move:
        for kind, alpha, beta in tqdm(points, desc="landscape", unit="point", disable=not progress):
            started, cpu_started = time.perf_counter(), time.process_time()
            move(alpha, beta)
            in_bf16 = amp and kind != FP32_CHECK
            x, y = doubled if kind == SUBSET_CHECK else (images, labels)
            loss, error = loss_and_error(forward, x, y, device, in_bf16)
            rows.append({"kind": kind, "alpha": alpha, "beta": beta, "loss": loss, "error": error, "images": len(y),  # noqa: E501
                         "seconds": round(time.perf_counter() - started, 3),
                         "cpu_seconds": round(time.process_time() - cpu_started, 3),
                         "amp": "bf16" if in_bf16 else "fp32"})  # fmt: skip
            if done is not None and len(rows) % chunk == 0 and len(rows) < len(points):
                done(rows)
    return rows


# ---------------------------------------------------------------------------------------------------------
# A run folder: landscape.csv, computed where its points are missing
# ---------------------------------------------------------------------------------------------------------


def _stored_rows(folder: Path) -> list[dict]:
    """The rows of landscape.csv and of an interrupted computation's partial file."""
    paths = [path for path in (folder / LANDSCAPE_FILE, folder / PARTIAL_FILE) if path.is_file()]
    frames = [pd.read_csv(path, dtype={"weights_sha256": str}) for path in paths]
    return pd.concat(frames).to_dict("records") if frames else []


def reusable_rows(folder: Path, settings: LandscapeSettings, weights: str, amp: bool) -> dict[Point, dict]:
    """The stored points of the same weights, seed and subset, in the precision they would have now."""
    reusable = {}
    for row in _stored_rows(folder):
        point = (row["kind"], round(row["alpha"], DECIMALS) + 0.0, round(row["beta"], DECIMALS) + 0.0)
        precision = "bf16" if amp and point[0] != FP32_CHECK else "fp32"
        source = (row["weights_sha256"], row["direction_seed"], row["images"], row["amp"])
        if source == (weights, settings.seed, settings.images_for(point[0]), precision):
            reusable[point] = {**row, "kind": point[0], "alpha": point[1], "beta": point[2]}
    return reusable


def analyze_run(
    folder: str | Path,
    settings: LandscapeSettings = LandscapeSettings(),
    data: str | CifarData | None = None,
    device: str = "auto",
    amp: str = "auto",
    compiled: bool = False,
    force: bool = False,
    progress: bool = False,
) -> tuple[Path, int]:
    """Write <folder>/landscape.csv with the points `settings` asks for (and the fp32 and subset checks
    stored for these weights); returns its path and how many points were evaluated now (0: the file had
    them all).

    device: "auto" (CUDA if available), "cpu" or "cuda". amp: "auto" (bf16 on CUDA and on CPUs that
    multiply bf16 in hardware), "on" or "off". compiled: evaluate through torch.compile.
    """
    from resnet_repro.runs.runtime import analysis_amp, device_name, resolve_device
    from resnet_repro.runs.weights import load_trained_model

    folder = Path(folder)
    if not is_finished(folder):
        raise ValueError(f"{folder}: not a finished run folder (no run.json)")
    if not (folder / WEIGHTS_FILE).is_file():
        raise ValueError(f"{folder}: no trained weights (weights.pt); train the run again with --force")
    path, partial = folder / LANDSCAPE_FILE, folder / PARTIAL_FILE
    torch_device = resolve_device(device)
    use_amp = analysis_amp(amp, torch_device)
    with run_lock(folder):  # one writer per run folder: no `train --force` replaces the weights meanwhile
        weights = weights_sha256(folder)
        stored = {} if force else reusable_rows(folder, settings, weights, use_amp)
        wanted = settings.wanted()
        checks = (FP32_CHECK, SUBSET_CHECK)  # kept once made, whatever this call asks
        wanted += [point for point in stored if point[0] in checks and point not in wanted]
        missing = [point for point in wanted if point not in stored]
        if not missing and set(stored) == set(wanted) and not partial.exists():
            return path, 0
        constant = {
            "direction_seed": settings.seed,
            "device": device_name(torch_device),
            "compiled": compiled,
            "threads": torch.get_num_threads(),
            "weights_sha256": weights,
        }

        def table(new_rows: list[dict]) -> list[dict]:
            rows = {**stored, **{(r["kind"], r["alpha"], r["beta"]): {**r, **constant} for r in new_rows}}
            return [rows[point] for point in wanted if point in rows]

        new_rows: list[dict] = []
        if missing:
            from resnet_repro.cifar.trainer import finished_run_data

            model = load_trained_model(folder, torch_device).to(memory_format=torch.channels_last)
            loaded = finished_run_data(folder, data, progress)
            images, labels = subset_of(loaded, settings.images)
            doubled = None
            if any(point[0] == SUBSET_CHECK for point in missing):
                doubled = subset_of(loaded, settings.images_for(SUBSET_CHECK))
            new_rows = evaluate_points(
                model, missing, images, labels, settings.seed, torch_device, use_amp, compiled,
                done=lambda rows: write_csv(partial, LANDSCAPE_COLUMNS, table(rows)),
                chunk=settings.points, progress=progress, doubled=doubled,
            )  # fmt: skip
        write_csv(path, LANDSCAPE_COLUMNS, table(new_rows))
        partial.unlink(missing_ok=True)
    return path, len(missing)


def summary_line(folder: Path) -> str:
    """One line for the command: the loss at theta*, the grid, the subset, and how long it took."""
    table = pd.read_csv(Path(folder) / LANDSCAPE_FILE)
    surface = table[table.kind == SURFACE]
    center = surface[(surface.alpha == 0) & (surface.beta == 0)].iloc[0]
    points = round(len(surface) ** 0.5)
    span = surface.alpha.max()
    along = (table.kind == SLICE).sum()
    threads = f"{center.threads} thread{'s' if center.threads != 1 else ''}"
    return (
        f"{Path(folder).name}: loss at theta* {center.loss:.4f} (error {center.error:.2f}%); "
        f"{points}x{points} grid over [-{span:g}, {span:g}]^2 and {along} points along delta, on "
        f"{center.images:,} training images; {table.seconds.sum() / 60:.1f} min "
        f"({table.cpu_seconds.sum() / 60:.1f} min of CPU time) on {center.device} ({center.amp}, {threads}) "
        f"-> {Path(folder) / LANDSCAPE_FILE}"
    )
