"""The command line's argument types, its parser classes, and the flag of a config field: what `cli.py`
and the subcommands it mounts (`imagenet.py`, `analyze.py`) share.

A type turns one argument's text into its value or raises argparse.ArgumentTypeError with what is wrong
and what is allowed; the parser prints that as one line and exits with status 2.

Nothing of the package is imported at import time (a type that needs a parser imports it when called),
so every command module can import this one.
"""

from __future__ import annotations

import argparse
import dataclasses

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what is wrong and what is allowed), not usage + error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class SubcommandParser(OneLineErrorParser):
    """A subcommand's parser: it reports the arguments it does not know itself, naming its own command and
    help (argparse leaves them to the top-level parser, whose message points at the top-level help)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, unknown = super().parse_known_args(args, namespace)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return namespace, unknown


def _accepted_by(parse, value: str) -> str:
    """`value` itself, if `parse` takes it; else its ValueError's message as the argument's error."""
    try:
        parse(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def cifar_arch(value: str) -> str:
    from resnet_repro.models import parse_arch

    return _accepted_by(parse_arch, value)


def available_device(value: str) -> str:
    """A --device this machine has: "cuda" without CUDA stops at the argument, before anything is made."""
    from resnet_repro.runs.runtime import resolve_device

    return _accepted_by(resolve_device, value)


def _number(value: str, convert, in_range, expected: str):
    try:
        number = convert(value)
    except ValueError:
        number = None
    if number is None or not in_range(number):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return number


def positive_int(value: str) -> int:
    return _number(value, int, lambda n: n >= 1, "a positive integer")


def runs_at_once(value: str) -> int | None:
    """A positive count, or "auto" (None: the caller picks it for the device)."""
    return None if value == "auto" else _number(value, int, lambda n: n >= 1, "auto or a positive integer")


SEED_LIMIT = 2**63  # seeds must fit torch's generators (63 bits, and never negative)


def seed_number(value: str) -> int:
    return _number(value, int, lambda n: 0 <= n < SEED_LIMIT, "an integer from 0 to 2**63-1")


def fraction(value: str) -> float:
    return _number(value, float, lambda x: 0 < x <= 1, "a number in (0, 1], e.g. 0.125")


def positive_float(value: str) -> float:
    return _number(value, float, lambda x: x > 0, "a positive number")


def shard_spec(value: str) -> str:
    from resnet_repro.sweeps.spread import parse_shard

    return _accepted_by(parse_shard, value)


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


def field_flag(group, config_class, name: str, note: str = "", **parsing) -> None:
    """--NAME for the config field NAME, with the help, choices and default its declaration gives
    (`runs.config.setting`); `parsing` adds what only a command line has (the argument's type, metavar,
    nargs, required), `note` what the flag does beyond the field."""
    from resnet_repro.runs.config import field_help

    spec = next(f for f in dataclasses.fields(config_class) if f.name == name)
    required = parsing.get("required", False)
    text = spec.metadata["help"] if required else field_help(config_class, name)
    text += f"; {note}" if note else ""
    group.add_argument(
        f"--{name.replace('_', '-')}",
        choices=parsing.pop("choices", spec.metadata.get("choices")),
        default=None if required else spec.default,
        help=text.replace("%", "%%"),  # argparse formats help with %
        **parsing,
    )
