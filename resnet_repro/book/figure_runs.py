"""Which runs a figure, table or claim shows: the nets of each of the paper's figures, and the choice among
the stored runs (one dataset; one budget where nets are compared), with their final errors per net.

Every function takes the tidy DataFrames of ``resnet_repro.runs.loaders`` (``load_runs``, ``load_histories``,
...), so the book's layers above (claims, notes, tables, plots) only choose by figure name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from resnet_repro import models
from resnet_repro.runs.config import BUDGETS, PLAIN_SHORTCUT, parse_budget_label
from resnet_repro.runs.folders import OFFICIAL_DATASET, REPO_ROOT
from resnet_repro.sweeps.experiments import experiment_specs

PLAIN = PLAIN_SHORTCUT  # load_runs' shortcut for a plain net (it has none)


Net = tuple[str, str]  # (arch, shortcut), as in load_runs: ("plain20", "-"), ("resnet56", "B")


def net(arch: str, shortcut: str = "A") -> Net:
    """A CIFAR-10 net as load_runs keys it; plain nets get no shortcut option."""
    family, _ = models.parse_arch(arch)
    return (arch, PLAIN if family == "plain" else shortcut)


def sentence_case(text: str) -> str:
    """Upper-case the first letter only (str.capitalize would lower "ResNets" to "Resnets")."""
    return text[:1].upper() + text[1:]


def label(arch: str, shortcut: str = PLAIN, show_option: bool = False) -> str:
    """The paper's way of naming a net: "plain-20", "ResNet-56", "ResNet-56 B"."""
    family, depth = models.parse_arch(arch)
    if family == "plain":
        return f"plain-{depth}"
    option = f" {shortcut}" if show_option or shortcut != "A" else ""
    return f"ResNet-{depth}{option}"


def nets_of(family: str, depths, shortcuts=("A",)) -> tuple[Net, ...]:
    return tuple(net(f"{family}{d}", s) for d in depths for s in shortcuts)


def _family(specs, family: str, depths=None) -> tuple[Net, ...]:
    return tuple(
        (arch, shortcut)
        for arch, shortcut in specs
        if models.parse_arch(arch)[0] == family and (depths is None or models.parse_arch(arch)[1] in depths)
    )


# The nets each figure or table of the paper shows, taken from the experiment that trains them.
FIGURES: dict[str, tuple[tuple[Net, ...], str]] = {
    "fig1": (tuple(experiment_specs("fig1")), "fig1"),
    "fig6_plain": (_family(experiment_specs("fig6"), "plain"), "fig6"),
    "fig6_resnet": (_family(experiment_specs("fig6"), "resnet"), "fig6"),
    "fig6_1202": (_family(experiment_specs("fig6", include_1202=True), "resnet", (110, 1202)), "fig6"),
    "fig7": (tuple(experiment_specs("fig7")), "fig7"),
    "shortcuts": (tuple(experiment_specs("shortcuts")), "shortcuts"),
    "table6": (tuple(experiment_specs("table6", include_1202=True)), "table6"),
}


def budget_flags(budget: str) -> str:
    """Command-line flags for a results budget label: "smoke-120it" -> "--budget smoke --iterations 120"."""
    parsed = parse_budget_label(budget)
    if parsed is None:
        return f"--budget {budget}"
    name, iterations = parsed
    return f"--budget {name}" + (f" --iterations {iterations}" if iterations else "")


def is_smoke(budget: str | None) -> bool:
    """Smoke runs (any length) train on a small subset: they check the plumbing, not the paper."""
    parsed = parse_budget_label(budget or "")
    return parsed is not None and parsed[0] == "smoke"


def experiment_command(experiment: str, budget: str = "quick") -> str:
    """The shell command that trains an experiment's runs (finished ones are skipped)."""
    return f"python -m resnet_repro reproduce {experiment} {budget_flags(budget)}"


def reproduce_command(figure: str, budget: str = "quick", include_1202: bool = False) -> str:
    """The shell command that trains what ``figure`` needs (ResNet-1202 only when asked: it is slow)."""
    extra = " --include-1202" if include_1202 or figure == "fig6_1202" else ""
    return experiment_command(FIGURES[figure][1], budget) + extra


BUDGET_ORDER = BUDGETS  # shortest first: ranks budgets of equal length; longer training wins first


