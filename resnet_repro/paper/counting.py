"""Parameter and multiply-add counts, the paper's "FLOPs".

Counting uses PyTorch's own ``torch.utils.flop_counter``. It counts the
convolutions and matrix products (the fully connected layer) and nothing else:
the paper's convention. It reports one multiply-add as two FLOPs, so we halve it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

CIFAR_INPUT = (3, 32, 32)
IMAGENET_INPUT = (3, 224, 224)


def count_params(model: nn.Module) -> int:
    """Number of learnable parameters (batch-norm scale and shift included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = CIFAR_INPUT) -> int:
    """Multiply-adds of one forward pass on one image of ``input_shape`` (C, H, W)."""
    if len(input_shape) != 3 or not all(isinstance(s, int) and s > 0 for s in input_shape):
        raise ValueError(f"input_shape must be three positive integers (C, H, W), got {input_shape!r}")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


@dataclass(frozen=True)
class CostRow:
    """One model to count; ``build`` makes it on demand, so a long table never holds them all."""

    name: str
    depth: int
    shortcut: str | None
    build: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]


def count(row: CostRow) -> dict:
    # Built on the meta device: shapes only, no memory and no initialisation to pay for.
    with torch.device("meta"):
        model = row.build()
    return {
        "name": row.name,
        "depth": row.depth,
        "shortcut": row.shortcut or "-",
        "input": "x".join(map(str, row.input_shape[1:])),
        "params": count_params(model),
        "macs": count_macs(model, row.input_shape),
    }


def cost_table(rows: Iterable[CostRow]) -> pd.DataFrame:
    """A tidy table of name, depth, shortcut, input size, params and MACs, one row per model."""
    records = [count(row) for row in rows]
    return pd.DataFrame.from_records(
        records, columns=["name", "depth", "shortcut", "input", "params", "macs"]
    )
