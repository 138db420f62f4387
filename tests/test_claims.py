"""The book's computed statements (resnet_repro.book.claims) on small hand-made result frames.

The frames (built with the helpers in fakes.py) have exactly the columns of the readers in
resnet_repro.runs.loaders;
their numbers are made up for the test and never leave it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fakes import EMPTY_RUNS, run_row, toy_histories, toy_layer_std, toy_runs
from golden import assert_golden

from resnet_repro.book import claims, cost_tables, figure_runs, notes, provenance, tables
from resnet_repro.paper.reference import paper_value
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.folders import LAYER_STD_COLUMNS, RUN_KEYS
from resnet_repro.runs.loaders import load_histories, load_layer_std, load_runs

EMPTY_LAYER_STD = pd.DataFrame(columns=RUN_KEYS + LAYER_STD_COLUMNS)


# ---- choosing runs -----------------------------------------------------------------------------


def mixed_budget_runs() -> pd.DataFrame:
    """plain-20 at three budgets, plain-56 at quick only."""
    return toy_runs(
        run_row("plain20", budget="quick"),
        run_row("plain56", budget="quick"),
        run_row("plain20", budget="full"),
        run_row("plain20", budget="smoke"),
    )


def one_jpeg_run() -> pd.DataFrame:
    return toy_runs(run_row("plain20", budget="quick", dataset="cifar10-jpeg"))


def both_datasets(official_nets=("plain20", "plain56")) -> pd.DataFrame:
    """plain-20/56 on our JPEG copy, and `official_nets` on the official files, all at quick."""
    jpeg = [
        run_row(arch, budget="quick", test=20.0, dataset="cifar10-jpeg") for arch in ("plain20", "plain56")
    ]
    return toy_runs(*jpeg, *(run_row(arch, budget="quick", test=10.0) for arch in official_nets))


def test_select_runs_takes_each_nets_longest_budget_and_says_what_is_missing_or_left_out():
    runs = mixed_budget_runs()
    selection = figure_runs.select_runs(runs, figure_runs.FIGURES["fig1"][0])
    # per net: full plain-20 (its quick and smoke runs stay out), quick plain-56, nothing missing
    assert sorted(zip(selection.runs.arch, selection.runs.budget, strict=True)) == [
        ("plain20", "full"),
        ("plain56", "quick"),
    ]
    assert selection.budgets == ("full", "quick") and selection.budget is None and not selection.missing
    assert selection.nets_at("quick") == (("plain56", "-"),)
    assert selection.other_budgets == ("quick", "smoke")  # the note says so: see the reviewed page


def test_a_comparison_uses_one_budget_covering_most_nets_then_the_longest():
    runs = toy_runs(
        run_row("plain20", budget="quick"),
        run_row("plain56", budget="quick"),
        run_row("plain20", budget="full"),
    )
    common = figure_runs.select_figure(runs, "fig1")  # a figure compares its nets: one budget
    assert common.budget == "quick" and not common.missing and common.other_budgets == ("full",)
    assert figure_runs.select_figure(runs, "fig1", common=False).budgets == ("full", "quick")
    both_full = toy_runs(*runs.to_dict("records"), run_row("plain56", budget="full"))
    assert figure_runs.select_figure(both_full, "fig1", common=True).budget == "full"


def test_table6_takes_each_nets_longest_budget_as_each_row_is_compared_with_the_paper():
    quick = {"budget": "quick"}
    runs = toy_runs(
        run_row("resnet20", budget="full"), run_row("resnet20", **quick), run_row("resnet56", **quick)
    )
    assert figure_runs.select_figure(runs, "table6").budgets == ("full", "quick")
    table = tables.table6(runs).set_index("net").our_budget
    assert table["ResNet-20"] == "full" and table["ResNet-56"] == "quick" and table["ResNet-110"] == ""
    note = notes.provenance_note(figure_runs.select_figure(runs, "table6"), "table6")
    assert (
        "ResNet-1202. To add them: `python -m resnet_repro reproduce table6 --budget quick --include-1202`"
        in note
    )


def test_notes_name_the_missing_nets_with_the_command_and_the_device():
    note = notes.provenance_note(figure_runs.select_figure(one_jpeg_run(), "fig1"), "fig1")
    assert "plain-56" in note and "`python -m resnet_repro reproduce fig1 --budget quick`" in note
    assert "test device" in note and "lossy" in note


def test_a_non_standard_length_ranks_by_iterations_and_reproduces_with_its_flags():
    long_quick = run_row("plain20", budget="quick-20000it") | {"iterations": 20000}
    runs = toy_runs(run_row("plain20", budget="quick"), long_quick)
    selection = figure_runs.select_runs(runs, [figure_runs.net("plain20")])
    assert selection.budget == "quick-20000it"
    assert figure_runs.budget_flags(selection.budget) == "--budget quick --iterations 20000"
    assert figure_runs.is_smoke("smoke-120it") and not figure_runs.is_smoke("quick")


def test_select_runs_prefers_the_dataset_covering_more_nets_then_the_official_one():
    runs = toy_runs(
        run_row("plain20", dataset="cifar10-jpeg"),
        run_row("plain56", dataset="cifar10-jpeg"),
        run_row("plain20", dataset="cifar10"),
    )
    assert figure_runs.select_figure(runs, "fig1").dataset == "cifar10-jpeg"
    tie = toy_runs(run_row("plain20", dataset="cifar10-jpeg"), run_row("plain20", seed=1, dataset="cifar10"))
    assert figure_runs.select_figure(tie, "fig1").dataset == "cifar10"


def test_a_figure_shows_one_dataset_the_readers_official_runs_where_they_cover_its_nets():
    """Issue 24: the same nets at the same budget on both datasets (same run names): one dataset is shown,
    its curves only, and the note says which and that the other is stored too."""
    runs = both_datasets()
    selection = figure_runs.select_figure(runs, "fig1")
    assert selection.dataset == "cifar10" and set(selection.runs.dataset) == {"cifar10"}
    assert len(selection.runs) == 2 and not selection.missing
    curves = figure_runs.rows_of(toy_histories(runs), selection)
    assert set(curves.dataset) == {"cifar10"} and len(curves) == 2 * 4
    note = notes.provenance_note(selection, "fig1")
    assert "lossy" not in note and "cifar10-jpeg" in note  # the other dataset: stored, not shown
    # Until the reader's runs cover the figure's nets, ours are shown, with the JPEG caveat.
    ours = figure_runs.select_figure(both_datasets(official_nets=("plain20",)), "fig1")
    assert ours.dataset == "cifar10-jpeg" and set(ours.runs.dataset) == {"cifar10-jpeg"}
    assert "lossy" in notes.provenance_note(ours, "fig1")


def test_rows_of_keeps_only_the_selected_budget_of_a_run_name_shared_across_budgets():
    runs = toy_runs(
        run_row("plain20", budget="quick", test=30.0), run_row("plain20", budget="full", test=8.0)
    )
    histories = toy_histories(runs)
    rows = figure_runs.rows_of(histories, figure_runs.select_figure(runs, "fig1"))
    assert set(rows.budget) == {"full"} and rows.test_error.iloc[-1] == 8.0


def test_empty_results_folder_gives_empty_selections_and_no_run_verdicts(tmp_path):
    runs, layer_std = load_runs(tmp_path / "absent"), load_layer_std(tmp_path / "absent")
    assert figure_runs.select_figure(runs, "fig6_plain").empty
    assert figure_runs.rows_of(
        load_histories(tmp_path / "absent"), figure_runs.select_figure(runs, "fig1")
    ).empty
    status = claims.claims_status(runs, layer_std)
    trained = status[status.runs != "counted, no training"]
    assert set(trained.status) == {claims.NO_RUN}
    assert all("python -m resnet_repro reproduce" in note for note in trained.runs)
    assert "No run yet" in notes.missing_note("fig1")


def test_net_results_averages_seeds_and_keeps_the_figure_order():
    runs = toy_runs(
        run_row("resnet56", test=7.0, seed=0),
        run_row("resnet56", test=9.0, seed=1),
        run_row("resnet20", test=9.0),
    )
    table = figure_runs.net_results(figure_runs.select_figure(runs, "fig6_resnet"))
    assert list(table.label) == ["ResNet-20", "ResNet-56"]
    row = table.set_index("label").loc["ResNet-56"]
    assert row.seeds == 2 and row.test_mean == 8.0 and row.test_std == pytest.approx(np.std([7, 9], ddof=1))
    assert np.isnan(table.set_index("label").loc["ResNet-20"].test_std)


def test_notes_name_the_lossy_data_and_a_held_out_split():
    assert "lossy" in notes.dataset_note("cifar10-jpeg") and "lossy" not in notes.dataset_note("cifar10")
    assert notes.is_lossy("cifar10-jpeg-val5000") and not notes.is_lossy("cifar10")
    assert "5,000" in notes.dataset_note("cifar10-val5000")
    assert "my_folder" in notes.dataset_note("my_folder")


# ---- verdicts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deep_train", "deep_test", "verdict"),
    [(8.0, 12.0, claims.HOLDS), (3.0, 8.0, claims.FAILS), (8.0, 8.0, claims.PARTLY)],
)
def test_degradation_compares_plain56_with_plain20(deep_train, deep_test, verdict):
    runs = toy_runs(
        run_row("plain20", train=5.0, test=9.0), run_row("plain56", train=deep_train, test=deep_test)
    )
    check = claims.check_degradation(runs)
    assert check.status == verdict
    assert "5.00%" in check.ours and f"{deep_test:.2f}%" in check.ours


def smoke_pair() -> pd.DataFrame:
    return toy_runs(run_row("plain20", budget="smoke"), run_row("plain56", budget="smoke", train=50.0))


def plain_rising() -> pd.DataFrame:
    return toy_runs(*(run_row(f"plain{d}", train=t) for d, t in ((20, 5.0), (32, 6.0), (44, 7.0), (56, 8.0))))


def test_smoke_runs_are_too_short_to_judge():
    assert claims.check_degradation(smoke_pair()).status == claims.TOO_SHORT


def test_residual_beats_plain_and_deeper_resnets_are_better():
    runs = toy_runs(
        run_row("plain56", train=8.0, test=12.0),
        run_row("resnet20", train=3.0, test=8.5),
        run_row("resnet56", train=1.0, test=7.0),
    )
    assert claims.check_residual_beats_plain(runs).status == claims.HOLDS
    depth = claims.check_resnet_depth(runs)
    assert depth.status == claims.HOLDS
    assert depth.paper == f"ResNet-20 {paper_value('test_error', 'ResNet-20'):.2f}%, " + (
        f"ResNet-56 {paper_value('test_error', 'ResNet-56'):.2f}%"
    )


def test_depth_summary_says_whether_error_rises_with_depth():
    runs = plain_rising()
    assert "**holds**" in notes.degradation_summary(runs)
    ordered, trend = notes.depth_trend(figure_runs.select_figure(runs, "fig6_plain"))
    assert trend == "rises" and len(ordered) == 4


def test_resnet110_is_compared_with_the_papers_spread_only_at_the_full_budget():
    mean, std = paper_value("test_error_mean", "ResNet-110"), paper_value("test_error_std", "ResNet-110")
    limit = mean + claims.SPREAD_MULTIPLE * std
    assert (
        claims.check_resnet110_error(toy_runs(run_row("resnet110", test=limit - 0.01))).status == claims.HOLDS
    )
    assert (
        claims.check_resnet110_error(toy_runs(run_row("resnet110", test=limit + 0.01))).status == claims.FAILS
    )
    quick = claims.check_resnet110_error(toy_runs(run_row("resnet110", test=mean, budget="quick")))
    assert quick.status.startswith(claims.NOT_COMPARABLE)


def test_the_shortcut_criterion_holds_on_the_papers_own_table3():
    paper = tables.paper_table3().set_index("model").top1_error
    options = {o: paper[f"ResNet-34 {o}"] for o in "ABC"}
    assert claims.shortcut_gap_small(paper["plain-34"], options)
    assert not claims.shortcut_gap_small(10.0, {"A": 9.0, "B": 7.0, "C": 8.5})


def test_check_shortcuts_uses_the_deepest_complete_set():
    runs = toy_runs(
        run_row("plain56", test=12.0),
        *(run_row("resnet56", shortcut=o, test=t) for o, t in zip("ABC", (7.2, 7.0, 6.9), strict=True)),
        run_row("plain20", test=9.0),
    )
    check = claims.check_shortcuts(runs)
    assert check.status == claims.HOLDS and "ResNet-56" in check.ours and "plain 12.00%" in check.ours
    assert claims.check_shortcuts(toy_runs(run_row("resnet56", shortcut="B"))).status == claims.NO_RUN


def test_shortcut_table_reports_mean_and_spread_over_the_seeds_stored_and_every_missing_net():
    runs = toy_runs(
        run_row("resnet20", shortcut="B", test=8.0, budget="quick"),
        run_row("resnet20", shortcut="B", test=9.0, seed=1, budget="quick"),
        run_row("resnet20", shortcut="B", test=9.5, seed=2, budget="quick"),
        run_row("resnet56", shortcut="C", test=7.25, budget="quick"),
    )
    table = tables.shortcut_table(runs).set_index("net")
    assert list(table.index) == [f"ResNet-{d} {o}" for d in (20, 56) for o in "ABC"]
    three = table.loc["ResNet-20 B"]
    assert three.seeds == 3 and three.budget == "quick"
    assert three["test_error"] == f"{np.mean([8, 9, 9.5]):.2f} ± {np.std([8, 9, 9.5], ddof=1):.2f}%"
    assert table.loc["ResNet-56 C", "test_error"] == "7.25%"  # one seed: no spread
    assert table.loc["ResNet-20 A", "test_error"] == claims.NO_RUN and table.loc["ResNet-20 A"].seeds == 0


def test_layer_responses_checked_pairwise():
    runs = toy_runs(*(run_row(a) for a in ("plain20", "plain56", "resnet20", "resnet56", "resnet110")))
    smaller_in_resnets = {"plain20": 1.0, "plain56": 1.2, "resnet20": 0.8, "resnet56": 0.6, "resnet110": 0.5}
    check = claims.check_responses(runs, toy_layer_std(runs, smaller_in_resnets))
    assert check.status == claims.HOLDS and "ResNet-110" in check.ours
    deeper_is_larger = smaller_in_resnets | {"resnet110": 0.9}
    assert claims.check_responses(runs, toy_layer_std(runs, deeper_is_larger)).status == claims.PARTLY
    assert claims.check_responses(runs, EMPTY_LAYER_STD).status == claims.NO_RUN


def test_claims_status_has_one_row_per_claim_with_the_papers_numbers():
    status = claims.claims_status(EMPTY_RUNS, EMPTY_LAYER_STD)
    assert list(status.columns) == [
        "claim",
        "source",
        "paper",
        "ours",
        "status",
        "runs",
    ]
    assert len(status) == 11  # the paper's ten, then Li et al.'s landscape
    assert f"{paper_value('test_error', 'ResNet-110'):.2f}%" in " ".join(status.paper)
    counted = status[status.runs == "counted, no training"]
    assert set(counted.status) == {claims.HOLDS}  # our counts agree with the paper's Figure 3 / 4.1


# ---- tables and costs ----------------------------------------------------------------------------


def test_table6_puts_counted_parameters_and_our_errors_beside_the_papers():
    runs = toy_runs(run_row("resnet20", test=8.0), run_row("resnet20", test=9.0, seed=1))
    table = tables.table6(runs).set_index("net")
    assert table.loc["ResNet-20", "paper_error"] == paper_value("test_error", "ResNet-20")
    assert table.loc["ResNet-20", "our_error"] == 8.5 and table.loc["ResNet-20", "seeds"] == 2
    assert table.loc["ResNet-56", "seeds"] == 0 and np.isnan(table.loc["ResNet-56", "our_error"])
    assert table.loc["ResNet-110", "our_params_m"] == pytest.approx(
        paper_value("params", "ResNet-110") / 1e6, abs=0.05
    )


def test_cost_rows_use_each_builders_default_option_and_refuse_unknown_names():
    assert (
        cost_tables.cost_row("ResNet-56").shortcut == "A"
        and cost_tables.cost_row("ResNet-56").input_shape[1] == 32
    )
    assert (
        cost_tables.cost_row("ResNet-50").shortcut == "B"
        and cost_tables.cost_row("ResNet-50").input_shape[1] == 224
    )
    assert (
        cost_tables.cost_row("ResNet-34 C").shortcut == "C"
        and cost_tables.cost_row("plain-34").shortcut is None
    )
    with pytest.raises(ValueError, match="unknown net"):
        cost_tables.cost_row("ResNet 34")


def test_costs_carry_the_papers_values_where_it_states_them():
    costs = cost_tables.costs_of(["ResNet-20", "plain-20", "VGG-19"]).set_index("name")
    assert costs.loc["ResNet-20", "paper_params"] == paper_value("params", "ResNet-20")
    assert np.isnan(costs.loc["plain-20", "paper_params"])
    assert costs.loc["VGG-19", "paper_macs"] == paper_value("macs", "VGG-19")
    assert costs.loc["ResNet-20", "macs"] == costs.loc["plain-20", "macs"]  # option A adds no work


def test_ratios_and_the_five_times_check_on_a_toy_table():
    costs = pd.DataFrame({"name": ["VGG-19", "ResNet-34 B"], "params": [660, 100], "macs": [540, 100]})
    ratios = cost_tables.vgg_resnet_ratios(costs)
    assert ratios.params_ratio == 6.6 and ratios.macs_ratio == 5.4 and ratios.macs_fraction == 1 / 5.4
    assert claims.check_times_fewer(ratios.params_ratio, claimed=5) == claims.FAILS
    assert claims.check_times_fewer(ratios.macs_ratio, claimed=5) == claims.HOLDS


def test_shortcut_parameters_counted_per_option():
    table = cost_tables.shortcut_param_table(["ResNet-20"]).set_index("net").added_over_plain
    assert table["ResNet-20 A"] == 0 and 0 < table["ResNet-20 B"] < table["ResNet-20 C"]


# ---- provenance ----------------------------------------------------------------------------------


def test_train_command_repeats_the_non_default_settings():
    config = RunConfig(
        arch="resnet56", shortcut="B", budget="quick", iterations=2000, seed=3, data="x.tar.gz"
    )
    command = provenance.train_command(config.to_dict())
    assert command.startswith(
        "python -m resnet_repro train --arch resnet56 --shortcut B --budget quick --seed 3"
    )
    assert "--iterations 2000" in command and "--data x.tar.gz" in command and "--device" not in command
    assert "--shortcut" not in provenance.train_command(RunConfig(arch="plain20").to_dict())


def test_provenance_table_reads_each_runs_record(tmp_path):
    folder = tmp_path / "full" / "plain20-seed0"
    folder.mkdir(parents=True)
    record = {
        "config": RunConfig(arch="plain20", budget="full").to_dict(),
        "speed": {"amp": True, "compile": "default"},
        "provenance": {
            "git_commit": "0123456789abcdef",
            "git_dirty": False,
            "torch": "2.x",
            "dataset": {"name": "cifar10-jpeg", "sha256": "45b041e867f5a40f", "lossy": True},
        },
    }
    (folder / "run.json").write_text(json.dumps(record))
    runs = toy_runs(run_row("plain20", dataset="cifar10-jpeg") | {"path": str(folder)})
    row = provenance.provenance_table(runs).iloc[0]
    assert row.command == "python -m resnet_repro train --arch plain20 --budget full --seed 0"
    assert row.commit == "0123456789" and row.dataset == "cifar10-jpeg (lossy)" and row.wall_time_min == 1.0
    deviations = " ".join(notes.recorded_deviations(runs))
    assert "lossy JPEG" in deviations and "bf16" in deviations and "torch.compile" in deviations


# ---- the introduction's status table on quick results --------------------------------------------


QUICK_JPEG = {"budget": "quick", "dataset": "cifar10-jpeg"}


def quick_fig6(plain_train=(5.0, 6.0, 7.0, 8.0), resnet_test=(8.5, 7.5, 7.0, 6.8, 6.5)) -> list[dict]:
    """Figure 6's nets at the quick budget, seed 0, with the given final errors."""
    plain = [
        run_row(f"plain{d}", train=t, test=t + 4, **QUICK_JPEG)
        for d, t in zip((20, 32, 44, 56), plain_train, strict=True)
    ]
    resnets = [
        run_row(f"resnet{d}", test=t, train=t - 5, **QUICK_JPEG)
        for d, t in zip((20, 32, 44, 56, 110), resnet_test, strict=True)
    ]
    return plain + resnets


