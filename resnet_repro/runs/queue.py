"""Independent runs taking turns: at most K at once in each place, and one rule for stopping.

A sweep is a list of runs that share nothing but the queue. `run_queue` starts them in order, `per_place`
at a time in each place (a GPU, the CPU, or threads of this process), and the next as soon as one ends.
How a run is started and stopped is the launcher's job: `Inline` trains it in this thread (one at a time),
`Threads` in a thread of its own (several in one process), and `sweeps.spread` in a subprocess.

The stop rule is the same whatever the launcher:
- a time limit: when it is up, running runs are asked to stop with a checkpoint (the same sweep resumes
  them) and waiting ones never start; a run that `fits` says cannot finish in the time left is skipped;
- Ctrl-C or SIGTERM: the same, then KeyboardInterrupt is raised again;
- a run that fails, or that another process is training, does not stop the others.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from resnet_repro.runs.lock import RunLockedError

STOP_GRACE_S = 60.0  # how long a stopped run may take to write its checkpoint before it is killed
POLL_S = 0.2

# What became of a run: "done"; "stopped" with a checkpoint (resumable); "failed"; "locked" (another process
# trains it); "skipped" (could not finish in the time left); "not started" (time or Ctrl-C came first).
STATUSES = ("done", "stopped", "failed", "locked", "skipped", "not started")
UNFINISHED = ("stopped", "locked", "skipped", "not started")  # the same sweep, run again, trains them


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    seconds: float = 0.0
    place: str | None = None  # where it ran (a GPU, "cpu", "thread"); None: never started
    detail: str | None = None  # why it failed: the error, or the exit status
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"


class Launcher(Protocol):
    """Starts one run in a place and says when it has ended (see `Inline`, `Threads`, `sweeps.spread`)."""

    def name(self, item: Any) -> str: ...

    def start(self, item: Any, place: str) -> Any:  # a handle (Inline returns only when the run has ended)
        ...

    def result(self, handle: Any) -> tuple[str, str | None, Path | None] | None:
        """(status, detail, log) once the run has ended, else None."""

    def stop(self, handles: list) -> None:
        """Ask the running runs to save a checkpoint and stop; return when they have ended."""


class Inline:
    """Each run trained by `target(item)` in the calling thread: one at a time, progress bars and all.

    The trainer turns Ctrl-C into a checkpoint and KeyboardInterrupt; at the time limit a timer asks it to
    do the same (`GracefulInterrupt.request_all`)."""

    def __init__(self, target: Callable[[Any], object], name: Callable[[Any], str] = str):
        self.target, self.name = target, name

    def start(self, item, place):
        try:
            self.target(item)
        except RunLockedError as err:
            return "locked", str(err), None
        except Exception as err:  # one failed run must not end the others
            return "failed", _one_line(err), None
        return "done", None, None

    def result(self, handle):
        return handle

    def stop(self, handles):
        pass  # nothing runs while the queue looks: start() has returned


class Threads:
    """Each run trained by `target(item)` in a thread of its own, so several share this process (their
    kernels overlap on a GPU; see `gpu.multirun`)."""

    def __init__(self, target: Callable[[Any], object], name: Callable[[Any], str] = str):
        self.target, self.name = target, name

    def start(self, item, place):
        ended: list = []

        def work():
            try:
                self.target(item)
                ended.append(("done", None, None))
            except KeyboardInterrupt:  # asked to stop: the checkpoint is saved
                ended.append(("stopped", None, None))
            except RunLockedError as err:
                ended.append(("locked", str(err), None))
            except Exception as err:
                ended.append(("failed", _one_line(err), None))

        thread = threading.Thread(target=work, name=f"run-{self.name(item)}", daemon=True)
        thread.start()
        return thread, ended

    def result(self, handle):
        thread, ended = handle
        return None if thread.is_alive() else ended[0]

    def stop(self, handles):
        from resnet_repro.runs.runtime import GracefulInterrupt

        while any(thread.is_alive() for thread, _ in handles):
            GracefulInterrupt.request_all()  # again each poll: a run may have just entered its loop
            for thread, _ in handles:
                thread.join(timeout=POLL_S / len(handles))


def run_queue(
    items: Sequence,
    launcher: Launcher,
    places: Sequence[str] = ("here",),
    per_place: int = 1,
    seconds: float | None = None,
    fits: Callable[[int, float], bool] | None = None,
    report: Callable[[str], None] | None = print,
    poll_s: float = POLL_S,
) -> list[Outcome]:
    """Run `items` with `launcher`, at most `per_place` at a time in each of `places`; outcomes in order.

    seconds: the time limit; with one, fits(item's index, seconds left) says whether a run can finish in
    the time left (one that cannot is skipped rather than started and cut off).
    """
    if not places:
        raise ValueError("no places (devices) to run the queue in")
    if per_place < 1:
        raise ValueError(f"runs at once must be at least 1, got {per_place}")
    say = report or (lambda _message: None)
    count = len(items)
    waiting = deque(enumerate(items))
    load = dict.fromkeys(places, 0)
    running: dict[int, tuple[Any, str, float]] = {}  # index -> (handle, place, start time)
    outcomes: dict[int, Outcome] = {}
    deadline = None if seconds is None else time.monotonic() + seconds

    def left() -> float:
        return float("inf") if deadline is None else deadline - time.monotonic()

    def label(index: int) -> str:
        return f"[{index + 1}/{count}] {launcher.name(items[index])}"

    def collect(index: int, ended: tuple) -> None:
        handle, place, began = running.pop(index)
        load[place] -= 1
        status, detail, log = ended
        outcome = Outcome(launcher.name(items[index]), status, time.monotonic() - began, place, detail, log)
        outcomes[index] = outcome
        say(f"{label(index)}: {_said(outcome)}")

    def stop_running() -> None:
        launcher.stop([handle for handle, _, _ in running.values()])
        for index in list(running):
            collect(index, launcher.result(running[index][0]) or ("stopped", None, None))

    with _sigterm_as_ctrl_c(), _time_limit_timer(seconds):
        try:
            while waiting or running:
                if left() <= 0:
                    if running:
                        say(f"time limit reached: stopping {len(running)} runs; {len(waiting)} not started")
                    stop_running()
                    break
                for place in places:
                    while load[place] < per_place and waiting and left() > 0:
                        index, item = waiting.popleft()
                        if deadline is not None and fits is not None and not fits(index, left()):
                            say(f"{label(index)}: skipped, cannot finish in the {left():.0f} s left")
                            outcomes[index] = Outcome(launcher.name(item), "skipped")
                            continue
                        say(f"{label(index)}: started ({place})")
                        began = time.monotonic()
                        try:
                            handle = launcher.start(item, place)
                        except KeyboardInterrupt:  # an Inline run stopped with its checkpoint
                            outcomes[index] = Outcome(
                                launcher.name(item), "stopped", time.monotonic() - began, place
                            )
                            say(f"{label(index)}: {_said(outcomes[index])}")
                            if left() > 0:  # not the time limit's timer: the user's Ctrl-C
                                raise
                            continue
                        running[index] = (handle, place, began)
                        load[place] += 1
                for index in list(running):
                    ended = launcher.result(running[index][0])
                    if ended is not None:
                        collect(index, ended)
                if running:
                    time.sleep(poll_s)
        except KeyboardInterrupt:
            say(f"interrupted: stopping {len(running)} runs (they save their checkpoints)")
            stop_running()
            raise
    for index, item in waiting:
        outcomes[index] = Outcome(launcher.name(item), "not started")
    return [outcomes[index] for index in range(count)]


def run_size(config) -> int:
    """iterations x depth: what a run's length is roughly proportional to (a RunConfig's)."""
    return config.plan().iterations * config.depth


def longest_first(configs: Sequence) -> list:
    """The runs ordered by `run_size`, the largest first (a stable sort: ties keep their order)."""
    return sorted(configs, key=run_size, reverse=True)


def raise_if_failed(outcomes: Sequence[Outcome]) -> None:
    """RuntimeError naming every failed run (with its error and log); unfinished runs are not failures."""
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        listing = "; ".join(f"{o.name} ({o.detail}{f', log {o.log}' if o.log else ''})" for o in failed)
        raise RuntimeError(f"{len(failed)} of {len(outcomes)} runs failed: {listing}")


def _said(outcome: Outcome) -> str:
    words = {
        "done": "done",
        "stopped": "stopped (checkpoint saved: the same command resumes it)",
        "failed": f"FAILED ({outcome.detail})",
        "locked": f"skipped ({outcome.detail or 'another process is training it'})",
    }[outcome.status]
    where = f", log {outcome.log}" if outcome.log is not None and not outcome.ok else ""
    return f"{words} in {outcome.seconds:.0f} s{where}"


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:500]}"


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a scheduler's, `timeout`'s) stops the queue as Ctrl-C does, checkpoints and all."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _time_limit_timer(seconds: float | None) -> Iterator[None]:
    """At the time limit, ask every run of this process to checkpoint and stop (an Inline run cannot be
    asked by the queue: it holds the thread)."""
    if seconds is None:
        yield
        return
    from resnet_repro.runs.runtime import GracefulInterrupt

    timer = threading.Timer(max(0.0, seconds), GracefulInterrupt.request_all)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
