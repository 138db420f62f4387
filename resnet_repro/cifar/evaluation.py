"""Measuring a network without training it: test error, layer responses (Figure 7), gradient norms.

Used by the trainer at its eval points and by the analyses of trained weights; nothing here changes a
model's weights, its batch-norm statistics or any random stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Test images per forward pass (no effect on the result). 500 rather than 1000: on a CPU the larger
# batch's activations spill out of the caches; a ResNet-56 test pass took 25-35% more CPU time at
# 1000 than at 250-500 (bf16, one thread, AVX512-BF16 EPYC).
EVAL_BATCH = 500


class Moments:
    """Mean and variance of every element of a stream of tensors, merged batch by batch on the device
    (Chan et al.'s pairwise update, float64 totals), so no full-size float64 copy is ever made."""

    def __init__(self, device: torch.device):
        self.count = 0
        self.mean = torch.zeros((), dtype=torch.float64, device=device)
        self.m2 = torch.zeros((), dtype=torch.float64, device=device)

    def add(self, values: torch.Tensor) -> None:
        n = values.numel()
        batch_var, batch_mean = torch.var_mean(values.detach().float(), correction=0)
        batch_m2 = batch_var.double() * n
        total = self.count + n
        delta = batch_mean.double() - self.mean
        self.mean += delta * (n / total)
        self.m2 += batch_m2 + delta.square() * (self.count * n / total)
        self.count = total

    def std(self) -> float:
        """Population standard deviation."""
        return (self.m2 / self.count).sqrt().item()


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on `device` when `amp`: the matrix products in bf16, weights and sums in fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device, amp: bool) -> torch.Tensor:
    """The predicted class of every image (already normalized), in eval mode, EVAL_BATCH at a time."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat(
            [
                _logits(model, images[start : start + EVAL_BATCH], device, amp).argmax(dim=1)
                for start in range(0, len(images), EVAL_BATCH)
            ]
        )
    finally:
        model.train(was_training)


def _logits(model: nn.Module, images: torch.Tensor, device: torch.device, amp: bool) -> torch.Tensor:
    with autocast(device, amp):
        return model(images.to(device, non_blocking=True))


@torch.inference_mode()
def test_error(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    amp: bool,
    layers: list[tuple[str, nn.Module]] | None = None,
) -> tuple[float, list[float] | None]:
    """Test error (%) of the single original view of every image, with batch norm in eval mode.

    layers: modules whose outputs to measure (Figure 7): also returns the population standard deviation
    of all elements of each one's output over all images (every image, channel and position).
    """
    was_training = model.training
    model.eval()
    wrong = torch.zeros((), dtype=torch.int64, device=device)
    moments = [Moments(device) for _ in layers or []]
    hooks = [
        module.register_forward_hook(lambda _m, _i, output, m=m: m.add(output))
        for (_, module), m in zip(layers or [], moments, strict=True)
    ]
    try:
        for start in range(0, len(labels), EVAL_BATCH):
            logits = _logits(model, images[start : start + EVAL_BATCH], device, amp)
            wrong += (logits.argmax(dim=1) != labels[start : start + EVAL_BATCH].to(device)).sum()
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    error = 100.0 * wrong.item() / len(labels)
    return error, ([m.std() for m in moments] if layers else None)


def gradient_norms(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    layers: list[tuple[str, nn.Module]],
    amp: bool,
) -> list[float]:
    """The norm of the gradient of the mini-batch loss with respect to each layer's output.

    Computed as a training step computes it (training mode: batch norm normalizes with the batch's own
    statistics, bf16 autocast if `amp`), but without side effects: the parameters' .grad are not touched
    (torch.autograd.grad differentiates only the layer outputs) and batch norm's running statistics are
    put back afterwards. Section 4.1's "backward propagated gradients exhibit healthy norms".
    """
    device = images.device
    outputs: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for _, module in layers]
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    was_training = model.training
    model.train()
    try:
        with autocast(device, amp):
            loss = F.cross_entropy(model(images), labels)
        grads = torch.autograd.grad(loss, outputs)
    finally:
        for hook in hooks:
            hook.remove()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])
        model.train(was_training)
    return torch.stack([g.float().norm() for g in grads]).tolist()  # one host sync for all layers
