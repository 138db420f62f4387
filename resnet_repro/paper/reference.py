"""The paper's own numbers, in one table: ``paper_reference.csv`` beside this file.

Transcribed from He et al. (2015), checked against ``shared/reference/he2015.md``.
The book shows these labelled as the paper's; tests compare our counts with them.
Metrics: ``macs`` (multiply-adds at 224x224, the paper's "FLOPs"), ``params``,
``top1_error`` / ``top5_error`` (ImageNet, %, 10-crop), ``test_error`` (CIFAR-10, %;
for ResNet-110 the best of 5 runs, with ``test_error_mean`` and ``test_error_std``).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pandas as pd


@cache
def _load() -> pd.DataFrame:
    with files(__package__).joinpath("paper_reference.csv").open() as f:
        return pd.read_csv(f, dtype={"shortcut": "string"}).fillna({"shortcut": ""})


def paper_table() -> pd.DataFrame:
    """All reference values: source, dataset, model, family, depth, shortcut, metric, value."""
    return _load().copy()


def paper_value(metric: str, model: str, source: str | None = None) -> float:
    """One value, e.g. ``paper_value("macs", "VGG-19")`` -> 1.96e10."""
    table = _load()
    rows = table[(table.metric == metric) & (table.model == model)]
    if source is not None:
        rows = rows[rows.source == source]
    if len(rows) != 1:
        choices = sorted(set(table.loc[table.metric == metric, "model"]))
        raise KeyError(f"no single paper value for {metric!r} of {model!r}; models with it: {choices}")
    return float(rows.value.iloc[0])
