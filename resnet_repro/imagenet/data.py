"""ImageNet in the standard ImageFolder layout, with the paper's augmentation (section 3.4).

    <root>/train/<wnid>/*.JPEG      1.28M images, 1000 classes
    <root>/val/<wnid>/*.JPEG        50k images, sorted into the same class folders

Training view: the shorter side resized to a random length in [256, 480] (scale augmentation), a random
224x224 crop, a random horizontal flip, AlexNet's PCA colour augmentation, the per-pixel mean
subtracted. Test views: the center 224x224 crop of the image resized to shorter side 256, or the
10-crop test of AlexNet (four corners and the center, and their flips), whose softmax scores are
averaged. Every size is a `Geometry` field, so the tests run the same code on 32-pixel images.

Images are decoded with Pillow (ImageFolder's own loader; torchvision 0.29 deprecates its decoders in
favour of TorchCodec) in DataLoader workers, and resized and cropped as PIL images before becoming
tensors; the training crop resamples only its own window (`RandomScaleCrop`). A missing or malformed
folder stops with a `DataError` that names the path and says what was expected; an unreadable image
stops the run (naming the file) rather than being skipped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from resnet_repro.cifar.data import DataError

SPLITS = ("train", "val")
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".webp")
_LAYOUT = "train/<class>/*.JPEG and val/<class>/*.JPEG"

# AlexNet's colour augmentation (Krizhevsky et al., 2012, section 4.1): add the RGB principal components
# of the training pixels, scaled by their eigenvalues times a N(0, 0.1) draw per image. The eigenpairs of
# ImageNet's pixels (0..1 scale) as fb.resnet.torch (datasets/imagenet.lua) and pycls publish them.
PCA_EIGENVALUES = (0.2175, 0.0188, 0.0045)
PCA_EIGENVECTORS = (  # columns are the eigenvectors; rows are R, G, B
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
PCA_STD = 0.1
TEN_CROPS = 10


@dataclass(frozen=True)
class Geometry:
    """Image sizes of the recipe, in pixels. The paper's are the defaults; tests use small ones."""

    crop: int = 224  # the network's input, training and test
    scale_min: int = 256  # training: the shorter side is resized to a random length in [min, max]
    scale_max: int = 480
    test_size: int = 256  # testing: the shorter side is resized to this, then cropped

    def __post_init__(self):
        if not 0 < self.crop <= min(self.scale_min, self.test_size):
            raise ValueError(f"the crop ({self.crop}) must fit in the resized images: {self}")
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min}) must be <= scale_max ({self.scale_max})")


PAPER_GEOMETRY = Geometry()


# ---------------------------------------------------------------------------------------------------------
# The folder
# ---------------------------------------------------------------------------------------------------------


def check_image_folder(root: str | os.PathLike) -> list[str]:
    """The class names (sorted) of an ImageNet-style tree; a DataError naming what is wrong otherwise.

    Only looks at the two top levels (cheap even for ImageNet); the images themselves are listed by
    `ImageFolder` and checked as they are decoded.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (expected an ImageFolder tree: {_LAYOUT})")
    classes = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            raise DataError(f"{folder}: missing (expected {_LAYOUT})")
        entries = list(os.scandir(folder))
        names = sorted(entry.name for entry in entries if entry.is_dir())
        loose = [entry.name for entry in entries if entry.is_file() and _is_image(entry.name)]
        if loose and not names:
            raise DataError(
                f"{folder}: {len(loose)} images directly in the folder, not in class folders (expected "
                f"{split}/<class>/*.JPEG; ILSVRC's val images must first be sorted by their labels)"
            )
        if not names:
            raise DataError(f"{folder}: no class folders (expected {split}/<class>/*.JPEG)")
        classes[split] = names
    if classes["train"] != classes["val"]:
        only_train = sorted(set(classes["train"]) - set(classes["val"]))
        only_val = sorted(set(classes["val"]) - set(classes["train"]))
        raise DataError(
            f"{root}: train/ and val/ have different classes (only in train: {_few(only_train)}; "
            f"only in val: {_few(only_val)}); expected the same class folders in both"
        )
    return classes["train"]


def list_images(root: str | os.PathLike, split: str) -> list[tuple[str, int]]:
    """(path, class index) of every image of one split, in ImageFolder's order (sorted classes, files)."""
    folder = Path(root) / split
    try:
        return ImageFolder(str(folder), is_valid_file=_is_image).samples
    except FileNotFoundError as err:  # ImageFolder's "Found no valid file for the classes ..."
        raise DataError(f"{folder}: {' '.join(str(err).split())}") from None


