"""The command line: `python -m resnet_repro {train,reproduce,status,costs,imagenet,analyze,preflight}`.

Mistakes in the arguments or the data end in one line on stderr and exit status 2, never a traceback
(set RESNET_REPRO_DEBUG=1 to see one). Ctrl-C saves a checkpoint and exits with status 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import sys
import textwrap

from resnet_repro import __version__
from resnet_repro.commands.types import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    OneLineErrorParser,
    SubcommandParser,
    available_device,
    cifar_arch,
    field_flag,
    fraction,
    positive_float,
    positive_int,
    runs_at_once,
    seed_number,
    shard_spec,
)
from resnet_repro.models import SHORTCUT_OPTIONS
from resnet_repro.runs.config import (
    SPEED_FIELDS,
    RunConfig,
)
from resnet_repro.runs.files import DiskFullError, as_disk_full
from resnet_repro.runs.lock import RunLockedError
from resnet_repro.sweeps.experiments import DESCRIPTIONS, EXPERIMENTS

ARCH_METAVAR = "{plain,resnet}DEPTH"
COST_TABLES = {
    "cifar": "CIFAR-10 networks (32x32 input; ResNets with option A)",
    "imagenet": "ImageNet networks of Table 1 (224x224 input)",
}
COST_FORMATS = ("table", "csv", "json")
RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
TRAIN_EPILOG = """\
examples:
  python -m resnet_repro train --arch resnet20 --budget smoke --data path/to/cifar10.tar.gz
  python -m resnet_repro train --arch resnet56 --budget quick          # 8k iterations, official CIFAR-10
  python -m resnet_repro train --arch plain56 --budget full --seed 1   # the paper's 64k iterations
  python -m resnet_repro train --arch resnet110 --iterations 20000 --val-split   # 45k/5k split

Results go to <out>/<budget>/<run>/ (history.csv, run.json, layer_std.csv). Rerunning the same
command resumes an interrupted run, and does nothing for a finished one unless --force.
"""

REPRODUCE_EPILOG = "experiments:\n" + "".join(f"  {name:10s} {text}\n" for name, text in DESCRIPTIONS.items())
REPRODUCE_EPILOG += """
examples:
  python -m resnet_repro reproduce fig1 --budget smoke --data path/to/cifar10.tar.gz
  python -m resnet_repro reproduce fig6 --budget quick
  python -m resnet_repro reproduce table6 --budget full --seeds 5 --include-1202
  python -m resnet_repro reproduce fig7 --dry-run      # which runs exist, which would train

Runs are shared between experiments: fig7 reuses the runs of fig1 and fig6.
"""

COSTS_EPILOG = """\
examples:
  python -m resnet_repro costs                # CIFAR-10 nets and the ImageNet nets of Table 1
  python -m resnet_repro costs --only imagenet
  python -m resnet_repro costs --format csv > costs.csv   # plain counts, one row per network
"""

STATUS_EPILOG = """\
examples:
  python -m resnet_repro status                       # the committed runs (data/results)
  python -m resnet_repro status --results my-runs/    # runs trained with --out my-runs/