def verdicts(runs, layer_std=EMPTY_LAYER_STD) -> dict[str, str]:
    status = claims.claims_status(runs, layer_std)
    return dict(zip(status.source, status.status, strict=True))


def test_status_on_quick_runs_holds_where_the_orderings_hold_and_says_no_run_yet_for_the_rest():
    runs = toy_runs(*quick_fig6())
    status = claims.claims_status(runs, EMPTY_LAYER_STD).set_index("source")
    assert status.loc["Figure 1", "status"] == claims.HOLDS
    assert status.loc["Figure 6", "status"] == claims.HOLDS  # ResNet-56 below plain-56
    assert status.loc["Figure 6, Table 6", "status"] == claims.HOLDS  # ResNet-110 below ResNet-20
    assert status.loc["Table 6", "status"] == f"{claims.NOT_COMPARABLE} (budget quick)"
    assert status.loc["Table 3", "status"] == claims.NO_RUN  # no B or C runs
    assert "reproduce shortcuts --budget quick" in status.loc["Table 3", "runs"]
    assert status.loc["Figure 7", "status"] == claims.NO_RUN  # no layer responses
    # every judged claim names its budget, data and device
    assert status.loc["Figure 1", "runs"] == "quick · cifar10-jpeg · test device"


def test_status_on_quick_runs_fails_where_the_orderings_fail():
    runs = toy_runs(*quick_fig6(plain_train=(8.0, 7.0, 6.0, 5.0), resnet_test=(6.5, 6.8, 7.0, 7.5, 8.5)))
    found = verdicts(runs)
    assert found["Figure 1"] == claims.FAILS and found["Figure 6, Table 6"] == claims.FAILS
    assert "**fails**" in notes.degradation_summary(runs)


