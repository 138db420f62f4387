"""Multiply-add and parameter counts against the paper's Table 1, Figure 3 and section 4.1."""

import pytest
import torch
from torch import nn

from resnet_repro.models import cifar_resnet, imagenet_plain, imagenet_resnet, vgg
from resnet_repro.paper.counting import (
    CIFAR_INPUT,
    IMAGENET_INPUT,
    CostRow,
    cost_table,
    count_macs,
    count_params,
)
from resnet_repro.paper.reference import paper_value

IMAGENET_MODELS = {
    "ResNet-18": lambda: imagenet_resnet(18),
    "ResNet-34": lambda: imagenet_resnet(34),
    "ResNet-50": lambda: imagenet_resnet(50),
    "ResNet-101": lambda: imagenet_resnet(101),
    "ResNet-152": lambda: imagenet_resnet(152),
    "plain-34": lambda: imagenet_plain(34),
    "VGG-19": lambda: vgg(19),
    "VGG-16": lambda: vgg(16),
}


@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_macs_match_the_paper_within_3_percent(name):
    with torch.device("meta"):
        model = IMAGENET_MODELS[name]()
    assert count_macs(model, IMAGENET_INPUT) == pytest.approx(paper_value("macs", name), rel=0.03)


def test_macs_of_a_known_layer_by_hand():
    # 3x3 conv, 3->16 channels on 32x32, plus a 16->10 linear on the pooled vector.
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)
    )
    assert count_macs(model, CIFAR_INPUT) == 32 * 32 * 16 * 3 * 9 + 16 * 10


def test_count_macs_does_not_change_training_mode_and_runs_on_real_weights():
    model = cifar_resnet(20).train()
    macs = count_macs(model)
    assert model.training
    assert 40e6 < macs < 42e6  # ResNet-20: about 41M multiply-adds on 32x32


def test_count_params_counts_only_trainable_parameters():
    model = nn.Linear(4, 3)
    assert count_params(model) == 15
    model.bias.requires_grad_(False)
    assert count_params(model) == 12


def test_count_macs_rejects_a_bad_input_shape():
    with pytest.raises(ValueError, match="three positive integers"):
        count_macs(cifar_resnet(20), (32, 32))


def test_cost_table_is_tidy():
    table = cost_table(
        [
            CostRow("ResNet-20", 20, "A", lambda: cifar_resnet(20), CIFAR_INPUT),
            CostRow("plain-34", 34, None, lambda: imagenet_plain(34), IMAGENET_INPUT),
        ]
    )
    assert list(table.columns) == ["name", "depth", "shortcut", "input", "params", "macs"]
    assert table.shortcut.tolist() == ["A", "-"]
    assert table.input.tolist() == ["32x32", "224x224"]
    assert table.params.iloc[0] == count_params(cifar_resnet(20))