@dataclass(frozen=True)
class Selection:
    """The runs one figure, table or claim shows, all on one dataset.

    Where our nets are compared with each other (a figure's curves, the shortcut table, every claim) all
    nets share one budget (``common=True``), so a long run is never set against a short one. Where each net
    is compared with the paper on its own (Table 6, the depth explorer), each brings every seed of its
    longest stored budget, so nets may differ in budget (full ResNet-20 beside quick ResNet-56).
    """

    nets: tuple[Net, ...]
    runs: pd.DataFrame
    other_runs: pd.DataFrame | None = None  # of these nets on the same dataset, at budgets not shown
    other_datasets: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return self.runs.empty

    @property
    def present(self) -> tuple[Net, ...]:
        have = set(zip(self.runs.arch, self.runs.shortcut, strict=True))
        return tuple(n for n in self.nets if n in have)

    @property
    def missing(self) -> tuple[Net, ...]:
        return tuple(n for n in self.nets if n not in self.present)

    @property
    def budgets(self) -> tuple[str, ...]:
        """The budgets shown, longest first."""
        return _budgets_of(self.runs)

    @property
    def other_budgets(self) -> tuple[str, ...]:
        """The budgets stored for these nets but not shown, longest first."""
        return () if self.other_runs is None else _budgets_of(self.other_runs)

    @property
    def budget(self) -> str | None:
        """The budget of every run shown; None when there are none or the nets differ in budget."""
        return self.budgets[0] if len(self.budgets) == 1 else None

    @property
    def iterations(self) -> int | None:
        return None if self.empty else int(self.runs.iterations.max())

    @property
    def dataset(self) -> str | None:
        return None if self.empty else str(self.runs.dataset.iloc[0])

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.runs.device_name.dropna().astype(str))))

    def nets_at(self, budget: str, shown: bool = True) -> tuple[Net, ...]:
        """The nets with runs at ``budget`` among those shown (or, ``shown=False``, those left out)."""
        frame = self.runs if shown else self.other_runs
        at = frame[frame.budget == budget]
        have = set(zip(at.arch, at.shortcut, strict=True))
        return tuple(n for n in self.nets if n in have)


def _budgets_of(runs: pd.DataFrame) -> tuple[str, ...]:
    """The budgets of some runs, longest first."""
    if runs.empty:
        return ()
    longest = runs.groupby("budget").iterations.max()
    return tuple(sorted(longest.index, key=lambda b: budget_rank(b, longest[b]), reverse=True))


def budget_rank(budget: str, iterations: float) -> tuple[float, int]:
    parsed = parse_budget_label(budget)
    known = BUDGET_ORDER.index(parsed[0]) if parsed and parsed[0] in BUDGET_ORDER else -1
    return (0.0 if pd.isna(iterations) else float(iterations), known)


def _nets_in(frame: pd.DataFrame) -> int:
    return len(set(zip(frame.arch, frame.shortcut, strict=True)))


def select_runs(runs: pd.DataFrame, nets, common: bool = False) -> Selection:
    """The stored runs of ``nets`` to show, on one dataset: the one covering most nets, the official files
    whenever they cover as many as any other (a reader's official runs are shown instead of our JPEG
    copy's, which the notes then name as also stored). Per net, every seed of the longest budget stored for
    it (full > quick > smoke, by iterations trained). ``common``: one budget for all nets instead, the one
    covering most of them (then the longest), for comparisons.
    """
    nets = tuple(nets)
    wanted = rows_with_keys(runs, ["arch", "shortcut"], set(nets))
    if wanted.empty:
        return Selection(nets, wanted)
    coverage = {dataset: _nets_in(rows) for dataset, rows in wanted.groupby("dataset")}
    dataset = max(coverage, key=lambda d: (coverage[d], d == OFFICIAL_DATASET, d))
    on_dataset = wanted[wanted.dataset == dataset]
    if common:
        budgets = {budget: rows for budget, rows in on_dataset.groupby("budget")}
        best = max(budgets, key=lambda b: (_nets_in(budgets[b]), budget_rank(b, budgets[b].iterations.max())))
        chosen = budgets[best]
    else:
        parts = []
        for _, rows in on_dataset.groupby(["arch", "shortcut"], sort=False):
            longest = rows.groupby("budget").iterations.max()
            best = max(longest.index, key=lambda b: budget_rank(b, longest[b]))
            parts.append(rows[rows.budget == best])
        chosen = pd.concat(parts)
    shown = set(zip(chosen.arch, chosen.shortcut, chosen.budget, strict=True))
    hidden = on_dataset[
        [
            key not in shown
            for key in zip(on_dataset.arch, on_dataset.shortcut, on_dataset.budget, strict=True)
        ]
    ]
    return Selection(
        nets,
        chosen.reset_index(drop=True),
        other_runs=hidden.reset_index(drop=True),
        other_datasets=tuple(sorted(d for d in coverage if d != dataset)),
    )


