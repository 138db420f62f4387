"""The learning-rate schedule, the budgets and the run config, on their own (no training)."""

import pytest

from resnet_repro.paper.recipe import WARMUP_LR, eval_iterations, learning_rate, needs_warmup, schedule_for
from resnet_repro.runs.config import RunConfig, resolve_budget


def test_paper_schedule_drops_by_ten_at_32k_and_48k_and_stops_at_64k():
    schedule = schedule_for(64_000)
    assert schedule.iterations == 64_000
    assert schedule.milestones == (32_000, 48_000)
    lrs = {i: learning_rate(i, schedule) for i in (0, 31_999, 32_000, 47_999, 48_000, 63_999)}
    assert lrs == {0: 0.1, 31_999: 0.1, 32_000: 0.01, 47_999: 0.01, 48_000: 0.001, 63_999: 0.001}


def test_quick_budget_scales_every_iteration_count_by_one_eighth():
    quick, full = resolve_budget("quick"), resolve_budget("full")
    assert (quick.iterations, full.iterations) == (8_000, 64_000)
    assert schedule_for(quick.iterations).milestones == tuple(m // 8 for m in schedule_for(64_000).milestones)
    assert (quick.label, full.label, quick.subset, full.subset) == ("quick", "full", None, None)


def test_other_quick_factors_and_explicit_iterations_get_their_own_label():
    assert resolve_budget("quick", quick_factor=0.25).iterations == 16_000
    assert resolve_budget("quick", quick_factor=0.25).label == "quick-16000it"
    custom = resolve_budget("full", iterations=1_000)
    assert (custom.iterations, custom.label) == (1_000, "full-1000it")
    assert schedule_for(1_000).milestones == (500, 750)  # 50% and 75%
    assert resolve_budget("full", iterations=64_000).label == "full"  # the standard length keeps the name


def test_smoke_budget_is_a_few_iterations_on_a_small_class_balanced_subset():
    smoke = resolve_budget("smoke")
    assert smoke.iterations <= 20
    assert smoke.subset == (1000, 500)
    assert RunConfig(budget="smoke").eval_points <= 5


def test_unknown_budget_says_what_is_allowed():
    with pytest.raises(ValueError, match="smoke, quick, full"):
        resolve_budget("long")


def test_warmup_only_for_110_layers_and_deeper():
    assert [needs_warmup(d) for d in (20, 56, 110, 1202)] == [False, False, True, True]
    assert RunConfig(arch="resnet110").schedule().warmup_lr == WARMUP_LR
    assert RunConfig(arch="resnet56").schedule().warmup_lr is None


def test_warmup_holds_001_until_it_ends_then_follows_the_schedule():
    schedule = schedule_for(64_000, warmup=True)
    assert learning_rate(0, schedule) == 0.01
    assert learning_rate(5_000, schedule) == 0.01  # not ended yet: still warming up
    assert learning_rate(399, schedule, warmup_ended_at=400) == 0.01
    assert learning_rate(400, schedule, warmup_ended_at=400) == 0.1  # "then back to 0.1"
    assert learning_rate(40_000, schedule, warmup_ended_at=400) == 0.01
    # A run too short to leave the warm-up still takes the schedule's drops.
    assert learning_rate(50_000, schedule) == 0.001


def test_learning_rate_rejects_negative_iterations():
    with pytest.raises(ValueError):
        learning_rate(-1, schedule_for(10))


@pytest.mark.parametrize(
    ("iterations", "points"), [(64_000, 50), (8_000, 50), (10, 2), (10, 50), (7, 3), (12, 5)]
)
def test_eval_points_are_increasing_and_end_at_the_last_iteration(iterations, points):
    its = eval_iterations(iterations, points)
    assert len(its) == min(points, iterations)
    assert its[-1] == iterations
    assert all(0 < a < b for a, b in zip(its, its[1:], strict=False))


def test_eval_points_of_the_paper_schedule_are_evenly_spaced():
    assert eval_iterations(64_000, 50) == tuple(range(1_280, 64_001, 1_280))


def test_config_defaults_follow_the_paper():
    resnet, plain = RunConfig(arch="resnet56"), RunConfig(arch="plain56")
    assert (resnet.shortcut, plain.shortcut) == ("A", "-")
    assert (resnet.budget, resnet.eval_points, resnet.val_split, resnet.device) == ("quick", 50, 0, "auto")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"arch": "resnet21"}, "6n\\+2"),
        ({"arch": "plain20", "shortcut": "B"}, "no shortcuts"),
        ({"shortcut": "D"}, "A, B, C"),
        ({"budget": "long"}, "smoke, quick, full"),
        ({"device": "tpu"}, "auto, cpu, cuda"),
        ({"compile": "yes"}, "auto, off, default"),
        ({"amp": True}, "amp must be str"),
        ({"seed": 1.5}, "seed must be int"),
        ({"iterations": 0}, "iterations must be >= 1"),
        ({"val_split": -1}, "val_split"),
        ({"eval_points": 0}, "eval_points"),
    ],
)
def test_bad_config_values_are_refused_with_what_is_allowed(fields, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**fields)


def test_unknown_config_keys_are_refused():
    with pytest.raises(ValueError, match="unknown config field.*learning_rate"):
        RunConfig.from_dict({"arch": "resnet20", "learning_rate": 0.2})


def test_result_identity_ignores_device_and_speed_options():
    fast = RunConfig(arch="resnet20", device="cpu", compile="off", amp="on")
    assert fast.result_identity() == RunConfig(arch="resnet20").result_identity()
    assert (
        RunConfig(arch="resnet20", seed=1).result_identity() != RunConfig(arch="resnet20").result_identity()
    )
