"""Whether each of the paper's claims holds in our runs: one ``Check`` per claim, with the paper's number,
ours and the verdict, computed from the tidy frames of ``resnet_repro.runs.loaders`` or from counts.

Paper numbers come from ``resnet_repro.paper.reference`` and nowhere else; which runs a check reads comes from
``resnet_repro.selection``; the prose around the verdicts is ``resnet_repro.book.notes``'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from resnet_repro import models
from resnet_repro.book.cost_tables import imagenet_costs
from resnet_repro.book.figure_runs import (
    Selection,
    analyze_command,
    is_smoke,
    label,
    mean_pm,
    net,
    net_results,
    nets_of,
    pct,
    rows_of,
    select_figure,
    select_runs,
    to_run,
)
from resnet_repro.book.readings import (
    EDGE_LAYERS,
    NEAR_THETA,
    NEGATIVE_CURVATURE,
    chance_error,
    gradient_extremes,
    gradient_ratios,
    landscapes,
    lesion_effects,
    ratio_text,
)
from resnet_repro.paper.reference import paper_value
from resnet_repro.runs.folders import GRAD_NORM_COLUMNS, LANDSCAPE_COLUMNS, RUN_KEYS
from resnet_repro.runs.loaders import load_grad_norms, load_landscapes, load_layer_std, load_runs

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
            "source": self.source,
            "paper": self.paper,
            "ours": self.ours,
            "status": self.status,
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


def _verdict(results: list[bool]) -> str:
    if not results:
        return NO_RUN
    return HOLDS if all(results) else (FAILS if not any(results) else PARTLY)


def _runs_note(selection: Selection) -> str:
    """Which runs a verdict rests on, compactly (the page explains budgets and data once, above)."""
    devices = ", ".join(selection.devices) or "device not recorded"
    return f"{' + '.join(selection.budgets)} · {selection.dataset} · {devices}"


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
        return Check(claim, "Figure 1", CURVES_ONLY, "", NO_RUN, to_run(selection, "fig1"))
    ours, results = _lower_train_and_test(selection, "plain-20", "plain-56", better="plain-20")
    return Check(claim, "Figure 1", CURVES_ONLY, ours, _judged(selection, results), _runs_note(selection))


def check_resnet_depth(runs: pd.DataFrame) -> Check:
    """Figure 6 middle, Table 6: deeper ResNets reach lower error (20 to 110 layers)."""
    claim = "Deeper ResNets are more accurate: test error falls from 20 to 110 layers"
    selection = select_figure(runs, "fig6_resnet")
    errors = net_results(selection)
    if len(errors) < 2:
        return Check(claim, "Figure 6, Table 6", _paper_errors((20, 110)), "", NO_RUN,
                     to_run(selection, "fig6_resnet"))  # fmt: skip
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
        return Check(claim, "Figure 6", CURVES_ONLY, "", NO_RUN, to_run(selection, "fig6_plain"))
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
        return Check(claim, "Table 6", paper, "", NO_RUN, to_run(selection, "table6"))
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
        wanted = (net(f"plain{depth}"),) + nets_of("resnet", (depth,), models.SHORTCUT_OPTIONS)
        selection = select_runs(runs, wanted, common=True)
        if not selection.missing:
            break
    else:
        plain_nets = to_run(selection, "fig1")  # the plain nets of the same depths
        return Check(
            claim, "Table 3", paper, "", NO_RUN, f"{to_run(selection, 'shortcuts')} and {plain_nets}"
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
        return Check(claim, "Figure 7", CURVES_ONLY, "", NO_RUN, to_run(selection, "fig7"))
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
    runs: pd.DataFrame,
    layer_std: pd.DataFrame,
    costs: pd.DataFrame | None = None,
    grad_norms: pd.DataFrame | None = None,
    landscape: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The introduction's table: every claim of the paper we test, the paper's number, ours, and whether it
    holds; then Li et al.'s claim on the loss landscape, labelled as theirs (the lesion study, also the
    literature's, is judged in its chapter only)."""
    costs = imagenet_costs() if costs is None else costs
    grad_norms = pd.DataFrame(columns=RUN_KEYS + GRAD_NORM_COLUMNS) if grad_norms is None else grad_norms
    landscape = pd.DataFrame(columns=RUN_KEYS + LANDSCAPE_COLUMNS) if landscape is None else landscape
    checks = [
        check_degradation(runs),
        check_residual_beats_plain(runs),
        check_resnet_depth(runs),
        check_resnet110_error(runs),
        check_shortcuts(runs),
        check_responses(runs, layer_std),
        check_gradients(runs, grad_norms),
        check_forward_signals(runs, layer_std),
        check_vgg_flops(costs),
        check_152_below_vgg(costs),
        literature_row(check_landscape(runs, landscape)),
    ]
    return pd.DataFrame([c.as_row() for c in checks])


def literature_row(check: Check) -> Check:
    """A claim from the literature as a row of the paper's table: its source says it is not He et al.'s."""
    return replace(check, source=f"{check.source}, not He et al.")


