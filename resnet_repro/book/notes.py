"""The pages' prose, computed: which budget, data and device a figure shows, what is missing and the
command that trains it, what the results folder holds and how long its runs took, and the chapters'
verdicts in words (Markdown).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from resnet_repro.book.claims import (
    EDGE_LAYERS,
    FAILS,
    HOLDS,
    NO_RUN,
    TOO_SHORT,
    VANISHING_FACTOR,
    check_degradation,
    check_gradients,
    check_landscape,
)
from resnet_repro.book.cost_tables import cifar_macs
from resnet_repro.book.figure_runs import (
    FIGURES,
    PLAIN,
    Selection,
    analyze_command,
    budget_flags,
    budget_rank,
    is_smoke,
    label,
    net_results,
    pct,
    reproduce_command,
    rows_of,
    rows_with_keys,
    select_figure,
    to_run,
)
from resnet_repro.book.provenance import DEVICE_KINDS, speed_options_table, training_times
from resnet_repro.book.readings import (
    Landscape,
    gradient_extremes,
    gradient_ratios,
    landscapes,
    precision_gap,
    precision_gap_text,
    ratio_text,
    subset_gap,
    subset_gap_text,
)
from resnet_repro.paper.recipe import PAPER_ITERATIONS
from resnet_repro.runs.folders import JPEG_DATASET, OFFICIAL_DATASET, parse_dataset_label
from resnet_repro.sweeps.experiments import experiment_specs


def is_lossy(dataset: str | None) -> bool:
    return dataset is not None and parse_dataset_label(dataset)[0] == JPEG_DATASET


def dataset_note(dataset: str | None) -> str:
    """How to read errors measured on ``dataset`` (a load_runs dataset label)."""
    name, held_out = parse_dataset_label(dataset)
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
        order = sorted(counts.index, key=lambda b: budget_rank(b, counts.iterations[b]), reverse=True)
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
            n for n in experiment_specs(experiment) if rows_with_keys(runs, ["arch", "shortcut"], {n}).empty
        ]
        if set(absent) - set(missing):  # an experiment whose missing nets an earlier one trains adds nothing
            experiments.append(experiment)
            missing += [n for n in absent if n not in missing]
    if missing:
        names = ", ".join(label(*n, show_option=n[1] != PLAIN) for n in missing)
        command = f"python -m resnet_repro reproduce {' '.join(experiments)} {budget_flags(budget)}"
        parts.append(f"**Not run yet** at any budget: {names}. `{command}` trains them.")
    return " ".join(parts)


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
            paragraphs.append(f"**{family}: fewer than two depths run yet** ({to_run(selection, figure)}).")
            continue
        ordered, trend = depth_trend(selection)
        verdict = TOO_SHORT if is_smoke(selection.budget) else (HOLDS if trend == expected else FAILS)
        here = "neither rises nor falls throughout" if trend == "mixed" else trend
        judged = f": the claim **{verdict}**" if verdict != TOO_SHORT else f", but the runs are **{verdict}**"
        paragraphs.append(
            f"**{family}** (budget {selection.budget}), final training error by depth: {', '.join(ordered)}. "
            f"In the paper it {expected} with depth; here it {here}{judged}."
        )
    return "\n\n".join(paragraphs)


def recorded_deviations(runs: pd.DataFrame) -> list[str]:
    """Ways the stored runs differ from the paper's setup, read from their records (Markdown items)."""
    if runs.empty:
        return []
    items = []
    lossy = sorted({d for d in runs.dataset if is_lossy(d)})
    if lossy:
        items.append(f"{(runs.dataset.isin(lossy)).sum()} of {len(runs)} runs were {dataset_note(lossy[0])}.")
    held_out = sorted({d for d in runs.dataset if parse_dataset_label(d)[1]})
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
                f"{r.label} (down to {ratio_text(r.lowest)} at iteration {r.lowest_at:,})" for r in vanished
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
            f"| {r.label} | {ratio_text(r.at_init)} | {ratio_text(r.lowest)} ({r.lowest_at:,}) | "
            f"{ratio_text(r.highest)} ({r.highest_at:,}) |"
        )
    if grown:
        lines += ["", "The other way round, the first layers' gradient grows more than "
                  f"{VANISHING_FACTOR} times the last layers' in {', '.join(r.label for r in grown)}: "
                  "large, not vanishing, gradients near the input."]  # fmt: skip
    return "\n".join(lines)


