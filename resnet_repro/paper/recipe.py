"""The paper's training recipe (section 4.2): the optimizer's constants, and the learning-rate schedule
as a pure function of the iteration.

SGD with momentum 0.9 and weight decay 1e-4 (both trainers), on CIFAR-10 mini-batches of 128 padded by
4 pixels before the random crop (ImageNet's batch and augmentation are in `imagenet/`).

lr 0.1, divided by 10 at 32k and 48k iterations, stop at 64k. Shorter budgets keep the shape: the drops
sit at 50% and 75% of the run (exactly 32k/48k of 64k). ResNet-110 and deeper first warm up at 0.01
until the training error falls below 80% (about 400 iterations in the paper), then go back to 0.1.
When the warm-up ends depends on training, so the caller measures it and passes the iteration in.
"""

from __future__ import annotations

from dataclasses import dataclass

BATCH_SIZE = 128  # CIFAR-10 mini-batch
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
PAD = 4  # pixels of zero padding before the random crop (zero = the mean pixel: images are normalized first)
PAPER_ITERATIONS = 64_000
PAPER_MILESTONES = (32_000, 48_000)
BASE_LR = 0.1
LR_DIVISOR = 10  # "divide it by 10" (a divisor, so 0.1 / 10 is exactly 0.01 in floating point)
WARMUP_LR = 0.01
WARMUP_UNTIL_TRAIN_ERROR = 80.0  # %, measured on the augmented mini-batches
WARMUP_MIN_DEPTH = 110  # the paper warms up ResNet-110 and ResNet-1202
MILESTONE_FRACTIONS = (0.5, 0.75)  # 32k/64k and 48k/64k


@dataclass(frozen=True)
class Schedule:
    """How long to train and where the learning rate drops.

    Iterations count SGD steps; step `i` (0-based) uses `learning_rate(i, ...)`, so with a milestone at
    32,000 the 32,001st step is the first one at the lower rate.
    """

    iterations: int
    milestones: tuple[int, ...]
    base_lr: float = BASE_LR
    divisor: float = LR_DIVISOR
    warmup_lr: float | None = None  # None: no warm-up phase


def schedule_for(iterations: int, warmup: bool = False) -> Schedule:
    """The paper's schedule stretched to `iterations`: drops at 50% and 75% (64k -> 32k, 48k)."""
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    milestones = tuple(round(iterations * fraction) for fraction in MILESTONE_FRACTIONS)
    return Schedule(iterations, milestones, warmup_lr=WARMUP_LR if warmup else None)


def needs_warmup(depth: int) -> bool:
    """The paper's rule: nets of 110 layers and more start at 0.01 (0.1 is too large to start converging)."""
    return depth >= WARMUP_MIN_DEPTH


def learning_rate(iteration: int, schedule: Schedule, warmup_ended_at: int | None = None) -> float:
    """The learning rate of step `iteration` (0-based).

    warmup_ended_at: the first step after the training error fell below 80%, or None while it has not
    (ignored without a warm-up phase). During the warm-up the rate is 0.01, or lower if the schedule
    has already dropped below it (a run too short for the warm-up to end).
    """
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    drops = sum(iteration >= milestone for milestone in schedule.milestones)
    scheduled = schedule.base_lr / schedule.divisor**drops
    warming_up = schedule.warmup_lr is not None and (warmup_ended_at is None or iteration < warmup_ended_at)
    return min(schedule.warmup_lr, scheduled) if warming_up else scheduled


def eval_iterations(iterations: int, points: int) -> tuple[int, ...]:
    """`points` evenly spaced iterations at which to record the curves; the last one is the end of training.

    A run shorter than `points` iterations is recorded after every iteration.
    """
    if points < 1:
        raise ValueError(f"eval points must be >= 1, got {points}")
    points = min(points, iterations)
    return tuple((iterations * k + points // 2) // points for k in range(1, points + 1))  # rounded, in ints
