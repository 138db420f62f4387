"""The tables the book shows beside the paper's (the shortcut options, Table 3, and Table 6), the headers a
reader sees (`DISPLAY_NAMES`) and tables as Markdown. Draws nothing, so the commands use it without
matplotlib."""

from __future__ import annotations

import math

import pandas as pd

from resnet_repro import models
from resnet_repro.book.claims import NO_RUN
from resnet_repro.book.cost_tables import cifar_costs
from resnet_repro.book.figure_runs import label, mean_pm, net_results, select_figure
from resnet_repro.paper.reference import paper_table


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
            row |= {"test_error": mean_pm(r.test_mean, r.test_std), "seeds": r.seeds, "budget": r.budget}
            row |= {"mean": r.test_mean, "std": r.test_std}
        else:
            row |= {"test_error": NO_RUN, "seeds": 0, "budget": "", "mean": math.nan, "std": math.nan}
        rows.append(row)
    return pd.DataFrame(rows, columns=["net", "test_error", "seeds", "budget", "mean", "std"])


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
    return wide.reset_index()


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
            "paper_params_m": values["params"] / 1e6,
            "our_params_m": counted[name] / 1e6,
            "paper_error": values["test_error"],
            "paper_mean_std": mean_pm(values["test_error_mean"], values["test_error_std"])
            if "test_error_mean" in values
            else "",
        }
        if depth in ours.index:
            r = ours.loc[depth]
            row.update(
                {
                    "our_error": r.test_mean,
                    "our_std": r.test_std,
                    "seeds": r.seeds,
                    "our_budget": r.budget,
                }
            )
        else:
            row.update({"our_error": math.nan, "our_std": math.nan, "seeds": 0, "our_budget": ""})
        rows.append(row)
    return pd.DataFrame(rows)


def precision_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The bf16/fp32 check (precision.py) per net, curve point and precision: each error as mean ± std over
    the seeds."""
    from resnet_repro.book.precision import precision_summary

    summary = precision_summary(rows)
    return pd.DataFrame(
        {
            "net": [label(arch, "A") for arch in summary.arch],
            "iteration": summary.iteration,
            "precision": summary.precision,
            "seeds": summary.seeds,
            "train_error": [
                mean_pm(m, s) for m, s in zip(summary.train_error_mean, summary.train_error_std, strict=True)
            ],
            "test_error": [
                mean_pm(m, s) for m, s in zip(summary.test_error_mean, summary.test_error_std, strict=True)
            ],
        }
    )


# ---------------------------------------------------------------------------------------------------------
# Headers and Markdown
# ---------------------------------------------------------------------------------------------------------

# Column headers as the pages show them; the tables themselves keep snake_case keys.
DISPLAY_NAMES = {
    "source": "paper's figure/table",
    "paper": "paper's number",
    "status": "holds?",
    "test_error": "test error (%)",
    "top1_error": "top-1 error (%)",
    "top5_error": "top-5 error (%)",
    "paper_params_m": "paper params (M)",
    "our_params_m": "our params (M)",
    "paper_error": "paper error (%)",
    "paper_mean_std": "paper mean ± std",
    "our_error": "our error (%)",
    "our_std": "our std",
    "our_budget": "our budget",
    "added_over_plain": "added over plain",
    "wall_time_min": "wall time (min)",
    "train_time_min": "train time (min)",
    "dataset_sha256": "dataset sha256",
}


def for_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the headers a reader sees (DISPLAY_NAMES)."""
    return table.rename(columns=DISPLAY_NAMES)


def markdown_table(table: pd.DataFrame, formats: dict | None = None) -> str:
    """A pipe table for Markdown (so code and bold in cells render), numbers formatted per column (``formats``
    keyed by the table's columns), headers as DISPLAY_NAMES says."""
    formats = formats or {}

    def cell(column, value) -> str:
        if not isinstance(value, str) and pd.isna(value):
            return "–"
        text = formats[column].format(value) if column in formats else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    headers = [str(DISPLAY_NAMES.get(column, column)) for column in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row, strict=True)) + " |")
    return "\n".join(lines)


def shared_columns(table: pd.DataFrame, keep=()) -> tuple[pd.DataFrame, str]:
    """The table without the columns whose value is the same in every row (except ``keep``), and a
    Markdown sentence naming those values once, so a long table does not repeat them row after row."""
    if len(table) < 2:
        return table, ""
    shared = [c for c in table.columns if c not in keep and table[c].astype(str).nunique() == 1]
    if not shared:
        return table, ""
    values = "; ".join(
        f"{DISPLAY_NAMES.get(column, column)} **{table[column].iloc[0]}**" for column in shared
    )
    return table.drop(columns=shared), f"Every run: {values}."