PRECISION_CHECK_COMMAND = (
    "python benchmarks/precision_check.py --data DATA --out RUNS --csv data/benchmarks/bf16_vs_fp32.csv"
)


def bf16_training_note(rows: pd.DataFrame) -> str:
    """What the bf16/fp32 check found, in words: where bf16 lags fp32 by more than the seeds' spread, or
    that it lags nowhere; that it has not run yet, with its command."""
    from resnet_repro.book.precision import METRIC_NAMES, bf16_agrees, paired_gaps, precision_verdicts

    if rows.empty:
        return f"The bf16/fp32 check has not run yet: `{PRECISION_CHECK_COMMAND}`."
    verdicts = precision_verdicts(rows)
    nets = ", ".join(label(arch, "A") for arch in dict.fromkeys(rows.arch))
    setting = (
        f"{nets}, seeds {', '.join(str(s) for s in sorted(rows.seed.unique()))}, at iterations "
        f"{', '.join(f'{i:,}' for i in sorted(rows.iteration.unique()))} of the quick schedule, on "
        f"{', '.join(sorted(rows.device.unique()))}"
    )
    agrees = bf16_agrees(verdicts)
    if agrees is None:
        return f"The check ({setting}) has too few seeds of both precisions for a spread yet."
    lagging = verdicts[verdicts.lags]
    if agrees:
        worst = verdicts.loc[verdicts.gap.idxmax()]
        metric = METRIC_NAMES[worst.metric]
        text = (
            f"**bf16 trains as fp32 does** ({setting}): nowhere is bf16's mean error above fp32's by more "
            f"than the seeds' spread (the largest gap: {worst.gap:+.2f} points, {metric} of "
            f"{label(worst.arch, 'A')} at {worst.iteration:,}, spread {worst.spread:.2f})."
        )
        pairs = paired_gaps(rows, worst.arch, worst.iteration, worst.metric)
        if len(pairs) >= 2 and min(pairs) > 0:
            text += (
                f" Seed by seed, though, bf16 is behind there in every pair "
                f"({', '.join(f'{gap:+.2f}' for gap in pairs)} points): with {len(pairs)} seeds the check "
                "cannot rule out a lag, so the CPU runs of 56 layers and more stay in fp32 until more seeds "
                "are in."
            )
        return text
    where = "; ".join(
        f"{label(v.arch, 'A')} {METRIC_NAMES[v.metric]} at {v.iteration:,}: {v.gap:+.2f} points "
        f"(spread {v.spread:.2f})"
        for v in lagging.itertuples()
    )
    return f"**bf16 lags fp32** by more than the seeds' spread ({setting}): {where}."


# ---------------------------------------------------------------------------------------------------------
# The loss landscape (Li et al.'s method; landscape.csv)
# ---------------------------------------------------------------------------------------------------------

# When no landscape.csv says how fast this machine is: one grid row of ResNet-56 (25 points x 500 training
# images) took 23.5 s of CPU time in bf16 on one thread of a 2-core AMD EPYC (187 s of wall time, niced,
# beside two training runs): (images evaluated, CPU seconds) for the net measured.
LANDSCAPE_REFERENCE = ("resnet56", 25 * 500, 23.5, "one core of a 2-core AMD EPYC (bf16, CPU time)")


