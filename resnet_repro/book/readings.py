"""What the why-chapter reads from the runs' records: how the gradient norm changes from the last layers
to the first (grad_norm.csv), and how far removing one block moves a net's test error (lesion.csv).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from resnet_repro.book.figure_runs import Selection, label, rows_of
from resnet_repro.runs.folders import FP32_CHECK, SLICE, SUBSET_CHECK, SURFACE

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


# ---------------------------------------------------------------------------------------------------------
# The loss landscape (landscape.csv, Li et al.'s method): curvature on the grid, bf16 against fp32
# ---------------------------------------------------------------------------------------------------------

# Near theta*: the grid points with |alpha| and |beta| at most this share of the grid's span.
NEAR_THETA = 0.5
# A point curves downward (is not locally convex) when the smaller eigenvalue of the surface's Hessian there
# is negative and at least this share of the larger one in size: Li et al. map |smaller / larger| the same
# way; the margin keeps the rounding noise of a nearly flat direction from counting as a negative curvature.
NEGATIVE_CURVATURE = 0.1
BF16_LOSS_TOLERANCE = 0.01  # bf16 evaluation is fine where every checked point's loss is within 1% of fp32's
LANDSCAPE_LEVELS = 24  # contour levels of the surfaces, spaced evenly in log(loss) from lowest to highest


def grid_of(rows: pd.DataFrame, column: str = "loss") -> tuple[np.ndarray, np.ndarray]:
    """The axis of a square grid of surface rows and `column` on it as a matrix [beta, alpha]."""
    matrix = rows.pivot_table(index="beta", columns="alpha", values=column, aggfunc="mean").sort_index()
    return matrix.columns.to_numpy(dtype=float), matrix.sort_index(axis=1).to_numpy(dtype=float)


def hessian_eigenvalues(surface: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """The smaller and the larger eigenvalue of the finite-difference Hessian (central differences) at
    every interior point of a surface sampled on a square grid [beta, alpha] of spacing `step`."""
    f = surface
    d_aa = (f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]) / step**2
    d_bb = (f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]) / step**2
    d_ab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * step**2)
    mean, radius = (d_aa + d_bb) / 2, np.hypot((d_aa - d_bb) / 2, d_ab)
    return mean - radius, mean + radius


def curves_downward(surface: np.ndarray, step: float, ratio: float = NEGATIVE_CURVATURE) -> np.ndarray:
    """Per interior point: whether the surface curves downward along some direction there by at least
    `ratio` of its strongest curvature (non-convex)."""
    smaller, larger = hessian_eigenvalues(surface, step)
    return smaller < -ratio * np.maximum(np.abs(smaller), np.abs(larger))


def near_theta(axis: np.ndarray) -> np.ndarray:
    """The interior points of a square grid near theta* (|alpha|, |beta| <= NEAR_THETA of the span)."""
    inner = np.abs(axis) <= NEAR_THETA * np.abs(axis).max() + 1e-9
    mask = np.outer(inner, inner)
    mask[[0, -1], :] = mask[:, [0, -1]] = False
    return mask


def downward_share_near(axis: np.ndarray, loss: np.ndarray) -> float:
    """The share of a grid's points near theta* where the surface curves downward."""
    down = np.pad(curves_downward(loss, float(axis[1] - axis[0])), 1, constant_values=False)
    return float(down[near_theta(axis)].mean())


@dataclass(frozen=True)
class Landscape:
    """One run's landscape.csv, as the book reads it."""

    arch: str
    shortcut: str
    label: str
    run: str
    axis: np.ndarray  # alpha (and beta) of the grid
    loss: np.ndarray  # [beta, alpha]
    error: np.ndarray  # [beta, alpha], %
    slice: pd.DataFrame  # alpha, loss, error along delta alone
    images: int
    evaluated: int  # points in the file (grid, slice, fp32 check)
    seconds: float  # wall clock, every point of the file (the fp32 check included)
    cpu_seconds: float  # the same in CPU time
    device: str
    amp: str
    threads: int

    @property
    def step(self) -> float:
        return float(self.axis[1] - self.axis[0])

    @property
    def center(self) -> tuple[float, float]:
        """Loss and error at theta*."""
        middle = len(self.axis) // 2
        return float(self.loss[middle, middle]), float(self.error[middle, middle])

    def downward(self) -> np.ndarray:
        """curves_downward on the grid, padded with False at the border (no central difference there)."""
        return np.pad(curves_downward(self.loss, self.step), 1, constant_values=False)

    def near(self) -> np.ndarray:
        return near_theta(self.axis)

    def non_convex_share(self, near: bool = True) -> float:
        """The share of interior grid points (near theta*, or all) where the surface curves downward."""
        region = self.near() if near else np.pad(np.ones_like(self.loss[1:-1, 1:-1], bool), 1)
        return float(self.downward()[region].mean())


