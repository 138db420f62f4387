"""What the book states, computed: which runs a figure shows, and whether each of the paper's claims holds.

Every function here takes the tidy DataFrames of ``resnet_repro.results`` (``load_runs``,
``load_histories``, ``load_layer_std``) or counts made by ``resnet_repro.flops``, so the notebooks only
call and display, and the tests can check the verdicts on small frames. Paper numbers come from
``resnet_repro.paper`` and nowhere else.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pandas as pd

from . import flops, models
from .config import PLAIN_SHORTCUT, RunConfig
from .data import JPEG_ARCHIVE_NAME, OFFICIAL_NAME
from .experiments import experiment_specs
from .models.imagenet import PLAIN_DEPTHS, TABLE1, VGG_DEPTHS
from .paper import paper_table, paper_value
from .schedule import PAPER_ITERATIONS

# ---------------------------------------------------------------------------------------------------------
# Nets and the figures that show them
# ---------------------------------------------------------------------------------------------------------

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


def _nets(family: str, depths, shortcuts=("A",)) -> tuple[Net, ...]:
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


BUDGET_LABEL = re.compile(r"^(?P<name>[a-z]+)(?:-(?P<iterations>\d+)it)?$")  # "quick", "smoke-120it"


def budget_flags(budget: str) -> str:
    """Command-line flags for a results budget label: "smoke-120it" -> "--budget smoke --iterations 120"."""
    match = BUDGET_LABEL.match(budget)
    if match is None:
        return f"--budget {budget}"
    iterations = f" --iterations {match['iterations']}" if match["iterations"] else ""
    return f"--budget {match['name']}{iterations}"


def is_smoke(budget: str | None) -> bool:
    """Smoke runs (any length) train on a small subset: they check the plumbing, not the paper."""
    match = BUDGET_LABEL.match(budget or "")
    return match is not None and match["name"] == "smoke"


def experiment_command(experiment: str, budget: str = "quick") -> str:
    """The shell command that trains an experiment's runs (finished ones are skipped)."""
    return f"python -m resnet_repro reproduce {experiment} {budget_flags(budget)}"


def reproduce_command(figure: str, budget: str = "quick", include_1202: bool = False) -> str:
    """The shell command that trains what ``figure`` needs (ResNet-1202 only when asked: it is slow)."""
    extra = " --include-1202" if include_1202 or figure == "fig6_1202" else ""
    return experiment_command(FIGURES[figure][1], budget) + extra


# ---------------------------------------------------------------------------------------------------------
# Choosing the runs a figure shows
# ---------------------------------------------------------------------------------------------------------

BUDGET_ORDER = ("smoke", "quick", "full")  # ranks budgets of equal length; longer training wins first
OFFICIAL_DATASET = OFFICIAL_NAME  # the dataset names that runs record
JPEG_DATASET = JPEG_ARCHIVE_NAME


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
    return tuple(sorted(longest.index, key=lambda b: _budget_rank(b, longest[b]), reverse=True))


def _budget_rank(budget: str, iterations: float) -> tuple[float, int]:
    known = BUDGET_ORDER.index(BUDGET_LABEL.match(budget)["name"]) if BUDGET_LABEL.match(budget) else -1
    return (0.0 if pd.isna(iterations) else float(iterations), known)


def _nets_in(frame: pd.DataFrame) -> int:
    return len(set(zip(frame.arch, frame.shortcut, strict=True)))


def select_runs(runs: pd.DataFrame, nets, common: bool = False) -> Selection:
    """The stored runs of ``nets`` to show, on one dataset: the one covering most nets (the official files
    on a tie). Per net, every seed of the longest budget stored for it (full > quick > smoke, by iterations
    trained). ``common``: one budget for all nets instead, the one covering most of them (then the longest),
    for comparisons.
    """
    nets = tuple(nets)
    wanted = _rows_with_keys(runs, ["arch", "shortcut"], set(nets))
    if wanted.empty:
        return Selection(nets, wanted)
    coverage = {dataset: _nets_in(rows) for dataset, rows in wanted.groupby("dataset")}
    dataset = max(coverage, key=lambda d: (coverage[d], d == OFFICIAL_DATASET, d))
    on_dataset = wanted[wanted.dataset == dataset]
    if common:
        budgets = {budget: rows for budget, rows in on_dataset.groupby("budget")}
        best = max(
            budgets, key=lambda b: (_nets_in(budgets[b]), _budget_rank(b, budgets[b].iterations.max()))
        )
        chosen = budgets[best]
    else:
        parts = []
        for _, rows in on_dataset.groupby(["arch", "shortcut"], sort=False):
            longest = rows.groupby("budget").iterations.max()
            best = max(longest.index, key=lambda b: _budget_rank(b, longest[b]))
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
    """The rows of a histories or layer-std frame that belong to the selected runs (by budget and run)."""
    chosen = set(zip(selection.runs.budget, selection.runs.run, strict=True))
    return _rows_with_keys(frame, ["budget", "run"], chosen).reset_index(drop=True)


def _rows_with_keys(frame: pd.DataFrame, columns: list[str], keys: set) -> pd.DataFrame:
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


# ---------------------------------------------------------------------------------------------------------
# Saying which runs are shown, or that there are none
# ---------------------------------------------------------------------------------------------------------


DATASET_LABEL = re.compile(r"^(?P<name>.*?)(?:-val(?P<held_out>\d+))?$")  # results.dataset_label's form


def is_lossy(dataset: str | None) -> bool:
    return dataset is not None and DATASET_LABEL.match(dataset)["name"] == JPEG_DATASET


def dataset_note(dataset: str | None) -> str:
    """How to read errors measured on ``dataset`` (a load_runs dataset label)."""
    match = DATASET_LABEL.match(dataset or "")
    name, held_out = match["name"], match["held_out"]
    if name == JPEG_DATASET:
        text = (
            "trained on **cifar10-jpeg**, a lossy JPEG copy of CIFAR-10 (not the official files), so "
            "absolute errors run somewhat higher than the official data would give"
        )
    elif name == OFFICIAL_DATASET:
        text = "trained on the official CIFAR-10 files"
    else:
        text = f"trained on the image folder **{name}** (not the official CIFAR-10 files)"
    if held_out:
        text += f'; "test" error is on {int(held_out):,} held-out training images, not the test set'
    return text


