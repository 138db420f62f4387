"""The bf16/fp32 check's reading: summaries, the lag verdict against the seeds' spread, its page parts."""

from __future__ import annotations

import pandas as pd

from resnet_repro.book import notes, plots, tables
from resnet_repro.book.precision import (
    bf16_agrees,
    load_precision_check,
    paired_gaps,
    precision_summary,
    precision_verdicts,
)


def check_rows(bf16_train: list[float], fp32_train: list[float], arch: str = "resnet56") -> pd.DataFrame:
    """Rows as precision_check.py writes them, at one curve point; test error 1 point above training."""
    rows = []
    for precision, errors in (("bf16", bf16_train), ("fp32", fp32_train)):
        for seed, error in enumerate(errors):
            point = {"iteration": 800, "train_error": error, "test_error": error + 1}
            rows.append({"arch": arch, "precision": precision, "seed": seed, **point, "device": "A CPU"})
    return pd.DataFrame(rows)


def test_the_summary_gives_mean_and_spread_per_net_point_and_precision():
    summary = precision_summary(check_rows([60, 62, 64], [59, 61, 63])).set_index("precision")
    assert summary.loc["bf16", "seeds"] == 3 and summary.loc["bf16", "train_error_mean"] == 62
    assert summary.loc["fp32", "train_error_std"] == 2 and summary.loc["fp32", "test_error_mean"] == 62


def test_bf16_lags_only_where_the_gap_exceeds_the_seeds_spread():
    within = precision_verdicts(check_rows([60, 62, 64], [59, 61, 63]))  # gap 1, spread 2
    assert not within.lags.any() and bf16_agrees(within) is True
    assert within.set_index("metric").loc["train_error", "gap"] == 1
    beyond = precision_verdicts(check_rows([66, 67, 68], [59, 61, 63]))  # gap 6, spread 2
    assert beyond.lags.all() and bf16_agrees(beyond) is False
    better = precision_verdicts(check_rows([50, 51, 52], [59, 61, 63]))  # bf16 ahead: not a lag
    assert not better.lags.any()


def test_one_seed_has_no_spread_to_judge_by():
    verdicts = precision_verdicts(check_rows([60], [50]))
    assert verdicts.empty and bf16_agrees(verdicts) is None
    assert "too few seeds" in notes.bf16_training_note(check_rows([60], [50]))


def test_a_check_not_run_yet_reads_as_empty_and_the_page_gives_its_command(tmp_path):
    rows = load_precision_check(tmp_path / "absent.csv")
    assert rows.empty and "train_error" in rows.columns
    assert notes.PRECISION_CHECK_COMMAND in notes.bf16_training_note(rows)


def test_the_page_names_where_bf16_lags_and_the_table_and_figure_show_both_precisions(tmp_path):
    rows = pd.concat(
        [check_rows([66, 67, 68], [59, 61, 63]), check_rows([60, 61, 62], [60, 61, 62], "plain56")],
        ignore_index=True,
    )
    note = notes.bf16_training_note(rows)
    assert (
        "lags" in note
        and "ResNet-56 training error at 800: +6.00" in note
        and "plain-56 training" not in note
    )
    table = tables.precision_table(rows)
    assert len(table) == 4 and set(table.precision) == {"bf16", "fp32"}
    assert table.set_index(["net", "precision"]).loc[("ResNet-56", "bf16"), "train_error"] == "67.00 ± 1.00%"
    fig = plots.precision_figure(rows)
    assert len(fig.axes) == 4 and {ax.get_title() for ax in fig.axes} == {"ResNet-56", "plain-56"}
    rows.to_csv(tmp_path / "check.csv", index=False)
    assert load_precision_check(tmp_path / "check.csv").equals(rows)


def test_a_gap_within_the_spread_but_in_every_seed_is_reported_as_unresolved():
    # seeds far apart (spread 8) but bf16 behind in each pair: the mean rule passes, the pairs do not
    rows = check_rows([55, 47], [50, 43])
    assert bf16_agrees(precision_verdicts(rows)) is True
    assert paired_gaps(rows, "resnet56", 800, "train_error") == [5.0, 4.0]
    note = notes.bf16_training_note(rows)
    assert "+5.00, +4.00" in note and "stay in fp32" in note
    mixed = check_rows([55, 41], [50, 43])  # ahead in one pair: nothing more to say
    assert "stay in fp32" not in notes.bf16_training_note(mixed)