def stored_claims_status(results_dir=None, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """claims_status of the runs stored in results_dir (default: data/results): the introduction's table,
    and `python -m resnet_repro status`. runs: `load_runs(results_dir)` where the caller has it already."""
    return claims_status(
        load_runs(results_dir) if runs is None else runs,
        load_layer_std(results_dir),
        grad_norms=load_grad_norms(results_dir),
        landscape=load_landscapes(results_dir),
    )


SAME_RUNS = "the runs named above"


def status_for_page(status: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The status table as the introduction shows it, and a sentence for above it: when every claim judged
    from runs used the same ones (budget, data, device), they are named once there instead of in each row.
    Rows without a run keep the command that makes it."""
    judged = ~status.runs.isin([COUNTED]) & (status.status != NO_RUN)
    sources = set(status.runs[judged])
    if len(sources) != 1:
        return status, ""
    return status.assign(runs=status.runs.where(~judged, SAME_RUNS)), (
        f"Every claim judged from runs uses the same runs (budget · data · device): {sources.pop()}."
    )


def check_times_fewer(ratio: float, claimed: float) -> str:
    """A claim "N times fewer" holds when the counted ratio rounds to N."""
    return HOLDS if round(ratio) == claimed else FAILS


VANISHING_FACTOR = 100


SECTION_41 = "Section 4.1"


LITERATURE_LESION = "Veit, Wilber and Belongie (2016)"  # not the paper: labelled so wherever it is shown


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
        return Check(claim, SECTION_41, paper, "", NO_RUN, to_run(selection, "gradients"))
    ours = "; ".join(
        f"{r.label}: first/last {ratio_text(r.at_init)} at initialisation, lowest {ratio_text(r.lowest)} "
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
        return Check(claim, SECTION_41, paper, "", NO_RUN, to_run(selection, "gradients"))
    parts, results = [], []
    for (arch, shortcut), group in rows.groupby(["arch", "shortcut"], sort=False):
        std = group.groupby("layer")["std"].mean()
        parts.append(f"{label(arch, shortcut)}: lowest std {std.min():.3g}, median {std.median():.3g}")
        results.append(std.min() * VANISHING_FACTOR >= std.median())
    return Check(
        claim, SECTION_41, paper, "; ".join(parts), _judged(selection, results), _runs_note(selection)
    )


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
        note = analyze_command(selection, wanted, "lesion")
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


def literature_check_markdown(check: Check) -> str:
    """check_markdown for a claim from the literature: it is attributed to its authors, not to the paper."""
    if check.status == NO_RUN:
        missing = f"*{check.claim}* ({check.source}, not the paper): **not computed yet**."
        return f"{missing} Run {check.note} to check it."
    return (
        f"*{check.claim}* (reported by {check.source}, not by He et al.): **{check.status}** in our runs. "
        f"{check.source}: {check.paper}. Ours: {check.ours} ({check.note})."
    )


LITERATURE_LANDSCAPE = "Li, Xu, Taylor, Studer and Goldstein (2018)"  # not the paper, labelled so everywhere


def landscape_criteria() -> str:
    """The landscape verdict's yardstick, in words (Markdown)."""
    return (
        "At each inner grid point the curvature of the surface is read from its finite-difference Hessian "
        "(central differences of the loss over the neighbouring grid points). The surface *curves "
        "downward* there (it is not locally convex) when the Hessian's smaller eigenvalue is negative and "
        f"at least {NEGATIVE_CURVATURE:.0%} of the larger one in size. *Near the trained weights* means "
        f"|α| and |β| at most {NEAR_THETA:.0%} of the grid's span. The claim holds when, at 56 layers, the "
        "ResNet's surface curves downward at a smaller share of the points than the plain net's, both near "
        "the trained weights and over the whole grid; *partly* when only one of the two."
    )


def check_landscape(runs: pd.DataFrame, landscape: pd.DataFrame) -> Check:
    """Li et al. (2018): skip connections keep the loss surface around the trained weights smooth and
    nearly convex, where the plain net of the same depth (56 layers) turns chaotic. Judged on the share of
    grid points where the surface curves downward (the literature's claim, not the paper's)."""
    claim = "Skip connections make the loss landscape smoother, closer to convex: ResNet-56's vs plain-56's"
    literature = (
        "CIFAR-10 ResNet-56 and its twin without shortcuts, filter-normalised random directions: the "
        "ResNet's surface is smooth and nearly convex, the plain net's chaotic (pictures, no number)"
    )
    source = LITERATURE_LANDSCAPE
    selection = select_figure(runs, "landscape")
    found = landscapes(landscape, selection)
    resnet, plain = found.get("ResNet-56"), found.get("plain-56")
    if resnet is None or plain is None:
        wanted = [n for n in ("ResNet-56", "plain-56") if n not in found]
        return Check(claim, source, literature, "", NO_RUN, analyze_command(selection, wanted, "landscape"))
    shares = {
        region: (resnet.non_convex_share(near), plain.non_convex_share(near))
        for region, near in (("near the trained weights", True), ("whole grid", False))
    }
    ours = "share of grid points curving downward, " + "; ".join(
        f"{region}: ResNet-56 {r:.0%}, plain-56 {p:.0%}" for region, (r, p) in shares.items()
    )
    results = [r < p for r, p in shares.values()]
    return Check(claim, source, literature, ours, _judged(selection, results), _runs_note(selection))