def schedule_share(iterations: int) -> str:
    """How long a run trained against the paper's 64k iterations, as a prefix: "1/8 of ", "5/16 of ",
    "1.5 times ", or "" for the paper's own length."""
    fraction = Fraction(int(iterations), PAPER_ITERATIONS)
    if fraction == 1:
        return ""
    if fraction > 1:
        return f"{float(fraction):g} times "
    if fraction.denominator <= 64:
        return f"{fraction.numerator}/{fraction.denominator} of "
    return f"{float(fraction):.1%} of "


def budget_text(budget: str, iterations: int, short: bool = False) -> str:
    """A budget for the reader: "**quick** (8,000 iterations, 1/8 of the paper's 64,000-iteration
    schedule)"; ``short``: "quick (8,000 it., 1/8 of the paper's schedule)"."""
    name = budget if short else f"**{budget}**"
    count = f"{iterations:,} it." if short else f"{iterations:,} iterations"
    if is_smoke(budget):
        return f"{name} ({count} on a small subset" + (")" if short else ": a plumbing check, not a result)")
    share = schedule_share(iterations)
    if not share:
        return f"{name} ({count}: the paper's schedule)"
    schedule = "schedule" if short else f"{PAPER_ITERATIONS:,}-iteration schedule"
    return f"{name} ({count}, {share}the paper's {schedule})"


def _iterations_at(selection: Selection, budget: str) -> int:
    return int(selection.runs[selection.runs.budget == budget].iterations.max())


def budget_note(selection: Selection) -> str:
    """The budget(s) shown; with several, which nets each one covers."""
    texts = {b: budget_text(b, _iterations_at(selection, b)) for b in selection.budgets}
    if len(texts) == 1:
        return f"budget {next(iter(texts.values()))}"
    return "; ".join(
        f"budget {text} for {', '.join(label(*n) for n in selection.nets_at(b))}" for b, text in texts.items()
    )


def device_note(selection: Selection) -> str:
    devices = selection.devices
    if not devices:
        return "on an unrecorded device"
    return "on " + (devices[0] if len(devices) == 1 else f"{len(devices)} devices: {', '.join(devices)}")


def seed_note(selection: Selection) -> str:
    seeds = selection.runs.groupby(["arch", "shortcut"]).seed.nunique()
    if seeds.min() == seeds.max():
        return f"{seeds.min()} seed{'s' if seeds.min() > 1 else ''} per net"
    return f"{seeds.min()} to {seeds.max()} seeds per net"


def shown_note(selection: Selection) -> str:
    """Which runs a figure shows: budget(s), seeds, device(s) and dataset (for a non-empty selection)."""
    return (
        f"Shown: {budget_note(selection)}; {seed_note(selection)}, {device_note(selection)}; "
        f"{dataset_note(selection.dataset)}."
    )


def gaps_note(selection: Selection, figure: str | None = None) -> str:
    """What a figure lacks (nets with no run, and the command that trains them) and what it leaves out."""
    parts = []
    if selection.missing:
        names = ", ".join(label(*n, show_option=_shows_options(selection.nets)) for n in selection.missing)
        budget = selection.budgets[-1] if not selection.empty else "quick"
        with_1202 = any(arch == "resnet1202" for arch, _ in selection.missing)
        command = f" To add them: `{reproduce_command(figure, budget, with_1202)}`." if figure else ""
        parts.append(f"**Not run yet:** {names}.{command}")
    if selection.other_budgets:
        left_out = "; ".join(
            f"budget {b} ({', '.join(label(*n) for n in selection.nets_at(b, shown=False))})"
            for b in selection.other_budgets
        )
        parts.append(f"Also stored, not shown: {left_out}.")
    if selection.other_datasets:
        parts.append(f"Also stored, not shown: runs on {', '.join(selection.other_datasets)}.")
    return " ".join(parts)


def provenance_note(selection: Selection, figure: str | None = None) -> str:
    """One Markdown paragraph: which budget, data and device the figure shows, and what is missing."""
    if selection.empty:
        return missing_note(figure or "")
    return " ".join(part for part in (shown_note(selection), gaps_note(selection, figure)) if part)


def short_provenance(selection: Selection) -> str:
    """One line for the foot of a figure: budget(s), dataset and device(s)."""
    budgets = ", ".join(budget_text(b, _iterations_at(selection, b), short=True) for b in selection.budgets)
    data = f"{selection.dataset} (lossy JPEG copy)" if is_lossy(selection.dataset) else selection.dataset
    devices = ", ".join(selection.devices) or "device not recorded"
    return f"budget {budgets} · {data} · {devices}"


def _shows_options(nets) -> bool:
    return len({shortcut for _, shortcut in nets if shortcut != PLAIN}) > 1


def missing_note(figure: str) -> str:
    """What a reader sees instead of a figure when no run exists for it."""
    nets = FIGURES[figure][0] if figure in FIGURES else ()
    names = ", ".join(label(*n, show_option=_shows_options(nets)) for n in nets) or "these nets"
    command = reproduce_command(figure) if figure in FIGURES else "python -m resnet_repro reproduce ..."
    return (
        f"**No run yet** for {names} in the results folder, so there is nothing to draw here. "
        f"Produce the runs with `{command}` (or `--budget full` on a GPU for the paper's schedule), "
        "then re-execute this chapter."
    )


OVERVIEW_EXPERIMENTS = ("fig6", "shortcuts", "fig1", "fig7", "table6")  # the widest first: fewer to name


def results_overview(runs: pd.DataFrame) -> str:
    """Markdown: what the results folder holds (runs per budget, data, devices, training time) and which
    experiments still lack runs, with the command for each (at the longest budget stored, else quick)."""
    budget = "quick"
    if runs.empty:
        parts = ["**No runs stored yet** in the results folder: every figure says so and gives its command."]
    else:
        counts = runs.groupby("budget").agg(n=("run", "size"), iterations=("iterations", "max"))
        order = sorted(counts.index, key=lambda b: _budget_rank(b, counts.iterations[b]), reverse=True)
        held = ", ".join(
            f"{counts.n[b]} at budget {budget_text(b, int(counts.iterations[b]))}" for b in order
        )
        parts = [f"The results folder holds **{len(runs)} finished runs**: {held}."]
        for dataset, n in runs.dataset.value_counts().sort_index().items():
            parts.append(f"{n} of them were {dataset_note(dataset)}.")
        devices = ", ".join(sorted(set(runs.device_name.dropna().astype(str)))) or "an unrecorded device"
        parts.append(f"Trained on {devices}: {runs.wall_time_s.sum() / 3600:.1f} hours in all.")
        budget = order[0]
    missing, experiments = [], []
    for experiment in OVERVIEW_EXPERIMENTS:
        absent = [
            n for n in experiment_specs(experiment) if _rows_with_keys(runs, ["arch", "shortcut"], {n}).empty
        ]
        if set(absent) - set(missing):  # an experiment whose missing nets an earlier one trains adds nothing
            experiments.append(experiment)
            missing += [n for n in absent if n not in missing]
    if missing:
        names = ", ".join(label(*n, show_option=n[1] != PLAIN) for n in missing)
        command = f"python -m resnet_repro reproduce {' '.join(experiments)} {budget_flags(budget)}"
        parts.append(f"**Not run yet** at any budget: {names}. `{command}` trains them.")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# The claims and whether they hold
