"""`python -m resnet_repro analyze ...`: analyses of finished runs' stored weights, cached in the runs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .cli_types import OneLineErrorParser
from .config import DEVICES

ANALYZE_EPILOG = """\
analyses:
  lesion     remove one block at a time and measure the test error (writes lesion.csv into the run)

examples:
  python -m resnet_repro analyze lesion data/results/quick/resnet56-A-seed0 data/results/quick/plain56-seed0
  python -m resnet_repro analyze lesion data/results/quick/*-seed0 --data ../shared/data/cifar10-jpeg.tar.gz

A run folder whose lesion.csv was computed from its current weights is skipped unless --force.
"""

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
        dest="analysis", metavar="ANALYSIS", parser_class=OneLineErrorParser, required=True
    )
    lesion = analyses.add_parser(
        "lesion",
        help="test error with each block removed in turn (lesion.csv)",
        description="Remove one block at a time from each run's trained net, evaluate it on the test set, "
        "and write lesion.csv into the run folder.",
        epilog=LESION_EPILOG,
        formatter_class=formatter,
    )
    lesion.add_argument("runs", nargs="+", type=Path, metavar="RUN_FOLDER", help="finished run folders")
    lesion.add_argument(
        "--data",
        metavar="PATH",
        help="the runs' dataset, if no longer where they recorded it (checked against its sha256)",
    )
    lesion.add_argument("--device", choices=DEVICES, default="auto", help="auto = CUDA if available")
    lesion.add_argument(
        "--amp",
        choices=("auto", "on", "off"),
        default="auto",
        help="bf16 autocast (auto: on CUDA and on CPUs with bf16 instructions)",
    )
    lesion.add_argument("--force", action="store_true", help="recompute even where lesion.csv is current")
    lesion.add_argument("--no-progress", action="store_true", help="no progress messages")


def run_analyze(args: argparse.Namespace) -> int:
    from . import lesion

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
