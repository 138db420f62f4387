"""Spread independent runs over the visible GPUs, and split a sweep between nodes.

A sweep (say `reproduce fig6`) is a list of independent runs. On a machine with several GPUs,
`spread` runs them as subprocesses, each seeing one GPU (CUDA_VISIBLE_DEVICES), `per_device` at a
time on each GPU (more than one only where the throughput benchmark shows a gain), starting the next
run as soon as one finishes. Each run writes its own run folder, so nothing is shared but the queue.

On a machine without a GPU the runs share the CPU: `per_device` runs at once, each on its share of the
cores (OMP_NUM_THREADS), and `runs_per_cpu` reads from the committed CPU benchmark which layout trains a
queue sooner on this very CPU.

On a cluster, every node runs the same sweep command with `shard(runs, k, n)` taking its k-th of n
disjoint slices; the run folders are then merged by copying them into one results folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from resnet_repro.runs.queue import POLL_S, STOP_GRACE_S, Outcome, run_queue

DEVICE_ENV = "CUDA_VISIBLE_DEVICES"
CPU = "cpu"  # the device name of the CPU in `spread`: its runs see no GPU and split the cores
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the checkout whose code the subprocesses run
BENCHMARKS_DIR = PACKAGE_PARENT / "data" / "benchmarks"  # benchmarks/cpu_parallel_runs.py --json files
INTERRUPTED_EXITS = (130, -signal.SIGINT)  # a job that stopped on Ctrl-C after saving its checkpoint
LOCKED_EXIT = 75  # a job whose run another process is training (EX_TEMPFAIL: try again later)


@dataclass(frozen=True)
class Job:
    """One independent run: a name (for its log file) and the command that performs it."""

    name: str
    command: tuple[str, ...]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries ("0", "1", or "GPU-<uuid>")."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = os.environ.get(DEVICE_ENV)
    if listed is not None:  # already restricted: hand each run one of the entries we were given
        entries = [entry.strip() for entry in listed.split(",") if entry.strip()]
        return entries[:count]
    return [str(index) for index in range(count)]


def cpu_threads_each(runs_at_once: int, cores: int | None = None) -> int:
    """The threads of each of `runs_at_once` runs sharing the CPU: its cores split evenly, at least one."""
    return max(1, (cores or os.cpu_count() or 1) // runs_at_once)


def runs_per_cpu(benchmarks_dir: str | os.PathLike = BENCHMARKS_DIR, cpu: str | None = None) -> int:
    """How many runs at once train a queue soonest on this CPU, by the committed cpu_parallel_runs
    benchmarks of the same CPU model and core count (their total images/s, summed over the networks
    measured); 1 where none was measured here."""
    from resnet_repro.runs.runtime import cpu_name

    cpu, cores = cpu or cpu_name(), os.cpu_count() or 1
    totals: dict[int, float] = {}
    for path in sorted(Path(benchmarks_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("benchmark") != "cpu_parallel_runs" or record.get("device") != cpu:
            continue
        if record.get("settings", {}).get("cores") != cores:
            continue
        for row in record.get("results", []):
            totals[row["processes"]] = totals.get(row["processes"], 0.0) + row["images_per_s_total"]
    return max(totals, key=totals.get) if totals else 1


def shard(items: Sequence, index: int, count: int) -> list:
    """The index-th (1-based) of `count` disjoint, interleaved slices of `items`; together they are all.

    Take the slice of the full, ordered list of runs (not of the unfinished ones, which differ between
    nodes as they work), so the nodes never pick the same run.
    """
    if not 1 <= index <= count:
        raise ValueError(f"shard must be K/N with 1 <= K <= N, got {index}/{count}")
    return list(items[index - 1 :: count])


def parse_shard(text: str) -> tuple[int, int]:
    """ "2/4" -> (2, 4)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(
            f"shard must look like K/N (e.g. 2/4: the second of four nodes), got {text!r}"
        ) from None
    shard([], index, count)  # checks the range
    return index, count


