"""Run folders: where a run's results live, how they are written, and the book's readers.

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

import csv
import errno
import functools
import hashlib
import io
import json
import os
import platform
import re
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

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
# kind: "surface" (the grid), "slice" (beta = 0, along delta only) or "fp32 check" (a surface row again in
# fp32); loss: mean cross-entropy, error in %, both on `images` unaugmented training images; seconds and
# cpu_seconds: that point's wall-clock and process CPU time (every thread's); direction_seed: of the two
# directions; threads: the CPU threads torch used.
LANDSCAPE_FILE = "landscape.csv"
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


# ---------------------------------------------------------------------------------------------------------
# Writing, atomically
# ---------------------------------------------------------------------------------------------------------


class DiskFullError(OSError):
    """A file could not be written for want of disk space; its message names the file and the remedy."""


# torch.save's C++ writer reports a short write (a full disk, a quota) as a RuntimeError, not an OSError.
TORCH_SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed writing", "file write failed")


def as_disk_full(err: BaseException, path) -> DiskFullError | None:
    """The DiskFullError for `err`, raised while writing `path`, if a full disk (or quota) caused it."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "no space left on its disk"
    elif isinstance(err, RuntimeError) and any(words in str(err) for words in TORCH_SHORT_WRITE):
        why = f"torch wrote less than it meant to, as on a full disk: {' '.join(str(err).split())}"
    else:
        return None
    return DiskFullError(
        f"{path}: not written ({why}); nothing half-written is left: free space there and run the same "
        "command again (training resumes from its last checkpoint)"
    )


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary_path)`, then rename it onto `path`: `path` is either the old file or the new
    complete one, never a partial one, even if the process dies while writing. A full disk raises
    DiskFullError, naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        full = as_disk_full(err, path)
        if full is None:
            raise
        raise full from err
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(path: Path, columns: list[str], rows: Iterable[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: row[key] for key in columns} for row in rows)
    atomic_write_text(path, buffer.getvalue())


def write_json(path: Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def read_run_record(folder: Path) -> dict:
    """run.json of a finished run; a ValueError naming the file and the remedy if it cannot be read."""
    path = Path(folder) / RUN_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(damaged_file(path, err)) from None
    if not isinstance(record, dict):
        raise ValueError(damaged_file(path, f"a JSON {type(record).__name__}, not an object"))
    return record


def damaged_file(path: Path, reason) -> str:
    """The one-line message for a run's file that cannot be used, with the two ways out."""
    path = Path(path)
    if isinstance(reason, BaseException):
        reason = "empty file" if _is_empty(path) else " ".join(str(reason).split()) or type(reason).__name__
    # Without its checkpoint a run starts over, without run.json it is unfinished; a CSV is just gone.
    delete = "the file" if path.name in (CHECKPOINT_FILE, RUN_FILE) else "the run folder"
    return (
        f"{path}: unreadable {path.name} ({reason}); train the run again from the start (its train "
        f"command with --force), or delete {delete}"
    )


def damaged_torch_file(path: Path, err: BaseException) -> str:
    """damaged_file for a file torch.load could not read: the kind of error, not torch's own text (which
    names neither the file nor the remedy, and may advise weights_only=False)."""
    reason = "empty file" if _is_empty(path) else f"truncated or damaged: {type(err).__name__}"
    return damaged_file(path, reason)


def _is_empty(path: Path) -> bool:
    try:
        return Path(path).stat().st_size == 0
    except OSError:
        return False


def read_table(path: Path) -> pd.DataFrame:
    """A run's CSV file; a ValueError naming the file and the remedy if it cannot be read."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(damaged_file(path, "missing")) from None
    except (OSError, ValueError) as err:  # pandas' EmptyDataError and ParserError are ValueErrors
        raise ValueError(damaged_file(path, err)) from None


def read_history(folder: Path, record: dict) -> pd.DataFrame:
    """history.csv of a finished run, checked against its run.json: it must end at the run's last
    iteration with the final test error run.json reports (a ValueError naming the run if not)."""
    path = Path(folder) / HISTORY_FILE
    table = read_table(path)
    missing = [column for column in ("iteration", "test_error") if column not in table.columns]
    if missing or table.empty:
        raise ValueError(damaged_file(path, f"no {', '.join(missing)} column" if missing else "no rows"))
    last_iteration, last_error = table["iteration"].iloc[-1], table["test_error"].iloc[-1]
    iterations, error = record["budget"]["iterations"], record["final_test_error"]
    # An ImageNet run reports a 10-crop or centre-crop error (final_test_view) that its curve does not hold.
    same_error = "final_test_view" in record or abs(float(last_error) - error) < 1e-9
    if last_iteration != iterations or not same_error:
        raise ValueError(
            f"{folder}: history.csv and run.json disagree (the curve ends at iteration {last_iteration} "
            f"with test error {last_error}%, run.json reports {iterations} iterations and final test "
            f"error {error}%): two processes wrote this run; pass --force to train it again, or delete "
            "the folder"
        )
    return table


# ---------------------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------------------


COMMIT_ENV = "RESNET_REPRO_COMMIT"


def git_commit() -> tuple[str, bool | None]:
    """(commit of the code that ran, whether it had uncommitted changes), or ("unknown", None).

    A copy of the code without its .git folder (a GPU machine's) names its commit in RESNET_REPRO_COMMIT.
    """
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV], None

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, dirty


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


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


# ---------------------------------------------------------------------------------------------------------
# Readers for the book
# ---------------------------------------------------------------------------------------------------------


def _finished_runs(results_dir) -> list[tuple[Path, dict]]:
    root = Path(results_dir) if results_dir is not None else DEFAULT_RESULTS_DIR
    found = sorted(root.glob(f"*/*/*/{RUN_FILE}"))  # <dataset>/<budget label>/<run>/run.json
    return [(path.parent, read_run_record(path.parent)) for path in found]


def _run_row(folder: Path, record: dict) -> dict:
    return {
        "experiment": folder.parent.name,
        "run": folder.name,
        "arch": record["arch"],
        "family": record["family"],
        "depth": record["depth"],
        "shortcut": record["shortcut"],
        "seed": record["seed"],
        "budget": record["budget"]["label"],
        "iterations": record["budget"]["iterations"],
        "dataset": dataset_label(record["provenance"]["dataset"]),
        "device_name": record["provenance"]["device_name"],
        "final_test_error": record["final_test_error"],
        "final_train_error": record["final_train_error"],
        "params": record["params"],
        "wall_time_s": record["wall_time_s"],
        "path": str(folder),
    }


def load_runs(results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per finished run (a folder with run.json) under results_dir; columns RUN_COLUMNS.

    experiment is the budget-label folder the run lives in (under its dataset's folder); dataset is what
    it trained on, with "-val<N>" if N training images were held out (`dataset_label`); errors are in %.
    """
    rows = [_run_row(folder, record) for folder, record in _finished_runs(results_dir)]
    return pd.DataFrame.from_records(rows, columns=RUN_COLUMNS)


def _per_run_table(results_dir, filename: str, columns: list[str], optional: bool = False) -> pd.DataFrame:
    frames = []
    for folder, record in _finished_runs(results_dir):
        if optional and not (folder / filename).is_file():
            continue
        table = read_history(folder, record) if filename == HISTORY_FILE else read_table(folder / filename)
        keys = {key: value for key, value in _run_row(folder, record).items() if key in RUN_KEYS}
        frames.append(table.assign(**keys)[RUN_KEYS + columns])
    if not frames:
        return pd.DataFrame(columns=RUN_KEYS + columns)
    return pd.concat(frames, ignore_index=True)


def load_histories(results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The curves of every finished run: run keys + iteration, lr, train_loss, train_error, test_error.

    train_loss/train_error: on the augmented mini-batches since the previous point (%, the paper's dashed
    lines); test_error: on the whole test set at that iteration (%, the bold lines).
    """
    return _per_run_table(results_dir, HISTORY_FILE, HISTORY_COLUMNS)


def load_grad_norms(results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The gradient norms of every finished run that recorded them: run keys + iteration, layer, name,
    grad_norm.

    grad_norm: the L2 norm of the gradient of the cross-entropy loss with respect to the layer's response
    (the output of the batch norm after a 3x3 convolution, as in layer_std.csv), on one fixed mini-batch
    of 128 unaugmented training images, in training mode, at initialisation (iteration 0) and at every
    eval point. Runs finished before this was recorded have no grad_norm.csv and are left out.
    """
    return _per_run_table(results_dir, GRAD_NORM_FILE, GRAD_NORM_COLUMNS, optional=True)


def load_layer_std(results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Figure 7 of every finished run: run keys + layer (1-based, in network order), name (module), std.

    std: the population standard deviation of every element (test image x channel x position) of the
    layer's response (its batch norm's output, before ReLU or addition) over the whole test set, with the
    trained network in eval mode.
    """
    return _per_run_table(results_dir, LAYER_STD_FILE, LAYER_STD_COLUMNS)


def load_landscapes(results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The loss landscapes of every finished run that has a landscape.csv: run keys + LANDSCAPE_COLUMNS."""
    return _per_run_table(results_dir, LANDSCAPE_FILE, LANDSCAPE_COLUMNS, optional=True)