def test_status_with_shortcut_seeds_and_layer_responses():
    shortcut_runs = [
        run_row(f"resnet{d}", shortcut=o, test=t + 0.1 * seed, seed=seed, **QUICK_JPEG)
        for d, base in ((20, 8.0), (56, 7.0))
        for o, t in zip("ABC", (base, base - 0.2, base - 0.3), strict=True)
        for seed in (1, 2)  # seed 0 of option A comes from Figure 6's runs
        if not (o == "A" and seed == 0)
    ] + [
        run_row(f"resnet{d}", shortcut=o, test=t, **QUICK_JPEG)
        for d, t in ((20, 7.8), (56, 6.8))
        for o in "BC"
    ]
    runs = toy_runs(*quick_fig6(), *shortcut_runs)
    levels = {"plain20": 1.0, "plain56": 1.2, "resnet20": 0.8, "resnet56": 0.6, "resnet110": 0.5}
    found = verdicts(runs, toy_layer_std(runs[runs.arch.isin(levels)], levels))
    assert found["Table 3"] == claims.HOLDS and found["Figure 7"] == claims.HOLDS
    table = tables.shortcut_table(runs).set_index("net")
    assert list(table.seeds) == [3, 3, 3, 3, 3, 3] and "±" in table.loc["ResNet-56 B", "test_error"]


