"""The book's readers: every finished run folder under a results folder as one tidy DataFrame per file."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from resnet_repro.runs.files import read_history, read_run_record, read_table
from resnet_repro.runs.folders import (
    DEFAULT_RESULTS_DIR,
    GRAD_NORM_COLUMNS,
    GRAD_NORM_FILE,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    LANDSCAPE_COLUMNS,
    LANDSCAPE_FILE,
    LAYER_STD_COLUMNS,
    LAYER_STD_FILE,
    RUN_COLUMNS,
    RUN_FILE,
    RUN_KEYS,
    dataset_label,
)


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
