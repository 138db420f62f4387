"""Does bf16 autocast train the deep nets as fp32 does? The quick schedule's first iterations, several seeds.

Each (net, precision, seed) is a real run of `trainer.train` at budget quick, stopped after --iterations
(1,600 by default: the learning rate is still 0.1 there), in a results folder of its own per precision
under --out. Its curve points (history.csv, every 160 iterations) give the training error (the
mini-batches since the last point) and the test error at --at iterations. The rows go to --csv, one per
run and point; the mean and spread per net and precision are printed. A stopped run keeps its checkpoint,
so the same command resumes an interrupted check, and the runs of the precision that agrees can be
trained on to the end of the quick schedule with `train --out` on the same folder. Two processes can
share the check, one of them `--from-the-end`: each skips the runs the other is training, and the csv
holds every run that reached the points, whichever process trained it.

    python benchmarks/precision_check.py --data ../shared/data/cifar10-jpeg.tar.gz --out ~/runs/precision \
        --csv data/benchmarks/bf16_vs_fp32.csv
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from resnet_repro.cifar.data import load_cifar10
from resnet_repro.cifar.trainer import train
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.files import atomic_write_text, read_table
from resnet_repro.runs.folders import HISTORY_FILE, run_folder
from resnet_repro.runs.lock import RunLockedError
from resnet_repro.runs.runtime import device_name

PRECISIONS = {"bf16": "on", "fp32": "off"}  # the --amp value of each
COLUMNS = ["arch", "precision", "seed", "iteration", "train_error", "test_error", "device", "torch"]


def points_reached(folder: Path, at: list[int]) -> dict[int, dict] | None:
    """The history rows at every iteration of `at`, or None while some are missing."""
    path = folder / HISTORY_FILE
    if not path.is_file():
        return None
    table = read_table(path).set_index("iteration")
    if not all(iteration in table.index for iteration in at):
        return None
    return {iteration: table.loc[iteration].to_dict() for iteration in at}


def check_one(config: RunConfig, out: Path, data, stop_after: int, at: list[int]) -> dict[int, dict]:
    folder = run_folder(config, out)
    rows = points_reached(folder, at)
    if rows is None:
        try:
            train(config, out, data=data, stop_after=stop_after)
        except KeyboardInterrupt:
            rows = points_reached(folder, at)
            if rows is None:  # a real Ctrl-C, not our stop: the checkpoint is saved, pass it on
                raise
        rows = points_reached(folder, at)
    return rows


def summary(rows: list[dict], at: list[int]) -> list[str]:
    lines = []
    for arch in dict.fromkeys(row["arch"] for row in rows):
        for precision in PRECISIONS:
            for iteration in at:
                picked = [
                    r
                    for r in rows
                    if (r["arch"], r["precision"], r["iteration"]) == (arch, precision, iteration)
                ]
                if not picked:
                    continue
                parts = []
                for key in ("train_error", "test_error"):
                    values = [r[key] for r in picked]
                    spread = statistics.stdev(values) if len(values) > 1 else float("nan")
                    parts.append(f"{key} {statistics.mean(values):.2f} ± {spread:.2f}")
                lines.append(f"{arch} {precision} it {iteration} ({len(picked)} seeds): " + ", ".join(parts))
    return lines


def write_rows(path: Path, rows: list[dict]) -> None:
    lines = [",".join(COLUMNS)] + [",".join(str(row[c]) for c in COLUMNS) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--arch", default="resnet56,plain56", help="comma-separated (default resnet56,plain56)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..K-1 (default 3)")
    parser.add_argument("--iterations", type=int, default=1600, help="stop each run here (default 1600)")
    parser.add_argument("--at", default="800,1600", help="curve points to compare (default 800,1600)")
    parser.add_argument("--data", help="CIFAR-10 source, as train --data (default: the official download)")
    parser.add_argument("--out", required=True, help="results folder of the runs (a subfolder per precision)")
    parser.add_argument("--csv", help="write one row per run and point here")
    parser.add_argument("--budget", default="quick", help="the schedule the runs follow (default quick)")
    parser.add_argument("--compile", default="auto", help="as train --compile (default auto, as the runs)")
    parser.add_argument(
        "--from-the-end",
        action="store_true",
        help="take the runs in the opposite order: a second process on the other cores meets the first "
        "halfway (each skips the runs the other is training)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    at = sorted(int(i) for i in args.at.split(","))
    if args.seeds < 1 or at[-1] > args.iterations:
        parser.error("--seeds must be at least 1 and every --at point at most --iterations")
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    data = load_cifar10(args.data, progress=not args.no_progress)
    device = (
        device_name(torch.device("cpu")) if not torch.cuda.is_available() else torch.cuda.get_device_name()
    )
    checks = {
        (seed, arch, precision): RunConfig(
            arch=arch, seed=seed, budget=args.budget, data=args.data, amp=amp, compile=args.compile
        )
        for seed in range(args.seeds)  # seed by seed: a check cut short still compares like with like
        for arch in archs
        for precision, amp in PRECISIONS.items()
    }
    order = list(checks)[::-1] if args.from_the_end else list(checks)
    for key in order:
        out = Path(args.out) / key[2]
        try:
            check_one(checks[key], out, data, args.iterations, at)
        except RunLockedError as err:  # another process trains it: its rows join once it is there
            print(f"skipped: {err}", flush=True)
        rows = reached_rows(checks, Path(args.out), at, device)  # whoever trained them
        if args.csv:
            write_rows(Path(args.csv), rows)
        print("\n".join(summary(rows, at)), flush=True)


def reached_rows(checks: dict, out: Path, at: list[int], device: str) -> list[dict]:
    """The csv rows of every run of the check that has reached all the points `at`."""
    rows = []
    for (seed, arch, precision), config in checks.items():
        points = points_reached(run_folder(config, out / precision), at) or {}
        for iteration, point in points.items():
            rows.append(
                {
                    "arch": arch,
                    "precision": precision,
                    "seed": seed,
                    "iteration": iteration,
                    "train_error": round(point["train_error"], 3),
                    "test_error": point["test_error"],
                    "device": device,
                    "torch": torch.__version__,
                }
            )
    return rows


if __name__ == "__main__":
    main()
