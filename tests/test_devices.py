"""Spreading runs over devices, with fake devices and jobs that only record where and when they ran."""

from __future__ import annotations

import _thread
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.queue import raise_if_failed
from resnet_repro.sweeps.spread import (
    CPU,
    DEVICE_ENV,
    LOCKED_EXIT,
    Job,
    cpu_threads_each,
    parse_shard,
    runs_per_cpu,
    shard,
    spread,
    train_job,
)

# A job that logs (name, the device it was given, start, end) and sleeps; exit status from argv.
RECORDER = """
import json, os, sys, time
start = time.monotonic()
time.sleep(float(sys.argv[3]))
with open(sys.argv[1], "a") as log:
    log.write(json.dumps([sys.argv[2], os.environ["{env}"], start, time.monotonic()]) + "\\n")
print("job", sys.argv[2], "says hello")
sys.exit(int(sys.argv[4]))
""".replace("{env}", DEVICE_ENV)


def recorder(name: str, ledger: Path, seconds: float = 0.3, exit_code: int = 0) -> Job:
    return Job(name, (sys.executable, "-c", RECORDER, str(ledger), name, str(seconds), str(exit_code)))


def read_ledger(ledger: Path) -> list[tuple[str, str, float, float]]:
    return [tuple(json.loads(line)) for line in ledger.read_text().splitlines()]


def overlaps(intervals: list[tuple[float, float]]) -> int:
    """The most intervals running at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def test_one_run_per_device_at_a_time_and_every_run_once(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    jobs = [recorder(f"run{i}", ledger) for i in range(5)]
    outcomes = spread(jobs, ["fake0", "fake1"], log_dir=tmp_path / "logs", report=None, poll_s=0.02)
    assert [o.name for o in outcomes] == [f"run{i}" for i in range(5)] and all(o.ok for o in outcomes)
    rows = read_ledger(ledger)
    assert sorted(name for name, *_ in rows) == [f"run{i}" for i in range(5)]
    for device in ("fake0", "fake1"):
        on_device = [(start, end) for _, d, start, end in rows if d == device]
        assert on_device and overlaps(on_device) == 1
    assert overlaps([(start, end) for *_, start, end in rows]) == 2  # both devices busy at once
    assert {o.place for o in outcomes} == {"fake0", "fake1"}
    assert "job run3 says hello" in (tmp_path / "logs" / "run3.log").read_text()


def test_several_runs_per_device_when_asked(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    outcomes = spread([recorder(f"r{i}", ledger) for i in range(4)], ["fake0"], per_device=2, report=None)
    assert all(o.ok for o in outcomes)
    assert overlaps([(start, end) for *_, start, end in read_ledger(ledger)]) == 2


def test_a_failed_run_is_reported_and_the_others_still_run(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    jobs = [recorder("good0", ledger), recorder("bad", ledger, exit_code=3), recorder("good1", ledger)]
    messages = []
    outcomes = spread(jobs, ["fake0"], log_dir=tmp_path, report=messages.append, poll_s=0.02)
    assert [(o.status, o.detail) for o in outcomes] == [("done", None), ("failed", "exit 3"), ("done", None)]
    assert any("bad: FAILED (exit 3)" in m and "bad.log" in m for m in messages)
    assert len(read_ledger(ledger)) == 3


def test_a_run_another_process_is_training_is_skipped_not_failed(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    messages = []
    outcomes = spread([recorder("busy", ledger, exit_code=LOCKED_EXIT)], ["fake0"], report=messages.append)
    assert outcomes[0].status == "locked"
    assert any("busy: skipped (another process is training it" in m for m in messages)
    raise_if_failed(outcomes)  # the sweep does not fail


def test_bad_arguments():
    with pytest.raises(ValueError, match="no devices"):
        spread([], [])
    with pytest.raises(ValueError, match="runs at once must be at least 1"):
        spread([], ["0"], per_device=0)  # runs at once


def test_shards_are_disjoint_and_cover_the_sweep():
    runs = [f"run{i}" for i in range(11)]
    slices = [shard(runs, k, 3) for k in (1, 2, 3)]
    assert sorted(sum(slices, [])) == sorted(runs) and slices[0][:2] == ["run0", "run3"]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)


def test_train_job_passes_the_whole_config():
    config = RunConfig(arch="resnet56", shortcut="B", budget="smoke", seed=2, compile="off", val_split=5000)
    job = train_job(config, "/results", force=True)
    assert job.name == "cifar10-smoke-resnet56-B-seed2-val5000" and job.command[-2:] == ("/results", "force")
    assert RunConfig.from_dict(json.loads(job.command[-3])) == config


def test_train_job_runs_this_checkouts_trainer(tmp_path):
    """The job's Python really calls resnet_repro.cifar.trainer.train with the config (a stub records it)."""
    stub = tmp_path / "stub" / "resnet_repro"
    for package in (stub, stub / "runs", stub / "cifar"):
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
    (stub / "runs" / "config.py").write_text(STUB_CONFIG)
    (stub / "cifar" / "trainer.py").write_text(STUB_TRAINER.replace("LEDGER", str(tmp_path / "called.json")))
    (stub / "runs" / "lock.py").write_text("class RunLockedError(Exception):\n    pass\n")
    job = train_job(RunConfig(arch="plain20", budget="smoke"), tmp_path / "out")
    command = list(job.command)
    assert (Path(command[3]) / "resnet_repro" / "__init__.py").is_file()  # this checkout's package
    command[3] = str(stub.parent)  # run the stub package instead of the real one
    assert subprocess.run(command, check=False).returncode == 0
    called = json.loads((tmp_path / "called.json").read_text())
    assert called == {"arch": "plain20", "budget": "smoke", "out": str(tmp_path / "out"), "force": False}
    # A run that another process holds: the job says so and exits LOCKED_EXIT (skipped, not failed).
    (stub / "cifar" / "trainer.py").write_text(STUB_LOCKED_TRAINER)
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    assert result.returncode == LOCKED_EXIT and "skipped: held by pid 1" in result.stdout


