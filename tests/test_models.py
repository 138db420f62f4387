"""The paper's networks: shapes, parameter counts against Table 6, shortcut options, bad arguments."""

import re

import pytest
import torch
import torchvision.models as tvm

from resnet_repro.models import (
    PAPER_DEPTHS,
    blocks_per_stage,
    build_cifar,
    cifar_plain,
    cifar_resnet,
    imagenet_plain,
    imagenet_resnet,
    parse_arch,
    response_layers,
    vgg,
)
from resnet_repro.paper.counting import count_params
from resnet_repro.paper.reference import paper_value


@pytest.mark.parametrize("depth", PAPER_DEPTHS)
def test_cifar_resnet_params_match_table6(depth):
    # Table 6 rounds to two significant figures (0.27M, 1.7M, 19.4M).
    paper = paper_value("params", f"ResNet-{depth}")
    ours = count_params(cifar_resnet(depth))
    assert ours == pytest.approx(paper, rel=0.02)


@pytest.mark.parametrize("depth", [20, 56, 110])
def test_option_a_has_exactly_the_parameters_of_the_plain_twin(depth):
    assert count_params(cifar_resnet(depth, "A")) == count_params(cifar_plain(depth))


@pytest.mark.parametrize("depth", [20, 32])
def test_projection_options_add_parameters_in_order(depth):
    a, b, c = (count_params(cifar_resnet(depth, s)) for s in "ABC")
    assert a < b < c


def test_cifar_forward_shape_and_feature_map_sizes():
    model = cifar_resnet(20).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    stage_sizes = []
    hooks = [
        stage.register_forward_hook(lambda m, i, o: stage_sizes.append(tuple(o.shape[1:])))
        for stage in (model.stage1, model.stage2, model.stage3)
    ]
    model(x)
    for h in hooks:
        h.remove()
    assert stage_sizes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_option_a_shortcut_is_identity_plus_zero_padding():
    block = cifar_resnet(20, "A").stage2[0]
    x = torch.randn(1, 16, 32, 32)
    out = block.shortcut(x)
    assert out.shape == (1, 32, 16, 16)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0


def test_residual_block_adds_its_input_and_plain_block_does_not():
    torch.manual_seed(0)
    residual, plain = cifar_resnet(20).stage1[0].eval(), cifar_plain(20).stage1[0].eval()
    # With the last BN scaled to zero the residual branch vanishes: out = relu(x).
    for block in (residual, plain):
        torch.nn.init.zeros_(block.bn2.weight)
        torch.nn.init.zeros_(block.bn2.bias)
    x = torch.randn(1, 16, 8, 8)
    torch.testing.assert_close(residual(x), torch.relu(x))
    assert torch.count_nonzero(plain(x)) == 0


@pytest.mark.parametrize("depth", [20, 56])
def test_response_layers_are_every_3x3_layer_in_order(depth):
    names = [name for name, _ in response_layers(cifar_resnet(depth, "B"))]
    assert len(names) == depth - 1  # every weighted layer but the fully connected one
    assert names[:3] == ["bn1", "stage1.0.bn1", "stage1.0.bn2"]
    assert not any("shortcut" in n for n in names)


def test_build_cifar_by_name():
    assert parse_arch("resnet110") == ("resnet", 110)
    model = build_cifar("plain56")
    assert model.shortcut is None and model.depth == 56
    assert build_cifar("resnet32", "C").shortcut == "C"


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_imagenet_option_b_params_equal_torchvision(depth):
    with torch.device("meta"):
        ours = count_params(imagenet_resnet(depth, "B"))
        theirs = count_params(getattr(tvm, f"resnet{depth}")())
    assert ours == theirs


def test_imagenet_plain_and_option_a_have_equal_params_and_output_shape():
    assert count_params(imagenet_plain(18)) == count_params(imagenet_resnet(18, "A"))
    out = imagenet_resnet(18).eval()(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1000)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: cifar_resnet(21), "6n\\+2"),
        (lambda: cifar_plain(0), "6n\\+2"),
        (lambda: cifar_plain(-4), "6n\\+2"),
        (lambda: cifar_resnet(2), "6n\\+2"),
        (lambda: cifar_resnet(20.0), "integer"),
        (lambda: cifar_resnet(20, "D"), "'A'.*'B'.*'C'"),
        (lambda: build_cifar("resnet"), "plain' or 'resnet'"),
        (lambda: build_cifar("vgg20"), "plain' or 'resnet'"),
        (lambda: imagenet_resnet(20), "18, 34, 50, 101, 152"),
        (lambda: imagenet_plain(50), "18, 34"),
        (lambda: imagenet_resnet(34, "a"), "'A'"),
        (lambda: vgg(11), "16, 19"),
    ],
)
def test_bad_arguments_say_what_is_allowed(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(("depth", "nearest"), [(21, "20 or 26"), (40, "38 or 44"), (3, "8")])
def test_a_depth_off_the_rule_is_told_the_rule_and_its_nearest_depths(depth, nearest):
    with pytest.raises(ValueError) as raised:
        blocks_per_stage(depth)
    message = str(raised.value)
    examples = [int(d) for d in re.findall(r"\d+", message.split("(", 1)[1].split("...")[0])]
    gaps = {b - a for a, b in zip(examples, examples[1:], strict=False)}
    assert examples[0] == 8 and gaps == {6}  # every depth of the rule up to the last example
    assert f"got {depth} (nearest: {nearest})" in message
    assert all(blocks_per_stage(int(d)) for d in nearest.split(" or "))


def test_every_6n_plus_2_depth_builds_not_only_the_papers():
    assert build_cifar("resnet26").depth == 26 and build_cifar("plain38").depth == 38
