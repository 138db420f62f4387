"""What the why-chapter reads from the runs' records: how the gradient norm changes from the last layers
to the first (grad_norm.csv), and how far removing one block moves a net's test error (lesion.csv).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .figures import Selection, label, rows_of

# "The backward propagated gradients exhibit healthy norms": not so if the first layers' gradients fall by
# two orders of magnitude (or more) below the last layers'.
EDGE_LAYERS = 3  # the first and the last 3x3 layers compared (geometric mean of their gradient norms)


def gradient_ratios(grad_norms: pd.DataFrame, edge: int = EDGE_LAYERS) -> pd.DataFrame:
    """Per run and recorded iteration: the geometric mean of the gradient norms of the first `edge` layers,
    of the last `edge`, and first/last (below 1: the gradient shrinks on its way back to the input)."""
    rows = []
    for (budget, run, arch, shortcut, iteration), group in grad_norms.groupby(
        ["budget", "run", "arch", "shortcut", "iteration"], sort=False
    ):
        norms = group.sort_values("layer").grad_norm.to_numpy(dtype=float)
        first, last = (float(np.exp(np.log(part).mean())) for part in (norms[:edge], norms[-edge:]))
        rows.append(
            {"budget": budget, "run": run, "arch": arch, "shortcut": shortcut, "label": label(arch, shortcut),
             "iteration": int(iteration), "first": first, "last": last, "ratio": first / last}
        )  # fmt: skip
    columns = ["budget", "run", "arch", "shortcut", "label", "iteration", "first", "last", "ratio"]
    return pd.DataFrame(rows, columns=columns)


def gradient_extremes(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per net (mean over seeds per iteration): first/last at initialisation, its lowest value along training
    and where, and its highest."""
    rows = []
    for (arch, shortcut, name), group in ratios.groupby(["arch", "shortcut", "label"], sort=False):
        mean = group.groupby("iteration").ratio.mean()
        rows.append(
            {"arch": arch, "shortcut": shortcut, "label": name, "at_init": mean.iloc[0],
             "lowest": mean.min(), "lowest_at": int(mean.idxmin()), "highest": mean.max(),
             "highest_at": int(mean.idxmax()), "iterations": len(mean)}
        )  # fmt: skip
    columns = ["arch", "shortcut", "label", "at_init", "lowest", "lowest_at", "highest", "highest_at"]
    return pd.DataFrame(rows, columns=[*columns, "iterations"])


def ratio_text(ratio: float) -> str:
    """A ratio as the reader says it: "0.43x", "12x", "1/250"."""
    if ratio < 0.01:
        return f"1/{1 / ratio:,.0f}"
    return f"{ratio:.2g}x" if ratio < 100 else f"{ratio:,.0f}x"


def chance_error(n_classes: int = 10) -> float:
    return 100.0 * (1 - 1 / n_classes)


def lesion_damage(error: float, intact: float, chance: float) -> float:
    """How far a removal moved the test error from the intact net's towards chance (0: no move, 1: chance)."""
    return math.nan if chance <= intact else (error - intact) / (chance - intact)


@dataclass(frozen=True)
class LesionEffect:
    """One net's lesion results: intact error and the errors with each block removed."""

    arch: str
    shortcut: str
    label: str
    intact: float
    table: pd.DataFrame  # lesion.csv's rows with a block removed, plus "damage"

    def median(self, changes_shape: bool | None = None) -> float:
        rows = self.table if changes_shape is None else self.table[self.table.changes_shape == changes_shape]
        return float(rows.test_error.median()) if not rows.empty else math.nan

    def median_damage(self, changes_shape: bool | None = None) -> float:
        rows = self.table if changes_shape is None else self.table[self.table.changes_shape == changes_shape]
        return float(rows.damage.median()) if not rows.empty else math.nan

    @property
    def worst(self) -> pd.Series:
        return self.table.loc[self.table.test_error.idxmax()]


def lesion_effects(lesions: pd.DataFrame, selection: Selection) -> dict[str, LesionEffect]:
    """Per net of the selection with a lesion.csv (mean over seeds): keyed by label, in selection order."""
    rows = rows_of(lesions, selection)
    effects = {}
    for arch, shortcut in selection.nets:
        mine = rows[(rows.arch == arch) & (rows.shortcut == shortcut)]
        if mine.empty:
            continue
        classes = len([c for c in mine.columns if c.startswith("error_")]) or 10
        mean = mine.groupby(["block", "name", "stage", "changes_shape"], as_index=False).test_error.mean()
        intact = float(mean[mean.block == 0].test_error.iloc[0])
        removed = mean[mean.block > 0].copy()
        removed["damage"] = [lesion_damage(e, intact, chance_error(classes)) for e in removed.test_error]
        name = label(arch, shortcut)
        effects[name] = LesionEffect(arch, shortcut, name, intact, removed.reset_index(drop=True))
    return effects
