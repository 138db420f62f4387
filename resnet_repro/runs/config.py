"""What one training run is: `RunConfig`, and the training budgets it can run at.

The field names are the command line's flags (`--val-split` -> `val_split`) and the notebooks' papermill
parameters. The config splits in two: fields that decide the result (architecture, budget, seed, data,
validation split, eval points) and fields that only decide how fast it is computed (device and the
speed options), which can change between a run and its resumption.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, fields

from resnet_repro.models import SHORTCUT_OPTIONS, parse_arch
from resnet_repro.paper.recipe import PAPER_ITERATIONS, Schedule, needs_warmup, schedule_for

BUDGETS = ("smoke", "quick", "full")
DEFAULT_QUICK_FACTOR = 1 / 8  # quick = every iteration count of the paper's schedule x 1/8: 8k iterations
SMOKE_ITERATIONS = 10  # smoke checks the plumbing in seconds on a CPU, even for ResNet-110
SMOKE_SUBSET = (1000, 500)  # class-balanced (train, test) images for smoke runs
DEFAULT_EVAL_POINTS = 50  # points on each curve
SMOKE_EVAL_POINTS = 2  # every test pass costs a second or two on a CPU
DEVICES = ("auto", "cpu", "cuda")
SWITCH = ("auto", "on", "off")  # a speed option: "auto" = on where it helps (see training_loop.resolve_speed)
COMPILE_MODES = ("auto", "off", "default", "reduce-overhead", "max-autotune")
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
SPEED_CHOICES = {name: COMPILE_MODES if name == "compile" else SWITCH for name in SPEED_FIELDS}
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


@dataclass(frozen=True)
class RunConfig:
    """One training run of a CIFAR-10 network with the paper's recipe (section 4.2).

    Unknown fields and wrong types are refused with a ValueError that says what is allowed.
    """

    arch: str = "resnet20"  # "plain" or "resnet" + depth 6n+2: plain20, resnet56, resnet110, ...
    shortcut: str | None = None  # ResNets: "A" (the paper's CIFAR choice, default), "B" or "C"; plain: "-"
    budget: str = "quick"  # "smoke" | "quick" | "full" (see resolve_budget)
    iterations: int | None = None  # train this many iterations instead; lr drops at 50% and 75%
    quick_factor: float = DEFAULT_QUICK_FACTOR  # length of the quick budget relative to the paper's 64k
    data: str | None = None  # None = official CIFAR-10 download; or a folder tree / .tar.gz of one
    seed: int = 0  # initial weights, data order and augmentation
    device: str = "auto"  # "auto" (CUDA if available) | "cpu" | "cuda"
    val_split: int = 0  # hold out this many training images as the test set (paper: 5000); 0 = real test set
    eval_points: int | None = None  # points on the curves; None = 50 (smoke: 2)
    # Speed options: none changes the algorithm; "auto" picks what helps on the device (recorded in run.json).
    channels_last: str = "auto"  # NHWC memory layout for the convolutions
    amp: str = "auto"  # bf16 autocast (weights, BN statistics stay fp32); auto = on CUDA, off on CPUs
    compile: str = "auto"  # torch.compile mode, or "off"; auto = "default" for runs of 2,000+ iterations
    data_on_device: str = "auto"  # keep the whole dataset on the accelerator, augment there
    fused_optimizer: str = "auto"  # fused SGD kernel; auto = on CUDA
    cudnn_benchmark: str = "auto"  # let cuDNN pick its fastest convolution algorithms; auto = on CUDA
    # Replay the whole training step as one CUDA graph (fast_step.py). "off" by default until a device
    # session's preflight has shown it right; auto = on CUDA where it can work; on the CPU, "on" runs the
    # graph's step function without a graph (the same numbers as "off", bit for bit).
    cuda_graph: str = "off"
    checkpoint_minutes: float = 10.0  # also checkpoint between eval points after this long

    def __post_init__(self):
        check_types(self, _TYPES)
        family, depth = parse_arch(self.arch)
        object.__setattr__(self, "shortcut", _resolve_shortcut(family, self.arch, self.shortcut))
        if self.data is not None:
            object.__setattr__(self, "data", os.fspath(self.data))
        check_choice("budget", self.budget, BUDGETS)
        check_choice("device", self.device, DEVICES)
        for name, allowed in SPEED_CHOICES.items():
            check_choice(name, getattr(self, name), allowed)
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not 0 < self.quick_factor <= 1:
            raise ValueError(f"quick_factor must be in (0, 1], got {self.quick_factor}")
        if self.val_split < 0:
            raise ValueError(f"val_split must be >= 0 images (the paper held out 5000), got {self.val_split}")
        if self.checkpoint_minutes <= 0:
            raise ValueError(f"checkpoint_minutes must be > 0, got {self.checkpoint_minutes}")
        if self.eval_points is None:
            points = SMOKE_EVAL_POINTS if self.budget == "smoke" else DEFAULT_EVAL_POINTS
            object.__setattr__(self, "eval_points", points)
        elif self.eval_points < 1:
            raise ValueError(f"eval_points must be >= 1, got {self.eval_points}")

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


def check_types(config, types: dict[str, tuple[type, ...]]) -> None:
    """Each field of a config dataclass holds one of the types `types` lists for it (a bool only where bool
    is listed: bool is an int)."""
    for f in fields(config):
        name, value, expected = f.name, getattr(config, f.name), types[f.name]
        wrong_bool = isinstance(value, bool) and bool not in expected
        if wrong_bool or not isinstance(value, expected):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in expected)
            raise ValueError(f"{name} must be {names}, got {value!r}")


_TYPES = {
    "arch": (str,),
    "shortcut": (str, type(None)),
    "budget": (str,),
    "iterations": (int, type(None)),
    "quick_factor": (float, int),
    "data": (str, os.PathLike, type(None)),
    "seed": (int,),
    "device": (str,),
    "val_split": (int,),
    "eval_points": (int, type(None)),
    "checkpoint_minutes": (float, int),
    **{name: (str,) for name in SPEED_FIELDS},
}