The table is the one the book's introduction shows, computed by the same code from the same folder.
"""


def _field_flag(group, name: str, note: str = "", **parsing) -> None:
    field_flag(group, RunConfig, name, note, **parsing)


def _run_options() -> argparse.ArgumentParser:
    """Options that train and reproduce share."""
    parent = argparse.ArgumentParser(add_help=False)
    run = parent.add_argument_group("run")
    _field_flag(run, "budget")
    _field_flag(run, "iterations", type=positive_int, metavar="N")
    _field_flag(run, "quick_factor", type=fraction, metavar="F")
    _field_flag(run, "data", metavar="PATH")
    run.add_argument("--out", metavar="DIR", help="results folder (default: data/results in the repository)")
    _field_flag(run, "device", type=available_device)
    _field_flag(
        run, "val_split", "--val-split alone: 5000", type=positive_int, nargs="?", const=5000, metavar="N"
    )
    _field_flag(run, "eval_points", type=positive_int, metavar="K")
    run.add_argument("--force", action="store_true", help="train again even if the run has finished")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    speed = parent.add_argument_group("speed (none changes the algorithm; auto = what helps on the device)")
    for name in SPEED_FIELDS:
        _field_flag(speed, name)
    speed.add_argument("--no-speedups", action="store_true", help="turn every speed option off")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m resnet_repro",
        description="Reproduce He et al. (2015), Deep Residual Learning, on CIFAR-10: train the paper's "
        "networks with its recipe, run its experiments, count their costs, check its claims against the "
        "stored runs.",
        epilog="Run `python -m resnet_repro COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=SubcommandParser, required=True
    )
    run_options = _run_options()
    formatter = argparse.RawDescriptionHelpFormatter

    train = commands.add_parser(
        "train",
        parents=[run_options],
        help="train one network",
        description="Train one CIFAR-10 network with the paper's recipe (section 4.2).",
        epilog=TRAIN_EPILOG,
        formatter_class=formatter,
    )
    _field_flag(train, "arch", type=cifar_arch, required=True, metavar=ARCH_METAVAR)
    _field_flag(train, "shortcut", choices=SHORTCUT_OPTIONS)
    _field_flag(train, "seed", type=seed_number)

    reproduce = commands.add_parser(
        "reproduce",
        parents=[run_options],
        help="train named experiments' runs (skips finished ones)",
        description="Train every run of the paper's CIFAR-10 experiments named that is not finished yet.",
        epilog=REPRODUCE_EPILOG,
        formatter_class=formatter,
    )
    reproduce.add_argument(
        "experiments",
        nargs="+",
        choices=list(EXPERIMENTS),
        metavar="EXPERIMENT",
        help=f"one or more of {', '.join(EXPERIMENTS)} (see below); shared runs train once",
    )
    reproduce.add_argument(
        "--seeds", type=positive_int, default=1, metavar="K", help="seeds 0..K-1 (default 1)"
    )
    reproduce.add_argument("--include-1202", action="store_true", help="also ResNet-1202 (fig6, table6)")
    reproduce.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done")
    sweep = reproduce.add_argument_group("sweeps on GPUs")
    sweep.add_argument(
        "--per-gpu",
        type=runs_at_once,
        default=None,
        metavar="K",
        help="train K runs at once on each visible GPU, or on the CPU without one (each on its share of "
        "the cores), as subprocesses with logs in <out>/logs/ (small nets leave a big GPU idle; several GPUs "
        "are always all used); default auto: 1 on a GPU, on a CPU the layout its committed benchmark "
        "(benchmarks/cpu_parallel_runs.py) found fastest, else 1",
    )
    sweep.add_argument(
        "--shard",
        type=shard_spec,
        metavar="K/N",
        help="train only the K-th of N disjoint slices of the runs (one per node); merge run folders after",
    )
    sweep.add_argument(
        "--minutes",
        type=positive_float,
        metavar="M",
        help="stop after M minutes: running runs save a checkpoint (the same command resumes them), and "
        "runs that cannot finish in the time left (judged from finished runs of the same network) are not "
        "started",
    )

    sweep.add_argument(
        "--in-process",
        action="store_true",
        help="train the runs in this one process, --per-gpu at a time, each in its own thread and CUDA "
        "stream, so their kernels overlap (separate processes take turns on a GPU)",
    )
    sweep.add_argument(
        "--compile-cache",
        metavar="FILE",
        help="with --in-process: load torch.compile's caches from FILE first (if it exists) and save them "
        "there at the end, so the next session does not compile again",
    )

    costs = commands.add_parser(
        "costs",
        help="parameters and multiply-adds of the paper's networks",
        description="Parameter and multiply-add (the paper's FLOPs) counts, beside the paper's numbers.",
        epilog=COSTS_EPILOG,
        formatter_class=formatter,
    )
    costs.add_argument("--only", choices=tuple(COST_TABLES), help="one of the two tables")
    costs.add_argument(
        "--format",
        choices=COST_FORMATS,
        default="table",
        help="table: as the paper writes them (M, G); csv or json: the plain counts, one row per network "
        "with its table (default table)",
    )

    status = commands.add_parser(
        "status",
        help="the paper's claims and whether our stored runs support them",
        description="The book introduction's table: each claim of the paper we test, the paper's number, "
        "ours, the verdict, and for a claim without runs the command that trains them; then how long the "
        "stored runs took.",
        epilog=STATUS_EPILOG,
        formatter_class=formatter,
    )
    status.add_argument(
        "--results", metavar="DIR", help="results folder (default: data/results in the repository)"
    )
    from resnet_repro.commands.imagenet import add_imagenet_parser
    from resnet_repro.gpu.preflight import add_parser as add_preflight_parser

    add_imagenet_parser(commands)
    from resnet_repro.commands.analyze import add_analyze_parser

    add_analyze_parser(commands)
    add_preflight_parser(commands)
    return parser


def _config_fields(args: argparse.Namespace, leave_out=()) -> dict:
    """The RunConfig fields the command line has flags for (all of them for train); --no-speedups turns
    every speed option off."""
    values = {
        name: getattr(args, name) for name in RUN_FIELDS if hasattr(args, name) and name not in leave_out
    }
    if args.no_speedups:
        values.update(dict.fromkeys(SPEED_FIELDS, "off"))
    return values


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run a parsed `train` command line asks for."""
    return RunConfig(**_config_fields(args))


