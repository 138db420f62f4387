"""The preflight (preflight.py): fast paths checked against the plain path; what fails is switched off."""

import json

import pytest
import torch
from fakes import fake_cifar

from resnet_repro.commands.cli import main
from resnet_repro.gpu import fast_step
from resnet_repro.gpu.preflight import Disagrees, Verdict, compare_losses, flags, preflight


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small():
    return fake_cifar(n_train=300, n_test=50)


def test_loss_curves_agree_within_the_noise_and_disagree_beyond_it():
    reference = [2.3, 2.1, 1.8, 1.5]
    assert compare_losses(reference, [2.301, 2.11, 1.79, 1.52]) == pytest.approx(0.01, abs=1e-3)
    with pytest.raises(Disagrees, match="first-step"):
        compare_losses(reference, [2.4, 2.1, 1.8, 1.5])  # the same weights and batch must give the same loss
    with pytest.raises(Disagrees, match="mean"):
        compare_losses(reference, [2.3, 2.2, 2.0, 1.9])
    assert compare_losses(reference, [2.3, 2.2, 2.0, 1.9], noise=0.1) > 0  # a noisy device allows more
    with pytest.raises(Disagrees, match="non-finite"):
        compare_losses(reference, [2.3, 2.1, float("nan"), 1.5])
    with pytest.raises(Disagrees, match="3 losses"):
        compare_losses(reference, reference[:3])


def test_a_path_that_fails_is_switched_off_with_one_line_and_the_others_go_on():
    lines = []

    def broken(context):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\n(more)")

    def multirun(context):
        return f"ran after it, with the graph {'on' if context.passed('graph') else 'off'}", {}

    verdicts = preflight(
        "cpu",
        "resnet8",
        4,
        ("compile-cache", "graph", "multirun"),
        report=lines.append,
        checks={"graph": broken, "multirun": multirun},
        data=small(),
    )
    assert [v.ok for v in verdicts.values()] == [True, False, True]
    assert lines[1] == (
        "preflight graph: OFF for this session, failed: RuntimeError: CUDA error: operation not permitted "
        "when stream is capturing (more)"
    )
    assert lines[2] == "preflight multirun: ok (ran after it, with the graph off)"
    assert flags(verdicts) == ["--in-process"]


def test_the_graph_check_passes_on_the_cpu_and_catches_a_wrong_learning_rate(monkeypatch):
    verdicts = preflight("cpu", "resnet8", 4, ("graph",), report=None, data=small())
    assert verdicts["graph"].ok, verdicts["graph"].line
    assert verdicts["graph"].details["mean_loss_difference"] == 0.0  # the CPU: bit for bit

    original = fast_step.StepInputs.set_lr
    monkeypatch.setattr(fast_step.StepInputs, "set_lr", lambda self, lr: original(self, 10 * lr))
    verdicts = preflight("cpu", "resnet8", 4, ("graph",), report=None, data=small())
    assert not verdicts["graph"].ok
    assert verdicts["graph"].line.startswith(
        "preflight graph: OFF for this session, disagrees with the plain path"
    )


def test_flags_follow_the_verdicts():
    def verdicts(**ok):
        return {path.replace("_", "-"): Verdict(path, passed, "") for path, passed in ok.items()}

    assert flags(verdicts(graph=False, multirun=False)) == []
    assert flags(verdicts(graph=True)) == ["--cuda-graph", "auto", "--compile", "off"]
    assert flags(verdicts(graph=True, graph_compile=True)) == ["--cuda-graph", "auto"]
    cached = verdicts(compile_cache=True, multirun=True)
    assert flags(cached, "c.bin") == ["--in-process", "--compile-cache", "c.bin"]
    assert flags(verdicts(compile_cache=False, multirun=True), "c.bin") == ["--in-process"]


def test_the_command_prints_the_options_and_writes_the_verdicts(tmp_path, capsys):
    report = tmp_path / "preflight.json"
    cache = tmp_path / "missing.bin"
    argv = ["preflight", "--device", "cpu", "--paths", "compile-cache", "--compile-cache", str(cache)]
    assert main([*argv, "--json", str(report), "--flags"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "\n"  # no path that changes the sweep passed (there is none among those checked)
    assert "preflight compile-cache: ok (no compile cache at" in captured.err
    record = json.loads(report.read_text())
    assert record["verdicts"][0]["path"] == "compile-cache" and record["flags"] == []
    assert main(["preflight", "--device", "cpu", "--paths", "nonsense"]) == 2
