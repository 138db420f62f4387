"""`python -m resnet_repro`: help a newcomer can follow, one-line errors, the commands end to end."""

import csv
import errno
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_repro import __version__
from resnet_repro.book import claims
from resnet_repro.book.provenance import train_command
from resnet_repro.cifar.loop import resolve_speed
from resnet_repro.commands import cli
from resnet_repro.commands.cli import build_parser, config_from_args, main
from resnet_repro.runs.config import RunConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [[], ["train"], ["reproduce"], ["costs"]])
def test_help_explains_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m resnet_repro" in out
    assert ("examples:" in out) == bool(command)  # every command's help ends with examples
    if command == ["reproduce"]:
        assert all(name in out for name in ("fig1", "fig6", "table6", "shortcuts", "fig7"))


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["train", "--arch", "resnet21"], ["6n+2"]),
        (["train", "--arch", "vgg16"], ["'plain' or 'resnet'"]),
        (["train", "--arch", "resnet20", "--budget", "huge"], ["smoke", "quick", "full"]),
        (["train", "--arch", "resnet20", "--shortcut", "D"], ["choose from", "A", "B", "C"]),
        (["train", "--arch", "resnet20", "--iterations", "0"], ["positive integer"]),
        (["train", "--arch", "resnet20", "--device", "tpu"], ["auto", "cpu", "cuda"]),
        (["train"], ["--arch"]),
        (["reproduce", "fig99"], ["fig1", "fig6", "table6", "shortcuts", "fig7"]),
        (["reproduce", "fig1", "--seeds", "-1"], ["positive integer"]),
        (["train", "--arch", "resnet20", "--seed=-1"], ["--seed", "from 0 to 2**63-1"]),
        (["train", "--arch", "resnet20", "--seed", str(2**64)], ["--seed", "from 0 to 2**63-1"]),
        (["frobnicate"], ["train", "reproduce", "costs"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line_saying_what_is_allowed(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(word in err for word in says), err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["train", "--arch", "plain20", "--shortcut", "B"], "plain net and has no shortcuts"),
        (["train", "--arch", "resnet20", "--data", "/no/such/cifar.tar.gz"], "/no/such/cifar.tar.gz"),
    ],
)
def test_config_and_data_errors_are_one_line_without_traceback(argv, says, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err


def test_ctrl_c_exits_130(monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("resnet_repro.cifar.trainer.train", interrupted)
    assert main(["train", "--arch", "resnet20", "--out", str(tmp_path)]) == 130


def test_no_speedups_turns_every_speed_option_off(monkeypatch, tmp_path):
    seen = {}

    def capture(config, **kwargs):
        seen["config"] = config
        raise KeyboardInterrupt

    monkeypatch.setattr("resnet_repro.cifar.trainer.train", capture)
    main(["train", "--arch", "resnet20", "--no-speedups", "--out", str(tmp_path)])
    config = seen["config"]
    assert {config.channels_last, config.amp, config.compile, config.data_on_device} == {"off"}


@pytest.mark.parametrize(
    "config",
    [
        RunConfig(arch="resnet20"),
        RunConfig(arch="plain56", budget="full", seed=4),
        RunConfig(arch="resnet110", shortcut="C", budget="smoke", iterations=12, eval_points=7, device="cpu"),
        RunConfig(arch="resnet32", shortcut="B", quick_factor=0.3, val_split=5000, data="/my data/c10.tgz"),
        RunConfig(arch="resnet56", amp="off", compile="max-autotune", cuda_graph="on", cudnn_benchmark="on"),
        RunConfig(arch="resnet44", eval_points=50, budget="smoke", seed=2**63 - 1),
    ],
)
def test_the_recorded_train_command_parses_back_to_the_same_config(config):
    """The command the book prints for a run (from its run.json) trains that very run again."""
    words = shlex.split(train_command(config.to_dict()))
    program, argv = words[:3], words[3:]
    assert program == ["python", "-m", "resnet_repro"]
    assert config_from_args(build_parser().parse_args(argv)) == config


def test_reproduce_dry_run_lists_the_runs(tmp_path, capsys):
    assert main(["reproduce", "fig7", "--budget", "smoke", "--out", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(line.startswith("to train") for line in lines)
    assert str(tmp_path / "cifar10" / "smoke" / "resnet110-A-seed0") in lines[-1]


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "resnet_repro", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "reproduce" in result.stdout


# `python -m resnet_repro train --arch resnet8` with a Ctrl-C (a real SIGINT) arriving as argv[1] is
# imported.
CTRL_C_WHILE_IMPORTING = """
import builtins, runpy, signal, sys
target, real_import = sys.argv[1], builtins.__import__
def ctrl_c_on_target(name, globals=None, locals=None, fromlist=(), level=0):
    if name == target:
        signal.raise_signal(signal.SIGINT)
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = ctrl_c_on_target
sys.argv = ["resnet_repro", "train", "--arch", "resnet8", "--out", sys.argv[2]]
runpy.run_module("resnet_repro", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module", ["cli", "torch", "numpy"])  # the entry point's import, and in it
def test_ctrl_c_while_importing_exits_130_without_a_traceback(module, tmp_path):
    command = [sys.executable, "-c", CTRL_C_WHILE_IMPORTING, module, str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr


def test_costs_lists_every_cifar_network_of_the_paper_including_resnet_1202(monkeypatch, capsys):
    import pandas as pd

    monkeypatch.setattr(
        "resnet_repro.book.cost_tables.cifar_costs", lambda names: pd.DataFrame({"name": names})
    )
    assert main(["costs", "--only", "cifar"]) == 0
    out = capsys.readouterr().out
    assert "ResNet-110" in out and "ResNet-1202" in out


@pytest.mark.slow
def test_costs_prints_the_cifar_table_with_the_papers_numbers(capsys):
    assert main(["costs", "--only", "cifar"]) == 0
    out = capsys.readouterr().out
    assert "ResNet-110" in out and "0.27M" in out and "ImageNet" not in out
    assert "ResNet-1202" in out and "19.42M" in out


@pytest.mark.slow
def test_train_smoke_end_to_end_on_the_shared_archive_then_rerun_is_a_no_op(shared_archive, tmp_path, capsys):
    argv = ["train", "--arch", "resnet8", "--budget", "smoke", "--iterations", "2", "--device", "cpu"]
    argv += ["--data", str(shared_archive), "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    assert "resnet8-A-seed0: test error" in capsys.readouterr().out
    folder = tmp_path / "cifar10-jpeg" / "smoke-2it" / "resnet8-A-seed0"
    expected = ["grad_norm.csv", "history.csv", "layer_std.csv", "run.json", "weights.pt"]
    assert sorted(p.name for p in folder.iterdir()) == expected
    before = (folder / "run.json").read_text()
    assert main(argv) == 0
    assert (folder / "run.json").read_text() == before


def test_version_prints_the_packages_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.split() == ["python", "-m", "resnet_repro", __version__]


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("costs", ["--frmat", "json"]),
        ("train", ["--arch", "resnet20", "--epochs", "3"]),
        ("analyze lesion", ["x", "-q"]),
    ],
)
def test_an_unknown_option_is_reported_by_its_own_subcommand(command, arguments, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), *arguments])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"python -m resnet_repro {command}: error: unrecognized arguments: "), err
    assert err.rstrip().endswith(f"(see python -m resnet_repro {command} --help)"), err


def test_costs_writes_csv_and_json_with_plain_counts(monkeypatch, capsys):
    import pandas as pd

    toy = pd.DataFrame({"name": ["ResNet-20"], "params": [269722], "paper_params": [270000.0]})
    monkeypatch.setattr("resnet_repro.commands.cli._cost_table", lambda key: toy.assign(name=f"{key} net"))
    assert main(["costs", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["table"], r["name"], r["params"], r["paper_params"]) for r in rows] == [
        ("cifar", "cifar net", "269722", "270000"),
        ("imagenet", "imagenet net", "269722", "270000"),
    ]
    assert main(["costs", "--only", "imagenet", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"table": "imagenet", "name": "imagenet net", "params": 269722, "paper_params": 270000}
    ]


def option_help(command: str, option: str) -> str:
    """The help text of one option of `python -m resnet_repro COMMAND`."""
    parser = build_parser()
    subcommand = parser._subparsers._group_actions[0].choices[command]
    return next(a for a in subcommand._actions if option in a.option_strings).help


def test_the_help_of_the_speed_options_states_default_and_auto_once():
    for option in ("--cuda-graph", "--amp", "--compile", "--channels-last"):
        text = option_help("train", option)
        assert text.count("(") == 1 and text.count("default") - text.count("'default'") == 1, text
    assert "CPU" in option_help("train", "--compile")  # resolve_speed compiles long CPU runs too
    assert resolve_speed(RunConfig(arch="resnet20"), torch.device("cpu"), 8000).compile == "default"


def test_any_6n_plus_2_depth_is_in_the_usage_and_accepted():
    usage = build_parser()._subparsers._group_actions[0].choices["train"].format_usage()
    assert "{20,32,44,56,110,1202}" not in usage and "DEPTH" in usage
    assert build_parser().parse_args(["train", "--arch", "resnet26"]).arch == "resnet26"


def test_no_help_names_a_file_only_this_projects_machines_have(capsys):
    for command in (["train"], ["reproduce"], ["analyze", "lesion"], ["costs"], ["status"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "shared/data" not in capsys.readouterr().out


def test_cuda_without_cuda_stops_at_the_argument_before_any_folder_is_made(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    for argv in (["train", "--arch", "resnet20"], ["reproduce", "fig1"]):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--device", "cuda", "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1, err
        assert "argument --device: device 'cuda' asked for, but CUDA is not available here" in err
        assert "--device cpu or auto" in err
    assert not (tmp_path / "out").exists()


def test_a_full_disk_outside_the_results_writer_is_still_one_line_naming_the_file(monkeypatch, capsys):
    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/logs/resnet20.log")

    monkeypatch.setitem(cli.COMMANDS, "costs", full)
    assert main(["costs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: /runs/logs/resnet20.log: not written"), err


def test_status_without_runs_gives_every_claim_the_command_that_trains_it_on_one_line(tmp_path, capsys):
    assert main(["status", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "`" not in out and "**" not in out  # the page's Markdown, as terminal text
    lines = [line.strip() for line in out.splitlines()]
    for row in claims.stored_claims_status(tmp_path).itertuples():
        if row.status == claims.NO_RUN:
            for command in row.runs.split("`")[1::2]:
                assert any(command in line for line in lines), command  # whole on one line, to be copied
    assert "No run is stored yet" in out


def test_status_of_the_committed_runs_is_the_introductions_table(capsys):
    assert main(["status"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    table, judged_on = claims.status_for_page(claims.stored_claims_status())
    assert " ".join(judged_on.split()) in out
    for row in table.itertuples():
        assert f"{row.status} {' '.join(row.claim.split())}" in out and (not row.ours or row.ours in out)


def test_status_reads_the_runs_once_and_draws_nothing(tmp_path):
    # a terminal command: matplotlib (the pages' figures) stays unloaded, and the run folders are read once
    code = (
        "import sys\n"
        "from resnet_repro.runs import loaders\n"
        "calls = []\n"
        "real = loaders.load_runs\n"
        "loaders.load_runs = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
        "from resnet_repro.commands.cli import main\n"
        "assert main(['status']) == 0\n"
        "assert 'matplotlib' not in sys.modules, 'status loaded matplotlib'\n"
        "assert len(calls) == 1, calls\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
