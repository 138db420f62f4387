"""The queue's one stop rule, with targets that behave as the trainer does (a loop that checks for a stop)."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from resnet_repro.runs.lock import RunLockedError
from resnet_repro.runs.queue import Inline, Threads, raise_if_failed, run_queue
from resnet_repro.runs.runtime import GracefulInterrupt


def trainer_like(steps: int, ledger: list, step_s: float = 0.05):
    """A target that trains `steps` steps, and on a stop request saves ("checkpoint") and raises, as
    `cifar.trainer.train` does."""

    def target(name):
        with GracefulInterrupt() as interrupt:
            for _ in range(steps):
                if interrupt.requested:
                    ledger.append(("checkpoint", name))
                    raise KeyboardInterrupt
                time.sleep(step_s)
        ledger.append(("done", name))

    return target


def by_name(steps: dict, ledger: list):
    def target(name):
        trainer_like(steps[name], ledger)(name)

    return target


@pytest.mark.parametrize("launcher_kind", [Inline, Threads])
def test_at_the_time_limit_the_running_run_checkpoints_and_the_rest_never_start(launcher_kind):
    ledger: list = []
    outcomes = run_queue(
        ["short", "long", "waiting"],
        launcher_kind(by_name({"short": 2, "long": 400}, ledger)),
        seconds=1.0,
        report=None,
        poll_s=0.02,
    )
    assert [o.status for o in outcomes] == ["done", "stopped", "not started"]
    assert ledger == [("done", "short"), ("checkpoint", "long")]
    assert outcomes[1].seconds < 5


def test_a_users_ctrl_c_stops_an_inline_run_with_its_checkpoint_and_is_raised_again():
    ledger: list = []
    ctrl_c = threading.Timer(0.3, _thread.interrupt_main)

    def target(name):  # the trainer's handler turns the first Ctrl-C into a request
        with GracefulInterrupt() as interrupt:
            ctrl_c.start()
            while not interrupt.requested:
                time.sleep(0.02)
            ledger.append(("checkpoint", name))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_queue(["first", "second"], Inline(target), report=None)
    assert ledger == [("checkpoint", "first")]


def test_failed_and_locked_runs_do_not_stop_the_others_and_only_failures_raise():
    def target(name):
        if name == "bad":
            raise RuntimeError("out of\nmemory")
        if name == "busy":
            raise RunLockedError("busy: another process is training this run")

    for launcher in (Inline(target), Threads(target)):
        outcomes = run_queue(["bad", "busy", "good"], launcher, report=None, poll_s=0.01)
        assert [o.status for o in outcomes] == ["failed", "locked", "done"]
        assert outcomes[0].detail == "RuntimeError: out of memory"
        with pytest.raises(RuntimeError, match=r"1 of 3 runs failed: bad \(RuntimeError: out of memory\)"):
            raise_if_failed(outcomes)
        raise_if_failed(outcomes[1:])


def test_a_run_that_cannot_finish_in_the_time_left_is_skipped_and_fits_is_asked_only_with_a_limit():
    asked = []

    def fits(index, left):
        asked.append(index)
        return index != 1

    outcomes = run_queue(["a", "b", "c"], Inline(lambda name: None), seconds=60, fits=fits, report=None)
    assert [o.status for o in outcomes] == ["done", "skipped", "done"] and asked == [0, 1, 2]
    asked.clear()
    run_queue(["a"], Inline(lambda name: None), fits=fits, report=None)
    assert asked == []
