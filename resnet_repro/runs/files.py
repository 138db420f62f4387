"""A run folder's files: written atomically (a temporary file in the same folder, then `os.replace`, run.json
last: a folder with run.json is a finished run), and read back with a clear error for a damaged one."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from resnet_repro.runs.folders import CHECKPOINT_FILE, HISTORY_FILE, RUN_FILE


class DiskFullError(OSError):
    """A file could not be written for want of disk space; its message names the file and the remedy."""


# torch.save's C++ writer reports a short write (a full disk, a quota) as a RuntimeError, not an OSError.
TORCH_SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed writing", "file write failed")


def as_disk_full(err: BaseException, path) -> DiskFullError | None:
    """The DiskFullError for `err`, raised while writing `path`, if a full disk (or quota) caused it."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "no space left on its disk"
    elif isinstance(err, RuntimeError) and any(words in str(err) for words in TORCH_SHORT_WRITE):
        why = f"torch wrote less than it meant to, as on a full disk: {' '.join(str(err).split())}"
    else:
        return None
    return DiskFullError(
        f"{path}: not written ({why}); nothing half-written is left: free space there and run the same "
        "command again (training resumes from its last checkpoint)"
    )


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary_path)`, then rename it onto `path`: `path` is either the old file or the new
    complete one, never a partial one, even if the process dies while writing. A full disk raises
    DiskFullError, naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        full = as_disk_full(err, path)
        if full is None:
            raise
        raise full from err
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(path: Path, columns: list[str], rows: Iterable[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: row[key] for key in columns} for row in rows)
    atomic_write_text(path, buffer.getvalue())


def write_json(path: Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def read_run_record(folder: Path) -> dict:
    """run.json of a finished run; a ValueError naming the file and the remedy if it cannot be read."""
    path = Path(folder) / RUN_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(damaged_file(path, err)) from None
    if not isinstance(record, dict):
        raise ValueError(damaged_file(path, f"a JSON {type(record).__name__}, not an object"))
    return record


def damaged_file(path: Path, reason) -> str:
    """The one-line message for a run's file that cannot be used, with the two ways out."""
    path = Path(path)
    if isinstance(reason, BaseException):
        reason = "empty file" if _is_empty(path) else " ".join(str(reason).split()) or type(reason).__name__
    # Without its checkpoint a run starts over, without run.json it is unfinished; a CSV is just gone.
    delete = "the file" if path.name in (CHECKPOINT_FILE, RUN_FILE) else "the run folder"
    return (
        f"{path}: unreadable {path.name} ({reason}); train the run again from the start (its train "
        f"command with --force), or delete {delete}"
    )


def damaged_torch_file(path: Path, err: BaseException) -> str:
    """damaged_file for a file torch.load could not read: the kind of error, not torch's own text (which
    names neither the file nor the remedy, and may advise weights_only=False)."""
    reason = "empty file" if _is_empty(path) else f"truncated or damaged: {type(err).__name__}"
    return damaged_file(path, reason)


def _is_empty(path: Path) -> bool:
    try:
        return Path(path).stat().st_size == 0
    except OSError:
        return False


def read_table(path: Path) -> pd.DataFrame:
    """A run's CSV file; a ValueError naming the file and the remedy if it cannot be read."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(damaged_file(path, "missing")) from None
    except (OSError, ValueError) as err:  # pandas' EmptyDataError and ParserError are ValueErrors
        raise ValueError(damaged_file(path, err)) from None


def read_history(folder: Path, record: dict) -> pd.DataFrame:
    """history.csv of a finished run, checked against its run.json: it must end at the run's last
    iteration with the final test error run.json reports (a ValueError naming the run if not)."""
    path = Path(folder) / HISTORY_FILE
    table = read_table(path)
    missing = [column for column in ("iteration", "test_error") if column not in table.columns]
    if missing or table.empty:
        raise ValueError(damaged_file(path, f"no {', '.join(missing)} column" if missing else "no rows"))
    last_iteration, last_error = table["iteration"].iloc[-1], table["test_error"].iloc[-1]
    iterations, error = record["budget"]["iterations"], record["final_test_error"]
    # An ImageNet run reports a 10-crop or centre-crop error (final_test_view) that its curve does not hold.
    same_error = "final_test_view" in record or abs(float(last_error) - error) < 1e-9
    if last_iteration != iterations or not same_error:
        raise ValueError(
            f"{folder}: history.csv and run.json disagree (the curve ends at iteration {last_iteration} "
            f"with test error {last_error}%, run.json reports {iterations} iterations and final test "
            f"error {error}%): two processes wrote this run; pass --force to train it again, or delete "
            "the folder"
        )
    return table
