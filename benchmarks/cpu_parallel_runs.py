"""How a training queue uses a CPU best: one run on all its cores, or several runs side by side.

Each layout is measured with our trainer's own step (`TrainingLoop.step`, the speed options a full run
resolves on this CPU): `1x2` is one process on two threads, `2x1` two processes on one thread each,
timed together after all have compiled (a barrier), so they contend for memory bandwidth as a queue's
runs would. The figure that counts is the sum of images/s over the processes: the layout with the
larger sum trains a queue sooner. The layouts run one after another in this one command, on the same
machine, and the ratio to `1x<cores>` (the layout `train` uses on its own) is printed.

    python benchmarks/cpu_parallel_runs.py --arch resnet56
    python benchmarks/cpu_parallel_runs.py --arch resnet20,resnet56 --json data/benchmarks/

Images are random uint8 pixels of CIFAR-10's shape: throughput does not depend on what they show.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import os
import time

import torch

from resnet_repro.runs.files import write_json
from resnet_repro.runs.runtime import device_name, git_commit

_WARMUP_STEPS = 3


def layouts(cores: int) -> list[tuple[int, int]]:
    """(processes, threads each) that use every core: (1, cores), ..., (cores, 1)."""
    return [(cores // threads, threads) for threads in range(cores, 0, -1) if cores % threads == 0]


def _worker(arch: str, compile_mode: str, threads: int, seconds: float, barrier, results) -> None:
    torch.set_num_threads(threads)
    from train_throughput import our_step, synthetic_data

    from resnet_repro.paper.recipe import BASE_LR, BATCH_SIZE
    from resnet_repro.runs.config import RunConfig

    loop = our_step(
        RunConfig(arch=arch, device="cpu", compile=compile_mode), synthetic_data(), torch.device("cpu")
    )
    began = time.perf_counter()
    for _ in range(_WARMUP_STEPS):
        loop.step(BASE_LR)
    warmup_s = time.perf_counter() - began
    barrier.wait()  # everyone compiled: the timed windows overlap
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        loop.step(BASE_LR)
        steps += 1
    elapsed = time.perf_counter() - start
    results.put({"images_per_s": steps * BATCH_SIZE / elapsed, "steps": steps, "warmup_s": warmup_s})


def measure(arch: str, compile_mode: str, processes: int, threads: int, seconds: float) -> dict:
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_worker, args=(arch, compile_mode, threads, seconds, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rows = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    per_run = [row["images_per_s"] for row in rows]
    return {
        "arch": arch,
        "compile": compile_mode,
        "layout": f"{processes}x{threads}",
        "processes": processes,
        "threads_each": threads,
        "images_per_s_total": sum(per_run),
        "images_per_s_each": per_run,
        "warmup_s": [row["warmup_s"] for row in rows],
        "timed_s": seconds,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--arch", default="resnet56", help="one or several, comma-separated (default resnet56)"
    )
    parser.add_argument(
        "--compile", default="default", help="torch.compile mode of every run (default: default)"
    )
    parser.add_argument("--seconds", type=float, default=40.0, help="timed window per layout (default 40)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores to fill (default: all)")
    parser.add_argument(
        "--json", metavar="PATH", help="also write the figures there (a .json file or a folder)"
    )
    args = parser.parse_args(argv)
    if args.cores < 1 or args.seconds <= 0:
        parser.error("--cores must be at least 1 and --seconds positive")

    from train_throughput import _json_path

    record = {
        "benchmark": "cpu_parallel_runs",
        "device": device_name(torch.device("cpu")),
        "device_type": "cpu",
        "torch": torch.__version__,
        "commit": git_commit()[0],
        "dirty": git_commit()[1],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {"cores": args.cores, "timed_s": args.seconds, "warmup_steps": _WARMUP_STEPS},
        "results": [],
    }
    print(
        f"{record['device']}, {args.cores} cores, torch {torch.__version__}, {args.seconds:.0f} s per layout"
    )
    for arch in [a.strip() for a in args.arch.split(",") if a.strip()]:
        rows = [measure(arch, args.compile, p, t, args.seconds) for p, t in layouts(args.cores)]
        single = rows[0]["images_per_s_total"]
        for row in rows:
            row["ratio_to_one_run"] = row["images_per_s_total"] / single
            each = ", ".join(f"{rate:.0f}" for rate in row["images_per_s_each"])
            print(
                f"{arch} {row['layout']}: {row['images_per_s_total']:.0f} images/s in all ({each} each), "
                f"{row['ratio_to_one_run']:.2f}x one run on {args.cores} threads"
            )
        record["results"] += rows
    if args.json:
        path = _json_path(args.json, record)
        write_json(path, record)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
