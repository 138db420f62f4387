"""What one training run is: `RunConfig`, and the training budgets it can run at.

The field names are the command line's flags (`--val-split` -> `val_split`) and the notebooks' papermill
parameters. The config splits in two: fields that decide the result (architecture, budget, seed, data,
validation split, eval points) and fields that only decide how fast it is computed (device and the
speed options), which can change between a run and its resumption.

Each field is declared once, with `setting`: its type (the annotation), default, allowed values and help.
`check_fields` checks a config against that declaration, and the command line builds each flag from it
(`commands.types.field_flag`), so a new field is one line here.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction

from resnet_repro.models import DEPTH_RULE, SHORTCUT_OPTIONS, parse_arch
from resnet_repro.paper.recipe import PAPER_ITERATIONS, Schedule, needs_warmup, schedule_for

BUDGETS = ("smoke", "quick", "full")
DEFAULT_QUICK_FACTOR = 1 / 8  # quick = every iteration count of the paper's schedule x 1/8: 8k iterations
SMOKE_ITERATIONS = 10  # smoke checks the plumbing in seconds on a CPU, even for ResNet-110
SMOKE_SUBSET = (1000, 500)  # class-balanced (train, test) images for smoke runs
DEFAULT_EVAL_POINTS = 50  # points on each curve
SMOKE_EVAL_POINTS = 2  # every test pass costs a second or two on a CPU
DEVICES = ("auto", "cpu", "cuda")
SWITCH = ("auto", "on", "off")  # a speed option: "auto" = on where it helps (see cifar.loop.resolve_speed)
COMPILE_MODES = ("auto", "off", "default", "reduce-overhead", "max-autotune")
COMPILE_MIN_ITERATIONS = 2000  # below this, compiling (tens of seconds) costs more than it saves
PLAIN_SHORTCUT = "-"  # plain nets have no shortcuts; this is how results spell it
SPEED_FIELDS = (
    "channels_last",
    "amp",
    "compile",
    "data_on_device",
    "fused_optimizer",
    "cudnn_benchmark",
    "cuda_graph",
)
# Fields that change how a run is computed but not what it computes.
OPERATIONAL_FIELDS = ("device", "checkpoint_minutes", *SPEED_FIELDS)


def device_unavailable(name: str) -> str | None:
    """Why the device `name` cannot be used on this machine, or None if it can (the callers add the remedy
    in their own terms: a flag, a chapter parameter)."""
    if name != "cuda":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    why = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no GPU"
    return f"device 'cuda' asked for, but CUDA is not available here ({why})"


@dataclass(frozen=True)
class Budget:
    """How long a run trains and on how much data. `label` names the results folder of this budget."""

    name: str  # "smoke" | "quick" | "full"
    label: str  # the name, or "<name>-<N>it" when the length is not the budget's default
    iterations: int
    subset: tuple[int, int] | None  # (train, test) images for smoke runs, None = all


def resolve_budget(
    name: str, iterations: int | None = None, quick_factor: float = DEFAULT_QUICK_FACTOR
) -> Budget:
    """full = 64k iterations; quick = 64k x quick_factor; smoke = 10 on a subset; `iterations` overrides."""
    if name not in BUDGETS:
        raise ValueError(f"unknown budget {name!r}: allowed are {', '.join(BUDGETS)}")
    standard = {"full": PAPER_ITERATIONS, "quick": round(PAPER_ITERATIONS * DEFAULT_QUICK_FACTOR)}
    standard["smoke"] = SMOKE_ITERATIONS
    if iterations is not None:
        length = iterations
    elif name == "quick":
        length = max(1, round(PAPER_ITERATIONS * quick_factor))
    else:
        length = standard[name]
    # Runs of another length must not share a folder with the budget's standard runs.
    label = name if length == standard[name] else f"{name}-{length}it"
    return Budget(name, label, length, SMOKE_SUBSET if name == "smoke" else None)


BUDGET_LABEL = re.compile(r"^(?P<name>[a-z]+)(?:-(?P<iterations>\d+)it)?$")  # resolve_budget's labels


def parse_budget_label(label: str) -> tuple[str, int | None] | None:
    """A budget label back as (name, iterations): "smoke-120it" -> ("smoke", 120), "quick" -> ("quick",
    None); None for a label resolve_budget does not write."""
    match = BUDGET_LABEL.match(label or "")
    if match is None:
        return None
    return match["name"], int(match["iterations"]) if match["iterations"] else None


def setting(
    default, help: str, *, choices=None, at_least=None, above=None, at_most=None, auto=None, accepts=()
):
    """A config field, declared once: its default, what it means (the command line's --help says the same),
    the values allowed (`choices`; bounds `at_least`, `above`, `at_most`), and for a speed option what
    "auto" makes of it. Its type is its annotation; `accepts` adds types it converts (os.PathLike)."""
    bounds = {"at_least": at_least, "above": above, "at_most": at_most}
    return field(
        default=default,
        metadata={"help": help, "choices": choices, "auto": auto, "accepts": accepts, **bounds},
    )


def _python_types(annotation) -> tuple[type, ...]:
    """The isinstance types an annotation allows: `int | None` -> (int, NoneType); a float takes an int."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for arg in typing.get_args(annotation) for t in _python_types(arg))
    origin = typing.get_origin(annotation) or annotation
    if origin is type(None) or annotation is None:
        return (type(None),)
    if origin is float:
        return (float, int)
    if origin is tuple:
        return (tuple, list)
    return (origin,)


@functools.cache
def _annotations(cls) -> dict:
    return typing.get_type_hints(cls)


def check_fields(config) -> None:
    """Each field of a config dataclass as its declaration allows: its annotated type (a bool only where
    bool is named: bool is an int), one of its `choices`, within its bounds. None skips the value checks."""
    hints = _annotations(type(config))
    for f in fields(config):
        name, value = f.name, getattr(config, f.name)
        expected = _python_types(hints[name]) + tuple(f.metadata.get("accepts", ()))
        wrong_bool = isinstance(value, bool) and bool not in expected
        if wrong_bool or not isinstance(value, expected):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in expected)
            raise ValueError(f"{name} must be {names}, got {value!r}")
        if value is None:
            continue
        if f.metadata.get("choices") is not None:
            check_choice(name, value, f.metadata["choices"])
        for bound, word, holds in BOUNDS:
            limit = f.metadata.get(bound)
            if limit is not None and not holds(value, limit):
                raise ValueError(f"{name} must be {word} {limit}, got {value!r}")