# ---------------------------------------------------------------------------------------------------------

HOLDS, FAILS, PARTLY = "holds", "fails", "partly"
NO_RUN, TOO_SHORT, NOT_COMPARABLE = "no run yet", "too short to judge", "not comparable"
CURVES_ONLY = "curves only, no number"
COUNTED = "counted, no training"  # the "runs" of a claim checked by counting, not training


@dataclass(frozen=True)
class Check:
    """One claim of the paper, the paper's number, ours, and the verdict."""

    claim: str
    source: str
    paper: str
    ours: str
    status: str
    note: str = ""  # which runs: budget and dataset, or the command that makes them

    def as_row(self) -> dict:
        return {
            "claim": self.claim,
            "paper's figure/table": self.source,
            "paper's number": self.paper,
            "ours": self.ours,
            "holds?": self.status,
            "runs": self.note,
        }


def check_markdown(check: Check) -> str:
    """A check as a sentence for the chapter that makes it."""
    if check.status == NO_RUN:
        return f"*{check.claim}* ({check.source}): **no run yet**. Run {check.note} to check it."
    return (
        f"*{check.claim}* ({check.source}): **{check.status}**. "
        f"The paper: {check.paper}. Ours: {check.ours} ({check.note})."
    )


def pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}%"


def mean_pm(mean: float, std: float) -> str:
    return pct(mean) if pd.isna(std) else f"{mean:.2f} ± {std:.2f}%"


def _verdict(results: list[bool]) -> str:
    if not results:
        return NO_RUN
    return HOLDS if all(results) else (FAILS if not any(results) else PARTLY)


def _runs_note(selection: Selection) -> str:
    """Which runs a verdict rests on, compactly (the page explains budgets and data once, above)."""
    devices = ", ".join(selection.devices) or "device not recorded"
    return f"{' + '.join(selection.budgets)} · {selection.dataset} · {devices}"


def _to_run(selection: Selection, figure: str) -> str:
    """The command that trains what a check lacks, at the budget of the runs it would be compared with."""
    return f"`{reproduce_command(figure, selection.budget or 'quick')}`"


def _judged(selection: Selection, results: list[bool]) -> str:
    """A qualitative verdict, unless the runs are smoke runs (a few iterations prove nothing)."""
    return TOO_SHORT if is_smoke(selection.budget) else _verdict(results)


def _paper_errors(depths) -> str:
    return ", ".join(f"ResNet-{d} {pct(paper_value('test_error', f'ResNet-{d}'))}" for d in depths)


def check_degradation(runs: pd.DataFrame) -> Check:
    """Figure 1: the 56-layer plain net has higher training error, and thus test error, than the 20-layer."""
    claim = "Deeper plain nets train worse: plain-56 has higher training and test error than plain-20"
    selection = select_figure(runs, "fig1")
    if selection.missing:
        return Check(claim, "Figure 1", CURVES_ONLY, "", NO_RUN, _to_run(selection, "fig1"))
    ours, results = _lower_train_and_test(selection, "plain-20", "plain-56", better="plain-20")
    return Check(claim, "Figure 1", CURVES_ONLY, ours, _judged(selection, results), _runs_note(selection))


def check_resnet_depth(runs: pd.DataFrame) -> Check:
    """Figure 6 middle, Table 6: deeper ResNets reach lower error (20 to 110 layers)."""
    claim = "Deeper ResNets are more accurate: test error falls from 20 to 110 layers"
    selection = select_figure(runs, "fig6_resnet")
    errors = net_results(selection)
    if len(errors) < 2:
        return Check(claim, "Figure 6, Table 6", _paper_errors((20, 110)), "", NO_RUN,
                     _to_run(selection, "fig6_resnet"))  # fmt: skip
    shallow, deep = errors.iloc[0], errors.iloc[-1]
    ours = f"{shallow.label} {pct(shallow.test_mean)}, {deep.label} {pct(deep.test_mean)}"
    paper = _paper_errors((shallow.depth, deep.depth))
    status = _judged(selection, [deep.test_mean < shallow.test_mean])
    return Check(claim, "Figure 6, Table 6", paper, ours, status, _runs_note(selection))


def check_residual_beats_plain(runs: pd.DataFrame) -> Check:
    """Figure 6: at equal depth and parameters, the residual net has lower training and test error."""
    claim = "Shortcuts fix it: ResNet-56 has lower training and test error than plain-56 (same parameters)"
    selection = select_runs(runs, (net("plain56"), net("resnet56")), common=True)
    if selection.missing:
        return Check(claim, "Figure 6", CURVES_ONLY, "", NO_RUN, _to_run(selection, "fig6_plain"))
    ours, results = _lower_train_and_test(selection, "plain-56", "ResNet-56", better="ResNet-56")
    return Check(claim, "Figure 6", CURVES_ONLY, ours, _judged(selection, results), _runs_note(selection))


def _lower_train_and_test(selection: Selection, first: str, second: str, better: str):
    """Our errors of two nets, "train <first> vs <second>; test <first> vs <second>", and whether the
    `better` one of them has both the lower training and the lower test error."""
    errors = net_results(selection).set_index("label")
    one, other = errors.loc[first], errors.loc[second]
    ours = (
        f"train {pct(one.train_mean)} vs {pct(other.train_mean)}; "
        f"test {pct(one.test_mean)} vs {pct(other.test_mean)}"
    )
    good, bad = (one, other) if better == first else (other, one)
    return ours, [good.train_mean < bad.train_mean, good.test_mean < bad.test_mean]


SPREAD_MULTIPLE = 2  # "close to the paper": within two of the paper's standard deviations of its mean


