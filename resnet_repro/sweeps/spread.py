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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEVICE_ENV = "CUDA_VISIBLE_DEVICES"
CPU = "cpu"  # the device name of the CPU in `spread`: its runs see no GPU and split the cores
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the checkout whose code the subprocesses run
BENCHMARKS_DIR = PACKAGE_PARENT / "data" / "benchmarks"  # benchmarks/cpu_parallel_runs.py --json files
STOP_GRACE_S = 60.0  # after Ctrl-C, how long runs may take to write their checkpoints before being killed
INTERRUPTED_EXITS = (130, -signal.SIGINT)  # a job that stopped on Ctrl-C after saving its checkpoint
LOCKED_EXIT = 75  # a job whose run another process is training (EX_TEMPFAIL: try again later)


@dataclass(frozen=True)
class Job:
    """One independent run: a name (for its log file) and the command that performs it."""

    name: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    job: Job
    device: str | None  # None: never started (the time limit came first)
    returncode: int | None  # None: never started
    seconds: float
    log: Path | None
    stopped: bool = False  # Ctrl-C'ed at the time limit: unfinished, not failed

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def started(self) -> bool:
        return self.returncode is not None


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


def spread(
    jobs: Sequence[Job],
    devices: Sequence[str],
    per_device: int = 1,
    log_dir: str | os.PathLike | None = None,
    report: Callable[[str], None] | None = print,
    poll_s: float = 0.2,
    seconds: float | None = None,
    fits: Callable[[int, float], bool] | None = None,
    stop_grace_s: float = STOP_GRACE_S,
) -> list[Outcome]:
    """Run `jobs` as subprocesses, at most `per_device` at a time on each device; outcomes in job order.

    Each subprocess sees only its device (CUDA_VISIBLE_DEVICES=<device>). Its output goes to
    <log_dir>/<name>.log (parallel progress bars would garble one terminal), or is inherited without
    log_dir. A failed run does not stop the others; the caller checks `Outcome.ok`. Ctrl-C passes to
    the running jobs (the trainer checkpoints on it), waits for them, and is raised again.

    seconds: a time limit. When it is up, the running jobs get one Ctrl-C (they checkpoint and can be
    resumed later) and the waiting ones never start. fits(job index, seconds left): whether a job can
    finish in the time left; one that cannot is skipped rather than started and cut off.
    """
    if not devices:
        raise ValueError("no devices to spread the runs over")
    if per_device < 1:
        raise ValueError(f"per_device must be >= 1, got {per_device}")
    say = report or (lambda _message: None)
    logs = Path(log_dir) if log_dir is not None else None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    queue = deque(enumerate(jobs))
    load = dict.fromkeys(devices, 0)
    running: dict[subprocess.Popen, tuple[int, Job, str, float, Path | None]] = {}
    outcomes: dict[int, Outcome] = {}
    start = time.monotonic()
    deadline = start + seconds if seconds is not None else None
    try:
        while queue or running:
            if deadline is not None and time.monotonic() >= deadline:
                say(f"time limit reached: stopping {len(running)} runs; {len(queue)} not started")
                _stop_all(list(running), stop_grace_s)
                for process, (number, job, device, started, log) in running.items():
                    seconds_run = time.monotonic() - started
                    outcomes[number] = Outcome(job, device, process.wait(), seconds_run, log, stopped=True)
                running.clear()
                break
            for device in devices:
                while load[device] < per_device and queue:
                    number, job = queue.popleft()
                    left = deadline - time.monotonic() if deadline is not None else float("inf")
                    if fits is not None and not fits(number, left):
                        say(f"[{number + 1}/{len(jobs)}] {job.name}: skipped, cannot finish in {left:.0f} s")
                        outcomes[number] = Outcome(job, None, None, 0.0, None)
                        continue
                    log = logs / f"{job.name}.log" if logs is not None else None
                    threads = cpu_threads_each(per_device) if device == CPU else None
                    running[_start(job, device, log, threads)] = (number, job, device, time.monotonic(), log)
                    load[device] += 1
                    say(f"[{number + 1}/{len(jobs)}] {job.name}: started on device {device}")
            time.sleep(poll_s)
            for process in [p for p in running if p.poll() is not None]:
                number, job, device, started, log = running.pop(process)
                load[device] -= 1
                outcome = Outcome(job, device, process.returncode, time.monotonic() - started, log)
                outcomes[number] = outcome
                status = "done" if outcome.ok else f"FAILED (exit {outcome.returncode})"
                if outcome.returncode in INTERRUPTED_EXITS:
                    status = "stopped (checkpoint saved: the same command resumes it)"
                elif outcome.returncode == LOCKED_EXIT:
                    status = "skipped (another process is training it: see the log)"
                where = f", log {log}" if log is not None and not outcome.ok else ""
                say(f"[{number + 1}/{len(jobs)}] {job.name}: {status} in {outcome.seconds:.0f} s{where}")
    except BaseException:
        _stop_all(list(running), stop_grace_s)
        raise
    for number, job in queue:  # left waiting when the time ran out
        outcomes[number] = Outcome(job, None, None, 0.0, None)
    return [outcomes[number] for number in range(len(jobs))]


def _start(job: Job, device: str, log: Path | None, threads: int | None = None) -> subprocess.Popen:
    env = {**os.environ, DEVICE_ENV: device}  # "cpu" hides every GPU
    if threads is not None:  # runs sharing the CPU: each on its share of the cores, compiling too
        env.update(OMP_NUM_THREADS=str(threads), TORCHINDUCTOR_COMPILE_THREADS=str(threads))
    output = open(log, "w") if log is not None else None  # noqa: SIM115 (the child owns it until it exits)
    try:
        # A session of its own: a terminal's Ctrl-C reaches only us, and we pass exactly one on (a second
        # one would make the trainer stop without its checkpoint).
        return subprocess.Popen(
            list(job.command),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
    finally:
        if output is not None:
            output.close()  # the child has its own copy of the descriptor


def _stop_all(processes: list[subprocess.Popen], grace_s: float = STOP_GRACE_S) -> None:
    """Ctrl-C to every running job, then wait for their checkpoints; kill what is still there after that."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


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