BOUNDS = (("at_least", ">=", operator.ge), ("above", ">", operator.gt), ("at_most", "<=", operator.le))


def field_help(cls, name: str) -> str:
    """A field's help as its declaration gives it, with its default (and, for a speed option, what auto
    does): the command line's --help text for the flag of that field."""
    spec = next(f for f in fields(cls) if f.name == name)
    text, auto, default = spec.metadata["help"], spec.metadata.get("auto"), spec.default
    if isinstance(default, tuple):
        default = ",".join(map(str, default))  # as the command line takes it
    if auto is None:
        return text if default is None else f"{text} (default {default})"
    return f"{text} (default {default}{': ' if default == 'auto' else '; auto: '}{auto})"


_QUICK, _FULL = (resolve_budget(name).iterations // 1000 for name in ("quick", "full"))
BUDGET_HELP = (
    f"how long to train: smoke = {SMOKE_ITERATIONS} iterations on {SMOKE_SUBSET[0]}/{SMOKE_SUBSET[1]} images "
    "(seconds, checks the plumbing); quick = the paper's iteration counts x "
    f"{Fraction(DEFAULT_QUICK_FACTOR)} ({_QUICK}k iterations); full = the paper's {_FULL}k"
)


@dataclass(frozen=True)
class RunConfig:
    """One training run of a CIFAR-10 network with the paper's recipe (section 4.2).

    Unknown fields and wrong types are refused with a ValueError that says what is allowed.
    """

    arch: str = setting(
        "resnet20", f'"plain" or "resnet" + depth: resnet56, plain20, ...; depth = {DEPTH_RULE}'
    )
    shortcut: str | None = setting(None, "ResNets only: A identity/zero-pad (default), B, C projections")
    budget: str = setting("quick", BUDGET_HELP, choices=BUDGETS)
    iterations: int | None = setting(
        None, "train this many iterations instead (lr drops at 50% and 75%)", at_least=1
    )
    quick_factor: float = setting(
        DEFAULT_QUICK_FACTOR, "length of quick relative to full", above=0, at_most=1
    )
    data: str | None = setting(
        None,
        "CIFAR-10 as a folder tree (train/<class>/*.png, test/<class>/...) or a .tar.gz of one "
        "(default: download the official files)",
        accepts=(os.PathLike,),
    )
    seed: int = setting(0, "initial weights, data order and augmentation")
    device: str = setting("auto", "auto = CUDA if available", choices=DEVICES)
    val_split: int = setting(
        0, "hold out this many training images and test on them (paper: 5000)", at_least=0
    )
    eval_points: int | None = setting(
        None,
        f"points on the training/test curves (default {DEFAULT_EVAL_POINTS}, smoke {SMOKE_EVAL_POINTS})",
        at_least=1,
    )
    # Speed options: none changes the algorithm; "auto" picks what helps on the device (recorded in run.json).
    channels_last: str = setting("auto", "NHWC memory layout", choices=SWITCH, auto="on")
    amp: str = setting(
        "auto",
        "bf16 autocast; weights and batch-norm statistics stay fp32",
        choices=SWITCH,
        auto="on CUDA; a CPU trains in fp32, in bf16 only when amp is on",
    )
    compile: str = setting(
        "auto",
        "torch.compile mode",
        choices=COMPILE_MODES,
        auto=f"'default' on the CPU and on CUDA GPUs of compute capability 7.0+ for runs of "
        f"{COMPILE_MIN_ITERATIONS:,} iterations or more, else off",
    )
    data_on_device: str = setting(
        "auto", "dataset and augmentation on the training device", choices=SWITCH, auto="on"
    )
    fused_optimizer: str = setting("auto", "fused SGD", choices=SWITCH, auto="on CUDA")
    cudnn_benchmark: str = setting("auto", "cuDNN autotuning", choices=SWITCH, auto="on CUDA")
    # "off" until a device session's preflight has shown the graph right; on the CPU, "on" runs the graph's
    # step function without a graph (the same numbers as "off", bit for bit).
    cuda_graph: str = setting(
        "off",
        "replay the whole training step as one CUDA graph",
        choices=SWITCH,
        auto="on CUDA where it works",
    )
    checkpoint_minutes: float = setting(10.0, "also checkpoint between eval points after this long", above=0)

    def __post_init__(self):
        check_fields(self)
        family, depth = parse_arch(self.arch)
        object.__setattr__(self, "shortcut", _resolve_shortcut(family, self.arch, self.shortcut))
        if self.data is not None:
            object.__setattr__(self, "data", os.fspath(self.data))
        if self.eval_points is None:
            points = SMOKE_EVAL_POINTS if self.budget == "smoke" else DEFAULT_EVAL_POINTS
            object.__setattr__(self, "eval_points", points)

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        """Build from a plain dict (e.g. run.json's "config"), refusing keys that are not fields."""
        return from_fields(cls, values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def family(self) -> str:
        return parse_arch(self.arch)[0]

    @property
    def depth(self) -> int:
        return parse_arch(self.arch)[1]

    def plan(self) -> Budget:
        return resolve_budget(self.budget, self.iterations, self.quick_factor)

    def schedule(self) -> Schedule:
        return schedule_for(self.plan().iterations, warmup=needs_warmup(self.depth))

    def result_identity(self) -> dict:
        """What decides the result (not how fast it is computed): a finished or checkpointed run is only
        reused for a config with the same identity. The data source is compared by its checksum."""
        plan = self.plan()
        return {
            "arch": self.arch,
            "shortcut": self.shortcut,
            "budget": plan.label,
            "iterations": plan.iterations,
            "seed": self.seed,
            "val_split": self.val_split,
            "eval_points": self.eval_points,
        }


def _resolve_shortcut(family: str, arch: str, shortcut: str | None) -> str:
    if family == "plain":
        if shortcut not in (None, PLAIN_SHORTCUT):
            raise ValueError(
                f"{arch} is a plain net and has no shortcuts: leave shortcut unset (got {shortcut!r})"
            )
        return PLAIN_SHORTCUT
    if shortcut is None:
        return "A"
    if shortcut not in SHORTCUT_OPTIONS:
        raise ValueError(f"unknown shortcut option {shortcut!r}: allowed are {', '.join(SHORTCUT_OPTIONS)}")
    return shortcut


def from_fields(cls, values: dict):
    """cls(**values) for a dataclass, with a clear error for keys that are not its fields."""
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"unknown config field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return cls(**values)


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