def fingerprint(root: str | os.PathLike, samples: Sequence[tuple[str, int]]) -> str:
    """sha256 of every image's relative path, class and size in bytes.

    Hashing 150 GB of images is out of reach; this still tells ILSVRC-2012 from a subset, a re-sorted
    copy or a resized copy (different sizes), which is what a run's provenance must not confuse.
    """
    root = Path(root)
    digest = hashlib.sha256()
    for path, label in samples:
        digest.update(
            f"{Path(path).relative_to(root).as_posix()}\t{label}\t{os.path.getsize(path)}\n".encode()
        )
    return digest.hexdigest()


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _few(names: list[str], limit: int = 3) -> str:
    if not names:
        return "none"
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_image(path: str) -> Image.Image:
    """An RGB PIL image (ImageNet's grayscale and CMYK JPEGs converted); a DataError naming the file if
    it is unreadable or truncated."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")  # decodes the whole file: a truncated one raises here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: unreadable or truncated image ({' '.join(str(err).split())})") from None


# ---------------------------------------------------------------------------------------------------------
# Transforms (each takes one PIL image; all randomness from torch's global generator)
# ---------------------------------------------------------------------------------------------------------


class RandomScaleCrop(torch.nn.Module):
    """Scale augmentation and the random crop in one resampling.

    The shorter side is resized to a length drawn uniformly from [scale_min, scale_max], and a random
    crop x crop window is taken from the result. Only the window is resampled (PIL's `box`, in the
    original image's coordinates, with the whole resize's filter and pixel centres): the same pixels as
    resizing the whole image first, at a third of the cost, which matters as decoding and augmenting
    is what limits a multi-GPU ImageNet run.
    """

    def __init__(self, crop: int, scale_min: int, scale_max: int):
        super().__init__()
        self.crop, self.scale_min, self.scale_max = crop, scale_min, scale_max

    def draw(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(resized width, resized height, crop left, crop top), from torch's generator."""
        side = int(torch.randint(self.scale_min, self.scale_max + 1, ()))
        ratio = side / min(width, height)
        new_width, new_height = max(self.crop, round(width * ratio)), max(self.crop, round(height * ratio))
        left = int(torch.randint(new_width - self.crop + 1, ()))
        top = int(torch.randint(new_height - self.crop + 1, ()))
        return new_width, new_height, left, top

    def forward(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        new_width, new_height, left, top = self.draw(width, height)
        sx, sy = width / new_width, height / new_height  # resized pixels -> original pixels
        box = (left * sx, top * sy, (left + self.crop) * sx, (top + self.crop) * sy)
        return image.resize((self.crop, self.crop), Image.Resampling.BILINEAR, box=box)


class PCALighting(torch.nn.Module):
    """AlexNet's colour augmentation on a float RGB image: + eigenvectors @ (N(0, std) * eigenvalues)."""

    def __init__(self, std: float = PCA_STD):
        super().__init__()
        self.std = std
        self.register_buffer("eigenvalues", torch.tensor(PCA_EIGENVALUES))
        self.register_buffer("eigenvectors", torch.tensor(PCA_EIGENVECTORS))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * self.std
        shift = self.eigenvectors @ (alpha * self.eigenvalues)  # [3]: one offset per colour channel
        return image + shift[:, None, None]


class SubtractMean(torch.nn.Module):
    """Subtract the per-pixel mean image [3, crop, crop] (broadcasts over a leading crop dimension)."""

    def __init__(self, mean: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.float())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image - self.mean


class StackCrops(torch.nn.Module):
    """TenCrop's tuple of views -> one tensor [10, 3, crop, crop]."""

    def forward(self, crops: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.stack(crops)


def train_transform(geometry: Geometry, mean: torch.Tensor) -> v2.Compose:
    """Scale augmentation, random crop, random flip, colour augmentation, minus the per-pixel mean."""
    return v2.Compose(
        [
            RandomScaleCrop(geometry.crop, geometry.scale_min, geometry.scale_max),
            v2.RandomHorizontalFlip(),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),  # 0..1, the scale the PCA eigenvalues are given in
            PCALighting(),
            SubtractMean(mean),
        ]
    )


def center_crop_transform(geometry: Geometry, mean: torch.Tensor | None) -> v2.Compose:
    """The single test view: shorter side -> test_size, center crop. mean None: keep it (to compute it)."""
    steps = [
        v2.Resize(geometry.test_size, antialias=True),
        v2.CenterCrop(geometry.crop),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
    ]
    return v2.Compose(steps + ([SubtractMean(mean)] if mean is not None else []))


def ten_crop_transform(geometry: Geometry, mean: torch.Tensor) -> v2.Compose:
    """AlexNet's 10-crop test: 4 corners + center of the resized image, then the same of its mirror image.

    Output [10, 3, crop, crop]; views 0-4 are top-left, top-right, bottom-left, bottom-right, center.
    """
    return v2.Compose(
        [
            v2.Resize(geometry.test_size, antialias=True),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.TenCrop(geometry.crop),
            StackCrops(),
            SubtractMean(mean),
        ]
    )


def average_crop_scores(logits: torch.Tensor, crops: int) -> torch.Tensor:
    """[B * crops, classes] logits of B images' views -> [B, classes] mean softmax score per image."""
    if logits.ndim != 2 or logits.shape[0] % crops:
        raise ValueError(f"expected [B * {crops}, classes] logits, got shape {tuple(logits.shape)}")
    return logits.float().softmax(dim=1).view(-1, crops, logits.shape[1]).mean(dim=1)


# ---------------------------------------------------------------------------------------------------------
# Datasets and the training sampler
# ---------------------------------------------------------------------------------------------------------


class ImageSamples(Dataset):
    """Images read from a list of (path, label) with one deterministic transform (the test views)."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return self.transform(read_image(path)), label


class SeededImages(ImageSamples):
    """Training images whose random augmentation is seeded by (seed, epoch, index).

    Indexed with (epoch, index) pairs (see `EpochSampler`). Every image's augmentation is thus fixed by
    the run's seed alone, whichever worker, process or number of processes draws it, and a resumed run
    augments exactly as the uninterrupted one.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], transform, seed: int):
        super().__init__(samples, transform)
        self.seed = seed

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        epoch, index = key
        path, label = self.samples[index]
        image = read_image(path)
        state = np.random.SeedSequence([self.seed, epoch, index]).generate_state(2, dtype=np.uint64)[0]
        with torch.random.fork_rng(devices=[]):  # leave the worker's own stream alone
            torch.manual_seed(int(state))
            return self.transform(image), label


class EpochSampler(Sampler):
    """This process's share of one epoch as (epoch, index) pairs, optionally skipping its first samples.

    The order is a seeded permutation of the whole training set per epoch; process `rank` of `world` takes
    every world-th index from position rank (torch's DistributedSampler does the sharding, padding the
    order to a multiple of `world`). So step s of every process together covers positions
    [s * batch, (s + 1) * batch) of the permutation, for any number of processes: a run can resume on a
    different number of GPUs and see the same global mini-batches.
    """

    def __init__(self, dataset_size: int, rank: int, world: int, seed: int):
        from torch.utils.data.distributed import DistributedSampler

        self.shard = DistributedSampler(range(dataset_size), world, rank, shuffle=True, seed=seed)
        self.epoch, self.skip = 0, 0

    def start(self, epoch: int, skip: int = 0) -> None:
        """Set the epoch, and how many of this process's samples of it were already trained on."""
        self.shard.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return len(self.shard) - self.skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(self.shard)[self.skip :]
        return iter([(self.epoch, index) for index in indices])


def shard_indices(size: int, rank: int, world: int) -> list[int]:
    """Evaluation shards: every image exactly once over all processes (no padding, unlike training)."""
    return list(range(rank, size, world))
