"""The ImageNet networks of Table 1 (plain and residual) and VGG, for the cost comparisons."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import vgg16, vgg19

from resnet_repro.models.blocks import BasicBlock, Bottleneck, check_shortcut, init_he, make_stage

STAGE_WIDTHS = (64, 128, 256, 512)

# Table 1: blocks per stage (conv2_x .. conv5_x) and the block type.
TABLE1 = {
    18: ((2, 2, 2, 2), BasicBlock),
    34: ((3, 4, 6, 3), BasicBlock),
    50: ((3, 4, 6, 3), Bottleneck),
    101: ((3, 4, 23, 3), Bottleneck),
    152: ((3, 8, 36, 3), Bottleneck),
}
PLAIN_DEPTHS = (18, 34)  # the paper builds plain twins of the basic-block nets only
VGG_DEPTHS = {16: vgg16, 19: vgg19}


class ImageNetNet(nn.Module):
    """7x7 conv stem, max pool, four stages, average pool, 1000-way fully connected."""

    def __init__(self, depth: int, shortcut: str | None, num_classes: int = 1000):
        super().__init__()
        blocks, block = TABLE1[depth]
        self.depth = depth
        self.shortcut = shortcut
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels, stages = 64, []
        for i, (width, num_blocks) in enumerate(zip(STAGE_WIDTHS, blocks, strict=True)):
            stride = 1 if i == 0 else 2  # conv3_1, conv4_1 and conv5_1 subsample
            stages.append(make_stage(block, in_channels, width, num_blocks, stride, shortcut))
            in_channels = width * block.expansion
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        init_he(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu1(self.bn1(self.conv1(x))))
        x = self.stage4(self.stage3(self.stage2(self.stage1(x))))
        return self.fc(self.pool(x).flatten(1))


def _check_depth(depth: int, allowed, what: str) -> int:
    if isinstance(depth, bool) or depth not in allowed:
        raise ValueError(
            f"{what} depth must be one of {', '.join(map(str, allowed))} (the paper's), got {depth!r}"
        )
    return depth


def imagenet_plain(depth: int) -> ImageNetNet:
    """Plain-18 or plain-34 (Table 2)."""
    return ImageNetNet(_check_depth(depth, PLAIN_DEPTHS, "ImageNet plain"), shortcut=None)


def imagenet_resnet(depth: int, shortcut: str = "B") -> ImageNetNet:
    """ResNet-18/34 (basic blocks) or ResNet-50/101/152 (bottlenecks), shortcut option A, B or C."""
    _check_depth(depth, tuple(TABLE1), "ImageNet ResNet")
    return ImageNetNet(depth, shortcut=check_shortcut(shortcut))


def vgg(depth: int) -> nn.Module:
    """VGG-16 or VGG-19 (Simonyan and Zisserman), as torchvision builds them, untrained."""
    return VGG_DEPTHS[_check_depth(depth, tuple(VGG_DEPTHS), "VGG")](weights=None)