def _train(args: argparse.Namespace) -> int:
    from resnet_repro.cifar.trainer import train

    config = config_from_args(args)
    folder = train(config, results_dir=args.out, progress=not args.no_progress, force=args.force)
    print(_summary(folder))
    return 0


SET_BY_NAME = ("budget", "data", "device")  # reproduce's own parameters


def _reproduce(args: argparse.Namespace) -> int:
    from resnet_repro.runs.folders import is_finished
    from resnet_repro.sweeps.experiments import SweepOptions, experiment_folders, reproduce
    from resnet_repro.sweeps.spread import parse_shard, shard

    if args.dry_run:
        folders = experiment_folders(  # on the data given: done on other data is not done
            args.experiments,
            args.budget,
            args.out,
            args.seeds,
            args.include_1202,
            data=args.data,
            **_config_fields(args, leave_out=SET_BY_NAME),
        )
        if args.shard:
            folders = shard(folders, *parse_shard(args.shard))
        for folder in folders:
            print(f"{'done   ' if is_finished(folder) else 'to train'}  {folder}")
        return 0
    sweep = SweepOptions(
        results_dir=args.out,
        progress=not args.no_progress,
        force=args.force,
        per_gpu=args.per_gpu,
        shard=args.shard,
        minutes=args.minutes,
        in_process=args.in_process,
        compile_cache=args.compile_cache,
    )
    folders = reproduce(
        args.experiments,
        args.budget,
        args.seeds,
        args.include_1202,
        sweep,
        data=args.data,
        device=args.device,
        **_config_fields(args, leave_out=SET_BY_NAME),
    )
    unfinished = [folder for folder in folders if not is_finished(folder)]
    for folder in folders:
        print(f"{folder.name}: not finished -> {folder}" if folder in unfinished else _summary(folder))
    if unfinished:
        print(f"{len(unfinished)} runs not finished: run the same command again to train (or resume) them")
        return EXIT_INTERRUPTED
    return 0


def _summary(folder) -> str:
    """One line per finished run: its errors, length and time, and where it is."""
    from resnet_repro.runs.files import read_run_record

    record = read_run_record(folder)
    minutes, seconds = divmod(round(record["wall_time_s"]), 60)
    errors = f"test error {record['final_test_error']:.2f}% (train {record['final_train_error']:.2f}%)"
    length = f"{record['budget']['iterations']:,} iterations in {minutes}:{seconds:02d} min"
    return f"{folder.name}: {errors} after {length} -> {folder}"


def _cost_table(key: str):
    from resnet_repro.book.cost_tables import (  # the tables of the book's cost chapter
        CIFAR_NETS,
        cifar_costs,
        imagenet_costs,
    )

    if key == "cifar":
        return cifar_costs((*CIFAR_NETS, "ResNet-1202"))  # every network the paper trains on CIFAR-10
    return imagenet_costs()


def _costs(args: argparse.Namespace) -> int:
    tables = {key: _cost_table(key) for key in COST_TABLES if args.only in (None, key)}
    if args.format == "table":
        for key, table in tables.items():
            print(f"{COST_TABLES[key]}\n{_format_costs(table).to_string(index=False)}\n")
        print("macs = multiply-adds of one forward pass (the paper's FLOPs); paper_* = the paper's figures")
        return 0
    import pandas as pd

    rows = pd.concat([table.assign(table=key) for key, table in tables.items()], ignore_index=True)
    rows = rows[["table", *rows.columns.drop("table")]].convert_dtypes()  # whole counts print as integers
    text = rows.to_csv(index=False) if args.format == "csv" else rows.to_json(orient="records", indent=2)
    print(text.rstrip("\n"))
    return 0


