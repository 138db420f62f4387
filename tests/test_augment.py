"""The paper's augmentation as batch tensor ops: checked against slow per-image references."""

import itertools

import pytest
import torch

from resnet_repro.cifar.augment import crop_flip, mean_image, normalize, random_crop_flip

PAD = 4


def reference_crop_flip(image: torch.Tensor, row: int, col: int, flip: bool, pad: int = PAD) -> torch.Tensor:
    """One image, the obvious way: zero-pad, slice the window, mirror it."""
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=image.dtype)
    padded[:, pad : pad + h, pad : pad + w] = image
    window = padded[:, row : row + h, col : col + w]
    return window.flip(-1) if flip else window


def coordinate_images(n: int, size: int = 32) -> torch.Tensor:
    """Channel 0 holds row+1, channel 1 holds column+1 (0 is left for the padding)."""
    steps = torch.arange(1, size + 1, dtype=torch.float32)
    grid = torch.stack([steps[:, None].expand(size, size), steps[None, :].expand(size, size)])
    return grid.expand(n, 2, size, size).clone()


def recover_params(out: torch.Tensor, pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Offsets and flips of augmented coordinate images, read from two centre pixels (never padding)."""
    centre = out.shape[-1] // 2
    rows = out[:, 0, centre, centre] - 1 - (centre - pad)
    col_here, col_right = out[:, 1, centre, centre], out[:, 1, centre, centre + 1]
    flips = col_right < col_here
    # A flipped window reads column (col + W-1 - j) of the padded image at output column j.
    cols = torch.where(flips, col_here - 1 + pad - (out.shape[-1] - 1 - centre), col_here - 1 + pad - centre)
    return rows.long(), cols.long(), flips


def test_mean_image_is_the_per_pixel_mean():
    images = torch.randint(0, 256, (5000, 3, 8, 8), dtype=torch.uint8)  # more than one summing chunk
    mean = mean_image(images)
    assert mean.dtype == torch.float32 and mean.shape == (3, 8, 8)
    assert torch.allclose(mean, images.double().mean(dim=0).float() / 255, atol=1e-7)
    with pytest.raises(ValueError, match="uint8"):
        mean_image(images.float())


def test_normalize_subtracts_the_mean_on_the_unit_scale():
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    before = images.clone()
    mean = mean_image(images)
    out = normalize(images, mean)
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert torch.allclose(out, images.float() / 255 - mean)
    assert torch.allclose(out.mean(dim=0), torch.zeros(3, 32, 32), atol=1e-6)
    assert torch.equal(images, before)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_crops_are_real_shifts_of_the_padded_image(dtype):
    images = torch.randint(0, 256, (12, 3, 32, 32)).to(dtype)
    before = images.clone()
    out = random_crop_flip(images, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == dtype
    assert torch.equal(images, before), "the input (e.g. the test view) must not be modified"
    candidates = list(itertools.product(range(2 * PAD + 1), range(2 * PAD + 1), (False, True)))
    for image, augmented in zip(images, out, strict=True):
        matches = [p for p in candidates if torch.equal(reference_crop_flip(image, *p), augmented)]
        assert len(matches) == 1, f"output matches {len(matches)} crops of its padded input"


def test_crop_flip_matches_the_reference_for_given_offsets():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    rows, cols = torch.tensor([0, 8, 4, 2, 8, 0]), torch.tensor([0, 8, 4, 7, 0, 8])
    flips = torch.tensor([False, True, False, True, True, False])
    out = crop_flip(images, rows, cols, flips)
    for i in range(6):
        assert torch.equal(out[i], reference_crop_flip(images[i], int(rows[i]), int(cols[i]), bool(flips[i])))
    assert torch.equal(crop_flip(images, rows * 0 + PAD, cols * 0 + PAD, flips & False), images)


def test_offsets_are_uniform_and_flips_happen_half_the_time():
    # The draws depend on n and the seed, not on the image size: 12x12 images (the smallest even size
    # whose two centre pixels are never padding) get the very offsets and flips of 32x32 ones, in about
    # 25 MB instead of 650 MB.
    n, size = 20_000, 12
    out = random_crop_flip(coordinate_images(n, size), generator=torch.Generator().manual_seed(1))
    rows, cols, flips = recover_params(out)
    assert 0.48 < flips.float().mean() < 0.52  # binomial sd 0.0035
    for offsets in (rows, cols):
        freq = offsets.bincount(minlength=2 * PAD + 1).float() / n
        assert len(freq) == 2 * PAD + 1 and torch.allclose(freq, torch.full_like(freq, 1 / 9), atol=0.012)
    # Rows and columns are drawn independently: every one of the 81 windows shows up.
    assert len(set((rows * 9 + cols).tolist())) == 81
    image = coordinate_images(1, size)[0]
    for i in range(0, n, 2000):  # the coordinate reading agrees with the reference
        reference = reference_crop_flip(image, int(rows[i]), int(cols[i]), bool(flips[i]))
        assert torch.equal(out[i], reference)


def test_seeded_generator_reproduces_the_draw():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    first = random_crop_flip(images, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, random_crop_flip(images, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(first, random_crop_flip(images, generator=torch.Generator().manual_seed(8)))


def test_pad_zero_only_flips():
    images = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    out = random_crop_flip(images, pad=0, generator=torch.Generator().manual_seed(0))
    same = (out == images).flatten(1).all(dim=1)
    mirrored = (out == images.flip(-1)).flatten(1).all(dim=1)
    assert bool((same ^ mirrored).all()) and 0 < int(mirrored.sum()) < 50


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_images_with_a_cpu_generator_match_the_cpu_result():
    images = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8)
    on_cpu = random_crop_flip(images, generator=torch.Generator().manual_seed(3))
    on_gpu = random_crop_flip(images.cuda(), generator=torch.Generator().manual_seed(3))
    assert on_gpu.is_cuda and torch.equal(on_gpu.cpu(), on_cpu)
    mean = mean_image(images.cuda())
    assert torch.allclose(mean.cpu(), mean_image(images), atol=1e-7)
    assert normalize(images.cuda(), mean).is_cuda