def test_a_claim_never_compares_runs_of_different_budgets():
    # plain-20 trained long and short, plain-56 only short: compared at quick, where both exist
    runs = toy_runs(
        run_row("plain20", train=1.0, test=5.0, budget="full"),
        run_row("plain20", train=5.0, test=9.0, budget="quick"),
        run_row("plain56", train=8.0, test=12.0, budget="quick"),
    )
    check = claims.check_degradation(runs)
    assert check.status == claims.HOLDS and check.note == "quick · cifar10 · test device"
    # runs at different budgets only: no comparison, and the command trains the missing partner
    lone = toy_runs(run_row("plain20", budget="full"), run_row("plain56", budget="quick"))
    check = claims.check_degradation(lone)
    assert (
        check.status == claims.NO_RUN
        and check.note == "`python -m resnet_repro reproduce fig1 --budget full`"
    )


def test_budget_text_relates_the_length_to_the_papers_schedule():
    assert "1/8" in notes.budget_text("quick", 8000) and "5/16" in notes.budget_text("quick-20000it", 20000)
    assert "1/8" not in notes.budget_text("full", 64000, short=True)  # the paper's own schedule


def test_results_overview_counts_runs_and_lists_what_is_missing_with_commands():
    runs = toy_runs(*quick_fig6())
    text = notes.results_overview(runs)
    assert "**9 finished runs**" in text and "ResNet-20 B, ResNet-20 C, ResNet-56 B, ResNet-56 C" in text
    assert text.endswith("`python -m resnet_repro reproduce shortcuts --budget quick` trains them.")
    empty = notes.results_overview(EMPTY_RUNS)
    assert empty.endswith("`python -m resnet_repro reproduce fig6 shortcuts --budget quick` trains them.")