def minutes(seconds: float) -> str:
    """A duration as the notes say it: "45 s", "12.5 min", "3.2 h"."""
    if seconds >= 3 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def landscape_estimate(arch: str, settings, found: dict[str, Landscape]) -> tuple[float, str]:
    """How long `analyze landscape` would take for `arch` at `settings` (landscape.LandscapeSettings), and
    on what: scaled by passes x images x multiply-adds from a net measured here, else LANDSCAPE_REFERENCE."""
    passes = len(settings.wanted()) * settings.images
    if found:
        measured = next(iter(found.values()))
        where = f"{measured.device} ({measured.amp}, CPU time as measured above)"
        done = measured.cpu_seconds, measured.arch, measured.evaluated * measured.images
    else:
        reference_arch, reference_passes, seconds, where = LANDSCAPE_REFERENCE
        done = seconds, reference_arch, reference_passes
    seconds, measured_arch, measured_passes = done
    return seconds * passes * cifar_macs(arch) / (measured_passes * cifar_macs(measured_arch)), where


def landscape_notes(selection: Selection, found: dict[str, Landscape], settings) -> str:
    """Markdown under the landscape figures: which runs, each surface's grid, subset and cost, and what
    is missing with the command for it (and how long it would take at `settings`)."""
    if selection.empty:
        return missing_note("landscape")
    parts = [shown_note(selection)]
    for name, landscape in found.items():
        loss, error = landscape.center
        points = len(landscape.axis)
        span = float(np.abs(landscape.axis).max())
        parts.append(
            f"{name}: {points} × {points} grid over [−{span:g}, {span:g}]² and {len(landscape.slice)} points "
            f"along δ, on {landscape.images:,} training images (loss {loss:.3f} and error {error:.2f}% at "
            f"the trained weights), in {minutes(landscape.seconds)} ({minutes(landscape.cpu_seconds)} of CPU "
            f"time) on {landscape.device} ({landscape.amp}, {landscape.threads} "
            f"thread{'s' if landscape.threads != 1 else ''})."
        )
    optional = FIGURES["landscape"][0][-1]  # ResNet-110: drawn when it has a run and a landscape.csv
    needed = [n for n in selection.nets if label(*n) not in found and n != optional]
    if needed:
        estimates = []
        for arch, shortcut in needed:
            if (arch, shortcut) in selection.present:
                seconds, where = landscape_estimate(arch, settings, found)
                estimates.append(f"{label(arch, shortcut)} (about {minutes(seconds)} on {where})")
            else:
                estimates.append(f"{label(arch, shortcut)} (no run yet)")
        command = analyze_command(selection, [label(*n) for n in needed], "landscape")
        parts.append(f"**No landscape yet** for {', '.join(estimates)}: {command}.")
    if label(*optional) not in found:
        parts.append(f"{label(*optional)} is added when it has a run and a landscape.csv.")
    return " ".join(parts)


def landscape_table(found: dict[str, Landscape]) -> str:
    """Markdown table: per net, the loss and error at the trained weights and the share of grid points
    where the surface curves downward, near the trained weights and over the whole grid."""
    lines = [
        "| net | loss at the trained weights | error there | curves downward: near | whole grid |",
        "|---|---|---|---|---|",
    ]
    for name, landscape in found.items():
        loss, error = landscape.center
        lines.append(
            f"| {name} | {loss:.3f} | {error:.2f}% | {landscape.non_convex_share(near=True):.0%} | "
            f"{landscape.non_convex_share(near=False):.0%} |"
        )
    return "\n".join(lines)


def _check_notes(table: pd.DataFrame, selection: Selection, reading, text, missing: str) -> str:
    """One sentence per net shown whose landscape.csv holds a check (`reading` of its rows, told by
    `text`); `missing` where none does."""
    checked = []
    for run in selection.runs.itertuples():
        found = reading(table[table.run == run.run])
        if found is not None:
            checked.append(f"{label(run.arch, run.shortcut)}: {text(found)}.")
    return " ".join(checked) if checked else missing