def landscapes(table: pd.DataFrame, selection: Selection) -> dict[str, Landscape]:
    """Per net of the selection with a landscape.csv, keyed by label in selection order: its lowest seed's
    run (surfaces of different weights are not averaged)."""
    rows = rows_of(table, selection)
    found = {}
    for arch, shortcut in selection.nets:
        mine = rows[(rows.arch == arch) & (rows.shortcut == shortcut)]
        if mine.empty:
            continue
        run = mine.sort_values("seed").run.iloc[0]
        mine = mine[mine.run == run]
        surface = mine[mine.kind == SURFACE]
        axis, loss = grid_of(surface, "loss")
        along = mine[mine.kind == SLICE].sort_values("alpha")[["alpha", "loss", "error"]]
        name = label(arch, shortcut)
        found[name] = Landscape(
            arch, shortcut, name, run, axis, loss, grid_of(surface, "error")[1], along.reset_index(drop=True),
            int(surface.images.iloc[0]), len(mine), float(mine.seconds.sum()), float(mine.cpu_seconds.sum()),
            str(mine.device.iloc[0]),
            str(surface.amp.iloc[0]), int(mine.threads.iloc[0]),
        )  # fmt: skip
    return found


@dataclass(frozen=True)
class PrecisionGap:
    """bf16 against fp32 on the points of one grid row (landscape.csv's "fp32 check")."""

    points: int
    max_loss_gap: float  # |bf16 - fp32|, largest over the row
    max_relative_gap: float  # the same over the fp32 loss
    max_error_gap: float  # percentage points
    same_curvature_sign: int  # interior points of the row whose second difference has the same sign
    interior: int

    @property
    def agrees(self) -> bool:
        return self.max_relative_gap <= BF16_LOSS_TOLERANCE


def precision_gap(table: pd.DataFrame) -> PrecisionGap | None:
    """How far the bf16 surface is from the fp32 check on the check's row; None without a check (or where
    the surface itself is fp32)."""
    check = table[table.kind == FP32_CHECK]
    surface = table[(table.kind == SURFACE) & (table.amp == "bf16")]
    both = surface.merge(check, on=["alpha", "beta"], suffixes=("", "_fp32")).sort_values("alpha")
    if both.empty:
        return None
    gap = (both.loss - both.loss_fp32).abs()
    curvature = np.sign(np.diff(both.loss.to_numpy(), 2)), np.sign(np.diff(both.loss_fp32.to_numpy(), 2))
    return PrecisionGap(
        len(both), float(gap.max()), float((gap / both.loss_fp32).max()),
        float((both.error - both.error_fp32).abs().max()), int((curvature[0] == curvature[1]).sum()),
        len(both) - 2,
    )  # fmt: skip


def precision_gap_text(gap: PrecisionGap) -> str:
    verdict = "within" if gap.agrees else "outside"
    return (
        f"bf16 against fp32 on {gap.points} points of the row beta = 0: loss at most {gap.max_loss_gap:.2g} "
        f"apart ({gap.max_relative_gap:.2%} of fp32's; {verdict} the {BF16_LOSS_TOLERANCE:.0%} tolerance), "
        f"error at most {gap.max_error_gap:.2f} points; the second difference along the row has the same "
        f"sign at {gap.same_curvature_sign} of {gap.interior} points"
    )


@dataclass(frozen=True)
class SubsetGap:
    """The surface on twice the training images (landscape.csv's "subset check", every other grid point)
    against the grid's own subset at the same points."""

    points: int
    images: int  # the grid's subset
    doubled: int  # the check's
    max_relative_gap: float  # |doubled - grid| / grid, largest over the shared points
    max_relative_gap_near: float  # the same near theta*
    band: float  # the loss ratio one colour band of the run's contour plot spans
    downward_near: tuple[float, float]  # share curving downward near theta* on these points: grid, doubled

    @property
    def agrees(self) -> bool:
        """Not visible: no point's loss moves by more than half a colour band (a factor of sqrt(band))."""
        return 1 + self.max_relative_gap <= math.sqrt(self.band)


def subset_gap(table: pd.DataFrame) -> SubsetGap | None:
    """How far the surface moves when its subset of training images doubles; None without a check."""
    check = table[table.kind == SUBSET_CHECK]
    surface = table[table.kind == SURFACE]
    both = surface.merge(check, on=["alpha", "beta"], suffixes=("", "_doubled"))
    if both.empty:
        return None
    gap = (both.loss_doubled - both.loss).abs() / both.loss
    axis, loss = grid_of(both, "loss")
    doubled = grid_of(both, "loss_doubled")[1]
    near = near_theta(axis)
    band = (surface.loss.max() / surface.loss.min()) ** (1 / (LANDSCAPE_LEVELS - 1))
    shares = downward_share_near(axis, loss), downward_share_near(axis, doubled)
    gap_grid = grid_of(both.assign(gap=gap), "gap")[1]
    return SubsetGap(
        len(both), int(both.images.iloc[0]), int(both.images_doubled.iloc[0]), float(gap.max()),
        float(gap_grid[near].max()), float(band), shares,
    )  # fmt: skip


def subset_gap_text(gap: SubsetGap) -> str:
    verdict = "less" if gap.agrees else "more"
    return (
        f"on {gap.doubled:,} training images instead of {gap.images:,}, the loss at the {gap.points} shared "
        f"grid points moves by at most {gap.max_relative_gap:.1%} ({gap.max_relative_gap_near:.1%} near the "
        f"trained weights), {verdict} than half a colour band of its contour plot (a band spans a factor "
        f"of {gap.band:.2f}); on these points the surface curves downward at {gap.downward_near[0]:.0%} of "
        f"those near the trained weights with {gap.images:,} images and {gap.downward_near[1]:.0%} with "
        f"{gap.doubled:,}"
    )
