"""Where each stored run came from, read from its run.json: the command that redoes it, the hardware,
times, dataset identity and commit, and the speed options it used."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import pandas as pd

from resnet_repro.book.figure_runs import label
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.files import read_run_record


def train_command(config: dict) -> str:
    """The ``train`` command that redoes a run, from its recorded configuration (run.json's "config")."""
    run = RunConfig.from_dict(config)
    defaults = RunConfig(arch=run.arch, budget=run.budget).to_dict()
    flags = [f"--arch {run.arch}"] + ([f"--shortcut {run.shortcut}"] if run.family == "resnet" else [])
    flags += [f"--budget {run.budget}", f"--seed {run.seed}"]
    for key, value in run.to_dict().items():
        if key not in ("arch", "shortcut", "budget", "seed", "checkpoint_minutes") and value != defaults[key]:
            flags.append(f"--{key.replace('_', '-')} {shlex.quote(str(value))}")  # paths with spaces
    return "python -m resnet_repro train " + " ".join(flags)


def _record(path: str) -> dict:
    """A run's run.json (a damaged one stops with the reader's message); {} for a row with no folder."""
    try:
        return read_run_record(Path(path))
    except FileNotFoundError:
        return {}


def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: the command, budget, hardware, wall and training time, dataset identity and commit (run.json).

    train time is the training loop (steps and test passes); wall time adds setup and the layer responses."""
    columns = ["run", "command", "budget", "iterations", "device", "wall_time_min", "train_time_min"]
    columns += ["dataset", "dataset_sha256", "commit", "torch"]
    rows = []
    for run in runs.sort_values(["budget", "family", "depth", "shortcut", "seed"]).itertuples():
        record = _record(run.path)
        provenance = record.get("provenance", {})
        identity = provenance.get("dataset", {})
        commit = str(provenance.get("git_commit", "unknown"))[:10]
        rows.append(
            {
                "run": run.run,
                "command": train_command(record["config"]) if "config" in record else "",
                "budget": run.budget,
                "iterations": run.iterations,
                "device": run.device_name,
                "wall_time_min": run.wall_time_s / 60,
                "train_time_min": record.get("train_time_s", math.nan) / 60,
                "dataset": run.dataset + (" (lossy)" if identity.get("lossy") else ""),
                "dataset_sha256": str(identity.get("sha256", ""))[:12],
                "commit": commit + (" (uncommitted changes)" if provenance.get("git_dirty") else ""),
                "torch": provenance.get("torch", ""),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def speed_options_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The speed options each run used (run.json's "speed"): numerics the paper did not use, e.g. bf16."""
    rows = []
    for run in runs.itertuples():
        speed = _record(run.path).get("speed", {})
        rows.append({"run": run.run, "budget": run.budget, **speed})
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["run", "budget"])


DEVICE_KINDS = {"cpu": "a CPU", "cuda": "a GPU"}  # run.json's provenance.device, as a reader says it


def training_times(runs: pd.DataFrame) -> pd.DataFrame:
    """Per finished run: its budget, the kind of device (run.json's "cpu" or "cuda") and which one, and its
    wall time: what the same command takes on similar hardware. Fastest first within a budget and device."""
    columns = ["budget", "iterations", "device", "device_name", "net", "run", "wall_time_min"]
    rows = [
        {
            "budget": run.budget,
            "iterations": run.iterations,
            "device": _record(run.path).get("provenance", {}).get("device", "unknown"),
            "device_name": run.device_name,
            "net": label(run.arch, run.shortcut),
            "run": run.run,
            "wall_time_min": run.wall_time_s / 60,
        }
        for run in runs.itertuples()
    ]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["iterations", "device", "wall_time_min"], ignore_index=True)
