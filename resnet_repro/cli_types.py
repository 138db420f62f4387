"""The command line's argument types, and its parser class: what `cli.py` and the subcommands it mounts
(`imagenet/cli.py`, `analyze.py`) share.

A type turns one argument's text into its value or raises argparse.ArgumentTypeError with what is wrong
and what is allowed; the parser prints that as one line and exits with status 2.
"""

from __future__ import annotations

import argparse

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what is wrong and what is allowed), not usage + error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def cifar_arch(value: str) -> str:
    from .models import parse_arch

    try:
        parse_arch(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


SEED_LIMIT = 2**63  # seeds must fit torch's generators (63 bits, and never negative)


def seed_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**63-1, got {value!r}")
    return number


def fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], e.g. 0.125, got {value!r}")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def shard_spec(value: str) -> str:
    from .devices import parse_shard

    try:
        parse_shard(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def increasing_epochs(value: str) -> tuple[int, ...]:
    try:
        epochs = tuple(int(part) for part in value.split(","))
    except ValueError:
        epochs = ()
    if not epochs or any(e < 1 for e in epochs) or list(epochs) != sorted(set(epochs)):
        raise argparse.ArgumentTypeError(f"expected increasing epochs like 30,60, got {value!r}")
    return epochs


def worker_count(value: str) -> int:
    return 0 if value == "0" else positive_int(value)
