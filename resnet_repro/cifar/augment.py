"""The paper's CIFAR-10 preprocessing (section 4.2) as whole-batch tensor ops, on any device.

Per-pixel mean subtraction; for training, zero-pad 4 pixels, take a random 32x32 crop and flip
horizontally at random; the test images are the single original view (only `normalize`). No DataLoader
and no Python loop per image: a batch is augmented by two `gather`s, so it stays on the GPU and costs
no host sync.
"""

from __future__ import annotations

import torch

_CHUNK = 4096  # images per float32 partial sum of the mean image: 4096 * 255 < 2**24, so sums are exact


def mean_image(train_images: torch.Tensor) -> torch.Tensor:
    """The per-pixel mean of the training images: float32 [3, H, W] on the 0..1 scale.

    train_images: uint8 [N, 3, H, W]. Summed exactly, chunk by chunk (never a float copy of the whole
    set), on whatever device the images are.
    """
    if train_images.dtype != torch.uint8 or train_images.ndim != 4:
        raise ValueError(
            f"expected uint8 images [N, C, H, W], got {train_images.dtype} {tuple(train_images.shape)}"
        )
    total = torch.zeros(train_images.shape[1:], dtype=torch.float64, device=train_images.device)
    for start in range(0, len(train_images), _CHUNK):
        total += train_images[start : start + _CHUNK].float().sum(dim=0)  # exact: a sum below 2**24
    return (total.double() / (len(train_images) * 255.0)).float()


def normalize(images: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float32 on the 0..1 scale minus the mean image (the paper's only scaling)."""
    return images.float().div_(255.0).sub_(mean.to(images.device))


def random_crop_flip(
    images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero-pad `pad` pixels, crop a random HxW window and flip it horizontally with probability 1/2.

    Every image gets its own offsets and flip. images: [N, C, H, W] of any dtype (uint8 or normalized
    float: the padding is zeros in whichever space the images are); the input is not modified.
    generator: for reproducible draws; its device decides where the random numbers are drawn (a CPU
    generator works for CUDA images). Drawn in this order: row offsets, column offsets, flips.
    """
    draw_device = generator.device if generator is not None else images.device
    offsets, flips = draw_crops(len(images), pad, generator, draw_device)
    return crop_flip(
        images,
        offsets[0].to(images.device),
        offsets[1].to(images.device),
        flips.to(images.device).bool(),
        pad,
    )


def draw_crops(
    n: int,
    pad: int = 4,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random half of `random_crop_flip`: (row and column offsets [2, n], flips [n] as 0/1), int64.

    out: two int64 tensors of those shapes to draw into (the fixed inputs of a captured CUDA graph,
    refilled before every replay); the numbers are the same as without.
    """
    offsets, flips = out if out is not None else (None, None)
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=device, out=offsets)
    flips = torch.randint(0, 2, (n,), generator=generator, device=device, out=flips)
    return offsets, flips


def crop_flip(
    images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, flips: torch.Tensor, pad: int = 4
) -> torch.Tensor:
    """The deterministic half of `random_crop_flip`: image i is the window of the zero-padded image
    starting at (rows[i], cols[i]) (each 0..2*pad), mirrored left-right where flips[i] is True."""
    n, c, h, w = images.shape
    padded = images.new_zeros(n, c, h + 2 * pad, w + 2 * pad)
    padded[:, :, pad : pad + h, pad : pad + w] = images
    # Source row/column of every output pixel, per image; a flip reads the window's columns backwards.
    row_index = rows[:, None] + torch.arange(h, device=images.device)  # [N, H]
    col_step = torch.arange(w, device=images.device)
    col_index = cols[:, None] + torch.where(flips[:, None], w - 1 - col_step, col_step)  # [N, W]
    # Two gathers with broadcast (stride-0) indices: no [N, C, H, W] index tensor is materialised.
    out = padded.gather(2, row_index[:, None, :, None].expand(n, c, h, w + 2 * pad))  # [N, C, H, W+2p]
    return out.gather(3, col_index[:, None, None, :].expand(n, c, h, w))  # [N, C, H, W]
