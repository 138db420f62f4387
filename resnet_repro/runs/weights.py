"""A finished run's trained weights: small, safe to load, and back into the right network.

`weights.pt` in the run folder is a plain state dict saved with `torch.save` and read with
`weights_only=True` (no pickled code runs on loading). Convolution and linear weights are stored in
half precision (ResNet-56: about 1.7 MB instead of 3.4), which changes a test prediction only where
two classes tie to within fp16 rounding; batch-norm parameters and statistics, which set the scale of
every layer, are kept exact in fp32.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from resnet_repro.models import build_cifar
from resnet_repro.runs.config import RunConfig
from resnet_repro.runs.files import atomic_write, damaged_torch_file, read_run_record
from resnet_repro.runs.folders import WEIGHTS_FILE

HALF_PRECISION_MODULES = (nn.Conv2d, nn.Linear)


def compact_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict on the CPU, with convolution and linear weights in fp16."""
    half = {
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, HALF_PRECISION_MODULES)
    }
    return {
        key: (value.half() if key in half else value).detach().cpu().contiguous()
        for key, value in model.state_dict().items()
    }


def save_weights(path: Path, model: nn.Module) -> None:
    state = compact_state_dict(model)
    atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def build_model(config: RunConfig) -> nn.Module:
    """The untrained network a run config trains (plain nets have no shortcut option: "A" is unused)."""
    return build_cifar(config.arch, "A" if config.family == "plain" else config.shortcut)


def load_trained_model(folder: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The network of the finished run in `folder`, with its trained weights, in eval mode, in fp32."""
    folder = Path(folder)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no trained weights (runs finished before weights were recorded have none; "
            "train the run again with --force to get them)"
        )
    config = RunConfig.from_dict(read_run_record(folder)["config"])
    model = build_model(config)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        expected = model.state_dict()
        model.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()})
    except Exception as err:  # empty, truncated, garbage, another net's weights
        raise ValueError(damaged_torch_file(path, err)) from None
    return model.to(device).eval()


def weights_sha256(folder: str | Path) -> str:
    """The first 16 hex digits of the sha256 of the run's weights.pt: what an analysis cached in the run
    folder records, so it is recomputed when the weights change."""
    return hashlib.sha256((Path(folder) / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]
