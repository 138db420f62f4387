"""One writer per run folder: an OS-level lock on <run folder>/lock while a process trains the run.

`trainer.train()` takes the lock before it reads or writes anything in the folder and keeps it until it
returns, so two commands on the same run can never interleave their checkpoints and results. The lock is
an `fcntl.flock` on the file: the kernel drops it when its process ends, however it ends (a crash, kill -9,
a node lost), so a dead holder never blocks the next run and there is no stale lock to clean up. The
file's text (pid, host, start time) only says who holds it; a holder deletes the file when it is done.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected against a second writer
    fcntl = None

LOCK_FILE = "lock"


class RunLockedError(Exception):
    """Another process holds the run folder's lock; the message is one line that says who."""


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold `folder`'s lock for the duration (creating the folder); RunLockedError if another process
    holds it, OSError (one line) if the folder cannot be written."""
    folder = Path(folder)
    fd = _acquire(folder)
    try:
        yield
    finally:
        if fd is not None:
            _release(folder / LOCK_FILE, fd)


def check_writable(folder: str | os.PathLike) -> None:
    """Create `folder` and a file in it (then delete it), or raise a one-line OSError saying why not."""
    folder = Path(folder)
    probe = folder / f".write-check.tmp{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise _unusable(folder, err) from None


def _acquire(folder: Path) -> int | None:
    if fcntl is None:
        check_writable(folder)
        return None
    path = folder / LOCK_FILE
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise _unusable(folder, err) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "a process that has not written its name yet"
            os.close(fd)
            raise RunLockedError(
                f"{folder}: another process is training this run ({holder}); wait for it to finish, or "
                "stop it (Ctrl-C saves its checkpoint) and run the command again to resume"
            ) from None
        # The previous holder deletes the file as it lets go: if we locked a deleted file, start over.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}, since {started}\n".encode())
    return fd


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        path.unlink()  # while still holding the lock: a waiter that opened it sees it is gone and retries
    os.close(fd)


def _read(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 1000, 0).decode(errors="replace").strip()
    return ""


def _unusable(folder: Path, err: OSError) -> OSError:
    """Why `folder` cannot be written, naming the culprit: a file where a folder should be, or no rights."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        reason = f"{existing} is a file, not a folder"
    else:
        reason = f"{err.strerror or err}" + (f" ({existing})" if existing is not None else "")
    return OSError(f"cannot write the run folder {folder}: {reason}; choose an --out folder you can write to")
