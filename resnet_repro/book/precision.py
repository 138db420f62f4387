"""Does bf16 autocast train as fp32 does? The rows of `benchmarks/precision_check.py`, summed up and judged.

The check trains the same nets with the same seeds both ways and records the training and test error at
a few points early in the quick schedule (`data/benchmarks/bf16_vs_fp32.csv`). bf16 *lags* at a point
when its mean error over the seeds is above fp32's by more than the seeds' spread (the larger of the two
standard deviations): a gap the choice of seed alone does not explain.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.runs.folders import REPO_ROOT

PRECISION_CHECK_FILE = REPO_ROOT / "data" / "benchmarks" / "bf16_vs_fp32.csv"
COLUMNS = ["arch", "precision", "seed", "iteration", "train_error", "test_error", "device", "torch"]
METRICS = ("train_error", "test_error")
METRIC_NAMES = {"train_error": "training error", "test_error": "test error"}
LOW, HIGH = "bf16", "fp32"  # the precision checked, and the one it is checked against


def load_precision_check(path: str | Path = PRECISION_CHECK_FILE) -> pd.DataFrame:
    """The check's rows (an empty frame with its columns where it has not run)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path)


def precision_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per net, curve point and precision: how many seeds, and each metric's mean and standard deviation."""
    grouped = rows.groupby(["arch", "iteration", "precision"], sort=False)
    summary = grouped[list(METRICS)].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()


def precision_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per net, curve point and metric where both precisions have two seeds or more: bf16's mean minus
    fp32's (`gap`, in points of error), the seeds' spread, and whether bf16 lags (gap > spread)."""
    summary = precision_summary(rows).set_index(["arch", "iteration", "precision"])
    verdicts = []
    for arch, iteration in dict.fromkeys((a, i) for a, i, _ in summary.index):
        if (arch, iteration, LOW) not in summary.index or (arch, iteration, HIGH) not in summary.index:
            continue
        low, high = summary.loc[(arch, iteration, LOW)], summary.loc[(arch, iteration, HIGH)]
        if min(low.seeds, high.seeds) < 2:  # no spread to measure the gap against
            continue
        seeds = int(min(low.seeds, high.seeds))
        for metric in METRICS:
            gap = low[f"{metric}_mean"] - high[f"{metric}_mean"]
            spread = max(low[f"{metric}_std"], high[f"{metric}_std"])
            verdicts.append(
                {"arch": arch, "iteration": int(iteration), "metric": metric, "seeds": seeds,
                 "gap": float(gap), "spread": float(spread), "lags": bool(gap > spread)}
            )  # fmt: skip
    return pd.DataFrame(verdicts, columns=["arch", "iteration", "metric", "seeds", "gap", "spread", "lags"])


def paired_gaps(rows: pd.DataFrame, arch: str, iteration: int, metric: str) -> list[float]:
    """bf16's error minus fp32's seed by seed (the seeds both precisions ran), at one net, point and metric:
    a lag within the seeds' spread can still be there in every pair."""
    at = rows[(rows.arch == arch) & (rows.iteration == iteration)]
    by_seed = at.pivot_table(index="seed", columns="precision", values=metric).dropna()
    if LOW not in by_seed or HIGH not in by_seed:
        return []
    return [float(gap) for gap in by_seed[LOW] - by_seed[HIGH]]


def bf16_agrees(verdicts: pd.DataFrame) -> bool | None:
    """True when bf16 lags nowhere, False when it lags somewhere, None with nothing to judge from."""
    if verdicts.empty:
        return None
    return not verdicts["lags"].any()
