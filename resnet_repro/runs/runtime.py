"""What both trainers (CIFAR-10's `trainer.py`, ImageNet's `imagenet/train.py`) need around the training
step: the device and its name, the cuDNN autotuner switch, loss and error sums kept on the device, Ctrl-C
and SIGTERM turned into a checkpoint, the clock of a run's sessions, checkpoints that only resume the run
they were written for, and the run record (run.json) with its provenance.

Knows nothing of either dataset or config: a trainer passes in what it has (a config here is anything
with `arch`, `family`, `depth`, `shortcut`, `seed` and `to_dict()`, as both configs are).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import signal
import subprocess
import threading
import time
import warnings
from pathlib import Path

import torch

from resnet_repro.runs.config import device_unavailable
from resnet_repro.runs.files import atomic_write, damaged_file, damaged_torch_file
from resnet_repro.runs.folders import REPO_ROOT

# ---------------------------------------------------------------------------------------------------------
# The device
# ---------------------------------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """ "auto" -> CUDA if available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    unavailable = device_unavailable(name)
    if unavailable:
        raise ValueError(f"{unavailable}; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16 instructions).

    There oneDNN runs bf16 convolutions about 2-4x faster than fp32; on other CPUs it emulates bf16 and
    autocast would be slower. torch.cpu.get_capabilities() reads the CPUID flags (torch >= 2.6; older
    versions answer False, so analyses evaluate in fp32 there). Training no longer asks: on a CPU it runs
    in fp32 unless bf16 is named (training_loop.resolve_speed).
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:
        return False
    flags = capabilities()
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def analysis_amp(amp: str, device: torch.device) -> bool:
    """Whether an analysis of stored weights evaluates in bf16 autocast: amp "on", "off", or "auto" (on CUDA
    and on CPUs that multiply bf16 in hardware). Unlike training (fp32 by default on a CPU), an analysis
    only evaluates, and `analyze landscape --check-fp32` measures how far bf16 is from fp32 there."""
    if amp not in ("auto", "on", "off"):
        raise ValueError(f"amp must be auto, on or off, got {amp!r}")
    return (device.type == "cuda" or cpu_has_native_bf16()) if amp == "auto" else amp == "on"


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool):
    """Set torch.backends.cudnn.benchmark for the duration (it is process-wide)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


# ---------------------------------------------------------------------------------------------------------
# Sums on the device
# ---------------------------------------------------------------------------------------------------------


class Tally:
    """Loss and error of mini-batches, summed on the device; read (one host sync) only when popped."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0  # a Python int: the batch size is known without asking the device

    def add(self, loss_sum: torch.Tensor, wrong: torch.Tensor, n: int) -> None:
        self.loss_sum += loss_sum
        self.wrong += wrong
        self.seen += n

    def pop(self) -> tuple[float, float]:
        """(mean loss, error %) since the last pop; resets."""
        seen = max(self.seen, 1)
        result = self.loss_sum.item() / seen, 100.0 * self.wrong.item() / seen
        self.loss_sum.zero_(), self.wrong.zero_()
        self.seen = 0
        return result

    def state_dict(self) -> dict:
        return {"loss_sum": self.loss_sum.cpu(), "wrong": self.wrong.cpu(), "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.loss_sum.copy_(state["loss_sum"])
        self.wrong.copy_(state["wrong"])
        self.seen = state["seen"]


# ---------------------------------------------------------------------------------------------------------
# A run's sessions: stopping cleanly, timing, resuming only the same run
# ---------------------------------------------------------------------------------------------------------


class GracefulInterrupt:
    """Ctrl-C sets a flag that the loop checks between steps, so it can save a consistent checkpoint.

    SIGTERM (what a scheduler, `timeout` or a container stop sends) counts as a Ctrl-C. A second signal
    stops at once. Only the main thread can install handlers; in other threads (several runs in one
    process, multirun.py) `request_all` from the main thread asks every active loop to stop.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    _active: set[GracefulInterrupt] = set()

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    @classmethod
    def request_all(cls) -> None:
        """Ask every loop inside a GracefulInterrupt, in any thread, to save a checkpoint and stop."""
        for interrupt in list(cls._active):
            interrupt.requested = True

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        GracefulInterrupt._active.add(self)
        return self

    def __exit__(self, *exc):
        GracefulInterrupt._active.discard(self)
        for number, previous in self._previous.items():
            if previous is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(number, previous)


class Clock:
    """Adds the time since the last booking to a trainer's run state (its `train_time_s` and `wall_time_s`),
    so times add up over a run's sessions."""

    def __init__(self):
        self.wall_mark = self.loop_mark = time.perf_counter()  # wall: since train() was called

    def start_loop(self) -> None:
        self.loop_mark = time.perf_counter()

    def book(self, state) -> None:
        now = time.perf_counter()
        state.train_time_s += now - self.loop_mark
        state.wall_time_s += now - self.wall_mark
        self.wall_mark = self.loop_mark = now


def check_same_run(path: Path, what: str, old: dict, new: dict) -> None:
    """Refuse `what` (a checkpoint or results) at `path` whose result-deciding fields differ from now."""
    differences = [
        f"{key}: {old.get(key)!r} there, {new.get(key)!r} now" for key in new if old.get(key) != new[key]
    ]
    if differences:
        raise ValueError(
            f"{path}: {what} of a different run ({'; '.join(differences)}); pass --force to replace it"
        )


# ---------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write atomically: a crash while writing leaves the previous checkpoint whole."""
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Path, checkpoint_format: int, keys: set[str], identity: dict) -> dict | None:
    """The checkpoint at `path`, or None if there is none.

    Refused with one line naming the file if it is damaged, lacks one of `keys` (besides "format" and
    "identity"), is of another format, or of another run (`identity`: the config's result identity). The
    trainer checks the data it was written for.
    """
    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on odd pickles: the one line below says enough
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        missing = {"format", "identity", *keys} - set(checkpoint)
    except Exception as err:  # empty, truncated, garbage
        raise ValueError(damaged_torch_file(path, err)) from None
    if missing:
        raise ValueError(damaged_file(path, f"no {', '.join(sorted(missing))}"))
    if checkpoint.get("format") != checkpoint_format:
        raise ValueError(
            f"{path}: checkpoint format {checkpoint.get('format')} (expected {checkpoint_format})"
        )
    check_same_run(path, "checkpoint", checkpoint["identity"], identity)
    return checkpoint


