"""What one ImageNet run is: `ImageNetConfig`, with the paper's recipe (section 3.4) as the defaults.

As for CIFAR-10 (`resnet_repro.runs.config`), fields that decide the result (network, schedule, batch,
sizes, seed) are kept apart from those that only decide how fast it is computed (device, workers,
speed options, how often to checkpoint, and the number of processes), which may change between a run
and its resumption.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from resnet_repro.imagenet.data import Geometry
from resnet_repro.models import SHORTCUT_OPTIONS
from resnet_repro.runs.config import (
    DEVICES,
    PLAIN_SHORTCUT,
    SWITCH,
    check_choice,
    check_fields,
    from_fields,
    setting,
)

ARCHS = ("plain18", "plain34", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
SCHEDULES = ("plateau", "milestones")
PAPER_BATCH = 256  # mini-batch size over all processes together
# "trained for up to 60 x 10^4 iterations" at batch 256: 60e4 * 256 / 1.28M images = 120 epochs.
PLATEAU_EPOCHS = 120
# The fixed-milestone variant: torchvision's reference recipe for these nets (lr / 10 every 30 epochs).
MILESTONE_EPOCHS, MILESTONES = 90, (30, 60)
PLATEAU_PATIENCE = 5  # epochs without a 0.1-point gain in validation error before lr / 10 (our choice)
MEAN_SAMPLES = 10_000  # training images averaged for the per-pixel mean (10 per class on ImageNet)
# The paper's choices: option A for the 18/34-layer nets of Table 2, option B for the deeper ones.
DEFAULT_SHORTCUT = {18: "A", 34: "A", 50: "B", 101: "B", 152: "B"}
OPERATIONAL_FIELDS = ("device", "workers", "amp", "channels_last", "checkpoint_minutes")


@dataclass(frozen=True)
class ImageNetConfig:
    """One ImageNet training run. Unknown fields and wrong types are refused with a ValueError."""

    data: str = field(
        metadata={"help": "ImageFolder root with train/<wnid>/ and val/<wnid>/", "accepts": (os.PathLike,)}
    )
    arch: str = setting("resnet34", ", ".join(ARCHS), choices=ARCHS)
    shortcut: str | None = setting(
        None, "ResNets: A, B or C; default the paper's: A for 18/34 (Table 2), B for 50+"
    )
    schedule: str = setting(
        "plateau",
        "plateau: lr / 10 when the val error stops improving; milestones: at fixed epochs",
        choices=SCHEDULES,
    )
    epochs: int | None = setting(
        None,
        f"default {PLATEAU_EPOCHS} (plateau: the paper's 60e4 iterations) or {MILESTONE_EPOCHS} (milestones)",
        at_least=1,
    )
    milestones: tuple[int, ...] = setting(MILESTONES, "milestones schedule: the epochs where lr / 10")
    patience: int = setting(
        PLATEAU_PATIENCE,
        "plateau schedule: epochs without a 0.1-point gain in val error before lr / 10",
        at_least=1,
    )
    batch_size: int = setting(
        PAPER_BATCH, "over all processes; each takes batch_size / processes", at_least=1
    )
    seed: int = setting(0, "initial weights, data order and augmentation", at_least=0)
    crop_size: int = setting(224, "network input, pixels", at_least=1)
    scale_min: int = setting(
        256, "training: shorter side resized to a random length in [scale_min, scale_max]"
    )
    scale_max: int = setting(480, "training: the longest shorter side (see scale_min)")
    test_size: int = setting(256, "testing: shorter side resized to this before cropping", at_least=1)
    mean_samples: int = setting(MEAN_SAMPLES, "training images averaged for the per-pixel mean", at_least=1)
    ten_crop: bool = setting(True, "also report the paper's 10-crop test error at the end (Tables 2 and 3)")
    # How it is computed (may change between a run and its resumption):
    device: str = setting("auto", "auto = CUDA if available; one GPU per process", choices=DEVICES)
    workers: int = setting(8, "DataLoader worker processes per training process", at_least=0)
    amp: str = setting(
        "auto", "bf16 autocast; weights and batch-norm statistics stay fp32", choices=SWITCH, auto="on CUDA"
    )
    channels_last: str = setting("auto", "NHWC memory layout", choices=SWITCH, auto="on CUDA")
    checkpoint_minutes: float = setting(
        10.0, "checkpoint at least this often, and at every epoch's end", above=0
    )

    def __post_init__(self):
        check_fields(self)
        if not all(isinstance(m, int) and not isinstance(m, bool) for m in self.milestones):
            raise ValueError(f"milestones must be integers (epochs), got {self.milestones!r}")
        object.__setattr__(self, "data", os.fspath(self.data))
        object.__setattr__(self, "milestones", tuple(self.milestones))
        object.__setattr__(self, "shortcut", self._resolve_shortcut())
        if self.epochs is None:
            object.__setattr__(self, "epochs", self.default_epochs())
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise ValueError(f"milestones must be increasing positive epochs, got {self.milestones}")
        self.geometry()  # checks the sizes

    def _resolve_shortcut(self) -> str:
        if self.family == "plain":
            if self.shortcut not in (None, PLAIN_SHORTCUT):
                raise ValueError(f"{self.arch} is a plain net and has no shortcuts (got {self.shortcut!r})")
            return PLAIN_SHORTCUT
        if self.shortcut is None:
            return DEFAULT_SHORTCUT[self.depth]
        check_choice("shortcut", self.shortcut, SHORTCUT_OPTIONS)
        return self.shortcut

    @classmethod
    def from_dict(cls, values: dict) -> ImageNetConfig:
        return from_fields(cls, values)

    def to_dict(self) -> dict:
        return {**asdict(self), "milestones": list(self.milestones)}

    @property
    def family(self) -> str:
        return "plain" if self.arch.startswith("plain") else "resnet"

    @property
    def depth(self) -> int:
        return int(self.arch.removeprefix(self.family))

    def default_epochs(self) -> int:
        return PLATEAU_EPOCHS if self.schedule == "plateau" else MILESTONE_EPOCHS

    def geometry(self) -> Geometry:
        return Geometry(self.crop_size, self.scale_min, self.scale_max, self.test_size)

    def is_paper_recipe(self) -> bool:
        """The paper's batch and image sizes (the length is in the budget label, see `budget_label`)."""
        return self.batch_size == PAPER_BATCH and self.geometry() == Geometry()

    def budget_label(self) -> str:
        """The results folder: "imagenet" at the schedule's standard length, else "imagenet-<N>ep"."""
        return "imagenet" if self.epochs == self.default_epochs() else f"imagenet-{self.epochs}ep"

    def run_name(self) -> str:
        """ "resnet34-A-plateau-seed0"; "-b<batch>-crop<px>" mark a run off the paper's batch or sizes."""
        parts = [self.arch] + ([] if self.shortcut == PLAIN_SHORTCUT else [self.shortcut])
        parts += [self.schedule, f"seed{self.seed}"]
        if self.batch_size != PAPER_BATCH:
            parts.append(f"b{self.batch_size}")
        if self.geometry() != Geometry():
            parts.append(f"crop{self.crop_size}")
        return "-".join(parts)

    def result_identity(self) -> dict:
        """What decides the result; a checkpoint or finished run only stands for a config with the same."""
        values = self.to_dict()
        return {key: values[key] for key in values if key not in OPERATIONAL_FIELDS and key != "data"}