def _format_costs(table):
    """Millions of parameters and millions/billions of multiply-adds, as the paper writes them."""
    table = table.copy()
    for column in [c for c in table.columns if c.endswith("params")]:
        table[column] = table[column].map(lambda v: "" if v != v else f"{v / 1e6:.2f}M")  # v != v: NaN
    for column in [c for c in table.columns if c.endswith("macs")]:
        table[column] = table[column].map(
            lambda v: "" if v != v else f"{v / 1e9:.2f}G" if v >= 1e9 else f"{v / 1e6:.1f}M"
        )
    return table


def _status(args: argparse.Namespace) -> int:
    from resnet_repro.book import claims, notes, provenance
    from resnet_repro.book.tables import for_display
    from resnet_repro.runs.loaders import load_runs

    runs = load_runs(args.results)
    table, judged_on = claims.status_for_page(claims.stored_claims_status(args.results, runs))
    width = min(shutil.get_terminal_size().columns, 110)
    for paragraph in (notes.results_overview(runs), judged_on):
        if paragraph:
            print(f"{_terminal_text(paragraph, width)}\n")
    print(f"{_claims_text(table, width)}\n")
    print(_terminal_text(notes.training_time_note(runs), width))
    times = provenance.training_times(runs)
    if not times.empty:
        print(
            f"\n{for_display(times.assign(wall_time_min=times.wall_time_min.round(1))).to_string(index=False)}"
        )
    return 0


NO_BREAK = "\xa0"  # textwrap does not break at it: a command stays whole on one line, to be copied


def _terminal_text(markdown: str, width: int, indent: str = "", first_indent: str | None = None) -> str:
    """The pages' Markdown as terminal text, wrapped: no bold, no code marks, and no line break inside
    what was code."""
    text = re.sub(r"`([^`]*)`", lambda code: code[1].replace(" ", NO_BREAK), markdown.replace("**", ""))
    first = indent if first_indent is None else first_indent
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(lines).replace(NO_BREAK, " ")


def _claims_text(table, width: int) -> str:
    """One block per claim: the verdict and the claim, then its other columns under the page's headers."""
    from resnet_repro.book.tables import DISPLAY_NAMES

    indent = " " * (max(len(verdict) for verdict in table.status) + 2)
    blocks = []
    for row in table.to_dict("records"):
        lines = [_terminal_text(row["claim"], width, indent, first_indent=row["status"].ljust(len(indent)))]
        for column, value in row.items():
            if column not in ("claim", "status") and value:
                field = f"{DISPLAY_NAMES.get(column, column)}: {value}"
                lines.append(_terminal_text(field, width, indent + "  ", first_indent=indent))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _imagenet(args: argparse.Namespace) -> int:
    from resnet_repro.commands.imagenet import run_imagenet

    return run_imagenet(args)


def _analyze(args: argparse.Namespace) -> int:
    from resnet_repro.commands.analyze import run_analyze

    return run_analyze(args)


def _preflight(args: argparse.Namespace) -> int:
    from resnet_repro.gpu.preflight import run_command

    return run_command(args)


COMMANDS = {
    "train": _train,
    "reproduce": _reproduce,
    "costs": _costs,
    "status": _status,
    "imagenet": _imagenet,
    "analyze": _analyze,
    "preflight": _preflight,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # imports torch to check --arch: Ctrl-C may come here
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # the trainer has said where it saved
    except BrokenPipeError:  # `... | head` stopped reading: nothing went wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would fail
        return 0
    # RunLockedError: another process trains the run; DataError is a ValueError.
    except (RunLockedError, ValueError, OSError, RuntimeError) as err:
        if os.environ.get("RESNET_REPRO_DEBUG"):
            raise
        if not isinstance(err, DiskFullError):  # a full disk outside results.atomic_write: a log, a lock
            err = as_disk_full(err, getattr(err, "filename", None) or "a file") or err
        message = " ".join(str(err).split())  # one line, whatever the exception put in it
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