PER_NET_FIGURES = ("table6",)  # each row is compared with the paper's, not with the other rows


def select_figure(runs: pd.DataFrame, figure: str, common: bool | None = None) -> Selection:
    """The runs ``figure`` shows: one budget for all its nets, except in PER_NET_FIGURES (``select_runs``)."""
    return select_runs(runs, FIGURES[figure][0], figure not in PER_NET_FIGURES if common is None else common)


def rows_of(frame: pd.DataFrame, selection: Selection) -> pd.DataFrame:
    """The rows of a histories or layer-std frame that belong to the selected runs (by dataset, budget and
    run: the same net and budget may be stored on the official files and on the JPEG copy)."""
    keys = ["dataset", "budget", "run"]
    chosen = set(selection.runs[keys].itertuples(index=False, name=None))
    return rows_with_keys(frame, keys, chosen).reset_index(drop=True)


def rows_with_keys(frame: pd.DataFrame, columns: list[str], keys: set) -> pd.DataFrame:
    """The rows whose values in ``columns`` form one of ``keys`` (works on empty frames too)."""
    mask = pd.Series([tuple(k) in keys for k in frame[columns].itertuples(index=False)], index=frame.index)
    return frame[mask.astype(bool)]


def net_results(selection: Selection) -> pd.DataFrame:
    """Final errors per net, over its seeds: label, budget, seeds, test/train mean and std (NaN for one
    seed)."""
    columns = ["arch", "shortcut", "family", "depth", "label", "budget", "seeds", "test_mean", "test_std"]
    columns += ["train_mean", "train_std", "params"]
    if selection.empty:
        return pd.DataFrame(columns=columns)
    grouped = selection.runs.groupby(["arch", "shortcut", "family", "depth", "budget"], sort=False)
    table = grouped.agg(
        seeds=("seed", "nunique"),
        test_mean=("final_test_error", "mean"),
        test_std=("final_test_error", "std"),
        train_mean=("final_train_error", "mean"),
        train_std=("final_train_error", "std"),
        params=("params", "first"),
    ).reset_index()
    table.insert(4, "label", [label(a, s) for a, s in zip(table.arch, table.shortcut, strict=True)])
    order = {n: i for i, n in enumerate(selection.nets)}
    table["order"] = [order[n] for n in zip(table.arch, table.shortcut, strict=True)]
    return table.sort_values("order").drop(columns="order").reset_index(drop=True)[columns]


def pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}%"


def mean_pm(mean: float, std: float) -> str:
    return pct(mean) if pd.isna(std) else f"{mean:.2f} ± {std:.2f}%"


def to_run(selection: Selection, figure: str) -> str:
    """The command that trains what a check lacks, at the budget of the runs it would be compared with."""
    return f"`{reproduce_command(figure, selection.budget or 'quick')}`"


FIGURES["gradients"] = (nets_of("plain", (20, 56)) + nets_of("resnet", (20, 56)), "fig7")


FIGURES["lesion"] = ((net("resnet56"), net("plain56"), net("resnet110")), "fig7")


FIGURES["landscape"] = (nets_of("plain", (20, 56)) + nets_of("resnet", (20, 56, 110)), "fig7")


def analyze_command(selection: Selection, labels_wanted, analysis: str) -> str:
    """The command that computes what an analysis of stored weights ("lesion", "landscape": the figure of
    that name) lacks: `analyze <analysis>` on runs that exist, the training command for nets without one."""
    runs = selection.runs
    have = {label(a, s): p for a, s, p in zip(runs.arch, runs.shortcut, runs.path, strict=True)}
    folders = []
    for name in labels_wanted:
        if name in have:
            path = Path(have[name]).resolve()
            folders.append(str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path))
    parts = []
    if folders:
        parts.append(f"`python -m resnet_repro analyze {analysis} {' '.join(folders)}`")
    if len(folders) < len(labels_wanted):
        parts.append(f"{to_run(selection, analysis)} (to train the nets first)")
    return " and ".join(parts)
