"""The CIFAR-10 networks of section 4.2: depth 6n+2, plain or residual.

3x3 conv, 16 filters            32x32
2n 3x3 layers, 16 filters       32x32
2n 3x3 layers, 32 filters       16x16  (first layer has stride 2)
2n 3x3 layers, 64 filters        8x8   (first layer has stride 2)
global average pool, 10-way fully connected
"""

from __future__ import annotations

import re

from torch import Tensor, nn

from resnet_repro.models.blocks import BasicBlock, check_shortcut, conv3x3, init_he, make_stage

STAGE_WIDTHS = (16, 32, 64)
PAPER_DEPTHS = (20, 32, 44, 56, 110, 1202)
ARCH_PATTERN = re.compile(r"^(plain|resnet)(\d+)$")
# Every depth 6n+2 builds, not only the paper's: the rule with its first depths, for messages and help.
DEPTH_RULE = (
    f"6n+2 with n >= 1 ({', '.join(str(6 * n + 2) for n in range(1, 7))}, ...; "
    f"the paper's: {', '.join(map(str, PAPER_DEPTHS))})"
)


def blocks_per_stage(depth: int) -> int:
    """n for a depth of 6n+2; raises ValueError for any other depth."""
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise ValueError(f"depth must be an integer of the form 6n+2, got {depth!r}")
    if depth < 8 or (depth - 2) % 6 != 0:
        below = depth - (depth - 2) % 6
        nearest = f"{below} or {below + 6}" if below >= 8 else "8"
        raise ValueError(f"CIFAR-10 depth must be {DEPTH_RULE}, got {depth} (nearest: {nearest})")
    return (depth - 2) // 6


class CifarNet(nn.Module):
    """Plain (``shortcut=None``) or residual CIFAR-10 network of depth 6n+2."""

    def __init__(self, depth: int, shortcut: str | None, num_classes: int = 10):
        super().__init__()
        n = blocks_per_stage(depth)
        self.depth = depth
        self.shortcut = shortcut
        self.conv1 = conv3x3(3, STAGE_WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        self.relu1 = nn.ReLU(inplace=True)
        in_channels, stages = STAGE_WIDTHS[0], []
        for i, width in enumerate(STAGE_WIDTHS):
            stages.append(make_stage(BasicBlock, in_channels, width, n, 1 if i == 0 else 2, shortcut))
            in_channels = width
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        init_he(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(self.pool(x).flatten(1))


def cifar_plain(depth: int) -> CifarNet:
    """A plain CIFAR-10 net: the same layers as its residual twin, with no shortcuts."""
    return CifarNet(depth, shortcut=None)


def cifar_resnet(depth: int, shortcut: str = "A") -> CifarNet:
    """A residual CIFAR-10 net. The paper uses option A (identity shortcuts) on CIFAR-10."""
    return CifarNet(depth, shortcut=check_shortcut(shortcut))


def parse_arch(arch: str) -> tuple[str, int]:
    """``"resnet56"`` -> ``("resnet", 56)``, validating the depth."""
    match = ARCH_PATTERN.match(arch) if isinstance(arch, str) else None
    if match is None:
        raise ValueError(
            f"unknown architecture {arch!r}: expected 'plain' or 'resnet' followed by a depth "
            f"6n+2, e.g. {', '.join(f'resnet{d}' for d in PAPER_DEPTHS[:4])}, plain20"
        )
    family, depth = match.group(1), int(match.group(2))
    blocks_per_stage(depth)
    return family, depth


def build_cifar(arch: str, shortcut: str = "A") -> CifarNet:
    """Build a CIFAR-10 network by name: ``build_cifar("plain20")``, ``build_cifar("resnet56", "B")``."""
    family, depth = parse_arch(arch)
    return cifar_plain(depth) if family == "plain" else cifar_resnet(depth, shortcut)


def response_layers(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """The batch norms that follow a 3x3 convolution, in layer order.

    Their outputs are the responses of Figure 7: after batch norm, before the
    ReLU or the addition. Projection-shortcut batch norms are not 3x3 layers
    and are left out.
    """
    layers, previous_conv = [], None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            previous_conv = module
        elif isinstance(module, nn.BatchNorm2d):
            if previous_conv is not None and previous_conv.kernel_size == (3, 3):
                layers.append((name, module))
            previous_conv = None
    return layers
