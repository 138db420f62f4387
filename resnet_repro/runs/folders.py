"""Run folders: where a run's results live, what they hold, and the name of the data a run trained on
(`files` writes and reads them back, `loaders` turns them into the book's tables).

Layout (one folder per run, shared by every experiment that needs the run):

    <results_dir>/<dataset>/<budget label>/<run>/
        history.csv     iteration, lr, train_loss, train_error, test_error (errors in %)
        layer_std.csv   layer, name, std (Figure 7)
        grad_norm.csv   iteration, layer, name, grad_norm (section 4.1: gradients along training)
        weights.pt      the trained weights (runs/weights.py)
        run.json        config, budget, final errors, params, times, speed options, provenance
        lesion.csv, landscape.csv   analyses of the stored weights (`python -m resnet_repro analyze`)
        checkpoint.pt   only while training; deleted when the run finishes

<dataset> is what the run trained on (`dataset_name`): "cifar10" for the official files, "cifar10-jpeg" for
the lossy JPEG archive, else the name of the folder or archive; so a run on the official files and one on
the JPEG copy of the same net and budget live side by side, and neither stands for the other.
<budget label> is "smoke", "quick", "full", or "<budget>-<N>it" for a run of non-standard length.
<run> is "<arch>-<shortcut>-seed<k>" for ResNets ("resnet56-A-seed0") and "<arch>-seed<k>" for plain
nets ("plain20-seed0"), with "-val<N>" appended when N training images were held out for validation.
So ResNet-20-A of Figure 6 is the very run Table 6 and the shortcut comparison read.

Every file is written atomically (a temporary file in the same folder, then `os.replace`), and run.json
last: a folder with run.json is a finished run, and no reader ever sees half a file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

from resnet_repro.runs.config import PLAIN_SHORTCUT, RunConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS_DIR = REPO_ROOT / "data" / "results"

HISTORY_FILE, LAYER_STD_FILE, GRAD_NORM_FILE, WEIGHTS_FILE, RUN_FILE, CHECKPOINT_FILE = (
    "history.csv",
    "layer_std.csv",
    "grad_norm.csv",
    "weights.pt",
    "run.json",
    "checkpoint.pt",
)
HISTORY_COLUMNS = ["iteration", "lr", "train_loss", "train_error", "test_error"]
LAYER_STD_COLUMNS = ["layer", "name", "std"]
GRAD_NORM_COLUMNS = ["iteration", "layer", "name", "grad_norm"]
# landscape.csv (`analyze landscape`, landscape.py): a row per point theta* + alpha*delta + beta*eta.
# kind: "surface" (the grid), "slice" (beta = 0, along delta only), "fp32 check" (a surface row again in
# fp32) or "subset check" (every other grid point on twice the images); loss: mean cross-entropy, error in
# %, both on `images` unaugmented training images; seconds and cpu_seconds: that point's wall-clock and
# process CPU time (every thread's); direction_seed: of the two directions; threads: the CPU threads torch
# used.
LANDSCAPE_FILE = "landscape.csv"
SURFACE, SLICE, FP32_CHECK, SUBSET_CHECK = "surface", "slice", "fp32 check", "subset check"  # its kinds
LANDSCAPE_COLUMNS = ["kind", "alpha", "beta", "loss", "error", "seconds", "cpu_seconds", "images"]
LANDSCAPE_COLUMNS += ["direction_seed", "device", "amp", "compiled", "threads", "weights_sha256"]
RUN_KEYS = ["run", "arch", "family", "depth", "shortcut", "seed", "budget", "dataset"]
RUN_COLUMNS = [
    "experiment",
    "run",
    "arch",
    "family",
    "depth",
    "shortcut",
    "seed",
    "budget",
    "iterations",
    "dataset",
    "device_name",
    "final_test_error",
    "final_train_error",
    "params",
    "wall_time_s",
    "path",
]


# ---------------------------------------------------------------------------------------------------------
# Where a run lives
# ---------------------------------------------------------------------------------------------------------


def run_name(config: RunConfig) -> str:
    """ "resnet56-A-seed0", "plain20-seed0", "resnet110-A-seed2-val5000"."""
    parts = [config.arch] + ([] if config.shortcut == PLAIN_SHORTCUT else [config.shortcut])
    parts.append(f"seed{config.seed}")
    if config.val_split:
        parts.append(f"val{config.val_split}")
    return "-".join(parts)


def run_folder(config: RunConfig, results_dir: str | os.PathLike | None = None) -> Path:
    """<results_dir>/<dataset>/<budget label>/<run name>/ (results_dir default: DEFAULT_RESULTS_DIR)."""
    root = Path(results_dir) if results_dir is not None else DEFAULT_RESULTS_DIR
    return root / dataset_name(config.data) / config.plan().label / run_name(config)


# ---------------------------------------------------------------------------------------------------------
# What a run trains on
# ---------------------------------------------------------------------------------------------------------

OFFICIAL_DATASET = "cifar10"  # the official files (torchvision's download)
# ../shared/data/cifar10-jpeg.tar.gz: a LOSSY JPEG conversion of the official files (see its README).
JPEG_DATASET = "cifar10-jpeg"
JPEG_ARCHIVE_SHA256 = "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
OWN_COPY_SUFFIX = "-own"  # a folder or archive named like a dataset it is not proven to be


def is_official_source(source) -> bool:
    """None or "official": the official CIFAR-10 files, downloaded by torchvision."""
    return source is None or (isinstance(source, str) and source == "official")


def dataset_name(source: str | os.PathLike | None, sha256: str | None = None) -> str:
    """The name of the data `source` (a RunConfig's `data`) holds, known before any image is read: what
    `data.load_cifar10` records in identity["name"] and what run folders are keyed by. "cifar10" for the
    official files, "cifar10-jpeg" for the JPEG archive (by its sha256; pass `sha256` if known already),
    else the folder's or the archive's file name ("-own" added if that is one of these two names)."""
    if is_official_source(source):
        return OFFICIAL_DATASET
    path = Path(source).expanduser().absolute()
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix) and not path.is_dir():
            name = name[: -len(suffix)]
            if (sha256 or _archive_sha256(path)) == JPEG_ARCHIVE_SHA256:
                return JPEG_DATASET
            break
    # A copy of one's own must not be taken for the official files or ours (nor share their folders).
    return name + OWN_COPY_SUFFIX if name in (OFFICIAL_DATASET, JPEG_DATASET) else name


def _archive_sha256(path: Path) -> str | None:
    """sha256 of an archive file (None if there is none)."""
    try:
        return file_sha256(path) if path.is_file() else None
    except OSError:
        return None


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, computed once per file version in a process: run_folder names the data
    before load_cifar10 records it, and both ask for the same archive's hash."""
    stat = Path(path).stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # size, mtime: a replaced file is hashed anew
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_finished(folder: Path) -> bool:
    return (Path(folder) / RUN_FILE).is_file()


def dataset_label(identity: dict) -> str:
    """The dataset column of the readers: "cifar10", "cifar10-jpeg", "+ -val5000" if held out."""
    name = identity.get("name", "unknown")
    validation = identity.get("validation")
    return f"{name}-val{validation['size']}" if validation else name


DATASET_LABEL = re.compile(r"^(?P<name>.*?)(?:-val(?P<held_out>\d+))?$")


def parse_dataset_label(label: str | None) -> tuple[str, int | None]:
    """dataset_label's text back as (dataset name, images held out or None): "cifar10-jpeg-val5000" ->
    ("cifar10-jpeg", 5000)."""
    match = DATASET_LABEL.match(label or "")
    return match["name"], int(match["held_out"]) if match["held_out"] else None