def check_resnet110_error(runs: pd.DataFrame) -> Check:
    """Table 6: ResNet-110's error, against the paper's mean and spread over its 5 runs."""
    best, mean, std = (
        paper_value(m, "ResNet-110") for m in ("test_error", "test_error_mean", "test_error_std")
    )
    claim = f"ResNet-110 reaches the paper's error (ours at most {SPREAD_MULTIPLE} paper std above its mean)"
    paper = f"{pct(best)} best of 5, {mean_pm(mean, std)}"
    selection = select_runs(runs, (net("resnet110"),), common=True)
    if selection.empty:
        return Check(claim, "Table 6", paper, "", NO_RUN, _to_run(selection, "table6"))
    ours_row = net_results(selection).iloc[0]
    ours = f"{mean_pm(ours_row.test_mean, ours_row.test_std)} ({ours_row.seeds} seed(s))"
    if selection.budget != "full":
        status = f"{NOT_COMPARABLE} (budget {selection.budget})"
    else:
        status = _verdict([ours_row.test_mean <= mean + SPREAD_MULTIPLE * std])
    return Check(claim, "Table 6", paper, ours, status, _runs_note(selection))


def _paper_shortcut_numbers() -> dict[str, float]:
    names = ["plain-34"] + [f"ResNet-34 {o}" for o in models.SHORTCUT_OPTIONS]
    return {name: paper_value("top1_error", name, source="Table 3") for name in names}


def shortcut_gap_small(plain: float, options: dict[str, float]) -> bool:
    """Table 3's reading: the options differ by less than all of them gain over the plain net."""
    values = list(options.values())
    return max(values) - min(values) < plain - sum(values) / len(values)


def check_shortcuts(runs: pd.DataFrame) -> Check:
    """Table 3: A, B and C all beat the plain net by far more than they differ among themselves."""
    claim = "Shortcut options A/B/C differ little: less than what any of them gains over the plain net"
    paper_numbers = _paper_shortcut_numbers()
    paper = "ImageNet ResNet-34 top-1: " + ", ".join(f"{k} {pct(v)}" for k, v in paper_numbers.items())
    for depth in (56, 20):  # the deepest pair we have
        wanted = (net(f"plain{depth}"),) + _nets("resnet", (depth,), models.SHORTCUT_OPTIONS)
        selection = select_runs(runs, wanted, common=True)
        if not selection.missing:
            break
    else:
        plain_nets = _to_run(selection, "fig1")  # the plain nets of the same depths
        return Check(
            claim, "Table 3", paper, "", NO_RUN, f"{_to_run(selection, 'shortcuts')} and {plain_nets}"
        )
    errors = net_results(selection)
    plain = errors[errors.family == "plain"].test_mean.iloc[0]
    residual = errors[errors.family == "resnet"]
    options = dict(zip(residual.shortcut, residual.test_mean, strict=True))
    ours = f"CIFAR-10 ResNet-{depth}: plain {pct(plain)}, " + ", ".join(
        f"{k} {pct(v)}" for k, v in options.items()
    )
    status = _judged(selection, [shortcut_gap_small(plain, options)])
    return Check(claim, "Table 3", paper, ours, status, _runs_note(selection))


def response_means(layer_std: pd.DataFrame, selection: Selection) -> pd.Series:
    """Mean over layers (and seeds) of each net's layer-response std, indexed by label."""
    rows = rows_of(layer_std, selection)
    if rows.empty:
        return pd.Series(dtype=float)
    means = rows.groupby(["arch", "shortcut"]).apply(lambda g: g.groupby("layer")["std"].mean().mean())
    return pd.Series({label(a, s): v for (a, s), v in means.items()})


def response_comparisons(means: pd.Series) -> list[tuple[str, str, bool]]:
    """Figure 7's reading as (smaller, larger, holds): ResNets below plain nets, deeper ResNets lower."""
    pairs = [("ResNet-20", "plain-20"), ("ResNet-56", "plain-56"), ("ResNet-56", "ResNet-20")]
    pairs.append(("ResNet-110", "ResNet-56"))
    return [(a, b, bool(means[a] < means[b])) for a, b in pairs if a in means and b in means]


def check_responses(runs: pd.DataFrame, layer_std: pd.DataFrame) -> Check:
    """Figure 7: residual functions respond less than plain layers, and less still in deeper ResNets."""
    claim = "ResNet layers respond less than plain layers (std of responses), deeper ResNets less still"
    selection = select_figure(runs, "fig7")
    means = response_means(layer_std, selection)
    comparisons = response_comparisons(means)
    if not comparisons:
        return Check(claim, "Figure 7", CURVES_ONLY, "", NO_RUN, _to_run(selection, "fig7"))
    ours = "; ".join(
        f"{a} {means[a]:.3f} {'<' if ok else '>='} {b} {means[b]:.3f}" for a, b, ok in comparisons
    )
    status = _judged(selection, [ok for _, _, ok in comparisons])
    return Check(claim, "Figure 7", CURVES_ONLY, "mean std: " + ours, status, _runs_note(selection))


def agrees_at_paper_precision(ours: float, paper: float, unit: float = 1e9) -> bool:
    """The paper gives multiply-adds to 0.1 billion: ours agrees when within half of that digit."""
    return abs(ours - paper) <= 0.05 * unit


def check_vgg_flops(costs: pd.DataFrame) -> Check:
    """Section 3.3: the 34-layer plain baseline has only a fraction of VGG-19's multiply-adds."""
    macs = costs.set_index("name").macs
    paper = {n: paper_value("macs", n) for n in ("VGG-19", "plain-34")}
    claim = (
        f"The plain 34-layer baseline needs {paper['plain-34'] / 1e9:.1f} billion multiply-adds, "
        f"{paper['plain-34'] / paper['VGG-19']:.0%} of VGG-19's {paper['VGG-19'] / 1e9:.1f} billion"
    )
    paper_text = ", ".join(f"{n} {v / 1e9:.1f}e9" for n, v in paper.items())
    paper_text += f" ({paper['plain-34'] / paper['VGG-19']:.0%})"
    ours = ", ".join(f"{n} {macs[n] / 1e9:.2f}e9" for n in paper)
    ours += f" ({macs['plain-34'] / macs['VGG-19']:.1%})"
    status = _verdict([agrees_at_paper_precision(macs[n], v) for n, v in paper.items()])
    return Check(claim, "Section 3.3, Figure 3", paper_text, ours, status, COUNTED)


def check_152_below_vgg(costs: pd.DataFrame) -> Check:
    """Section 4.1: ResNet-152 still costs less than VGG-16/19."""
    claim = "ResNet-152 needs fewer multiply-adds than VGG-16 and VGG-19"
    names = ("ResNet-152", "VGG-16", "VGG-19")
    macs = costs.set_index("name").macs
    paper = ", ".join(f"{n} {paper_value('macs', n) / 1e9:.1f}e9" for n in names)
    ours = ", ".join(f"{n} {macs[n] / 1e9:.2f}e9" for n in names)
    status = _verdict([macs["ResNet-152"] < macs["VGG-16"], macs["ResNet-152"] < macs["VGG-19"]])
    return Check(claim, "Section 4.1", paper, ours, status, COUNTED)


