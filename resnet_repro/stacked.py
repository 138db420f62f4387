"""K seeds of one CIFAR-10 network trained as one wide network: the same numbers as K separate runs.

An option for the GPU, to be taken only if `benchmarks/stacked_throughput.py` shows it faster per model
than K separate graphs there (grouped convolutions are not always faster than a loop; nobody has measured
them for these shapes on a Hopper GPU yet). It is not wired into training.

The K models stay exactly separate:
- every convolution becomes a grouped one (groups x K), its weights the K models' stacked along the output
  channels: model k reads only channels k*C..(k+1)*C-1 of its input and writes only its own;
- batch norm runs over K*C channels, whose statistics are per channel, hence per model;
- option A's zero padding pads each model's channels, not the combined ones;
- the fully connected layer is one matrix product per model;
- each model reads its own mini-batch (its own data order and crops), stacked along the channels;
- the loss is the sum of the K models' losses (a mean would divide each model's gradient by K);
- each model is initialised as if alone (built by the usual constructor with its own seed, then stacked:
  a stacked convolution's fan-out would be K times too large for He initialisation);
- weight decay and momentum act per element, so one SGD over the stacked parameters is K SGDs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .augment import crop_flip, draw_crops, normalize
from .models.blocks import ZeroPadShortcut
from .schedule import BATCH_SIZE, MOMENTUM, PAD, WEIGHT_DECAY
from .training_loop import AUGMENT_SEED_OFFSET

# Modules without parameters whose forward does not mix channels: they work on stacked channels as they are.
_CHANNEL_WISE = (nn.ReLU, nn.Identity, nn.AdaptiveAvgPool2d)


class StackedZeroPad(nn.Module):
    """Option A's shortcut for K models: subsample, then zero-pad each model's channels."""

    def __init__(self, shortcut: ZeroPadShortcut, k: int):
        super().__init__()
        self.k, self.stride, self.extra_channels = k, shortcut.stride, shortcut.extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        n, kc, h, w = x.shape
        x = x.reshape(n, self.k, kc // self.k, h, w)
        x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x.reshape(n, -1, h, w)


class StackedLinear(nn.Module):
    """K linear layers: [N, K*in] -> [N, K, out]. Weight [K*out, in], bias [K*out] (K stacked blocks).

    One F.linear per model, so each computes exactly what its own nn.Linear computes (K tiny products;
    a batched product would round differently).
    """

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.k = len(layers)
        self.weight = nn.Parameter(torch.cat([layer.weight.detach() for layer in layers]))
        self.bias = nn.Parameter(torch.cat([layer.bias.detach() for layer in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs, weights, biases = x.chunk(self.k, dim=1), self.weight.chunk(self.k), self.bias.chunk(self.k)
        return torch.stack([F.linear(*args) for args in zip(inputs, weights, biases, strict=True)], dim=1)


def _stack_conv(convs: Sequence[nn.Conv2d]) -> nn.Conv2d:
    first, k = convs[0], len(convs)
    conv = nn.Conv2d(
        first.in_channels * k,
        first.out_channels * k,
        first.kernel_size,
        stride=first.stride,
        padding=first.padding,
        dilation=first.dilation,
        groups=first.groups * k,
        bias=first.bias is not None,
    )
    with torch.no_grad():
        conv.weight.copy_(torch.cat([c.weight for c in convs]))
        if first.bias is not None:
            conv.bias.copy_(torch.cat([c.bias for c in convs]))
    return conv


def _stack_batch_norm(norms: Sequence[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    first = norms[0]
    norm = nn.BatchNorm2d(first.num_features * len(norms), eps=first.eps, momentum=first.momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(norm, name).copy_(torch.cat([getattr(n, name) for n in norms]))
        norm.num_batches_tracked.copy_(first.num_batches_tracked)
    return norm


def _stack_module(modules: Sequence[nn.Module]) -> nn.Module | None:
    """The stacked version of one leaf module, or None for a container (whose children are stacked)."""
    first = modules[0]
    if isinstance(first, nn.Conv2d):
        return _stack_conv(modules)
    if isinstance(first, nn.BatchNorm2d):
        return _stack_batch_norm(modules)
    if isinstance(first, nn.Linear):
        return StackedLinear(modules)
    if isinstance(first, ZeroPadShortcut):
        return StackedZeroPad(first, len(modules))
    if next(first.children(), None) is not None:
        return None
    if isinstance(first, _CHANNEL_WISE):
        return copy.deepcopy(first)
    raise TypeError(f"cannot stack a {type(first).__name__}")


def stack_models(models: Sequence[nn.Module]) -> nn.Module:
    """One network computing K networks of the same architecture at once (see the module's docstring).

    Input: [N, K*3, H, W], model k's images in channels 3k..3k+2 (`stack_images`). Output: [N, K, classes].
    Works for the CIFAR networks of models/cifar.py (any depth, plain or shortcut A/B/C).
    """
    if not models:
        raise ValueError("nothing to stack")
    stacked = copy.deepcopy(models[0])
    for name, _ in list(models[0].named_modules()):
        if not name:
            continue
        replacement = _stack_module([model.get_submodule(name) for model in models])
        if replacement is not None:
            parent, _, child = name.rpartition(".")
            setattr(stacked.get_submodule(parent) if parent else stacked, child, replacement)
    stacked.stacked_models = len(models)
    return stacked


def unstack_state(stacked: nn.Module, model: nn.Module) -> list[dict[str, torch.Tensor]]:
    """The K models' state dicts (keys and shapes of `model`, one of the K) taken out of `stacked`."""
    k = stacked.stacked_models
    states: list[dict[str, torch.Tensor]] = [{} for _ in range(k)]
    single = model.state_dict()
    for key, value in stacked.state_dict().items():
        shared = value.ndim == 0  # num_batches_tracked: the same count for all
        parts = [value] * k if shared else value.chunk(k)
        for state, part in zip(states, parts, strict=True):
            state[key] = part.reshape(single[key].shape)
    return states


def stack_images(batches: Sequence[torch.Tensor]) -> torch.Tensor:
    """K mini-batches [N, 3, H, W] -> one [N, K*3, H, W] (model k's in channels 3k..3k+2)."""
    return torch.cat(list(batches), dim=1)


def stacked_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The sum over the K models of each one's mean cross-entropy. logits [N, K, C], labels [N, K]."""
    return sum(F.cross_entropy(logits[:, k], labels[:, k]) for k in range(logits.shape[1]))


class StackedLoop:
    """K runs of one network (seeds `seeds`) trained as one stacked network, each with the data order
    and crops a `TrainingLoop` of its seed draws. fp32 and eager: what the equivalence test runs, and
    the pattern a GPU version would follow if the micro-benchmark finds stacking worth it."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        train_images,
        train_labels,
        seeds: Sequence[int],
        batch_size: int = BATCH_SIZE,
    ):
        from .augment import mean_image

        self.batch_size = batch_size
        self.model = stack_models(models)
        self.train_images, self.train_labels = train_images, train_labels
        self.mean = mean_image(train_images)
        self.k = len(seeds)
        self.order_generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.augment_generators = [
            torch.Generator().manual_seed(seed + AUGMENT_SEED_OFFSET) for seed in seeds
        ]
        self.orders: list[torch.Tensor | None] = [None] * self.k
        self.positions = [0] * self.k
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.0, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
        )

    def _batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Model k's next mini-batch, drawn as `TrainingLoop.next_batch` draws it for seed k."""
        if self.orders[k] is None or self.positions[k] + self.batch_size > len(self.orders[k]):
            self.orders[k] = torch.randperm(len(self.train_labels), generator=self.order_generators[k])
            self.positions[k] = 0
        index = self.orders[k][self.positions[k] : self.positions[k] + self.batch_size]
        self.positions[k] += self.batch_size
        offsets, flips = draw_crops(self.batch_size, PAD, self.augment_generators[k])
        images = crop_flip(
            normalize(self.train_images[index], self.mean), offsets[0], offsets[1], flips.bool(), PAD
        )
        return images, self.train_labels[index]

    def step(self, lr: float) -> torch.Tensor:
        """One SGD step of all K models; returns the sum of their losses."""
        batches = [self._batch(k) for k in range(self.k)]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        logits = self.model(stack_images([images for images, _ in batches]))
        labels = torch.stack([labels for _, labels in batches], dim=1)
        loss = stacked_loss(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        n, k, classes = logits.shape
        return (
            F.cross_entropy(logits.detach().reshape(n * k, classes), labels.reshape(-1), reduction="none")
            .view(n, k)
            .mean(0)
        )
