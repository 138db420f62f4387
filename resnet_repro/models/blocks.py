"""Building blocks shared by the CIFAR-10 and ImageNet networks of He et al. (2015).

Every block owns separately named modules for each response (``bn1``, ``bn2``,
``relu1``, ...), so a forward hook on ``bn2`` sees exactly one tensor: the
layer response that the paper's Figure 7 measures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHORTCUT_OPTIONS = ("A", "B", "C")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # No bias: batch norm follows and would cancel it.
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def check_shortcut(shortcut: str) -> str:
    if shortcut not in SHORTCUT_OPTIONS:
        raise ValueError(
            f"unknown shortcut option {shortcut!r}: allowed are 'A' (identity, zero-padded "
            "where the shape changes), 'B' (projection where the shape changes) and "
            "'C' (projection on every shortcut)"
        )
    return shortcut


class ZeroPadShortcut(nn.Module):
    """Option A where the shape changes: subsample by striding, pad new channels with zeros.

    Parameter-free, so a ResNet-A has exactly the parameters of its plain twin.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class ProjectionShortcut(nn.Sequential):
    """Options B and C: a strided 1x1 convolution followed by batch norm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


def make_shortcut(option: str | None, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The shortcut of one block; ``None`` means a plain block (no shortcut at all)."""
    if option is None:
        return None
    shape_changes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and shape_changes):
        return ProjectionShortcut(in_channels, out_channels, stride)
    if option == "A" and shape_changes:
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return nn.Identity()


class BasicBlock(nn.Module):
    """Two 3x3 layers (paper Fig. 2 / Fig. 5 left). With ``shortcut=None`` it is a plain block."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: str | None):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # the addition comes before the last ReLU
        return self.relu2(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (paper Fig. 5 right).

    The stride sits on the first 1x1 convolution, as in the paper. torchvision's
    ResNet-50/101/152 moved it to the 3x3 ("ResNet v1.5"): same parameters,
    more multiply-adds.
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: str | None):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv1x1(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)
        self.relu3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu3(out)


def make_stage(
    block: type[BasicBlock] | type[Bottleneck],
    in_channels: int,
    width: int,
    num_blocks: int,
    stride: int,
    shortcut: str | None,
) -> nn.Sequential:
    """A stage of ``num_blocks`` blocks; only the first one may subsample."""
    blocks = []
    for i in range(num_blocks):
        blocks.append(block(in_channels, width, stride if i == 0 else 1, shortcut))
        in_channels = width * block.expansion
    return nn.Sequential(*blocks)


def init_he(model: nn.Module) -> None:
    """He initialisation (He et al., 2015, "Delving deep into rectifiers"), as the paper uses."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