class Subprocesses:
    """The launcher of `runs.queue.run_queue` that runs each Job as a subprocess seeing one device.

    Each subprocess sees only its device (CUDA_VISIBLE_DEVICES=<device>; "cpu" hides every GPU, and runs
    sharing the CPU each get their share of the cores). Its output goes to <log_dir>/<name>.log (parallel
    progress bars would garble one terminal), or is inherited without log_dir. It runs in a session of its
    own, so a terminal's Ctrl-C reaches only us, and we pass exactly one on (a second one would make the
    trainer stop without its checkpoint); one that has not stopped `grace_s` later is killed.
    """

    def __init__(self, log_dir=None, per_device: int = 1, grace_s: float = STOP_GRACE_S):
        self.logs = Path(log_dir) if log_dir is not None else None
        if self.logs is not None:
            self.logs.mkdir(parents=True, exist_ok=True)
        self.per_device, self.grace_s = per_device, grace_s

    def name(self, job: Job) -> str:
        return job.name

    def start(self, job: Job, device: str):
        log = self.logs / f"{job.name}.log" if self.logs is not None else None
        env = {**os.environ, DEVICE_ENV: device}
        if device == CPU:  # each on its share of the cores, compiling too
            threads = str(cpu_threads_each(self.per_device))
            env.update(OMP_NUM_THREADS=threads, TORCHINDUCTOR_COMPILE_THREADS=threads)
        output = open(log, "w") if log is not None else None  # noqa: SIM115 (the child owns it until it exits)
        try:
            process = subprocess.Popen(
                list(job.command),
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
            )
        finally:
            if output is not None:
                output.close()  # the child has its own copy of the descriptor
        return process, log

    def result(self, handle):
        process, log = handle
        code = process.poll()
        if code is None:
            return None
        if code == 0:
            return "done", None, log
        if code in INTERRUPTED_EXITS:
            return "stopped", None, log
        if code == LOCKED_EXIT:
            return "locked", "another process is training it: see the log", log
        return "failed", f"exit {code}", log

    def stop(self, handles):
        processes = [process for process, _ in handles]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + self.grace_s
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def spread(
    jobs: Sequence[Job],
    devices: Sequence[str],
    per_device: int = 1,
    log_dir: str | os.PathLike | None = None,
    report: Callable[[str], None] | None = print,
    poll_s: float = POLL_S,
    seconds: float | None = None,
    fits: Callable[[int, float], bool] | None = None,
    stop_grace_s: float = STOP_GRACE_S,
) -> list[Outcome]:
    """Run `jobs` as subprocesses, at most `per_device` at a time on each device; outcomes in job order.

    The queue's rules are `runs.queue.run_queue`'s: a time limit (`seconds`, `fits`) and Ctrl-C stop the
    running jobs with a checkpoint and start no more; a failed job does not stop the others.
    """
    if not devices:
        raise ValueError("no devices to spread the runs over")
    launcher = Subprocesses(log_dir, per_device, stop_grace_s)
    return run_queue(jobs, launcher, devices, per_device, seconds, fits, report, poll_s)


def train_job(config, results_dir: str | os.PathLike | None = None, force: bool = False) -> Job:
    """The subprocess that trains one CIFAR-10 `RunConfig` with this very checkout's code.

    The config passes as JSON (`RunConfig.to_dict` / `from_dict`), so nothing is lost in a translation
    to command-line flags.
    """
    from resnet_repro.runs.folders import dataset_name, run_name

    code = (
        "import sys, json\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from resnet_repro.runs.config import RunConfig\n"
        "from resnet_repro.runs.lock import RunLockedError\n"
        "from resnet_repro.cifar.trainer import train\n"
        "config = RunConfig.from_dict(json.loads(sys.argv[2]))\n"
        "try:\n"
        "    train(config, sys.argv[3] or None, progress=True, force=sys.argv[4] == 'force')\n"
        "except RunLockedError as err:\n"
        "    print(f'skipped: {err}')\n"
        f"    sys.exit({LOCKED_EXIT})\n"
    )
    arguments = [
        str(PACKAGE_PARENT),
        json.dumps(config.to_dict()),
        os.fspath(results_dir) if results_dir is not None else "",
        "force" if force else "resume",
    ]
    name = f"{dataset_name(config.data)}-{config.plan().label}-{run_name(config)}"  # names its log file
    return Job(name, (sys.executable, "-c", code, *arguments))