# ---------------------------------------------------------------------------------------------------------
# The run record (run.json)
# ---------------------------------------------------------------------------------------------------------


COMMIT_ENV = "RESNET_REPRO_COMMIT"


def git_commit() -> tuple[str, bool | None]:
    """(commit of the code that ran, whether it had uncommitted changes), or ("unknown", None).

    A copy of the code without its .git folder (a GPU machine's) names its commit in RESNET_REPRO_COMMIT.
    """
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV], None

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, dirty


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def run_record(config, name: str, provenance: dict, **results) -> dict:
    """run.json: which run (the fields both configs share), then `results` in the order given, then the
    provenance (see `run_provenance`)."""
    return {
        "run": name,
        "arch": config.arch,
        "family": config.family,
        "depth": config.depth,
        "shortcut": config.shortcut,
        "seed": config.seed,
        "config": config.to_dict(),
        **results,
        "provenance": provenance,
    }


def run_provenance(device: torch.device, dataset: dict, seed: int, **launch) -> dict:
    """What a run was computed with: the code's commit, the software, the device, the data and the seed,
    and when it finished. launch: what only one trainer knows (ImageNet: its processes)."""
    commit, dirty = git_commit()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device.type,
        "device_name": device_name(device),
        **launch,
        "dataset": dataset,
        "seed": seed,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
