"""`python -m resnet_repro analyze ...`: analyses of finished runs' stored weights, cached in the runs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from resnet_repro.analyses.landscape import LandscapeSettings
from resnet_repro.commands.types import SubcommandParser, available_device
from resnet_repro.runs.config import DEVICES

ANALYZE_EPILOG = """\
analyses:
  lesion     remove one block at a time and measure the test error (writes lesion.csv into the run)
  landscape  the training loss around the trained weights, Li et al.'s way (writes landscape.csv)

examples:
  python -m resnet_repro analyze lesion data/results/cifar10-jpeg/quick/{resnet56-A,plain56}-seed0
  python -m resnet_repro analyze lesion data/results/cifar10-jpeg/quick/*-seed0 --data my/cifar10-jpeg.tar.gz
  python -m resnet_repro analyze lesion data/results/cifar10/quick/*-seed0   # your runs on the official files
  python -m resnet_repro analyze landscape data/results/cifar10-jpeg/quick/resnet20-A-seed0 --check-fp32

A run folder whose lesion.csv (landscape.csv) was computed from its current weights (and settings) is
skipped unless --force.
"""

LANDSCAPE_EPILOG = """\
Li, Xu, Taylor, Studer and Goldstein (NeurIPS 2018): two random Gaussian directions, each filter scaled to
the norm of the same filter of the trained weights; batch-norm parameters and biases stay, batch norm uses
the trained running statistics. The mean cross-entropy and the error at theta* + a*delta + b*eta on a grid,
and along delta alone, on the run's first training images of each class (unaugmented).
Time: (points^2 + slice points) passes over the images; the points done are saved after every grid row,
so the same command goes on after an interruption.
"""


def _add_common_options(parser, cached: str) -> None:
    """The options every analysis takes: the runs, their data, device, precision, --force, progress."""
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_FOLDER", help="finished run folders")
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="the runs' dataset, if no longer where they recorded it (checked against its sha256)",
    )
    parser.add_argument(
        "--device", type=available_device, choices=DEVICES, default="auto", help="auto = CUDA if available"
    )
    parser.add_argument(
        "--amp",
        choices=("auto", "on", "off"),
        default="auto",
        help="bf16 autocast (auto: on CUDA and on CPUs with bf16 instructions)",
    )
    parser.add_argument("--force", action="store_true", help=f"recompute even where {cached} is current")
    parser.add_argument("--no-progress", action="store_true", help="no progress messages")


LESION_EPILOG = """\
ResNet blocks keep their shortcut (y = ReLU(shortcut(x)): the residual function set to zero); a plain
net's pair of 3x3 layers becomes the identity where the block keeps its input's shape. Each run's own test
set is used, normalized with its training set's per-pixel mean, in bf16 where the device supports it.
Time: about N/2 + 1 passes over the 10,000 test images for a net of N blocks (ResNet-56: 27 blocks).
"""


def add_analyze_parser(commands) -> None:
    """The `analyze` command and its analyses, on the main parser's subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    analyze = commands.add_parser(
        "analyze",
        help="analyses of finished runs' stored weights (e.g. the lesion study)",
        description="Analyses of finished runs, from their stored weights; results go into the run folders.",
        epilog=ANALYZE_EPILOG,
        formatter_class=formatter,
    )
    analyses = analyze.add_subparsers(  # one-line errors, as every other command
        dest="analysis", metavar="ANALYSIS", parser_class=SubcommandParser, required=True
    )
    lesion = analyses.add_parser(
        "lesion",
        help="test error with each block removed in turn (lesion.csv)",
        description="Remove one block at a time from each run's trained net, evaluate it on the test set, "
        "and write lesion.csv into the run folder.",
        epilog=LESION_EPILOG,
        formatter_class=formatter,
    )
    _add_common_options(lesion, "lesion.csv")
    landscape = analyses.add_parser(
        "landscape",
        help="the loss on a plane around the trained weights (landscape.csv)",
        description="Evaluate each run's training loss and error at theta* + a*delta + b*eta on a grid of "
        "(a, b), delta and eta random filter-normalised directions, and write landscape.csv into the run.",
        epilog=LANDSCAPE_EPILOG,
        formatter_class=formatter,
    )
    _add_common_options(landscape, "landscape.csv")
    defaults = LandscapeSettings()
    numbers = {  # option: (type, help); every default is LandscapeSettings'
        "points": (int, "grid points per axis, odd"),
        "span": (float, "alpha and beta from -SPAN to SPAN"),
        "slice_points": (int, "points along delta alone, odd"),
        "images": (int, "training images, as many of each class"),
        "seed": (int, "seed of the two directions"),
    }
    for name, (kind, text) in numbers.items():
        option = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        landscape.add_argument(option, type=kind, default=default, help=f"{text} (default {default})")
    landscape.add_argument(
        "--check-fp32",
        action="store_true",
        help="also evaluate the grid row b = 0 in fp32, and print how far bf16 is from it",
    )
    landscape.add_argument(
        "--check-subset",
        action="store_true",
        help="also evaluate every other grid point on twice the images, and print how far the surface moves",
    )
    landscape.add_argument("--compile", action="store_true", help="evaluate through torch.compile")


def run_analyze(args: argparse.Namespace) -> int:
    return _run_landscape(args) if args.analysis == "landscape" else _run_lesion(args)


def _run_lesion(args: argparse.Namespace) -> int:
    from resnet_repro.analyses import lesion

    for folder in args.runs:
        started = time.perf_counter()
        if not args.no_progress:
            print(f"{folder}: lesion study ...", flush=True)
        path, computed = lesion.analyze_run(
            folder, data=args.data, device=args.device, amp=args.amp, force=args.force,
            progress=not args.no_progress,
        )  # fmt: skip
        took = f"computed in {time.perf_counter() - started:.0f} s" if computed else "cached, not recomputed"
        print(f"{lesion.summary_line(path.parent)} [{took}]", flush=True)
    return 0


def _run_landscape(args: argparse.Namespace) -> int:
    import pandas as pd

    from resnet_repro.analyses import landscape
    from resnet_repro.book import readings
    from resnet_repro.runs.folders import LANDSCAPE_FILE

    settings = LandscapeSettings(
        points=args.points, span=args.span, slice_points=args.slice_points, images=args.images,
        seed=args.seed, check_fp32=args.check_fp32, check_subset=args.check_subset,
    )  # fmt: skip
    for folder in args.runs:
        started = time.perf_counter()
        if not args.no_progress:
            print(f"{folder}: loss landscape ...", flush=True)
        path, evaluated = landscape.analyze_run(
            folder, settings, data=args.data, device=args.device, amp=args.amp, compiled=args.compile,
            force=args.force, progress=not args.no_progress,
        )  # fmt: skip
        took = (
            f"{evaluated} points evaluated in {time.perf_counter() - started:.0f} s"
            if evaluated
            else "cached, not recomputed"
        )
        print(f"{landscape.summary_line(path.parent)} [{took}]", flush=True)
        table = pd.read_csv(Path(folder) / LANDSCAPE_FILE)
        gap, subset = readings.precision_gap(table), readings.subset_gap(table)
        if gap is not None:
            print(f"  {readings.precision_gap_text(gap)}", flush=True)
        if subset is not None:
            print(f"  {readings.subset_gap_text(subset)}", flush=True)
    return 0
