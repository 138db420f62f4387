"""Shared toy data for the tests: made-up result frames, lesion tables, fake CIFAR-10 and image trees.

Every test module that needs these imports them from here, never from another test module. Their
numbers and pixels are made up (or random) for the tests and never leave them; the frames have exactly
the columns of resnet_repro.runs.loaders' readers.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision.datasets
from PIL import Image

from resnet_repro.analyses import lesion
from resnet_repro.book import figure_runs
from resnet_repro.cifar.data import CIFAR10_CLASSES, CifarData
from resnet_repro.models import build_cifar, parse_arch
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.folders import (
    HISTORY_COLUMNS,
    LANDSCAPE_COLUMNS,
    LAYER_STD_COLUMNS,
    RUN_COLUMNS,
    RUN_KEYS,
)

# ---------------------------------------------------------------------------------------------------------
# Result frames: the rows and curves that results.load_runs/load_histories/load_layer_std give
# ---------------------------------------------------------------------------------------------------------

ITERATIONS = {"smoke": 10, "quick": 8000, "full": 64000}


def run_row(arch, shortcut="A", test=10.0, train=5.0, seed=0, budget="full", dataset="cifar10"):
    family, depth = parse_arch(arch)
    shortcut = figure_runs.PLAIN if family == "plain" else shortcut
    name = f"{arch}-{shortcut}-seed{seed}" if family == "resnet" else f"{arch}-seed{seed}"
    return {
        "experiment": budget,
        "run": name,
        "arch": arch,
        "family": family,
        "depth": depth,
        "shortcut": shortcut,
        "seed": seed,
        "budget": budget,
        "iterations": ITERATIONS.get(budget, 1000),
        "dataset": dataset,
        "device_name": "test device",
        "final_test_error": test,
        "final_train_error": train,
        "params": 1000 * depth,
        "wall_time_s": 60.0,
        "path": f"/nonexistent/{dataset}/{budget}/{name}",
    }


def toy_runs(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=RUN_COLUMNS)


def toy_histories(runs: pd.DataFrame, points: int = 4) -> pd.DataFrame:
    """Curves falling linearly from 90% to each run's final errors."""
    frames = []
    for run in runs.itertuples():
        iterations = np.linspace(run.iterations / points, run.iterations, points).astype(int)
        keys = {key: getattr(run, key) for key in RUN_KEYS}
        frames.append(
            pd.DataFrame(
                {
                    **keys,
                    "iteration": iterations,
                    "lr": 0.1,
                    "train_loss": 1.0,
                    "train_error": np.linspace(90, run.final_train_error, points),
                    "test_error": np.linspace(90, run.final_test_error, points),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[RUN_KEYS + HISTORY_COLUMNS]


def toy_layer_std(runs: pd.DataFrame, level: dict[str, float]) -> pd.DataFrame:
    """Each 3x3 layer of a net (depth - 1 of them) responds with std = level[arch] plus a small wiggle."""
    frames = []
    for run in runs.itertuples():
        layers = np.arange(1, run.depth)
        keys = {key: getattr(run, key) for key in RUN_KEYS}
        std = level[run.arch] + 0.01 * np.sin(layers)
        frames.append(pd.DataFrame({**keys, "layer": layers, "name": [f"l{i}" for i in layers], "std": std}))
    return pd.concat(frames, ignore_index=True)[RUN_KEYS + LAYER_STD_COLUMNS]


EMPTY_RUNS = toy_runs()


# ---------------------------------------------------------------------------------------------------------
# Lesion tables (lesion.csv rows), as lesion.load_lesions gives them
# ---------------------------------------------------------------------------------------------------------


def toy_lesions(runs: pd.DataFrame, errors: dict[str, list[float]]) -> pd.DataFrame:
    """lesion.csv rows: errors[arch] = [intact, block 1, block 2, ...] over the removable blocks."""
    frames = []
    for run in runs.itertuples():
        sites = lesion.removable_sites(build_cifar(run.arch))
        values = errors[run.arch]
        rows = [{"block": 0, "name": "", "stage": 0, "changes_shape": False, "test_error": values[0]}]
        rows += [
            {
                "block": s.block,
                "name": s.name,
                "stage": s.stage,
                "changes_shape": s.changes_shape,
                "test_error": v,
            }
            for s, v in zip(sites, values[1:], strict=True)
        ]
        table = pd.DataFrame(rows).assign(
            removed="", seconds=1.0, device="cpu", amp="bf16", weights_sha256="x"
        )
        for i in range(10):
            table[f"error_class{i}"] = table.test_error
        frames.append(table.assign(**{key: getattr(run, key) for key in RUN_KEYS}))
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=RUN_KEYS + lesion.LESION_COLUMNS)
    )


def resnet56_errors(keep: float, change: float) -> list[float]:
    sites = lesion.removable_sites(build_cifar("resnet56"))
    return [7.0] + [change if s.changes_shape else keep for s in sites]


# ---------------------------------------------------------------------------------------------------------
# CIFAR-10 in memory: random pixels, balanced labels, and the smallest run that trains on them
# ---------------------------------------------------------------------------------------------------------

TINY = RunConfig(arch="resnet8", budget="smoke", iterations=12, eval_points=3, device="cpu")


def fake_cifar(seed: int = 0, n_train: int = 1000, n_test: int = 500) -> CifarData:
    """Random pixels and balanced labels in CIFAR-10's shapes (toy data, for unit tests only)."""
    g = torch.Generator().manual_seed(seed)
    return CifarData(
        torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8, generator=g),
        torch.arange(n_train) % 10,
        torch.randint(0, 256, (n_test, 3, 32, 32), dtype=torch.uint8, generator=g),
        torch.arange(n_test) % 10,
        [f"class{i}" for i in range(10)],
        {"name": "fake", "sha256": f"{seed:064d}", "source": "memory", "lossy": False},
    )