STUB_CONFIG = """
class RunConfig(dict):
    @classmethod
    def from_dict(cls, values):
        return cls(values)
"""
STUB_TRAINER = """
import json
def train(config, results_dir, progress, force):
    record = {"arch": config["arch"], "budget": config["budget"], "out": results_dir, "force": force}
    open("LEDGER", "w").write(json.dumps(record))
"""

STUB_LOCKED_TRAINER = """
from resnet_repro.runs.lock import RunLockedError
def train(config, results_dir, progress, force):
    raise RunLockedError("held by pid 1")
"""

# A job that counts the Ctrl-Cs it receives, takes a moment to "save", and records the count.
SAVER = """
import signal, sys, time
count = 0
def handle(signum, frame):
    global count
    count += 1
signal.signal(signal.SIGINT, handle)
deadline = time.monotonic() + 10
while not count and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.3)  # saving its checkpoint: a second Ctrl-C now would cost it
open(sys.argv[1], "a").write(f"{count}\\n")
sys.exit(130)
"""


def test_ctrl_c_reaches_each_running_job_exactly_once_and_is_raised_again(tmp_path):
    ledger = tmp_path / "ledger.txt"
    jobs = [Job(f"saver{i}", (sys.executable, "-c", SAVER, str(ledger))) for i in range(3)]

    ctrl_c = threading.Timer(1.0, _thread.interrupt_main)  # the user presses Ctrl-C a second in
    ctrl_c.start()
    with pytest.raises(KeyboardInterrupt):
        spread(jobs, ["fake0", "fake1"], report=None, poll_s=0.02)
    ctrl_c.join()
    assert ledger.read_text().split() == ["1", "1"]  # two were running, the third never started


def test_a_time_limit_stops_running_jobs_and_starts_no_more(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    jobs = [recorder("long", ledger, seconds=30), recorder("waiting", ledger)]
    messages = []
    outcomes = spread(jobs, ["fake0"], report=messages.append, poll_s=0.02, seconds=1.0, stop_grace_s=5)
    long, waiting = outcomes
    assert long.status == "stopped" and long.seconds < 10  # Ctrl-C'ed, not waited for
    assert waiting.status == "not started" and waiting.place is None
    assert any("time limit" in m for m in messages)


def test_a_job_that_cannot_fit_in_the_time_left_is_skipped(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    jobs = [recorder("short", ledger), recorder("too-long", ledger), recorder("also-short", ledger)]
    outcomes = spread(
        jobs, ["fake0"], report=None, poll_s=0.02, seconds=60, fits=lambda number, left: number != 1
    )
    assert [o.status for o in outcomes] == ["done", "skipped", "done"]
    assert sorted(name for name, *_ in read_ledger(ledger)) == ["also-short", "short"]


def cpu_benchmark(folder: Path, cpu: str, cores: int, totals: dict[int, float]) -> None:
    rows = [{"processes": p, "images_per_s_total": rate} for p, rate in totals.items()]
    record = {"benchmark": "cpu_parallel_runs", "device": cpu, "settings": {"cores": cores}, "results": rows}
    (folder / f"{cpu}-{cores}.json").write_text(json.dumps(record))


def test_runs_per_cpu_follows_the_benchmark_of_this_cpu_model_and_core_count(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert runs_per_cpu(tmp_path, cpu="Fast CPU") == 1  # nothing measured: one run on every core
    cpu_benchmark(tmp_path, "Fast CPU", 2, {1: 270.0, 2: 301.0})
    cpu_benchmark(tmp_path, "Other CPU", 2, {1: 500.0, 2: 100.0})
    cpu_benchmark(tmp_path, "Fast CPU", 4, {1: 900.0, 4: 100.0})  # another core count: not this machine
    (tmp_path / "broken.json").write_text("{")
    assert runs_per_cpu(tmp_path, cpu="Fast CPU") == 2
    assert runs_per_cpu(tmp_path, cpu="Other CPU") == 1


def test_runs_sharing_the_cpu_split_its_cores(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    code = (
        "import os; env = os.environ; "
        "print('threads', env['OMP_NUM_THREADS'], env['TORCHINDUCTOR_COMPILE_THREADS'])"
    )
    jobs = [Job(f"t{i}", (sys.executable, "-c", code)) for i in range(2)]
    outcomes = spread(jobs, [CPU], per_device=2, log_dir=tmp_path, report=None, poll_s=0.02)
    assert all(o.ok for o in outcomes)
    assert all("threads 2 2" in (tmp_path / f"t{i}.log").read_text() for i in range(2))
    assert cpu_threads_each(3, cores=2) == 1