def precision_note(table: pd.DataFrame, selection: Selection) -> str:
    """Whether bf16 evaluation was checked against fp32 (`--check-fp32`), and how far apart they were."""
    missing = (
        "No surface shown has been checked against fp32 yet: `analyze landscape RUN_FOLDER --check-fp32` "
        "evaluates its row β = 0 again in fp32 and adds it to landscape.csv."
    )
    return _check_notes(table, selection, precision_gap, precision_gap_text, missing)


def subset_note(table: pd.DataFrame, selection: Selection) -> str:
    """Whether the subset of training images was checked by doubling it (`--check-subset`), and how far
    the surface moved."""
    missing = (
        "No surface shown has been checked on a doubled subset yet: `analyze landscape RUN_FOLDER "
        "--check-subset` evaluates every other grid point again on twice the images and adds them to "
        "landscape.csv."
    )
    return _check_notes(table, selection, subset_gap, subset_gap_text, missing)


def landscape_closing_note(runs: pd.DataFrame, landscape: pd.DataFrame) -> str:
    """Markdown list: the verdict on Li et al.'s claim, and per net its reading, grid, subset and the time
    `analyze landscape` took."""
    check = check_landscape(runs, landscape)
    result = f"**{check.status}**" + (f": {check.ours}" if check.ours else f"; run {check.note}")
    items = [f"- {check.claim} ({check.source}, not the paper): {result}."]
    found = landscapes(landscape, select_figure(runs, "landscape"))
    if not found:
        items.append("- `analyze landscape` has not run on these nets yet.")
    for name, surface in found.items():
        points = len(surface.axis)
        items.append(
            f"- {name}: curves downward at {surface.non_convex_share(near=True):.0%} of the grid points near "
            f"the trained weights, {surface.non_convex_share(near=False):.0%} over the whole grid "
            f"({points} × {points} points, {surface.images:,} training images); `analyze landscape` took "
            f"{minutes(surface.seconds)} ({minutes(surface.cpu_seconds)} of CPU time) on {surface.device} "
            f"({surface.amp})."
        )
    return "\n".join(items)


def _minutes(minutes: float) -> str:
    if minutes >= 120:
        return f"{minutes / 60:.1f} h"
    return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min"


def _time_span(times: pd.DataFrame, device: str) -> str:
    """How long the runs of one budget took on one kind of device (`times`: training_times rows, fastest
    first): "49 min to 2.6 h on a CPU (AMD EPYC; 4 runs: ResNet-20 the fastest, plain-56 the slowest)"."""
    where = f"on {DEVICE_KINDS.get(device, device)} ({', '.join(sorted(set(times.device_name)))}"
    fastest, slowest = times.iloc[0], times.iloc[-1]
    if len(times) == 1:
        return f"{_minutes(fastest.wall_time_min)} {where}; {fastest.net})"
    return (
        f"{_minutes(fastest.wall_time_min)} to {_minutes(slowest.wall_time_min)} {where}; {len(times)} runs: "
        f"{fastest.net} the fastest, {slowest.net} the slowest)"
    )


def training_time_note(runs: pd.DataFrame) -> str:
    """How long one run of each budget took on a CPU and on a GPU, from the stored runs' run.json (the
    README quotes it, a test holds the quote to data/results, `python -m resnet_repro status` prints it).
    Smoke runs are left out: they take seconds and say nothing of a real run."""
    times = training_times(runs)
    times = times[~times.budget.map(is_smoke)]
    if times.empty:
        return "No run is stored yet to say how long one takes."
    sentences = []
    for (budget, iterations), at_budget in times.groupby(["budget", "iterations"], sort=False):
        spans = [_time_span(on_device, device) for device, on_device in at_budget.groupby("device")]
        sentences.append(f"A **{budget}** run ({iterations:,} iterations) took {' and '.join(spans)}.")
    return " ".join(sentences)