class FakeCIFAR10:
    """Stands in for torchvision.datasets.CIFAR10 (no internet here), so `load_cifar10(None)` takes it for
    the official files: HWC uint8 numpy `data` (random pixels), list `targets`, `classes`; `per_class`
    images of each class per split."""

    filename = torchvision.datasets.CIFAR10.filename
    base_folder = torchvision.datasets.CIFAR10.base_folder
    constructed = 0
    per_class = {"train": 2, "test": 1}

    def __init__(self, root, train=True, download=False):
        type(self).constructed += 1
        archive = Path(root) / self.filename
        if download and not archive.exists():
            archive.parent.mkdir(parents=True, exist_ok=True)
            archive.write_bytes(b"pretend archive")
        n = 10 * self.per_class["train" if train else "test"]
        rng = np.random.default_rng(0 if train else 1)
        self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        self.targets = [i % 10 for i in range(n)]
        self.classes = list(CIFAR10_CLASSES)


# ---------------------------------------------------------------------------------------------------------
# Image-folder trees and .tar.gz archives of them (generated here; never images from CIFAR-10)
# ---------------------------------------------------------------------------------------------------------

TOY_COUNTS = {"train": 3, "test": 2}  # images per class


def toy_pixels(split: str, label: int, index: int) -> np.ndarray:
    """A distinct 32x32 RGB image: channel c holds a value unique to (split, label, index, c)."""
    base = (0 if split == "train" else 100) + 10 * label + 3 * index
    pixels = np.empty((32, 32, 3), dtype=np.uint8)
    pixels[:] = [base, base + 1, base + 2]
    pixels[0, 0] = [255, 0, 7]  # one odd pixel so a transposed or flipped decode would show
    return pixels


def make_tree(root: Path, suffix: str = ".png", counts: dict | None = None) -> Path:
    counts = counts or TOY_COUNTS
    for split, per_class in counts.items():
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(per_class):
                Image.fromarray(toy_pixels(split, label, index)).save(folder / f"{index:04d}{suffix}")
    return root


def make_tar(tree: Path, archive: Path, wrapper: str | None = None) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(tree / split, arcname=f"{wrapper}/{split}" if wrapper else split)
    return archive


# ---------------------------------------------------------------------------------------------------------
# Loss landscapes (landscape.csv rows), as results.load_landscapes gives them
# ---------------------------------------------------------------------------------------------------------


def toy_landscapes(runs: pd.DataFrame, surfaces: dict, points: int = 9, check: bool = False) -> pd.DataFrame:
    """landscape.csv rows: surfaces[arch](alpha, beta) is the loss on a points x points grid over [-1, 1]^2
    and along beta = 0; error = 10 x loss; with `check`, an fp32 row 1% above the bf16 one."""
    axis = np.linspace(-1, 1, points).round(6)
    frames = []
    for run in runs.itertuples():
        loss = surfaces[run.arch]
        rows = [("surface", a, b, loss(a, b), "bf16") for b in axis for a in axis]
        rows += [("slice", a, 0.0, loss(a, 0.0), "bf16") for a in axis]
        rows += [("fp32 check", a, 0.0, 1.01 * loss(a, 0.0), "fp32") for a in axis] if check else []
        table = pd.DataFrame(rows, columns=["kind", "alpha", "beta", "loss", "amp"])
        table = table.assign(error=10 * table.loss, seconds=2.0, cpu_seconds=1.0, images=200,
                             direction_seed=0, device="cpu", compiled=False, threads=1,
                             weights_sha256="x")  # fmt: skip
        frames.append(table.assign(**{key: getattr(run, key) for key in RUN_KEYS}))
    columns = RUN_KEYS + LANDSCAPE_COLUMNS
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def bowl(alpha, beta):
    return 0.1 + alpha**2 + beta**2


def saddle(alpha, beta):
    return 3.0 + alpha**2 - beta**2
