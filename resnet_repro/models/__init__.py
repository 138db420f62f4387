"""The paper's networks: CIFAR-10 (section 4.2) and ImageNet (Table 1), plain and residual."""

from resnet_repro.models.blocks import SHORTCUT_OPTIONS, BasicBlock, Bottleneck
from resnet_repro.models.cifar import (
    DEPTH_RULE,
    PAPER_DEPTHS,
    CifarNet,
    blocks_per_stage,
    build_cifar,
    cifar_plain,
    cifar_resnet,
    parse_arch,
    response_layers,
)
from resnet_repro.models.imagenet import ImageNetNet, imagenet_plain, imagenet_resnet, vgg

__all__ = [
    "DEPTH_RULE",
    "PAPER_DEPTHS",
    "SHORTCUT_OPTIONS",
    "BasicBlock",
    "Bottleneck",
    "CifarNet",
    "ImageNetNet",
    "blocks_per_stage",
    "build_cifar",
    "cifar_plain",
    "cifar_resnet",
    "imagenet_plain",
    "imagenet_resnet",
    "parse_arch",
    "response_layers",
    "vgg",
]