def claims_status(
    runs: pd.DataFrame, layer_std: pd.DataFrame, costs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The introduction's table: every claim we test, the paper's number, ours, and whether it holds."""
    costs = imagenet_costs() if costs is None else costs
    checks = [
        check_degradation(runs),
        check_residual_beats_plain(runs),
        check_resnet_depth(runs),
        check_resnet110_error(runs),
        check_shortcuts(runs),
        check_responses(runs, layer_std),
        check_vgg_flops(costs),
        check_152_below_vgg(costs),
    ]
    return pd.DataFrame([c.as_row() for c in checks])


SAME_RUNS = "the runs named above"


def status_for_page(status: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The status table as the introduction shows it, and a sentence for above it: when every claim judged
    from runs used the same ones (budget, data, device), they are named once there instead of in each row.
    Rows without a run keep the command that makes it."""
    judged = ~status.runs.isin([COUNTED]) & (status["holds?"] != NO_RUN)
    sources = set(status.runs[judged])
    if len(sources) != 1:
        return status, ""
    return status.assign(runs=status.runs.where(~judged, SAME_RUNS)), (
        f"Every claim judged from runs uses the same runs (budget · data · device): {sources.pop()}."
    )


# ---------------------------------------------------------------------------------------------------------
# Words for the degradation chapter
# ---------------------------------------------------------------------------------------------------------


def depth_trend(selection: Selection, column: str = "train_mean") -> tuple[list[str], str]:
    """The nets by depth with their final error, and whether that error "rises", "falls" or is "mixed"."""
    errors = net_results(selection).sort_values("depth")
    values = errors[column].tolist()
    steps = list(zip(values, values[1:], strict=False))
    trend = "rises" if all(a < b for a, b in steps) else "falls" if all(a > b for a, b in steps) else "mixed"
    return [f"{n} {pct(v)}" for n, v in zip(errors.label, values, strict=True)], trend


def degradation_summary(runs: pd.DataFrame) -> str:
    """Markdown: what Figures 1 and 6 show in our runs, with the verdicts computed from the data."""
    check = check_degradation(runs)
    if check.status == NO_RUN:
        paragraphs = [f"**Figure 1: no run yet.** Run {check.note} to produce it."]
    else:
        paragraphs = [f"**Figure 1 ({check.status}).** Final errors, plain-20 vs plain-56: {check.ours}."]
    for figure, family, expected in (
        ("fig6_plain", "Plain nets", "rises"),
        ("fig6_resnet", "ResNets", "falls"),
    ):
        selection = select_figure(runs, figure)  # one budget: depths compared like for like
        if len(selection.present) < 2:
            paragraphs.append(f"**{family}: fewer than two depths run yet** ({_to_run(selection, figure)}).")
            continue
        ordered, trend = depth_trend(selection)
        verdict = TOO_SHORT if is_smoke(selection.budget) else (HOLDS if trend == expected else FAILS)
        here = "neither rises nor falls throughout" if trend == "mixed" else trend
        paragraphs.append(
            f"**{family}** (budget {selection.budget}), final training error by depth: {', '.join(ordered)}. "
            f"In the paper it {expected} with depth; here it {here}: the claim **{verdict}**."
        )
    return "\n\n".join(paragraphs)


# ---------------------------------------------------------------------------------------------------------
# Tables: shortcuts (Table 3 beside ours), Table 6
# ---------------------------------------------------------------------------------------------------------


def shortcut_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Our CIFAR-10 ResNet-20/56 with options A/B/C, one row each: the final test error as a mean over the
    seeds stored, ± their standard deviation where there are several; "no run yet" where there are none."""
    selection = select_figure(runs, "shortcuts")
    errors = net_results(selection).set_index(["arch", "shortcut"])
    rows = []
    for arch, shortcut in selection.nets:
        row = {"net": label(arch, shortcut, show_option=True)}
        if (arch, shortcut) in errors.index:
            r = errors.loc[(arch, shortcut)]
            row |= {"test error (%)": mean_pm(r.test_mean, r.test_std), "seeds": r.seeds, "budget": r.budget}
            row |= {"mean": r.test_mean, "std": r.test_std}
        else:
            row |= {"test error (%)": NO_RUN, "seeds": 0, "budget": "", "mean": math.nan, "std": math.nan}
        rows.append(row)
    return pd.DataFrame(rows, columns=["net", "test error (%)", "seeds", "budget", "mean", "std"])


def shortcut_table_title(table: pd.DataFrame) -> str:
    """The heading of ``shortcut_table``: what its numbers are, given how many seeds each net has."""
    title = "Ours: CIFAR-10, final test error (%)"
    seeds = table.seeds[table.seeds > 0]
    if seeds.empty:
        return title
    if seeds.max() == 1:
        return f"{title}, one seed per net (no spread yet)"
    if seeds.min() == seeds.max():
        return f"{title}, mean ± std over {seeds.max()} seeds"
    return f"{title}, mean over the seeds run, ± std where there are several"


def paper_table3() -> pd.DataFrame:
    """The paper's ImageNet Table 3 rows for plain-34 and ResNet-34 A/B/C (10-crop validation error)."""
    table = paper_table()
    names = ["plain-34"] + [f"ResNet-34 {o}" for o in models.SHORTCUT_OPTIONS]
    rows = table[(table.source == "Table 3") & table.model.isin(names)]
    wide = rows.pivot(index="model", columns="metric", values="value").loc[names].rename_axis(columns=None)
    return wide.rename(
        columns={"top1_error": "top-1 error (%)", "top5_error": "top-5 error (%)"}
    ).reset_index()


def table6(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 6 ResNets beside ours: parameters (counted) and final test error over seeds."""
    selection = select_figure(runs, "table6")
    ours = net_results(selection).set_index("depth")
    paper = paper_table()
    paper = paper[(paper.source == "Table 6") & (paper.family == "resnet")]
    names = [f"ResNet-{depth}" for depth in sorted(paper.depth.unique())]
    counted = cifar_costs(names).set_index("name").params
    rows = []
    for depth, name in zip(sorted(paper.depth.unique()), names, strict=True):
        values = paper[paper.model == name].set_index("metric").value
        row = {
            "net": name,
            "paper params (M)": values["params"] / 1e6,
            "our params (M)": counted[name] / 1e6,
            "paper error (%)": values["test_error"],
            "paper mean ± std": mean_pm(values["test_error_mean"], values["test_error_std"])
            if "test_error_mean" in values
            else "",
        }
        if depth in ours.index:
            r = ours.loc[depth]
            row.update(
                {
                    "our error (%)": r.test_mean,
                    "our std": r.test_std,
                    "seeds": r.seeds,
                    "our budget": r.budget,
                }
            )
        else:
            row.update({"our error (%)": math.nan, "our std": math.nan, "seeds": 0, "our budget": ""})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Costs: counted parameters and multiply-adds, with the paper's beside them
# ---------------------------------------------------------------------------------------------------------

NAME_PATTERN = re.compile(r"^(VGG|plain|ResNet)-(\d+)(?: ([ABC]))?$")
IMAGENET_DEPTHS = {"plain": PLAIN_DEPTHS, "ResNet": tuple(TABLE1), "VGG": tuple(VGG_DEPTHS)}
# The option each builder uses when none is named (read from the code, so it cannot drift).
CIFAR_DEFAULT = inspect.signature(models.cifar_resnet).parameters["shortcut"].default
IMAGENET_DEFAULT = inspect.signature(models.imagenet_resnet).parameters["shortcut"].default


def cost_row(name: str) -> flops.CostRow:
    """A paper-style name ("VGG-19", "plain-34", "ResNet-34 A", "ResNet-56") as a row to count."""
    match = NAME_PATTERN.match(name)
    if match is None:
        raise ValueError(
            f"unknown net {name!r}: expected e.g. 'VGG-19', 'plain-34', 'ResNet-34 A', 'ResNet-56'"
        )
    kind, depth, option = match.group(1), int(match.group(2)), match.group(3)
    imagenet = depth in IMAGENET_DEPTHS[kind]
    if kind == "VGG":
        return flops.CostRow(name, depth, None, lambda: models.vgg(depth), flops.IMAGENET_INPUT)
    if kind == "plain":
        build = (lambda: models.imagenet_plain(depth)) if imagenet else (lambda: models.cifar_plain(depth))
        return flops.CostRow(
            name, depth, None, build, flops.IMAGENET_INPUT if imagenet else flops.CIFAR_INPUT
        )
    if imagenet:
        option = option or IMAGENET_DEFAULT
        return flops.CostRow(
            name, depth, option, lambda: models.imagenet_resnet(depth, option), flops.IMAGENET_INPUT
        )
    option = option or CIFAR_DEFAULT
    return flops.CostRow(name, depth, option, lambda: models.cifar_resnet(depth, option), flops.CIFAR_INPUT)


def _with_paper(costs: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's macs and params where it states them, matched by family, depth and shortcut."""
    paper = paper_table()
    paper = paper[paper.metric.isin(["macs", "params"])].copy()
    paper["shortcut"] = paper.shortcut.replace("", PLAIN)
    wide = paper.pivot_table(index=["family", "depth", "shortcut"], columns="metric", values="value")
    family = costs.name.str.extract(NAME_PATTERN)[0].str.lower()  # "ResNet" -> the table's "resnet"
    keys = list(zip(family, costs.depth, costs.shortcut, strict=True))
    costs = costs.copy()
    for metric in ("macs", "params"):
        column = wide[metric] if metric in wide else pd.Series(dtype=float)
        costs[f"paper_{metric}"] = [column.get(k, math.nan) for k in keys]
    return costs


def costs_of(names) -> pd.DataFrame:
    """Counted params and MACs of the named nets, with the paper's numbers where it gives them."""
    return _with_paper(flops.cost_table(cost_row(n) for n in names))


FIGURE3_NETS = ("VGG-19", "plain-34", "ResNet-34 A", "ResNet-34 B")  # A: parameter-free shortcuts
TABLE1_NETS = ("ResNet-18", "ResNet-34 B", "ResNet-50", "ResNet-101", "ResNet-152")  # B: Table 3's default
CIFAR_NETS = tuple(f"{kind}-{d}" for d in (20, 32, 44, 56, 110) for kind in ("plain", "ResNet"))


def imagenet_costs() -> pd.DataFrame:
    """VGG-16/19, plain-18/34 and the Table 1 ResNets (34 with each shortcut option) at 224x224."""
    names = ("VGG-16", "VGG-19", "plain-18", "plain-34", "ResNet-18", "ResNet-34 A", "ResNet-34 B")
    return costs_of(names + ("ResNet-34 C", "ResNet-50", "ResNet-101", "ResNet-152"))


def cifar_costs(names=CIFAR_NETS) -> pd.DataFrame:
    """The CIFAR-10 nets at 32x32 (ResNets with option A, as the paper's Table 6)."""
    return costs_of(names)


@dataclass(frozen=True)
class CostRatios:
    """VGG-19 against ResNet-34: how many times more parameters and multiply-adds."""

    params_ratio: float
    macs_ratio: float

    @property
    def macs_fraction(self) -> float:
        return 1 / self.macs_ratio


def vgg_resnet_ratios(costs: pd.DataFrame, big: str = "VGG-19", small: str = "ResNet-34 B") -> CostRatios:
    table = costs.set_index("name")
    return CostRatios(
        params_ratio=table.params[big] / table.params[small], macs_ratio=table.macs[big] / table.macs[small]
    )


def check_times_fewer(ratio: float, claimed: float) -> str:
    """A claim "N times fewer" holds when the counted ratio rounds to N."""
    return HOLDS if round(ratio) == claimed else FAILS


def shortcut_param_table(names=("ResNet-20", "ResNet-56", "ResNet-34")) -> pd.DataFrame:
    """Parameters of each shortcut option, counted, and what B and C add over A (which adds none)."""
    rows = []
    for name in names:
        plain = costs_of([name.replace("ResNet", "plain")]).params.iloc[0]  # the same net without shortcuts
        for option in models.SHORTCUT_OPTIONS:
            params = costs_of([f"{name} {option}"]).params.iloc[0]
            rows.append({"net": f"{name} {option}", "params": params, "added over plain": params - plain})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Provenance of each run, for the reproducibility appendix
# ---------------------------------------------------------------------------------------------------------


def train_command(config: dict) -> str:
    """The ``train`` command that redoes a run, from its recorded configuration (run.json's "config")."""
    run = RunConfig.from_dict(config)
    defaults = RunConfig(arch=run.arch, budget=run.budget).to_dict()
    flags = [f"--arch {run.arch}"] + ([f"--shortcut {run.shortcut}"] if run.family == "resnet" else [])
    flags += [f"--budget {run.budget}", f"--seed {run.seed}"]
    for key, value in run.to_dict().items():
        if key not in ("arch", "shortcut", "budget", "seed", "checkpoint_minutes") and value != defaults[key]:
            flags.append(f"--{key.replace('_', '-')} {value}")
    return "python -m resnet_repro train " + " ".join(flags)


def _record(path: str) -> dict:
    try:
        return json.loads((Path(path) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: the command, budget, hardware, wall and training time, dataset identity and commit (run.json).

    train time is the training loop (steps and test passes); wall time adds setup and the layer responses."""
    columns = ["run", "command", "budget", "iterations", "device", "wall time (min)", "train time (min)"]
    columns += ["dataset", "dataset sha256", "commit", "torch"]
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
                "wall time (min)": run.wall_time_s / 60,
                "train time (min)": record.get("train_time_s", math.nan) / 60,
                "dataset": run.dataset + (" (lossy)" if identity.get("lossy") else ""),
                "dataset sha256": str(identity.get("sha256", ""))[:12],
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


def recorded_deviations(runs: pd.DataFrame) -> list[str]:
    """Ways the stored runs differ from the paper's setup, read from their records (Markdown items)."""
    if runs.empty:
        return []
    items = []
    lossy = sorted({d for d in runs.dataset if is_lossy(d)})
    if lossy:
        items.append(f"{(runs.dataset.isin(lossy)).sum()} of {len(runs)} runs were {dataset_note(lossy[0])}.")
    held_out = sorted({d for d in runs.dataset if DATASET_LABEL.match(d)["held_out"]})
    if held_out:
        items.append(f"Runs on {', '.join(held_out)} report validation error on held-out training images.")
    short = runs[runs.budget != "full"]
    if not short.empty:
        budgets = ", ".join(f"{b} ({n} runs)" for b, n in short.budget.value_counts().items())
        items.append(f"Runs shorter than the paper's schedule: {budgets}.")
    speed = speed_options_table(runs)
    if "amp" in speed and speed.amp.fillna(False).astype(bool).any():
        items.append(
            f"{speed.amp.fillna(False).astype(bool).sum()} runs computed in bf16 autocast (weights and "
            "batch-norm statistics in fp32); the paper trained in fp32."
        )
    compiled = speed.compile.ne("off") if "compile" in speed else pd.Series(dtype=bool)
    if compiled.any():
        items.append(
            f"{compiled.sum()} runs were compiled with torch.compile (same arithmetic, fused kernels)."
        )
    return items


# ---------------------------------------------------------------------------------------------------------
# Why residual nets train: section 4.1's signals, and the lesion study of Veit, Wilber and Belongie (2016)
# ---------------------------------------------------------------------------------------------------------

FIGURES["gradients"] = (_nets("plain", (20, 56)) + _nets("resnet", (20, 56)), "fig7")
FIGURES["lesion"] = ((net("resnet56"), net("plain56"), net("resnet110")), "fig7")
# "The backward propagated gradients exhibit healthy norms": not so if the first layers' gradients fall by
# two orders of magnitude (or more) below the last layers'.
EDGE_LAYERS = 3  # the first and the last 3x3 layers compared (geometric mean of their gradient norms)
VANISHING_FACTOR = 100
SECTION_41 = "Section 4.1"
LITERATURE_LESION = "Veit, Wilber and Belongie (2016)"  # not the paper: labelled so wherever it is shown


def gradient_ratios(grad_norms: pd.DataFrame, edge: int = EDGE_LAYERS) -> pd.DataFrame:
    """Per run and recorded iteration: the geometric mean of the gradient norms of the first `edge` layers,
    of the last `edge`, and first/last (below 1: the gradient shrinks on its way back to the input)."""
    import numpy as np

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


def _times(ratio: float) -> str:
    """A ratio as the reader says it: "0.43x", "12x", "1/250"."""
    if ratio < 0.01:
        return f"1/{1 / ratio:,.0f}"
    return f"{ratio:.2g}x" if ratio < 100 else f"{ratio:,.0f}x"


def check_gradients(runs: pd.DataFrame, grad_norms: pd.DataFrame) -> Check:
    """Section 4.1: with batch norm, plain nets' backward gradients keep healthy norms: at no recorded
    iteration do the first layers' gradient norms fall VANISHING_FACTOR times below the last layers'."""
    claim = (
        f"Plain nets' gradients do not vanish: the first {EDGE_LAYERS} layers' gradient norms never fall "
        f"{VANISHING_FACTOR}x below the last {EDGE_LAYERS} layers'"
    )
    paper = (
        '"the backward propagated gradients exhibit healthy norms with BN" (ImageNet plain-18/34, no number)'
    )
    selection = select_figure(runs, "gradients")
    ratios = gradient_ratios(rows_of(grad_norms, selection))
    extremes = gradient_extremes(ratios)
    plain = extremes[extremes.arch.str.startswith("plain")]
    if plain.empty:
        return Check(claim, SECTION_41, paper, "", NO_RUN, _to_run(selection, "gradients"))
    ours = "; ".join(
        f"{r.label}: first/last {_times(r.at_init)} at initialisation, lowest {_times(r.lowest)} "
        f"(iteration {r.lowest_at:,})"
        for r in plain.itertuples()
    )
    results = [r.lowest >= 1 / VANISHING_FACTOR for r in plain.itertuples()]
    return Check(claim, SECTION_41, paper, ours, _judged(selection, results), _runs_note(selection))


def check_forward_signals(runs: pd.DataFrame, layer_std: pd.DataFrame) -> Check:
    """Section 4.1: batch norm keeps plain nets' forward signals at non-zero variance (the trained nets,
    Figure 7's data): no layer's response std falls VANISHING_FACTOR times below the net's median layer."""
    claim = "Plain nets' forward signals do not vanish: "
    claim += f"no layer responds {VANISHING_FACTOR}x below the median one"
    paper = '"BN ... ensures forward propagated signals to have non-zero variances" (no number)'
    selection = select_figure(runs, "gradients")
    rows = rows_of(layer_std, selection)
    rows = rows[rows.family == "plain"] if not rows.empty else rows
    if rows.empty:
        return Check(claim, SECTION_41, paper, "", NO_RUN, _to_run(selection, "gradients"))
    parts, results = [], []
    for (arch, shortcut), group in rows.groupby(["arch", "shortcut"], sort=False):
        std = group.groupby("layer")["std"].mean()
        parts.append(f"{label(arch, shortcut)}: lowest std {std.min():.3g}, median {std.median():.3g}")
        results.append(std.min() * VANISHING_FACTOR >= std.median())
    return Check(
        claim, SECTION_41, paper, "; ".join(parts), _judged(selection, results), _runs_note(selection)
    )


def gradient_summary(runs: pd.DataFrame, grad_norms: pd.DataFrame) -> str:
    """Markdown: the gradient verdict in words, plain nets first, the ResNets beside them, said plainly."""
    check = check_gradients(runs, grad_norms)
    if check.status == NO_RUN:
        return f"**No gradient norms yet.** Run {check.note} to record them (every finished run writes them)."
    selection = select_figure(runs, "gradients")
    extremes = gradient_extremes(gradient_ratios(rows_of(grad_norms, selection)))
    vanished = [
        r for r in extremes.itertuples() if r.arch.startswith("plain") and r.lowest < 1 / VANISHING_FACTOR
    ]
    grown = [r for r in extremes.itertuples() if r.highest > VANISHING_FACTOR]
    plain_labels = [r.label for r in extremes.itertuples() if r.arch.startswith("plain")]
    if is_smoke(selection.budget):
        verdict = f"Smoke runs only ({check.status}): the numbers below check the plumbing, not the paper."
    elif vanished:
        verdict = (
            "**Yes: in our runs the gradient does vanish** in "
            + ", ".join(
                f"{r.label} (down to {_times(r.lowest)} at iteration {r.lowest_at:,})" for r in vanished
            )
            + f": its first layers get more than {VANISHING_FACTOR} times less gradient than its last ones."
        )
    else:
        verdict = (
            f"**No: no plain net's gradient vanishes in our runs.** At every recorded iteration the "
            f"first {EDGE_LAYERS} layers of {' and '.join(plain_labels)} get at least 1/{VANISHING_FACTOR} "
            "of the gradient norm of the last ones, as the paper says of its ImageNet plain nets."
        )
    lines = [verdict, "", "| net | first/last at initialisation | lowest (iteration) | highest (iteration) |",
             "|---|---|---|---|"]  # fmt: skip
    for r in extremes.itertuples():
        lines.append(
            f"| {r.label} | {_times(r.at_init)} | {_times(r.lowest)} ({r.lowest_at:,}) | "
            f"{_times(r.highest)} ({r.highest_at:,}) |"
        )
    if grown:
        lines += ["", "The other way round, the first layers' gradient grows more than "
                  f"{VANISHING_FACTOR} times the last layers' in {', '.join(r.label for r in grown)}: "
                  "large, not vanishing, gradients near the input."]  # fmt: skip
    return "\n".join(lines)


# The lesion study: how far towards chance a net's test error moves when one block is removed.
LESION_SMALL = 0.05  # "barely hurts": the median removal moves the error less than 1/20 of the way to chance
LESION_BREAKS = 0.5  # "breaks": the median removal moves it at least half-way to chance


def lesion_criteria() -> str:
    """The lesion verdict's yardstick, in words (Markdown)."""
    return (
        "How far a removal moves the test error is measured on the way from the intact net's error to chance "
        f"({chance_error():.0f}% on ten classes): *barely hurts* means the median removal of a shape-keeping "
        f"block moves it less than {LESION_SMALL:.0%} of the way, *breaks* at least {LESION_BREAKS:.0%}; "
        "the shape-changing blocks *hurt more* when each moves it further than that median."
    )


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


def check_lesion(runs: pd.DataFrame, lesions: pd.DataFrame) -> Check:
    """Veit, Wilber and Belongie (2016): removing one block barely hurts a ResNet, except where the shape
    changes, while removing a pair of layers of a plain net breaks it. Checked on our deepest pair of twins
    with a lesion.csv each (the literature's result, not the paper's)."""
    claim = "Removing one block barely hurts a ResNet, except where the shape changes; it breaks a plain net"
    literature = (
        "ResNet-110 on CIFAR-10: most single-block deletions leave the error almost unchanged, the "
        "downsampling blocks hurt more; deleting a layer of a plain (VGG) net drops it to chance"
    )
    selection = select_figure(runs, "lesion")
    effects = lesion_effects(lesions, selection)
    resnet, plain = effects.get("ResNet-56"), effects.get("plain-56")
    if resnet is None or plain is None:
        wanted = [n for n in ("ResNet-56", "plain-56") if n not in effects]
        note = lesion_command(selection, wanted)
        return Check(claim, LITERATURE_LESION, literature, "", NO_RUN, note)
    keeps = resnet.median_damage(changes_shape=False)
    changing = resnet.table[resnet.table.changes_shape]
    results = [
        keeps < LESION_SMALL,  # barely hurts
        bool((changing.damage > keeps).all()) if not changing.empty else False,  # except where shape changes
        plain.median_damage() >= LESION_BREAKS,  # breaks the plain net
    ]
    worst = resnet.worst
    ours = (
        f"ResNet-56 intact {pct(resnet.intact)}, median without one block {pct(resnet.median(False))} "
        f"(shape-changing blocks: {', '.join(pct(e) for e in changing.test_error)}; "
        f"worst {pct(worst.test_error)} without {worst['name']}); plain-56 intact {pct(plain.intact)}, "
        f"median without a pair of layers {pct(plain.median())}"
    )
    return Check(
        claim, LITERATURE_LESION, literature, ours, _judged(selection, results), _runs_note(selection)
    )


def lesion_command(selection: Selection, labels_wanted) -> str:
    """The command that computes what a lesion check lacks: `analyze lesion` on runs that exist, the
    training command for nets that have no run."""
    from .results import REPO_ROOT

    runs = selection.runs
    have = {label(a, s): p for a, s, p in zip(runs.arch, runs.shortcut, runs.path, strict=True)}
    folders = []
    for name in labels_wanted:
        if name in have:
            path = Path(have[name]).resolve()
            folders.append(str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path))
    parts = []
    if folders:
        parts.append(f"`python -m resnet_repro analyze lesion {' '.join(folders)}`")
    if len(folders) < len(labels_wanted):
        parts.append(f"{_to_run(selection, 'lesion')} (to train the nets first)")
    return " and ".join(parts)


def literature_check_markdown(check: Check) -> str:
    """check_markdown for a claim from the literature: it is attributed to its authors, not to the paper."""
    if check.status == NO_RUN:
        missing = f"*{check.claim}* ({check.source}, not the paper): **no lesion yet**."
        return f"{missing} Run {check.note} to check it."
    return (
        f"*{check.claim}* (reported by {check.source}, not by He et al.): **{check.status}** in our runs. "
        f"{check.source}: {check.paper}. Ours: {check.ours} ({check.note})."
    )