def test_the_page_names_shared_runs_once_above_the_status_table():
    status = claims.claims_status(toy_runs(*quick_fig6()), EMPTY_LAYER_STD)
    table, note = claims.status_for_page(status)
    assert note.endswith("quick · cifar10-jpeg · test device.")
    by_source = table.set_index("source").runs
    assert by_source["Figure 1"] == claims.SAME_RUNS
    assert table[table.claim.str.startswith("ResNet-152")].runs.item() == claims.COUNTED  # Section 4.1
    assert by_source["Table 3"].startswith(
        "`python -m resnet_repro reproduce shortcuts"
    )  # no run: the command
    mixed = toy_runs(*quick_fig6(), run_row("resnet110", budget="full", dataset="cifar10-jpeg"))
    table, note = claims.status_for_page(claims.claims_status(mixed, EMPTY_LAYER_STD))
    assert note == "" and table.set_index("source").runs["Table 6"].startswith("full ·")


def test_the_notes_prose_is_the_reviewed_page():
    """The notes of the tests above, on their toy runs, as tests/golden/notes.md holds them."""
    mixed = mixed_budget_runs()
    common = toy_runs(*mixed.iloc[:3].to_dict("records"))
    jpeg_only = figure_runs.select_figure(one_jpeg_run(), "fig1")
    official = figure_runs.select_figure(both_datasets(), "fig1")
    ours = figure_runs.select_figure(both_datasets(official_nets=("plain20",)), "fig1")
    falling = toy_runs(*quick_fig6(plain_train=(8.0, 7.0, 6.0, 5.0), resnet_test=(6.5, 6.8, 7.0, 7.5, 8.5)))
    _, judged_on = claims.status_for_page(claims.claims_status(toy_runs(*quick_fig6()), EMPTY_LAYER_STD))
    assert_golden(
        "notes",
        {
            "provenance: each net's longest budget": notes.provenance_note(
                figure_runs.select_runs(mixed, figure_runs.FIGURES["fig1"][0]), "fig1"
            ),
            "gaps: one budget for a comparison": notes.gaps_note(
                figure_runs.select_figure(common, "fig1"), "fig1"
            ),
            "provenance: a net not run yet, our JPEG copy": notes.provenance_note(jpeg_only, "fig1"),
            "short provenance": notes.short_provenance(jpeg_only),
            "provenance: the official files, ours stored too": notes.provenance_note(official, "fig1"),
            "provenance: ours, the reader's stored too": notes.provenance_note(ours, "fig1"),
            "dataset: JPEG copy": notes.dataset_note("cifar10-jpeg"),
            "dataset: held-out split": notes.dataset_note("cifar10-val5000"),
            "dataset: a folder": notes.dataset_note("my_folder"),
            "degradation: smoke runs": notes.degradation_summary(smoke_pair()),
            "degradation: rising with depth": notes.degradation_summary(plain_rising()),
            "degradation: falling with depth": notes.degradation_summary(falling),
            "budgets": "\n".join(
                [
                    notes.budget_text("quick", 8000),
                    notes.budget_text("full", 64000, short=True),
                    notes.budget_text("quick-20000it", 20000, short=True),
                    notes.budget_text("smoke", 10),
                ]
            ),
            "results overview: Figure 6 at quick": notes.results_overview(toy_runs(*quick_fig6())),
            "results overview: nothing stored": notes.results_overview(EMPTY_RUNS),
            "the status table's shared runs": judged_on,
        },
    )
