"""resnet_repro.book.notebook_parameters: what each chapter's first cell and ci/run_notebooks.py refuse."""

from __future__ import annotations

import pytest

from resnet_repro.book.notebook_parameters import (
    BUDGETS,
    NAMES,
    ParameterError,
    check_names,
    check_parameters,
)
from resnet_repro.runs.config import BUDGETS as TRAINING_BUDGETS


def good(**changes) -> dict:
    return {"budget": "results", "device": "auto", "data": None, "results_dir": ".", **changes}


def refused(**changes) -> str:
    with pytest.raises(ParameterError) as raised:
        check_parameters(**good(**changes))
    return str(raised.value)


def test_the_budgets_are_results_then_the_training_budgets():
    assert BUDGETS[0] == "results" and BUDGETS[1:] == TRAINING_BUDGETS
    assert NAMES == ("budget", "device", "data", "results_dir")


def test_good_parameters_pass(tmp_path):
    check_parameters(**good())
    check_parameters(
        **good(budget="smoke", device="cpu", data=str(tmp_path), results_dir=str(tmp_path / "new"))
    )
    (tmp_path / "runs").mkdir()
    check_parameters(**good(results_dir="runs"), base=tmp_path)  # relative to base


def test_bad_values_say_what_is_allowed(tmp_path):
    assert refused(budget="fast") == "budget 'fast' is not allowed: use one of results, smoke, quick, full"
    assert refused(device="gpu") == "device 'gpu' is not allowed: use one of auto, cpu, cuda"
    assert refused(results_dir=3) == "results_dir must be a path (a string), got 3"
    assert refused(data=str(tmp_path / "nope")).startswith(f"data '{tmp_path / 'nope'}' does not exist")


def test_a_missing_results_folder_is_an_error_unless_the_budget_trains_into_it(tmp_path):
    missing = str(tmp_path / "missing")
    assert refused(results_dir=missing) == (
        f"results_dir '{missing}' does not exist ({missing}): budget 'results' only reads runs from it; "
        "pass an existing folder, or a budget that trains into it (smoke, quick, full)"
    )
    check_parameters(**good(budget="quick", results_dir=missing))
    (tmp_path / "file").write_text("")
    assert "is not a folder" in refused(budget="quick", results_dir=str(tmp_path / "file"))


def test_an_unknown_name_is_refused_with_the_closest_declared_one():
    check_names(["budget", "results_dir"])
    with pytest.raises(ParameterError, match=r"^unknown parameter 'budjet' \(did you mean 'budget'\?\): the"):
        check_names(["budjet"])
    with pytest.raises(
        ParameterError, match=r"^unknown parameter 'epochs': the chapters take budget, device"
    ):
        check_names(["epochs"])


def test_in_a_notebook_the_error_is_one_line_without_a_traceback():
    assert ParameterError("budget 'fast' is not allowed")._render_traceback_() == [
        "ParameterError: budget 'fast' is not allowed"
    ]


def test_cuda_on_a_machine_without_it_is_refused_before_the_chapter_runs(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    message = refused(device="cuda")
    assert "CUDA is not available here" in message and '"auto" or "cpu"' in message
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    check_parameters(**good(device="cuda"))  # where there is a GPU, cuda is a good value
